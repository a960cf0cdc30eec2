"""Sequence regression: panels to tensors, and tensors to batches of whole series.

Sequence regression trains on whole series, scored at every row with a target (forecasting has
its own examples, :mod:`smr_ts.forecasting.pairs`). Everything here is torch tensors and numpy
random generators; no DataFrame comes in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from smr_ts.data.panel import FIRST_GAP, SeriesPanel
from smr_ts.regression.scaling import standardise

__all__ = ["Scaling", "WindowSampler", "panel_tensors"]

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
    """Batches of whole series for sequence regression, scored at every observed target.

    Parameters
    ----------
    data : dict of Tensor
        From :func:`panel_tensors`, with targets.
    batch_size : int
        Series per batch.
    device : torch.device
        Where batches are put.
    """

    def __init__(self, data: dict, *, batch_size: int, device):
        self.data = data
        self.batch_size = batch_size
        self.device = device
        self.n_examples = len(data["valid"])

    @property
    def n_batches(self) -> int:
        return -(-self.n_examples // self.batch_size)

    def epoch(self, rng: np.random.Generator):
        """One epoch of batches in random order."""
        perm = rng.permutation(self.n_examples)
        for start in range(0, self.n_examples, self.batch_size):
            yield self.batch(perm[start : start + self.batch_size])

    def fixed(self) -> list[dict]:
        """Every series once, in order: a validation set."""
        examples = np.arange(self.n_examples)
        return [self.batch(examples[s : s + self.batch_size]) for s in range(0, self.n_examples, self.batch_size)]

    def batch(self, sel: np.ndarray) -> dict:
        """Series ``sel`` cropped to their longest length, with the loss weight of each target."""
        sel_t = torch.as_tensor(sel, dtype=torch.long)
        length = int(self.data["valid"][sel_t].sum(1).max())
        batch = {k: v[sel_t, :length].to(self.device) for k, v in self.data.items()}
        batch["weight"] = batch["target_observed"].float()
        return batch
