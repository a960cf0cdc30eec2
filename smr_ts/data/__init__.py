"""The data pipeline: frames to panels to windows to tensors, and back.

- :mod:`~smr_ts.data.frames`: long pandas frames to padded per-series arrays (:class:`SeriesPanel`).
- :mod:`~smr_ts.data.scaling`: per-column standardisation.
- :mod:`~smr_ts.data.windows`: panels to tensors, training windows and batches.
- :mod:`~smr_ts.data.queries`: forecast query rows appended to the history.

The torch layers never see a DataFrame; the estimator glues this package to the network.
"""

from smr_ts.data.frames import SeriesPanel, split_frame, to_panel
from smr_ts.data.times import TimeInfo

__all__ = ["SeriesPanel", "TimeInfo", "split_frame", "to_panel"]
