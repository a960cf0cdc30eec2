"""Training examples of a forecasting fit: (cut, query) pairs drawn in time, in windows of rows.

Training is linear in series length: the backbone runs once over a window of rows and every row of
the window can serve as a cut, so one pass scores many (cut, query) pairs. A pair's query is a
row with an observed target; its distance ahead is drawn in time up to ``horizon``, or a few median
gaps where that is longer (:func:`draw_ahead`), and the cut is the last row at least that far before it.
"""

from __future__ import annotations

import numpy as np
import torch

from smr_ts.forecasting.features import ForecastTensors
from smr_ts.forecasting.floor import candidates, simple_corrections
from smr_ts.forecasting.layout import MIN_GAPS_AHEAD, ForecastLayout, auto_batch_size
from smr_ts.forecasting.queries import query_features
from smr_ts.holdout import ValidationPlan

__all__ = ["LOG_SHARE", "ORIGINS", "PairSampler", "draw_ahead", "origin_pairs", "training_pairs",
           "training_reach"]


_MAX_PAIRS = 1024  # scored queries per window and pass (the longest window: every observed row)
_MIN_STEPS = 2  # optimisation steps per epoch at least: windows are drawn again from long series
_COVERAGE = 8  # windows drawn from a long series per epoch, in multiples of its length
LOG_SHARE = 0.5  # of the draws of time ahead, log-uniform (weighting short horizons); the rest uniform


def training_reach(layout: ForecastLayout) -> float:
    """How far ahead training draws (raw units): the horizon, or ``MIN_GAPS_AHEAD`` median gaps where
    that is longer. Validation, the floor and the intervals score up to the horizon only."""
    return max(layout.horizon, MIN_GAPS_AHEAD * layout.gap)


def draw_ahead(layout: ForecastLayout, rng: np.random.Generator, n: int, reach: float) -> np.ndarray:
    """How far ahead each query is, up to ``reach`` (raw units): a share ``1 - LOG_SHARE`` uniform in
    time on (0, reach] (as queries spread over a horizon are), the rest log-uniform from half a median
    gap to the reach (as the next few observations are, whatever the horizon), so short horizons
    weigh more."""
    uniform = reach * (1.0 - rng.random(n))
    low = min(0.5 * layout.gap, reach)
    log_uniform = np.exp(rng.uniform(np.log(low), np.log(reach), n))
    return np.where(rng.random(n) < 1.0 - LOG_SHARE, uniform, log_uniform)


def _pair_targets(data: ForecastTensors, series, k, q):
    """Scaled targets ``(y_q - anchor_k) / scale`` and their weights (observed, anchored, finite)."""
    y, anchor, scale = data.target[series, q], data.anchor[series, k], data.scale[series, k]
    r = (y - anchor) / scale
    weight = np.isfinite(r)
    return np.where(weight, r, 0.0).astype(np.float32), weight.astype(np.float32), scale.astype(np.float32)


