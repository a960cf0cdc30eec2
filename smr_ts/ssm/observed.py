"""Operations that see observed steps only, skipping unobserved (masked) steps.

Unobserved steps are query points: the state advances over their gaps but they carry no
input. Everything here is built so that inserting or removing them changes nothing at
observed steps.

:func:`observed_gaps` is the time since the previous observation. ZOH holds an
observation's input over that interval, which makes S5's gap-splitting identity exact.

:func:`observed_causal_conv` is used by S6's short convolution and by the SMR gate. A window covers the last
``kernel`` *observed* steps: unobserved (masked) steps and padding are skipped, and
the value at a masked step is the value at the most recent observed step before it.
Therefore inserting or removing unobserved steps changes nothing at observed steps,
which keeps S5's ZOH gap-splitting identity exact with SMR, and lets forecast queries
(masked steps) be answered independently of each other.

Streaming (a sequence continued chunk by chunk, ``advance`` of the layers) needs two things
carried over from the rows already seen: the time since the last observation (``elapsed``, for
:func:`observed_gaps`) and the last ``kernel`` observed inputs (``history``, for
:func:`observed_causal_conv`; :func:`last_observed` keeps it up to date).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["causal_conv_reference", "elapsed_after", "gaps_or_ones", "last_observed", "observed_causal_conv",
           "observed_first", "observed_gaps", "read_latest_observed"]


def gaps_or_ones(dt: torch.Tensor | None, shape, dtype: torch.dtype, device) -> torch.Tensor:
    """``dt`` in ``dtype``, or unit gaps of ``shape`` (batch, L) when it is None."""
    if dt is None:
        return torch.ones(*shape, dtype=dtype, device=device)
    return dt.to(dtype)


def observed_first(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's observed steps to the front, in order, with zeros after them.

    Returns the compacted ``x`` (batch, L, C) and the number of observed steps per row (batch, 1).
    """
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    compact = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    n_observed = mask.sum(1, keepdim=True)
    keep = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < n_observed
    return torch.where(keep.unsqueeze(-1), compact, torch.zeros((), dtype=compact.dtype, device=compact.device)), n_observed


def read_latest_observed(y_compact: torch.Tensor, mask: torch.Tensor, before_first: torch.Tensor) -> torch.Tensor:
    """Undo :func:`observed_first`: step k reads the compact output of the latest observed step <= k.

    Steps before a row's first observation read ``before_first`` (broadcast to the output).
    """
    rank = torch.cumsum(mask, dim=1) - 1
    index = rank.clamp(min=0, max=y_compact.shape[1] - 1).unsqueeze(-1).expand(-1, -1, y_compact.shape[-1])
    y = torch.gather(y_compact, 1, index)
    return torch.where((rank >= 0).unsqueeze(-1), y, before_first.to(y.dtype).expand_as(y))


def observed_gaps(dt: torch.Tensor, mask: torch.Tensor | None, elapsed: torch.Tensor | None = None) -> torch.Tensor:
    """Time since the previous observed step (since the sequence start for the first one).

    ``dt`` (batch, L) are per-step gaps including unobserved steps; with ``mask`` None
    every step is observed and this is ``dt`` itself. ``elapsed`` (batch,), when the
    sequence continues earlier rows: the time from their last observation to the end of
    those rows (the first observed step of this chunk then counts from there).
    """
    if mask is None and elapsed is None:
        return dt
    if mask is None:
        mask = torch.ones(dt.shape, dtype=torch.bool, device=dt.device)
    t = _times(dt, elapsed)
    steps = torch.arange(dt.shape[1], device=dt.device).expand_as(dt)
    last_obs = torch.cummax(torch.where(mask.to(torch.bool), steps, -1), dim=1).values
    prev_obs = torch.cat([torch.full_like(last_obs[:, :1], -1), last_obs[:, :-1]], dim=1)
    t_prev = torch.where(prev_obs >= 0, torch.gather(t, 1, prev_obs.clamp(min=0)), torch.zeros_like(t))
    return (t - t_prev).to(dt.dtype)


def _times(dt: torch.Tensor, elapsed: torch.Tensor | None) -> torch.Tensor:
    """float64 time of each step since the last observation before the chunk (the start if none)."""
    t = torch.cumsum(dt.to(torch.float64), dim=1)
    return t if elapsed is None else t + elapsed.to(device=dt.device, dtype=torch.float64).unsqueeze(1)


