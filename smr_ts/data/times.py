"""Time axes: raw times, their kinds, differences, and the durations a user gives on them.

Times are kept in their raw unit until a gap is needed: int64 nanoseconds for datetimes (UTC
for tz-aware ones), int64 for integer times and float64 for other numeric times. Gaps are
differences of raw times (in int64 where the times are integers) divided by the time unit, so
datetimes far from 1970 keep nanosecond resolution and integer times near 1e17 stay distinct.

A duration (the estimator's ``time_unit`` and ``horizon``, a backtest's ``horizon`` and ``step``)
is read once, by :func:`duration`: a number is in the time column's unit (seconds for datetimes),
a string, ``pd.Timedelta``, ``np.timedelta64`` or ``datetime.timedelta`` is a duration (datetimes
only), and a calendar offset ("MS") is allowed where the caller steps timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from numbers import Integral, Real

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

__all__ = ["TimeInfo", "as_fitted_times", "check_time_kind", "duration", "parse_time_unit", "plain", "read_times", "show_duration",
           "time_difference"]


@dataclass(frozen=True)
class TimeInfo:
    """What kind of time axis a frame has: ``kind`` is "numeric", "datetime" or "datetime_tz"."""

    kind: str
    tz: str | None = None

    def describe(self) -> str:
        return {"numeric": "numeric", "datetime": "tz-naive datetime"}.get(self.kind, f"tz-aware datetime ({self.tz})")

    def to_times(self, raw: np.ndarray):
        """Raw times (see :func:`read_times`) back as the user's kind: the array itself for numeric
        times, a DatetimeIndex (in the original time zone for tz-aware ones) for datetimes."""
        if self.kind == "numeric":
            return raw
        stamps = pd.to_datetime(np.asarray(raw).astype(np.int64))
        return stamps.tz_localize("UTC").tz_convert(self.tz) if self.kind == "datetime_tz" else stamps


def plain(value):
    """numpy scalars as Python values, so messages read 'b', not np.str_('b')."""
    return value.item() if isinstance(value, np.generic) else value


def read_times(raw, time_col: str, what: str):
    """A time column as raw times (int64 ns for datetimes, int64 for integers, float64 otherwise) and its TimeInfo."""
    series = pd.Series(raw)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        info = TimeInfo("datetime_tz", str(series.dtype.tz))
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        info = TimeInfo("datetime")
    elif pd.api.types.is_bool_dtype(series.dtype):
        raise TypeError(f"{what}: time column {time_col!r} must be datetime or numeric, got bool")
    elif pd.api.types.is_integer_dtype(series.dtype):
        return _integers(series, time_col, what), TimeInfo("numeric")
    elif pd.api.types.is_numeric_dtype(series.dtype):
        times = series.to_numpy(dtype=np.float64)
        if np.isnan(times).any():
            raise ValueError(f"{what}: time column {time_col!r} has missing values (NaN)")
        if np.isinf(times).any():
            raise ValueError(f"{what}: time column {time_col!r} has infinite values")
        return times, TimeInfo("numeric")
    else:
        series = _datetimes_from_objects(series, time_col, what)
        return read_times(series, time_col, what)
    if series.isna().any():
        raise ValueError(f"{what}: time column {time_col!r} has missing times (NaT)")
    return _nanoseconds(series.to_numpy(), time_col, what), info


def _integers(series: pd.Series, time_col: str, what: str) -> np.ndarray:
    """Integer times as int64, never through float64 (which rounds integers above 2**53)."""
    if series.isna().any():
        raise ValueError(f"{what}: time column {time_col!r} has missing values")
    if series.dtype.kind == "u" and len(series) and series.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: time column {time_col!r} has times above {np.iinfo(np.int64).max}, the largest "
                         f"int64; give them relative to a start, e.g. X[{time_col!r}] - X[{time_col!r}].min()")
    return series.to_numpy(dtype=np.int64)


def time_difference(later, earlier) -> np.ndarray:
    """``later - earlier`` of raw times as float64: integers subtract exactly in int64 first (the
    difference of two times near 1e17 is small, their float64 values are 16 apart)."""
    later, earlier = np.asarray(later), np.asarray(earlier)
    if later.dtype.kind in "iu" and earlier.dtype.kind in "iu":
        return (later.astype(np.int64) - earlier.astype(np.int64)).astype(np.float64)
    return later.astype(np.float64) - earlier.astype(np.float64)


def as_fitted_times(times: np.ndarray, fitted_dtype, time_col: str, what: str) -> np.ndarray:
    """Raw times of new rows in the dtype of the fitted history's: numbers given as floats join integer
    times only where they are whole (a fraction would be cut off, silently moving the row)."""
    times = np.asarray(times)
    if np.dtype(fitted_dtype).kind != "i" or times.dtype.kind in "iu":
        return times.astype(fitted_dtype)
    whole = (times == np.round(times)) & (np.abs(times) < 2.0**63)
    if not whole.all():
        raise ValueError(f"{what}: time column {time_col!r} has the time {plain(times[~whole][0])!r}, but the model "
                         "was fitted on integer times; give whole numbers (or refit on float times)")
    return times.astype(np.int64)


# The nanosecond range every datetime is computed in (int64 ns since 1970: 1677-09-21 to 2262-04-11).
_NS_RANGE = (pd.Timestamp.min, pd.Timestamp.max)


def _nanoseconds(stamps: np.ndarray, time_col: str, what: str) -> np.ndarray:
    """datetime64 of any resolution -> int64 nanoseconds; times that do not fit are an error, not a wrap."""
    as_ns = stamps.astype("datetime64[ns]")
    outside = as_ns.astype(stamps.dtype) != stamps  # a wrapped int64 does not convert back
    if outside.any():
        first = stamps[np.argmax(outside)]
        raise ValueError(
            f"{what}: time column {time_col!r} has times outside {_NS_RANGE[0]:%Y-%m-%d} .. {_NS_RANGE[1]:%Y-%m-%d} "
            f"(for example {first}), the range of the nanosecond datetimes smr_ts computes gaps in; give the "
            f"times as numbers instead, e.g. days since a start: (X[{time_col!r}] - start) / np.timedelta64(1, 'D')"
        )
    return as_ns.view(np.int64)


def _datetimes_from_objects(series: pd.Series, time_col: str, what: str) -> pd.Series:
    """Object columns of Timestamps: all naive or all aware (one time zone), never a mix."""
    values = series.to_numpy()
    if not all(isinstance(v, (pd.Timestamp, np.datetime64)) or v is pd.NaT for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        hint = (f"; convert text to datetimes first: X[{time_col!r}] = pd.to_datetime(X[{time_col!r}])"
                if any(isinstance(v, str) for v in values) else "")
        raise TypeError(f"{what}: time column {time_col!r} must be datetime or numeric, got values of type {kinds}{hint}")
    aware = np.array([getattr(v, "tzinfo", None) is not None for v in values])
    if aware.any() and not aware.all():
        raise ValueError(f"{what}: time column {time_col!r} mixes tz-aware and tz-naive timestamps")
    try:
        return pd.Series(pd.to_datetime(values, utc=bool(aware.all())))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: time column {time_col!r} could not be read as datetimes: {exc}") from exc


def check_time_kind(info: TimeInfo, fitted: TimeInfo, time_col: str, what: str) -> None:
    """A frame's time axis must be of the kind the model was fitted on."""
    if info.kind == fitted.kind:
        return
    if {info.kind, fitted.kind} == {"datetime", "datetime_tz"}:
        raise ValueError(
            f"{what}: time column {time_col!r} is {info.describe()} but the model was fitted on "
            f"{fitted.describe()} times; convert one of them (tz_localize / tz_convert)"
        )
    raise TypeError(f"{what}: time column {time_col!r} is {info.describe()} but was {fitted.describe()} at fit")


