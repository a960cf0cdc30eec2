"""Forecasting examples: per-series scaling, row inputs, anchors, and (cut, query) pairs in time.

A forecast continues a series from its last row (the cut) to a later time. The network reads the
history up to the cut with the backbone, once, and a head maps the backbone's output at the cut,
with what is known about the query (how far ahead it is, its calendar position), to a
correction of the **anchor**: the last observed value of each target. In the scaled units of the
series::

    forecast(t_q) = anchor_k + scale * head(h_k, features(t_q, t_k))

So carrying the last value forward is where the model starts (the head's last layer starts at
zero), and training teaches it what to add.

Everything is per series and causal, so series of very different levels train together and a
training cut sees no more than a forecast would (:func:`expanding_statistics`):

- **scale** at a row: the mean absolute change between consecutive observations of the series up
  to that row (what the scaled MAE divides by), in float64, with the training series' median
  scale as a prior and a relative floor;
- **inputs** at an observed row: the value's level ``(x - mean) / scale`` and its change since the
  previous observation ``(x - x_prev) / scale`` per value column, an observed flag, the log gap,
  and calendar features of the row's time.

Training is linear in series length: the backbone runs once over a window of rows and every row of
the window can serve as a cut, so one pass scores many (cut, query) pairs. A pair's query is a
row with an observed target; its distance ahead is drawn uniformly in time up to ``horizon``, and
the cut is the last row at least that far before it (:func:`draw_ahead`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from smr_ts.data.covariates import (
    FutureTrack, future_features, future_scales, future_track, n_future_features, rows_at_or_before, static_width,
)
from smr_ts.data.frames import SeriesPanel
from smr_ts.data.times import time_difference

__all__ = [
    "ForecastLayout", "ForecastTensors", "PairSampler", "auto_batch_size", "auto_horizon", "calendar_periods", "fit_layout",
    "forecast_tensors", "origin_pairs", "query_features", "since_origin", "training_pairs", "training_window",
    "validation_origin",
]

_AHEAD_PERIODS = (2.0, 4.0, 8.0, 16.0)  # in time units: a multi-scale basis for how far ahead a query is
_EPS_REL = 1e-10  # a scale below this fraction of the level is rounding noise, not variation
_MAX_PAIRS = 1024  # scored queries per window and pass (the longest window: every observed row)
_MIN_STEPS = 2  # optimisation steps per epoch at least: windows are drawn again from long series
_BATCH_ROWS = 8192  # rows per training batch by default (see auto_batch_size)
_SEASONS = 3  # seasons averaged in the seasonal-lag features
_COVERAGE = 8  # windows drawn from a long series per epoch, in multiples of its length
_NS_PER_DAY = 86_400e9
_CANDIDATE_PERIODS = {"day": _NS_PER_DAY, "week": 7 * _NS_PER_DAY, "year": 365.2425 * _NS_PER_DAY}


def calendar_periods(kind: str, median_gap: float, median_span: float) -> list[float]:
    """Calendar periods (raw ns) whose phase becomes an input: datetimes only, and a period only
    when the data resolve it (median gap at most a quarter of it) and the median series spans
    at least two of it."""
    if kind == "numeric":
        return []
    return [p for p in _CANDIDATE_PERIODS.values() if median_gap <= p / 4 and median_span >= 2 * p]


def _phase_features(time: np.ndarray, periods: list[float]) -> np.ndarray:
    """(..., 2 * len(periods)) sin and cos of each period's phase."""
    if not periods:
        return np.zeros(time.shape + (0,), np.float32)
    angles = [2 * np.pi * np.mod(time, p) / p for p in periods]
    return np.stack([f(a) for a in angles for f in (np.sin, np.cos)], -1).astype(np.float32)


def _last_observed_index(observed: np.ndarray) -> np.ndarray:
    """(S, L, F) index of the latest observed row at or before each row (-1 if none)."""
    steps = np.arange(observed.shape[1])[None, :, None]
    return np.maximum.accumulate(np.where(observed, steps, -1), axis=1)


