"""Forecast queries (smr_ts/forecasting/queries.py): the times h asks for, what the head reads of each query
(calendar phases, season-ago values), queries that do not change each other, and the horizon warning."""

import warnings

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.data.times import TimeInfo
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.layout import ForecastLayout
from smr_ts.forecasting.queries import horizon_queries, query_features

from ._data import FAST, poisson_frame


def test_h_steps_go_at_each_series_median_gap():
    """Gaps 1, 1, 1, 10 (median 1, mean 3.25) and 2, 2, 1 (median 2, mean 1.67): the steps go at the median, so
    one long pause does not stretch them; a series of one row steps by the time unit. Catches steps at the
    mean gap."""
    ids = np.array(["a"] * 5 + ["b"] * 4 + ["c"])
    times = np.array([0.0, 1, 2, 3, 13, 0, 2, 4, 5, 7])
    q_ids, q_times = horizon_queries(ids, times, 3, 0.5, TimeInfo("numeric"))
    assert list(q_ids) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    np.testing.assert_array_equal(q_times, [14, 15, 16, 7, 9, 11, 7.5, 8, 8.5])
    hour = 3600 * 10**9  # datetimes: raw int64 nanoseconds, whole steps
    q_ids, q_times = horizon_queries(ids, (times * hour).astype(np.int64), 2, 0.5 * hour, TimeInfo("datetime"))
    assert q_times.dtype == np.int64
    np.testing.assert_array_equal(q_times, np.array([14, 15, 7, 9, 7.5, 8]) * hour)


def test_forecast_h_returns_the_median_gap_grid_after_each_series_last_row():
    """Through the estimator, on series whose mean and median gaps differ."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(4):
        gaps = np.r_[rng.uniform(0.5, 1.5, 11), 20.0]  # one long pause: the mean gap is about twice the median
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": np.cumsum(gaps), "y": rng.normal(size=12)}))
    history = pd.concat(frames, ignore_index=True)
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0).fit(history)
    out = model.forecast(h=3)
    for sid, rows in history.groupby("unique_id"):
        t = rows["ds"].to_numpy()
        got = out.loc[out["unique_id"] == sid, "ds"].to_numpy()
        assert np.median(np.diff(t)) < 0.6 * np.mean(np.diff(t))
        np.testing.assert_allclose(got, t[-1] + np.median(np.diff(t)) * np.arange(1, 4), rtol=1e-12)


def test_queries_do_not_change_each_other_and_series_do_not_either():
    frame = poisson_frame(lambda t, rng, i: np.sin(t + i), n_series=8)
    model = SMRForecaster(**{**FAST, "epochs": 3, "validation_fraction": 0.0}).fit(frame)
    grid = model.forecast(h=4)
    alone = model.forecast(times=grid[grid["unique_id"] == "s02"].iloc[[2]][["unique_id", "ds"]])
    expected = grid[grid["unique_id"] == "s02"]["S5"].iloc[2]
    assert alone["S5"].iloc[0] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    shuffled = grid.sample(frac=1.0, random_state=0)
    again = model.forecast(times=shuffled[["unique_id", "ds"]])
    np.testing.assert_allclose(again["S5"].to_numpy(), shuffled["S5"].to_numpy(), rtol=1e-6, atol=1e-6)


def test_queries_of_one_series_alone_equal_those_in_the_panel_with_a_daily_period():
    """Hourly datetimes over four days, series starting at different hours: the day's phase is an input, and a
    series forecast alone (its own first row the time origin) equals its rows of the whole panel's forecast.
    Catches a query's calendar phase computed from the origin-relative time (it then moves with whichever
    series are forecast together)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(4):
        t = pd.Timestamp("2024-03-01") + pd.to_timedelta(5 * i + np.cumsum(rng.uniform(0.5, 1.5, 100)), unit="h")
        hours = (t - t.normalize()) / pd.Timedelta(1, "h")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t,
                                    "y": np.sin(2 * np.pi * hours / 24) + 0.1 * rng.normal(size=len(t))}))
    history = pd.concat(frames, ignore_index=True)
    model = SMRForecaster(**{**FAST, "epochs": 2, "validation_fraction": 0.0}, horizon="12h").fit(history)
    assert model.layout_.periods == [24 * 3600e9]
    grid = model.forecast(h=6)
    for sid in ("s2", "s3"):  # series that start after the panel's first row
        rows = grid[grid["unique_id"] == sid]
        alone = model.forecast(times=rows[["unique_id", "ds"]])
        np.testing.assert_allclose(alone["S5"], rows["S5"], rtol=1e-6, atol=1e-6)
    assert np.ptp(grid["S5"].to_numpy()) > 0.1  # the forecasts follow the day, not only the last value


