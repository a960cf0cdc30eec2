"""Triton kernels for :func:`smr_ts.ssm.linear_scan.scan` on CUDA.

One program owns one sequence and a block of state channels. It walks time in tiles
of ``BLOCK_L`` steps; inside a tile ``tl.associative_scan`` composes the affine maps
``x -> a x + b`` in log depth, and a carried state links the tiles. The backward
kernel is the same walk in the other direction over ``g_k = grad_k + conj(a_{k+1})
g_{k+1}`` and also writes ``grad_a_k = g_k conj(x_{k-1})``, so a backward pass reads
``a``, ``x`` and the incoming gradient once. Complex tensors are read as interleaved
(real, imag) float pairs.

Set ``SMR_TS_DISABLE_TRITON=1`` to fall back to the PyTorch kernels.
"""

from __future__ import annotations

import functools
import os

import torch

try:  # Triton is optional: CPU-only installs never import it.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """True when the Triton kernels can run (Triton importable and not disabled)."""
    if triton is None or os.environ.get("SMR_TS_DISABLE_TRITON", "0") == "1":
        return False
    return True


if triton is not None:

    @triton.jit
    def _combine_real(a1, b1, a2, b2):
        # Apply (a1, b1) first, then (a2, b2): x -> a2 (a1 x + b1) + b2.
        return a1 * a2, a2 * b1 + b2

    @triton.jit
    def _combine_complex(a1r, a1i, b1r, b1i, a2r, a2i, b2r, b2i):
        ar = a1r * a2r - a1i * a2i
        ai = a1r * a2i + a1i * a2r
        br = a2r * b1r - a2i * b1i + b2r
        bi = a2r * b1i + a2i * b1r + b2i
        return ar, ai, br, bi

    @triton.jit
    def _scan_fwd_kernel(
        a_ptr, b_ptr, x_ptr, L, S,
        REVERSE: tl.constexpr, COMPLEX: tl.constexpr,
        BLOCK_L: tl.constexpr, BLOCK_S: tl.constexpr,
    ):
        pid_batch = tl.program_id(0).to(tl.int64)  # offsets can pass 2**31
        pid_s = tl.program_id(1)
        s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
        rows = tl.arange(0, BLOCK_L)
        s_ok = s < S
        width = 2 if COMPLEX else 1
        base = pid_batch * L * S * width
        carry_r = tl.zeros([BLOCK_S], dtype=x_ptr.dtype.element_ty)
        carry_i = tl.zeros_like(carry_r)
        n_tiles = (L + BLOCK_L - 1) // BLOCK_L
        for i in range(0, n_tiles):
            tile = n_tiles - 1 - i if REVERSE else i
            t = tile * BLOCK_L + rows
            ok = (t < L)[:, None] & s_ok[None, :]
            off = base + (t[:, None] * S + s[None, :]) * width
            # Out-of-range rows load the identity map (a = 1, b = 0).
            ar = tl.load(a_ptr + off, mask=ok, other=1.0)
            br = tl.load(b_ptr + off, mask=ok, other=0.0)
            if COMPLEX:
                ai = tl.load(a_ptr + off + 1, mask=ok, other=0.0)
                bi = tl.load(b_ptr + off + 1, mask=ok, other=0.0)
                cr, ci, xr, xi = tl.associative_scan((ar, ai, br, bi), 0, _combine_complex, reverse=REVERSE)
                xr = xr + cr * carry_r[None, :] - ci * carry_i[None, :]
                xi = xi + cr * carry_i[None, :] + ci * carry_r[None, :]
                tl.store(x_ptr + off, xr, mask=ok)
                tl.store(x_ptr + off + 1, xi, mask=ok)
            else:
                cr, xr = tl.associative_scan((ar, br), 0, _combine_real, reverse=REVERSE)
                xr = xr + cr * carry_r[None, :]
                tl.store(x_ptr + off, xr, mask=ok)
            edge = 0 if REVERSE else BLOCK_L - 1  # identity padding carries the state there
            pick = (rows == edge)[:, None]
            carry_r = tl.sum(tl.where(pick, xr, 0.0), axis=0)
            if COMPLEX:
                carry_i = tl.sum(tl.where(pick, xi, 0.0), axis=0)

    @triton.jit
    def _scan_bwd_kernel(
        a_ptr, x_ptr, gx_ptr, ga_ptr, gb_ptr, L, S,
        REVERSE: tl.constexpr, COMPLEX: tl.constexpr,
        BLOCK_L: tl.constexpr, BLOCK_S: tl.constexpr,
    ):
        # The gradient runs against the forward scan: forward scans run backwards here.
        pid_batch = tl.program_id(0).to(tl.int64)  # offsets can pass 2**31
        pid_s = tl.program_id(1)
        s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
        rows = tl.arange(0, BLOCK_L)
        s_ok = s < S
        width = 2 if COMPLEX else 1
        base = pid_batch * L * S * width
        step = -1 if REVERSE else 1  # index of the step after k, in forward-scan order: k + step
        carry_r = tl.zeros([BLOCK_S], dtype=gb_ptr.dtype.element_ty)
        carry_i = tl.zeros_like(carry_r)
        n_tiles = (L + BLOCK_L - 1) // BLOCK_L
        for i in range(0, n_tiles):
            tile = i if REVERSE else n_tiles - 1 - i
            t = tile * BLOCK_L + rows
            ok = (t < L)[:, None] & s_ok[None, :]
            off = base + (t[:, None] * S + s[None, :]) * width
            t_next = t + step
            ok_next = ((t_next >= 0) & (t_next < L))[:, None] & s_ok[None, :]
            off_next = base + (t_next[:, None] * S + s[None, :]) * width
            t_prev = t - step
            ok_prev = ((t_prev >= 0) & (t_prev < L))[:, None] & s_ok[None, :]
            off_prev = base + (t_prev[:, None] * S + s[None, :]) * width
            # coefficient conj(a_next); zero past the end (nothing flows back from there)
            anr = tl.load(a_ptr + off_next, mask=ok_next, other=0.0)
            anr = tl.where(ok, anr, 1.0)
            gr = tl.load(gx_ptr + off, mask=ok, other=0.0)
            xpr = tl.load(x_ptr + off_prev, mask=ok_prev, other=0.0)
            if COMPLEX:
                ani = -tl.load(a_ptr + off_next + 1, mask=ok_next, other=0.0)
                ani = tl.where(ok, ani, 0.0)
                gi = tl.load(gx_ptr + off + 1, mask=ok, other=0.0)
                cr, ci, hr, hi = tl.associative_scan((anr, ani, gr, gi), 0, _combine_complex, reverse=not REVERSE)
                hr2 = hr + cr * carry_r[None, :] - ci * carry_i[None, :]
                hi2 = hi + cr * carry_i[None, :] + ci * carry_r[None, :]
                tl.store(gb_ptr + off, hr2, mask=ok)
                tl.store(gb_ptr + off + 1, hi2, mask=ok)
                # grad_a = g * conj(x_prev)
                xpi = tl.load(x_ptr + off_prev + 1, mask=ok_prev, other=0.0)
                tl.store(ga_ptr + off, hr2 * xpr + hi2 * xpi, mask=ok)
                tl.store(ga_ptr + off + 1, hi2 * xpr - hr2 * xpi, mask=ok)
            else:
                cr, hr = tl.associative_scan((anr, gr), 0, _combine_real, reverse=not REVERSE)
                hr2 = hr + cr * carry_r[None, :]
                tl.store(gb_ptr + off, hr2, mask=ok)
                tl.store(ga_ptr + off, hr2 * xpr, mask=ok)
            # g at this tile's edge feeds the next tile of the walk, whose edge row already
            # holds the linking coefficient conj(a_next).
            edge = BLOCK_L - 1 if REVERSE else 0
            pick = (rows == edge)[:, None]
            carry_r = tl.sum(tl.where(pick, hr2, 0.0), axis=0)
            if COMPLEX:
                carry_i = tl.sum(tl.where(pick, hi2, 0.0), axis=0)


