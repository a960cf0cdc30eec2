"""Forecast queries: the future (id, time) rows a forecast is asked for, and what the head reads of each.

A forecast runs the network over each series' history once and answers every query of that
series from its last row (:func:`smr_ts.forecasting.predict.predict_queries`), so queries never change each
other's answers.

:func:`query_features` turns a query into the head's inputs: its calendar phases, how far ahead
it is, how long since each anchor, the season-ago values, the seasonal profile and the covariates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from smr_ts.data.frames import split_frame
from smr_ts.data.panel import SeriesPanel
from smr_ts.data.times import TimeInfo, check_time_kind, plain, show_duration, time_difference
from smr_ts.forecasting.covariates import future_features, rows_at_or_before
from smr_ts.forecasting.features import ForecastTensors, phase_features
from smr_ts.forecasting.layout import AHEAD_PERIODS, ForecastLayout
from smr_ts.forecasting.profile import profile_changes

__all__ = ["check_query_times", "history_rows", "horizon_queries", "never_observed", "query_features", "read_queries",
           "warn_never_observed", "warn_past_horizon"]


_SEASONS = 3  # seasons averaged in the seasonal-lag features
_MAX_LOG_RATIO = 3.0  # the recent scale's log ratio to the scale is clipped to this (a factor of 20)


def _latest_at(data: ForecastTensors, series, t) -> np.ndarray:
    """(P, T) the latest observed targets at or before relative times ``t`` of ``series``, NaN where
    there is none (a row's anchor is the latest observation at or before it)."""
    row = rows_at_or_before(data.time, data.lengths, series, t)
    return np.where((row >= 0)[:, None], data.anchor[series, np.maximum(row, 0)], np.nan)


def _season_times(data: ForecastTensors, layout: ForecastLayout, series, k, t_query) -> list:
    """Per period p of the layout, the (``_SEASONS``, P) times ``t_query - (n + m) * p``, m < ``_SEASONS``, with the
    smallest n >= 1 that keeps them at or before the cut (row ``k``): the seasons the lag features read."""
    t_cut = data.time[series, k]
    out = []
    for p in layout.periods:
        n = np.maximum(1.0, np.ceil((t_query - t_cut) / p))
        out.append(np.stack([t_query - (n + m) * p for m in range(_SEASONS)]))
    return out


def _seasonal_lags(data: ForecastTensors, series, k, seasons: list) -> list:
    """Per period p of the layout, what the series did in the seasons before each query: the mean of
    the latest observed targets at or before the ``seasons`` times (:func:`_season_times`), as a
    change from the anchor in the cut's scale, and the share of those seasons that had an
    observation. (A mean over seasons, not the seasonal-naive value alone: on noisy counts one
    season ago overfits.)"""
    anchor, scale = data.anchor[series, k], data.scale[series, k]
    parts = []
    for times in seasons:
        values = np.stack([_latest_at(data, series, t) for t in times])
        found = np.isfinite(values)
        mean = np.where(found, values, 0.0).sum(0) / np.maximum(found.sum(0), 1)
        parts += [np.nan_to_num(np.where(found.any(0), (mean - anchor) / scale, 0.0)), found.mean(0)]
    return parts


def _scale_ratio(data: ForecastTensors, layout: ForecastLayout, series, k) -> np.ndarray:
    """(P,) the first target's typical scale over the series' scale at rows ``k``, clipped to [0.1, 10]."""
    return np.clip(layout.fallback[layout.target_index[0]] / data.scale[series, k, 0], 0.1, 10.0)


def _level_features(data: ForecastTensors, layout: ForecastLayout, series, k, ratio=None) -> np.ndarray:
    """(P, 3) for models with future-known columns fitted on several series: the series' typical scale over
    its own (clipped to [0.1, 10]), the anchor's level standardised over the training rows, and their product. An
    input moves a target by an amount in the target's units, which is that amount over the series' scale
    in the scaled units the head predicts in, and often in proportion to the level (a concentration decays
    towards zero, not towards its few observations' mean). Not used on a single series, where the level
    relative to its own past drifts with the season, nor for static columns alone, where it lets the network
    fit growth by size (docs/results/forecasting_design.md)."""
    ratio = _scale_ratio(data, layout, series, k) if ratio is None else ratio
    mean, std = layout.target_moments
    z = np.nan_to_num((data.anchor[series, k, 0] - mean) / std)
    return np.stack([ratio, z, ratio * z], -1)


def query_features(data: ForecastTensors, layout: ForecastLayout, series: np.ndarray, k: np.ndarray,
                   t_query: np.ndarray) -> np.ndarray:
    """(P, n_qf) features of queries at relative times ``t_query`` continued from rows ``k`` of ``series``:
    the log of the recent scale over the scale at the cut, clipped to +-3 (layouts with the scale gate: first,
    per target, for the gate of :class:`~smr_ts.model.ForecastNetwork`), the query's calendar phases, how far
    ahead it is, how long since each anchor, the gap from the anchor to the series' mean, the season-ago values (:func:`_seasonal_lags`), the seasonal profile's change
    from the anchor (:mod:`smr_ts.forecasting.profile`; layouts fitted since it), and the covariates
    (:mod:`smr_ts.forecasting.covariates`)."""
    ahead = t_query - data.time[series, k]
    since_anchor = t_query[:, None] - data.anchor_time[series, k]
    gap_to_mean = (data.mean[series, k] - data.anchor[series, k]) / data.scale[series, k]
    seasons = _season_times(data, layout, series, k, t_query)
    parts = [np.clip(np.log(data.recent[series, k] / data.scale[series, k]), -_MAX_LOG_RATIO, _MAX_LOG_RATIO)
             if layout.scale_gate else np.zeros((len(series), 0))]
    parts += [
        phase_features(t_query + data.origin, layout.periods),
        np.log1p(np.maximum(ahead, 0) / layout.time_unit)[:, None],
        (ahead / layout.horizon)[:, None],
        phase_features(ahead / layout.time_unit, list(AHEAD_PERIODS)),
        np.log1p(np.nan_to_num(np.maximum(since_anchor, 0), nan=0.0) / layout.time_unit),
        np.nan_to_num(gap_to_mean, nan=0.0),
        *_seasonal_lags(data, series, k, seasons),
    ]
    if layout.profile_changes:
        parts += profile_changes(data, layout, series, k, t_query)
    ratio = _scale_ratio(data, layout, series, k) if layout.target_moments or data.track is not None else None
    if layout.target_moments:  # the covariates' features come last: the head's linear path reads them
        parts.append(_level_features(data, layout, series, k, ratio))
    if data.track is not None:
        parts.append(future_features(data.track, layout, series, data.anchor_time[series, k, 0], t_query, ratio,
                                     seasons=seasons))
    if data.static is not None:
        parts.append(data.static[series])
    return np.concatenate(parts, -1).astype(np.float32)


def history_rows(panel: SeriesPanel, n_features: int):
    """A panel back to rows (ids, raw times, values in the panel's dtype with NaN where unobserved)."""
    valid = panel.valid
    ids = np.repeat(panel.ids, panel.lengths)
    values = np.where(panel.value_observed, panel.values, np.nan)[valid][:, :n_features]
    return ids, panel.time[valid], values


def horizon_queries(ids: np.ndarray, times: np.ndarray, h: int, time_unit: float, info: TimeInfo):
    """The next ``h`` times of each series at its median gap (``time_unit`` where it has none).

    ``ids`` and ``times`` are history rows sorted by series, then time. Integer raw times stay
    integers, added exactly to each series' last time: datetimes step ``k`` median gaps rounded to
    the nanosecond; integer numbers step by the median gap rounded half up to a whole number (at
    least 1), so their steps are even.
    """
    gaps = np.full(len(times), np.nan)
    gaps[1:] = time_difference(times[1:], times[:-1])  # in int64 first: integers near 1e17 keep their gaps
    gaps = pd.Series(gaps).where(np.r_[False, ids[1:] == ids[:-1]]).groupby(ids).median()
    last_time = pd.Series(times).groupby(ids).max()
    step = gaps.fillna(time_unit).where(gaps > 0, time_unit).reindex(last_time.index).to_numpy()
    q_ids = np.repeat(last_time.index.to_numpy(), h)
    last, k = last_time.to_numpy(), np.arange(1, h + 1)
    if last.dtype.kind not in "iu":
        return q_ids, (last[:, None] + step[:, None] * k).ravel()
    if info.kind == "numeric":  # even steps of whole numbers: the median gap rounded half up, at least 1
        offsets = np.maximum(np.floor(step + 0.5), 1.0)[:, None] * k
    else:
        offsets = np.round(step[:, None] * k)
    limit = np.iinfo(np.int64).max if info.kind == "numeric" else pd.Timestamp.max.value
    if len(last) and (offsets[:, -1] > float(limit) - last.astype(np.float64)).any():  # int64 would wrap around
        if info.kind == "numeric":
            raise ValueError(f"forecast(h={h}) would step past {limit}, the largest int64 time; ask for fewer "
                             "steps, or give the times relative to a start")
        raise ValueError(f"forecast(h={h}) would reach past {pd.Timestamp.max:%Y-%m-%d}, the last nanosecond "
                         "datetime; ask for fewer steps, or fit on numeric times")
    return q_ids, (last.astype(np.int64)[:, None] + offsets.astype(np.int64)).ravel()


def read_queries(times, fitted: TimeInfo, ids, hist_times, id_col: str, time_col: str, what: str = "times"):
    """The (id, time) rows of a query frame, checked against the fitted time kind and the history.

    Returns ``(q_ids, q_times)`` with raw times (see :func:`smr_ts.data.frames.split_frame`).
    """
    if not isinstance(times, pd.DataFrame):
        columns = f"columns {id_col!r} and {time_col!r}" if id_col is not None else f"a column {time_col!r}"
        raise TypeError(f"{what} must be a DataFrame with {columns}, got {type(times).__name__}")
    q_ids, q_times, info, _ = split_frame(times, id_col, time_col, what=what)
    check_time_kind(info, fitted, time_col, what)
    check_query_times(q_ids, q_times, ids, hist_times, id_col, time_col, what)
    return q_ids, q_times


def check_query_times(q_ids, q_times, ids, times, id_col: str, time_col: str, what: str = "times") -> None:
    """Every query must belong to a known series and come after its last history row.

    ``what`` names the argument the queries came in: ``times`` of ``forecast``, or ``X`` of
    ``predict`` in forecasting mode.
    """
    known = pd.Index(pd.unique(ids))
    unknown = ~pd.Index(q_ids).isin(known)
    if unknown.any():
        raise ValueError(
            f"{what}: unknown {id_col} values {list(pd.unique(q_ids[unknown]))[:5]}: "
            "no history was fitted or given as context for them"
        )
    last_time = pd.Series(times).groupby(ids).max()
    not_after = q_times <= last_time.reindex(q_ids).to_numpy()
    if not_after.any():
        i = int(np.argmax(not_after))
        hint = ("; in forecasting mode predict(X) forecasts at X's (id, time) rows, so X holds future times, "
                "not the history" if what == "X" else "")
        raise ValueError(
            f"{what}: {time_col} values must be after each series' history; "
            f"{_series(id_col, q_ids[i])} has a query at or before its last observation{hint}"
        )


def _series(id_col, value) -> str:
    """How a message names a series: ``unique_id='a'``, or "the series" with ``id_col=None``."""
    return "the series" if id_col is None else f"{id_col}={plain(value)!r}"


def never_observed(data) -> np.ndarray:
    """(S, T): whether each series of ``data`` has no observed value of each target in its history
    (no anchor at its last row): its forecasts of that target are NaN."""
    return ~np.isfinite(data.anchor[np.arange(len(data.lengths)), data.lengths - 1])


def warn_never_observed(ids, lacking: np.ndarray, target_names: list, id_col: str) -> None:
    """One warning for the queried series ``ids`` that never observed a target (``lacking`` (n, T), see
    :func:`never_observed`): how many, which targets, and how to get forecasts of them."""
    some = lacking.any(1)
    if not some.any():
        return
    names = [name for name, hit in zip(target_names, lacking.any(0)) if hit]
    first = int(np.argmax(some))
    example = [name for name, hit in zip(target_names, lacking[first]) if hit]
    who = "the series" if id_col is None else f"{int(some.sum())} series"
    warnings.warn(
        f"{who} never observed target(s) {names}: their forecasts of those targets are NaN (for example "
        f"{_series(id_col, ids[first])} has no observed value of {example}); every other target is forecast. "
        "Once rows observing them are given (update(), or context=), they are forecast too.",
        UserWarning, stacklevel=6)


def warn_past_horizon(ahead: np.ndarray, horizon: float, parameter, info: TimeInfo, past_now=None,
                      reach: float | None = None) -> None:
    """Warn, naming ``horizon``, when a query lies past what training covered: with a given ``horizon``
    (``reach``, raw units), past the panel's "now" plus it (``past_now``: each query's time after now),
    or, for a series that ended longer before now than training stretched for
    (:func:`~smr_ts.forecasting.layout.trained_horizon`), past its last row plus the time ahead
    trained (``horizon``); with ``horizon="auto"`` (``reach`` None), further after its series' last row
    than training covered (``ahead``: each query's time after it)."""
    show = show_duration(info)
    if len(ahead) and reach is not None:
        furthest = float(np.max(past_now))
        if furthest > reach * (1 + 1e-9):
            warnings.warn(
                f"forecasting up to {show(furthest)} after the panel's last time, but horizon={parameter!r} "
                "counts from it: forecasts past it are extrapolation. Fit with horizon= the longest time "
                "ahead you will ask for.", UserWarning, stacklevel=4)
        elif float(np.max(ahead)) > horizon * (1 + 1e-9):
            warnings.warn(
                f"forecasting {show(float(np.max(ahead)))} after a series' last row, and that series ended well "
                f"before the panel's last time (horizon={parameter!r} counts from it): training covered {show(horizon)} "
                "after a series' last row, so its forecasts are extrapolation. Pass its recent rows as "
                "context= or update() it.", UserWarning, stacklevel=4)
        return
    furthest = float(np.max(ahead)) if len(ahead) else 0.0
    if furthest <= horizon * (1 + 1e-9):
        return
    warnings.warn(
        f"forecasting up to {show(furthest)} after a series' last row, but training covered {show(horizon)} "
        f"(horizon={parameter!r}): forecasts past it are extrapolation. Fit with horizon= the longest time "
        "ahead you will ask for.", UserWarning, stacklevel=4)
