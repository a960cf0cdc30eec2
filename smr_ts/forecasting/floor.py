"""The floor under every forecast: simple forecasters that model selection weighs the network against.

A trained network earns its place only by beating what a user would try first. After training,
selection scores the network and each simple forecaster below on the same held-out (cut-off,
query) pairs, drawn from many cut-offs per held-out series (or, validating in time, from
``ORIGINS`` origins in every series' held-out part: :func:`~smr_ts.forecasting.pairs.origin_pairs`).
It splits the pairs by how far ahead they are into up to ``MAX_RANGES`` ranges of equal counts and
keeps, in each range, whichever has the lowest scaled MAE there (ties keep the network): a network
that wins a few steps ahead need not give way to the mean far ahead, nor the reverse. Last value is
the default in every range: another forecaster, the network included, is eligible only when its mean
gain over last value per cut-off is at least ``MIN_GAIN_Z`` standard errors over the range's cut-offs
(a cut-off's queries share one future, so a lucky stretch of one series is one draw, not hundreds).
The result is a :class:`Floor`; the estimator shows it as ``selected_forecaster_``, every score in
``selection_scores_``, and logs the decision at INFO on the ``"smr_ts"`` logger (:mod:`smr_ts._logging`).

The simple forecasters, each from the rows at or before the cut-off only:

- ``"last value"``: the last observed value of each target;
- ``"mean"``: the mean of the series' observations (a noisy series that reverts to its mean);
- ``"drift"``: the last value plus the average change per unit of time from the series' first
  observation to its last, times the time ahead (the random walk with drift);
- ``"seasonal naive (<period>)"``, for each period the layout reads (a day, a week, a year:
  :func:`~smr_ts.forecasting.layout.calendar_periods`; a period the data show, e.g. ``"detected,
  11.1 years"``: :func:`~smr_ts.forecasting.layout.detected_period`): the series at the query's
  time minus whole periods (the fewest that reach back to the cut-off), interpolated linearly in
  time between the observations around it (no more than a quarter period apart), else the nearest
  within half a median gap, else the last value. By time, not by steps, so a year of 52.18 weeks is a year;
- ``"seasonal profile (<period>)"``, for the same periods: the series' recent level with the season's shape
  added back, as a seasonal decomposition forecasts. Over each of the last ``PROFILE_PERIODS`` whole
  periods before the cut-off, the profile at a phase is the mean of the observations within
  ``PROFILE_HALF_WIDTH`` of a period of it, less that period's mean; the profile averages these over the
  periods. The level is the mean over the last ``PROFILE_RECENT`` of a period of the observations less the
  profile at their times. Where seasonal naive copies one noisy period, this averages several and
  smooths within each: on a noisy weekly series with a yearly season it beats both seasonal naive and
  last value. It needs two periods with ``PROFILE_MIN_ROWS`` observations each, else it is last value.

Each is written, as the network's head is, as a correction to the anchor in units of the series'
scale, so selection, the intervals' calibration and forecasts read every forecaster the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from smr_ts._logging import logger
from smr_ts.training import cutoff_keys, gain_z, pooled_z, sample_moments

__all__ = ["MAX_RANGES", "MIN_PAIRS_PER_RANGE", "NETWORK", "POINT_LOSSES", "Floor", "apply_floor", "candidates",
           "period_name", "period_names", "report_kept", "select_floor", "simple_corrections"]

NETWORK = "network"
# Losses whose forecast is a point, which a simple forecaster can stand in for; a Gaussian or quantile
# network's spread has no simple counterpart, so those fits keep the network.
POINT_LOSSES = ("mae", "mse")
_SECONDS = {"day": 86_400.0, "week": 7 * 86_400.0, "year": 365.2425 * 86_400.0}


def period_name(period_ns: float) -> str:
    """A calendar period's name (``layout.periods`` holds them in ns)."""
    seconds = period_ns / 1e9
    return min(_SECONDS, key=lambda name: abs(_SECONDS[name] - seconds))


def period_names(layout) -> list[str]:
    """The names of ``layout.periods``: its ``period_names``, or for a layout saved before them (calendar
    periods only) each period's calendar name."""
    return list(layout.period_names) or [period_name(p) for p in layout.periods]


