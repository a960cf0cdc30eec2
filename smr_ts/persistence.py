"""save/load of a fitted estimator: a JSON config and a tensors-only weights file.

What is stored is driven by one table, :data:`FITTED_ATTRIBUTES`: each fitted attribute and how
it is written. Adding a fitted attribute is one line there.

- ``config.json``: the constructor parameters (not ``callbacks``: they are run-time objects),
  the library version and the JSON-able fitted attributes.
- ``weights.pt``: tensors only, read with ``torch.load(weights_only=True)``, which cannot execute
  code; a model trained on GPU loads on CPU.

The network is rebuilt from the parameters it was fitted with (``fitted_params_``), so a
``set_params`` after ``fit`` changes what the next ``fit`` does, not what ``load`` reads back. A
missing, truncated or edited file, or a config and weights from two different saves, is a
``ValueError`` (``FileNotFoundError`` for a missing file) naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from smr_ts._estimator_params import resolved_loss
from smr_ts._version import __version__
from smr_ts.data.forecast import ForecastLayout
from smr_ts.data.frames import SeriesPanel, TimeInfo
from smr_ts.distributed import is_rank_zero

__all__ = ["FITTED_ATTRIBUTES", "RUNTIME_PARAMETERS", "fitted_params", "load", "save"]

# Fitted attribute -> how it is stored. "json": as it is in config.json; "params": constructor
# parameters, as the top-level "params" are written; "names": an array of
# column names; "time_info": a TimeInfo; "layout": a ForecastLayout; "array": a numpy array in
# weights.pt; "panel": a SeriesPanel in weights.pt; "tensors": a dict of tensors in weights.pt (the
# streaming state, smr_ts.streaming); "module": the network's state dict in
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
    "static_ids_": "json",
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
    """Write ``estimator`` (fitted) to directory ``path``: ``config.json`` and ``weights.pt``. In a
    ``torchrun`` group only rank 0 writes (every rank holds the same model)."""
    if not is_rank_zero():
        return
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params, param_types = _encode_params(estimator.get_params(deep=False))
    fitted, tensors = {}, {}
    for name, kind in FITTED_ATTRIBUTES.items():
        if not hasattr(estimator, name):
            continue
        value = getattr(estimator, name)
        if kind == "json":
            fitted[name] = _jsonable(value)
        elif kind == "params":
            fitted[name] = dict(zip(("params", "param_types"), _encode_params(value)))
        elif kind == "names":
            fitted[name] = [str(v) for v in value]
        elif kind == "time_info":
            fitted[name] = [value.kind, value.tz]
        elif kind == "layout":
            fitted[name] = _jsonable(dataclasses.asdict(value))
        elif kind == "array":
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
        elif kind == "panel":
            fitted[name] = {"ids": _jsonable(value.ids.tolist())}
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
    state = {"version": __version__, "params": params, "param_types": param_types, "fitted": fitted}
    with open(path / "config.json", "w") as f:
        json.dump(state, f, indent=1)
    torch.save(tensors, path / "weights.pt")


def _encode_params(params: dict) -> tuple[dict, dict]:
    """Constructor parameters as JSON: run-time objects left out, a RandomState as None, and the
    names of the tuple and Timedelta parameters (JSON has neither), so that load gives them back."""
    params = {k: v for k, v in params.items() if k not in RUNTIME_PARAMETERS}
    if isinstance(params.get("random_state"), np.random.RandomState):
        params["random_state"] = None
    # numpy's and datetime's durations are saved (and come back) as the pd.Timedelta they equal
    params = {k: pd.Timedelta(v) if isinstance(v, (np.timedelta64, timedelta)) else v for k, v in params.items()}
    param_types = {k: type(v).__name__ for k, v in params.items() if isinstance(v, (tuple, pd.Timedelta))}
    return _jsonable({k: str(v) if isinstance(v, pd.Timedelta) else v for k, v in params.items()}), param_types


def _decode_params(params: dict, param_types: dict) -> dict:
    restore = {"tuple": tuple, "Timedelta": pd.Timedelta}
    params = dict(params)
    for name, kind in param_types.items():
        if params.get(name) is not None:
            params[name] = restore[kind](params[name])
    return params


_RESAVE = "save the model again with SMRForecaster.save, or copy both files of one save"


def _read_files(path: Path) -> tuple[dict, dict]:
    """config.json and weights.pt of ``path``, each checked, with errors that name the file."""
    config, weights = path / "config.json", path / "weights.pt"
    for file in (config, weights):
        if not file.is_file():
            raise FileNotFoundError(f"{file} does not exist: load(path) reads the folder SMRForecaster.save(path) "
                                    "wrote, which holds config.json and weights.pt")
    try:
        state = json.loads(config.read_text())
        if not (isinstance(state.get("params"), dict) and isinstance(state.get("fitted"), dict)):
            raise ValueError("it has no 'params' and 'fitted' sections")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config} is not a config written by SMRForecaster.save (it may be truncated or "
                         f"edited: {exc}); {_RESAVE}") from exc
    try:
        tensors = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated (OSError, RuntimeError) or not tensors only (UnpicklingError): refused
        raise ValueError(f"{weights} could not be read as a tensors-only weights file (it may be truncated, or "
                         f"not written by SMRForecaster.save; nothing in it was run): {type(exc).__name__}: "
                         f"{exc}; {_RESAVE}") from exc
    if not (isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values())):
        raise ValueError(f"{weights} does not hold a dict of tensors, so SMRForecaster.save did not write it; {_RESAVE}")
    return state, tensors


def load(cls, path):
    """Read an estimator of class ``cls`` written by :func:`save`, on CPU, executing no code from the files."""
    path = Path(path)
    state, tensors = _read_files(path)
    try:
        return _restore(cls, state, tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())  # torch lists every mismatched tensor: the first few say enough
        raise ValueError(f"{path / 'weights.pt'} does not match {path / 'config.json'} ({type(exc).__name__}: "
                         f"{detail[:240]}{'...' if len(detail) > 240 else ''}): the two files come from different "
                         f"saves or were edited; {_RESAVE}") from exc


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
        elif kind == "names" and name in fitted:
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


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
