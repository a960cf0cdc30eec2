"""Recurrent baselines for irregularly sampled sequences: GRU-Delta-t and ODE-RNN.

Both are drop-in sequence models with the interface of :class:`~smr_ts.ssm.SSMStack`::

    y = model(x, dt=None, mask=None)   # (batch, L, H), (batch, L), (batch, L) -> (batch, L, H)

``dt`` is the gap before each step (ones if omitted) and ``mask`` is False at unobserved
steps and padding. Both models are causal, treat every sequence of a batch on its own,
ignore the inputs of unobserved steps, and output something at every step (the output of
the state carried to that step), so unobserved steps act as queries like in S5.

:class:`GRUDelta` (GRU-Delta-t)
    A GRU whose input at an observation is the observation concatenated with the time
    since the previous observation, the "GRU-Delta-t" baseline of Schirmer et al., 2022,
    "Modeling Irregular Time Series with Continuous Recurrent Units" (ICML), Sec. 5, in
    the line of Mozer et al., 2017 and Che et al., 2018. The state only changes at
    observations: unobserved steps carry the state of the last observation unchanged, and
    the gap fed at an observation is measured from the previous *observation*
    (:func:`~smr_ts.ssm.observed.observed_gaps`), so inserting unobserved steps changes
    nothing at observed steps.

:class:`ODERNN` (ODE-RNN)
    Rubanova, Chen and Duvenaud, 2019, "Latent ODEs for Irregularly-Sampled Time Series"
    (NeurIPS), Sec. 3 / Algorithm 1: between steps the hidden state follows an autonomous
    neural ODE ``h' = f_theta(h)`` (an MLP with tanh, solved with ``torchdiffeq.odeint``),
    and at each observation a GRU cell folds in the input. Unobserved steps only advance
    the ODE, so their outputs are forecasts of the state at their time.

Both are registered as backbones in :mod:`smr_ts.backbones`.
"""

from __future__ import annotations

import torch
from torch import nn
from torchdiffeq import odeint

from smr_ts._validation import StrOptions, check_params, positive_int, positive_real, probability
from smr_ts.ssm.observed import elapsed_after, gaps_or_ones, observed_first, observed_gaps, read_latest_observed

__all__ = ["GRUDelta", "ODERNN"]

GAP_TRANSFORMS = ("log1p", "identity")
ODE_METHODS = ("euler", "midpoint", "rk4")


