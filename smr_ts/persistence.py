"""save/load of a fitted estimator: a JSON config and a tensors-only weights file.

What is stored is driven by one table, :data:`FITTED_ATTRIBUTES`: each fitted attribute and how
it is written. Adding a fitted attribute is one line there.

- ``config.json``: the constructor parameters (not ``callbacks``: they are run-time objects),
  the library version, the save format (:data:`FORMATS`), the JSON-able fitted attributes and the
  SHA-256 of the ``weights.pt`` written with it.
- ``weights.pt``: tensors only, read with ``torch.load(weights_only=True)``, which cannot execute
  code; a model trained on GPU loads on CPU.

A save is atomic per file and stays inside its folder: each file is written in full to a new
temporary file beside it and then renamed over the old one (``os.replace``), so a save that fails
leaves the previous one as it was, and a link planted in the folder is replaced, never written
through. Everything that can fail (a value JSON cannot hold, a folder where a file goes) fails
before the first rename.

The network is rebuilt from the parameters it was fitted with (``fitted_params_``), so a
``set_params`` after ``fit`` changes what the next ``fit`` does, not what ``load`` reads back. A
missing, truncated or edited file, a config and weights from two different saves (the weights'
SHA-256 differs from the one the config recorded), or a save from a version this one cannot read
is a ``ValueError`` (``FileNotFoundError`` for a missing file) naming the file, and the versions
where they matter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from smr_ts._estimator_params import resolved_loss
from smr_ts._version import __version__
from smr_ts.data.panel import SeriesPanel
from smr_ts.data.times import TimeInfo
from smr_ts.distributed import is_rank_zero
from smr_ts.forecasting.layout import ForecastLayout

__all__ = ["FITTED_ATTRIBUTES", "FORMAT", "FORMATS", "RUNTIME_PARAMETERS", "fitted_params", "load", "save"]

# Every save format, oldest first: the smr_ts version that first wrote it and what it holds. The one
# place that says which saves this version reads: formats 1 to FORMAT, from FORMATS[1]'s version on.
FORMATS = {
    1: ("0.1.0", "config.json (version, params, param_types, fitted) and a tensors-only weights.pt"),
    2: ("0.1.0", "format 1, with the format's number and the SHA-256 of the weights.pt saved with the config"),
}
FORMAT = max(FORMATS)
_CONFIG_KEYS = {1: {"version", "params", "param_types", "fitted"},
                2: {"version", "format", "params", "param_types", "fitted", "weights_sha256"}}

# Fitted attribute -> how it is stored. "json": as it is in config.json; "params": constructor
# parameters, as the top-level "params" are written; "names": an array of
# column names; "ids": an array of series ids (ints or strings, given back as they were); "time_info": a TimeInfo; "layout": a ForecastLayout; "array": a numpy array in
# weights.pt; "panel": a SeriesPanel in weights.pt; "tensors": a dict of tensors in weights.pt (the
# streaming state, smr_ts.forecasting.streaming); "module": the network's state dict in
# weights.pt. An attribute a model does not have (``feature_names_in_`` after an array X, the
# scalers in forecasting, ``history_panel_`` in regression) is skipped.
FITTED_ATTRIBUTES = {
    "fitted_params_": "params",
    "loss_": "json",
    "mode_": "json",
    "value_columns_": "json",
    "target_names_": "json",
    "n_targets_": "json",
    "y_ndim_": "json",
    "time_info_": "time_info",
    "time_unit_": "json",
    "history_": "json",
    "best_epoch_": "json",
    "interrupted_": "json",
    "n_features_in_": "json",
    "feature_names_in_": "names",
    "feature_mean_": "array",
    "feature_scale_": "array",
    "target_mean_": "array",
    "target_scale_": "array",
    "history_panel_": "panel",
    "horizon_": "json",
    "layout_": "layout",
    "quantiles_": "json",
    "future_names_": "json",
    "static_names_": "json",
    "static_ids_": "ids",
    "static_codes_": "array",
    "calibration_ahead_": "array",
    "calibration_scores_": "array",
    "calibration_changes_": "array",
    "stream_state_": "tensors",
    "model_": "module",
}

# Constructor parameters that are run-time objects, never written.
RUNTIME_PARAMETERS = ("callbacks",)

_PANEL_ARRAYS = ("rows", "time", "values", "value_observed", "valid", "lengths")


def fitted_params(estimator) -> dict:
    """The estimator's constructor parameters as a fit sees them (``fitted_params_``), less run-time objects."""
    return {k: v for k, v in estimator.get_params(deep=False).items() if k not in RUNTIME_PARAMETERS}


