"""Sequence regression's predictions: the network over whole series, in chunks of series."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from smr_ts.data.panel import to_panel
from smr_ts.inference import CHUNK, over_chunks
from smr_ts.regression.windows import panel_tensors

__all__ = ["predict_panel", "predict_rows"]


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


def predict_rows(network: nn.Module, rows, schema, scaling, device, return_std: bool = False) -> list:
    """The network's outputs at each of ``rows`` (a :class:`~smr_ts.data.frames.Rows` of features), each
    from the rows of its own series at or before it, unscaled: ``[mean]``, or ``[mean, std]`` with
    ``return_std``, each (n, T) float64 in the rows' order."""
    panel = to_panel(rows.ids, rows.times, rows.values, id_col=schema.id_col, time_col=schema.time_col,
                     info=schema.time_info)
    mean, std = predict_panel(network, panel_tensors(panel, scaling), device)
    mean = mean * scaling.target_scale + scaling.target_mean
    std = std * scaling.target_scale if std is not None else None
    at = panel.rows[panel.valid]
    outputs = []
    for values in (mean, std) if return_std else (mean,):
        out = np.empty((len(rows.values), len(scaling.target_mean)), np.float64)
        out[at] = values[panel.valid]
        outputs.append(out)
    return outputs
