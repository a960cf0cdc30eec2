"""Per-column standardisation of values and targets, fitted on the training rows.

The network sees ``(value - mean) / scale`` at observed slots and 0 elsewhere; the estimator
undoes the targets' scaling on the way out.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["column_moments", "identity_moments", "standardise"]


def column_moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per column over the non-NaN entries of ``a`` (n, F), as float32.

    An all-NaN column gets mean 0; a constant (or all-NaN) column gets scale 1.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean, std = np.nanmean(a, 0), np.nanstd(a, 0)
    mean = np.nan_to_num(mean, nan=0.0)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def identity_moments(n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean 0 and scale 1: values fed as they are (images)."""
    return np.zeros(n_columns, np.float32), np.ones(n_columns, np.float32)


def standardise(values: np.ndarray, observed: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """(values - mean) / scale as float32, 0 where not observed; and the observed mask."""
    out = np.subtract(values, mean, dtype=np.float32)
    out /= scale
    out *= observed  # unobserved slots hold 0 already; this also clears any -mean / scale there
    return out, np.ascontiguousarray(observed)
