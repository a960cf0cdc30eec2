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
  byte once) and a chunked two-level scan when slices are
  small (overhead-bound: about ``4 sqrt(L)`` ops instead of ``L``). Both scan a copy of their input in
  place, so new memory is first touched by one contiguous copy rather than slice by
  slice. Memory is O(batch * L * state): the forward saves only ``a`` and its own
  output; the backward allocates just the two gradients. Timings against the
  reference loop and mambapy's scan: ``benchmarks/scan.py``.
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
    # Scan a copy of b in place. The copy is one contiguous, multithreaded pass that
    # also first-touches the new memory; letting the loop first-touch it slice by
    # slice costs several times more on CPU.
    x = b.clone()
    _scan_cpu(a, x, x, reverse)
    return x


def _backward_kernel(a, x, grad_x, reverse):
    if _use_triton(x):
        from smr_ts.ssm import _triton_scan

        return _triton_scan.scan_backward(a, x, grad_x, reverse)
    # g_k = grad_x_k + conj(a_next) g_next is a scan the other way round whose
    # coefficients are conj(a) shifted by one step: scan views, in place on a copy.
    grad_b = grad_x.clone(memory_format=torch.contiguous_format)
    if reverse:
        later, a_later, last = grad_b[:, 1:], a[:, :-1].conj(), grad_b[:, 0]
    else:
        later, a_later, last = grad_b[:, :-1], a[:, 1:].conj(), grad_b[:, -1]
    _scan_cpu(a_later, later, later, not reverse, x_before=last)
    # dLoss/da_k = g_k conj(x_{k-1}): one vectorised multiply; the first step saw x = 0.
    grad_a = torch.empty_like(a)
    first, rest, prev = (-1, slice(0, -1), slice(1, None)) if reverse else (0, slice(1, None), slice(0, -1))
    torch.mul(grad_b[:, rest], x[:, prev].conj(), out=grad_a[:, rest])
    grad_a[:, first] = 0
    return grad_a, grad_b


def _sequential_is_faster(b: torch.Tensor) -> bool:
    return b.shape[1] < 16 or b[:, 0].numel() >= _SEQUENTIAL_MIN_STEP_NUMEL


def _scan_cpu(a, b, x, reverse, x_before=None):
    """``x = scan(a, b)`` written into ``x``, which may be ``b`` itself (in place).

    ``x_before`` is the state before the first step (zero when None).
    """
    if _sequential_is_faster(b):
        _scan_sequential(a, b, x, reverse, x_before)
    else:
        _scan_chunked(a, b, x, reverse, x_before)


def _scan_sequential(a, b, x, reverse, x_before=None):
    """One fused multiply-add per step over the whole (batch, *state) slice. Each op is a
    parallel region when the slice is large, which beats scanning per-thread pieces one after another."""
    prev = x_before
    for k in range(b.shape[1] - 1, -1, -1) if reverse else range(b.shape[1]):
        if prev is None:
            x[:, k].copy_(b[:, k])
        else:
            torch.addcmul(b[:, k], a[:, k], prev, out=x[:, k])
        prev = x[:, k]


def _chunk_length(L: int) -> int:
    # ~sqrt(L) / 2, near the sqrt(L / 3) that minimises the 3T in-chunk ops plus L/T chunk steps.
    return int(min(32, max(8, round(math.sqrt(L) / 2))))


def _scan_chunked(a, b, x, reverse, x_before=None):
    """Two-level scan for small slices (about ``3 T + L / T`` ops instead of ``L``):
    the steps are cut into C chunks of T, and each pass runs over all chunks at once.

    1. every chunk's end state from a zero start, and the product of its ``a``;
    2. a short sequential pass over the chunks for the true state before each;
    3. every chunk rescanned from its true start, written into ``x``.

    Uses only products of the given ``a`` (never divides by them), so decays that
    underflow to zero over a long gap stay exact; needs only chunk-sized buffers.
    """
    L = b.shape[1]
    T = _chunk_length(L)
    C = L // T
    if C < 2:
        _scan_sequential(a, b, x, reverse, x_before)
        return
    n = C * T
    lo = L - n if reverse else 0  # chunks cover [lo, lo + n); the rest is a short tail
    av, bv, xv = (t[:, lo : lo + n].unflatten(1, (C, T)) for t in (a, b, x))
    steps = range(T - 1, -1, -1) if reverse else range(T)
    chunks = range(C - 1, -1, -1) if reverse else range(C)

    end, prod = bv[:, :, steps[0]].clone(), av[:, :, steps[0]].clone()
    for t in steps[1:]:
        torch.addcmul(bv[:, :, t], av[:, :, t], end, out=end)
        prod.mul_(av[:, :, t])

    start = torch.empty_like(end)  # start[:, c]: the true state before chunk c
    start[:, chunks[0]] = 0 if x_before is None else x_before
    for c_prev, c in zip(chunks, chunks[1:]):
        torch.addcmul(end[:, c_prev], prod[:, c_prev], start[:, c_prev], out=start[:, c])

    prev = start
    for t in steps:
        torch.addcmul(bv[:, :, t], av[:, :, t], prev, out=xv[:, :, t])
        prev = xv[:, :, t]

    if n < L:
        if reverse:
            _scan_sequential(a[:, :lo], b[:, :lo], x[:, :lo], reverse, x_before=x[:, lo])
        else:
            _scan_sequential(a[:, n:], b[:, n:], x[:, n:], reverse, x_before=x[:, n - 1])
