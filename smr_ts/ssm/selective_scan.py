"""S6's selective scan: a diagonal recurrence whose terms are built from per-step selections.

    a_k = exp(Delta_k A)                                  (batch, L, D, N)
    s_k = Delta_in_k exprel(Delta_in_k A)   (ZOH)   or   Delta_in_k   (Euler)
    h_k = a_k h_{k-1} + s_k B_k u_k
    y_k = sum_n C_k[n] h_k[:, n]                          (batch, L, D)

with ``Delta`` and ``Delta_in`` (batch, L, D), ``A`` (D, N), ``B``, ``C`` (batch, L, N) and ``u``
(batch, L, D). ``Delta_in`` is the step the input is held over (S6 holds it since the previous
observation, so it differs from ``Delta`` only where steps are unobserved).

Two implementations with one signature, on purpose (as mamba's ``selective_scan_ref`` beside
``selective_scan_fn``):

- :func:`selective_scan_reference` builds ``a``, ``s B u`` and ``h`` for every step, channel and
  state, and runs the loop :func:`~smr_ts.ssm.linear_scan.scan_reference`. It reads as the
  definition; autograd differentiates it. Its memory is O(batch * L * D * N).
- :func:`selective_scan` is the fast path. On CPU it is a custom autograd function that walks
  the sequence in chunks of T steps: each chunk's ``a``, ``s B u`` and ``h`` exist only while the
  chunk runs, and only the states at chunk boundaries (batch, D, N) are kept for the backward
  pass, which recomputes each chunk's states (last chunk first). Memory is O(batch * T * D * N)
  plus the boundary states. On CUDA it builds the terms and runs the diagonal scan's Triton
  kernel (:func:`~smr_ts.ssm.linear_scan.scan`).

Timings and peak memory against mambapy and the reference: ``benchmarks/selective_scan.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from smr_ts.ssm.discretize import exprel
from smr_ts.ssm.linear_scan import scan, scan_reference

__all__ = ["selective_scan", "selective_scan_reference"]

_DISCRETIZATIONS = ("zoh", "euler")
# Elements of one chunk's (batch, T, D, N) buffer: a few such buffers stay in a core's cache
# while the chunk's dozen elementwise passes run over them (benchmarks/selective_scan.py).
_CHUNK_NUMEL = 1 << 17


def _check_inputs(u, delta, A, B, C, delta_in, input_discretization, h0):
    if input_discretization not in _DISCRETIZATIONS:
        raise ValueError(f"input_discretization must be 'zoh' or 'euler', got {input_discretization!r}")
    tensors = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "delta_in": delta_in, "h0": h0}
    for name, t in tensors.items():
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
    if u.dim() != 3:
        raise ValueError(f"u must have shape (batch, L, D), got {tuple(u.shape)}")
    batch, length, channels = u.shape
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f"A must have shape (D, N) = ({channels}, N), got {tuple(A.shape)}")
    state = A.shape[1]
    expected = {"delta": (batch, length, channels), "delta_in": (batch, length, channels),
                "B": (batch, length, state), "C": (batch, length, state), "h0": (batch, channels, state)}
    for name, shape in expected.items():
        t = tensors[name]
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    dtypes = {t.dtype for t in tensors.values() if t is not None}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
        raise TypeError(f"u, delta, A, B, C (and delta_in, h0) must all be float32 or all float64 (the scan "
                        f"multiplies up to L decays: cast half precision up first), got {sorted(map(str, dtypes))}")
    devices = {t.device for t in tensors.values() if t is not None}
    if len(devices) != 1:
        raise ValueError(f"u, delta, A, B, C (and delta_in, h0) must be on one device, got {sorted(map(str, devices))}")


def selective_scan_reference(u, delta, A, B, C, delta_in=None, input_discretization="zoh", h0=None,
                             return_last_state=False, scan_fn=scan_reference):
    """The selective scan written out (see the module docstring); the definition of :func:`selective_scan`.

    Parameters
    ----------
    u, delta : Tensor of shape (batch, L, D)
        Input and step (``Delta_k``, which sets the decay ``a_k = exp(Delta_k A)``).
    A : Tensor of shape (D, N)
        Continuous-time diagonal transition, negative.
    B, C : Tensor of shape (batch, L, N)
        Per-step input and output projections.
    delta_in : Tensor of shape (batch, L, D), optional
        Step the input is held over; ``delta`` if omitted.
    input_discretization : {"zoh", "euler"}, default "zoh"
        Input scale ``Delta_in exprel(Delta_in A)`` (saturates for long steps) or ``Delta_in``.
    h0 : Tensor of shape (batch, D, N), optional
        State before the first step; zero if omitted.
    return_last_state : bool, default False
        Also return the state after the last step (``h0``, or zeros, when L is 0).
    scan_fn : callable, default :func:`~smr_ts.ssm.linear_scan.scan_reference`
        The diagonal scan run over the built terms (:func:`~smr_ts.ssm.linear_scan.scan` gives
        the path CUDA runs).

    Returns
    -------
    y : Tensor of shape (batch, L, D)
    h_last : Tensor of shape (batch, D, N)
        Only with ``return_last_state``.

    Examples
    --------
    >>> u, delta = torch.randn(2, 5, 3), torch.rand(2, 5, 3)
    >>> A, B, C = -torch.rand(3, 4) - 0.5, torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    >>> selective_scan_reference(u, delta, A, B, C).shape
    torch.Size([2, 5, 3])
    """
    _check_inputs(u, delta, A, B, C, delta_in, input_discretization, h0)
    delta_in = delta if delta_in is None else delta_in
    a = torch.exp(delta.unsqueeze(-1) * A)
    held = delta_in.unsqueeze(-1)
    in_scale = held * exprel(held * A) if input_discretization == "zoh" else held
    b = in_scale * B.unsqueeze(2) * u.unsqueeze(-1)
    h = scan_fn(a, b, h0)
    y = torch.einsum("bldn,bln->bld", h, C)
    if not return_last_state:
        return y
    if h.shape[1]:
        return y, h[:, -1]
    return y, torch.zeros(u.shape[0], *A.shape, dtype=u.dtype, device=u.device) if h0 is None else h0


def selective_scan(u, delta, A, B, C, delta_in=None, input_discretization="zoh", h0=None,
                   return_last_state=False, chunk_size=None):
    """Fast selective scan; same signature and result as :func:`selective_scan_reference`.

    Parameters
    ----------
    u, delta, A, B, C, delta_in, input_discretization, h0, return_last_state
        As in :func:`selective_scan_reference`. ``A`` must be negative (a decay); an entry
        that rounded to zero is treated as the smallest negative normal number.
    chunk_size : int, optional
        Steps per chunk on CPU (memory grows with it); chosen from the sizes if omitted.

    Returns
    -------
    y : Tensor of shape (batch, L, D)
    h_last : Tensor of shape (batch, D, N)
        Only with ``return_last_state``.

    Examples
    --------
    >>> u, delta = torch.randn(2, 50, 3), torch.rand(2, 50, 3)
    >>> A, B, C = -torch.rand(3, 4) - 0.5, torch.randn(2, 50, 4), torch.randn(2, 50, 4)
    >>> torch.allclose(selective_scan(u, delta, A, B, C), selective_scan_reference(u, delta, A, B, C), atol=1e-5)
    True
    """
    _check_inputs(u, delta, A, B, C, delta_in, input_discretization, h0)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if u.device.type != "cpu":
        return selective_scan_reference(u, delta, A, B, C, delta_in, input_discretization, h0, return_last_state,
                                        scan_fn=scan)
    batch, length, channels = u.shape
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_NUMEL // max(1, batch * A.numel()))
    chunk_size = max(1, min(chunk_size, length))
    same_step = delta_in is None
    # Contiguous steps: every chunk's broadcast products then run over unit strides.
    u, delta, B, C = (t.contiguous() for t in (u, delta, B, C))
    delta_in = delta if same_step else delta_in.contiguous()
    # With one step tensor, delta_in's gradient goes into delta's.
    y, h_last = _ChunkedSelectiveScan.apply(u, delta, A, B, C, delta_in, same_step, input_discretization == "zoh",
                                            h0, chunk_size)
    return (y, h_last) if return_last_state else y


def _exp(x: torch.Tensor, minus_one: bool = False) -> torch.Tensor:
    """``exp(x)`` (or ``expm1(x)``) in place on a contiguous CPU buffer. numpy's SIMD loops run
    several times faster than torch's here, on the same memory."""
    array = x.numpy()
    with np.errstate(all="ignore"):  # decays underflow to zero by design, whatever numpy's error settings
        (np.expm1 if minus_one else np.exp)(array, out=array)
    return x


