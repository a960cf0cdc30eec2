"""Residual blocks around the state-space layers, and the stack the estimator trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smr_ts.ssm.params import tag_ssm_parameters

__all__ = ["SSMBlock", "SSMStack"]


class SSMBlock(nn.Module):
    """State-space layer, activation, dropout, residual connection and LayerNorm (post-norm).

    ``out = norm(u + dropout(act(ssm(u))))``, as in S5's pendulum recipe. ``act`` is S5's
    half-GLU, ``g = GELU(y); g * sigmoid(W g)``, when ``glu`` is set, and the identity
    otherwise (Mamba gates inside the layer). Everything but the SSM acts on each step alone
    (LayerNorm, not BatchNorm), so a sequence's outputs never depend on the other sequences
    in its batch.

    Parameters
    ----------
    d_model : int
    layer : type
        The state-space layer class (:class:`~smr_ts.ssm.S5`, :class:`~smr_ts.ssm.S6`), called
        as ``layer(d_model, **layer_kwargs)``.
    glu : bool, default False
    dropout : float, default 0.0
    **layer_kwargs
    """

    def __init__(self, d_model: int, layer: type, glu: bool = False, dropout: float = 0.0, **layer_kwargs):
        super().__init__()
        self.ssm = layer(d_model, **layer_kwargs)
        self.norm = nn.LayerNorm(d_model)
        # The backbone's norms train with the SSM's parameters (S5 App. F.3).
        tag_ssm_parameters(self.norm.weight, self.norm.bias)
        self.glu = nn.Linear(d_model, d_model) if glu else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        return self._around(u, self.ssm(u, dt, mask))

    def _around(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.glu is not None:
            y = F.gelu(y)
            y = y * torch.sigmoid(self.glu(y))
        return self.norm(u + self.dropout(y))

    def initial_state(self, batch: int, device=None) -> dict:
        return self.ssm.initial_state(batch, device)

    def advance(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """:meth:`forward` continued from the layer's ``state`` (see ``S5.advance``): ``(out, state)``."""
        y, state = self.ssm.advance(u, dt, mask, state)
        return self._around(u, y), state


class SSMStack(nn.Module):
    """``n_layers`` :class:`SSMBlock` s of the same width; (batch, L, H) -> (batch, L, H).

    Examples
    --------
    >>> from smr_ts.ssm import S5
    >>> stack = SSMStack(d_model=8, n_layers=2, layer=S5, glu=True, state_size=8, smr=True)
    >>> stack(torch.randn(3, 5, 8), dt=torch.rand(3, 5)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, n_layers: int, layer: type, **block_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(SSMBlock(d_model, layer, **block_kwargs) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        for block in self.blocks:
            x = block(x, dt, mask)
        return x

    # -- streaming: one flat dict of tensors, "<block>.<name>", each with the batch first ---------
    def initial_state(self, batch: int, device=None) -> dict:
        """Zero states of every block (the start of a sequence), as :meth:`advance` takes them."""
        return {f"{i}.{k}": v for i, block in enumerate(self.blocks) for k, v in block.initial_state(batch, device).items()}

    def advance(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                state: dict | None = None):
        """Continue sequences from ``state`` (None: they start here) over new steps: ``(y, state)``.

        The state is a flat dict of tensors whose first dimension is the batch, so that states of
        many series can be stacked, indexed and saved like any tensor.
        """
        new_state = {}
        for i, block in enumerate(self.blocks):
            prefix = f"{i}."
            own = None if state is None else {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            x, after = block.advance(x, dt, mask, own)
            new_state.update({prefix + k: v for k, v in after.items()})
        return x, new_state