def _changes(x: np.ndarray, observed: np.ndarray):
    """(S, L, F): the latest observed row at or before each row (-1 if none), whether the row is
    an observation with an earlier one, and its change since that earlier one (0 otherwise)."""
    last = _last_observed_index(observed)
    prev = np.concatenate([np.full_like(last[:, :1], -1), last[:, :-1]], axis=1)
    has_prev = observed & (prev >= 0)
    x_prev = np.take_along_axis(x, np.maximum(prev, 0), axis=1)
    return last, has_prev, np.where(has_prev, x - x_prev, 0.0)


def fallback_scales(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per column: the median over series of their scale (1 where no series has a usable one).

    A series' scale is the mean absolute change between its consecutive observations, usable
    with at least one change above ``1e-10 * |mean|``: float64 and a relative threshold, so data
    1e-12 small or on a 1e7 offset are measured alike.
    """
    x = values.astype(np.float64)
    count = observed.sum(1)
    mean = np.where(observed, x, 0.0).sum(1) / np.maximum(count, 1)
    _, has_prev, change = _changes(x, observed)
    n_change = has_prev.sum(1)
    scale = np.abs(change).sum(1) / np.maximum(n_change, 1)
    usable = (n_change > 0) & (scale > _EPS_REL * np.abs(mean)) & np.isfinite(scale)
    out = np.ones(x.shape[-1])
    for j in range(x.shape[-1]):
        if usable[:, j].any():
            out[j] = np.median(scale[usable[:, j], j])
    return out


@dataclass(frozen=True)
class ForecastLayout:
    """What the fitted model fixed about its inputs (JSON-able: saved with the model)."""

    target_index: list  # positions of the targets among the value columns
    time_unit: float  # raw units per gap unit
    horizon: float  # raw units: the longest time ahead trained
    periods: list  # calendar periods (raw ns), see calendar_periods
    fallback: list  # per value column, the scale of a series without a usable one
    gap: float  # raw units: the median gap of the training series
    # Covariates (smr_ts.data.covariates): future-known value columns and their scales; static encodings.
    future_index: list = field(default_factory=list)  # positions of the future-known columns among the values
    future_center: list = field(default_factory=list)
    future_spread: list = field(default_factory=list)
    future_rms: list = field(default_factory=list)
    static_spec: list = field(default_factory=list)  # see covariates.fit_static_spec
    # with future-known columns on several series: the first target's mean and std over the training rows
    level: list = field(default_factory=list)
    # future-known columns' changes from the seasons the target's lags read (False: saved before them)
    future_changes: bool = False

    @property
    def n_targets(self) -> int:
        return len(self.target_index)

    def n_inputs(self, n_values: int) -> int:
        return 3 * n_values + 2 * len(self.periods) + 1

    @property
    def n_covariate_features(self) -> int:
        """The query features covariates add, last among them (:mod:`smr_ts.data.covariates`): the head's
        linear path reads them."""
        return (n_future_features(len(self.future_index), len(self.periods) if self.future_changes else 0)
                + static_width(self.static_spec) + 3 * bool(self.level))

    @property
    def n_query_features(self) -> int:
        return (2 * len(self.periods) + 2 + 2 * len(_AHEAD_PERIODS) + (2 + 2 * len(self.periods)) * self.n_targets
                + self.n_covariate_features)


@dataclass
class ForecastTensors:
    """A panel prepared for forecasting: row inputs for the backbone and what pairs need."""

    inputs: np.ndarray  # (S, L, n_in) float32
    dt: np.ndarray  # (S, L) float32 gaps in time units
    mask: np.ndarray  # (S, L) a value was observed in the row
    valid: np.ndarray  # (S, L) the row exists
    lengths: np.ndarray  # (S,)
    time: np.ndarray  # (S, L) float64 raw times, relative to ``origin``
    origin: float  # raw time subtracted from ``time`` (keeps float64 resolution)
    target: np.ndarray  # (S, L, T) float64, NaN where not observed
    anchor: np.ndarray  # (S, L, T) float64 last observed target at or before the row, NaN if none
    anchor_time: np.ndarray  # (S, L, T) float64 its time, NaN if none
    mean: np.ndarray  # (S, L, T) float64 target mean of the observations up to each row
    scale: np.ndarray  # (S, L, T) float64 target scale of the observations up to each row
    track: FutureTrack | None = None  # the future-known columns' known rows (None without any)
    static: np.ndarray | None = None  # (S, W) float32 static encodings (None without any)

    def take(self, idx: np.ndarray) -> "ForecastTensors":
        """The series ``idx``."""
        return ForecastTensors(**{name: value if name == "origin" or value is None else
                                  (value.take(idx) if name == "track" else value[idx])
                                  for name, value in vars(self).items()})


def expanding_statistics(x: np.ndarray, observed: np.ndarray, fallback: np.ndarray):
    """Per row, the statistics of each column over the series' observations up to that row.

    Causal, so a training cut never sees the values after it, and at a series' last row they are
    the statistics of its whole history. ``mean`` is the running mean (0 before the first
    observation); ``scale`` the running mean absolute change between consecutive observations,
    with the fallback scale counted as one prior change (so a series with one or two observations
    leans on the training series' typical scale) and floored at ``1e-3 * fallback``. Also returns
    each observation's change since the previous one and the latest observed row (see
    :func:`_changes`). All float64, ``(S, L, F)``.
    """
    count = np.cumsum(observed, axis=1)
    total = np.cumsum(np.where(observed, x, 0.0), axis=1)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    last, has_prev, change = _changes(x, observed)
    scale = (np.cumsum(np.abs(change), axis=1) + fallback) / (np.cumsum(has_prev, axis=1) + 1)
    scale = np.maximum(scale, np.maximum(1e-3 * fallback, _EPS_REL * np.abs(mean)))
    return mean, scale, change, last


def since_origin(raw, origin: float) -> np.ndarray:
    """Raw times relative to a forecast's ``origin`` (:attr:`ForecastTensors.origin`), as float64; integer
    times subtract in int64, exactly, before the (small) differences become floats."""
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu" and float(origin).is_integer() and abs(origin) < 2.0**63:
        return time_difference(raw, np.int64(origin))
    return raw.astype(np.float64) - origin


def _track(panel: SeriesPanel, layout: ForecastLayout, origin: float, future_rows) -> FutureTrack:
    """The future-known columns' rows of ``panel``, with ``future_rows`` (series, raw times, values (n, F))
    merged in time order (a forecast's query rows), as a :class:`FutureTrack` at times relative to ``origin``."""
    fi = list(layout.future_index)
    valid = panel.valid
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths)
    times = since_origin(panel.time[valid], origin)
    values = np.where(panel.value_observed, panel.values, np.nan)[valid][:, fi].astype(np.float64)
    if future_rows is not None:
        q_series, q_times, q_values = future_rows
        series = np.concatenate([series, q_series])
        times = np.concatenate([times, since_origin(q_times, origin)])
        values = np.concatenate([values, np.asarray(q_values, np.float64)])
    order = np.lexsort((times, series))
    series, times, values = series[order], times[order], values[order]
    lengths = np.bincount(series, minlength=len(panel.ids))
    position = np.arange(len(series)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid_t = np.full((len(panel.ids), max(int(lengths.max(initial=0)), 1)), np.inf)
    grid_v = np.full(grid_t.shape + (len(fi),), np.nan)
    grid_t[series, position], grid_v[series, position] = times, values
    return future_track(grid_t, grid_v, lengths, layout)


def forecast_tensors(panel: SeriesPanel, layout: ForecastLayout, first_gap: float, static: np.ndarray | None = None,
                     future_rows=None) -> ForecastTensors:
    """Prepare a panel whose values are the value columns (float64 preferred), targets among them.

    ``static``: the series' static encodings (S, W); ``future_rows``: known future-column values of
    later rows, ``(series, raw times, values)``, that queries read (:mod:`smr_ts.data.covariates`)."""
    x = panel.values.astype(np.float64)
    obs = panel.value_observed
    fallback = np.asarray(layout.fallback, np.float64)
    mean, scale, change, last = expanding_statistics(x, obs, fallback)
    level = np.where(obs, (x - mean) / scale, 0.0)
    change = change / scale
    dt = panel.gaps(layout.time_unit, first_gap)
    origin = float(panel.time[panel.valid].min()) if panel.valid.any() else 0.0
    time = since_origin(panel.time, origin)
    calendar = _phase_features(panel.time.astype(np.float64), layout.periods)
    inputs = np.concatenate([level, change, obs, calendar, np.log1p(dt)[..., None]], -1).astype(np.float32)
    inputs *= panel.valid[..., None]

    ti = list(layout.target_index)
    t_obs, t_last = obs[..., ti], last[..., ti]
    target = np.where(t_obs, x[..., ti], np.nan)
    has_anchor = t_last >= 0
    anchor = np.where(has_anchor, np.take_along_axis(x[..., ti], np.maximum(t_last, 0), axis=1), np.nan)
    anchor_time = np.where(has_anchor, np.take_along_axis(np.broadcast_to(time[..., None], t_last.shape),
                                                           np.maximum(t_last, 0), axis=1), np.nan)
    return ForecastTensors(
        inputs=inputs, dt=dt.astype(np.float32), mask=obs.any(-1), valid=panel.valid, lengths=panel.lengths,
        time=time, origin=origin, target=target, anchor=anchor, anchor_time=anchor_time,
        mean=mean[..., ti], scale=scale[..., ti],
        track=_track(panel, layout, origin, future_rows) if layout.future_index else None,
        static=(np.zeros((len(panel.ids), static_width(layout.static_spec)), np.float32) if static is None else
                np.asarray(static, np.float32)) if layout.static_spec else None,
    )


def _latest_at(data: ForecastTensors, series, t) -> np.ndarray:
    """(P, T) the latest observed targets at or before relative times ``t`` of ``series``, NaN where
    there is none (a row's anchor is the latest observation at or before it)."""
    row = rows_at_or_before(data.time, data.lengths, series, t)
    return np.where((row >= 0)[:, None], data.anchor[series, np.maximum(row, 0)], np.nan)


def _season_times(data: ForecastTensors, layout: ForecastLayout, series, k, t_query) -> list:
    """Per calendar period p, the (``_SEASONS``, P) times ``t_query - (n + m) * p``, m < ``_SEASONS``, with the
    smallest n >= 1 that keeps them at or before the cut (row ``k``): the seasons the lag features read."""
    t_cut = data.time[series, k]
    out = []
    for p in layout.periods:
        n = np.maximum(1.0, np.ceil((t_query - t_cut) / p))
        out.append(np.stack([t_query - (n + m) * p for m in range(_SEASONS)]))
    return out


def _seasonal_lags(data: ForecastTensors, series, k, seasons: list) -> list:
    """Per calendar period p, what the series did in the seasons before each query: the mean of
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
    fit growth by size (both measured in docs/results/forecasting_design.md)."""
    ratio = _scale_ratio(data, layout, series, k) if ratio is None else ratio
    z = np.nan_to_num((data.anchor[series, k, 0] - layout.level[0]) / layout.level[1])
    return np.stack([ratio, z, ratio * z], -1)


def query_features(data: ForecastTensors, layout: ForecastLayout, series: np.ndarray, k: np.ndarray,
                   t_query: np.ndarray) -> np.ndarray:
    """(P, n_qf) features of queries at relative times ``t_query`` continued from rows ``k`` of ``series``:
    the query's calendar phases, how far ahead it is, how long since each anchor, the gap from the
    anchor to the series' mean, the season-ago values (:func:`_seasonal_lags`), and the covariates
    (:mod:`smr_ts.data.covariates`)."""
    ahead = t_query - data.time[series, k]
    since_anchor = t_query[:, None] - data.anchor_time[series, k]
    gap_to_mean = (data.mean[series, k] - data.anchor[series, k]) / data.scale[series, k]
    seasons = _season_times(data, layout, series, k, t_query)
    parts = [
        _phase_features(t_query + data.origin, layout.periods),
        np.log1p(np.maximum(ahead, 0) / layout.time_unit)[:, None],
        (ahead / layout.horizon)[:, None],
        _phase_features(ahead / layout.time_unit, list(_AHEAD_PERIODS)),
        np.log1p(np.nan_to_num(np.maximum(since_anchor, 0), nan=0.0) / layout.time_unit),
        np.nan_to_num(gap_to_mean, nan=0.0),
        *_seasonal_lags(data, series, k, seasons),
    ]
    ratio = _scale_ratio(data, layout, series, k) if layout.level or data.track is not None else None
    if layout.level:  # the covariates' features come last: the head's linear path reads them
        parts.append(_level_features(data, layout, series, k, ratio))
    if data.track is not None:
        parts.append(future_features(data.track, layout, series, data.anchor_time[series, k, 0], t_query, ratio,
                                     seasons=seasons))
    if data.static is not None:
        parts.append(data.static[series])
    return np.concatenate(parts, -1).astype(np.float32)


def draw_ahead(layout: ForecastLayout, rng: np.random.Generator, n: int) -> np.ndarray:
    """How far ahead each training query is: half uniform in time on (0, horizon] (as queries spread
    over a horizon are), half log-uniform from half a median gap to the horizon (as the next few
    observations are, whatever the horizon)."""
    uniform = layout.horizon * (1.0 - rng.random(n))
    low = min(0.5 * layout.gap, layout.horizon)
    log_uniform = np.exp(rng.uniform(np.log(low), np.log(layout.horizon), n))
    return np.where(rng.random(n) < 0.5, uniform, log_uniform)


def _pair_targets(data: ForecastTensors, series, k, q):
    """Scaled targets ``(y_q - anchor_k) / scale`` and their weights (observed, anchored, finite)."""
    y, anchor, scale = data.target[series, q], data.anchor[series, k], data.scale[series, k]
    r = (y - anchor) / scale
    weight = np.isfinite(r)
    return np.where(weight, r, 0.0).astype(np.float32), weight.astype(np.float32), scale.astype(np.float32)


def _collate(data: ForecastTensors, layout: ForecastLayout, segments, pairs, device) -> dict:
    """Windows (series, start, stop) and their pairs (series-local k, q rows) as one batch."""
    length = max(stop - start for _, start, stop in segments)
    n_pairs = max(1, max(len(k) for k, _ in pairs))
    b = len(segments)
    n_in, n_qf, n_t = data.inputs.shape[-1], layout.n_query_features, layout.n_targets
    inputs = np.zeros((b, length, n_in), np.float32)
    dt = np.zeros((b, length), np.float32)
    mask = np.zeros((b, length), bool)
    k_pos = np.zeros((b, n_pairs), np.int64)
    qf = np.zeros((b, n_pairs, n_qf), np.float32)
    target = np.zeros((b, n_pairs, n_t), np.float32)
    weight = np.zeros((b, n_pairs, n_t), np.float32)
    scale = np.ones((b, n_pairs, n_t), np.float32)
    for i, ((s, start, stop), (k, q)) in enumerate(zip(segments, pairs)):
        n = stop - start
        inputs[i, :n], dt[i, :n], mask[i, :n] = data.inputs[s, start:stop], data.dt[s, start:stop], data.mask[s, start:stop]
        if len(k):
            series = np.full(len(k), s)
            k_pos[i, : len(k)] = k - start
            qf[i, : len(k)] = query_features(data, layout, series, k, data.time[s, q])
            target[i, : len(k)], weight[i, : len(k)], scale[i, : len(k)] = _pair_targets(data, series, k, q)
    as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return {"inputs": as_t(inputs), "dt": as_t(dt), "mask": as_t(mask), "k": as_t(k_pos), "query": as_t(qf),
            "target": as_t(target), "weight": as_t(weight), "scale": as_t(scale)}


class PairSampler:
    """Training batches of windows, each scored on (cut, query) pairs drawn in time.

    Parameters
    ----------
    data : ForecastTensors
    layout : ForecastLayout
    window : int
        Rows per window; longer series are cut into windows at random starts each epoch.
    batch_size : int
        Windows per batch. Batches group windows of similar length.
    device : torch.device
    query_until : ndarray (S,), optional
        Relative time after which rows are not scored (the validation part of a single series).
    min_windows : int
        Windows per epoch at least (drawn again from long series), so that a few long series
        still give several optimisation steps per epoch.
    max_windows : int
        Windows per epoch at most (a random subset beyond it).
    """

    def __init__(self, data: ForecastTensors, layout: ForecastLayout, *, window: int, batch_size: int, device,
                 query_until: np.ndarray | None = None, min_windows: int = 0, max_windows: int = 1024):
        self.data, self.layout, self.window = data, layout, window
        self.batch_size, self.device = batch_size, device
        self.min_windows, self.max_windows = min_windows, max_windows
        scored = np.isfinite(data.target).any(-1) & data.valid
        if query_until is not None:
            scored &= data.time <= query_until[:, None]
        self.scored = scored
        self.series = np.flatnonzero(scored.sum(1) > 0)
        lengths = data.lengths[self.series]
        self.per_series = np.ceil(_COVERAGE * np.maximum(lengths - window, 0) / window).astype(int) + 1
        total = int(self.per_series.sum())
        if 0 < total < min_windows:  # draw every series again (other windows, other pairs)
            self.per_series *= int(np.ceil(min_windows / total))
        self.n_windows = min(int(self.per_series.sum()), max_windows)

    @property
    def n_batches(self) -> int:
        return max(1, -(-self.n_windows // self.batch_size))

    def _windows(self, rng: np.random.Generator):
        series = np.repeat(self.series, self.per_series)
        if len(series) > self.max_windows:
            series = rng.choice(series, self.max_windows, replace=False)
        lengths = self.data.lengths[series]
        starts = np.floor(rng.random(len(series)) * np.maximum(lengths - self.window + 1, 1)).astype(np.int64)
        stops = np.minimum(starts + self.window, lengths)
        return list(zip(series.tolist(), starts.tolist(), stops.tolist()))

    def _pairs(self, segment, rng: np.random.Generator):
        s, start, stop = segment
        rows = np.arange(start + 1, stop)
        rows = rows[self.scored[s, start + 1 : stop]]
        if not len(rows):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        q = rng.choice(rows, min(len(rows), _MAX_PAIRS), replace=False)
        times = self.data.time[s, start:stop]
        ahead = draw_ahead(self.layout, rng, len(q))
        # A query closer to the window's start than its draw is forecast from a cut drawn in what
        # history it has: short series and a long horizon still give every query a cut.
        room = self.data.time[s, q] - times[0]
        ahead = np.where(ahead > room, room * (1.0 - rng.random(len(q))), ahead)
        k = np.searchsorted(times, self.data.time[s, q] - ahead, side="right") - 1 + start
        keep = (k >= start) & (k < q) & np.isfinite(self.data.anchor[s, np.maximum(k, 0)]).any(-1)
        return k[keep], q[keep]

    def _batches(self, segments, rng):
        pairs = [self._pairs(seg, rng) for seg in segments]
        kept = [i for i, (k, _) in enumerate(pairs) if len(k)]
        order = sorted(kept, key=lambda i: segments[i][2] - segments[i][1])  # similar lengths together
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [_collate(self.data, self.layout, [segments[i] for i in c], [pairs[i] for i in c], self.device)
                for c in chunks]

    def epoch(self, rng: np.random.Generator):
        """One epoch's batches, in random order."""
        batches = self._batches(self._windows(rng), rng)
        for i in rng.permutation(len(batches)):
            yield batches[i]

    def fixed(self, rng: np.random.Generator) -> list[dict]:
        """Windows and pairs drawn once: a validation set."""
        return self._batches(self._windows(rng), rng)


def origin_pairs(data: ForecastTensors, layout: ForecastLayout, origin_time: np.ndarray, *, window: int,
                 batch_size: int, device) -> list[dict]:
    """Validation batches that forecast each series from its last row at or before ``origin_time``
    (relative, per series) to its observed rows up to ``horizon`` later: the last part of a series."""
    segments, pairs = [], []
    for s in range(len(data.lengths)):
        times = data.time[s, : data.lengths[s]]
        k = int(np.searchsorted(times, origin_time[s], side="right")) - 1
        if k < 0 or not np.isfinite(data.anchor[s, k]).any():
            continue
        q = np.flatnonzero((times > times[k]) & (times <= times[k] + layout.horizon)
                           & np.isfinite(data.target[s, : data.lengths[s]]).any(-1))
        if not len(q):
            continue
        segments.append((s, max(0, k + 1 - window), k + 1))  # the history up to the origin
        pairs.append((np.full(len(q), k), q))
    return [_collate(data, layout, segments[i : i + batch_size], pairs[i : i + batch_size], device)
            for i in range(0, len(segments), batch_size)]


def _median_span(panel: SeriesPanel) -> float:
    first, last = panel.time[:, 0], panel.time[np.arange(len(panel.ids)), panel.lengths - 1]
    return float(np.median((last - first).astype(np.float64)))


def auto_horizon(panel: SeriesPanel, median_gap: float) -> float:
    """The default longest time ahead trained (raw units): a quarter of the median series span,
    at least 8 median gaps."""
    return max(0.25 * _median_span(panel), 8.0 * median_gap)


def fit_layout(panel: SeriesPanel, target_index: list, time_unit: float, horizon: float, kind: str,
               median_gap: float, future_index=(), static_spec=()) -> ForecastLayout:
    """The layout of a forecasting model fitted on ``panel``: its calendar periods, fallback scales, and
    the scales of its future-known columns (positions ``future_index`` among the values)."""
    fi = list(future_index)
    center, spread, rms = future_scales(panel.values[panel.valid][:, fi], panel.value_observed[panel.valid][:, fi])
    return ForecastLayout(target_index=list(target_index), time_unit=float(time_unit), horizon=float(horizon),
                          periods=calendar_periods(kind, median_gap, _median_span(panel)),
                          fallback=fallback_scales(panel.values, panel.value_observed).tolist(), gap=float(median_gap),
                          future_index=fi, future_center=center, future_spread=spread, future_rms=rms,
                          static_spec=[list(s) for s in static_spec],
                          level=_level(panel, target_index[0]) if fi and len(panel.ids) > 1 else [],
                          future_changes=bool(fi))


def _level(panel: SeriesPanel, column: int) -> list:
    x = panel.values[..., column][panel.valid & panel.value_observed[..., column]].astype(np.float64)
    return [float(x.mean()), float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0]


def training_window(layout: ForecastLayout, median_gap: float) -> int:
    """Rows per training window: three horizons' worth of rows plus some context, in [64, 1024]."""
    rows = layout.horizon / max(median_gap, 1e-300)
    return int(np.clip(3 * rows + 32, 64, 1024))


def auto_batch_size(window: int) -> int:
    """Windows per batch by default: about ``_BATCH_ROWS`` rows, between 8 and 32 windows. Long
    windows (a few long series) then take more, smaller optimisation steps per epoch."""
    return int(np.clip(_BATCH_ROWS // window, 8, 32))


def validation_origin(data: ForecastTensors, layout: ForecastLayout, fraction: float) -> np.ndarray:
    """Per series, the relative time from which its last part validates: one horizon before its end
    (at most half of its span, at least ``fraction`` of it)."""
    end = data.time[np.arange(len(data.lengths)), data.lengths - 1]
    span = end - data.time[:, 0]
    back = np.clip(layout.horizon, fraction * span, 0.5 * span)
    return end - back


def training_pairs(data: ForecastTensors, layout: ForecastLayout, train_idx, val_idx, val_data=None, *,
                   validation_fraction: float, window: int, batch_size: int, device, rng: np.random.Generator):
    """The training sampler and the validation batches of a forecasting fit (``batch_size`` may be
    "auto": :func:`auto_batch_size`).

    Validation comes from ``val_data`` when given; else from the series ``val_idx`` (random
    pairs, drawn once); else, for a single series, from its last part in time (forecast from one
    origin, :func:`validation_origin`), which training then does not score; else there is none.
    """
    if batch_size == "auto":
        batch_size = auto_batch_size(window)
    sampling = dict(window=window, batch_size=batch_size, device=device)
    train_kwargs = dict(min_windows=_MIN_STEPS * batch_size, **sampling)
    if val_data is not None:
        return PairSampler(data, layout, **train_kwargs), PairSampler(val_data, layout, **sampling).fixed(rng)
    if len(val_idx):
        return (PairSampler(data.take(train_idx), layout, **train_kwargs),
                PairSampler(data.take(val_idx), layout, **sampling).fixed(rng))
    if validation_fraction > 0:
        split = validation_origin(data, layout, validation_fraction)
        return (PairSampler(data, layout, query_until=split, **train_kwargs),
                origin_pairs(data, layout, split, **sampling))
    return PairSampler(data, layout, **train_kwargs), None