def _chunk_terms(u, delta, A, B, delta_in, same_step, zoh):
    """One chunk's terms, state-major (batch, T, N, D): ``a``, ``b = s B u``, the outer product
    ``B u`` (ZOH) and the input's decay ``exp(Delta_in A)`` (ZOH; ``a`` itself when the steps are
    one). ``A`` is given as (N, D) and the rest as (batch, T, D) or (batch, T, N)."""
    z = delta.unsqueeze(2) * A
    a = _exp(z.clone())
    bu = B.unsqueeze(-1) * u.unsqueeze(2)
    if not zoh:
        return a, bu.mul_(delta_in.unsqueeze(2)), None, None, None
    held_z = z if same_step else delta_in.unsqueeze(2) * A
    held_decay = a if same_step else _exp(held_z.clone())
    # expm1(z) / A equals Delta_in exprel(z) for z = Delta_in A, without exprel's branches.
    scale = _exp(held_z, minus_one=True).div_(A)
    return a, scale * bu, bu, scale, held_decay


def _scan_in_place(a, b, h_start):
    """``h_t = a_t h_{t-1} + b_t`` over the chunk's steps (dimension 1), written into ``b``."""
    prev = h_start
    for t in range(b.shape[1]):
        if prev is not None:
            torch.addcmul(b[:, t], a[:, t], prev, out=b[:, t])
        prev = b[:, t]
    return b


