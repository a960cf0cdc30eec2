"""save/load of a fitted estimator: a JSON config and a tensors-only weights file.

What is stored is driven by one table, :data:`FITTED_ATTRIBUTES`: each fitted attribute and how
it is written. Forecasting's fitted state is one of them, ``forecast_state_``
(:class:`~smr_ts.forecasting.state.ForecastState`), which turns itself into JSON and tensors.

- ``config.json``: the constructor parameters (not ``callbacks``: they are run-time objects),
  the library version, the save format (:data:`FORMATS`), the JSON-able fitted attributes and the
  SHA-256 of the ``weights.pt`` written with it.
- ``weights.pt``: tensors only, read with ``torch.load(weights_only=True)``, which cannot execute
  code; a model trained on GPU loads on CPU.

Every save format this version reads is listed in :data:`FORMATS`, and an older one is brought
to the current format by :data:`MIGRATIONS`, one step per format, before anything else reads it:
the rest of the package sees current saves only. The files themselves are written and read by
:mod:`smr_ts._save_files` (atomic per file, inside their folder).

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
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from smr_ts._estimator_params import resolved_loss
from smr_ts._save_files import RESAVE, jsonable, read_files, version_tuple, write_files
from smr_ts._version import __version__
from smr_ts.backbones import BACKBONES
from smr_ts.data.times import TimeInfo
from smr_ts.distributed import is_rank_zero
from smr_ts.forecasting.layout import ForecastLayout
from smr_ts.forecasting.state import PANEL_ARRAYS, ForecastState
from smr_ts.model import build_network

__all__ = ["FITTED_ATTRIBUTES", "FORMAT", "FORMATS", "MIGRATIONS", "RUNTIME_PARAMETERS", "fitted_params", "load",
           "save"]

# Every save format, oldest first: the smr_ts version that first wrote it and what it holds. The one
# place that says which saves this version reads: formats 1 to FORMAT, from FORMATS[1]'s version on.
FORMATS = {
    1: ("0.1.0", "config.json (version, params, param_types, fitted) and a tensors-only weights.pt"),
    2: ("0.1.0", "format 1, with the format's number and the SHA-256 of the weights.pt saved with the config"),
    3: ("0.1.0", "format 2, with forecasting's fitted state as one entry, forecast_state_ (its layout's "
                 "target_moments were its level)"),
    4: ("0.1.0", "format 3, with the forecaster model selection kept (forecast_state_'s floor), n_networks, and "
                 "the coverage log of the rows update() appended (forecast_state_'s coverage)"),
    5: ("0.1.0", "format 4, with the name of a forecasting model's forecast columns (alias, alias_) and the names "
                 "of its layout's periods (period_names: a period detected in the data beside the calendar's)"),
    6: ("0.1.0", "format 5, with the seasonal profile among a forecasting model's query features (its layout's "
                 "profile_changes)"),
    7: ("0.1.0", "format 6, with the scale gate of a forecasting model (its layout's scale_gate, its networks' gate "
                 "weights) and the recent scale's sums in its stream state's statistics"),
}
FORMAT = max(FORMATS)
_CONFIG_KEYS = {1: {"version", "params", "param_types", "fitted"},
                2: {"version", "format", "params", "param_types", "fitted", "weights_sha256"}}
_CONFIG_KEYS[3] = _CONFIG_KEYS[4] = _CONFIG_KEYS[5] = _CONFIG_KEYS[6] = _CONFIG_KEYS[7] = _CONFIG_KEYS[2]

# Fitted attribute -> how it is stored. "json": as it is in config.json; "params": constructor
# parameters, as the top-level "params" are written; "names": an array of column names; "time_info":
# a TimeInfo; "array": a numpy array in weights.pt; "state": forecasting's ForecastState, its JSON in
# config.json and its arrays in weights.pt; "module": the network's state dict in weights.pt. An
# attribute a model does not have (``feature_names_in_`` after an array X, the scalers in forecasting,
# ``forecast_state_`` in regression) is skipped.
FITTED_ATTRIBUTES = {
    "fitted_params_": "params",
    "loss_": "json",
    "mode_": "json",
    "value_columns_": "json",
    "target_names_": "json",
    "alias_": "json",
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
    "quantiles_": "json",
    "future_names_": "json",
    "static_names_": "json",
    "forecast_state_": "state",
    "model_": "module",
}

# Constructor parameters that are run-time objects, never written.
RUNTIME_PARAMETERS = ("callbacks",)
_STATE_PARTS = {"layout", "panel", "statics", "calibration", "stream", "floor", "coverage"}


def fitted_params(params: dict) -> dict:
    """The constructor parameters (``get_params()``) as a fit sees them (``fitted_params_``), less run-time
    objects."""
    return {k: v for k, v in params.items() if k not in RUNTIME_PARAMETERS}


def save(path, params: dict, fitted: dict) -> None:
    """Write a fitted estimator, its constructor parameters (``get_params()``) and its fitted attributes
    ``fitted`` (name: value, those of :data:`FITTED_ATTRIBUTES` it has), to directory ``path``:
    ``config.json`` and ``weights.pt``, each through a temporary file renamed over the old one. In a
    ``torchrun`` group only rank 0 writes (every rank holds the same model)."""
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
    state, tensors = _encode(params, fitted)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    weights = buffer.getvalue()
    # The config names the weights it was saved with, so load tells a pair from two saves apart.
    state["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    config = json.dumps(state, indent=1).encode()
    path.mkdir(parents=True, exist_ok=True)
    write_files([(weights_file, weights), (config_file, config)])


def _encode(params: dict, attributes: dict) -> tuple[dict, dict]:
    """(the config as JSON-able values, the tensors of weights.pt); a value JSON cannot hold is a
    ``TypeError`` naming the attribute and where in it."""
    params, param_types = _encode_params(params)
    fitted, tensors = {}, {}
    for name, kind in FITTED_ATTRIBUTES.items():
        if name not in attributes:
            continue
        value = attributes[name]
        if kind == "json":
            fitted[name] = value
        elif kind == "params":
            fitted[name] = dict(zip(("params", "param_types"), _encode_params(value, f"{name}")))
        elif kind == "names":
            fitted[name] = [str(v) for v in value]
        elif kind == "time_info":
            fitted[name] = [value.kind, value.tz]
        elif kind == "array":
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
        elif kind == "state":
            fitted[name], parts = value.to_saved()
            tensors.update({f"{name}.{k}": v for k, v in parts.items()})
        elif kind == "module":
            for k, v in value.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu()
        else:  # pragma: no cover - a table entry with a kind this function does not know
            raise ValueError(f"FITTED_ATTRIBUTES[{name!r}] has unknown kind {kind!r}")
    fitted = {name: jsonable(value, name) for name, value in fitted.items()}
    return {"version": __version__, "format": FORMAT, "params": params, "param_types": param_types,
            "fitted": fitted}, tensors


def _encode_params(params: dict, where: str = "params") -> tuple[dict, dict]:
    """Constructor parameters as JSON: run-time objects left out, a RandomState as None, and the
    names of the tuple and Timedelta parameters (JSON has neither), so that load gives them back."""
    params = {k: v for k, v in params.items() if k not in RUNTIME_PARAMETERS}
    if isinstance(params.get("random_state"), np.random.RandomState):
        params["random_state"] = None
    # numpy's and datetime's durations are saved (and come back) as the pd.Timedelta they equal
    params = {k: pd.Timedelta(v) if isinstance(v, (np.timedelta64, timedelta)) else v for k, v in params.items()}
    param_types = {k: type(v).__name__ for k, v in params.items() if isinstance(v, (tuple, pd.Timedelta))}
    return jsonable({k: str(v) if isinstance(v, pd.Timedelta) else v for k, v in params.items()}, where), param_types


def _decode_params(params: dict, param_types: dict) -> dict:
    restore = {"tuple": tuple, "Timedelta": pd.Timedelta}
    params = dict(params)
    for name, kind in param_types.items():
        if params.get(name) is not None:
            params[name] = restore[kind](params[name])
    return params


# ---------------------------------------------------------------- older formats, brought up to date
def _from_format_1(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Format 2 only added the format's number and the weights' SHA-256 (checked where present)."""
    return {**config, "format": 2}, tensors


