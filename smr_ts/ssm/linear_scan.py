"""The diagonal linear recurrence every layer in this package reduces to.

    x_k = a_k * x_{k-1} + b_k            (or x_k = a_k * x_{k+1} + b_k with ``reverse=True``)

``a`` and ``b`` have shape ``(batch, L, *state)``; time is dimension 1; the product is
elementwise (the transition is diagonal), real or complex.

Two implementations with one signature, on purpose:

- :func:`scan_reference` is a plain loop that reads as the definition. Autograd
  differentiates it. It is the oracle the tests hold the fast path against.
- :func:`scan` is the fast path: a custom autograd function with a hand-written,
  fused backward. On CUDA it runs a Triton kernel (a blocked associative scan over
  time) when Triton is importable; on CPU it runs an in-place loop over time when
  each step's slice is large (memory-bound: one fused op per step touches each
  byte once) and a chunked two-level scan when slices are small (overhead-bound:
  about ``2 sqrt(L)`` ops instead of ``L``). Memory is O(batch * L * state): the
  forward saves only ``a`` and its own output.
"""

from __future__ import annotations

import math

import torch

__all__ = ["scan", "scan_reference"]

# Below this many elements per time step the per-op dispatch cost dominates and the
# chunked scan wins; above it the single-pass in-place loop wins (benchmarks/scan.py).
_SEQUENTIAL_MIN_STEP_NUMEL = 8192


