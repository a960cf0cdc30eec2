"""Covariates of a forecast: future-known columns, read at the query, and static columns, per series.

Three kinds of inputs besides the targets (``docs/estimator.md#covariates``):

- **past-only** value columns are observed in the history only: the backbone reads them at the
  rows where they were observed, and their values in query rows are ignored;
- **future-known** columns (``future_cols``) are also value columns the backbone reads, and their
  values in query rows are inputs too: a planned dose, a weather forecast, a holiday flag. A
  query reads them through a **track** per series: the history's rows and the query frame's rows,
  in time order. For each such column, a query at time ``t`` gets

  - the latest known value at or before ``t`` (standardised) and how long ago it was known;
  - leaky sums ``S_tau(t) = (1 / tau) * sum_i x_i * exp(-(t - t_i) / tau)`` over the known values
    ``x_i`` at times ``t_i <= t`` (in units of the column's root mean square), for time constants
    ``tau`` of ``TIME_CONSTANTS`` time units: the state of a linear first-order system the column
    drives, such as a drug's concentration after doses;
  - and the part of each sum that arrived after the anchor (the last observed target),
    ``S_tau(t) - S_tau(t_a) * exp(-(t - t_a) / tau)``: what moved the target since it was last seen;
  - and per calendar period in use, the latest value's change from the mean of the latest values at
    the season times the target's seasonal lags read (``smr_ts.forecasting.queries._season_times``): the
    temperature now against the same hours of the last three days, next to the demand then.

  Training reads the same features from the training rows, so the model learns them on the
  history, where every value is known, as a forecast reads them from the query frame;
- **static** columns (``static_cols``, or a frame given to ``fit(static=...)``) hold one value per
  series: numeric ones are standardised, others one-hot encoded over the categories seen at fit
  (an unseen category encodes as zeros). Every query of the series reads them.

The pandas side (which columns are covariates, the static columns of given rows) is in
:mod:`smr_ts.forecasting.covariate_frames` and :func:`smr_ts.data.frames.known_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TIME_CONSTANTS", "FutureTrack", "encode_static", "fit_static_spec", "future_features", "future_scales",
           "future_track", "n_future_features", "rows_at_or_before", "static_width"]

TIME_CONSTANTS = (1.0, 4.0, 16.0)  # leaky sums' time constants, in time units (median gaps by default)


@dataclass
class FutureTrack:
    """The known rows of the future-known columns, per series, sorted by time."""

    time: np.ndarray  # (S, M) float64 relative times (+inf past each series' length)
    lengths: np.ndarray  # (S,) rows per series
    value: np.ndarray  # (S, M, F) float64 standardised values, NaN where not known
    last: np.ndarray  # (S, M, F) int64 the latest row at or before each row where the column is known (-1: none)
    sums: np.ndarray  # (S, M, F, K) float64 leaky sums at each row (after its value)

    def take(self, idx) -> "FutureTrack":
        return FutureTrack(**{name: value[idx] for name, value in vars(self).items()})


def n_future_features(n_future: int, n_changes: int = 0) -> int:
    """Query features per layout: for each future-known column, its latest value, the time since it,
    two leaky sums per time constant, and ``n_changes`` changes (from each calendar period's seasons;
    0 for models saved before them)."""
    return n_future * (2 + 2 * len(TIME_CONSTANTS) + n_changes)


def future_scales(values: np.ndarray, observed: np.ndarray) -> tuple[list, list, list]:
    """Per future-known column (rows (n, F)): mean and standard deviation (for the latest value) and root
    mean square (for the sums) of its known values; 1 where a spread is 0 or undefined."""
    center, spread, rms = [], [], []
    for j in range(values.shape[1]):
        x = values[observed[:, j], j].astype(np.float64)
        mean = float(x.mean()) if len(x) else 0.0
        std = float(x.std()) if len(x) > 1 else 0.0
        root = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
        center.append(mean)
        spread.append(std if std > 0 and np.isfinite(std) else 1.0)
        rms.append(root if root > 0 and np.isfinite(root) else 1.0)
    return center, spread, rms


def future_track(time: np.ndarray, values: np.ndarray, lengths: np.ndarray, layout) -> FutureTrack:
    """The track of rows ``(S, M)`` at relative ``time`` with raw future-known ``values`` (S, M, F), NaN
    where not known, padded past ``lengths``."""
    s, m, f = values.shape
    valid = np.arange(m)[None, :] < lengths[:, None]
    time = np.where(valid, time, np.inf)
    known = np.isfinite(values) & valid[..., None]
    center, spread, rms = (np.asarray(getattr(layout, a), np.float64) for a in ("future_center", "future_spread",
                                                                                   "future_rms"))
    value = np.where(known, (values - center) / spread, np.nan)
    steps = np.arange(m)[None, :, None]
    last = np.maximum.accumulate(np.where(known, steps, -1), axis=1)
    x = np.where(known, values / rms, 0.0)
    taus = np.asarray(TIME_CONSTANTS) * layout.time_unit
    sums = np.zeros((s, m, f, len(taus)))
    carry = np.zeros((s, f, len(taus)))
    finite = np.where(valid, time, 0.0)
    for i in range(m):
        gap = np.where(valid[:, i], finite[:, i] - finite[:, i - 1], 0.0) if i else np.zeros(s)
        decay = np.exp(-gap[:, None, None] / taus)
        carry = carry * decay + x[:, i, :, None] / np.asarray(TIME_CONSTANTS)
        sums[:, i] = carry
    return FutureTrack(time=time, lengths=np.asarray(lengths, np.int64), value=value, last=last, sums=sums)


def rows_at_or_before(time: np.ndarray, lengths: np.ndarray, series: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per query, the last row of its series (rows ``time`` (S, L) sorted, ``lengths`` (S,)) at or before
    ``t`` (-1 if none): a binary search run for all queries at once, O(P log L)."""
    lo, hi = np.zeros(len(series), np.int64), lengths[series].astype(np.int64)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        active = lo < hi
        right = active & (time[series, np.minimum(mid, time.shape[1] - 1)] <= t)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return lo - 1


