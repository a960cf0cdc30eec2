"""What a forecasting fit trains on: the covariates, the layout, training pairs and validation.

The forecasting counterpart of :mod:`smr_ts.regression.fit`. The estimator reads the frames and
hands in plain values (the panel, a :class:`~smr_ts.data.frames.FrameSchema`, its parameters);
these functions return what it needs, and only the estimator assigns its fitted attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import pandas as pd

from smr_ts.backbones import BACKBONES
from smr_ts.data.frames import FrameSchema, Rows, split_static_columns
from smr_ts.data.panel import FIRST_GAP, SeriesPanel, median_gap, to_panel
from smr_ts.data.times import parse_time_unit, time_difference
from smr_ts.forecasting.covariate_frames import check_covariate_columns, fit_statics, merge_static_frame, static_codes
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.intervals import calibration_source, prediction_names
from smr_ts.forecasting.layout import auto_horizon, fit_layout, trained_horizon, training_window
from smr_ts.forecasting.pairs import PairSampler, training_pairs
from smr_ts.forecasting.state import ForecastState
from smr_ts.holdout import plan_validation, validation_back
from smr_ts.training import forecast_evaluate, forecast_loss

__all__ = ["WEIGHT_AVERAGE_EPOCHS", "ForecastFit", "covariate_columns", "forecast_alias", "forecast_targets",
           "prepare"]

# A forecasting fit judges each epoch, and keeps, a running average of the weights over about this many
# epochs of steps (smr_ts.training.WeightAverage): the last steps' weights vary with the last batches,
# and that variance costs accuracy on new series (docs/results/forecasting_design.md).
WEIGHT_AVERAGE_EPOCHS = 1.0


@dataclass
class ForecastFit:
    """What a forecasting fit trains on and keeps: the state (its calibration and stream follow
    training), the training sampler, the validation batches (None: nothing held out), the loss and
    evaluation functions, and what calibrates the intervals (:func:`calibration_source`)."""

    state: ForecastState
    sampler: PairSampler
    validation: list | None
    loss: Callable
    evaluate: Callable
    calibration_source: tuple | None


def covariate_columns(values: pd.DataFrame, ids: np.ndarray, static, params: dict):
    """The fit's value columns without the static ones, the statics' one row per series (or None), and
    the names of the future-known and the static columns (``future_cols``, ``static_cols`` and the
    columns of ``fit(static=...)``)."""
    merged = []
    if static is not None:
        before = set(values.columns)
        values = merge_static_frame(values, ids, static, params["id_col"])
        merged = [c for c in values.columns if c not in before]
    future, given = check_covariate_columns([str(c) for c in values.columns], params["future_cols"],
                                            params["static_cols"], params["target_cols"])
    static_names = given + [c for c in merged if c not in given]
    values, table = split_static_columns(values, ids, static_names, params["id_col"], "X")
    return values, table, future, static_names


DEFAULT_TARGET = "y"  # the target column's name in the Nixtla frames (unique_id, ds, y)


def forecast_targets(target_cols, future_names: list, value_columns: list) -> list:
    """``target_cols``; else ``["y"]`` when X has a ``y`` column (the others are inputs: known ahead when
    named in ``future_cols``, past-only otherwise), or its one value column that is not known ahead.
    Anything else is ambiguous, and raises: name ``target_cols``."""
    if target_cols is not None:
        return list(target_cols)
    if DEFAULT_TARGET in value_columns and DEFAULT_TARGET not in future_names:
        return [DEFAULT_TARGET]
    candidates = [c for c in value_columns if c not in future_names]
    if value_columns and not candidates:
        raise ValueError(f"future_cols={future_names} names every value column of X, so there is no target left to "
                         "forecast: leave the columns to forecast out of future_cols (or name them with target_cols)")
    if len(candidates) > 1:
        raise ValueError(f"X has no 'y' column and several value columns {candidates}: name the ones to forecast "
                         f"with target_cols (e.g. target_cols={candidates[:1]}); the others are then inputs")
    return candidates


def forecast_alias(alias, backbone: str, schema: FrameSchema) -> str:
    """The name of a forecasting fit's prediction columns: ``alias``, or the backbone's (``"S5"``). A name
    that is also a column of the training frame would stand for both the truth and the forecast in a
    backtest, so it raises."""
    alias = BACKBONES[backbone].alias if alias is None else alias
    taken = {c for c in (schema.id_col, schema.time_col, *schema.value_columns, *schema.static_names) if c is not None}
    clash = sorted(taken.intersection(prediction_names(alias, schema.target_names)))
    if clash:
        raise ValueError(f"alias={alias!r} names the forecast column {clash[0]!r}, which is a column of X: forecasts "
                         "would share the name of the truth; choose another alias (or rename that column)")
    return alias


def prepare(panel: SeriesPanel, static_table, validation: Rows | None, schema: FrameSchema, time_unit: float,
            params: dict, loss: str, seed: int, device) -> ForecastFit:
    """Fix the layout of a forecasting fit on ``panel`` (the training frame's value columns) and draw what
    it trains on (see :class:`ForecastFit`); ``validation``: ``validation_data``'s rows, or None."""
    gap = median_gap(panel)
    horizon = parse_time_unit(params["horizon"], schema.time_info, "horizon")
    horizon = auto_horizon(panel, gap) if horizon is None else trained_horizon(panel, horizon)
    columns = schema.value_columns
    spec, statics = fit_statics(static_table)
    plan = plan_validation(len(panel.ids), seed, given=validation is not None, forecasting=True,
                           validation_fraction=params["validation_fraction"], validation_by=params["validation_by"])
    until = None  # the detected period reads no validating row: neither held-out series nor last parts
    if plan.kind == "time":
        span = time_difference(panel.last_times, panel.time[:, 0])
        until = span - validation_back(span, horizon, plan.fraction)
    elif plan.kind == "series":
        until = np.full(len(panel.ids), np.inf)
        until[plan.held_out] = -np.inf
    layout = fit_layout(panel, [columns.index(c) for c in schema.target_names], time_unit, horizon,
                        schema.time_info.kind, gap, future_index=[columns.index(c) for c in schema.future_names],
                        static_spec=spec, detect_until=until)
    data = forecast_tensors(panel, layout, FIRST_GAP, static=static_codes(statics, spec, panel.ids))
    val_data = None
    if validation is not None:
        val_panel = to_panel(validation.ids, validation.times, validation.values, what="validation_data",
                             id_col=schema.id_col, time_col=schema.time_col, info=schema.time_info)
        val_data = forecast_tensors(val_panel, layout, FIRST_GAP,
                                    static=static_codes(statics, spec, val_panel.ids, validation.statics))
    sampler, val_batches = training_pairs(data, layout, plan, val_data, window=training_window(layout, gap),
                                          batch_size=params["batch_size"], device=device,
                                          rng=np.random.default_rng(seed + 2))
    # forecasts continue every training series from its last row
    return ForecastFit(ForecastState(layout, panel, statics), sampler, val_batches, partial(forecast_loss, kind=loss),
                       forecast_evaluate, calibration_source(data, layout, plan, val_data))
