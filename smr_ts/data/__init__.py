"""The pandas layer both uses share: long frames to padded per-series arrays, and back.

- :mod:`~smr_ts.data.frames`: long pandas frames read and checked: ids, times, value columns, targets.
- :mod:`~smr_ts.data.times`: time axes (raw times, their kinds and differences) and durations.
- :mod:`~smr_ts.data.panel`: padded per-series arrays (:class:`SeriesPanel`) and their operations.

The torch layers never see a DataFrame; the estimator glues this package to the network.
"""

from smr_ts.data.frames import split_frame
from smr_ts.data.panel import SeriesPanel, to_panel
from smr_ts.data.times import TimeInfo

__all__ = ["SeriesPanel", "TimeInfo", "split_frame", "to_panel"]