def _collate(data: ForecastTensors, layout: ForecastLayout, segments, pairs, device, simple=()) -> dict:
    """Windows (series, start, stop) and their pairs (series-local k, q rows) as one batch; with ``simple``
    (names of :mod:`smr_ts.forecasting.floor`'s forecasters), each one's corrections on the pairs too
    (``"simple"``: (B, P, len(simple), T), 0 where undefined) and how far ahead each pair is (``"ahead"``:
    (B, P) float64, raw units)."""
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
    baselines = np.zeros((b, n_pairs, len(simple), n_t), np.float32)
    ahead = np.zeros((b, n_pairs), np.float64)
    for i, (s, start, stop) in enumerate(segments):
        n = stop - start
        inputs[i, :n], dt[i, :n], mask[i, :n] = data.inputs[s, start:stop], data.dt[s, start:stop], data.mask[s, start:stop]
    # every window's pairs at once: the features are per pair, and one call per batch saves a call per window
    window = np.concatenate([np.full(len(k), i) for i, (k, _) in enumerate(pairs)]).astype(np.int64)
    slot = np.concatenate([np.arange(len(k)) for k, _ in pairs]).astype(np.int64)
    series = np.asarray([s for s, _, _ in segments], np.int64)[window]
    k = np.concatenate([k for k, _ in pairs]).astype(np.int64)
    q = np.concatenate([q for _, q in pairs]).astype(np.int64)
    if len(k):
        k_pos[window, slot] = k - np.asarray([start for _, start, _ in segments], np.int64)[window]
        qf[window, slot] = query_features(data, layout, series, k, data.time[series, q])
        target[window, slot], weight[window, slot], scale[window, slot] = _pair_targets(data, series, k, q)
        ahead[window, slot] = data.time[series, q] - data.time[series, k]
        for c, kind in enumerate(simple):
            baselines[window, slot, c] = np.nan_to_num(simple_corrections(data, layout, kind, series, k,
                                                                          data.time[series, q]))
    as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    batch = {"inputs": as_t(inputs), "dt": as_t(dt), "mask": as_t(mask), "k": as_t(k_pos), "query": as_t(qf),
             "target": as_t(target), "weight": as_t(weight), "scale": as_t(scale)}
    if simple:
        batch["simple"], batch["ahead"] = as_t(baselines), torch.from_numpy(ahead)
    return batch


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
    reach : float, optional
        How far ahead pairs are drawn (raw units): :func:`training_reach` by default; validation
        pairs are drawn up to the horizon.
    min_windows : int
        Windows per epoch at least (drawn again from long series), so that a few long series
        still give several optimisation steps per epoch.
    max_windows : int
        Windows per epoch at most (a random subset beyond it).
    """

    def __init__(self, data: ForecastTensors, layout: ForecastLayout, *, window: int, batch_size: int, device,
                 query_until: np.ndarray | None = None, min_windows: int = 0, max_windows: int = 1024,
                 reach: float | None = None):
        self.data, self.layout, self.window = data, layout, window
        self.reach = training_reach(layout) if reach is None else reach
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
        ahead = draw_ahead(self.layout, rng, len(q), self.reach)
        # A query closer to the window's start than its draw is forecast from a cut drawn in what
        # history it has: short series and a long horizon still give every query a cut.
        room = self.data.time[s, q] - times[0]
        ahead = np.where(ahead > room, room * (1.0 - rng.random(len(q))), ahead)
        k = np.searchsorted(times, self.data.time[s, q] - ahead, side="right") - 1 + start
        keep = (k >= start) & (k < q) & np.isfinite(self.data.anchor[s, np.maximum(k, 0)]).any(-1)
        return k[keep], q[keep]

    def _batches(self, segments, rng, simple=()):
        pairs = [self._pairs(seg, rng) for seg in segments]
        kept = [i for i, (k, _) in enumerate(pairs) if len(k)]
        order = sorted(kept, key=lambda i: segments[i][2] - segments[i][1])  # similar lengths together
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [_collate(self.data, self.layout, [segments[i] for i in c], [pairs[i] for i in c], self.device,
                         simple) for c in chunks]

    def epoch(self, rng: np.random.Generator):
        """One epoch's batches, in random order."""
        batches = self._batches(self._windows(rng), rng)
        for i in rng.permutation(len(batches)):
            yield batches[i]

    def fixed(self, rng: np.random.Generator, simple=()) -> list[dict]:
        """Windows and pairs drawn once: a validation set (``simple``: see :func:`_collate`)."""
        return self._batches(self._windows(rng), rng, simple)


ORIGINS = 8  # origins per series when validating in time: the split, then every eighth of the way on


def origin_pairs(data: ForecastTensors, layout: ForecastLayout, origin_time: np.ndarray, *, window: int,
                 batch_size: int, device, simple=()) -> list[dict]:
    """Validation batches that forecast each series from its last row at or before each of ``ORIGINS``
    origins (the first at ``origin_time``, relative, per series; the others spread over the rest of the
    series) to its observed rows up to ``horizon`` later: the last part of a series, from several cut-offs,
    so that model selection does not hang on one."""
    segments, pairs = [], []
    for s in range(len(data.lengths)):
        times = data.time[s, : data.lengths[s]]
        observed = np.isfinite(data.target[s, : data.lengths[s]]).any(-1)
        for origin in origin_time[s] + (times[-1] - origin_time[s]) * np.arange(ORIGINS) / ORIGINS:
            k = int(np.searchsorted(times, origin, side="right")) - 1
            if k < 0 or not np.isfinite(data.anchor[s, k]).any():
                continue
            q = np.flatnonzero((times > times[k]) & (times <= times[k] + layout.horizon) & observed)
            if not len(q) or (segments and segments[-1] == (s, max(0, k + 1 - window), k + 1)):
                continue  # nothing to score, or the same cut-off as the previous origin
            segments.append((s, max(0, k + 1 - window), k + 1))  # the history up to the origin
            pairs.append((np.full(len(q), k), q))
    return [_collate(data, layout, segments[i : i + batch_size], pairs[i : i + batch_size], device, simple)
            for i in range(0, len(segments), batch_size)]


def training_pairs(data: ForecastTensors, layout: ForecastLayout, plan: ValidationPlan, val_data=None, *, window: int,
                   batch_size: int, device, rng: np.random.Generator):
    """The training sampler and the validation batches of a forecasting fit (``batch_size`` may be
    "auto": :func:`auto_batch_size`), as the validation ``plan`` says (:mod:`smr_ts.holdout`): pairs
    drawn once from the held-out series or ``val_data``; for a plan in time, forecasts of every series'
    last part from one origin, which training then does not score; or none."""
    if batch_size == "auto":
        batch_size = auto_batch_size(window)
    sampling = dict(window=window, batch_size=batch_size, device=device)
    split = plan.time_split(data, layout)
    sampler = PairSampler(plan.training(data), layout, query_until=split, min_windows=_MIN_STEPS * batch_size,
                          **sampling)
    held = plan.validation(data, val_data)
    if held is None:
        return sampler, None
    simple = candidates(layout)  # model selection weighs the network against them on the same pairs
    if split is not None:
        return sampler, origin_pairs(held, layout, split, simple=simple, **sampling)
    return sampler, PairSampler(held, layout, reach=layout.horizon, **sampling).fixed(rng, simple)
