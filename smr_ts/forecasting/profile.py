"""The seasonal profile as a query feature: per period of the layout, what the floor's seasonal profile
forecast (:func:`smr_ts.forecasting.floor.candidates`) says about a query, computed on a grid so that
every training pair can have it.

The floor's profile reads windows around the query's phase in each of the last periods before the cut,
with binary searches per query; a fit draws millions of pairs, too many for that. Here each series'
observations are binned once by whole period (counted from time zero) and by phase (:data:`BINS` per
period). The profile at a phase is the mean over the last :data:`~smr_ts.forecasting.floor.PROFILE_PERIODS`
whole periods before the cut's own of the bin's mean less its period's mean, over the bin and its two
neighbours (about the floor's window of :data:`~smr_ts.forecasting.floor.PROFILE_HALF_WIDTH` each side).
The level is the mean of the observations less their own period's profile over the last
:data:`~smr_ts.forecasting.floor.PROFILE_RECENT` of a period up to the cut. The feature is level plus
profile at the query's phase, less the anchor, in the series' scale at the cut: the change a seasonal
decomposition forecasts. It reads nothing after the cut, and is 0 where the history holds fewer than two
periods of :data:`~smr_ts.forecasting.floor.PROFILE_MIN_ROWS` observations.
"""

from __future__ import annotations

import numpy as np

from smr_ts.forecasting.floor import PROFILE_MIN_ROWS, PROFILE_PERIODS, PROFILE_RECENT

__all__ = ["BINS", "profile_changes"]

BINS = 26  # phase bins per period: a bin and its neighbours span about the floor's window (1/26 each side)


class _SeriesProfile:
    """One series' observed target (sorted times ``t``, values ``y``) for one period: the profile after each
    whole period (``grid[m]``: from periods ``m - PROFILE_PERIODS`` to ``m - 1``, counted from ``first``) and
    the prefix sums of the observations less their own period's profile (the level's)."""

    def __init__(self, t: np.ndarray, y: np.ndarray, period: float):
        self.t, self.period = t, period
        whole = np.floor(t / period).astype(np.int64)
        self.first = int(whole[0]) if len(t) else 0
        n = int(whole[-1]) - self.first + 1 if len(t) else 0
        self.n = n
        b = _bins(t, period)
        flat = (whole - self.first) * BINS + b
        sums = np.bincount(flat, y, n * BINS).reshape(n, BINS)
        counts = np.bincount(flat, None, n * BINS).reshape(n, BINS)
        total = counts.sum(1)
        usable = total >= PROFILE_MIN_ROWS
        with np.errstate(invalid="ignore", divide="ignore"):
            deviation = sums / counts - (sums.sum(1) / total)[:, None]
        has = (counts > 0) & usable[:, None]
        deviation = np.where(has, deviation, 0.0)
        near = lambda a: a + np.roll(a, 1, 1) + np.roll(a, -1, 1)  # noqa: E731  the bin and its neighbours
        weight = near(has.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            smooth = np.where(weight > 0, near(deviation) / weight, 0.0)
        seen = (weight > 0) & usable[:, None]
        # grid[m] from periods m - PROFILE_PERIODS .. m - 1: differences of cumulative sums
        cum = np.concatenate([np.zeros((1, BINS)), np.cumsum(smooth * seen, 0)])
        cum_seen = np.concatenate([np.zeros((1, BINS)), np.cumsum(seen, 0)])
        cum_usable = np.concatenate([[0], np.cumsum(usable)])
        m = np.arange(n + 1)
        lo = np.maximum(m - PROFILE_PERIODS, 0)
        count = cum_seen[m] - cum_seen[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            grid = np.where(count > 0, (cum[m] - cum[lo]) / count, np.nan)
        grid[cum_usable[m] - cum_usable[lo] < 2] = np.nan
        self.grid = grid
        own = grid[whole - self.first, b] if n else np.zeros(0)
        level_ok = np.isfinite(own)
        self.z_sum = np.concatenate([[0.0], np.cumsum(np.where(level_ok, y - own, 0.0))])
        self.z_count = np.concatenate([[0], np.cumsum(level_ok)])

    def values(self, t_cut: np.ndarray, t_query: np.ndarray) -> np.ndarray:
        """The level plus the profile for queries at ``t_query`` cut at ``t_cut`` (NaN where undefined)."""
        if not self.n:
            return np.full(len(t_cut), np.nan)
        m = np.clip(np.floor(t_cut / self.period).astype(np.int64) - self.first, 0, self.n)
        hi = np.searchsorted(self.t, t_cut, side="right")
        lo = np.searchsorted(self.t, t_cut - PROFILE_RECENT * self.period, side="right")
        count = self.z_count[hi] - self.z_count[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(count > 0, (self.z_sum[hi] - self.z_sum[lo]) / count, np.nan)
        return level + self.grid[m, _bins(t_query, self.period)]


def _bins(t: np.ndarray, period: float) -> np.ndarray:
    return np.minimum((np.mod(t, period) / period * BINS).astype(np.int64), BINS - 1)


def profile_changes(data, layout, series: np.ndarray, k: np.ndarray, t_query: np.ndarray) -> list:
    """Per period of ``layout``, the (P, T) seasonal profile's change from the anchor for queries at relative
    times ``t_query`` of ``series`` cut at rows ``k`` (a :class:`~smr_ts.forecasting.features.ForecastTensors`
    ``data``), in the scale at the cut; 0 where undefined. Each series' grid is built once per call: a training
    batch's pairs come in one call (:func:`smr_ts.forecasting.pairs._collate`), and no grid outlives it."""
    series, k = np.asarray(series), np.asarray(k)
    n_t = data.target.shape[2]
    out = [np.zeros((len(k), n_t)) for _ in layout.periods]
    if not len(k) or not layout.periods:
        return out
    t_cut = data.time[series, k] + data.origin  # phases count from time zero, as the calendar inputs do
    t_query = np.asarray(t_query, np.float64) + data.origin
    anchor, scale = data.anchor[series, k], data.scale[series, k]
    for s in np.unique(series):
        at = np.flatnonzero(series == s)
        n = data.lengths[s]
        for j in range(n_t):
            ok = np.isfinite(data.target[s, :n, j])
            times, values = data.time[s, :n][ok] + data.origin, data.target[s, :n, j][ok]
            for i, period in enumerate(layout.periods):
                value = _SeriesProfile(times, values, period).values(t_cut[at], t_query[at])
                out[i][at, j] = np.nan_to_num((value - anchor[at, j]) / scale[at, j], nan=0.0, posinf=0.0,
                                              neginf=0.0)
    return out
