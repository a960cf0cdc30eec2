"""What a forecasting fit fixes about its inputs (:class:`ForecastLayout`) and the rules that choose it.

The layout is JSON-able and saved with the model: which value columns are targets and which are
known ahead, the time unit, the horizon, the periods whose phase is an input (the calendar's and one
the data show), the fallback scales, the covariates' scales and encodings. The automatic rules
(:func:`auto_horizon`, :func:`calendar_periods`, :func:`detected_period`, :func:`training_window`,
:func:`auto_batch_size`) live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smr_ts.data.panel import SeriesPanel
from smr_ts.data.times import time_difference
from smr_ts.forecasting.covariates import future_scales, n_future_features, static_width
from smr_ts.forecasting.features import fallback_scales

__all__ = ["AHEAD_PERIODS", "CURRENT_LAG", "ForecastLayout", "MIN_GAPS_AHEAD", "auto_batch_size", "auto_horizon",
           "calendar_periods", "detected_name", "detected_period", "fit_layout", "panel_now", "trained_horizon",
           "training_window"]


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


# The detected period (detected_period): the rule's constants, none tuned per data set.
_MIN_ROWS = 24  # a series' observations needed for its periodogram to count
_MAX_CYCLES = 500  # the shortest candidate period is at least the median span over this (bounds the cost)
_OVERSAMPLE = 4  # frequencies per 1 / median span
_FALSE_ALARM = 0.01  # the chance that a series without a period shows one, for the peak's threshold
_MIN_SHARE = 0.1  # the least share of a series' (detrended) variance the period's sinusoid must explain
_HARMONICS = 4  # a detected period within _SAME of a known period / 1 .. this is that period's harmonic
_SAME = 0.05
_MAX_SERIES = 256  # series whose periodograms are pooled at most (evenly spaced): bounds the cost on big panels


def _binned(t: np.ndarray, y: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``t`` and ``y`` in bins of ``width`` (a coarse, cheap periodogram input)."""
    _, bin_of, count = np.unique(np.floor(t / width), return_inverse=True, return_counts=True)
    return np.bincount(bin_of, t) / count, np.bincount(bin_of, y) / count


