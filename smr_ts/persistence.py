"""save/load of a fitted estimator: a JSON config and a tensors-only weights file.

What is stored is driven by one table, :data:`FITTED_ATTRIBUTES`: each fitted attribute and how
it is written. Adding a fitted attribute is one line there.

- ``config.json``: the constructor parameters (not ``callbacks``: they are run-time objects),
  the library version and the JSON-able fitted attributes.
- ``weights.pt``: tensors only, read with ``torch.load(weights_only=True)``, which cannot execute
  code; a model trained on GPU loads on CPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from smr_ts._version import __version__
from smr_ts.data.forecast import ForecastLayout
from smr_ts.data.frames import SeriesPanel, TimeInfo

__all__ = ["FITTED_ATTRIBUTES", "RUNTIME_PARAMETERS", "load", "save"]

# Fitted attribute -> how it is stored. "json": as it is in config.json; "names": an array of
# column names; "time_info": a TimeInfo; "layout": a ForecastLayout; "array": a numpy array in
# weights.pt; "panel": a SeriesPanel in weights.pt; "module": the network's state dict in
# weights.pt. An attribute a model does not have (``feature_names_in_`` after an array X, the
# scalers in forecasting, ``history_panel_`` in regression) is skipped.
FITTED_ATTRIBUTES = {
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
    "model_": "module",
}

# Constructor parameters that are run-time objects, never written.
RUNTIME_PARAMETERS = ("callbacks",)

_PANEL_ARRAYS = ("rows", "time", "values", "value_observed", "valid", "lengths")


def save(estimator, path) -> None:
    """Write ``estimator`` (fitted) to directory ``path``: ``config.json`` and ``weights.pt``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in RUNTIME_PARAMETERS}
    if isinstance(params.get("random_state"), np.random.RandomState):
        params["random_state"] = None
    # JSON has no tuples or Timedeltas: name the parameters that were, so load gives them back.
    param_types = {k: type(v).__name__ for k, v in params.items() if isinstance(v, (tuple, pd.Timedelta))}
    params = {k: str(v) if isinstance(v, pd.Timedelta) else v for k, v in params.items()}
    fitted, tensors = {}, {}
    for name, kind in FITTED_ATTRIBUTES.items():
        if not hasattr(estimator, name):
            continue
        value = getattr(estimator, name)
        if kind == "json":
            fitted[name] = _jsonable(value)
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
        elif kind == "module":
            for k, v in value.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu()
        else:  # pragma: no cover - a table entry with a kind this function does not know
            raise ValueError(f"FITTED_ATTRIBUTES[{name!r}] has unknown kind {kind!r}")
    state = {"version": __version__, "params": _jsonable(params), "param_types": param_types, "fitted": fitted}
    with open(path / "config.json", "w") as f:
        json.dump(state, f, indent=1)
    torch.save(tensors, path / "weights.pt")


def load(cls, path):
    """Read an estimator of class ``cls`` written by :func:`save`, on CPU, executing no code from the files."""
    path = Path(path)
    with open(path / "config.json") as f:
        state = json.load(f)
    tensors = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    params = state["params"]
    restore = {"tuple": tuple, "Timedelta": pd.Timedelta}
    for name, kind in state["param_types"].items():
        if params.get(name) is not None:
            params[name] = restore[kind](params[name])
    estimator = cls(**params)
    fitted = state["fitted"]
    for name, kind in FITTED_ATTRIBUTES.items():
        if kind == "json" and name in fitted:
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
    for name, kind in FITTED_ATTRIBUTES.items():  # the network last: its shape needs the rest
        if kind == "module":
            prefix = f"{name}."
            module = estimator._build_model()
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            setattr(estimator, name, module.eval())
    return estimator


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
