"""Conformal prediction intervals for forecasts: held-out residuals, grouped by how far ahead.

Split conformal prediction (Vovk et al. 2005; Lei et al. 2018), normalised by each series' scale
and grouped by time ahead, in the manner of Stankeviciute et al. (2021) for multi-step forecasts:

1. **Calibration, at fit** (:func:`calibration_residuals`). The fitted network forecasts the part
   of the data that training did not score: the held-out validation series (every row serves as a
   cut-off, and every later observation of the series within ``horizon`` of it is a query), or
   for a single series its last part in time (cut-offs from where validation starts), or
   ``validation_data`` (the fit's validation plan, :mod:`smr_ts.holdout`). Held-out series serve
   from the later half of their span on (``LATE_HALF``): forecasts are made from the end of a
   history, and on a growth curve the errors from its start are smaller than those from its end. Where those later halves hold fewer than
   ``MIN_LATE_PAIRS`` pairs (a few short series), every cut-off of the held-out series serves.
   Each pair gives how far ahead it was and its **score**: the absolute error divided by the
   series' recent scale at the cut-off (:func:`recent_scale`: the mean absolute change over the
   last ``horizon`` of its history, and over its last ``RECENT_CHANGES`` changes at least, with
   the typical series' change as a prior for short histories), so that series of different sizes pool
   fairly, a series whose changes grow (a growth curve, rising volatility) is measured by its
   latest ones, and a forecast made at a quiet time of day is not measured by that quiet hour
   alone. At most ``MAX_PAIRS`` pairs are kept (a seeded random subset).
2. **Groups of history** (:func:`history_groups`): a cut-off with fewer than ``RECENT_CHANGES``
   observed changes behind it measures its scale by those few, and one change can be close to zero,
   so its scores have a heavier tail. Such short-history pairs calibrate short-history forecasts,
   and the rest the rest (Mondrian conformal prediction, Vovk et al. 2005, ch. 4), wherever a group
   holds ``MIN_PER_BIN`` scores; a smaller group borrows every pair's.
3. **Bins of time ahead** (:func:`ahead_bins`): within a group, equal-count bins of the calibration
   pairs' time ahead, at least ``MIN_PER_BIN`` pairs each and at most ``MAX_BINS`` bins, so a
   forecast far ahead gets the spread of forecasts that far ahead.
4. **An interval, at forecast** (:func:`interval_columns`): the point forecast plus and minus the
   series' recent scale at its last row times the ``ceil((n + 1) * level / 100)``-th smallest of the
   ``n`` scores of the query's group and bin (the finite-sample conformal quantile). When a bin has
   too few scores for a level the interval is unbounded (infinite), with a warning, rather than too
   narrow.

Nothing here reads a DataFrame: the estimator hands in arrays and gets columns back.
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
import torch

from smr_ts.forecasting.features import ForecastTensors
from smr_ts.forecasting.floor import Floor, apply_floor
from smr_ts.forecasting.layout import ForecastLayout
from smr_ts.forecasting.queries import query_features
from smr_ts.holdout import ValidationPlan
from smr_ts.inference import CHUNK, on_device, over_chunks

__all__ = ["MAX_BINS", "MAX_PAIRS", "MIN_LATE_PAIRS", "MIN_PER_BIN", "adapted_bounds", "ahead_bins", "calibration_residuals",
           "calibration_source", "check_levels", "conformal_quantile", "history_groups", "interval_columns",
           "interval_names", "prediction_names", "quantile_names", "recent_scale", "recent_scale_and_changes", "uncertainty_columns"]

MAX_PAIRS = 4096  # calibration pairs kept at most: quantiles to about 1 % at the 95 % level
MIN_PER_BIN = 100  # pairs per time-ahead bin at least (a 95 % bound needs 19; 100 makes it stable)
MAX_BINS = 8
# Changes averaged in the recent scale at least: fewer make widths noisy, all of them lag a changing
# scale (docs/results/forecasting_design.md, intervals rows).
RECENT_CHANGES = 5
# Fewer late pairs than this, and every cut-off serves: 39 pairs bound a 97.5 % interval
# (docs/results/forecasting_design.md).
MIN_LATE_PAIRS = 40


def prediction_names(alias: str, target_names) -> list[str]:
    """The forecast column of each target, named after the model as the Nixtla libraries name theirs: the
    ``alias`` alone for one target (``S5``), ``<alias>:<target>`` for each of several (``S5:temp``), so
    that the target's own name stays the truth's. Intervals, quantiles and standard deviations add their
    suffixes to these names (:func:`interval_names`, :func:`quantile_names`, ``_std``)."""
    targets = list(target_names)
    return [alias] if len(targets) == 1 else [f"{alias}:{t}" for t in targets]


def interval_names(name: str, levels) -> list[str]:
    """Nixtla's column names for the intervals of prediction column ``name``: lower bounds from the
    widest level in, then upper bounds from the narrowest out (``S5-lo-95, S5-lo-80, S5-hi-80, S5-hi-95``)."""
    levels = sorted(levels)
    return [f"{name}-lo-{_label(lv)}" for lv in reversed(levels)] + [f"{name}-hi-{_label(lv)}" for lv in levels]


def quantile_names(name: str, quantiles) -> list[str]:
    """neuralforecast's column names for the quantile levels of prediction column ``name``: ``S5_ql0.1``."""
    return [f"{name}_ql{q}" for q in quantiles]