def _lomb_scargle(t: np.ndarray, y: np.ndarray, freqs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The Lomb-Scargle periodogram of centred ``y`` at times ``t``, as the share of ``y``'s sum of squares
    that a sinusoid at each frequency explains (in [0, 1])."""
    out = np.empty(len(freqs))
    total = float(y @ y)
    for a in range(0, len(freqs), chunk):
        w = 2 * np.pi * freqs[a:a + chunk, None]
        tau = np.arctan2(np.sin(2 * w * t).sum(1), np.cos(2 * w * t).sum(1)) / (2 * w[:, 0])
        arg = w * (t - tau[:, None])
        c, s = np.cos(arg), np.sin(arg)
        out[a:a + chunk] = ((c @ y) ** 2 / (c * c).sum(1) + (s @ y) ** 2 / (s * s).sum(1)) / total
    return out


def detected_period(panel: SeriesPanel, column: int, median_gap: float, median_span: float,
                    known=(), until: np.ndarray | None = None) -> float | None:
    """A period (raw units) that the data show and no calendar period holds, or None.

    The rule, by time rather than by steps, on datetimes and numeric times alike, reading the values
    of the panel's rows up to ``until`` (per series, time since its first row; None: every row; a fit
    passes where each series' validating last part begins, or -inf for a held-out series, so that
    what validates is not read):

    - candidate periods from ``max(4 median gaps, median span / 500)`` to a third of the median
      span, on a grid of frequencies ``1 / (4 median span)`` apart;
    - each series with at least 24 observations of value column ``column``: its observations less
      their least-squares line in time, averaged in bins of a quarter of the shortest candidate
      period, and their Lomb-Scargle periodogram, the share of their variance a sinusoid at each
      frequency explains; a series counts at the periods it spans at least twice;
    - the periodogram pooled over series (at most 256, evenly spaced in the panel's order; mean
      weighted by observations), and its background: a
      quadratic in log frequency fitted to its log (the smooth spectrum of noise, random walks and
      trends);
    - the frequency of the pooled periodogram's highest ratio to that background is a period when it
      is not at either end of the range (there the background's slope, not a peak, is highest), the
      ratio is at least ``log(M / 0.01)`` for M = the frequencies / 4 (about the independent ones:
      a 1 % false alarm for a periodogram that follows its background with exponential scatter),
      and its sinusoid explains at least 10 % of the variance;
    - a period within 5 % of a ``known`` period (the calendar's) or of its half, third or quarter
      is that period's season or a harmonic of it, and gives None.
    """
    lo, hi = max(4 * median_gap, median_span / _MAX_CYCLES), median_span / 3
    if not (hi > lo > 0):
        return None
    step = 1 / (_OVERSAMPLE * median_span)
    freqs = np.arange(1 / hi, 1 / lo + step / 2, step)
    share, weight = np.zeros(len(freqs)), np.zeros(len(freqs))
    for s in np.unique(np.linspace(0, len(panel.ids) - 1, min(len(panel.ids), _MAX_SERIES)).round().astype(int)):
        ok = panel.valid[s] & panel.value_observed[s, :, column]
        if until is not None:
            ok &= time_difference(panel.time[s], panel.time[s, 0]) <= until[s]
        if ok.sum() < _MIN_ROWS:
            continue
        t = time_difference(panel.time[s][ok], panel.time[s][ok][0]).astype(np.float64)
        t, values = _binned(t, panel.values[s, ok, column].astype(np.float64), lo / 4)
        if len(t) < _MIN_ROWS or not t[-1] > 0:
            continue
        y = values - np.polyval(np.polyfit(t / t[-1], values, 1), t / t[-1])
        if np.abs(y).max() <= 1e-9 * np.abs(values).max():  # a line: nothing but rounding left
            continue
        counts = freqs * t[-1] >= 2
        share += np.where(counts, len(t) * _lomb_scargle(t, y, freqs), 0.0)
        weight += np.where(counts, len(t), 0.0)
    keep = weight > 0
    if keep.sum() < 8:
        return None
    f, power = freqs[keep], share[keep] / weight[keep]
    log_f = np.log(f)
    background = np.exp(np.polyval(np.polyfit(log_f, np.log(np.maximum(power, 1e-300)), 2), log_f) + np.euler_gamma)
    ratio = power / background
    i = int(np.argmax(ratio))
    if i in (0, len(f) - 1):  # the range's end: the background's slope, not a peak
        return None
    if ratio[i] < np.log(max(len(f) / _OVERSAMPLE, 1.0) / _FALSE_ALARM) or power[i] < _MIN_SHARE:
        return None
    period = float(1 / f[i])
    if any(abs(period * k / p - 1) <= _SAME for p in known for k in range(1, _HARMONICS + 1)):
        return None
    return period


def detected_name(period: float, kind: str) -> str:
    """How messages name a detected period: ``"detected, 11.1 years"`` (datetimes), ``"detected, 11.3"``."""
    if kind == "numeric":
        return f"detected, {period:.4g}"
    days = period / _NS_PER_DAY
    return ("detected, " + (f"{days / 365.2425:.3g} years" if days >= 365.2425 else f"{days:.3g} days" if days >= 1
                            else f"{24 * days:.3g} hours"))


@dataclass(frozen=True)
class ForecastLayout:
    """What the fitted model fixed about its inputs (JSON-able: saved with the model)."""

    target_index: list  # positions of the targets among the value columns
    time_unit: float  # raw units per gap unit
    horizon: float  # raw units: the longest time ahead trained
    periods: list  # periods (raw units) whose phase is an input: calendar_periods, then detected_period's
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
    # one name per period ("day", "week", "year", "detected, ..."); empty: saved before detected periods (calendar only)
    period_names: list = field(default_factory=list)
    # the seasonal profile's change per period and target among the query features (False: saved before it)
    profile_changes: bool = False
    # the head's output scaled by a learned power of the recent scale over the scale, whose log is the first
    # query feature per target (smr_ts.forecasting.features; False: saved before it)
    scale_gate: bool = False

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
        per_period = 3 if self.profile_changes else 2  # seasonal lags and their share found, the profile's change
        return (self.n_targets * self.scale_gate + 2 * len(self.periods) + 2 + 2 * len(AHEAD_PERIODS)
                + (2 + per_period * len(self.periods)) * self.n_targets + self.n_covariate_features)


def _median_span(panel: SeriesPanel) -> float:
    first, last = panel.time[:, 0], panel.last_times
    return float(np.median((last - first).astype(np.float64)))


# Training reaches at least this many median gaps ahead: the default horizon's floor, and how far
# training draws past a shorter told horizon (pairs one or two observations apart show too little of a trend).
MIN_GAPS_AHEAD = 8


def auto_horizon(panel: SeriesPanel, median_gap: float) -> float:
    """The default longest time ahead trained (raw units): a quarter of the median series span,
    at least ``MIN_GAPS_AHEAD`` median gaps."""
    return max(0.25 * _median_span(panel), MIN_GAPS_AHEAD * median_gap)


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
               median_gap: float, future_index=(), static_spec=(), detect_until: np.ndarray | None = None
               ) -> ForecastLayout:
    """The layout of a forecasting model fitted on ``panel``: its periods (the calendar's, then the one
    :func:`detected_period` finds in the first target's rows up to ``detect_until``, if any), fallback
    scales, and the scales of its future-known columns (positions ``future_index`` among the values)."""
    fi = list(future_index)
    span = _median_span(panel)
    periods = calendar_periods(kind, median_gap, span)
    names = [min(_CANDIDATE_PERIODS, key=lambda n: abs(_CANDIDATE_PERIODS[n] - p)) for p in periods]
    found = detected_period(panel, target_index[0], median_gap, span, known=periods, until=detect_until)
    if found is not None:
        periods, names = periods + [found], names + [detected_name(found, kind)]
    center, spread, rms = future_scales(panel.values[panel.valid][:, fi], panel.value_observed[panel.valid][:, fi])
    return ForecastLayout(target_index=list(target_index), time_unit=float(time_unit), horizon=float(horizon),
                          periods=periods, period_names=names,
                          fallback=fallback_scales(panel.values, panel.value_observed).tolist(), gap=float(median_gap),
                          future_index=fi, future_center=center, future_spread=spread, future_rms=rms,
                          static_spec=[list(s) for s in static_spec],
                          target_moments=_moments(panel, target_index[0]) if fi and len(panel.ids) > 1 else [],
                          future_changes=bool(fi), profile_changes=True, scale_gate=True)


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
