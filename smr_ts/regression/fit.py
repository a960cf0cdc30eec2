"""What a sequence-regression fit trains on: scalers, training and validation series, batches.

Sequence regression (``fit(X, y)``) scores whole series at every row with a target
(:mod:`smr_ts.regression.windows`); forecasting prepares (cut, query) pairs instead
(:mod:`smr_ts.forecasting.pairs`). The estimator reads the frames and hands in plain values;
:func:`prepare` returns the scalers it fits with what training needs, and the estimator keeps
them as its fitted attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import pandas as pd

from smr_ts.data.frames import FrameSchema, Rows, as_target_frame
from smr_ts.data.panel import SeriesPanel, to_panel
from smr_ts.holdout import plan_validation
from smr_ts.regression.scaling import column_moments, identity_moments
from smr_ts.regression.windows import Scaling, WindowSampler, panel_tensors
from smr_ts.training import batch_loss, evaluate

__all__ = ["RegressionFit", "prepare", "r2", "validation_panel"]


@dataclass
class RegressionFit:
    """What a regression fit trains on and keeps: the scalers, the training sampler, the validation batches
    (None: nothing held out), the loss and evaluation functions."""

    scaling: Scaling
    sampler: WindowSampler
    validation: list | None
    loss: Callable
    evaluate: Callable


def prepare(panel: SeriesPanel, features: np.ndarray, targets: np.ndarray, validation: SeriesPanel | None,
            time_unit: float, params: dict, loss: str, seed: int, device) -> RegressionFit:
    """Fit the scalers on the training series of ``panel`` ([features, targets] per row; ``features`` and
    ``targets`` are X's and y's rows) and draw the batches; ``validation``: validation_data's panel."""
    plan = plan_validation(len(panel.ids), seed, given=validation is not None, forecasting=False,
                           validation_fraction=params["validation_fraction"])
    train_idx, val_idx = plan.train, plan.held_out
    rows = panel.rows[train_idx][panel.valid[train_idx]]  # the training series' rows of X: validation stays unseen
    cnn = params["encoder"] == "cnn"  # images are fed as they are
    feature_mean, feature_scale = identity_moments(features.shape[1]) if cnn else column_moments(features[rows])
    scaling = Scaling(feature_mean, feature_scale, *column_moments(targets[rows]), time_unit)
    tensors = panel_tensors(panel, scaling)
    train_set = {k: v[train_idx] for k, v in tensors.items()}
    val_set = panel_tensors(validation, scaling) if validation is not None else (
        {k: v[val_idx] for k, v in tensors.items()} if len(val_idx) else None)
    sampling = dict(batch_size=32 if params["batch_size"] == "auto" else params["batch_size"], device=device)
    val_batches = WindowSampler(val_set, **sampling).fixed() if val_set else None
    return RegressionFit(scaling, WindowSampler(train_set, **sampling), val_batches, partial(batch_loss, kind=loss),
                         partial(evaluate, target_scale=scaling.target_scale, gaussian=loss == "gaussian"))


def validation_panel(rows: Rows, X_val, y_val, schema: FrameSchema) -> SeriesPanel:
    """``fit(X, y, validation_data=(X_val, y_val))``'s pair as a panel of [features, targets] (``rows``: X_val
    read for the fitted model)."""
    index = X_val.index if isinstance(X_val, pd.DataFrame) else pd.RangeIndex(len(rows.values))
    targets, _ = as_target_frame(y_val, index, len(rows.values))
    return to_panel(rows.ids, rows.times, np.concatenate([rows.values, targets], 1), what="validation_data",
                    id_col=schema.id_col, time_col=schema.time_col, info=schema.time_info)


def r2(predict: Callable, X, y, sample_weight=None) -> float:
    """R^2 of ``predict(X)`` against ``y`` (aligned as at fit), as for every scikit-learn regressor."""
    from sklearn.metrics import r2_score

    if y is None:
        raise ValueError("score(X, y): this model was fitted with y (sequence regression), so y is required")
    pred = predict(X)
    y_arr, _ = as_target_frame(y, X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(y)), len(y))
    pred_arr = np.asarray(pred, dtype=np.float64).reshape(len(y_arr), -1)
    return r2_score(y_arr, pred_arr, sample_weight=sample_weight)
