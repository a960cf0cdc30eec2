"""State Memory Replay (Qi et al., Findings of ACL 2024).

When test-time sampling differs from training, errors injected through the input
accumulate in the state (non-stable states). SMR rescales each input by a gate that
replays the recent inputs through a learnable causal convolution:

    u~_k = sigmoid(sum_{i < tau} m_i * u_{k-i} + c) * u_k          (per channel)

The SSM then consumes u~ instead of u; its A and Delta are unchanged.

Design choices (the paper's own values could not be read):

- ``kernel_size`` tau defaults to 4.
- m is drawn like a depthwise ``Conv1d`` weight, U(-1/sqrt(tau), 1/sqrt(tau)); the bias c
  starts at 0, so at initialisation the gate is exactly the paper's formula.
- Windows run over the last tau *observed* steps: masked steps and padding are skipped
  (see :mod:`smr_ts.ssm.observed`). Inserting an unobserved step therefore leaves the gate
  at every observed step unchanged, and S5's gap-splitting identity survives SMR.
- ``use_gaps=True`` is a time-aware variant: the gate logit also gets
  ``w * log(gap since the previous observation)`` per channel, with w starting at 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from smr_ts.ssm.observed import gaps_or_ones, last_observed, observed_causal_conv, observed_gaps

__all__ = ["SMRGate", "gate_input"]

_MIN_GAP = 1e-6


class SMRGate(nn.Module):
    """The SMR input gate. Maps u (batch, L, C) to sigmoid(conv(u)) * u.

    Parameters
    ----------
    channels : int
        Number of input channels C (the SSM input width).
    kernel_size : int, default 4
        tau, the number of recent observed inputs the gate looks at (including the current one).
    use_gaps : bool, default False
        Add ``w * log(gap since the previous observation)`` to the gate logit.

    Examples
    --------
    >>> gate = SMRGate(channels=3, kernel_size=4)
    >>> gate(torch.randn(2, 10, 3)).shape
    torch.Size([2, 10, 3])
    """

    def __init__(self, channels: int, kernel_size: int = 4, use_gaps: bool = False):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.use_gaps = use_gaps
        bound = 1.0 / math.sqrt(kernel_size)
        self.weight = nn.Parameter(torch.empty(channels, kernel_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.gap_weight = nn.Parameter(torch.zeros(channels)) if use_gaps else None

    def gate(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
             history: torch.Tensor | None = None, elapsed: torch.Tensor | None = None):
        """The multiplicative factor sigmoid(conv(u)) in (0, 1), shape (batch, L, C).

        ``history`` (the last ``kernel_size`` observed inputs before ``u``) and ``elapsed`` (the
        time since their last observation) continue a sequence (:meth:`advance`).
        """
        logits = observed_causal_conv(u, self.weight.to(u.dtype), self.bias.to(u.dtype), mask, history)
        if self.gap_weight is not None:
            gaps = observed_gaps(gaps_or_ones(dt, u.shape[:2], u.dtype, u.device), mask, elapsed).clamp(min=_MIN_GAP)
            logits = logits + self.gap_weight.to(u.dtype) * torch.log(gaps).unsqueeze(-1)
        return torch.sigmoid(logits)

    def forward(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        return self.gate(u, dt, mask) * u

    def advance(self, u: torch.Tensor, dt: torch.Tensor | None, mask: torch.Tensor | None,
                history: torch.Tensor | None, elapsed: torch.Tensor | None = None):
        """Gate ``u`` as the continuation of a sequence whose last ``kernel_size`` observed inputs
        were ``history`` (None: ``u`` starts it); returns the gated ``u`` and the history after it."""
        gated = self.gate(u, dt, mask, history, elapsed) * u
        return gated, last_observed(u, mask, self.kernel_size, history)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, use_gaps={self.use_gaps}"


def gate_input(smr: "SMRGate | None", u: torch.Tensor, dt, mask, state: dict | None, elapsed, want_state: bool,
               new_state: dict) -> torch.Tensor:
    """A layer's input after its optional SMR gate. With ``want_state`` the gate continues from
    ``state["smr"]`` (None: the sequence starts) and its history after ``u`` goes to
    ``new_state["smr"]`` (S5 and S6 share this)."""
    if smr is None:
        return u
    if not want_state:
        return smr(u, dt, mask)
    gated, new_state["smr"] = smr.advance(u, dt, mask, None if state is None else state["smr"], elapsed)
    return gated