def _label(level) -> str:
    return f"{level:g}"


def check_levels(level) -> list:
    """``level`` as a list of coverage percentages in (0, 100); a ValueError naming it otherwise, and
    for levels that are all fractions (every one at most 1: ``level=[0.8, 0.95]``) one that shows the
    call in percent."""
    levels = [level] if isinstance(level, Real) else level
    try:
        levels = list(levels)
    except TypeError:
        levels = None
    numbers = bool(levels) and all(isinstance(v, Real) and not isinstance(v, bool) for v in levels)
    if numbers and all(0 < v <= 1 for v in levels):  # read as percent they would be near-zero-width intervals
        percent = [p for p in (float(f"{100 * v:.10g}") for v in levels) if p < 100]  # 1 would be 100 %: no interval
        shown = (f"{percent[0]:g}" if isinstance(level, Real) and percent else
                 f"[{', '.join(f'{v:g}' for v in percent or (80, 95))}]")
        asked = " and ".join(f"{v:g} %" for v in levels)
        raise ValueError(f"level is a coverage in percent, strictly between 0 and 100, but level={level!r} looks like "
                         f"fractions: it asks for {asked} intervals, almost zero-width. In percent: level={shown}")
    if not levels or not all(isinstance(v, Real) and not isinstance(v, bool) and 0 < v < 100 for v in levels):
        raise ValueError(f"level must be a coverage in percent strictly between 0 and 100, or a list of them "
                         f"(e.g. level=[80, 95]); got {level!r}")
    return sorted(set(levels))


def calibration_source(data: ForecastTensors, layout: ForecastLayout, plan: ValidationPlan, val_data=None):
    """What calibrates a fit's intervals: what its validation ``plan`` held out (:mod:`smr_ts.holdout`),
    ``(tensors, first_cut, [every_cut])`` with per series the relative time from which rows serve as
    cut-offs (and those to fall back on when the first give too few pairs), or None when the fit
    holds nothing out."""
    held = plan.validation(data, val_data)
    cuts = plan.calibration_cuts(held, layout)
    return None if cuts is None else (held, *cuts)


def recent_scale(data: ForecastTensors, series: np.ndarray, k: np.ndarray, changes: int = RECENT_CHANGES,
                 window: float = 0.0, prior: np.ndarray | None = None) -> np.ndarray:
    """(P, T): per (series, row ``k``), the mean absolute change between consecutive observed targets
    over the changes observed in the ``window`` (relative time) up to row ``k``, and over its last
    ``changes`` changes at least (fewer when there are fewer); the model's expanding scale
    (``data.scale``) where there is no positive one. With ``prior`` (T,), a history of fewer than
    ``changes`` changes counts it as one more change, as the model's own scale counts the training
    series' typical one (``layout.fallback``): one change alone can be close to zero."""
    return recent_scale_and_changes(data, series, k, changes, window, prior)[0]


