"""Forecast queries: the future (id, time) rows a forecast is asked for, checked against the history.

A forecast runs the network over each series' history once and answers every query of that
series from its last row (:func:`smr_ts.model.predict_queries`), so queries never change each
other's answers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from smr_ts.data.frames import SeriesPanel, split_frame
from smr_ts.data.times import TimeInfo, check_time_kind, plain, time_difference

__all__ = ["check_query_times", "history_rows", "horizon_queries", "never_observed", "read_queries",
           "warn_never_observed", "warn_past_horizon"]


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


def warn_past_horizon(ahead: np.ndarray, horizon: float, parameter, info: TimeInfo) -> None:
    """Warn, naming ``horizon``, when a query lies further after its series' last row than training covered."""
    furthest = float(np.max(ahead)) if len(ahead) else 0.0
    if furthest <= horizon * (1 + 1e-9):
        return
    show = (lambda v: str(pd.Timedelta(round(v), unit="ns"))) if info.kind != "numeric" else (lambda v: f"{v:.6g}")
    warnings.warn(
        f"forecasting up to {show(furthest)} after a series' last row, but training covered {show(horizon)} "
        f"(horizon={parameter!r}): forecasts past it are extrapolation. Fit with horizon= the longest time "
        "ahead you will ask for.", UserWarning, stacklevel=4)
