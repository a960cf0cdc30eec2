"""S5 (Smith, Warrington, Linderman, ICLR 2023) with one step per observation.

    Delta_k = exp(log_step) * dt_k                    (learned timescale times observed gap)
    x_k     = Lambda_bar_k x_{k-1} + B_bar_k u_k      (diagonal, complex, P states)
    y_k     = 2 Re(C_tilde x_k) + D u_k               (conjugate symmetry)

B_bar_k u_k is a per-state scale times (B_tilde u_k), so no per-step (P, H) matrix is
built and a layer's memory is O(batch * L * (H + P)).

Masked steps (``mask`` False) are unobserved: their input does not enter the state,
but the state still advances over their gap and they still produce an output. With
ZOH, exp(Lambda a) exp(Lambda b) = exp(Lambda (a + b)), so inserting an unobserved step
inside a gap leaves every later output unchanged, and an unobserved step placed at a
future time reads out the forecast of the state propagated to that time.
"""

from __future__ import annotations

import torch
from torch import nn

from smr_ts.ssm.discretize import bilinear, complex_exp, zoh
from smr_ts.ssm.init import block_diagonal_hippo, lecun_normal_, log_uniform_
from smr_ts.ssm.linear_scan import scan, scan_reference
from smr_ts.ssm.observed import elapsed_after, gaps_or_ones, observed_gaps
from smr_ts.ssm.params import tag_ssm_parameters
from smr_ts.ssm.smr import SMRGate, gate_input

__all__ = ["S5"]

_DISCRETIZATIONS = {"zoh": zoh, "bilinear": bilinear}