def save(estimator, path) -> None:
    """Write ``estimator`` (fitted) to directory ``path``: ``config.json`` and ``weights.pt``, each
    through a temporary file renamed over the old one. In a ``torchrun`` group only rank 0 writes
    (every rank holds the same model)."""
    if not is_rank_zero():
        return
    path = Path(path)
    config_file, weights_file = path / "config.json", path / "weights.pt"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file: save(path) writes config.json and weights.pt into the folder path; "
                         "give a folder (it is created if missing)")
    for file in (config_file, weights_file):
        if file.is_dir() and not file.is_symlink():
            raise ValueError(f"{file} is a folder, where save writes a file: remove or rename that folder, or save to "
                             "another folder")
    state, tensors = _encode(estimator)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    weights = buffer.getvalue()
    # The config names the weights it was saved with, so load tells a pair from two saves apart.
    state["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    config = json.dumps(state, indent=1).encode()
    path.mkdir(parents=True, exist_ok=True)
    _write_files([(weights_file, weights), (config_file, config)])


def _encode(estimator) -> tuple[dict, dict]:
    """(the config as JSON-able values, the tensors of weights.pt); a value JSON cannot hold is a
    ``TypeError`` naming the attribute and where in it."""
    params, param_types = _encode_params(estimator.get_params(deep=False))
    fitted, tensors = {}, {}
    for name, kind in FITTED_ATTRIBUTES.items():
        if not hasattr(estimator, name):
            continue
        value = getattr(estimator, name)
        if kind == "json":
            fitted[name] = value
        elif kind == "params":
            fitted[name] = dict(zip(("params", "param_types"), _encode_params(value, f"{name}")))
        elif kind == "names":
            fitted[name] = [str(v) for v in value]
        elif kind == "ids":
            fitted[name] = list(value)
        elif kind == "time_info":
            fitted[name] = [value.kind, value.tz]
        elif kind == "layout":
            fitted[name] = dataclasses.asdict(value)
        elif kind == "array":
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
        elif kind == "panel":
            fitted[name] = {"ids": value.ids.tolist()}
            for part in _PANEL_ARRAYS:
                tensors[f"{name}.{part}"] = torch.from_numpy(np.ascontiguousarray(getattr(value, part)))
        elif kind == "tensors":
            fitted[name] = sorted(value)
            tensors.update({f"{name}.{k}": v.detach().cpu() for k, v in value.items()})
        elif kind == "module":
            for k, v in value.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu()
        else:  # pragma: no cover - a table entry with a kind this function does not know
            raise ValueError(f"FITTED_ATTRIBUTES[{name!r}] has unknown kind {kind!r}")
    fitted = {name: _jsonable(value, name) for name, value in fitted.items()}
    return {"version": __version__, "format": FORMAT, "params": params, "param_types": param_types,
            "fitted": fitted}, tensors


def _write_files(files: list[tuple[Path, bytes]]) -> None:
    """Write each (file, bytes) in full to a new file beside it, then rename each over its file. A new
    name opened with O_EXCL never follows a link, and a rename replaces a link instead of its target."""
    temporaries = []
    try:
        for file, data in files:
            temporary = file.with_name(f".{file.name}.{secrets.token_hex(8)}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            temporaries.append(temporary)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        for (file, _), temporary in zip(files, temporaries):
            os.replace(temporary, file)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _encode_params(params: dict, where: str = "params") -> tuple[dict, dict]:
    """Constructor parameters as JSON: run-time objects left out, a RandomState as None, and the
    names of the tuple and Timedelta parameters (JSON has neither), so that load gives them back."""
    params = {k: v for k, v in params.items() if k not in RUNTIME_PARAMETERS}
    if isinstance(params.get("random_state"), np.random.RandomState):
        params["random_state"] = None
    # numpy's and datetime's durations are saved (and come back) as the pd.Timedelta they equal
    params = {k: pd.Timedelta(v) if isinstance(v, (np.timedelta64, timedelta)) else v for k, v in params.items()}
    param_types = {k: type(v).__name__ for k, v in params.items() if isinstance(v, (tuple, pd.Timedelta))}
    return _jsonable({k: str(v) if isinstance(v, pd.Timedelta) else v for k, v in params.items()}, where), param_types


def _decode_params(params: dict, param_types: dict) -> dict:
    restore = {"tuple": tuple, "Timedelta": pd.Timedelta}
    params = dict(params)
    for name, kind in param_types.items():
        if params.get(name) is not None:
            params[name] = restore[kind](params[name])
    return params


_RESAVE = "save the model again with SMRForecaster.save, or copy both files of one save"


def _read_files(path: Path) -> tuple[dict, dict, bytes]:
    """config.json and weights.pt of ``path``, each checked, with errors that name the file; and the
    weights file's bytes."""
    config, weights = path / "config.json", path / "weights.pt"
    for file in (config, weights):
        if not file.is_file():
            raise FileNotFoundError(f"{file} does not exist: load(path) reads the folder SMRForecaster.save(path) "
                                    "wrote, which holds config.json and weights.pt")
    try:
        state = json.loads(config.read_text())
        if not (isinstance(state.get("params"), dict) and isinstance(state.get("fitted"), dict)):
            raise ValueError("it has no 'params' and 'fitted' sections")
        if not (isinstance(state.get("version"), str) and _version_tuple(state["version"])):
            raise ValueError("it names no smr_ts version")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config} is not a config written by SMRForecaster.save (it may be truncated or "
                         f"edited: {exc}); {_RESAVE}") from exc
    data = weights.read_bytes()
    try:
        tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated (OSError, RuntimeError) or not tensors only (UnpicklingError): refused
        raise ValueError(f"{weights} could not be read as a tensors-only weights file (it may be truncated, or "
                         f"not written by SMRForecaster.save; nothing in it was run): {type(exc).__name__}: "
                         f"{exc}; {_RESAVE}") from exc
    if not (isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values())):
        raise ValueError(f"{weights} does not hold a dict of tensors, so SMRForecaster.save did not write it; {_RESAVE}")
    return state, tensors, data


