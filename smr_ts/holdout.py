"""What a fit holds out: one validation plan, which training, model selection and the intervals read.

A fit validates on one of four things (:attr:`ValidationPlan.kind`):

- ``"given"``: ``fit(..., validation_data=...)``, series apart from the training frame;
- ``"series"``: a random ``validation_fraction`` of the series, held out whole (forecasting holds
  out ``MIN_HELD_OUT_SERIES`` at least, or a quarter of a smaller panel: they also calibrate the
  intervals, and a conformal quantile over five series is noise);
- ``"time"`` (forecasting, with ``validation_by="time"`` or a single series): the last part in time
  of every series, one horizon back from its end (at least ``validation_fraction`` and at most
  half of its span), which training then does not score;
- ``"none"``: nothing, with ``validation_fraction=0``.

The plan answers, once, what each part of a forecasting fit reads: which series train
(:meth:`ValidationPlan.training`), which validate (:meth:`ValidationPlan.validation`), from when
the last part in time validates (:meth:`ValidationPlan.time_split`), and from which cut-offs the
held-out forecasts calibrate the intervals (:meth:`ValidationPlan.calibration_cuts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LATE_HALF", "MIN_HELD_OUT_SERIES", "ValidationPlan", "plan_validation", "validation_back",
           "validation_origin"]

# Forecasting holds out at least this many series (a quarter of a smaller panel): they choose the epoch and
# calibrate the intervals, which a handful of series does not do reliably (docs/results/forecasting_design.md).
MIN_HELD_OUT_SERIES = 16
LATE_HALF = 0.5  # held-out series calibrate from cut-offs from this share of their span on


@dataclass(frozen=True)
class ValidationPlan:
    """Which part of a fit's data validates (see the module docstring)."""

    kind: str  # "given", "series", "time" or "none"
    train: np.ndarray  # the training series (indices into the fitted panel)
    held_out: np.ndarray  # the held-out series ("series"; empty otherwise)
    fraction: float  # validation_fraction

    def training(self, data):
        """The series of ``data`` (the fitted panel's tensors or batches) that train."""
        return data.take(self.train) if self.kind == "series" else data

    def validation(self, data, given):
        """What validates: ``given`` (validation_data's tensors), the held-out series of ``data``, ``data``
        itself (its last part in time), or None."""
        return {"given": given, "series": data.take(self.held_out) if self.kind == "series" else None,
                "time": data, "none": None}[self.kind]

    def time_split(self, data, layout) -> np.ndarray | None:
        """Per series of ``data``, the relative time after which rows validate (and training does not score
        them) for a plan in time; None otherwise."""
        return validation_origin(data, layout, self.fraction) if self.kind == "time" else None

    def calibration_cuts(self, held, layout) -> tuple | None:
        """Per series of ``held`` (:meth:`validation`'s tensors), the relative times from which rows serve as
        calibration cut-offs: ``(first_cut,)`` for a plan in time (its validation part), else ``(late,
        every)``: held-out series serve from the later ``LATE_HALF`` of their span on, and from every row
        when those later halves give too few pairs. None when nothing is held out."""
        if held is None:
            return None
        if self.kind == "time":
            return (validation_origin(held, layout, self.fraction),)
        end = held.time[np.arange(len(held.lengths)), held.lengths - 1]
        return held.time[:, 0] + LATE_HALF * (end - held.time[:, 0]), np.full(len(held.lengths), -np.inf)


def plan_validation(n_series: int, seed: int, *, given: bool, forecasting: bool, validation_fraction: float,
                    validation_by: str = "series") -> ValidationPlan:
    """The plan of a fit on ``n_series`` series: ``given`` when it has validation_data; else a seeded
    random ``validation_fraction`` of the series (at least one, at most all but one, and in forecasting
    ``MIN_HELD_OUT_SERIES`` at least or a quarter of the panel); in forecasting by time when asked or when
    no series can be held out; else none."""
    order = np.random.default_rng(seed).permutation(n_series)
    by_time = forecasting and validation_by == "time"
    split = not given and not by_time and validation_fraction > 0 and n_series >= 2
    n_val = max(1, int(round(validation_fraction * n_series)))
    if forecasting:  # calibration and early stopping need enough held-out series
        n_val = max(n_val, min(MIN_HELD_OUT_SERIES, n_series // 4))
    n_val = min(n_series - 1, n_val) if split else 0
    train, held_out = np.sort(order[n_val:]), np.sort(order[:n_val])
    kind = ("given" if given else "series" if len(held_out) else
            "time" if forecasting and validation_fraction > 0 else "none")
    return ValidationPlan(kind, train, held_out, float(validation_fraction))


def validation_origin(data, layout, fraction: float) -> np.ndarray:
    """Per series, the relative time from which its last part validates: one horizon before its end
    (at most half of its span, at least ``fraction`` of it)."""
    end = data.time[np.arange(len(data.lengths)), data.lengths - 1]
    return end - validation_back(end - data.time[:, 0], layout.horizon, fraction)


def validation_back(span: np.ndarray, horizon: float, fraction: float) -> np.ndarray:
    """Per series of time ``span``, how long before its end its last part, validating in time, begins:
    one ``horizon``, at most half the span, at least ``fraction`` of it."""
    return np.clip(horizon, fraction * span, 0.5 * span)
