"""Residual blocks around the state-space layers, and the stack the estimator trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smr_ts.ssm.s5 import S5
from smr_ts.ssm.s6 import S6

__all__ = ["BACKBONES", "SSMBlock", "SSMStack"]

BACKBONES = {"s5": S5, "s6": S6}
ACTIVATIONS = ("half_glu", "gelu", "identity")


class SSMBlock(nn.Module):
    """Norm, state-space layer, activation, dropout and a residual connection.

    ``out = norm(u + dropout(act(ssm(u))))`` (post-norm, as in S5's pendulum recipe) or
    ``out = u + dropout(act(ssm(norm(u))))`` (pre-norm). Everything but the SSM acts on
    each step alone (LayerNorm, not BatchNorm), so a sequence's outputs never depend on
    the other sequences in its batch.

    Parameters
    ----------
    d_model : int
    backbone : {"s5", "s6"}, default "s5"
    dropout : float, default 0.0
    prenorm : bool, default False
    activation : {"half_glu", "gelu", "identity"} or None
        "half_glu" is S5's GLU-style activation: g = GELU(y); g * sigmoid(W g).
        None picks "half_glu" for S5 and "identity" for S6 (Mamba gates internally).
    **layer_kwargs
        Passed to :class:`~smr_ts.ssm.s5.S5` or :class:`~smr_ts.ssm.s6.S6`.
    """

    def __init__(
        self,
        d_model: int,
        backbone: str = "s5",
        dropout: float = 0.0,
        prenorm: bool = False,
        activation: str | None = None,
        **layer_kwargs,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
        if activation is None:
            activation = "half_glu" if backbone == "s5" else "identity"
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.prenorm = prenorm
        self.activation = activation
        self.ssm = BACKBONES[backbone](d_model, **layer_kwargs)
        self.norm = nn.LayerNorm(d_model)
        self.glu = nn.Linear(d_model, d_model) if activation == "half_glu" else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        y = self.ssm(self.norm(u) if self.prenorm else u, dt, mask)
        if self.activation == "half_glu":
            y = F.gelu(y)
            y = y * torch.sigmoid(self.glu(y))
        elif self.activation == "gelu":
            y = F.gelu(y)
        out = u + self.dropout(y)
        return out if self.prenorm else self.norm(out)


class SSMStack(nn.Module):
    """``n_layers`` :class:`SSMBlock` s of the same width; (batch, L, H) -> (batch, L, H).

    Examples
    --------
    >>> stack = SSMStack(d_model=8, n_layers=2, backbone="s5", state_size=8, smr=True)
    >>> stack(torch.randn(3, 5, 8), dt=torch.rand(3, 5)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, n_layers: int, backbone: str = "s5", **block_kwargs):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.blocks = nn.ModuleList(SSMBlock(d_model, backbone, **block_kwargs) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, dt: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        for block in self.blocks:
            x = block(x, dt, mask)
        return x
