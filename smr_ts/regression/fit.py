"""What a sequence-regression fit trains on: scalers, training and validation series, batches.

Sequence regression (``fit(X, y)``) scores whole series at every row with a target
(:mod:`smr_ts.regression.windows`); forecasting prepares (cut, query) pairs instead
(:mod:`smr_ts.forecasting.pairs`). The estimator calls :func:`regression_data` with itself, so that
the scalers it fits become its fitted attributes.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from smr_ts.data.frames import as_target_frame
from smr_ts.data.panel import SeriesPanel, to_panel
from smr_ts.regression.scaling import column_moments, identity_moments
from smr_ts.regression.windows import WindowSampler, panel_tensors
from smr_ts.training import batch_loss, evaluate

__all__ = ["regression_data", "regression_score", "validation_panel"]


def regression_data(est, panel: SeriesPanel, features, targets, validation_data, seed: int, device):
    """Fit ``est``'s scalers (``feature_mean_``, ``feature_scale_``, ``target_mean_``, ``target_scale_``)
    and return (training sampler, validation batches or None, loss function, evaluation function)."""
    val_panel = None if validation_data is None else validation_panel(est, validation_data)
    train_idx, val_idx = est._split(len(panel.ids), seed, val_panel is not None)
    rows = panel.rows[train_idx][panel.valid[train_idx]]  # the training series' rows of X: validation stays unseen
    cnn = est.encoder == "cnn"  # images are fed as they are
    est.feature_mean_, est.feature_scale_ = (identity_moments(features.shape[1]) if cnn
                                             else column_moments(features[rows]))
    est.target_mean_, est.target_scale_ = column_moments(targets[rows])
    tensors = panel_tensors(panel, est._scaling())
    train_set = {k: v[train_idx] for k, v in tensors.items()}
    val_set = panel_tensors(val_panel, est._scaling()) if val_panel is not None else (
        {k: v[val_idx] for k, v in tensors.items()} if len(val_idx) else None)
    sampling = dict(batch_size=32 if est.batch_size == "auto" else est.batch_size, device=device)
    val_batches = WindowSampler(val_set, **sampling).fixed() if val_set else None
    loss = partial(batch_loss, kind=est.loss_)
    return (WindowSampler(train_set, **sampling), val_batches, loss,
            partial(evaluate, target_scale=est.target_scale_, gaussian=est.loss_ == "gaussian"))


def validation_panel(est, validation_data) -> SeriesPanel:
    """``fit(X, y, validation_data=(X_val, y_val))``'s pair as a panel of [features, targets]."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise ValueError("validation_data must be a pair (X_val, y_val) when fit gets y")
    X_val, y_val = validation_data
    ids, times, features = est._read_known(X_val, "validation_data")
    index = X_val.index if isinstance(X_val, pd.DataFrame) else pd.RangeIndex(len(features))
    targets, _ = as_target_frame(y_val, index, len(features))
    return to_panel(ids, times, np.concatenate([features, targets], 1), what="validation_data",
                    id_col=est.id_col, time_col=est.time_col, info=est.time_info_)


def regression_score(est, X, y, sample_weight=None) -> float:
    """R^2 of ``est.predict(X)`` against ``y`` (aligned as at fit), as for every scikit-learn regressor."""
    from sklearn.metrics import r2_score

    if y is None:
        raise ValueError("score(X, y): this model was fitted with y (sequence regression), so y is required")
    pred = est.predict(X)
    y_arr, _ = as_target_frame(y, X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(y)), len(y))
    pred_arr = np.asarray(pred, dtype=np.float64).reshape(len(y_arr), -1)
    return r2_score(y_arr, pred_arr, sample_weight=sample_weight)
