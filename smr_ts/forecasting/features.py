"""A forecast's inputs per row: the causal statistics of each series and the backbone's row inputs.

A forecast continues a series from its last row (the cut) to a later time. The network reads the
history up to the cut with the backbone, once, and a head maps the backbone's output at the cut,
with what is known about the query (how far ahead it is, its calendar position), to a
correction of the **anchor**: the last observed value of each target. In the scaled units of the
series::

    forecast(t_q) = anchor_k + scale * head(h_k, features(t_q, t_k))

So carrying the last value forward is where the model starts (the head's last layer starts at
zero), and training teaches it what to add.

Everything is per series and causal, so series of very different levels train together and a
training cut sees no more than a forecast would (:func:`causal_statistics`):

- **scale** at a row: the mean absolute change between consecutive observations of the series up
  to that row (what the scaled MAE divides by), in float64, with the training series' median
  scale as a prior and a relative floor;
- **recent scale** at a row (models fitted since it, ``layout.scale_gate``): the same changes' mean with
  exponential weights in time, ``RECENT_HORIZONS`` horizons' time constant, and the training series'
  median scale as one prior change, as above: how variable the series is lately. The head's output is
  multiplied by a learned power of its ratio to the scale (:class:`smr_ts.model.ForecastNetwork`), so a
  series whose swings grew or shrank is forecast in the units it moves in now;
- **inputs** at an observed row: the value's level ``(x - mean) / scale`` and its change since the
  previous observation ``(x - x_prev) / scale`` per value column, an observed flag, the log gap,
  and calendar features of the row's time.

They are computed once, here, for every use: :func:`row_inputs` continues the statistics from
where a series stood (:class:`RunningStatistics`; none: from its start), so a fit, a forecast, a
forecast with ``context`` and ``update`` (which carries them in each series' stream state) read
the same inputs, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from smr_ts.data.panel import SeriesPanel
from smr_ts.data.times import time_difference
from smr_ts.forecasting.covariates import FutureTrack, future_track, static_width

if TYPE_CHECKING:  # the layout module imports this one
    from smr_ts.forecasting.layout import ForecastLayout

__all__ = ["RECENT_HORIZONS", "ForecastTensors", "RowStatistics", "RunningStatistics", "causal_statistics",
           "fallback_scales", "forecast_tensors", "phase_features", "row_inputs", "since_origin"]


_EPS_REL = 1e-10  # a scale below this fraction of the level is rounding noise, not variation
# The recent scale's time constant in horizons: long enough to average several changes at the horizon's
# reach, short enough to follow a season that grows with its level (docs/results/forecasting_design.md).
RECENT_HORIZONS = 1.0


def phase_features(time: np.ndarray, periods: list[float]) -> np.ndarray:
    """(..., 2 * len(periods)) sin and cos of each period's phase."""
    if not periods:
        return np.zeros(time.shape + (0,), np.float32)
    angles = [2 * np.pi * np.mod(time, p) / p for p in periods]
    return np.stack([f(a) for a in angles for f in (np.sin, np.cos)], -1).astype(np.float32)


def _last_observed_index(observed: np.ndarray) -> np.ndarray:
    """(S, L, F) index of the latest observed row at or before each row (-1 if none)."""
    steps = np.arange(observed.shape[1])[None, :, None]
    return np.maximum.accumulate(np.where(observed, steps, -1), axis=1)


def _changes(x: np.ndarray, observed: np.ndarray, carry: RunningStatistics | None = None):
    """(S, L, F): the latest observed row at or before each row (-1 if none), whether the row is
    an observation with an earlier one, and its change since that earlier one (0 otherwise). With
    ``carry``, the rows continue a history whose last observation is ``carry.last``."""
    latest = _last_observed_index(observed)
    prev = np.concatenate([np.full_like(latest[:, :1], -1), latest[:, :-1]], axis=1)
    seen = prev >= 0
    x_prev = np.take_along_axis(x, np.maximum(prev, 0), axis=1)
    if carry is not None:
        x_prev = np.where(seen, x_prev, carry.last[:, None])
        seen = seen | (carry.count[:, None] > 0)
    has_prev = observed & seen
    return latest, has_prev, np.where(has_prev, x - x_prev, 0.0)


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
    recent: np.ndarray  # (S, L, T) float64 target recent scale at each row (the scale where the layout has none)
    track: FutureTrack | None = None  # the future-known columns' known rows (None without any)
    static: np.ndarray | None = None  # (S, W) float32 static encodings (None without any)
    statistics: RunningStatistics | None = None  # where each series' statistics stand after its last row

    def take(self, idx: np.ndarray) -> "ForecastTensors":
        """The series ``idx``."""
        return ForecastTensors(**{name: value if name == "origin" or value is None else
                                  (value.take(idx) if name in ("track", "statistics") else value[idx])
                                  for name, value in vars(self).items()})