def _weigh_states(weights, terms):
    """``sum_n weights[..., n] terms[..., n, :]`` (batch, T, D) as batched row-vector products."""
    batch, steps, state, channels = terms.shape
    return torch.bmm(weights.reshape(-1, 1, state), terms.reshape(-1, state, channels)).view(batch, steps, channels)


def _weigh_channels(weights, terms):
    """``sum_d weights[..., d] terms[..., :, d]`` (batch, T, N)."""
    return terms.mul_(weights.unsqueeze(2)).sum(-1)


class _ChunkedSelectiveScan(torch.autograd.Function):
    """Chunked forward; the backward recomputes each chunk from its saved start state.

    With g_k = dLoss/dh_k = C_k gy_k + a_{k+1} g_{k+1} (accumulated backwards in time):
    dLoss/da_k = g_k h_{k-1} and dLoss/db_k = g_k, then the chain rule through
    a = exp(Delta A) and b = s(Delta_in, A) B u, with ds/dDelta_in = exp(Delta_in A) and
    ds/dA = (Delta_in exp(Delta_in A) - s) / A for ZOH. States are held state-major,
    (batch, N, D), so that sums over the state are over an outer dimension.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, delta_in, same_step, zoh, h0, chunk_size):
        with torch.autocast("cpu", enabled=False):  # the scan stays in its inputs' precision
            return _ChunkedSelectiveScan._forward(ctx, u, delta, A, B, C, delta_in, same_step, zoh, h0, chunk_size)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_h_last):
        with torch.autocast("cpu", enabled=False):
            return _ChunkedSelectiveScan._backward(ctx, grad_y, grad_h_last)

    @staticmethod
    def _forward(ctx, u, delta, A, B, C, delta_in, same_step, zoh, h0, chunk_size):
        batch, length, channels = u.shape
        A_t = A.clamp(max=-torch.finfo(A.dtype).tiny).t().contiguous()
        y = u.new_empty(batch, length, channels)
        h = None if h0 is None else h0.transpose(1, 2).contiguous()
        keep = any(ctx.needs_input_grad)
        starts = [h]  # the state before each chunk: all the backward pass keeps
        for lo in range(0, length, chunk_size):
            hi = min(lo + chunk_size, length)
            a, b, _, _, _ = _chunk_terms(u[:, lo:hi], delta[:, lo:hi], A_t, B[:, lo:hi], delta_in[:, lo:hi],
                                         same_step, zoh)
            states = _scan_in_place(a, b, h)
            y[:, lo:hi] = _weigh_states(C[:, lo:hi], states)
            h = states[:, -1].clone()
            starts.append(h if keep else None)
        starts.pop()
        h_last = u.new_zeros(batch, *A.shape) if h is None else h.transpose(1, 2).clone()
        ctx.set_materialize_grads(False)
        if keep:
            ctx.save_for_backward(u, delta, A_t, B, C, delta_in, *starts)
        ctx.same_step, ctx.zoh, ctx.chunk_size, ctx.has_h0 = same_step, zoh, chunk_size, h0 is not None
        return y, h_last

    @staticmethod
    def _backward(ctx, grad_y, grad_h_last):
        u, delta, A_t, B, C, delta_in, *starts = ctx.saved_tensors
        same_step, zoh, chunk_size = ctx.same_step, ctx.zoh, ctx.chunk_size
        length = u.shape[1]
        grad_u, grad_delta, grad_B, grad_C = (torch.empty_like(t) for t in (u, delta, B, C))
        grad_delta_in = grad_delta if same_step else torch.empty_like(delta_in)
        grad_A_t = torch.zeros_like(A_t)
        grad_y = torch.zeros_like(u) if grad_y is None else grad_y
        # dLoss/dh at the end of the chunk, from later steps (None: zero)
        carry = None if grad_h_last is None else grad_h_last.transpose(1, 2).contiguous()
        for index in range(len(starts) - 1 if length else -1, -1, -1):
            lo = index * chunk_size
            hi = min(lo + chunk_size, length)
            start = starts[index]
            u_c, delta_c, B_c, C_c, delta_in_c, gy = (t[:, lo:hi] for t in (u, delta, B, C, delta_in, grad_y))
            a, b, bu, scale, held_decay = _chunk_terms(u_c, delta_c, A_t, B_c, delta_in_c, same_step, zoh)
            states = _scan_in_place(a, b, start)

            g = C_c.unsqueeze(-1) * gy.unsqueeze(2)
            if carry is not None:
                g[:, -1] += carry
            for t in range(g.shape[1] - 2, -1, -1):
                torch.addcmul(g[:, t], a[:, t + 1], g[:, t + 1], out=g[:, t])
            carry = a[:, 0] * g[:, 0]

            # a = exp(z), z = Delta A: dLoss/dz = g a h_{k-1}; A's share is summed over (batch, T) below.
            g_z = a.mul(g)
            g_z[:, 1:].mul_(states[:, :-1])
            if start is None:
                g_z[:, 0] = 0
            else:
                g_z[:, 0].mul_(start)
            g_z.mul_(A_t)
            g_delta = g_z.sum(2)
            chunk_grad_A = g_z.mul_(delta_c.unsqueeze(2))  # times A, divided out at the end
            grad_C[:, lo:hi] = _weigh_channels(gy, states)

            # b = s B u: dLoss/db = g.
            if zoh:
                g_scale = g * scale
                grad_u[:, lo:hi] = _weigh_states(B_c, g_scale)
                g_held = g.mul_(held_decay)
                g_in = _weigh_states(B_c, g_held).mul_(u_c)
                # dLoss/dA through s: sum g B u (Delta_in exp(Delta_in A) - s) / A.
                chunk_grad_A.addcmul_(g_held.mul_(delta_in_c.unsqueeze(2)).sub_(g_scale), bu)
                grad_B[:, lo:hi] = _weigh_channels(u_c, g_scale)
            else:
                held = delta_in_c.unsqueeze(2)
                g_in = _weigh_states(B_c, g)
                grad_u[:, lo:hi] = g_in * delta_in_c
                g_in.mul_(u_c)
                grad_B[:, lo:hi] = _weigh_channels(u_c, g.mul_(held))
            grad_A_t += chunk_grad_A.sum((0, 1))
            if same_step:
                grad_delta[:, lo:hi] = g_delta.add_(g_in)
            else:
                grad_delta[:, lo:hi] = g_delta
                grad_delta_in[:, lo:hi] = g_in
        grad_h0 = carry.transpose(1, 2) if ctx.has_h0 and carry is not None else None
        grad_A = grad_A_t.div_(A_t).t()
        return (grad_u, grad_delta, grad_A, grad_B, grad_C, None if same_step else grad_delta_in, None, None,
                grad_h0, None)
