"""Integer times keep integer precision end to end: what goes in comes back unchanged.

float64 holds every integer only up to 2**53 (about 9e15); integer clocks beyond it, such as Unix
nanoseconds (1.7e18), are read as int64, their gaps taken as int64 differences, and forecasts,
backtests and updates return the time column as int64 with the values given.
"""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.model_selection import backtest

SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=1, validation_fraction=0.0, random_state=0)
BIG = 10**17
NS_2024 = pd.Timestamp("2024-01-01").value  # Unix nanoseconds, as a number
HOUR = 3_600_000_000_000


def integer_panel(base=BIG, gaps=(95, 108), n_series=4, n_obs=30, seed=0):
    """Series at ``base`` plus integer gaps drawn in ``gaps``; returns the frame and the gaps (S, n_obs)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(*gaps, size=(n_series, n_obs))
    t = base + np.cumsum(steps, axis=1)
    y = np.sin(np.arange(n_obs) / 3.0)[None, :] + rng.normal(0, 0.1, (n_series, n_obs))
    frame = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs),
                          "ds": t.ravel().astype(np.int64), "y": y.ravel()})
    return frame, steps


def fit(frame, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return SMRForecaster(**{**SMALL, **settings}).fit(frame)


def test_times_near_1e17_are_distinct_and_the_time_unit_is_their_median_gap():
    """Fails if integer times pass through float64 (spaced 16 apart near 1e17): consecutive times
    1e17 + k were reported as duplicate rows, and gaps of about 101 gave time_unit_ 96."""
    consecutive = pd.DataFrame({"unique_id": "a", "ds": BIG + np.arange(40), "y": np.sin(np.arange(40.0))})
    assert fit(consecutive).time_unit_ == 1.0
    frame, steps = integer_panel()
    assert fit(frame).time_unit_ == np.median(steps[:, 1:])  # the gaps between rows, exactly
    duplicate = frame.copy()
    duplicate.loc[1, "ds"] = duplicate.loc[0, "ds"]
    with pytest.raises(ValueError, match=rf"1 duplicate \(unique_id, ds\) rows, for example unique_id='s0', "
                                         rf"ds={frame.loc[0, 'ds']}$"):
        fit(duplicate)


def test_forecasts_return_integer_query_times_unchanged():
    """Fails if query times come back as float64: Unix nanoseconds lose their last digits there, and
    merging the forecasts back on (id, ds) matches nothing."""
    frame, _ = integer_panel(base=NS_2024 + 7, gaps=(HOUR // 2, 2 * HOUR), n_series=8)
    model = fit(frame, validation_fraction=0.25)  # held-out series calibrate the intervals
    last = frame.groupby("unique_id")["ds"].max()
    queries = pd.DataFrame({"unique_id": np.repeat(last.index, 2),
                            "ds": np.repeat(last.to_numpy(), 2) + np.tile([HOUR + 1, 5 * HOUR + 3], len(last))})
    out = model.forecast(times=queries, level=[80])
    assert out["ds"].dtype == np.int64
    np.testing.assert_array_equal(out["ds"].to_numpy(), queries["ds"].to_numpy())
    assert len(queries.merge(out, on=["unique_id", "ds"])) == len(queries)
    assert np.isfinite(out[["S5", "S5-lo-80", "S5-hi-80"]].to_numpy()).all()


def test_h_steps_on_integer_times_are_whole_numbers_from_the_last_time():
    """forecast(h=...) on integer times: int64, the k-th step at exactly last + k * (the median gap
    rounded half up). Fails if the steps are computed in float64 (off by up to 8 near 1e17)."""
    frame, _ = integer_panel(gaps=(95, 108))
    # one series with gaps 2 and 3 alternating: a median gap of 2.5, which steps by 3
    t = BIG + 1 + np.cumsum(np.tile([2, 3], 15))
    frame = pd.concat([frame, pd.DataFrame({"unique_id": "half", "ds": t, "y": np.cos(np.arange(30.0))})],
                      ignore_index=True)
    model = fit(frame)
    out = model.forecast(h=4)
    assert out["ds"].dtype == np.int64
    for sid, rows in frame.groupby("unique_id"):
        times = np.sort(rows["ds"].to_numpy())
        step = np.floor(np.median(np.diff(times)) + 0.5).astype(np.int64)
        got = out.loc[out["unique_id"] == sid, "ds"].to_numpy()
        np.testing.assert_array_equal(got - times[-1], step * np.arange(1, 5))
    assert (out.loc[out["unique_id"] == "half", "ds"].to_numpy() - t[-1] == [3, 6, 9, 12]).all()


def test_a_backtest_returns_the_integer_times_and_cutoffs_given():
    """Fails if a backtest's time or cut-off column comes back as float64 (Unix nanoseconds rounded)."""
    frame, _ = integer_panel(base=NS_2024 + 3, gaps=(HOUR // 2, 2 * HOUR))
    cut = int(np.sort(frame["ds"].to_numpy())[int(0.7 * len(frame))]) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = backtest(SMRForecaster(**SMALL), frame, horizon=6 * HOUR, cutoffs=[cut])
    assert result["ds"].dtype == np.int64 and result["cutoff"].dtype == np.int64
    assert (result["cutoff"] == cut).all()
    truth = result.merge(frame, on=["unique_id", "ds"], suffixes=("", "_given"))
    assert len(truth) == len(result) == int(((frame["ds"] > cut) & (frame["ds"] <= cut + 6 * HOUR)).sum())
    np.testing.assert_array_equal(truth["y"], truth["y_given"])


def test_update_on_integer_times_equals_the_context_forecast_and_refuses_fractions():
    """update then forecast equals a forecast with the rows as context, on times near 1e17, all int64;
    a fractional time on a model fitted on integers is refused (it would be cut off), a whole one
    given as a float is read as the integer it is."""
    frame, _ = integer_panel(n_obs=40)
    history = frame.groupby("unique_id").head(30)
    rows = frame.drop(index=history.index)
    model = fit(history)
    expected = model.forecast(h=3, context=rows)
    updated = copy.deepcopy(model).update(rows)
    got = updated.forecast(h=3)
    assert got["ds"].dtype == expected["ds"].dtype == np.int64
    np.testing.assert_array_equal(got["ds"], expected["ds"])
    np.testing.assert_allclose(got["S5"], expected["S5"], rtol=1e-5, atol=1e-5)
    small = integer_panel(base=1000, n_obs=40)[0]
    model = fit(small.groupby("unique_id").head(30))
    later = small.groupby("unique_id").nth(30)
    fractional = later.assign(ds=later["ds"] + 0.5)
    match = r"time column 'ds' has the time \d+\.5, but the model was fitted on integer times"
    with pytest.raises(ValueError, match="new_rows: " + match):
        copy.deepcopy(model).update(fractional)
    with pytest.raises(ValueError, match="context: " + match):
        model.forecast(h=2, context=fractional)
    as_float = copy.deepcopy(model).update(later.assign(ds=later["ds"].astype(float))).forecast(h=2)
    pd.testing.assert_frame_equal(as_float, copy.deepcopy(model).update(later).forecast(h=2))
