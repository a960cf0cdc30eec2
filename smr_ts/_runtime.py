"""Run-time settings the estimator owns: CPU threads (set and restored around fit and forecast) and the device."""

from __future__ import annotations

import functools
from contextlib import contextmanager

import torch

__all__ = ["resolve_device", "torch_threads", "uses_threads"]


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op threads, then put the previous count back."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def uses_threads(method):
    """Decorate an estimator method to run with the estimator's ``n_threads`` ("auto": 1)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        n = self.n_threads
        with torch_threads(1 if n == "auto" or not isinstance(n, int) or n < 1 else n):
            return method(self, *args, **kwargs)

    return wrapper


def resolve_device(device: str, strict: bool = True) -> torch.device:
    """The device to train (strict) or predict on. "auto" is CUDA when available. Prediction falls
    back to the CPU (not strict), so a model trained with device="cuda" still predicts on a machine
    without a GPU; training there raises."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        if not strict:
            return torch.device("cpu")
        raise ValueError(f"SMRForecaster parameter device={device!r}: CUDA is not available")
    return resolved
