"""Panels to tensors, and tensors to training windows and batches.

Sequence regression trains on whole series, scored at every row with a target. Forecasting
trains on windows: a random cut splits a series into context rows (inputs visible) and the
next ``max_horizon`` rows (inputs hidden, targets scored), which is how a forecast query
looks to the model.

Everything here is torch tensors and numpy random generators; no DataFrame comes in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from smr_ts.data.frames import SeriesPanel
from smr_ts.data.scaling import standardise

__all__ = ["FIRST_GAP", "Scaling", "WindowSampler", "panel_tensors"]

FIRST_GAP = 1.0  # gap given to each series' first step, in time units (the S5 convention)


@dataclass(frozen=True)
class Scaling:
    """What :func:`panel_tensors` needs to know: the column statistics and the time unit."""

    feature_mean: np.ndarray
    feature_scale: np.ndarray
    target_mean: np.ndarray
    target_scale: np.ndarray
    time_unit: float


def panel_tensors(panel: SeriesPanel, scaling: Scaling) -> dict[str, torch.Tensor]:
    """Scaled, zero-filled CPU tensors of a panel whose values are [features, targets].

    Keys: ``values`` (S, L, F), ``observed`` (S, L), ``dt`` (S, L) gaps in time units,
    ``valid`` (S, L); and ``target``, ``target_observed`` (S, L, T) when the panel holds
    targets after its features.
    """
    n_feat = len(scaling.feature_mean)
    values, observed = panel.values, panel.value_observed
    feat, feat_obs = standardise(values[..., :n_feat], observed[..., :n_feat], scaling.feature_mean,
                                 scaling.feature_scale)
    out = {
        "values": torch.from_numpy(feat),
        "observed": torch.from_numpy(feat_obs.any(-1)),
        "dt": torch.from_numpy(panel.gaps(scaling.time_unit, FIRST_GAP).astype(np.float32)),
        "valid": torch.from_numpy(panel.valid),
    }
    if values.shape[-1] > n_feat:
        tgt, tgt_obs = standardise(values[..., n_feat:], observed[..., n_feat:], scaling.target_mean,
                                   scaling.target_scale)
        out["target"] = torch.from_numpy(tgt)
        out["target_observed"] = torch.from_numpy(tgt_obs)
    return out


class WindowSampler:
    """Batches of training examples drawn from a dict of panel tensors.

    Parameters
    ----------
    data : dict of Tensor
        From :func:`panel_tensors`, with targets.
    forecast : bool
        Forecasting windows (a random cut per example) instead of whole series.
    max_horizon : int
        Forecasting: rows after the cut that are scored.
    batch_size : int
        Examples per batch.
    device : torch.device
        Where batches are put.
    """

    def __init__(self, data: dict, *, forecast: bool, max_horizon: int, batch_size: int, device):
        self.data = data
        self.forecast = forecast
        self.max_horizon = max_horizon
        self.batch_size = batch_size
        self.device = device
        self.lengths = data["valid"].sum(1).numpy()
        # Forecasting draws enough windows per series and epoch to cover a typical series once.
        self.windows = max(1, int(np.median(self.lengths)) // max_horizon) if forecast else 1
        self.n_examples = len(self.lengths) * self.windows

    @property
    def n_batches(self) -> int:
        return -(-self.n_examples // self.batch_size)

    def epoch(self, rng: np.random.Generator):
        """One epoch of batches in random order (cuts drawn anew)."""
        examples = np.repeat(np.arange(len(self.lengths)), self.windows)
        cuts = self._cuts(examples, rng) if self.forecast else None
        perm = rng.permutation(self.n_examples)
        for start in range(0, self.n_examples, self.batch_size):
            sel = perm[start : start + self.batch_size]
            yield self.batch(examples[sel], None if cuts is None else cuts[sel])

    def fixed(self, rng: np.random.Generator) -> list[dict]:
        """Every example once, in order, with cuts drawn once: a validation set."""
        examples = np.repeat(np.arange(len(self.lengths)), self.windows)
        cuts = self._cuts(examples, rng) if self.forecast else None
        return [
            self.batch(examples[s : s + self.batch_size], None if cuts is None else cuts[s : s + self.batch_size])
            for s in range(0, len(examples), self.batch_size)
        ]

    def _cuts(self, examples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random forecast origin per example: its number of context rows, in [1, length - 1]."""
        lengths = self.lengths[examples]
        return np.floor(rng.random(len(examples)) * np.maximum(lengths - 1, 1)).astype(np.int64) + 1

    def batch(self, sel: np.ndarray, cuts: np.ndarray | None = None) -> dict:
        """Series ``sel`` cropped to their longest length, with the loss weight of each target."""
        sel_t = torch.as_tensor(sel, dtype=torch.long)
        length = int(self.data["valid"][sel_t].sum(1).max())
        batch = {k: v[sel_t, :length].to(self.device) for k, v in self.data.items()}
        weight = batch["target_observed"].float()
        if cuts is not None:
            # Rows before the cut are context; the next max_horizon rows are queries: their
            # values are hidden from the model and are what it is scored on.
            steps = torch.arange(length, device=self.device)
            cut = torch.as_tensor(cuts, device=self.device).unsqueeze(1)
            context = steps < cut
            query = (steps >= cut) & (steps < cut + self.max_horizon)
            batch["observed"] = batch["observed"] & context
            weight = weight * query.unsqueeze(-1).float()
        batch["weight"] = weight
        return batch
