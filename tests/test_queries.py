"""Forecast queries (smr_ts/data/queries.py): the times forecast(h=...) asks for."""

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster
from smr_ts.data.times import TimeInfo
from smr_ts.forecasting.queries import horizon_queries


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