def recent_scale_and_changes(data: ForecastTensors, series: np.ndarray, k: np.ndarray,
                             changes: int = RECENT_CHANGES, window: float = 0.0,
                             prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recent_scale`, and (P, T) the changes between consecutive observed targets up to row
    ``k`` (its history group, :func:`history_groups`), from the same pass."""
    out = np.array(data.scale[series, k], dtype=np.float64)
    n_changes = np.zeros(out.shape, np.int64)
    for s in np.unique(series):
        at = np.flatnonzero(series == s)
        t_cut = data.time[s, k[at]]
        for j in range(data.target.shape[-1]):
            y = data.target[s, : data.lengths[s], j]
            observed = np.flatnonzero(np.isfinite(y))
            total = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(y[observed])))])  # changes up to each observation
            last = np.maximum(np.searchsorted(observed, k[at], side="right") - 1, 0)  # changes up to row k
            n_changes[at, j] = last
            # changes whose later observation lies in (t_cut - window, t_cut]
            in_window = last - np.maximum(np.searchsorted(data.time[s, observed], t_cut - window, side="right") - 1, 0)
            used = np.minimum(np.maximum(changes, in_window), last)
            summed = total[last] - total[last - used] if len(observed) else np.zeros(len(at))
            if prior is not None:
                few = used < changes
                summed, used = summed + few * prior[j], used + few
            value = summed / np.maximum(used, 1)
            out[at, j] = np.where((used > 0) & (value > 0), value, out[at, j])
    return out, n_changes


def target_prior(layout: ForecastLayout) -> np.ndarray:
    """(T,) the training series' typical scale of each target (``layout.fallback``), the recent scale's prior."""
    return np.asarray(layout.fallback, dtype=np.float64)[list(layout.target_index)]


def history_groups(changes: np.ndarray) -> np.ndarray:
    """Calibration groups of pairs or forecasts by the ``changes`` behind their cut-off: 1 where fewer
    than ``RECENT_CHANGES`` (the recent scale rests on those few), else 0."""
    return (np.asarray(changes) < RECENT_CHANGES).astype(np.int64)


def _pairs(data: ForecastTensors, layout: ForecastLayout, first_cut: np.ndarray, rng: np.random.Generator):
    """Every (series, cut k, query q): k a row at or after ``first_cut`` with an anchor, q a later
    row with an observed target at most ``horizon`` after it; a random ``MAX_PAIRS`` of them."""
    per_series = []
    for s in range(len(data.lengths)):
        n = int(data.lengths[s])
        times = data.time[s, :n]
        k = np.flatnonzero((times >= first_cut[s]) & np.isfinite(data.anchor[s, :n]).any(-1))
        end = np.searchsorted(times, times[k] + layout.horizon, side="right")  # queries in (k, end)
        per_series.append((k, np.maximum(end - k - 1, 0)))
    counts = np.array([c.sum() for _, c in per_series], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    picks = np.sort(rng.choice(total, size=min(total, MAX_PAIRS), replace=False))
    series = np.searchsorted(np.cumsum(counts), picks, side="right")
    picks = picks - np.concatenate([[0], np.cumsum(counts)])[series]
    out_k, out_q = np.empty(len(picks), np.int64), np.empty(len(picks), np.int64)
    for s in np.unique(series):
        k, count = per_series[s]
        at = series == s
        cum = np.cumsum(count)
        j = np.searchsorted(cum, picks[at], side="right")
        out_k[at] = k[j]
        out_q[at] = k[j] + 1 + picks[at] - (cum[j] - count[j])
    return series, out_k, out_q


def calibration_residuals(model, layout: ForecastLayout, source, rng: np.random.Generator, device,
                          chunk: int = CHUNK, floor: Floor = Floor()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out forecasts' time ahead (raw units, (n,)), scores (absolute errors in units of the
    series' recent scale at the cut-off, (n, T), NaN where the query did not observe a target) and
    the observed changes behind each cut-off ((n, T), :func:`recent_scale_and_changes`), of the
    forecasters model selection kept (``floor``, per range ahead: :mod:`smr_ts.forecasting.floor`)."""
    n_targets = layout.n_targets
    nothing = np.zeros(0), np.zeros((0, n_targets)), np.zeros((0, n_targets), np.int64)
    if source is None:
        return nothing
    data, first_cut, *fallback = source
    series, k, q = _pairs(data, layout, first_cut, rng)
    if len(series) < MIN_LATE_PAIRS and fallback:  # short held-out series: their later halves hold too few pairs
        series, k, q = _pairs(data, layout, fallback[0], rng)  # every cut-off (the later ones among them)
    if not len(series):
        return nothing
    if not floor.network_only:
        forecast = apply_floor(floor, data, layout, series, k, data.time[series, q],
                               lambda: _network_forecasts(model, layout, data, series, k, q, device, chunk))
        return _residuals(data, layout, series, k, q, forecast)
    return _residuals(data, layout, series, k, q, _network_forecasts(model, layout, data, series, k, q, device, chunk))


def _network_forecasts(model, layout: ForecastLayout, data, series, k, q, device, chunk) -> np.ndarray:
    """(n, T) the network's forecasts of the pairs (series, k, q)."""

    def step(net, sel):  # the backbone's output at the cut-offs of the pairs of these series
        at = np.flatnonzero((series >= sel.start) & (series < sel.stop))
        if not len(at):
            return at, None
        rows = np.arange(sel.start, sel.stop)
        length = int(data.lengths[rows].max())
        h = net.encode(*(torch.from_numpy(a[rows, :length]).to(device) for a in (data.inputs, data.dt, data.mask)))
        return at, h[torch.from_numpy(series[at] - sel.start), torch.from_numpy(k[at])].cpu()

    h_cut = None  # (n, width) the backbone's output at each pair's cut-off
    for at, h in over_chunks(model, device, len(data.lengths), step, chunk):
        if h is not None:
            h_cut = torch.zeros(len(series), h.shape[-1]) if h_cut is None else h_cut
            h_cut[at] = h
    query = torch.from_numpy(query_features(data, layout, series, k, data.time[series, q]))
    point = on_device(model, device, lambda net: net.decode(h_cut.to(device), query.to(device))[0].cpu())
    return data.anchor[series, k] + data.scale[series, k] * point.double().numpy()


def _residuals(data, layout: ForecastLayout, series, k, q, forecast):
    scale, n_changes = recent_scale_and_changes(data, series, k, window=layout.horizon, prior=target_prior(layout))
    return data.time[series, q] - data.time[series, k], np.abs(data.target[series, q] - forecast) / scale, n_changes


def ahead_bins(ahead: np.ndarray) -> np.ndarray:
    """Inner edges of equal-count bins of time ahead: ``MIN_PER_BIN`` pairs per bin at least,
    ``MAX_BINS`` bins at most (no edge: one bin). Edges are observed values above the smallest, so
    no bin is empty (ties merge bins); bin ``i`` is ``[edge[i - 1], edge[i])``."""
    n_bins = int(np.clip(len(ahead) // MIN_PER_BIN, 1, MAX_BINS))
    if n_bins == 1:
        return np.zeros(0)
    edges = np.unique(np.quantile(ahead, np.arange(1, n_bins) / n_bins, method="inverted_cdf"))
    return edges[edges > ahead.min()]


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level / 100)``-th smallest of ``n`` finite scores: a new exchangeable score
    is at most it with probability >= level %; infinite when ``n`` is too small for the level."""
    scores = np.sort(scores[np.isfinite(scores)])
    rank = math.ceil((len(scores) + 1) * level / 100)
    return float(scores[rank - 1]) if rank <= len(scores) else math.inf


def interval_columns(point: np.ndarray, scale: np.ndarray, ahead: np.ndarray, calibration_ahead: np.ndarray,
                     calibration_scores: np.ndarray, levels: list, names: list[str], changes: np.ndarray | None = None,
                     calibration_changes: np.ndarray | None = None) -> dict:
    """Conformal intervals of forecasts ``point`` (n, T) made ``ahead`` (n,) after their series' last row
    with scales ``scale`` (n, T): ``{column name: bounds}``, named by :func:`interval_names`. With the
    observed ``changes`` (n, T) behind each forecast and ``calibration_changes`` behind each pair, each
    :func:`history_groups` group calibrates its own forecasts where it holds ``MIN_PER_BIN`` scores
    (without them, as models saved before the groups: one group)."""
    if not len(calibration_ahead):
        raise ValueError("level=...: this model has no calibration residuals: its fit held nothing out "
                         "(validation_fraction=0 and no validation_data), or the held-out part has no observation "
                         "within horizon of a cut-off; refit with validation_fraction > 0 (or a larger one)")
    grouped = changes is not None and calibration_changes is not None
    columns = {}
    for j, name in enumerate(names):
        finite = np.isfinite(calibration_scores[:, j])
        cal_group = history_groups(calibration_changes[:, j]) if grouped else np.zeros(len(finite), np.int64)
        query_group = history_groups(changes[:, j]) if grouped else np.zeros(len(point), np.int64)
        half = np.empty((len(point), len(levels)))
        for g in np.unique(query_group):
            own = finite & (cal_group == g)
            use = own if own.sum() >= MIN_PER_BIN else finite  # a small group borrows every pair's scores
            at = query_group == g
            edges = ahead_bins(calibration_ahead[use])
            cal_bin = np.searchsorted(edges, calibration_ahead[use], "right")
            query_bin = np.searchsorted(edges, ahead[at], "right")
            scores = calibration_scores[use, j]
            group_half = np.empty((at.sum(), len(levels)))
            for b in np.unique(query_bin):
                group_half[query_bin == b] = [conformal_quantile(scores[cal_bin == b], lv) for lv in levels]
            half[at] = group_half
        if np.isinf(half).any():
            warnings.warn(f"level={levels}: a time-ahead bin of forecast column {name!r} has too few calibration "
                          f"residuals for the highest level ({int(finite.sum())} in all), so those bounds are infinite; "
                          "fit with more held-out data (validation_fraction, validation_data) or ask for a lower "
                          "level", UserWarning, stacklevel=4)
        width = half * scale[:, j, None]
        lo, hi = point[:, j, None] - width, point[:, j, None] + width
        for i, lv in enumerate(levels):
            columns[f"{name}-lo-{_label(lv)}"], columns[f"{name}-hi-{_label(lv)}"] = lo[:, i], hi[:, i]
    return {c: columns[c] for n in names for c in interval_names(n, levels)}


def uncertainty_columns(layout: ForecastLayout, calibration, names: list, quantiles, point: np.ndarray,
                        quantile_levels, data: ForecastTensors, series: np.ndarray, ahead: np.ndarray, levels) -> dict:
    """The columns beyond the point forecasts ``point`` (n, T) of queries of ``series`` (rows of ``data``),
    named after the prediction columns ``names`` (one per target): ``<name>_ql<q>`` per level of a
    ``loss="quantile"`` fit (``quantiles``, with ``quantile_levels`` (n, T, Q)), and with ``levels`` the
    conformal intervals of :func:`interval_columns` from ``calibration``
    (:class:`~smr_ts.forecasting.state.Calibration`; None: nothing held out)."""
    columns = {}
    for j, name in enumerate(names if quantiles else ()):
        columns.update(zip(quantile_names(name, quantiles), quantile_levels[:, j].T))
    if levels is not None:
        ahead_cal = np.zeros(0) if calibration is None else calibration.ahead
        scores = None if calibration is None else calibration.scores
        changes = None if calibration is None else calibration.changes
        # A calibration without the changes behind its pairs (saved before the groups) forecasts as it calibrated.
        prior = target_prior(layout) if changes is not None else None
        scale, n_changes = recent_scale_and_changes(data, series, data.lengths[series] - 1, window=layout.horizon,
                                                    prior=prior)
        columns.update(interval_columns(point, scale, ahead, ahead_cal, scores, levels, names, n_changes,
                                        changes))
    return columns


def adapted_bounds(layout: ForecastLayout, calibration, name: str, j: int, point: np.ndarray, data: ForecastTensors,
                   series: np.ndarray, ahead: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of target ``j`` (``name``) for forecasts ``point`` (n, T) of ``series`` (rows of ``data``), each
    at its own level ``levels`` (n,) (:mod:`smr_ts.forecasting.adaptive`; rounded to 0.1 %, 100: unbounded)."""
    changes = calibration.changes
    prior = target_prior(layout) if changes is not None else None
    scale, n_changes = recent_scale_and_changes(data, series, data.lengths[series] - 1, window=layout.horizon,
                                                prior=prior)
    rounded = np.round(np.asarray(levels, np.float64), 1)
    lo, hi = np.empty(len(point)), np.empty(len(point))
    for lv in np.unique(rounded):
        at = rounded == lv
        with warnings.catch_warnings():
            if lv >= 100:  # unbounded by the adaptation, not for want of calibration residuals
                warnings.simplefilter("ignore", UserWarning)
            cols = interval_columns(point[at][:, [j]], scale[at][:, [j]], ahead[at], calibration.ahead,
                                    calibration.scores[:, [j]], [float(lv)], [name], n_changes[at][:, [j]],
                                    None if changes is None else changes[:, [j]])
        lo[at], hi[at] = (cols[bound] for bound in interval_names(name, [float(lv)]))
    return lo, hi
