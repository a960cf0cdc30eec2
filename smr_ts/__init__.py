"""smr_ts: forecasting and regression on irregularly sampled time series.

Variable-step state-space layers (S5, S6) that consume the real gaps between
observations, optionally corrected by State Memory Replay (SMR).
"""

from smr_ts._version import __version__

__all__ = ["__version__"]