def _launch_shape(b: torch.Tensor):
    batch, L = b.shape[0], b.shape[1]
    S = b[0, 0].numel()
    block_s = min(64, triton.next_power_of_2(max(S, 1)))
    block_l = 64 if L >= 64 else max(16, triton.next_power_of_2(L))
    grid = (batch, triton.cdiv(S, block_s))
    return L, S, block_l, block_s, grid


def _real_view(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def scan_forward(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Forward scan; ``a`` and ``b`` contiguous, same shape and dtype."""
    x = torch.empty_like(b)
    L, S, block_l, block_s, grid = _launch_shape(b)
    _scan_fwd_kernel[grid](
        _real_view(a), _real_view(b), _real_view(x), L, S,
        REVERSE=reverse, COMPLEX=b.is_complex(), BLOCK_L=block_l, BLOCK_S=block_s,
    )
    return x


def scan_backward(a, x, grad_x, reverse):
    """Gradients ``(grad_a, grad_b)`` of the scan; all inputs contiguous."""
    grad_a = torch.empty_like(a)
    grad_b = torch.empty_like(x)
    L, S, block_l, block_s, grid = _launch_shape(x)
    _scan_bwd_kernel[grid](
        _real_view(a), _real_view(x), _real_view(grad_x), _real_view(grad_a), _real_view(grad_b), L, S,
        REVERSE=reverse, COMPLEX=x.is_complex(), BLOCK_L=block_l, BLOCK_S=block_s,
    )
    return grad_a, grad_b
