"""Variable-step state-space layers: the math of the package.

- :mod:`~smr_ts.ssm.linear_scan`: the diagonal linear recurrence (reference and fast path).
- :mod:`~smr_ts.ssm.selective_scan`: S6's selective scan (reference and chunked fast path).
- :mod:`~smr_ts.ssm.discretize`: ZOH and bilinear discretisation over observed gaps.
- :mod:`~smr_ts.ssm.init`: HiPPO-N and Mamba initialisation.
- :mod:`~smr_ts.ssm.observed`: gaps and causal convolution over observed steps only.
- :mod:`~smr_ts.ssm.smr`: the State Memory Replay gate.
- :mod:`~smr_ts.ssm.s5`, :mod:`~smr_ts.ssm.s6`: the layers.
- :mod:`~smr_ts.ssm.block`: residual blocks and the stack.
"""

from smr_ts.ssm.block import SSMBlock, SSMStack
from smr_ts.ssm.observed import observed_causal_conv, observed_gaps
from smr_ts.ssm.s5 import S5
from smr_ts.ssm.s6 import S6
from smr_ts.ssm.linear_scan import scan, scan_reference
from smr_ts.ssm.smr import SMRGate

__all__ = [
    "S5",
    "S6",
    "SMRGate",
    "SSMBlock",
    "SSMStack",
    "observed_causal_conv",
    "observed_gaps",
    "scan",
    "scan_reference",
]