@dataclass(frozen=True)
class RunningStatistics:
    """Where the causal statistics of each series and value column (S, F) stand after its last row: the
    observations, their total, the last observed value (0 before any), the sum and number of
    absolute changes between consecutive observations (float64; int64 counts), the recent scale's
    sums of exponentially weighted absolute changes and of their weights, as of the last observation,
    and that observation's raw time (in the panel's time dtype; 0 before any)."""

    count: np.ndarray
    total: np.ndarray
    last: np.ndarray
    abs_change: np.ndarray
    n_change: np.ndarray
    recent_sum: np.ndarray
    recent_weight: np.ndarray
    last_time: np.ndarray

    def take(self, idx) -> "RunningStatistics":
        """The series ``idx``."""
        return RunningStatistics(**{name: value[idx] for name, value in vars(self).items()})


@dataclass(frozen=True)
class RowStatistics:
    """The causal statistics at each row (S, L, F), float64, and where they stand after the last one."""

    mean: np.ndarray  # running mean of the observations up to the row (0 before the first)
    scale: np.ndarray  # running mean absolute change, with the fallback as one prior change, floored
    recent: np.ndarray  # exponentially weighted in time, with the fallback as one prior change, floored alike
    change: np.ndarray  # each observation's change since the previous one (0 elsewhere)
    latest: np.ndarray  # int: the latest observed row at or before the row (-1 if none among these rows)
    after: RunningStatistics


def _cumsum(x: np.ndarray, carry: np.ndarray | None) -> np.ndarray:
    """The cumulative sum over axis 1 of ``x`` continuing from ``carry`` (S, F) (None: from 0): seeded, not
    added afterwards, so it equals the whole sequence's cumulative sum bit for bit."""
    if carry is None:
        return np.cumsum(x, axis=1)
    return np.cumsum(np.concatenate([carry[:, None], x], axis=1), axis=1)[:, 1:]


def _recent_sums(time: np.ndarray, latest: np.ndarray, has_prev: np.ndarray, change: np.ndarray, tau: float | None,
                 carry: RunningStatistics | None):
    """(S, L, F) the recent scale's sums at each row, weighted change and weight, and the time of each column's
    latest observation at or before each row (raw; the carried one, or 0, before any among these rows), from
    :func:`_changes`' ``latest``, ``has_prev`` and ``change``.

    At each observation with an earlier one, both sums decay by ``exp(-gap / tau)`` over the time since
    that earlier observation and gain its absolute change and 1; elsewhere they stay. A recursion, not a
    closed form: the decay over a long series underflows, and continued from ``carry`` it is the whole
    history's recursion, bit for bit. With ``tau`` None (a layout without the recent scale) they stay at
    the carried sums."""
    shape = latest.shape
    t = np.broadcast_to(time[:, :, None], shape)
    before = np.zeros(shape[::2], time.dtype) if carry is None else carry.last_time.astype(time.dtype)
    t_latest = np.where(latest >= 0, np.take_along_axis(t, np.maximum(latest, 0), axis=1), before[:, None])
    start_s = np.zeros(shape[::2]) if carry is None else carry.recent_sum
    start_w = np.zeros(shape[::2]) if carry is None else carry.recent_weight
    if tau is None:
        return np.broadcast_to(start_s[:, None], shape), np.broadcast_to(start_w[:, None], shape), t_latest
    t_prev = np.concatenate([before[:, None], t_latest[:, :-1]], axis=1)
    decay = np.where(has_prev, np.exp(-np.maximum(time_difference(t, t_prev), 0.0) / tau), 1.0)
    step, add = np.abs(change), has_prev.astype(np.float64)
    sums, weights = np.empty(shape), np.empty(shape)
    s, w = start_s, start_w
    for j in range(shape[1]):
        s = decay[:, j] * s + step[:, j]
        w = decay[:, j] * w + add[:, j]
        sums[:, j], weights[:, j] = s, w
    return sums, weights, t_latest


