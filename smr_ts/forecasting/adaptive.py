"""Intervals that adapt while streaming: adaptive conformal inference (Gibbs and Candès 2021) in ``update``.

The conformal intervals are calibrated once, at fit, on held-out forecasts. When a stream drifts (the
noise grows, a new regime starts), those scores no longer describe the new errors and the intervals
under- or over-cover. Each ``update(rows)`` first forecasts the rows it is given from the state before
them, with intervals at every level of ``RANK_GRID``, and logs for each row and target its
**coverage rank**: the lowest level whose interval holds the observed value (100 when none does).

At ``forecast(level=L)``, each series with logged rows forecasts at its own level, found by replaying
its ranks in arrival order through the ACI update with step ``ACI_STEP``::

    alpha_0 = 1 - L / 100
    err_t   = 1 if rank_t > 100 (1 - alpha_t) else 0     # the level in use then missed the value
    alpha_{t+1} = alpha_t + ACI_STEP (alpha_0 - err_t)

and its interval is the fit's conformal interval at level ``100 (1 - alpha_n)``, clipped to
``[MIN_LEVEL, 100]`` (100: unbounded). Misses widen the series' interval, covered rows narrow it, so
the share of covered rows over a stream tends to ``L`` whatever the drift (Gibbs and Candès, Prop. 4.1).
Replaying the ranks serves any level asked later. The rows of one ``update`` call are forecast from the
state before the call (several steps ahead when there are several), the rest from the rows before them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from smr_ts.forecasting.intervals import interval_names

__all__ = ["ACI_STEP", "MIN_LEVEL", "RANK_GRID", "CoverageLog", "coverage_ranks", "effective_levels"]

ACI_STEP = 0.05  # gamma: per logged row; Gibbs and Candès use 0.005 on long streams, a series' stream is short
RANK_GRID = [float(x) for x in np.arange(1, 100)]  # levels at which a logged row's coverage is read
MIN_LEVEL = 0.5  # the lowest level an adapted interval uses


@dataclass(frozen=True)
class CoverageLog:
    """The coverage ranks of the rows ``update`` appended, in arrival order: the series of each row and,
    per target, the lowest level of ``RANK_GRID`` whose interval held its value (100: none did; NaN: not
    observed)."""

    ids: np.ndarray  # (m,) object
    ranks: np.ndarray  # (m, T) float64

    def extended(self, ids, ranks) -> "CoverageLog":
        return CoverageLog(np.concatenate([self.ids, np.asarray(ids, dtype=object)]),
                           np.concatenate([self.ranks, ranks]))


def coverage_ranks(frame: pd.DataFrame, truth: np.ndarray, names: list) -> np.ndarray:
    """(r, T): per row of a forecast ``frame`` with intervals at every level of ``RANK_GRID`` and its
    observed values ``truth`` (r, T), the lowest level whose interval holds the value (100 if none;
    NaN where the value is missing or the forecast has no interval); ``names``: each target's forecast column."""
    ranks = np.full(truth.shape, np.nan)
    for j, name in enumerate(names):
        bounds = interval_names(name, RANK_GRID)  # lower bounds widest first, then upper narrowest first
        lo = frame[bounds[: len(RANK_GRID)][::-1]].to_numpy(float)
        hi = frame[bounds[len(RANK_GRID):]].to_numpy(float)
        inside = (lo <= truth[:, [j]]) & (truth[:, [j]] <= hi)
        first = np.where(inside.any(1), np.asarray(RANK_GRID)[inside.argmax(1)], 100.0)
        usable = np.isfinite(truth[:, j]) & np.isfinite(frame[name].to_numpy(float))
        ranks[:, j] = np.where(usable, first, np.nan)
    return ranks


def effective_levels(log: CoverageLog, ids: np.ndarray, level: float, j: int, step: float = ACI_STEP) -> np.ndarray:
    """(n,) the level each of the series ``ids`` forecasts its target ``j`` at, for the nominal ``level``:
    the ACI replay of its logged ranks (``level`` itself for a series with none)."""
    alpha0 = 1 - level / 100
    adapted = {}
    for sid, ranks in pd.Series(log.ranks[:, j]).groupby(pd.Index(log.ids, dtype=object), sort=False):
        alpha = alpha0
        for rank in ranks.dropna().to_numpy():
            alpha += step * (alpha0 - float(rank > 100 * (1 - alpha)))
        adapted[sid] = min(max(100 * (1 - alpha), MIN_LEVEL), 100.0)
    return pd.Index(np.asarray(ids, dtype=object)).map(adapted).to_numpy(np.float64, na_value=float(level))
