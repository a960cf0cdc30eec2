"""Running a trained network over many series: one chunk size, one device loop.

Every prediction path (regression outputs, a forecast's backbone pass, the calibration
forecasts, the streaming states) runs the network in eval mode, without gradients, on the
device, over ``CHUNK`` series at a time, and brings each chunk's outputs back to the CPU, so that
memory stays bounded by one chunk whatever the number of series. :func:`over_chunks` is that
loop and :func:`on_device` its one-pass form; the callers say what a chunk computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["CHUNK", "chunk_slices", "on_device", "over_chunks"]

CHUNK = 64  # series per forward pass: the padded chunk of a long series stays small on any device


def chunk_slices(n: int, chunk: int = CHUNK) -> list[slice]:
    """Slices of ``chunk`` consecutive series covering ``n`` (the last one shorter)."""
    return [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]


@contextmanager
def _evaluating(network: nn.Module, device) -> Iterator[nn.Module]:
    if next(network.parameters()).device != torch.device(device):  # a move walks every parameter
        network = network.to(device)
    network.eval()
    try:
        with torch.no_grad():
            yield network
    finally:
        network.to("cpu")


def over_chunks(network: nn.Module, device, n: int, step: Callable, chunk: int = CHUNK) -> list:
    """``[step(network, sel) for sel in chunk_slices(n, chunk)]`` with ``network`` in eval mode on ``device``
    and without gradients; the network is back on the CPU afterwards, also when a step raises. Each
    step returns its chunk's outputs on the CPU."""
    with _evaluating(network, device) as network:
        return [step(network, sel) for sel in chunk_slices(n, chunk)]


def on_device(network: nn.Module, device, fn: Callable):
    """``fn(network)`` in one pass, as :func:`over_chunks` runs a step (eval mode, no gradients, on ``device``,
    back on the CPU afterwards)."""
    with _evaluating(network, device) as network:
        return fn(network)
