"""What a forecasting fit fixes about its inputs (:class:`ForecastLayout`) and the rules that choose it.

The layout is JSON-able and saved with the model: which value columns are targets and which are
known ahead, the time unit, the horizon, the calendar periods whose phase is an input, the
fallback scales, the covariates' scales and encodings. The automatic rules (:func:`auto_horizon`,
:func:`calendar_periods`, :func:`training_window`, :func:`auto_batch_size`) live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smr_ts.data.panel import SeriesPanel
from smr_ts.data.times import time_difference
from smr_ts.forecasting.covariates import future_scales, n_future_features, static_width
from smr_ts.forecasting.features import fallback_scales

__all__ = ["AHEAD_PERIODS", "CURRENT_LAG", "ForecastLayout", "auto_batch_size", "auto_horizon", "calendar_periods", "fit_layout",
           "panel_now", "trained_horizon", "training_window"]


AHEAD_PERIODS = (2.0, 4.0, 8.0, 16.0)  # in time units: a multi-scale basis for how far ahead a query is
_BATCH_ROWS = 8192  # rows per training batch by default (see auto_batch_size)
_NS_PER_DAY = 86_400e9
_CANDIDATE_PERIODS = {"day": _NS_PER_DAY, "week": 7 * _NS_PER_DAY, "year": 365.2425 * _NS_PER_DAY}


def calendar_periods(kind: str, median_gap: float, median_span: float) -> list[float]:
    """Calendar periods (raw ns) whose phase becomes an input: datetimes only, and a period only
    when the data resolve it (median gap at most a quarter of it) and the median series spans
    at least two of it."""
    if kind == "numeric":
        return []
    return [p for p in _CANDIDATE_PERIODS.values() if median_gap <= p / 4 and median_span >= 2 * p]


@dataclass(frozen=True)
class ForecastLayout:
    """What the fitted model fixed about its inputs (JSON-able: saved with the model)."""

    target_index: list  # positions of the targets among the value columns
    time_unit: float  # raw units per gap unit
    horizon: float  # raw units: the longest time ahead trained
    periods: list  # calendar periods (raw ns), see calendar_periods
    fallback: list  # per value column, the scale of a series without a usable one
    gap: float  # raw units: the median gap of the training series
    # Covariates (smr_ts.forecasting.covariates): future-known value columns and their scales; static encodings.
    future_index: list = field(default_factory=list)  # positions of the future-known columns among the values
    future_center: list = field(default_factory=list)
    future_spread: list = field(default_factory=list)
    future_rms: list = field(default_factory=list)
    static_spec: list = field(default_factory=list)  # see covariates.fit_static_spec
    # with future-known columns on several series: the first target's mean and std over the training rows
    target_moments: list = field(default_factory=list)
    # future-known columns' changes from the seasons the target's lags read (False: saved before them)
    future_changes: bool = False

    @property
    def n_targets(self) -> int:
        return len(self.target_index)

    def n_inputs(self, n_values: int) -> int:
        return 3 * n_values + 2 * len(self.periods) + 1

    @property
    def n_covariate_features(self) -> int:
        """The query features covariates add, last among them (:mod:`smr_ts.forecasting.covariates`): the head's
        linear path reads them."""
        return (n_future_features(len(self.future_index), len(self.periods) if self.future_changes else 0)
                + static_width(self.static_spec) + 3 * bool(self.target_moments))

    @property
    def n_query_features(self) -> int:
        return (2 * len(self.periods) + 2 + 2 * len(AHEAD_PERIODS) + (2 + 2 * len(self.periods)) * self.n_targets
                + self.n_covariate_features)


def _median_span(panel: SeriesPanel) -> float:
    first, last = panel.time[:, 0], panel.last_times
    return float(np.median((last - first).astype(np.float64)))


def auto_horizon(panel: SeriesPanel, median_gap: float) -> float:
    """The default longest time ahead trained (raw units): a quarter of the median series span,
    at least 8 median gaps."""
    return max(0.25 * _median_span(panel), 8.0 * median_gap)


CURRENT_LAG = 0.25  # a series that ended within this many horizons of the panel's last time counts as current


def panel_now(panel: SeriesPanel):
    """The panel's "now": the last time of any of its series (raw)."""
    return panel.last_times.max()


def trained_horizon(panel: SeriesPanel, horizon: float) -> float:
    """The longest time ahead of a series' last row that training covers, for a user's ``horizon``
    counted from the panel's "now" (:func:`panel_now`): the horizon, plus how long before now the
    series that ended within ``CURRENT_LAG`` horizons of now ended (so their forecasts up to now +
    horizon are trained for). Training for more than the horizon asked for costs accuracy at it (the
    design log has the measurements), so a series that ended longer before now does not stretch
    training for every series; its forecasts past its own last row + this are warned about."""
    last = panel.last_times
    lag = time_difference(np.full(len(last), last.max()), last)
    recent = lag[lag <= CURRENT_LAG * horizon]
    return float(horizon + (recent.max() if len(recent) else 0.0))


def fit_layout(panel: SeriesPanel, target_index: list, time_unit: float, horizon: float, kind: str,
               median_gap: float, future_index=(), static_spec=()) -> ForecastLayout:
    """The layout of a forecasting model fitted on ``panel``: its calendar periods, fallback scales, and
    the scales of its future-known columns (positions ``future_index`` among the values)."""
    fi = list(future_index)
    center, spread, rms = future_scales(panel.values[panel.valid][:, fi], panel.value_observed[panel.valid][:, fi])
    return ForecastLayout(target_index=list(target_index), time_unit=float(time_unit), horizon=float(horizon),
                          periods=calendar_periods(kind, median_gap, _median_span(panel)),
                          fallback=fallback_scales(panel.values, panel.value_observed).tolist(), gap=float(median_gap),
                          future_index=fi, future_center=center, future_spread=spread, future_rms=rms,
                          static_spec=[list(s) for s in static_spec],
                          target_moments=_moments(panel, target_index[0]) if fi and len(panel.ids) > 1 else [],
                          future_changes=bool(fi))


def _moments(panel: SeriesPanel, column: int) -> list:
    """The mean and std (1 where there is none) of a value column over the panel's observations."""
    x = panel.values[..., column][panel.valid & panel.value_observed[..., column]].astype(np.float64)
    return [float(x.mean()), float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0]


def training_window(layout: ForecastLayout, median_gap: float) -> int:
    """Rows per training window: three horizons' worth of rows plus some context, in [64, 1024]."""
    rows = layout.horizon / max(median_gap, 1e-300)
    return int(np.clip(3 * rows + 32, 64, 1024))


def auto_batch_size(window: int) -> int:
    """Windows per batch by default: about ``_BATCH_ROWS`` rows, between 8 and 32 windows. Long
    windows (a few long series) then take more, smaller optimisation steps per epoch."""
    return int(np.clip(_BATCH_ROWS // window, 8, 32))
