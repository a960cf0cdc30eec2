"""The SSM parameter group: parameters that train at the lower, weight-decay-free rate.

A layer tags its own parameters where it creates them (as Mamba tags ``A_log._no_weight_decay``),
so the optimiser set-up needs no list of attribute names.
"""

from __future__ import annotations

from torch import nn

__all__ = ["is_ssm_parameter", "parameter_groups", "tag_ssm_parameters"]

_TAG = "_ssm_group"


def tag_ssm_parameters(*params: nn.Parameter) -> None:
    """Mark parameters for the SSM group (lower learning rate, no weight decay)."""
    for p in params:
        setattr(p, _TAG, True)


def is_ssm_parameter(p: nn.Parameter) -> bool:
    return getattr(p, _TAG, False)


def parameter_groups(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(other parameters, SSM parameters) of a network, for the optimiser's two groups.

    The SSM group holds the parameters the layers tagged (S5 App. F.3: Lambda, B, the step and
    the backbone's norms; Mamba: A_log and D); it trains at the lower rate, without weight decay.
    """
    ssm, other = [], []
    for param in module.parameters():
        (ssm if is_ssm_parameter(param) else other).append(param)
    return other, ssm
