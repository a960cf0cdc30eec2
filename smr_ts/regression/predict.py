"""Sequence regression's predictions: the network over whole series, in chunks of series."""

from __future__ import annotations

import torch
from torch import nn

from smr_ts.inference import CHUNK, over_chunks

__all__ = ["predict_panel"]


def predict_panel(model: nn.Module, data: dict, device, chunk: int = CHUNK):
    """Outputs at every step of a panel's tensors, ``chunk`` series at a time: (mean, std or None) as numpy.

    The model visits ``device`` for the forward passes only and is back on the CPU afterwards.
    """
    def step(net, sel):
        mean, std = net(data["values"][sel].to(device), data["dt"][sel].to(device), data["observed"][sel].to(device))
        return mean.cpu(), (std.cpu() if std is not None else None)

    parts = over_chunks(model, device, len(data["values"]), step, chunk)
    means, stds = [mean for mean, _ in parts], [std for _, std in parts]
    return torch.cat(means).numpy(), (torch.cat(stds).numpy() if stds[0] is not None else None)
