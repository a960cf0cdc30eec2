"""Forecast queries: future (id, time) rows appended to each series' history.

A query row carries no observed value. The network advances its state over the query's gap
without input and reads out the forecast there, so a forecast is a forward pass over the
history followed by the query rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smr_ts.data.frames import SeriesPanel, TimeInfo, to_panel

__all__ = ["append_queries", "check_query_times", "history_rows", "horizon_queries"]


def history_rows(panel: SeriesPanel, n_features: int):
    """A panel back to rows (ids, raw times, float32 values with NaN where unobserved)."""
    valid = panel.valid
    ids = np.repeat(panel.ids, panel.lengths)
    values = np.where(panel.value_observed, panel.values, np.nan)[valid][:, :n_features].astype(np.float32)
    return ids, panel.time[valid], values


def horizon_queries(ids: np.ndarray, times: np.ndarray, h: int, time_unit: float, info: TimeInfo):
    """The next ``h`` times of each series at its median gap (``time_unit`` where it has none).

    ``ids`` and ``times`` are history rows sorted by series, then time.
    """
    gaps = pd.Series(np.diff(times, prepend=np.nan)).where(np.r_[False, ids[1:] == ids[:-1]]).groupby(ids).median()
    last_time = pd.Series(times).groupby(ids).max()
    step = gaps.fillna(time_unit).where(gaps > 0, time_unit)
    q_ids = np.repeat(last_time.index.to_numpy(), h)
    q_times = (last_time.to_numpy()[:, None] + step.reindex(last_time.index).to_numpy()[:, None]
               * np.arange(1, h + 1)).ravel()
    if info.kind != "numeric":
        q_times = np.round(q_times).astype(np.int64)
    return q_ids, q_times


def check_query_times(q_ids, q_times, ids, times, id_col: str, time_col: str) -> None:
    """Every query must belong to a known series and come after its last history row."""
    known = pd.Index(pd.unique(ids))
    unknown = ~pd.Index(q_ids).isin(known)
    if unknown.any():
        raise ValueError(
            f"times: unknown {id_col} values {list(pd.unique(q_ids[unknown]))[:5]}: "
            "no history was fitted or given as context for them"
        )
    last_time = pd.Series(times).groupby(ids).max()
    not_after = q_times <= last_time.reindex(q_ids).to_numpy()
    if not_after.any():
        i = int(np.argmax(not_after))
        raise ValueError(
            f"times: {time_col} values must be after each series' history; "
            f"{id_col}={q_ids[i]!r} has a query at or before its last observation"
        )


def append_queries(ids, times, values, q_ids, q_times, info: TimeInfo, id_col: str, time_col: str):
    """History rows plus query rows (values NaN) as one panel; and each query's flat slot in it."""
    n_hist = len(ids)
    all_ids = np.concatenate([ids, q_ids])
    all_times = np.concatenate([times, np.asarray(q_times, times.dtype)])
    nan_rows = np.full((len(q_ids), values.shape[1]), np.nan, np.float32)
    panel = to_panel(all_ids, all_times, np.concatenate([values, nan_rows]), what="times",
                     id_col=id_col, time_col=time_col, info=info)
    pos = np.empty(len(all_ids), np.int64)
    pos[panel.rows[panel.valid]] = np.flatnonzero(panel.valid.ravel())
    return panel, pos[n_hist:]
