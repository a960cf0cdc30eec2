"""The one registry of sequence backbones the estimator can train.

Each backbone declares its name, the module that implements it, whether it takes SMR, and which
estimator parameters it reads (and under what keyword its module takes them). The estimator,
the recipes and the benchmarks look backbones up here and nowhere else.

Adding a backbone: write its module (a layer with the ``layer(d_model, **kwargs)(u, dt, mask)``
interface of :class:`~smr_ts.ssm.S5`, stacked in residual blocks; or a whole recurrent model
with the ``model(d_model, n_layers, dropout=...)(x, dt, mask)`` interface of
:class:`~smr_ts.baselines.GRUDelta`), then add one :class:`Backbone` line to :data:`BACKBONES`.
Parameters its module creates that should train at ``ssm_lr`` are tagged where they are
created (:func:`smr_ts.ssm.params.tag_ssm_parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from smr_ts.baselines import GRUDelta, ODERNN
from smr_ts.ssm.block import SSMStack
from smr_ts.ssm.s5 import S5
from smr_ts.ssm.s6 import S6

__all__ = ["BACKBONES", "Backbone", "backbone_names", "resolved_smr", "smr_backbones"]

# Estimator parameters every state-space layer reads, and the layer keyword for each.
_SSM_PARAMS = {"state_size": "state_size", "smr": "smr", "smr_kernel": "smr_kernel", "smr_use_gaps": "smr_use_gaps",
               "step_min": "dt_min", "step_max": "dt_max"}


@dataclass(frozen=True)
class Backbone:
    """A sequence backbone and what it needs from the estimator.

    Attributes
    ----------
    name : str
        The value of ``SMRForecaster(backbone=...)``.
    module : type
        A state-space layer (``stacked``) or a whole recurrent model.
    stacked : bool
        True: ``n_layers`` residual blocks of ``module`` (:class:`~smr_ts.ssm.block.SSMStack`).
        False: ``module(d_model, n_layers, dropout=dropout)`` is the whole backbone.
    glu : bool
        Stacked only: S5's half-GLU after the layer (False: identity, for layers that gate inside).
    takes_smr : bool
        Whether ``smr=True`` is meaningful.
    alias : str
        The default ``alias``: the name of the model's forecast columns (``docs/forecasting.md``).
    params : dict
        Estimator parameter -> the module's keyword for it.
    """

    name: str
    module: type
    stacked: bool = True
    glu: bool = False
    takes_smr: bool = False
    alias: str = ""
    params: dict = field(default_factory=dict)

    def build(self, d_model: int, n_layers: int, dropout: float, settings: dict) -> nn.Module:
        """The backbone module for the estimator ``settings`` (a dict of its parameters)."""
        kwargs = {kw: settings[p] for p, kw in self.params.items()}
        if "smr" in kwargs:
            kwargs["smr"] = bool(kwargs["smr"])
        if self.stacked:
            return SSMStack(d_model, n_layers, self.module, glu=self.glu, dropout=dropout, **kwargs)
        return self.module(d_model, n_layers, dropout=dropout, **kwargs)


BACKBONES = {b.name: b for b in (
    Backbone("s5", S5, glu=True, takes_smr=True, alias="S5", params={**_SSM_PARAMS, "blocks": "blocks"}),
    Backbone("s6", S6, takes_smr=True, alias="S6", params=_SSM_PARAMS),
    Backbone("gru_dt", GRUDelta, stacked=False, alias="GRU-dt"),
    Backbone("ode_rnn", ODERNN, stacked=False, alias="ODE-RNN"),
)}


def backbone_names() -> list[str]:
    """Names accepted by ``SMRForecaster(backbone=...)``, in registry order."""
    return list(BACKBONES)


def smr_backbones() -> list[str]:
    """Backbones that take ``smr=True``."""
    return [name for name, b in BACKBONES.items() if b.takes_smr]


def resolved_smr(smr, backbone: str, forecasting: bool = True) -> bool:
    """``smr`` as a fit uses it: ``"auto"`` is True when forecasting with a backbone that takes SMR (S5, S6:
    chosen on the real-data suite) and False otherwise (GRU-dt, ODE-RNN; sequence regression)."""
    if smr == "auto":
        return forecasting and BACKBONES[backbone].takes_smr
    return bool(smr)
