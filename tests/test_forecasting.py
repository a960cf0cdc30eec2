"""Forecasting: the properties that would have caught the forecasts that lost to last value.

Random walks stay at their last value, trends are followed past the levels seen in training,
S6 reads its history, scale and offset do not matter, a training cut sees exactly what a
forecast sees, queries do not change each other, and a horizon past training warns.
"""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.callbacks import EarlyStopping, RequireGain, TrainingState
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.pairs import _collate

FAST = dict(d_model=16, state_size=8, n_layers=1, epochs=12, batch_size=16, random_state=0)


def poisson_frame(values_fn, n_series=24, n_obs=40, seed=0, rate=1.0):
    """Series observed at Poisson times; ``values_fn(t, rng, i)`` gives series i's values."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        t = np.cumsum(rng.exponential(1.0 / rate, n_obs))
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": t, "y": values_fn(t, rng, i)}))
    return pd.concat(rows, ignore_index=True)


def split_last(frame, n_last):
    frame = frame.sort_values(["unique_id", "ds"])
    from_end = frame.groupby("unique_id").cumcount(ascending=False)
    return frame[from_end >= n_last].reset_index(drop=True), frame[from_end < n_last].reset_index(drop=True)


def last_values(history, future):
    return future["unique_id"].map(history.sort_values("ds").groupby("unique_id")["y"].last()).to_numpy()


def test_a_random_walk_is_forecast_near_its_last_value_not_the_global_mean():
    walk = poisson_frame(lambda t, rng, i: 20.0 * rng.normal() + np.cumsum(rng.normal(size=len(t))))
    history, future = split_last(walk, 3)
    model = SMRForecaster(**FAST, horizon=20.0).fit(history)
    pred = model.forecast(times=future[["unique_id", "ds"]])["y"].to_numpy()
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
    merged = future.merge(pred, on=["unique_id", "ds"], suffixes=("", "_pred"))
    last = last_values(history, merged)
    err, err_last = np.abs(merged["y_pred"] - merged["y"]).mean(), np.abs(last - merged["y"]).mean()
    assert err < 0.5 * err_last, (err, err_last)
    top = history.groupby("unique_id")["y"].max()
    beyond = merged.groupby("unique_id")["y_pred"].max() > top.reindex(merged["unique_id"].unique())
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
    out = model.forecast(times=queries, context=pd.concat([a, b]))["y"].to_numpy()
    assert abs(out[0] - out[1]) > 1e-3


@pytest.mark.parametrize("factor, offset", [(1e-12, 0.0), (1.0, 1e7), (1e6, -3e6)])
def test_scale_and_offset_do_not_change_the_forecast(factor, offset):
    base = poisson_frame(lambda t, rng, i: np.sin(0.7 * t + i) + 0.05 * rng.normal(size=len(t)), n_series=12)
    history, future = split_last(base, 3)
    settings = {**FAST, "epochs": 4}
    unit = SMRForecaster(**settings).fit(history).forecast(times=future[["unique_id", "ds"]])["y"].to_numpy()
    moved = SMRForecaster(**settings).fit(history.assign(y=history["y"] * factor + offset))
    got = (moved.forecast(times=future[["unique_id", "ds"]])["y"].to_numpy() - offset) / factor
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, unit, atol=2e-3)


def test_a_training_cut_sees_what_a_forecast_sees():
    """The training path (one pass, a pair (k, q)) and the forecast path (the history up to k,
    then a query) give the same number: statistics and inputs are causal."""
    frame = poisson_frame(lambda t, rng, i: np.cumsum(rng.normal(size=len(t))) + 0.1 * t, n_series=6)
    model = SMRForecaster(**{**FAST, "epochs": 3, "validation_fraction": 0.0}).fit(frame)
    series = frame[frame["unique_id"] == "s03"].sort_values("ds").reset_index(drop=True)
    k, q = 17, 21
    prefix = series.iloc[: k + 1].assign(unique_id="prefix")
    forecast = model.forecast(times=pd.DataFrame({"unique_id": ["prefix"], "ds": [series["ds"][q]]}),
                              context=prefix)["y"].iloc[0]

    panel = to_panel(series["unique_id"].to_numpy(), series["ds"].to_numpy(),
                     series[["y"]].to_numpy(np.float64))
    data = forecast_tensors(panel, model.layout_, FIRST_GAP)
    batch = _collate(data, model.layout_, [(0, 0, len(series))], [(np.array([k]), np.array([q]))], "cpu")
    with torch.no_grad():
        correction, _ = model.model_(batch)
    trained = data.anchor[0, k, 0] + data.scale[0, k, 0] * float(correction[0, 0, 0])
    assert trained == pytest.approx(forecast, rel=1e-5, abs=1e-6)


def test_queries_do_not_change_each_other_and_series_do_not_either():
    frame = poisson_frame(lambda t, rng, i: np.sin(t + i), n_series=8)
    model = SMRForecaster(**{**FAST, "epochs": 3, "validation_fraction": 0.0}).fit(frame)
    grid = model.forecast(h=4)
    alone = model.forecast(times=grid[grid["unique_id"] == "s02"].iloc[[2]][["unique_id", "ds"]])
    expected = grid[grid["unique_id"] == "s02"]["y"].iloc[2]
    assert alone["y"].iloc[0] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    shuffled = grid.sample(frac=1.0, random_state=0)
    again = model.forecast(times=shuffled[["unique_id", "ds"]])
    np.testing.assert_allclose(again["y"].to_numpy(), shuffled["y"].to_numpy(), rtol=1e-6, atol=1e-6)


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
        np.testing.assert_allclose(alone["y"], rows["y"], rtol=1e-6, atol=1e-6)
    assert np.ptp(grid["y"].to_numpy()) > 0.1  # the forecasts follow the day, not only the last value


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


def test_the_auto_horizon_is_a_quarter_of_the_median_span():
    frame = poisson_frame(lambda t, rng, i: np.sin(t), n_series=4, n_obs=60)
    model = SMRForecaster(**{**FAST, "epochs": 1}).fit(frame)
    spans = frame.groupby("unique_id")["ds"].agg(lambda t: t.max() - t.min())
    assert model.horizon_ == pytest.approx(max(0.25 * spans.median(), 8 * model.layout_.gap))


def test_require_gain_keeps_the_initial_weights_unless_the_gain_is_clear():
    model = torch.nn.Linear(2, 1)
    initial = copy.deepcopy(model.state_dict())
    for z, kept in [(0.5, True), (3.0, False)]:
        model.load_state_dict(initial)
        stopper = EarlyStopping()
        gain = RequireGain(stopper)
        state = TrainingState(model=model, epochs=2)
        for cb in (stopper, gain):
            cb.on_train_begin(state)
        with torch.no_grad():
            model.weight.add_(1.0)  # "training" moved the weights
        record = {"epoch": 0, "train_loss": 1.0, "valid_scaled_mae": 0.5, "valid_gain_z": z}
        state.history.append(record)
        for cb in (stopper, gain):
            cb.on_epoch_end(state, record)
        for cb in (stopper, gain):
            cb.on_train_end(state)
        same = all(torch.equal(model.state_dict()[k], initial[k]) for k in initial)
        assert same == kept
        assert stopper.best_epoch == (-1 if kept else 0)


def test_a_single_series_validates_on_its_last_part():
    frame = poisson_frame(lambda t, rng, i: np.sin(t) + 0.1 * rng.normal(size=len(t)), n_series=1, n_obs=300)
    model = SMRForecaster(**{**FAST, "epochs": 2}).fit(frame)
    assert all("valid_scaled_mae" in h and "valid_gain_z" in h for h in model.history_)


def test_a_time_split_trains_on_nothing_after_the_split():
    """With ``validation_by="time"`` each series' last part validates and training never scores it: mirroring
    every value after the split (which keeps every absolute change, so the fallback scales too) leaves each
    epoch's training loss as it was, and moves the validation scores. Catches training pairs whose query lies
    after the split (the sampler built without ``query_until``)."""
    frame = poisson_frame(lambda t, rng, i: np.sin(0.5 * t + i) + 0.1 * rng.normal(size=len(t)), n_series=3, n_obs=80)
    settings = {**FAST, "epochs": 2, "validation_by": "time", "horizon": 5.0}
    model = SMRForecaster(**settings).fit(frame)
    mirrored = []
    for _, rows in frame.groupby("unique_id"):
        t, y = rows["ds"].to_numpy(), rows["y"].to_numpy().copy()
        span = t[-1] - t[0]
        split = t[-1] - np.clip(5.0, model.validation_fraction * span, 0.5 * span)
        after = t > split
        assert 3 <= after.sum() < len(t) // 2
        y[after] = 2 * y[~after][-1] - y[after]  # reflected about the last value before the split
        mirrored.append(rows.assign(y=y))
    other = SMRForecaster(**settings).fit(pd.concat(mirrored))
    np.testing.assert_allclose([h["train_loss"] for h in other.history_], [h["train_loss"] for h in model.history_],
                               rtol=1e-6)
    assert other.history_[0]["valid_scaled_mae"] != pytest.approx(model.history_[0]["valid_scaled_mae"], rel=1e-3)


def test_auto_batch_size_holds_about_a_fixed_number_of_rows():
    from smr_ts.forecasting.layout import _BATCH_ROWS, auto_batch_size

    sizes = [auto_batch_size(w) for w in (64, 128, 256, 512, 1024)]
    assert sizes == sorted(sizes, reverse=True) and all(8 <= b <= 32 for b in sizes)
    for w, b in zip((256, 512, 1024), sizes[2:]):  # inside the clip: rows per batch are the budget
        assert b * w == _BATCH_ROWS


def _daily_panel(values, hours):
    """One series observed at ``hours`` (float hours after an origin), as raw datetime ns."""
    times = (np.asarray(hours) * 3600e9).astype(np.int64)
    return to_panel(np.zeros(len(times), int), times, np.asarray(values, np.float64)[:, None])


def _lag_columns(data, layout, k, t_query):
    from smr_ts.forecasting.queries import query_features

    features = query_features(data, layout, np.zeros(len(t_query), int), np.full(len(t_query), k), t_query)
    return features[:, -2 * len(layout.periods):]  # one target: (season mean, share found) per period


def test_seasonal_lags_read_the_seasons_before_the_query_and_nothing_after_the_cut():
    from smr_ts.forecasting.layout import ForecastLayout

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


def test_the_vectorised_row_search_matches_searchsorted_per_series():
    from smr_ts.forecasting.covariates import rows_at_or_before

    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(5), [1, 3, 8, 2, 6])
    times = np.concatenate([np.sort(rng.choice(20, n, replace=False)).astype(float) for n in [1, 3, 8, 2, 6]])
    panel = to_panel(ids, times, rng.normal(size=(len(ids), 1)))
    data = forecast_tensors(panel, _layout_without_periods(), FIRST_GAP)
    series = rng.integers(0, 5, 200)
    t = rng.uniform(-2, 22, 200).round()  # ties with observation times included
    expect = [np.searchsorted(data.time[s, : data.lengths[s]], ti, side="right") - 1 for s, ti in zip(series, t)]
    np.testing.assert_array_equal(rows_at_or_before(data.time, data.lengths, series, t), expect)


def _layout_without_periods():
    from smr_ts.forecasting.layout import ForecastLayout

    return ForecastLayout(target_index=[0], time_unit=1.0, horizon=5.0, periods=[], fallback=[1.0], gap=1.0)
