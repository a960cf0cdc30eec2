"""smr_ts: forecasting and regression on irregularly sampled time series.

Variable-step state-space layers (S5, S6) that consume the real gaps between
observations, optionally corrected by State Memory Replay (SMR), behind a
scikit-learn estimator that takes long pandas frames.
"""

from smr_ts import _logging  # noqa: F401  (the "smr_ts" logger and its NullHandler)
from smr_ts._version import __version__
from smr_ts.forecaster import SMRForecaster

__all__ = ["SMRForecaster", "__version__"]
