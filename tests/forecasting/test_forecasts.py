"""What a forecasting fit learns, end to end: the properties that would have caught the forecasts that
lost to last value. Random walks stay at their last value, trends are followed past the levels seen in
training, and S6 reads its history. (Scale and offset, training cuts, queries and the horizon: in the
tests of the modules that hold them, test_features.py and test_queries.py.)
"""

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster

from ._data import FAST, last_values, poisson_frame, split_last


def test_a_random_walk_is_forecast_near_its_last_value_not_the_global_mean():
    walk = poisson_frame(lambda t, rng, i: 20.0 * rng.normal() + np.cumsum(rng.normal(size=len(t))))
    history, future = split_last(walk, 3)
    model = SMRForecaster(**FAST, horizon=20.0).fit(history)
    pred = model.forecast(times=future[["unique_id", "ds"]])["S5"].to_numpy()
    last = last_values(history, future)
    truth = future["y"].to_numpy()
    assert np.abs(pred - last).mean() < 0.5 * np.abs(truth - last).mean()  # stays by the last value
    assert np.abs(pred - truth).mean() < 1.15 * np.abs(last - truth).mean()
    assert np.abs(pred - history["y"].mean()).mean() > 5 * np.abs(pred - last).mean()  # not the global mean


def test_a_trend_is_followed_past_the_levels_seen_in_training():
    trend = poisson_frame(lambda t, rng, i: (1.0 + 0.05 * i) * t + 0.2 * rng.normal(size=len(t)), n_obs=50)
    history, future = split_last(trend, 5)
    model = SMRForecaster(**{**FAST, "epochs": 20}).fit(history)
    pred = model.forecast(times=future[["unique_id", "ds"]])
    merged = future.merge(pred, on=["unique_id", "ds"])
    last = last_values(history, merged)
    err, err_last = np.abs(merged["S5"] - merged["y"]).mean(), np.abs(last - merged["y"]).mean()
    assert err < 0.5 * err_last, (err, err_last)
    top = history.groupby("unique_id")["y"].max()
    beyond = merged.groupby("unique_id")["S5"].max() > top.reindex(merged["unique_id"].unique())
    assert beyond.mean() > 0.9  # forecasts leave the range of every series' training levels


def test_s6_forecasts_read_the_history():
    """Two histories with the same last value but different pasts forecast differently (S6 used
    to answer 0 at every query step, whatever came before)."""
    frame = poisson_frame(lambda t, rng, i: np.sin(t + i) + 0.1 * rng.normal(size=len(t)))
    model = SMRForecaster(**{**FAST, "backbone": "s6", "validation_fraction": 0.0}).fit(frame)
    t = np.arange(1.0, 11.0)
    a = pd.DataFrame({"unique_id": "new_a", "ds": t, "y": np.sin(t)})
    b = a.assign(unique_id="new_b", y=np.r_[-np.sin(t[:-1]), np.sin(t[-1])])  # same last value
    queries = pd.DataFrame({"unique_id": ["new_a", "new_b"], "ds": [12.0, 12.0]})
    out = model.forecast(times=queries, context=pd.concat([a, b]))["S6"].to_numpy()
    assert abs(out[0] - out[1]) > 1e-3


