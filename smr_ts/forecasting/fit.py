"""What a forecasting fit trains on: the layout, covariates, training pairs and validation.

The forecasting counterpart of :mod:`smr_ts.regression.fit`: the estimator calls
:func:`forecast_data` with itself, so that what it fixes (``layout_``, ``horizon_``,
``history_panel_``, the static encodings) becomes its fitted attributes.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from smr_ts.data.panel import FIRST_GAP, SeriesPanel, median_gap, to_panel
from smr_ts.data.times import parse_time_unit
from smr_ts.forecasting.covariate_frames import (
    check_covariate_columns, fit_statics, merge_static_frame, split_static, static_codes,
)
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.intervals import calibration_source
from smr_ts.forecasting.layout import auto_horizon, fit_layout, training_window
from smr_ts.forecasting.pairs import training_pairs
from smr_ts.training import forecast_evaluate, forecast_loss

__all__ = ["covariates_at_fit", "forecast_data", "forecast_targets"]


def covariates_at_fit(est, values, ids, static):
    """The fit's value columns without the static ones; records ``future_names_`` and ``static_names_`` and
    returns the statics' one row per series (or None)."""
    static_names = []
    if static is not None:
        before = set(values.columns)
        values = merge_static_frame(values, ids, static, est.id_col)
        static_names = [c for c in values.columns if c not in before]
    future, given = check_covariate_columns(est, [str(c) for c in values.columns])
    est.future_names_ = future
    est.static_names_ = given + [c for c in static_names if c not in given]
    values, table = split_static(values, ids, est.static_names_, est.id_col, "X")
    return values, table


def forecast_targets(est, value_columns: list) -> list:
    """``target_cols``, or every value column that is not a future-known input."""
    if est.target_cols is not None:
        return list(est.target_cols)
    future = list(getattr(est, "future_names_", ()))
    targets = [c for c in value_columns if c not in future]
    if value_columns and not targets:
        raise ValueError(f"future_cols={future} names every value column of X, so there is no target left to "
                         "forecast: leave the columns to forecast out of future_cols (or name them with target_cols)")
    return targets


def forecast_data(est, panel: SeriesPanel, static_table, validation_data, seed: int, device):
    """Fix ``est``'s forecasting layout and return (training sampler, validation batches or None, loss
    function, evaluation function); keeps what calibrates the intervals in ``est._calibration_source``."""
    est.history_panel_ = panel  # forecasts continue every training series from its last row
    gap = median_gap(panel)
    horizon = parse_time_unit(est.horizon, est.time_info_, "horizon")
    est.horizon_ = auto_horizon(panel, gap) if horizon is None else horizon
    columns = est.value_columns_
    est.layout_ = fit_layout(panel, [columns.index(c) for c in est.target_names_], est.time_unit_, est.horizon_,
                             est.time_info_.kind, gap, future_index=[columns.index(c) for c in est.future_names_],
                             static_spec=fit_statics(est, static_table))
    data = forecast_tensors(panel, est.layout_, FIRST_GAP, static=static_codes(est, panel.ids))
    val_data = None
    if validation_data is not None:
        tables = []
        ids, times, values = est._read_known(validation_data, "validation_data", np.float64, static_out=tables)
        val_panel = to_panel(ids, times, values, what="validation_data", id_col=est.id_col, time_col=est.time_col,
                             info=est.time_info_)
        val_data = forecast_tensors(val_panel, est.layout_, FIRST_GAP, static=static_codes(est, val_panel.ids, *tables))
    train_idx, val_idx = est._split(len(panel.ids), seed, val_data is not None)
    sampler, val_batches = training_pairs(
        data, est.layout_, train_idx, val_idx, val_data, validation_fraction=est.validation_fraction,
        window=training_window(est.layout_, gap), batch_size=est.batch_size, device=device,
        rng=np.random.default_rng(seed + 2))
    est._calibration_source = calibration_source(data, est.layout_, val_idx, val_data, est.validation_fraction)
    return sampler, val_batches, partial(forecast_loss, kind=est.loss_), forecast_evaluate