def duration(value, info: TimeInfo, name: str, *, calendar: bool = False):
    """A user's positive duration on a time axis of kind ``info``, in raw units: a number for numeric
    times (an int stays an int, exact on integer times), nanoseconds for datetimes (an int for a
    string or timedelta, exact; a float for a number of seconds); with ``calendar``, a string pandas
    reads as a calendar offset ("MS") comes back as that offset. A ValueError names ``name`` otherwise."""
    given = value  # messages show what the user wrote
    if isinstance(value, (np.timedelta64, timedelta)):  # numpy's and the standard library's durations
        value = pd.Timedelta(value)
    if info.kind == "numeric":
        if isinstance(value, (str, pd.Timedelta, BaseOffset)):
            raise ValueError(f"{name}={given!r} is a duration but the time column is numeric: give a positive "
                             "number in the time column's unit")
        raw = int(value) if isinstance(value, Integral) else float(value)
    elif isinstance(value, Real):
        raw = float(value) * 1e9  # seconds
    else:
        if isinstance(value, str):
            try:
                value = pd.Timedelta(value)
            except ValueError:
                try:
                    value = to_offset(value) if calendar else None
                except ValueError:
                    value = None
                if value is None:
                    offset = ", or a calendar offset such as 'MS'" if calendar else ""
                    raise ValueError(f"{name}={given!r} is not a duration pandas reads: give e.g. '7D', '12h', "
                                     f"pd.Timedelta(days=7){offset}") from None
        if isinstance(value, BaseOffset):
            if value.n <= 0:
                raise ValueError(f"{name} must be positive, got {given!r}")
            return value
        raw = int(pd.Timedelta(value).value)
    if not np.isfinite(raw) or raw <= 0:
        raise ValueError(f"{name} must be positive, got {given!r}")
    return raw


def parse_time_unit(time_unit, info: TimeInfo, name: str = "time_unit") -> float | None:
    """The estimator's ``time_unit`` or ``horizon`` in raw units (ns for datetimes), as a float; None for
    "auto" (see :func:`duration`)."""
    if isinstance(time_unit, str) and time_unit == "auto":
        return None
    return float(duration(time_unit, info, name))


def show_duration(info: TimeInfo):
    """A function that writes a duration in raw units as a user reads it: a Timedelta for datetimes, a
    number otherwise."""
    if info.kind != "numeric":
        return lambda v: str(pd.Timedelta(round(v), unit="ns"))
    return lambda v: f"{v:.6g}"