class S5(nn.Module):
    """Variable-step S5 layer: (batch, L, H) inputs with per-step gaps to (batch, L, H) outputs.

    Parameters
    ----------
    d_model : int
        Input and output width H.
    state_size : int, default 64
        State size P before conjugate symmetry (the layer keeps P/2 complex states when
        ``conj_sym``).
    blocks : int, default 1
        Number J of HiPPO-N blocks used to initialise Lambda (S5 Sec. 4.3).
    conj_sym : bool, default True
        Keep one eigenvalue per conjugate pair; outputs are 2 Re(C x).
    discretization : {"zoh", "bilinear"}, default "zoh"
        Only "zoh" satisfies the gap-splitting identity exactly.
    dt_min, dt_max : float, default 0.001, 0.1
        log_step is initialised log-uniform in [dt_min, dt_max].
    bidirectional : bool, default False
        Add a backwards scan that uses the gap following each step, with its own C.
    smr : bool, default False
        Gate the input with State Memory Replay (:class:`~smr_ts.ssm.smr.SMRGate`).
    smr_kernel : int, default 4
        The SMR kernel length tau.
    smr_use_gaps : bool, default False
        Time-aware SMR gate (see :class:`~smr_ts.ssm.smr.SMRGate`).
    first_dt : float, default 1.0
        Gap used for the backwards scan's last step (bidirectional only).
    use_reference_scan : bool, default False
        Run the slow sequential reference scan (for tests and debugging).

    Examples
    --------
    >>> layer = S5(d_model=4, state_size=8)
    >>> u, dt = torch.randn(2, 7, 4), torch.rand(2, 7)
    >>> layer(u, dt).shape
    torch.Size([2, 7, 4])
    """

    def __init__(
        self,
        d_model: int,
        state_size: int = 64,
        blocks: int = 1,
        conj_sym: bool = True,
        discretization: str = "zoh",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        bidirectional: bool = False,
        smr: bool = False,
        smr_kernel: int = 4,
        smr_use_gaps: bool = False,
        first_dt: float = 1.0,
        use_reference_scan: bool = False,
    ):
        super().__init__()
        if discretization not in _DISCRETIZATIONS:
            raise ValueError(f"discretization must be one of {sorted(_DISCRETIZATIONS)}, got {discretization!r}")
        self.d_model = d_model
        self.conj_sym = conj_sym
        self.discretization = discretization
        self.bidirectional = bidirectional
        self.first_dt = float(first_dt)
        self.use_reference_scan = use_reference_scan

        lam, v, v_inv = block_diagonal_hippo(state_size, blocks, conj_sym)
        self.n_states = lam.numel()
        # Re(Lambda) = -exp(log_neg_lambda_re) < 0 for any parameter value: |Lambda_bar| <= 1.
        self.log_neg_lambda_re = nn.Parameter(torch.log(-lam.real).float())
        self.lambda_im = nn.Parameter(lam.imag.float())
        # B_tilde = V^-1 B and C_tilde = C V with B, C LeCun-normal (S5 Sec. 4.3, App. B.1).
        b = lecun_normal_(torch.empty(state_size, d_model, dtype=torch.float64), fan_in=d_model)
        self.b_tilde = nn.Parameter(torch.view_as_real(v_inv @ b.to(v_inv.dtype)).float())
        n_out = 2 if bidirectional else 1
        c_re = lecun_normal_(torch.empty(n_out, d_model, state_size, dtype=torch.float64), fan_in=state_size)
        c_im = lecun_normal_(torch.empty(n_out, d_model, state_size, dtype=torch.float64), fan_in=state_size)
        self.c_tilde = nn.Parameter(torch.view_as_real(torch.complex(c_re, c_im) @ v).float())
        self.d = nn.Parameter(torch.randn(d_model))
        self.log_step = nn.Parameter(log_uniform_(torch.empty(self.n_states), dt_min, dt_max))
        self.smr = SMRGate(d_model, smr_kernel, smr_use_gaps) if smr else None
        # S5 App. F.3: Lambda, B and the step train at the SSM rate without weight decay (C and D do not).
        tag_ssm_parameters(self.log_neg_lambda_re, self.lambda_im, self.b_tilde, self.log_step)

    # -- parameters in the form the math uses ---------------------------------------------
    def eigenvalues(self) -> torch.Tensor:
        """Lambda as a complex tensor (P,)."""
        return torch.complex(-torch.exp(self.log_neg_lambda_re), self.lambda_im)

    def _compute_dtype(self) -> torch.dtype:
        """float64 when the layer was converted with ``.double()``, float32 otherwise."""
        return torch.float64 if self.log_step.dtype == torch.float64 else torch.float32

    def _discretize(self, dt: torch.Tensor):
        """Lambda_bar and the input scale for gaps dt (batch, L): complex (batch, L, P) each."""
        delta = torch.exp(self.log_step) * dt.unsqueeze(-1)
        lam_re = -torch.exp(self.log_neg_lambda_re)
        a_re, a_im, s_re, s_im = _DISCRETIZATIONS[self.discretization](lam_re, self.lambda_im, delta)
        return torch.complex(a_re, a_im), torch.complex(s_re, s_im)

    def _readout(self, x: torch.Tensor, direction: int = 0) -> torch.Tensor:
        c = torch.view_as_complex(self.c_tilde[direction].to(x.real.dtype).contiguous())
        y = torch.einsum("blp,hp->blh", x, c).real
        return 2 * y if self.conj_sym else y

    # -- forward ----------------------------------------------------------------------------
    def forward(
        self,
        u: torch.Tensor,
        dt: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_state: bool = False,
    ):
        """Run the layer.

        Parameters
        ----------
        u : Tensor (batch, L, H)
        dt : Tensor (batch, L), optional
            Gap before each step in the model's time unit; ones if omitted. Padding
            steps should have gap 0, so the final state is the state at the last
            observation.
        mask : bool Tensor (batch, L), optional
            False at unobserved steps and padding. None: every step is observed.
        return_state : bool, default False
            Also return the state after the last step (complex (batch, P)), for
            :meth:`propagate`. Unidirectional layers only.

        Returns
        -------
        y : Tensor (batch, L, H)
        state : complex Tensor (batch, P), only with ``return_state``
        """
        if return_state and self.bidirectional:
            raise ValueError("return_state is only defined for unidirectional layers")
        y, x, _ = self._run(u, dt, mask, None, want_state=False)
        return (y, x[:, -1]) if return_state else y

    def _run(self, u, dt, mask, state: dict | None, want_state: bool):
        """Outputs, states x (batch, L, P) and, with ``want_state``, the streaming state after the
        last step. ``state`` None starts the sequence (zero state)."""
        batch, length, _ = u.shape
        real = self._compute_dtype()
        dt = gaps_or_ones(dt, (batch, length), real, u.device)
        elapsed = None if state is None else state["elapsed"]
        new_state = {}
        u_ssm = gate_input(self.smr, u, dt, mask, state, elapsed, want_state, new_state)
        u_real = u_ssm.to(real)  # the SSM runs in float32 or higher, even under autocast
        b_tilde = torch.view_as_complex(self.b_tilde.to(real).contiguous())
        bu = torch.einsum("blh,ph->blp", u_real.to(b_tilde.dtype), b_tilde)
        if mask is not None:
            bu = bu * mask.unsqueeze(-1).to(real)
        run = scan_reference if self.use_reference_scan else scan

        a, _ = self._discretize(dt)
        # ZOH holds an observation's input since the previous observation, so unobserved
        # steps in between split the decay but not the input: gap-splitting stays exact.
        _, scale = self._discretize(observed_gaps(dt, mask, elapsed))
        x = run(a, scale * bu, None if state is None else state["x"])
        y = self._readout(x, 0)
        if self.bidirectional:
            a_back, scale_back = self._discretize(self._backward_gaps(dt, mask))
            x_back = run(a_back, scale_back * bu, reverse=True)
            y = y + self._readout(x_back, 1)
        y = (y + self.d.to(real) * u_real).to(u.dtype)
        if want_state:
            new_state["x"] = x[:, -1] if length else state["x"]
            new_state["elapsed"] = elapsed_after(dt, mask, elapsed)
        return y, x, new_state

    # -- streaming ---------------------------------------------------------------------------
    def initial_state(self, batch: int, device=None) -> dict:
        """The state of :meth:`advance` before a sequence's first step: zeros."""
        real = self._compute_dtype()
        state = {"x": torch.zeros(batch, self.n_states, dtype=torch.complex128 if real == torch.float64
                                  else torch.complex64, device=device),
                 "elapsed": torch.zeros(batch, dtype=torch.float64, device=device)}
        if self.smr is not None:
            state["smr"] = torch.zeros(batch, self.smr.kernel_size, self.d_model, dtype=real, device=device)
        return state

    def advance(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """Continue a sequence from ``state`` over new steps: ``(y, state after them)``.

        Running a sequence in pieces, each from the state the previous piece returned, gives
        the outputs of one run over the whole (tests hold them to each other). ``state`` None
        starts a sequence. It holds the complex state ``x`` (batch, P), the time since the last
        observation ``elapsed`` (batch,) and, with SMR, the last ``smr_kernel`` observed inputs.
        Padding steps (gap 0, unobserved) leave it unchanged. Unidirectional layers only.
        """
        if self.bidirectional:
            raise ValueError("advance is only defined for unidirectional layers")
        y, _, new_state = self._run(u, dt, mask, state, want_state=True)
        return y, new_state

    def _backward_gaps(self, dt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The gap that follows each step; ``first_dt`` after the last observed step."""
        following = torch.cat([dt[:, 1:], torch.full_like(dt[:, :1], self.first_dt)], dim=1)
        if mask is None:
            return following
        # Steps after the last observation are padding: the last observation is followed by first_dt.
        observed_later = torch.flip(torch.cumsum(torch.flip(mask.to(torch.int32), [1]), 1), [1]) > 0
        next_inside = torch.cat([observed_later[:, 1:], torch.zeros_like(observed_later[:, :1])], dim=1)
        return torch.where(next_inside, following, torch.full_like(dt, self.first_dt))

    # -- continuous-time queries --------------------------------------------------------------
    def propagate(self, state: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """Propagate states with no input: x(t + dt) = exp(Lambda exp(log_step) dt) x(t).

        Parameters
        ----------
        state : complex Tensor (batch, P)
        dt : Tensor (batch, Q)
            Time after the state's time for each of Q query times (any values >= 0,
            not a grid).

        Returns
        -------
        complex Tensor (batch, Q, P)
        """
        delta = torch.exp(self.log_step) * dt.to(self._compute_dtype()).unsqueeze(-1)
        a_re, a_im = complex_exp(-torch.exp(self.log_neg_lambda_re) * delta, self.lambda_im * delta)
        return torch.complex(a_re, a_im) * state.unsqueeze(1)

    def readout(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs 2 Re(C_tilde x) for states with no input at their time: (batch, Q, P) -> (batch, Q, H)."""
        return self._readout(states, 0)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_states={self.n_states}, discretization={self.discretization!r}, "
            f"conj_sym={self.conj_sym}, bidirectional={self.bidirectional}"
        )