def _from_format_2(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Forecasting's fitted attributes become one ``forecast_state_``; the layout's ``level`` (the first
    target's mean and std) is its ``target_moments``; what models saved before a part lacked is filled in:
    their loss (``loss_``), their layout's ``future_changes`` (False) and the calibration's history groups
    (None: one group)."""
    fitted, tensors = dict(config["fitted"]), dict(tensors)
    if "loss_" not in fitted and "mode_" in fitted:  # saved before loss_ was a fitted attribute
        params = fitted.get("fitted_params_", {}).get("params", config["params"])
        fitted["loss_"] = resolved_loss(params.get("loss", "auto"), fitted["mode_"])
    if any(name in fitted for name in ("layout_", "history_panel_")):
        state = {}
        if isinstance(fitted.get("layout_"), dict):
            layout = dict(fitted.pop("layout_"))
            layout["target_moments"] = layout.pop("level", [])
            layout.setdefault("future_changes", False)
            state["layout"] = layout
        if isinstance(fitted.get("history_panel_"), dict):
            state["panel"] = {"ids": fitted.pop("history_panel_")["ids"]}
            for part in PANEL_ARRAYS:
                tensors[f"forecast_state_.panel.{part}"] = tensors.pop(f"history_panel_.{part}")
        fitted.pop("horizon_", None)  # the layout's horizon
        state["statics"] = {"ids": fitted.pop("static_ids_")} if "static_ids_" in fitted else None
        if state["statics"] is not None:
            tensors["forecast_state_.statics.codes"] = tensors.pop("static_codes_")
        state["calibration"] = None
        if "calibration_ahead_" in tensors:
            state["calibration"] = {"changes": "calibration_changes_" in tensors}
            for part in ("ahead", "scores", "changes"):
                if f"calibration_{part}_" in tensors:
                    tensors[f"forecast_state_.calibration.{part}"] = tensors.pop(f"calibration_{part}_")
        state["stream"] = None
        if "stream_state_" in fitted:
            names = fitted.pop("stream_state_")
            state["stream"] = {"backbone": [n[len("backbone."):] for n in names if n.startswith("backbone.")]}
            for name in names:
                tensors[f"forecast_state_.stream.{name}"] = tensors.pop(f"stream_state_.{name}")
        fitted["forecast_state_"] = state
    return {**config, "format": 3, "fitted": fitted}, tensors


def _from_format_3(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Format 3 to 4: a forecasting state saved before the floor forecast with its network and had no
    coverage log, and a model saved before ensembles was one network."""
    config = {**config, "params": {"n_networks": 1, **config["params"]}}
    fitted = dict(config["fitted"])
    at_fit = fitted.get("fitted_params_")
    if isinstance(at_fit, dict) and isinstance(at_fit.get("params"), dict):
        fitted["fitted_params_"] = {**at_fit, "params": {"n_networks": 1, **at_fit["params"]}}
    if isinstance(fitted.get("forecast_state_"), dict):
        fitted["forecast_state_"] = {**fitted["forecast_state_"], "floor": {"edges": [], "kinds": ["network"]},
                                     "coverage": None}
    return {**config, "format": 4, "fitted": fitted}, tensors


def _from_format_4(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Format 4 to 5: a forecasting model saved before ``alias`` names its forecast columns after its
    backbone, as the default ``alias`` does (its forecasts were named after its targets before), and its
    layout, saved before detected periods, held calendar periods only, named by their length (an empty
    ``period_names``: :func:`smr_ts.forecasting.floor.period_names`)."""
    config = {**config, "params": {"alias": None, **config["params"]}}
    fitted = dict(config["fitted"])
    at_fit = fitted.get("fitted_params_")
    if isinstance(at_fit, dict) and isinstance(at_fit.get("params"), dict):
        fitted["fitted_params_"] = at_fit = {**at_fit, "params": {"alias": None, **at_fit["params"]}}
        if fitted.get("mode_") == "forecast" and at_fit["params"].get("backbone") in BACKBONES:
            fitted["alias_"] = BACKBONES[at_fit["params"]["backbone"]].alias
    state = fitted.get("forecast_state_")
    if isinstance(state, dict) and isinstance(state.get("layout"), dict):
        fitted["forecast_state_"] = {**state, "layout": {"period_names": [], **state["layout"]}}
    return {**config, "format": 5, "fitted": fitted}, tensors


def _from_format_5(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Format 5 to 6: a forecasting model saved before the seasonal profile's change was a query feature
    reads without it (its layout's ``profile_changes`` False)."""
    fitted = dict(config["fitted"])
    state = fitted.get("forecast_state_")
    if isinstance(state, dict) and isinstance(state.get("layout"), dict):
        fitted["forecast_state_"] = {**state, "layout": {**state["layout"], "profile_changes": False}}
    return {**config, "format": 6, "fitted": fitted}, tensors


def _from_format_6(config: dict, tensors: dict) -> tuple[dict, dict]:
    """Format 6 to 7: a forecasting model saved before the scale gate forecasts without it (its layout's
    ``scale_gate`` False), and its stream state's statistics gain the recent scale's sums, which such a
    layout never reads, at zero (the last observation's time too, in the panel's time dtype)."""
    fitted, tensors = dict(config["fitted"]), dict(tensors)
    state = fitted.get("forecast_state_")
    if isinstance(state, dict) and isinstance(state.get("layout"), dict):
        fitted["forecast_state_"] = {**state, "layout": {**state["layout"], "scale_gate": False}}
    count = tensors.get("forecast_state_.stream.stats.count")
    if count is not None:
        time = tensors.get("forecast_state_.panel.time")
        tensors["forecast_state_.stream.stats.recent_sum"] = torch.zeros(count.shape, dtype=torch.float64)
        tensors["forecast_state_.stream.stats.recent_weight"] = torch.zeros(count.shape, dtype=torch.float64)
        tensors["forecast_state_.stream.stats.last_time"] = torch.zeros(
            count.shape, dtype=torch.float64 if time is None else time.dtype)
    return {**config, "format": 7, "fitted": fitted}, tensors


# Format -> the step that brings a save of it to the next format.
MIGRATIONS = {1: _from_format_1, 2: _from_format_2, 3: _from_format_3, 4: _from_format_4, 5: _from_format_5,
              6: _from_format_6}


def _check_version(state: dict, config: Path) -> None:
    """Refuse, naming the file and both versions, a save older than the first format or in a newer format."""
    version, fmt = state["version"], state.get("format", 1)
    written = f"{config} was written by smr_ts {version}"
    if version_tuple(version) < version_tuple(FORMATS[1][0]):
        raise ValueError(f"{written}, whose saves this smr_ts {__version__} cannot read (its oldest save format is "
                         f"smr_ts {FORMATS[1][0]}'s): fit the model again with smr_ts {__version__} and save it")
    if fmt not in FORMATS:
        raise ValueError(f"{written} in save format {fmt!r}; this smr_ts {__version__} reads formats 1 to {FORMAT}: "
                         f"load it with smr_ts {version} or newer, or save it there in a format this version reads")
    unknown = [k for k in state if k not in _CONFIG_KEYS[fmt]]
    if unknown:
        _refuse_unknown(unknown, version, written)


def _check_fields(param_names, state: dict, config: Path) -> None:
    """Refuse, naming the file and both versions, a save (brought to the current format) that holds fields
    this version does not know: from a newer version, or edited."""
    fitted, params = state["fitted"], set(param_names)
    unknown = ([f"params[{k!r}]" for k in state["params"] if k not in params]
               + [f"fitted[{k!r}]" for k in fitted if k not in FITTED_ATTRIBUTES])
    at_fit = fitted.get("fitted_params_", {})
    if isinstance(at_fit, dict) and isinstance(at_fit.get("params"), dict):
        unknown += [f"fitted_params_[{k!r}]" for k in at_fit["params"] if k not in params]
    saved_state = fitted.get("forecast_state_")
    if isinstance(saved_state, dict):
        unknown += [f"forecast_state_[{k!r}]" for k in saved_state if k not in _STATE_PARTS]
        if isinstance(saved_state.get("layout"), dict):
            fields = {f.name for f in dataclasses.fields(ForecastLayout)}
            unknown += [f"forecast_state_['layout'][{k!r}]" for k in saved_state["layout"] if k not in fields]
    if unknown:
        _refuse_unknown(unknown, state["version"], f"{config} was written by smr_ts {state['version']}")


def _refuse_unknown(unknown: list, version: str, written: str) -> None:
    newer = version_tuple(version) > version_tuple(__version__)
    raise ValueError(f"{written} and holds fields this smr_ts {__version__} does not know ({', '.join(unknown)}): "
                     + (f"load it with smr_ts {version} or newer" if newer else
                        f"it was edited, or not written by SMRForecaster.save; {RESAVE}"))


def load(path, param_names) -> tuple[dict, dict, dict]:
    """Read a save written by :func:`save`, on CPU, executing no code from the files: (the constructor
    parameters, those the network was fitted with, the fitted attributes by name, the network among
    them). ``param_names``: the estimator's constructor parameters."""
    path = Path(path)
    config, weights = path / "config.json", path / "weights.pt"
    state, tensors, data = read_files(path)
    _check_version(state, config)
    written_in = state.get("format", 1)
    for fmt in range(written_in, FORMAT):
        state, tensors = MIGRATIONS[fmt](state, tensors)
    _check_fields(param_names, state, config)
    try:
        params, at_fit, fitted = _restore(state, tensors)
    except _Missing as exc:  # a fitted attribute the model needs is not in the config
        raise ValueError(f"{config} (written by smr_ts {state['version']}) lacks the fitted attribute "
                         f"{exc.args[0]} this model needs: it was edited or is incomplete; {RESAVE}") from exc
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())  # torch lists every mismatched tensor: the first few say enough
        raise ValueError(f"{weights} does not match {config} ({type(exc).__name__}: "
                         f"{detail[:240]}{'...' if len(detail) > 240 else ''}): the two files come from different "
                         f"saves or were edited; {RESAVE}") from exc
    if written_in >= 2 and state.get("weights_sha256") != hashlib.sha256(data).hexdigest():
        raise ValueError(f"{weights} does not match {config}: it is not the weights file saved with that config (its "
                         "SHA-256 differs from the one the config recorded), so the two files come from different "
                         f"saves (or a save stopped between them), or weights.pt was edited; {RESAVE}")
    return params, at_fit, fitted


class _Missing(Exception):
    """A fitted attribute the model needs is not in the config (``args[0]`` names it)."""


def _restore(state: dict, tensors: dict) -> tuple[dict, dict, dict]:
    params = _decode_params(state["params"], state.get("param_types", {}))
    saved = state["fitted"]
    at_fit = params
    if "fitted_params_" in saved:
        at_fit = _decode_params(saved["fitted_params_"]["params"], saved["fitted_params_"]["param_types"])
    fitted = {}
    for name, kind in FITTED_ATTRIBUTES.items():
        if kind == "params" and name in saved:
            fitted[name] = at_fit
        elif kind == "json" and name in saved:
            fitted[name] = saved[name]
        elif kind == "names" and name in saved:
            fitted[name] = np.asarray(saved[name], dtype=object)
        elif kind == "time_info" and name in saved:
            fitted[name] = TimeInfo(*saved[name])
        elif kind == "array" and name in tensors:
            fitted[name] = tensors[name].numpy()
        elif kind == "state" and name in saved:
            missing = [part for part in sorted(_STATE_PARTS) if part not in saved[name]]
            if missing:
                raise _Missing(f"{name}[{missing[0]!r}]")
            prefix = f"{name}."
            fitted[name] = ForecastState.from_saved(saved[name], {k[len(prefix):]: v for k, v in tensors.items()
                                                                  if k.startswith(prefix)})
    for name in ("mode_", "loss_", "value_columns_", "n_targets_"):  # what the network's shape needs
        if name not in fitted:
            raise _Missing(name)
    forecasting = fitted["mode_"] == "forecast"
    if forecasting and "forecast_state_" not in fitted:
        raise _Missing("forecast_state_")
    # the network last: its shape needs the rest
    network = build_network(at_fit, len(fitted["value_columns_"]), fitted["n_targets_"], fitted["loss_"],
                            fitted["forecast_state_"].layout if forecasting else None, fitted.get("quantiles_"))
    network.load_state_dict({k[len("model_."):]: v for k, v in tensors.items() if k.startswith("model_.")})
    fitted["model_"] = network.eval()
    return params, at_fit, fitted