def elapsed_after(dt: torch.Tensor, mask: torch.Tensor | None, elapsed: torch.Tensor | None = None) -> torch.Tensor:
    """(batch,) float64: the time from the last observation to the end of the chunk, the
    ``elapsed`` of :func:`observed_gaps` for the chunk that follows (padding has gap 0)."""
    batch, length = dt.shape
    if length == 0:
        return torch.zeros(batch, dtype=torch.float64, device=dt.device) if elapsed is None else elapsed.double()
    t = _times(dt, elapsed)
    if mask is None:
        return torch.zeros(batch, dtype=torch.float64, device=dt.device)
    steps = torch.arange(length, device=dt.device).expand_as(dt)
    last = torch.where(mask.to(torch.bool), steps, -1).max(1).values
    t_last = torch.where(last >= 0, t.gather(1, last.clamp(min=0).unsqueeze(1))[:, 0], torch.zeros_like(t[:, 0]))
    return t[:, -1] - t_last


def last_observed(x: torch.Tensor, mask: torch.Tensor | None, count: int,
                  history: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, count, C): the last ``count`` observed steps of ``history`` followed by ``x``, oldest
    first, zeros where there are fewer (the zero padding the causal convolutions start from).

    ``history`` (batch, count, C) is what this function returned for the rows before ``x``.
    """
    batch, _, channels = x.shape
    if history is None:
        history = x.new_zeros(batch, count, channels)
    seen = torch.ones(batch, count, dtype=torch.bool, device=x.device)
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    compact, n_observed = observed_first(torch.cat([history.to(x.dtype), x], 1), torch.cat([seen, mask.to(torch.bool)], 1))
    index = n_observed - count + torch.arange(count, device=x.device)
    return torch.gather(compact, 1, index.unsqueeze(-1).expand(-1, -1, channels))


def _causal_depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (B, L, C), weight (C, K) with weight[:, -1] applied to the current step."""
    channels, kernel = weight.shape
    y = F.conv1d(F.pad(x.transpose(1, 2), (kernel - 1, 0)), weight.unsqueeze(1), bias, groups=channels)
    return y.transpose(1, 2)


def observed_causal_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, mask: torch.Tensor | None = None,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """Depthwise causal convolution whose windows skip unobserved steps.

    Parameters
    ----------
    x : Tensor (batch, L, C)
    weight : Tensor (C, kernel)
        ``weight[:, -1]`` multiplies the current step, ``weight[:, -1 - i]`` the i-th
        observed step before it.
    bias : Tensor (C,), optional
    mask : bool Tensor (batch, L), optional
        True where the step is observed. None means every step is observed.
    history : Tensor (batch, kernel, C), optional
        The last ``kernel`` observed steps before ``x`` (:func:`last_observed`), when ``x``
        continues a sequence; None: ``x`` starts it.

    Returns
    -------
    Tensor (batch, L, C)
        At an observed step, the convolution over it and the ``kernel - 1`` observed
        steps before it (zeros before the first). At an unobserved step, the value at the
        latest observed step before it (the bias alone if there is none).
    """
    if history is not None:
        # The history's last step has a full window, so unobserved steps before the chunk's first
        # observation read its output, as they would in the whole sequence.
        kernel = history.shape[1]
        seen = torch.ones(x.shape[0], kernel, dtype=torch.bool, device=x.device)
        whole = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.to(torch.bool)
        y = observed_causal_conv(torch.cat([history.to(x.dtype), x], 1), weight, bias, torch.cat([seen, whole], 1))
        return y[:, kernel:]
    if mask is None:
        return _causal_depthwise(x, weight, bias)
    mask = mask.to(torch.bool)
    y_compact = _causal_depthwise(observed_first(x, mask)[0], weight, bias)
    empty = bias if bias is not None else torch.zeros((), dtype=x.dtype, device=x.device)
    return read_latest_observed(y_compact, mask, empty)


def causal_conv_reference(x, weight, bias=None, mask=None):
    """Loop version of :func:`observed_causal_conv`: the definition, for tests."""
    batch, length, channels = x.shape
    kernel = weight.shape[1]
    mask = torch.ones(batch, length, dtype=torch.bool) if mask is None else mask.to(torch.bool).cpu()
    out = torch.zeros_like(x)
    for i in range(batch):
        seen: list[int] = []
        for k in range(length):
            if mask[i, k]:
                seen.append(k)
            if not seen:
                out[i, k] = bias if bias is not None else 0
                continue
            window = seen[-kernel:]
            acc = torch.zeros(channels, dtype=x.dtype, device=x.device) if bias is None else bias.clone()
            for j, step in enumerate(reversed(window)):
                acc = acc + weight[:, -1 - j] * x[i, step]
            out[i, k] = acc
    return out
