"""Time axes and durations (smr_ts/data/times.py): datetimes as nanoseconds with their zone, mixed zones
refused, and every spelling of a duration read alike by the one parser."""

import datetime

import numpy as np
import pandas as pd
import pytest
from pandas.tseries.offsets import BaseOffset

from smr_ts.data.frames import split_frame
from smr_ts.data.times import TimeInfo, duration, parse_time_unit


def test_datetimes_become_nanoseconds_and_tz_is_recorded():
    stamps = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:30"]).tz_localize("Europe/Paris")
    df = pd.DataFrame({"unique_id": [1, 1], "ds": stamps, "v": [0.0, 1.0]})
    _, times, info, _ = split_frame(df, "unique_id", "ds")
    assert info == TimeInfo("datetime_tz", "Europe/Paris")
    assert times.dtype == np.int64 and times[1] - times[0] == 90 * 60 * 10**9
    assert parse_time_unit("30min", info) == 30 * 60 * 1e9
    assert parse_time_unit(60, info) == 60e9  # numbers are seconds for datetimes
    assert parse_time_unit("auto", info) is None


def test_mixed_naive_and_aware_timestamps_are_refused():
    df = pd.DataFrame({"unique_id": [1, 1], "ds": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02", tz="UTC")],
                       "v": [0.0, 1.0]})
    with pytest.raises(ValueError, match="mixes tz-aware and tz-naive"):
        split_frame(df, "unique_id", "ds")


@pytest.mark.parametrize("value", ["90min", pd.Timedelta(minutes=90), np.timedelta64(90, "m"),
                                   datetime.timedelta(minutes=90), 5400, 5400.0])
def test_every_spelling_of_a_duration_is_read_alike(value):
    """The estimator's time_unit and horizon and a backtest's horizon and step are read by one parser: a string,
    a pandas, numpy or standard-library timedelta, or a number of seconds give the same raw nanoseconds."""
    info = TimeInfo("datetime")
    assert float(duration(value, info, "horizon")) == 5400e9
    assert parse_time_unit(value, info, "horizon") == 5400e9


def test_durations_on_numeric_times_stay_numbers_and_calendar_offsets_are_asked_for():
    numeric = TimeInfo("numeric")
    assert duration(3, numeric, "step") == 3 and isinstance(duration(3, numeric, "step"), int)  # exact on integers
    with pytest.raises(ValueError, match="step='2D' is a duration but the time column is numeric"):
        duration("2D", numeric, "step")
    dated = TimeInfo("datetime")
    assert isinstance(duration("MS", dated, "step", calendar=True), BaseOffset)
    with pytest.raises(ValueError, match="horizon='MS' is not a duration pandas reads"):
        duration("MS", dated, "horizon")
    for bad in (0, -1.0, "-2h"):
        with pytest.raises(ValueError, match="horizon must be positive"):
            duration(bad, dated, "horizon")