def _prepare_inputs(x: torch.Tensor, dt, mask, d_model: int):
    """Check shapes; default ``dt`` to ones; return dt in x's dtype and mask as bool (or None)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a (batch, L, {d_model}) tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating point tensor, got {x.dtype}")
    batch, length, _ = x.shape
    if dt is not None and tuple(dt.shape) != (batch, length):
        raise ValueError(f"dt must have shape (batch, L) = {(batch, length)}, got {tuple(dt.shape)}")
    if mask is not None:
        if tuple(mask.shape) != (batch, length):
            raise ValueError(f"mask must have shape (batch, L) = {(batch, length)}, got {tuple(mask.shape)}")
        mask = mask.to(device=x.device, dtype=torch.bool)
        # Unobserved inputs must not matter, even when they are NaN: zero them with
        # where (a product would let a NaN through, in the backward pass if not the forward).
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    dt = gaps_or_ones(None if dt is None else dt.to(x.device), (batch, length), x.dtype, x.device)
    return x, dt, mask


class GRUDelta(nn.Module):
    """GRU-Delta-t: a stacked GRU fed ``[x_k, g(gap_k)]`` at observations; (batch, L, H) -> (batch, L, H).

    At an observed step k the input of the first GRU layer is the observation ``x_k``
    concatenated with a transform ``g`` of the time since the previous observed step
    (since the sequence start for the first one). The top layer's hidden state goes
    through dropout and a linear map back to width H.

    Unobserved steps (``mask`` False, including padding) do not update any layer: the
    state of the last observation is carried through, and their output is the output of
    that state (the output of the zero initial state before the first observation). The
    implementation moves the observed steps of each sequence to the front, runs
    :class:`torch.nn.GRU` on them and gathers the results back, which is exactly the
    step-by-step definition (a GRU cell loop that skips unobserved steps) at the speed of
    the fused GRU.

    Parameters
    ----------
    d_model : int
        Input and output width H.
    n_layers : int, default 1
        Number of stacked GRU layers (``torch.nn.GRU(num_layers=n_layers)``).
    hidden_size : int, optional
        Width of each GRU layer; ``d_model`` if omitted.
    gap_transform : {"log1p", "identity"}, default "log1p"
        The gap feature ``g``. "log1p" feeds ``log(1 + gap)``: finite and of order one
        for every gap from 0 to 1e6 and beyond, while staying close to the raw gap for
        small gaps. "identity" feeds the raw gap as in Schirmer et al. (2022); the GRU's
        gates saturate on very long gaps (values and gradients stay finite).
    dropout : float, default 0.0
        Dropout between GRU layers and before the output projection.

    Examples
    --------
    >>> import torch
    >>> model = GRUDelta(d_model=4, n_layers=2)
    >>> x, dt = torch.randn(2, 7, 4), torch.rand(2, 7)
    >>> mask = torch.rand(2, 7) > 0.3
    >>> model(x, dt, mask).shape
    torch.Size([2, 7, 4])
    """

    _parameter_constraints = {
        "d_model": [positive_int()],
        "n_layers": [positive_int()],
        "hidden_size": [positive_int(), None],
        "gap_transform": [StrOptions(set(GAP_TRANSFORMS))],
        "dropout": [probability()],
    }

    def __init__(
        self,
        d_model: int,
        n_layers: int = 1,
        hidden_size: int | None = None,
        gap_transform: str = "log1p",
        dropout: float = 0.0,
    ):
        super().__init__()
        check_params(self._parameter_constraints, dict(d_model=d_model, n_layers=n_layers, hidden_size=hidden_size,
                                                       gap_transform=gap_transform, dropout=dropout), "GRUDelta")
        self.d_model, self.n_layers = int(d_model), int(n_layers)
        self.hidden_size = self.d_model if hidden_size is None else int(hidden_size)
        self.gap_transform = gap_transform
        p = float(dropout)
        self.gru = nn.GRU(
            self.d_model + 1,
            self.hidden_size,
            num_layers=self.n_layers,
            batch_first=True,
            dropout=p if self.n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(p)
        self.out_proj = nn.Linear(self.hidden_size, self.d_model)

    def gap_feature(self, gaps: torch.Tensor) -> torch.Tensor:
        """The gap input ``g(gap)`` for gaps (batch, L) >= 0; returns (batch, L, 1)."""
        gaps = gaps.clamp(min=0)
        feature = torch.log1p(gaps) if self.gap_transform == "log1p" else gaps
        return feature.unsqueeze(-1)

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Run the model.

        Parameters
        ----------
        x : Tensor (batch, L, H)
        dt : Tensor (batch, L), optional
            Gap before each step (ones if omitted).
        mask : bool Tensor (batch, L), optional
            False at unobserved steps and padding. None: every step is observed.

        Returns
        -------
        Tensor (batch, L, H)
        """
        x, dt, mask = _prepare_inputs(x, dt, mask, self.d_model)
        inputs = torch.cat([x, self.gap_feature(observed_gaps(dt, mask))], dim=-1)
        if mask is None:
            hidden, _ = self.gru(inputs)
            return self.out_proj(self.dropout(hidden))
        compact, n_observed = observed_first(inputs, mask)
        # Only the first max(n_observed) compact steps can be read back.
        used = max(int(n_observed.max()), 1)
        hidden_compact, _ = self.gru(compact[:, :used])
        y_compact = self.out_proj(self.dropout(hidden_compact))
        # Before the first observation: the output of the zero initial state (the projection's bias).
        return read_latest_observed(y_compact, mask, self.out_proj.bias)

    def initial_state(self, batch: int, device=None) -> dict:
        """The state of :meth:`advance` before a sequence's first step (zeros)."""
        dtype = self.out_proj.weight.dtype
        return {"h": torch.zeros(batch, self.n_layers, self.hidden_size, dtype=dtype, device=device),
                "elapsed": torch.zeros(batch, dtype=torch.float64, device=device)}

    def advance(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """Continue sequences from ``state`` (None: they start here) over new steps: ``(y, state)``.

        The state is every GRU layer's hidden state after the last observation ``h`` (batch,
        n_layers, hidden) and the time since that observation ``elapsed`` (batch,): pieces run
        one after another give the outputs of one run over the whole sequence.
        """
        # From the start, the outputs are forward's own (the same operations); the states come from a packed run.
        y = self.forward(x, dt, mask) if state is None else None
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        x, dt, mask = _prepare_inputs(x, dt, mask, self.d_model)
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        h_before = state["h"].to(x.dtype)
        inputs = torch.cat([x, self.gap_feature(observed_gaps(dt, mask, state["elapsed"]))], dim=-1)
        compact, n_observed = observed_first(inputs, mask)
        used = max(int(n_observed.max()), 1)
        h0 = h_before.transpose(0, 1).contiguous()
        if y is None:
            hidden_compact, _ = self.gru(compact[:, :used], h0)
            y_compact = self.out_proj(self.dropout(hidden_compact))
            # Before the chunk's first observation: the output of the carried state.
            y = read_latest_observed(y_compact, mask, self.out_proj(self.dropout(h_before[:, -1])).unsqueeze(1))
        # Each layer's hidden state at each sequence's own last observation: a packed run.
        lengths = n_observed[:, 0].clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(compact[:, :used], lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed, h0)
        seen = (n_observed[:, 0] > 0).view(-1, 1, 1)
        h = torch.where(seen, h_n.transpose(0, 1), h_before)
        return y, {"h": h, "elapsed": elapsed_after(dt, mask, state["elapsed"])}

    def extra_repr(self) -> str:
        return f"gap_transform={self.gap_transform!r}"


class _ODEFunc(nn.Module):
    """f_theta: an MLP with tanh, ``n_layers`` hidden layers of width ``units``."""

    def __init__(self, hidden_size: int, units: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = hidden_size
        for _ in range(n_layers):
            layers += [nn.Linear(width, units), nn.Tanh()]
            width = units
        layers.append(nn.Linear(width, hidden_size))
        self.net = nn.Sequential(*layers)
        # As Rubanova et al.'s code (init_network_weights): N(0, 0.1^2) weights, zero biases,
        # so the initial flow is slow and fixed-step solvers are well inside their stability region.
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.1)
                nn.init.zeros_(module.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ODERNN(nn.Module):
    """ODE-RNN (Rubanova et al., 2019): ODE flow between steps, GRU cell at observations.

    For each step k with gap ``dt_k``::

        h'_k = ODESolve(h' = f_theta(h), h_{k-1}, over a time min(dt_k, max_gap))
        h_k  = GRUCell(x_k, h'_k)   if step k is observed, else h'_k
        y_k  = Linear(dropout(h_k))

    starting from ``h = 0`` before the first step (so the first gap is integrated too).

    **Per-sequence gaps in one solve.** Every sequence of the batch has its own gap, so the
    ODE is solved in normalised time ``s`` in [0, 1] with the derivative scaled by each
    sequence's own gap, ``dh/ds = tau_b f_theta(h)`` with ``tau_b = min(dt_b, max_gap)``,
    which equals ``h' = f_theta(h)`` over ``[0, tau_b]`` for each sequence and solves them
    all at once. The fixed-grid solver takes ``n_steps`` equal steps in ``s`` (so steps
    of ``tau_b / n_steps`` in real time): the result for a sequence never depends on the
    other sequences (an adaptive solver, or a step size shared in real time, would couple
    them). A zero gap (padding) leaves the state exactly unchanged.

    **Long gaps.** The integration horizon is capped at ``max_gap``: a gap longer than
    that is integrated as ``max_gap`` (the state is taken to have evolved as far as the
    model resolves). This keeps the real-time step ``max_gap / n_steps`` bounded, so values
    and gradients stay finite for any gap (tested from 1e-6 to 1e6). Below the cap the
    flow is the exact ODE flow up to the solver's discretisation error, so splitting a
    gap with an unobserved step changes observed outputs only by that error; above it
    the split is not equivalent. Put ``dt`` in a unit where typical gaps are of order one.

    Parameters
    ----------
    d_model : int
        Input and output width H.
    n_layers : int, default 1
        Number of hidden (tanh) layers of the ODE function f_theta, as the ``n_layers`` of
        Rubanova et al.'s ODE function. The recurrence itself is one ODE-RNN cell, as in
        the paper (stacking ODE-RNNs would multiply the number of sequential solves).
    hidden_size : int, optional
        Size of the hidden state h; ``d_model`` if omitted.
    ode_units : int, optional
        Width of f_theta's hidden layers; ``hidden_size`` if omitted.
    method : {"rk4", "midpoint", "euler"}, default "rk4"
        Fixed-grid ``torchdiffeq`` solver ("rk4" is torchdiffeq's 3/8-rule RK4).
    n_steps : int, default 2
        Solver steps per gap (in normalised time). Cost is linear in it.
    max_gap : float, default 10.0
        Cap on the integration horizon of one gap, in the unit of ``dt``.
    dropout : float, default 0.0
        Dropout before the output projection.

    Examples
    --------
    >>> import torch
    >>> model = ODERNN(d_model=4, n_layers=1, hidden_size=8)
    >>> x, dt = torch.randn(2, 7, 4), torch.rand(2, 7)
    >>> mask = torch.rand(2, 7) > 0.3
    >>> model(x, dt, mask).shape
    torch.Size([2, 7, 4])
    """

    _parameter_constraints = {
        "d_model": [positive_int()],
        "n_layers": [positive_int()],
        "hidden_size": [positive_int(), None],
        "ode_units": [positive_int(), None],
        "method": [StrOptions(set(ODE_METHODS))],
        "n_steps": [positive_int()],
        "max_gap": [positive_real()],
        "dropout": [probability()],
    }

    def __init__(
        self,
        d_model: int,
        n_layers: int = 1,
        hidden_size: int | None = None,
        ode_units: int | None = None,
        method: str = "rk4",
        n_steps: int = 2,
        max_gap: float = 10.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_params(self._parameter_constraints, dict(
            d_model=d_model, n_layers=n_layers, hidden_size=hidden_size, ode_units=ode_units, method=method,
            n_steps=n_steps, max_gap=max_gap, dropout=dropout), "ODERNN")
        self.d_model, self.n_layers = int(d_model), int(n_layers)
        self.hidden_size = self.d_model if hidden_size is None else int(hidden_size)
        units = self.hidden_size if ode_units is None else int(ode_units)
        self.method = method
        self.n_steps = int(n_steps)
        self.max_gap = float(max_gap)
        self.ode_func = _ODEFunc(self.hidden_size, units, self.n_layers)
        self.cell = nn.GRUCell(self.d_model, self.hidden_size)
        self.dropout = nn.Dropout(float(dropout))
        self.out_proj = nn.Linear(self.hidden_size, self.d_model)

    def evolve(self, h: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """Flow states h (batch, hidden) by ``h' = f_theta(h)`` over per-row gaps (batch,).

        Gaps are clamped to [0, max_gap] and integrated in normalised time (see the class
        docstring).
        """
        tau = gap.to(h.dtype).clamp(min=0.0, max=self.max_gap).unsqueeze(-1)
        grid = torch.linspace(0.0, 1.0, self.n_steps + 1, dtype=h.dtype, device=h.device)

        def scaled(s, state):
            return tau * self.ode_func(state)

        return odeint(scaled, h, grid, method=self.method)[-1]

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Run the model.

        Parameters
        ----------
        x : Tensor (batch, L, H)
        dt : Tensor (batch, L), optional
            Gap before each step (ones if omitted); padding should have gap 0 (any
            value is fine for the outputs before it).
        mask : bool Tensor (batch, L), optional
            False at unobserved steps and padding. None: every step is observed.

        Returns
        -------
        Tensor (batch, L, H)
        """
        return self.advance(x, dt, mask)[0]

    def initial_state(self, batch: int, device=None) -> dict:
        """The state of :meth:`advance` before a sequence's first step (zeros)."""
        return {"h": torch.zeros(batch, self.hidden_size, dtype=self.out_proj.weight.dtype, device=device)}

    def advance(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """Continue sequences from ``state`` (the hidden state ``h``, (batch, hidden); None: they
        start here) over new steps: ``(y, state after them)``. Padding (gap 0) leaves it unchanged."""
        x, dt, mask = _prepare_inputs(x, dt, mask, self.d_model)
        batch, length, _ = x.shape
        h = x.new_zeros(batch, self.hidden_size) if state is None else state["h"].to(x.dtype)
        states = []
        for k in range(length):
            h = self.evolve(h, dt[:, k])
            updated = self.cell(x[:, k], h)
            h = updated if mask is None else torch.where(mask[:, k : k + 1], updated, h)
            states.append(h)
        if not states:
            return x.new_zeros(batch, 0, self.d_model), {"h": h}
        hidden = torch.stack(states, dim=1)
        return self.out_proj(self.dropout(hidden)), {"h": h}

    def extra_repr(self) -> str:
        return f"method={self.method!r}, n_steps={self.n_steps}, max_gap={self.max_gap}"