def causal_statistics(x: np.ndarray, observed: np.ndarray, fallback: np.ndarray,
                      carry: RunningStatistics | None = None, time: np.ndarray | None = None,
                      tau: float | None = None) -> RowStatistics:
    """Per row, the statistics of each column over the series' observations up to that row.

    Causal, so a training cut never sees the values after it, and at a series' last row they are
    the statistics of its whole history. ``mean`` is the running mean (0 before the first
    observation); ``scale`` the running mean absolute change between consecutive observations,
    with the fallback scale counted as one prior change (so a series with one or two observations
    leans on the training series' typical scale) and floored at ``1e-3 * fallback``. With
    ``carry``, the rows ``x`` (S, L, F, 0 where not observed) continue histories whose statistics
    stood there, and the result is what the whole histories would give at these rows. ``recent`` is the
    recent scale with time constant ``tau`` (raw units) at the rows' raw ``time`` (S, L) (:func:`_recent_sums`):
    the exponentially weighted mean absolute change with the fallback counted as one prior change, as in
    ``scale`` (so it is ``scale`` before a series' first change); with ``tau`` None it is ``scale``.
    """
    latest, has_prev, change = _changes(x, observed, carry)
    count = _cumsum(observed, None if carry is None else carry.count)
    total = _cumsum(np.where(observed, x, 0.0), None if carry is None else carry.total)
    abs_change = _cumsum(np.abs(change), None if carry is None else carry.abs_change)
    n_change = _cumsum(has_prev, None if carry is None else carry.n_change)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    scale = (abs_change + fallback) / (n_change + 1)
    floor = np.maximum(1e-3 * fallback, _EPS_REL * np.abs(mean))
    scale = np.maximum(scale, floor)
    if time is None:
        time = np.zeros(x.shape[:2])
    recent_sum, recent_weight, last_time = _recent_sums(time, latest, has_prev, change, tau, carry)
    recent = scale if tau is None else np.maximum((recent_sum + fallback) / (recent_weight + 1), floor)
    last = latest[:, -1]
    before = 0.0 if carry is None else carry.last
    after = RunningStatistics(  # copies: a view would keep the (S, L, F) sums alive
        count=count[:, -1].copy(), total=total[:, -1].copy(), abs_change=abs_change[:, -1].copy(),
        n_change=n_change[:, -1].copy(), recent_sum=recent_sum[:, -1].copy(),
        recent_weight=recent_weight[:, -1].copy(), last_time=last_time[:, -1].copy(),
        last=np.where(last >= 0, np.take_along_axis(x, np.maximum(last, 0)[:, None], axis=1)[:, 0], before))
    return RowStatistics(mean=mean, scale=scale, recent=recent, change=change, latest=latest, after=after)


def row_inputs(x: np.ndarray, observed: np.ndarray, valid: np.ndarray, time: np.ndarray, dt: np.ndarray, layout,
               carry: RunningStatistics | None = None) -> tuple[np.ndarray, RowStatistics]:
    """The backbone's input at each row (S, L, n_inputs) float32, 0 where not ``valid``, and the statistics
    it came from (:func:`causal_statistics`, continued from ``carry``): per value column the level
    ``(x - mean) / scale`` and the change since the previous observation over the scale, the observed
    flags, the calendar phases of the row's raw ``time`` and the log of its gap ``dt`` (time units)."""
    tau = RECENT_HORIZONS * layout.horizon if layout.scale_gate else None
    stats = causal_statistics(x, observed, np.asarray(layout.fallback, np.float64), carry, time, tau)
    level = np.where(observed, (x - stats.mean) / stats.scale, 0.0)
    calendar = phase_features(time.astype(np.float64), layout.periods)
    inputs = np.concatenate([level, stats.change / stats.scale, observed, calendar, np.log1p(dt)[..., None]], -1)
    inputs = inputs.astype(np.float32)
    inputs *= valid[..., None]
    return inputs, stats


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
    later rows, ``(series, raw times, values)``, that queries read (:mod:`smr_ts.forecasting.covariates`)."""
    x = panel.values.astype(np.float64)
    obs = panel.value_observed
    dt = panel.gaps(layout.time_unit, first_gap)
    inputs, stats = row_inputs(x, obs, panel.valid, panel.time, dt, layout)
    origin = float(panel.time[panel.valid].min()) if panel.valid.any() else 0.0
    time = since_origin(panel.time, origin)

    ti = list(layout.target_index)
    t_obs, t_last = obs[..., ti], stats.latest[..., ti]
    target = np.where(t_obs, x[..., ti], np.nan)
    has_anchor = t_last >= 0
    anchor = np.where(has_anchor, np.take_along_axis(x[..., ti], np.maximum(t_last, 0), axis=1), np.nan)
    anchor_time = np.where(has_anchor, np.take_along_axis(np.broadcast_to(time[..., None], t_last.shape),
                                                           np.maximum(t_last, 0), axis=1), np.nan)
    return ForecastTensors(
        inputs=inputs, dt=dt.astype(np.float32), mask=obs.any(-1), valid=panel.valid, lengths=panel.lengths,
        time=time, origin=origin, target=target, anchor=anchor, anchor_time=anchor_time,
        mean=stats.mean[..., ti], scale=stats.scale[..., ti], recent=stats.recent[..., ti], statistics=stats.after,
        track=_track(panel, layout, origin, future_rows) if layout.future_index else None,
        static=(np.zeros((len(panel.ids), static_width(layout.static_spec)), np.float32) if static is None else
                np.asarray(static, np.float32)) if layout.static_spec else None,
    )
