"""Data-parallel training across processes, launched by ``torchrun``.

Nothing to configure: when the estimator's ``fit`` runs in a process that ``torchrun`` started
(``RANK`` and ``WORLD_SIZE`` in the environment), or after the user initialised a process group,
:func:`join` joins the group (gloo on CPU, NCCL on CUDA; GPU ``LOCAL_RANK`` per process) and
training becomes data-parallel:

- every rank reads the same data and draws the same windows (the seed is rank 0's), and each
  keeps its share of every batch (:meth:`Collective.shard`: windows ``rank, rank + size, ...``);
- the network is wrapped in ``torch.nn.parallel.DistributedDataParallel``, which averages the
  gradients; each rank's loss is scaled by its share of the batch's observed targets
  (:meth:`Collective.scaled_loss`), so the averaged gradient is exactly the gradient of the global
  batch's loss, as one process would compute it (tests/test_distributed.py holds the weights of two
  gloo processes to one process's);
- validation batches are split by rank too and their sums all-reduced, so every rank sees the same
  metrics, and model selection, early stopping and the last-value floor agree on every rank;
- only rank 0 writes files: ``save`` and the callbacks that write or print (``HistoryLogger``,
  ``ProgressBar``) do nothing elsewhere.

Outside ``torchrun`` none of this runs and a fit is a plain single-process fit. See
docs/distributed.md for the commands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from smr_ts._runtime import resolve_device

__all__ = ["Collective", "is_rank_zero", "join", "parallel", "same_on_every_rank"]


@dataclass(frozen=True)
class Collective:
    """This process's place in the group: its ``rank`` among ``size`` and its ``device``."""

    rank: int
    size: int
    device: torch.device

    def _reduce(self, values, op) -> torch.Tensor:
        # NCCL reduces CUDA tensors only; gloo CPU ones. float64 keeps sums of many terms exact enough.
        where = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        tensor = torch.as_tensor(values, dtype=torch.float64, device=where)
        dist.all_reduce(tensor, op=op)
        return tensor.cpu()

    def sum(self, values: list) -> list:
        """Elementwise sums over the ranks."""
        return self._reduce(values, dist.ReduceOp.SUM).tolist()

    def max(self, value: float) -> float:
        return float(self._reduce([value], dist.ReduceOp.MAX)[0])

    def gather(self, values: list) -> np.ndarray:
        """(size, len(values)): every rank's values, in rank order."""
        everyone = np.zeros((self.size, len(values)))
        everyone[self.rank] = values
        return np.asarray(self.sum(everyone.ravel().tolist())).reshape(everyone.shape)

    def shard(self, batch: dict) -> dict:
        """This rank's windows of a batch (every tensor's first dimension): ``rank, rank + size, ...``,
        so the ranks' windows have similar lengths (batches group windows by length)."""
        n = len(next(iter(batch.values())))
        index = torch.arange(self.rank, n, self.size)
        return {k: v.index_select(0, index.to(v.device)) for k, v in batch.items()}

    def shard_list(self, batches):
        """This rank's share of a list of batches (validation)."""
        return None if batches is None else [self.shard(b) for b in batches]

    def scaled_loss(self, loss_fn):
        """``loss_fn`` (a batch's mean loss over its observed targets, and their count) made the rank's
        part of the global batch's mean: times ``size * local count / global count``, so that
        DistributedDataParallel's average of the ranks' gradients is the global batch's gradient.
        Reports ``global count / size`` as the weight, so a weighted mean of the reported losses is
        the global mean."""

        def scaled(batch):
            loss, weight = loss_fn(batch)
            total = self.sum([weight])[0]
            if total <= 0:
                return loss, 0.0
            return loss * (self.size * weight / total), total / self.size

        return scaled


def join(device: str):
    """``(Collective, device)`` when this process is one of a ``torchrun`` group (the group is
    initialised here if it is not yet: NCCL on CUDA, gloo otherwise); ``(None, device)`` otherwise."""
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not (dist.is_available() and (dist.is_initialized() or launched)):
        return None, resolve_device(device)
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process
    if not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return Collective(dist.get_rank(), dist.get_world_size(), resolved), resolved


def parallel(model: nn.Module, collective: Collective | None) -> nn.Module:
    """The module to train through: ``model`` itself, or wrapped in DistributedDataParallel."""
    if collective is None:
        return model
    device_ids = [collective.device.index] if collective.device.type == "cuda" else None
    return _Parallel(model, device_ids=device_ids)


class _Parallel(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that also answers the wrapped network's attributes (``quantiles``)."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def same_on_every_rank(collective: Collective | None, seed: int) -> int:
    """Rank 0's ``seed`` on every rank (every rank then draws the same windows)."""
    if collective is None:
        return seed
    value = torch.tensor([seed if collective.rank == 0 else 0], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        value = value.to(collective.device)
    dist.broadcast(value, src=0)
    return int(value.item())


def is_rank_zero() -> bool:
    """True outside a process group, and on its rank 0: the process that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