def _as_scan_inputs(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None):
    """Validate and broadcast ``a`` and ``b``; promote half precision to float32."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"a and b must be torch tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.device != b.device:
        raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
    try:
        a, b = torch.broadcast_tensors(a, b)
    except RuntimeError as exc:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} do not broadcast") from exc
    if b.dim() < 2:
        raise ValueError(f"a and b must have shape (batch, L, *state), got {tuple(b.shape)}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not (dtype.is_floating_point or dtype.is_complex):
        raise TypeError(f"a and b must be floating point or complex, got {a.dtype} and {b.dtype}")
    # The recurrence multiplies up to L factors: keep it in float32 or higher.
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    elif dtype == torch.complex32:
        dtype = torch.complex64
    a, b = a.to(dtype), b.to(dtype)
    if x0 is not None:
        expected = (b.shape[0],) + tuple(b.shape[2:])
        if tuple(x0.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(x0.shape)}")
        x0 = x0.to(device=b.device, dtype=dtype)
    return a, b, x0


def scan_reference(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None, reverse: bool = False
) -> torch.Tensor:
    """Sequential reference for ``x_k = a_k x_{k-1} + b_k``; the definition of :func:`scan`.

    Parameters
    ----------
    a, b : Tensor of shape (batch, L, *state)
        Transition and input terms, real or complex; they broadcast against each other.
    x0 : Tensor of shape (batch, *state), optional
        State before the first step (after the last step when ``reverse``); zero if omitted.
    reverse : bool, default False
        Run from the last step to the first: ``x_k = a_k x_{k+1} + b_k``.

    Returns
    -------
    Tensor of shape (batch, L, *state)
        The state after every step.

    Examples
    --------
    >>> a = torch.tensor([[0.5, 0.5, 0.5]]); b = torch.tensor([[1.0, 0.0, 2.0]])
    >>> scan_reference(a, b)
    tensor([[1.0000, 0.5000, 2.2500]])
    """
    a, b, x0 = _as_scan_inputs(a, b, x0)
    # Unbind once: indexing a[:, k] inside the loop makes autograd's backward O(L^2).
    a_steps, b_steps = a.unbind(1), b.unbind(1)
    steps = range(len(b_steps) - 1, -1, -1) if reverse else range(len(b_steps))
    x = torch.zeros_like(b_steps[0]) if x0 is None else x0
    states = [None] * len(b_steps)
    for k in steps:
        x = a_steps[k] * x + b_steps[k]
        states[k] = x
    return torch.stack(states, dim=1)


def scan(
    a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None = None, reverse: bool = False
) -> torch.Tensor:
    """Fast ``x_k = a_k x_{k-1} + b_k``; same signature and result as :func:`scan_reference`.

    Parameters
    ----------
    a, b : Tensor of shape (batch, L, *state)
        Transition and input terms, real or complex; they broadcast against each other.
        float16/bfloat16 inputs are computed (and returned) in float32.
    x0 : Tensor of shape (batch, *state), optional
        State before the first step (after the last step when ``reverse``); zero if omitted.
    reverse : bool, default False
        Run from the last step to the first: ``x_k = a_k x_{k+1} + b_k``.

    Returns
    -------
    Tensor of shape (batch, L, *state)

    Examples
    --------
    >>> a = torch.full((2, 5, 3), 0.9); b = torch.randn(2, 5, 3)
    >>> torch.allclose(scan(a, b), scan_reference(a, b))
    True
    """
    a, b, x0 = _as_scan_inputs(a, b, x0)
    if b.shape[1] == 0:
        return b.clone()
    if x0 is not None:
        # Fold the initial state into the first input: x_first = a_first x0 + b_first.
        first = b.shape[1] - 1 if reverse else 0
        b = b.clone()
        b[:, first] = b[:, first] + a[:, first] * x0
    return _LinearScan.apply(a.contiguous(), b.contiguous(), reverse)


class _LinearScan(torch.autograd.Function):
    """Autograd for the scan. With g = dLoss/dx accumulated backwards in time,

        g_k = dLoss/dx_k (direct) + conj(a_{k+1}) g_{k+1},
        dLoss/db_k = g_k,     dLoss/da_k = g_k conj(x_{k-1}),

    (PyTorch's complex convention: gradients are conjugate Wirtinger derivatives).
    """

    @staticmethod
    def forward(ctx, a, b, reverse):
        x = _forward_kernel(a, b, reverse)
        ctx.reverse = reverse
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, grad_x):
        a, x = ctx.saved_tensors
        grad_a, grad_b = _backward_kernel(a, x, grad_x.contiguous(), ctx.reverse)
        return grad_a, grad_b, None


def _use_triton(t: torch.Tensor) -> bool:
    if t.device.type != "cuda":
        return False
    from smr_ts.ssm import _triton_scan

    return _triton_scan.available()


def _forward_kernel(a, b, reverse):
    if _use_triton(b):
        from smr_ts.ssm import _triton_scan

        return _triton_scan.scan_forward(a, b, reverse)
    x = torch.empty_like(b)
    if _sequential_is_faster(b):
        _scan_sequential(a, b, x, reverse)
    else:
        _scan_chunked(a, b, x, reverse)
    return x


def _backward_kernel(a, x, grad_x, reverse):
    if _use_triton(x):
        from smr_ts.ssm import _triton_scan

        return _triton_scan.scan_backward(a, x, grad_x, reverse)
    if _sequential_is_faster(x):
        return _backward_sequential(a, x, grad_x, reverse)
    return _backward_chunked(a, x, grad_x, reverse)


def _sequential_is_faster(b: torch.Tensor) -> bool:
    return b[:, 0].numel() >= _SEQUENTIAL_MIN_STEP_NUMEL or b.shape[1] < 16


def _scan_sequential(a, b, x, reverse, start=None, x_start=None):
    """In place: one fused multiply-add per step over the whole (batch, *state) slice.

    Steps ``start`` onwards (in scan order) are computed; ``x_start`` is the state
    before them (zero when None).
    """
    L = b.shape[1]
    steps = list(range(L - 1, -1, -1) if reverse else range(L))
    if start is not None:
        steps = steps[steps.index(start):]
    first, rest = steps[0], steps[1:]
    if x_start is None:
        x[:, first] = b[:, first]
    else:
        torch.addcmul(b[:, first], a[:, first], x_start, out=x[:, first])
    prev = first
    for k in rest:
        torch.addcmul(b[:, k], a[:, k], x[:, prev], out=x[:, k])
        prev = k


def _chunk_length(L: int) -> int:
    # ~sqrt(L) balances the T in-chunk steps against the L/T carry steps.
    return int(min(32, max(8, round(math.sqrt(L) / 2))))


def _scan_chunked(a, b, x, reverse):
    """Two-level scan: all chunks in parallel over the T steps inside a chunk, then a
    short sequential pass over chunk carries, then one fix-up multiply-add.

    Uses only products of the given ``a`` (never divides by them), so decays that
    underflow to zero over a long gap stay exact.
    """
    L = b.shape[1]
    T = _chunk_length(L)
    C = L // T
    if C < 2:
        _scan_sequential(a, b, x, reverse)
        return
    n = C * T
    lo = L - n if reverse else 0  # chunks cover [lo, lo + n); the rest is a short tail
    av, bv, xv = (t[:, lo : lo + n].unflatten(1, (C, T)) for t in (a, b, x))
    cum_a = torch.empty_like(av)  # product of a within the chunk up to each step

    t_order = list(range(T - 1, -1, -1) if reverse else range(T))
    t0 = t_order[0]
    xv[:, :, t0] = bv[:, :, t0]
    cum_a[:, :, t0] = av[:, :, t0]
    prev = t0
    for t in t_order[1:]:
        torch.addcmul(bv[:, :, t], av[:, :, t], xv[:, :, prev], out=xv[:, :, t])
        torch.mul(cum_a[:, :, prev], av[:, :, t], out=cum_a[:, :, t])
        prev = t
    t_last = prev

    # carry[:, c] is the true state just before chunk c (in scan order).
    carry = torch.zeros_like(bv[:, :, 0])
    c_order = list(range(C - 1, -1, -1) if reverse else range(C))
    for c_prev, c in zip(c_order[:-1], c_order[1:]):
        torch.addcmul(xv[:, c_prev, t_last], cum_a[:, c_prev, t_last], carry[:, c_prev], out=carry[:, c])
    later = slice(0, C - 1) if reverse else slice(1, C)
    xv[:, later].addcmul_(cum_a[:, later], carry[:, later].unsqueeze(2))

    if n < L:
        tail_start, boundary = (lo - 1, lo) if reverse else (n, n - 1)
        _scan_sequential(a, b, x, reverse, start=tail_start, x_start=x[:, boundary])


def _backward_sequential(a, x, grad_x, reverse):
    """Fused reverse pass: per step one multiply-add for g and one multiply for grad_a."""
    L = x.shape[1]
    grad_b = torch.empty_like(grad_x)
    grad_a = torch.empty_like(a)
    # Backwards through time of the forward scan's order.
    steps = list(range(L)) if reverse else list(range(L - 1, -1, -1))
    d = 1 if reverse else -1  # steps[i + 1] == steps[i] + d
    first = steps[0]
    grad_b[:, first] = grad_x[:, first]
    for k in steps[1:]:
        later = k - d  # the step after k in forward-scan order
        torch.addcmul(grad_x[:, k], a[:, later].conj(), grad_b[:, later], out=grad_b[:, k])
        torch.mul(grad_b[:, later], x[:, k].conj(), out=grad_a[:, later])
    grad_a[:, steps[-1]] = 0  # the first forward step saw a zero previous state
    return grad_a, grad_b


def _backward_chunked(a, x, grad_x, reverse):
    """g is itself a scan in the opposite direction with coefficients conj(a) shifted by one."""
    L = x.shape[1]
    a_next = torch.zeros_like(a)
    if reverse:
        a_next[:, 1:] = a[:, :-1].conj()
    else:
        a_next[:, :-1] = a[:, 1:].conj()
    grad_b = torch.empty_like(grad_x)
    _scan_chunked(a_next, grad_x, grad_b, not reverse)
    del a_next
    grad_a = torch.empty_like(a)
    if reverse:
        torch.mul(grad_b[:, :-1], x[:, 1:].conj(), out=grad_a[:, :-1])
        grad_a[:, L - 1] = 0
    else:
        torch.mul(grad_b[:, 1:], x[:, :-1].conj(), out=grad_a[:, 1:])
        grad_a[:, 0] = 0
    return grad_a, grad_b
