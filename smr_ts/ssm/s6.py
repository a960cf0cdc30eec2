"""S6: Mamba's selective state-space block (Gu & Dao 2023) with the observed gap injected.

    x, z        = in_proj(u)                                   (E*H channels each)
    x           = SiLU(causal depthwise conv_4(x))             (over observed steps)
    delta, B, C = x_proj(x)                                    (input dependent)
    Delta_k     = softplus(dt_proj(delta_k)) * dt_k            (selective step times observed gap)
    a_k         = exp(Delta_k A),  A = -exp(A_log)             (S4D-real init, float32)
    b_k         = Delta_k exprel(Delta_k A) B_k x_k            (ZOH: saturates for long gaps)
    y           = (C_k . h_k + D x_k) * SiLU(z_k);  out_proj(y)

Mamba's own input term is Euler's Delta_k B_k x_k, which grows without bound with the
gap; it is available as ``input_discretization="euler"``.

Unobserved (masked) steps do not enter the state, the convolution skips them, and their
selective parameters and their gate ``z`` come from the latest observed step, so a masked step
reads out the state propagated over its gap with the most recent selection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from smr_ts.ssm.observed import (
    elapsed_after, gaps_or_ones, last_observed, observed_causal_conv, observed_first, observed_gaps,
    read_latest_observed,
)
from smr_ts.ssm.init import inverse_softplus
from smr_ts.ssm.selective_scan import selective_scan, selective_scan_reference
from smr_ts.ssm.params import tag_ssm_parameters
from smr_ts.ssm.smr import SMRGate, gate_input

__all__ = ["S6"]


class S6(nn.Module):
    """Variable-step Mamba (S6) block: (batch, L, H) inputs with per-step gaps to (batch, L, H).

    Parameters
    ----------
    d_model : int
        Input and output width H.
    state_size : int, default 16
        N, the state size per channel.
    expand : int, default 2
        Inner width E * H.
    conv_kernel : int, default 4
        Width of the causal depthwise convolution.
    dt_rank : int or "auto", default "auto"
        Rank of the step projection; "auto" is ceil(H / 16).
    dt_min, dt_max : float, default 0.001, 0.1
        The step bias is the inverse softplus of a log-uniform draw in [dt_min, dt_max].
    input_discretization : {"zoh", "euler"}, default "zoh"
        Input term of the recurrence (see module docstring).
    smr : bool, default False
        Gate the selective scan's input with State Memory Replay.
    smr_kernel : int, default 4
    smr_use_gaps : bool, default False
    use_reference_scan : bool, default False
        Run :func:`~smr_ts.ssm.selective_scan.selective_scan_reference` (every step's state
        built, then the sequential loop) instead of the chunked fast path (tests, debugging).

    Examples
    --------
    >>> layer = S6(d_model=4, state_size=8)
    >>> layer(torch.randn(2, 7, 4), torch.rand(2, 7)).shape
    torch.Size([2, 7, 4])
    """

    def __init__(
        self,
        d_model: int,
        state_size: int = 16,
        expand: int = 2,
        conv_kernel: int = 4,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        input_discretization: str = "zoh",
        smr: bool = False,
        smr_kernel: int = 4,
        smr_use_gaps: bool = False,
        use_reference_scan: bool = False,
    ):
        super().__init__()
        if input_discretization not in ("zoh", "euler"):
            raise ValueError(f"input_discretization must be 'zoh' or 'euler', got {input_discretization!r}")
        self.d_model = d_model
        self.state_size = state_size
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.input_discretization = input_discretization
        self.use_reference_scan = use_reference_scan

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        conv = nn.Conv1d(self.d_inner, self.d_inner, conv_kernel, groups=self.d_inner)  # for its default init
        self.conv_weight = nn.Parameter(conv.weight.detach().squeeze(1).clone())
        self.conv_bias = nn.Parameter(conv.bias.detach().clone())
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * state_size, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # Mamba's init: the step projection keeps unit variance, and the bias puts softplus(bias)
        # log-uniform in [dt_min, dt_max] so the initial timescales span the range.
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        dt0 = torch.exp(torch.empty(self.d_inner).uniform_(math.log(dt_min), math.log(dt_max))).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(inverse_softplus(dt0))
        # S4D-real: A = -(1, 2, ..., N) per channel; kept in float32, no weight decay (see param groups).
        a = torch.arange(1, state_size + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        tag_ssm_parameters(self.A_log, self.D)  # Mamba: no weight decay on A_log and D
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.smr = SMRGate(self.d_inner, smr_kernel, smr_use_gaps) if smr else None

    def forward(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Run the block. ``dt`` (batch, L) gaps (ones if omitted); ``mask`` (batch, L) bool, False = unobserved."""
        return self._run(u, dt, mask, None, want_state=False)[0]

    def _run(self, u, dt, mask, state: dict | None, want_state: bool):
        """Outputs and, with ``want_state``, the streaming state after the last step (``state``
        None: the sequence starts here)."""
        batch, length, _ = u.shape
        # The selective scan runs in float32 (float64 after .double()) whatever the autocast state.
        real = torch.float64 if self.A_log.dtype == torch.float64 else torch.float32
        dt = gaps_or_ones(dt, (batch, length), real, u.device)
        if state is not None and mask is None:
            mask = torch.ones(batch, length, dtype=torch.bool, device=u.device)
        elapsed = None if state is None else state["elapsed"]
        x_in, z = self.in_proj(u).chunk(2, dim=-1)
        if mask is not None:
            # The gate, like x, Delta, B and C, comes from the latest observed step: an unobserved
            # step's own input is zero, and SiLU(in_proj(0)) = 0 would silence every forecast.
            # (read_latest_observed reads a compacted array: z is compacted first.)
            before = torch.zeros((), dtype=z.dtype, device=z.device) if state is None else state["z"].unsqueeze(1)
            z = read_latest_observed(observed_first(z, mask.to(torch.bool))[0], mask.to(torch.bool), before)
        conv_history = None if state is None else state["conv"]
        x = F.silu(observed_causal_conv(x_in, self.conv_weight.to(x_in.dtype), self.conv_bias.to(x_in.dtype), mask,
                                        conv_history))
        new_state = {}
        x_ssm = gate_input(self.smr, x, dt, mask, state, elapsed, want_state, new_state)

        x_real, x_ssm_real = x.to(real), x_ssm.to(real)
        sel_delta, sel_b, sel_c = torch.split(
            F.linear(x_real, self.x_proj.weight.to(real)), [self.dt_rank, self.state_size, self.state_size], dim=-1
        )
        step = F.softplus(F.linear(sel_delta, self.dt_proj.weight.to(real), self.dt_proj.bias.to(real)))
        # Under autocast the projections come out in half precision; the scan takes them in `real`.
        step, sel_b, sel_c = step.to(real), sel_b.to(real), sel_c.to(real)
        delta = step * dt.unsqueeze(-1)  # (B, L, E*H)
        a_cont = -torch.exp(self.A_log.to(real))  # (E*H, N)
        # The input is held since the previous observation (as in S5), not since a masked step.
        delta_in = None if mask is None else step * observed_gaps(dt, mask, elapsed).unsqueeze(-1)
        drive = x_ssm_real if mask is None else x_ssm_real * mask.unsqueeze(-1).to(real)
        run = selective_scan_reference if self.use_reference_scan else selective_scan
        y, h_last = run(drive, delta, a_cont, sel_b, sel_c, delta_in, self.input_discretization,
                        None if state is None else state["h"], return_last_state=True)
        y = y + self.D.to(real) * x_ssm_real
        y = y.to(u.dtype) * F.silu(z)
        if want_state:
            new_state.update(
                h=h_last,
                elapsed=elapsed_after(dt, mask, elapsed),
                conv=last_observed(x_in, mask, self.conv_weight.shape[1], conv_history),
                z=z[:, -1] if length else state["z"],
            )
        return self.out_proj(y), new_state

    # -- streaming ---------------------------------------------------------------------------
    def initial_state(self, batch: int, device=None) -> dict:
        """The state of :meth:`advance` before a sequence's first step (zeros)."""
        real = torch.float64 if self.A_log.dtype == torch.float64 else torch.float32
        dtype = self.in_proj.weight.dtype
        state = {"h": torch.zeros(batch, self.d_inner, self.state_size, dtype=real, device=device),
                 "elapsed": torch.zeros(batch, dtype=torch.float64, device=device),
                 "conv": torch.zeros(batch, self.conv_weight.shape[1], self.d_inner, dtype=dtype, device=device),
                 "z": torch.zeros(batch, self.d_inner, dtype=dtype, device=device)}
        if self.smr is not None:
            state["smr"] = torch.zeros(batch, self.smr.kernel_size, self.d_inner, dtype=dtype, device=device)
        return state

    def advance(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """Continue a sequence from ``state`` over new steps: ``(y, state after them)``.

        The state holds the scan's ``h`` (batch, E*H, N), the time since the last observation,
        the last ``conv_kernel`` observed inputs of the short convolution, the latest observed
        gate ``z``, and with SMR the last ``smr_kernel`` observed inputs of the gate. Pieces run
        one after another equal one run over the whole sequence; ``state`` None starts one.
        """
        return self._run(u, dt, mask, state, want_state=True)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_inner={self.d_inner}, state_size={self.state_size}, "
            f"dt_rank={self.dt_rank}, input_discretization={self.input_discretization!r}"
        )