def _sums_at(track: FutureTrack, series, t, unit: float, row: np.ndarray | None = None) -> np.ndarray:
    """(P, F, K) the leaky sums at times ``t``: the latest row's sums (``row``, searched when not given)
    decayed over the time since it."""
    row = rows_at_or_before(track.time, track.lengths, series, t) if row is None else row
    sums = track.sums[series, np.maximum(row, 0)]
    since = np.where(row >= 0, t - track.time[series, np.maximum(row, 0)], 0.0)
    decay = np.exp(-since[:, None, None] / (np.asarray(TIME_CONSTANTS) * unit))
    return np.where((row >= 0)[:, None, None], sums * decay, 0.0)


def _latest(track: FutureTrack, series: np.ndarray, t: np.ndarray, row: np.ndarray | None = None):
    """(P, F) the latest known (standardised) value of each column at or before ``t`` (NaN: none) and its time."""
    row = rows_at_or_before(track.time, track.lengths, series, t) if row is None else row
    last = np.where((row >= 0)[:, None], track.last[series, np.maximum(row, 0)], -1)  # (P, F)
    cols = np.arange(last.shape[1])[None, :]
    value = np.where(last >= 0, track.value[series[:, None], np.maximum(last, 0), cols], np.nan)
    when = np.where(last >= 0, track.time[series[:, None], np.maximum(last, 0)], np.nan)
    return value, when


def future_features(track: FutureTrack, layout, series: np.ndarray, t_anchor: np.ndarray,
                    t_query: np.ndarray, ratio: np.ndarray, seasons=()) -> np.ndarray:
    """(P, n_future_features) what the future-known columns say about queries at relative ``t_query``
    of ``series`` whose anchors were observed at ``t_anchor`` (see the module docstring)."""
    unit = layout.time_unit
    row = rows_at_or_before(track.time, track.lengths, series, t_query)
    latest, when = _latest(track, series, t_query, row)
    since = t_query[:, None] - when
    age = np.where(np.isfinite(since), np.log1p(np.maximum(since, 0) / unit), -1.0)  # -1: never known
    now = _sums_at(track, series, t_query, unit, row)
    t_anchor = np.where(np.isfinite(t_anchor), np.minimum(t_anchor, t_query), t_query)
    before = _sums_at(track, series, t_anchor, unit)
    carried = before * np.exp(-(t_query - t_anchor)[:, None, None] / (np.asarray(TIME_CONSTANTS) * unit))
    arrived = (now - carried).reshape(len(series), -1) * ratio[:, None]
    changes = []
    if layout.future_changes:
        for times in seasons:  # per period: the change from the mean of the seasons the target's lags read
            past = np.stack([_latest(track, series, t)[0] for t in times])
            found = np.isfinite(past)
            mean = np.where(found, past, 0.0).sum(0) / np.maximum(found.sum(0), 1)
            changes.append(np.where(found.any(0) & np.isfinite(latest), latest - mean, 0.0))
    return np.concatenate([np.nan_to_num(latest), age, now.reshape(len(series), -1), arrived, *changes],
                          -1).astype(np.float32)


def fit_static_spec(table: pd.DataFrame) -> list:
    """How each static column is encoded (JSON-able): numeric ``[name, "numeric", mean, std]``, other
    ``[name, "category", [level, ...]]`` (levels as strings, sorted)."""
    spec = []
    for name in table.columns:
        column = table[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            x = column.to_numpy(np.float64)
            x = x[np.isfinite(x)]
            mean = float(x.mean()) if len(x) else 0.0
            std = float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0
            spec.append([str(name), "numeric", mean, std])
        else:
            spec.append([str(name), "category", sorted({str(v) for v in column.dropna()})])
    return spec


def static_width(spec: list) -> int:
    return sum(1 if kind == "numeric" else len(rest[0]) for _, kind, *rest in spec)


def encode_static(table: pd.DataFrame, spec: list) -> np.ndarray:
    """(S, static_width) float32 encoding of one row per series (missing numerics: 0, the mean)."""
    parts = []
    for name, kind, *rest in spec:
        column = table[name]
        if kind == "numeric":
            mean, std = rest
            x = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
            parts.append(np.nan_to_num((x - mean) / std)[:, None])
        else:
            labels = column.map(lambda v: None if pd.isna(v) else str(v)).to_numpy(object)
            parts.append(np.stack([labels == level for level in rest[0]], -1) if rest[0] else np.zeros((len(table), 0)))
    return np.concatenate(parts, -1).astype(np.float32) if parts else np.zeros((len(table), 0), np.float32)