def candidates(layout) -> list[str]:
    """The simple forecasters a fit with ``layout`` weighs the network against."""
    names = period_names(layout)
    return (["last value", "mean", "drift"] + [f"seasonal naive ({name})" for name in names]
            + [f"seasonal profile ({name})" for name in names])


def _period(layout, kind: str) -> float:
    name = kind[kind.index("(") + 1:-1]
    return next(p for p, n in zip(layout.periods, period_names(layout)) if n == name)


def simple_corrections(data, layout, kind: str, series: np.ndarray, k: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """(n, T) float64 corrections to the anchor, in units of the series' scale at the cut-off, of the
    simple forecaster ``kind`` for the queries at relative times ``t_query`` of ``series`` (index into
    ``data``, a :class:`~smr_ts.forecasting.features.ForecastTensors`) forecast from row ``k`` (NaN
    where the series has no anchor for a target)."""
    series, k = np.asarray(series), np.asarray(k)
    t_query = np.asarray(t_query, np.float64)
    anchor, scale = data.anchor[series, k], data.scale[series, k]
    if kind == "last value":
        return np.where(np.isfinite(anchor), 0.0, np.nan)
    if kind == "mean":
        return (data.mean[series, k] - anchor) / scale
    if kind == "drift":
        first_value, first_time = _first_observations(data)
        t_anchor = data.anchor_time[series, k]
        span = t_anchor - first_time[series]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(span > 0, (anchor - first_value[series]) / span, 0.0)
        return slope * (t_query[:, None] - t_anchor) / scale
    if kind.startswith("seasonal naive ("):
        return (_seasonal_values(data, layout, _period(layout, kind), series, k, t_query) - anchor) / scale
    if kind.startswith("seasonal profile ("):
        return (_profile_values(data, _period(layout, kind), series, k, t_query) - anchor) / scale
    raise ValueError(f"unknown simple forecaster {kind!r}; known: last value, mean, drift, seasonal naive (<period>), "
                     "seasonal profile (<period>)")


def _first_observations(data) -> tuple[np.ndarray, np.ndarray]:
    """(S, T) each series' first observed value of each target and its time (NaN if none)."""
    observed = np.isfinite(data.target)
    first = np.argmax(observed, axis=1)  # (S, T)
    rows = np.arange(data.target.shape[0])[:, None]
    seen = observed.any(axis=1)
    value = np.where(seen, data.target[rows, first, np.arange(data.target.shape[2])[None, :]], np.nan)
    return value, np.where(seen, data.time[rows, first], np.nan)


def _seasonal_values(data, layout, period: float, series: np.ndarray, k: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """(n, T) the seasonal naive forecast's value (the anchor where no observation is close enough)."""
    out = np.array(data.anchor[series, k], dtype=np.float64)
    tolerance = 0.5 * layout.gap
    for s in np.unique(series):
        at = np.flatnonzero(series == s)
        cut_time = data.time[s, k[at]]
        back = np.ceil((t_query[at] - cut_time) / period)  # whole periods that reach the cut-off
        target = t_query[at] - np.maximum(back, 1.0) * period
        for j in range(data.target.shape[2]):
            rows = np.flatnonzero(np.isfinite(data.target[s, : data.lengths[s], j]))
            if not len(rows):
                continue
            times = data.time[s, rows]
            pos = np.searchsorted(times, target)
            below = np.clip(pos - 1, 0, len(rows) - 1)
            above = np.clip(pos, 0, len(rows) - 1)
            # Between two observations the cut-off has seen, no more than a quarter period apart: linear
            # interpolation in time; else the nearer one seen within half a median gap; else the anchor.
            seen_below, seen_above = rows[below] <= k[at], rows[above] <= k[at]
            d_below = np.where(seen_below, np.abs(times[below] - target), np.inf)
            d_above = np.where(seen_above, np.abs(times[above] - target), np.inf)
            nearest = np.where(d_above < d_below, above, below)
            value = np.where(np.minimum(d_above, d_below) <= tolerance, data.target[s, rows[nearest], j], out[at, j])
            span = times[above] - times[below]
            between = seen_below & seen_above & (times[below] <= target) & (target <= times[above]) & (span > 0) \
                & (span <= period / 4)
            weight = np.where(between, (target - times[below]) / np.where(span > 0, span, 1.0), 0.0)
            interpolated = (1 - weight) * data.target[s, rows[below], j] + weight * data.target[s, rows[above], j]
            out[at, j] = np.where(between, interpolated, value)
    return out


PROFILE_PERIODS = 5  # whole periods averaged (fewer left the profile as noisy as one period's copy)
PROFILE_HALF_WIDTH = 1 / 26  # of a period, each side of a phase: two weeks of a year
PROFILE_RECENT = 1 / 13  # of a period, the window of the level: four weeks of a year
PROFILE_MIN_ROWS = 4  # observations a period needs to count


def _profile_values(data, period: float, series: np.ndarray, k: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """(n, T) the seasonal profile forecast's value (the anchor where the history holds too few periods)."""
    out = np.array(data.anchor[series, k], dtype=np.float64)
    t_query = np.asarray(t_query, np.float64)
    for s in np.unique(series):
        at = np.flatnonzero(series == s)
        for j in range(data.target.shape[2]):
            observed = np.flatnonzero(np.isfinite(data.target[s, : data.lengths[s], j]))
            seen = np.searchsorted(observed, k[at], side="right")  # observations at or before each cut
            ok = seen > 0
            value = _profile_forecast(data.time[s, observed], data.target[s, observed, j], period,
                                      data.time[s, observed[seen[ok] - 1]], t_query[at[ok]])
            out[at[ok], j] = np.where(np.isnan(value), out[at[ok], j], value)
    return out


def _profile_forecast(times: np.ndarray, y: np.ndarray, period: float, end: np.ndarray,
                      t_query: np.ndarray) -> np.ndarray:
    """Per query, the recent level plus the seasonal profile at ``t_query``, from the observations ``y`` at
    sorted ``times`` up to ``end`` (the latest one its cut has seen): NaN with fewer than two periods of
    ``PROFILE_MIN_ROWS`` observations. Every window ends at or before ``end``, so no query reads past its
    cut; window means come from prefix sums, two binary searches each, for all queries at once."""
    total = np.concatenate([[0.0], np.cumsum(y)])
    half = PROFILE_HALF_WIDTH * period

    def window(lower, upper, open_lower):
        """(mean, count) of the observations in (lower, upper], or [lower, upper] where not ``open_lower``."""
        a = np.where(open_lower, np.searchsorted(times, lower, side="right"),
                     np.searchsorted(times, lower, side="left"))
        b = np.maximum(np.searchsorted(times, upper, side="right"), a)
        return (total[b] - total[a]) / np.maximum(b - a, 1), b - a

    starts = end[None, :] - np.arange(1, PROFILE_PERIODS + 1)[:, None] * period  # (periods, queries)
    means, counts = window(starts, starts + period, True)
    usable = counts >= PROFILE_MIN_ROWS

    def profile(t, q):
        """The profile at times ``t`` for the cuts of queries ``q``: the mean deviation over the usable periods."""
        deviation, count = np.zeros(len(t)), np.zeros(len(t))
        for start, mean, use in zip(starts[:, q], means[:, q], usable[:, q]):
            phase = start + np.mod(t - start, period)  # the same phase within this period
            low = phase - half
            value, n = window(np.maximum(low, start), np.minimum(phase + half, start + period), low <= start)
            found = use & (n > 0)
            deviation += np.where(found, value - mean, 0.0)
            count += found
        return deviation / np.maximum(count, 1)

    # The level: over the observations of the last PROFILE_RECENT of a period before each end, less the profile.
    first = np.searchsorted(times, end - PROFILE_RECENT * period, side="right")
    last = np.searchsorted(times, end, side="right")
    q = np.repeat(np.arange(len(end)), last - first)
    rows = np.arange(len(q)) - np.repeat(np.cumsum(last - first) - (last - first), last - first) + first[q]
    level = np.bincount(q, weights=y[rows] - profile(times[rows], q), minlength=len(end)) / np.maximum(last - first, 1)
    return np.where(usable.sum(0) >= 2, level + profile(t_query, np.arange(len(end))), np.nan)


@dataclass(frozen=True)
class Floor:
    """What model selection kept, by how far ahead a forecast is: ``kinds[i]`` (the network or a simple
    forecaster) answers forecasts in the ``i``-th range of time ahead of the series' last row, the
    ranges split at ``edges`` (raw units, ascending; bin ``i`` is ``[edges[i - 1], edges[i])``)."""

    edges: tuple = ()
    kinds: tuple = (NETWORK,)

    def bins(self, ahead: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges, np.float64), np.asarray(ahead, np.float64), side="right")

    @property
    def network_only(self) -> bool:
        return all(kind == NETWORK for kind in self.kinds)

    def describe(self, show=str) -> str:
        """One line: ``"network"``, or e.g. ``"network, mean from 3 days ahead"``."""
        text, current = self.kinds[0], self.kinds[0]
        for edge, kind in zip(self.edges, self.kinds[1:]):
            if kind != current:
                text, current = text + f", {kind} from {show(edge)} ahead", kind
        return text

    def to_json(self) -> dict:
        return {"edges": [float(e) for e in self.edges], "kinds": list(self.kinds)}

    @classmethod
    def from_json(cls, saved: dict) -> "Floor":
        return cls(tuple(saved["edges"]), tuple(saved["kinds"]))


def apply_floor(floor: Floor, data, layout, series: np.ndarray, k: np.ndarray, t_query: np.ndarray,
                network_point) -> np.ndarray:
    """(n, T) point forecasts of what ``floor`` kept for each query (``network_point()``: the network's,
    computed only when a range keeps the network)."""
    bins = floor.bins(t_query - data.time[series, k])
    kinds = list(floor.kinds)
    if any(kinds[b] == NETWORK for b in np.unique(bins)):
        point = np.array(network_point(), dtype=np.float64)
    else:
        point = np.full(data.anchor[series, k].shape, np.nan)
    for b, kind in enumerate(kinds):
        at = np.flatnonzero(bins == b)
        if kind == NETWORK or not len(at):
            continue
        s, kk = series[at], k[at]
        point[at] = data.anchor[s, kk] + data.scale[s, kk] * simple_corrections(data, layout, kind, s, kk,
                                                                                 t_query[at])
    return point


MIN_PAIRS_PER_RANGE = 200  # held-out pairs behind each range's choice, at least
MAX_RANGES = 3
MIN_GAIN_Z = 2.0  # replaces last value only with this many standard errors of gain over cut-offs (as RequireGain)


def _cutoff_gains(errors: np.ndarray, weights: np.ndarray, cutoff: np.ndarray, names: list) -> list:
    """Per candidate, its mean gain over last value at each cut-off (the pairs' summed errors ``errors``
    (n, len(names)) and ``weights`` (n,), grouped by ``cutoff``): a cut-off's queries share one future."""
    if not len(cutoff):
        return [np.zeros(0) for _ in names]
    _, group = np.unique(cutoff, return_inverse=True)
    count = np.bincount(group, weights=weights)
    keep = count > 0
    last = errors[:, names.index("last value")]
    return [(np.bincount(group, weights=last - errors[:, c]) / np.where(keep, count, 1.0))[keep]
            for c in range(len(names))]


@torch.no_grad()
def select_floor(model, batches: list, kinds: list[str], network_is_last_value: bool,
                 reduce=None) -> tuple[Floor, pd.DataFrame]:
    """Score the network and each simple forecaster ``kinds`` on the validation ``batches`` (collated with
    ``simple=kinds``): scaled MAE over the same pairs, in up to ``MAX_RANGES`` ranges of time ahead of
    equal numbers of pairs (``MIN_PAIRS_PER_RANGE`` each at least; one range with ``reduce``, a
    :class:`~smr_ts.distributed.Collective`, over every rank's pairs). Each range keeps its lowest score
    among last value and the forecasters whose gain over it per cut-off reaches ``MIN_GAIN_Z`` standard
    errors (the network on ties; when training kept the last-value network, the network is last value
    and is not a candidate of its own). Returns the :class:`Floor` and the scores (a row per range: its upper
    edge ``up_to``, every candidate's score, what it ``kept``)."""
    model.eval()
    names = [NETWORK, *kinds]
    errors, weights, aheads, cutoffs, offset = [], [], [], [], 0
    for batch in batches:
        mean, _ = model(batch)
        w, target = batch["weight"], batch["target"]
        per = [(mean - target).abs()] + [(batch["simple"][:, :, c] - target).abs() for c in range(len(kinds))]
        used = w.sum(-1) > 0  # (B, P) pairs with an observed target
        errors.append(torch.stack([(e * w).sum(-1)[used] for e in per], -1).double().cpu().numpy())
        weights.append(w.sum(-1)[used].double().cpu().numpy())
        aheads.append(batch["ahead"][used].cpu().numpy())
        keys = cutoff_keys(batch["k"])
        cutoffs.append(offset + keys[used].cpu().numpy())
        offset += int(keys.max()) + 1 if keys.numel() else 0
    errors = np.concatenate(errors) if errors else np.zeros((0, len(names)))
    cutoff = np.concatenate(cutoffs) if cutoffs else np.zeros(0, np.int64)
    weights = np.concatenate(weights) if weights else np.zeros(0)
    ahead = np.concatenate(aheads) if aheads else np.zeros(0)
    if reduce is not None:
        *totals, count = reduce.sum([*errors.sum(0).tolist(), float(weights.sum())])
        edges, table = (), [np.asarray(totals) / max(count, 1.0)]
        gains = [[pooled_z(reduce.gather(sample_moments(g))) for g in _cutoff_gains(errors, weights, cutoff, names)]]
    else:
        n_ranges = int(np.clip(len(ahead) // MIN_PAIRS_PER_RANGE, 1, MAX_RANGES))
        edges = tuple(np.unique(np.quantile(ahead, np.arange(1, n_ranges) / n_ranges))) if len(ahead) else ()
        edges = tuple(e for e in edges if e > ahead.min())  # no empty first range
        bins = np.searchsorted(np.asarray(edges), ahead, side="right")
        table = [errors[bins == b].sum(0) / max(weights[bins == b].sum(), 1.0) for b in range(len(edges) + 1)]
        gains = [[gain_z(torch.from_numpy(g)) for g in _cutoff_gains(errors[bins == b], weights[bins == b], cutoff[bins == b], names)]
                 for b in range(len(edges) + 1)]
    choices = []
    for scores, z in zip(table, gains):
        eligible = {n: v for n, v, zn in zip(names, scores, z)
                    if np.isfinite(v) and not (network_is_last_value and n == NETWORK)
                    and (n == "last value" or zn >= MIN_GAIN_Z)}
        choices.append(min(eligible, key=eligible.get) if eligible else NETWORK)
    frame = pd.DataFrame(table, columns=names)
    frame.insert(0, "up_to", list(edges) + [np.inf])
    frame["kept"] = choices
    if network_is_last_value:
        frame[NETWORK] = np.nan  # it was last value
    return Floor(edges, tuple(choices)), frame


def report_kept(floor: Floor, scores: pd.DataFrame, network_is_last_value: bool, show=str) -> None:
    """What model selection kept and why, in one INFO line on the ``"smr_ts"`` logger."""
    lines = []
    for _, row in scores.iterrows():
        others = ", ".join(f"{n} {row[n]:.3g}" for n in scores.columns if n not in ("up_to", "kept", row["kept"])
                           and np.isfinite(row[n]))
        reach = "all forecasts" if len(scores) == 1 else (f"up to {show(row['up_to'])} ahead"
                                                          if np.isfinite(row["up_to"]) else "further ahead")
        lines.append(f"{reach}: {row['kept']} {row[row['kept']]:.3g} (others: {others})")
    cause = ("training did not beat last value, so " if network_is_last_value else "")
    logger.info(f"{cause}model selection kept {floor.describe(show)!r} by scaled MAE on the held-out forecasts: "
                + "; ".join(lines) + " (selected_forecaster_, selection_scores_; floor=False keeps the network)")