def _version_tuple(version: str) -> tuple:
    """(major, minor, patch) of a version string, () if it has none."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(part or 0) for part in match.groups()) if match else ()


def _check_version(cls, state: dict, config: Path) -> None:
    """Refuse, naming the file and both versions, a save older than the first format, in a newer format,
    or holding fields this version does not know (from a newer version, or edited)."""
    version, fmt = state["version"], state.get("format", 1)
    written = f"{config} was written by smr_ts {version}"
    if _version_tuple(version) < _version_tuple(FORMATS[1][0]):
        raise ValueError(f"{written}, whose saves this smr_ts {__version__} cannot read (its oldest save format is "
                         f"smr_ts {FORMATS[1][0]}'s): fit the model again with smr_ts {__version__} and save it")
    if fmt not in FORMATS:
        raise ValueError(f"{written} in save format {fmt!r}; this smr_ts {__version__} reads formats 1 to {FORMAT}: "
                         f"load it with smr_ts {version} or newer, or save it there in a format this version reads")
    fitted = state["fitted"]
    params = set(cls._get_param_names())
    unknown = ([k for k in state if k not in _CONFIG_KEYS[fmt]]
               + [f"params[{k!r}]" for k in state["params"] if k not in params]
               + [f"fitted[{k!r}]" for k in fitted if k not in FITTED_ATTRIBUTES])
    at_fit = fitted.get("fitted_params_", {})
    if isinstance(at_fit, dict) and isinstance(at_fit.get("params"), dict):
        unknown += [f"fitted_params_[{k!r}]" for k in at_fit["params"] if k not in params]
    if isinstance(fitted.get("layout_"), dict):
        fields = {f.name for f in dataclasses.fields(ForecastLayout)}
        unknown += [f"layout_[{k!r}]" for k in fitted["layout_"] if k not in fields]
    if unknown:
        newer = _version_tuple(version) > _version_tuple(__version__)
        raise ValueError(f"{written} and holds fields this smr_ts {__version__} does not know "
                         f"({', '.join(unknown)}): " + (
                             f"load it with smr_ts {version} or newer" if newer else
                             f"it was edited, or not written by SMRForecaster.save; {_RESAVE}"))


def load(cls, path):
    """Read an estimator of class ``cls`` written by :func:`save`, on CPU, executing no code from the files."""
    path = Path(path)
    config, weights = path / "config.json", path / "weights.pt"
    state, tensors, data = _read_files(path)
    _check_version(cls, state, config)
    try:
        estimator = _restore(cls, state, tensors)
    except AttributeError as exc:  # a fitted attribute the model needs is not in the config
        raise ValueError(f"{config} (written by smr_ts {state['version']}) lacks the fitted attribute "
                         f"{exc.name or exc} this model needs: it was edited or is incomplete; {_RESAVE}") from exc
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())  # torch lists every mismatched tensor: the first few say enough
        raise ValueError(f"{weights} does not match {config} ({type(exc).__name__}: "
                         f"{detail[:240]}{'...' if len(detail) > 240 else ''}): the two files come from different "
                         f"saves or were edited; {_RESAVE}") from exc
    if state.get("format", 1) >= 2 and state.get("weights_sha256") != hashlib.sha256(data).hexdigest():
        raise ValueError(f"{weights} does not match {config}: it is not the weights file saved with that config (its "
                         "SHA-256 differs from the one the config recorded), so the two files come from different "
                         f"saves (or a save stopped between them), or weights.pt was edited; {_RESAVE}")
    return estimator


def _restore(cls, state: dict, tensors: dict):
    params = _decode_params(state["params"], state.get("param_types", {}))
    fitted = state["fitted"]
    at_fit = params
    if "fitted_params_" in fitted:
        at_fit = _decode_params(fitted["fitted_params_"]["params"], fitted["fitted_params_"]["param_types"])
    estimator = cls(**at_fit)  # the network is built as it was fitted; the current parameters come last
    for name, kind in FITTED_ATTRIBUTES.items():
        if kind == "params" and name in fitted:
            setattr(estimator, name, at_fit)
        elif kind == "json" and name in fitted:
            setattr(estimator, name, fitted[name])
        elif kind in ("names", "ids") and name in fitted:
            setattr(estimator, name, np.asarray(fitted[name], dtype=object))
        elif kind == "time_info" and name in fitted:
            setattr(estimator, name, TimeInfo(*fitted[name]))
        elif kind == "layout" and name in fitted:
            setattr(estimator, name, ForecastLayout(**fitted[name]))
        elif kind == "array" and name in tensors:
            setattr(estimator, name, tensors[name].numpy())
        elif kind == "panel" and name in fitted:
            arrays = {part: tensors[f"{name}.{part}"].numpy() for part in _PANEL_ARRAYS}
            setattr(estimator, name, SeriesPanel(ids=np.asarray(fitted[name]["ids"]), **arrays))
        elif kind == "tensors" and name in fitted:
            setattr(estimator, name, {k: tensors[f"{name}.{k}"] for k in fitted[name]})
    if not hasattr(estimator, "loss_"):  # saved before loss_ was a fitted attribute
        estimator.loss_ = resolved_loss(estimator.loss, estimator.mode_)
    for name, kind in FITTED_ATTRIBUTES.items():  # the network last: its shape needs the rest
        if kind == "module":
            prefix = f"{name}."
            module = estimator._build_model()
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            setattr(estimator, name, module.eval())
    return estimator.set_params(**params)


def _jsonable(value, where: str):
    """``value`` as JSON: numpy scalars and arrays as numbers and lists; anything else JSON cannot hold is
    a ``TypeError`` naming ``where`` it is (e.g. ``history_[3]['key']``, a callback's epoch record)."""
    if isinstance(value, dict):
        keys = [k for k in value if not isinstance(k, str)]
        if keys:  # JSON would turn them into strings, or refuse them
            raise TypeError(f"{where} has a key {keys[0]!r} that is not a string, which config.json cannot hold: "
                            "SMRForecaster.save writes dicts with string keys")
        return {k: _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"{where} holds a value of type {type(value).__name__}, which config.json cannot hold: "
                    "SMRForecaster.save writes numbers, strings, lists and dicts (and numpy arrays as lists); "
                    "store another value there, or leave it out")