def test_forecasting_past_the_trained_horizon_warns_naming_it():
    frame = poisson_frame(lambda t, rng, i: np.sin(t), n_series=4, n_obs=20)
    model = SMRForecaster(**{**FAST, "epochs": 1, "horizon": 3.0}).fit(frame)
    assert model.horizon_ == 3.0
    last = frame.groupby("unique_id")["ds"].max()
    near = pd.DataFrame({"unique_id": last.index, "ds": last.to_numpy() + 2.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forecast(times=near)  # within the horizon: silent
    far = near.assign(ds=last.to_numpy() + 10.0)
    with pytest.warns(UserWarning, match="horizon=3.0"):
        model.forecast(times=far)


def _daily_panel(values, hours):
    """One series observed at ``hours`` (float hours after an origin), as raw datetime ns."""
    times = (np.asarray(hours) * 3600e9).astype(np.int64)
    return to_panel(np.zeros(len(times), int), times, np.asarray(values, np.float64)[:, None])


def _lag_columns(data, layout, k, t_query):
    features = query_features(data, layout, np.zeros(len(t_query), int), np.full(len(t_query), k), t_query)
    return features[:, -2 * len(layout.periods):]  # one target: (season mean, share found) per period


def test_seasonal_lags_read_the_seasons_before_the_query_and_nothing_after_the_cut():
    day = 24 * 3600e9
    hours = np.arange(10 * 24, dtype=float)  # hourly for ten days
    y = 5 + np.sin(2 * np.pi * hours / 24) + 0.1 * (hours % 7)  # a daily profile plus a weekly wobble
    layout = ForecastLayout(target_index=[0], time_unit=3600e9, horizon=2 * day, periods=[day], fallback=[1.0], gap=3600e9)
    data = forecast_tensors(_daily_panel(y, hours), layout, FIRST_GAP)
    k = 8 * 24 - 1  # the cut: the last hour of day 8
    t_query = data.time[0, k] + np.array([1.0, 5.0, 23.0, 30.0]) * 3600e9
    lags = _lag_columns(data, layout, k, t_query)
    # The mean over the three seasons before each query that end at or before the cut.
    q_hours = hours[k] + np.array([1.0, 5.0, 23.0, 30.0])
    n = np.ceil((q_hours - hours[k]) / 24)
    expect = np.mean([np.interp(q_hours - (n + m) * 24, hours, y) for m in range(3)], 0)
    anchor, scale = y[k], data.scale[0, k, 0]
    np.testing.assert_allclose(lags[:, 0], (expect - anchor) / scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(lags[:, 1], 1.0)
    # Causal: what happens after the cut does not move them.
    y2 = y.copy()
    y2[k + 1:] += 100.0
    data2 = forecast_tensors(_daily_panel(y2, hours), layout, FIRST_GAP)
    np.testing.assert_array_equal(_lag_columns(data2, layout, k, t_query), lags)
    # Seasons before the first observation are counted as missing.
    early = _lag_columns(data, layout, 30, data.time[0, 30] + np.array([2.0]) * 3600e9)
    assert early[0, 1] == pytest.approx(1 / 3)  # hour 8 only: hours -16 and -40 are before the data
