"""Discretisation of diagonal continuous-time systems over observed gaps.

For x' = lambda x + u held constant over a gap Delta (zero-order hold):

    a = exp(lambda Delta),      b_scale = (exp(lambda Delta) - 1) / lambda = Delta * exprel(lambda Delta)

with exprel(z) = (e^z - 1) / z. Written through exprel, the input scale is exact for
gaps near zero (no cancellation in e^z - 1) and saturates at -1/lambda for long gaps,
so any gap from 1e-6 to 1e6 gives finite values as long as Re(lambda) < 0.
Complex numbers are carried as (real, imag) float tensors.
"""

from __future__ import annotations

import torch

__all__ = ["exprel", "complex_exp", "complex_exprel", "zoh", "bilinear"]

_SERIES_CUTOFF = 1e-4  # below |z| this, exprel's 3-term series is exact to float64 rounding


def exprel(z: torch.Tensor) -> torch.Tensor:
    """(exp(z) - 1) / z for real z, equal to 1 at z = 0."""
    small = z.abs() < _SERIES_CUTOFF
    z_safe = torch.where(small, torch.ones_like(z), z)
    series = 1 + z / 2 + z * z / 6
    return torch.where(small, series, torch.expm1(z_safe) / z_safe)


def complex_exp(zr: torch.Tensor, zi: torch.Tensor):
    """exp(zr + i zi) as (real, imag)."""
    mag = torch.exp(zr)
    return mag * torch.cos(zi), mag * torch.sin(zi)


def complex_exprel(zr: torch.Tensor, zi: torch.Tensor):
    """(exp(z) - 1) / z for complex z = zr + i zi, as (real, imag)."""
    # e^z - 1 = (expm1(zr) cos zi - 2 sin^2(zi / 2)) + i e^zr sin zi, free of cancellation.
    half = torch.sin(zi / 2)
    em1_r = torch.expm1(zr) * torch.cos(zi) - 2 * half * half
    em1_i = torch.exp(zr) * torch.sin(zi)
    mod2 = zr * zr + zi * zi
    small = mod2 < _SERIES_CUTOFF**2
    mod2_safe = torch.where(small, torch.ones_like(mod2), mod2)
    # (em1_r + i em1_i) / (zr + i zi) = (em1 * conj(z)) / |z|^2
    out_r = (em1_r * zr + em1_i * zi) / mod2_safe
    out_i = (em1_i * zr - em1_r * zi) / mod2_safe
    # series 1 + z/2 + z^2/6
    ser_r = 1 + zr / 2 + (zr * zr - zi * zi) / 6
    ser_i = zi / 2 + (2 * zr * zi) / 6
    return torch.where(small, ser_r, out_r), torch.where(small, ser_i, out_i)


def zoh(lam_re: torch.Tensor, lam_im: torch.Tensor, delta: torch.Tensor):
    """Zero-order hold: returns (a_re, a_im, scale_re, scale_im) with b = scale * (B u)."""
    zr, zi = lam_re * delta, lam_im * delta
    a_re, a_im = complex_exp(zr, zi)
    s_re, s_im = complex_exprel(zr, zi)
    return a_re, a_im, delta * s_re, delta * s_im


def bilinear(lam_re: torch.Tensor, lam_im: torch.Tensor, delta: torch.Tensor):
    """Bilinear (Tustin): a = (1 + z/2) / (1 - z/2), scale = Delta / (1 - z/2)."""
    zr, zi = lam_re * delta / 2, lam_im * delta / 2
    den_r, den_i = 1 - zr, -zi
    mod2 = den_r * den_r + den_i * den_i  # >= 1 because Re(z) <= 0
    num_r, num_i = 1 + zr, zi
    a_re = (num_r * den_r + num_i * den_i) / mod2
    a_im = (num_i * den_r - num_r * den_i) / mod2
    s_re = delta * den_r / mod2
    s_im = -delta * den_i / mod2
    return a_re, a_im, s_re, s_im
