"""SMRForecaster's parameter checks: its constraint table, and the rules that tie parameters together.

Checked once, at the start of ``fit``; every failure is an ``InvalidParameterError`` (a
``ValueError``) naming the parameter.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from numbers import Integral, Real

import pandas as pd

from smr_ts._validation import (
    Interval, StrOptions, check_params, invalid, positive_int, positive_real, probability,
)
from smr_ts.backbones import BACKBONES, smr_backbones
from smr_ts.callbacks import EarlyStopping
from smr_ts.model import ENCODERS

__all__ = ["PARAMETER_CONSTRAINTS", "check_estimator_params", "resolved_epochs", "resolved_loss", "resolved_quantiles"]

_NON_NEGATIVE = Interval(Real, 0, None, closed="left")

PARAMETER_CONSTRAINTS = {
    "backbone": [StrOptions(set(BACKBONES))],
    "smr": ["boolean", StrOptions({"auto"})],
    "smr_kernel": [positive_int()],
    "smr_use_gaps": ["boolean"],
    "d_model": [positive_int()],
    "state_size": [positive_int()],
    "n_layers": [positive_int()],
    "blocks": [positive_int()],
    "step_min": [positive_real()],
    "step_max": [positive_real()],
    "dropout": [probability()],
    "encoder": [StrOptions(set(ENCODERS))],
    "image_shape": [tuple, list, None],
    "encoder_hidden": [positive_int()],
    "loss": [StrOptions({"auto", "mse", "mae", "gaussian", "quantile"})],
    "quantiles": [list, tuple, None],
    "epochs": [positive_int(), StrOptions({"auto"})],
    "batch_size": [StrOptions({"auto"}), positive_int()],
    "lr": [positive_real()],
    "ssm_lr": [positive_real()],
    "weight_decay": [_NON_NEGATIVE],
    "warmup_epochs": [_NON_NEGATIVE],
    "grad_clip": [positive_real(), None],
    "validation_fraction": [probability()],
    "validation_by": [StrOptions({"series", "time"})],
    "floor": ["boolean"],
    "n_networks": [positive_int()],
    "patience": [positive_int(), None],
    "callbacks": [list, tuple, None],
    "id_col": [str, None],
    "time_col": [str],
    "target_cols": [list, tuple, None],
    "future_cols": [list, tuple, None],
    "static_cols": [list, tuple, None],
    "alias": [str, None],
    "time_unit": [positive_real(), str, pd.Timedelta],
    "horizon": [positive_real(), str, pd.Timedelta],
    "device": [str],
    "random_state": ["random_state"],
    "n_threads": [positive_int(), StrOptions({"auto"})],
    "verbose": ["verbose"],
}


def check_estimator_params(params: dict, name: str = "SMRForecaster") -> None:
    """The constraint table, then the rules that tie two parameters together: ``params`` are the
    estimator's ``get_params()``, ``name`` its class's name."""
    check_params(PARAMETER_CONSTRAINTS, params, name)
    p = SimpleNamespace(**params)  # the rules below read them as attributes
    if p.image_shape is not None and not (
        len(p.image_shape) == 2 and all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                                           for s in p.image_shape)):
        raise invalid(name, f"The 'image_shape' parameter of {name} must be a (height, width) pair of "
                            f"positive ints. Got {p.image_shape!r} instead.")
    if p.encoder == "cnn" and p.image_shape is None:
        raise invalid(name, f"The 'image_shape' parameter of {name} is required with encoder='cnn'.")
    if p.step_min > p.step_max:
        raise invalid(name, f"The 'step_min' parameter of {name} must not exceed step_max={p.step_max}. "
                            f"Got {p.step_min!r} instead.")
    if p.backbone == "s5" and (p.state_size % p.blocks or (p.state_size // p.blocks) % 2):
        raise invalid(name, f"The 'state_size' parameter of {name} must split into blocks={p.blocks} "
                            f"blocks of even size for backbone='s5'. Got {p.state_size!r} instead.")
    if p.smr is True and not BACKBONES[p.backbone].takes_smr:
        raise invalid(name, f"The 'smr' parameter of {name} needs a backbone that takes SMR "
                            f"({smr_backbones()}); got backbone={p.backbone!r}.")
    if p.smr_use_gaps and (p.smr is False or not BACKBONES[p.backbone].takes_smr):
        raise invalid(name, f"The 'smr_use_gaps' parameter of {name} changes the SMR gate, so it needs smr=True.")
    for param in ("target_cols", "future_cols", "static_cols"):
        value = params[param]
        if value is not None and not (value and all(isinstance(c, str) for c in value) and len(set(value)) == len(value)):
            raise invalid(name, f"The '{param}' parameter of {name} must be None or a non-empty list of distinct "
                                f"column names. Got {value!r} instead.")
    if p.alias is not None and not p.alias.strip():
        raise invalid(name, f"The 'alias' parameter of {name} names the forecast columns, so it must be None or a "
                            f"non-empty string. Got {p.alias!r} instead.")
    if p.quantiles is not None and not (len(p.quantiles) and all(
            isinstance(q, Real) and not isinstance(q, bool) and 0 < q < 1 for q in p.quantiles)
            and len(set(p.quantiles)) == len(p.quantiles)):
        raise invalid(name, f"The 'quantiles' parameter of {name} must be None or distinct levels strictly "
                            f"between 0 and 1, e.g. (0.1, 0.5, 0.9). Got {p.quantiles!r} instead.")
    if p.id_col is not None and p.id_col == p.time_col:
        raise invalid(name, f"The 'id_col' parameter of {name} must differ from time_col={p.time_col!r}.")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", p.device):
        raise invalid(name, f"The 'device' parameter of {name} must be 'auto', 'cpu' or 'cuda[:N]'. "
                            f"Got {p.device!r} instead.")
    for cb in p.callbacks or ():
        if not all(hasattr(cb, hook) for hook in ("on_train_begin", "on_epoch_end", "on_train_end")):
            raise invalid(name, f"The 'callbacks' parameter of {name} must hold smr_ts.callbacks.Callback "
                                f"objects. Got {cb!r}.")
    if p.patience is not None and any(isinstance(cb, EarlyStopping) for cb in p.callbacks or ()):
        raise invalid(name, f"The 'patience' parameter of {name} is shorthand for an EarlyStopping callback; "
                            "callbacks already holds one, so leave patience=None.")


def resolved_loss(loss: str, mode: str) -> str:
    """The loss a fit trains with: "auto" is "mae" when forecasting (the error forecasts are judged by)
    and "mse" in regression. Kept as ``loss_``: prediction follows it, whatever ``set_params`` did since."""
    if loss == "quantile" and mode != "forecast":
        raise invalid("SMRForecaster", "The 'loss' parameter of SMRForecaster: 'quantile' is for forecasting "
                                       "(fit(df) without y); with y, use 'mse', 'mae' or 'gaussian'.")
    return ("mae" if mode == "forecast" else "mse") if loss == "auto" else loss


FORECAST_EPOCHS, REGRESSION_EPOCHS = 20, 30


def resolved_epochs(epochs, mode: str) -> int:
    """The epochs a fit trains for: "auto" is 20 when forecasting (chosen on the real-data suite, for accuracy and
    cost: ``docs/results/forecasting_design.md``) and 30 in regression."""
    if epochs != "auto":
        return int(epochs)
    return FORECAST_EPOCHS if mode == "forecast" else REGRESSION_EPOCHS


DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def resolved_quantiles(loss: str, quantiles) -> tuple | None:
    """The quantile levels a fit trains (``quantiles_``): with ``loss="quantile"``, ``quantiles`` (default
    (0.1, 0.5, 0.9)) sorted, with 0.5 added when missing (it is the point forecast); otherwise None."""
    if loss != "quantile":
        return None
    return tuple(sorted({float(q) for q in (quantiles or DEFAULT_QUANTILES)} | {0.5}))

