"""The floor (smr_ts/forecasting/floor.py): simple forecasters that read nothing after their cut-off, each
right on a series built to need it, and model selection that keeps whichever wins on held-out forecasts,
says so, saves it, and counts `horizon` from the panel's last time."""

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.floor import NETWORK, Floor, apply_floor, candidates, select_floor, simple_corrections
from smr_ts.forecasting.layout import ForecastLayout
from smr_ts.forecasting.pairs import ORIGINS, origin_pairs

from ._data import FAST, poisson_frame, split_last

DAY = 86_400e9
YEAR = 365.2425 * DAY
WEEK = 7 * DAY


def _tensors(times, values, periods=(), gap=1.0, unit=1.0):
    layout = ForecastLayout(target_index=[0], time_unit=unit, horizon=10 * gap, periods=list(periods), fallback=[1.0],
                            gap=gap)
    panel = to_panel(np.zeros(len(times), int), np.asarray(times), np.asarray(values, np.float64)[:, None])
    return forecast_tensors(panel, layout, FIRST_GAP), layout


def _forecast(data, layout, kind, k, t_query):
    t_query = np.asarray(t_query, np.float64)
    n = len(t_query)
    correction = simple_corrections(data, layout, kind, np.zeros(n, int), np.full(n, k), t_query)
    return data.anchor[0, k] + data.scale[0, k] * correction[:, 0]


@pytest.mark.parametrize("kind", ["last value", "mean", "drift", "seasonal naive (year)", "seasonal profile (year)"])
def test_simple_forecasters_read_nothing_after_the_cut_off(kind):
    """Changing every row after the cut-off changes none of their forecasts; changing one row before it
    changes some (so the comparison can fail)."""
    rng = np.random.default_rng(0)
    times = np.sort(rng.choice(np.arange(400) * WEEK, 200, replace=False)).astype(np.int64)
    y = np.sin(2 * np.pi * times / YEAR) + 0.01 * np.arange(200) + 0.1 * rng.normal(size=200)
    data, layout = _tensors(times, y, periods=[YEAR], gap=2 * WEEK, unit=WEEK)
    k = 150
    t_query = data.time[0, k] + np.array([1, 5, 30, 60, 120]) * WEEK
    before = _forecast(data, layout, kind, k, t_query)
    changed = y.copy()
    changed[k + 1:] += 100 * rng.normal(size=len(y) - k - 1)
    after, _ = _tensors(times, changed, periods=[YEAR], gap=2 * WEEK, unit=WEEK)
    np.testing.assert_array_equal(_forecast(after, layout, kind, k, t_query), before)
    if kind != "last value":  # its forecast reads the cut-off's row only
        earlier = y.copy()
        earlier[: k - 1] += 5.0
        moved, _ = _tensors(times, earlier, periods=[YEAR], gap=2 * WEEK, unit=WEEK)
        assert np.abs(_forecast(moved, layout, kind, k, t_query) - before).max() > 1e-3


def test_seasonal_naive_goes_back_a_year_of_52_18_weeks_by_time():
    """A weekly series whose season is a calendar year (52.18 weeks), half its weeks kept at random: the
    seasonal naive forecast reads the kept observation nearest to t - 365.24 days, so it stays in phase,
    where reading 52 rows back (steps, as a grid model would) lands months off."""
    rng = np.random.default_rng(3)
    weeks = np.sort(rng.choice(8 * 53, 4 * 53, replace=False))
    times = (weeks * WEEK).astype(np.int64)
    y = 10 * np.sin(2 * np.pi * times / YEAR)
    data, layout = _tensors(times, y, periods=[YEAR], gap=2 * WEEK, unit=WEEK)
    k = 3 * 53
    q = np.arange(k + 1, k + 27)
    by_time = _forecast(data, layout, "seasonal naive (year)", k, data.time[0, q])
    by_steps = y[q - 52]
    truth = y[q]
    assert np.abs(by_time - truth).mean() < 0.25 * np.abs(by_steps - truth).mean()
    assert np.abs(by_time - truth).max() < 10 * np.sin(2 * np.pi * 1.5 / 52.18)  # within 1.5 weeks of phase
    # beyond one season ahead it reaches back whole years, never past the cut-off
    far = data.time[0, k] + np.array([60, 100]) * WEEK
    np.testing.assert_allclose(_forecast(data, layout, "seasonal naive (year)", k, far),
                               10 * np.sin(2 * np.pi * (far + data.origin - 2 * YEAR) / YEAR), atol=1.5)


def test_seasonal_profile_averages_noisy_years_where_seasonal_naive_copies_one():
    """A weekly series with a yearly season (52.18 weeks) under noise as large as the season, half its weeks
    kept: the profile of five years plus the recent level forecasts the next year far better than last value
    and seasonal naive (one noisy year copied), and close to the truth's noise-free curve."""
    rng = np.random.default_rng(5)
    weeks = np.sort(rng.choice(8 * 53, 4 * 53, replace=False))
    times = (weeks * WEEK).astype(np.int64)
    season = 3 * np.sin(2 * np.pi * times / YEAR)
    y = 20 + season + 3 * rng.normal(size=len(times))
    data, layout = _tensors(times, y, periods=[YEAR], gap=2 * WEEK, unit=WEEK)
    k = int(np.searchsorted(weeks, 7 * 53)) - 1  # seven years of history
    q = np.arange(k + 1, len(times))
    t_query = data.time[0, q]
    truth = 20 + season[q]
    error = {kind: np.abs(_forecast(data, layout, kind, k, t_query) - truth).mean()
             for kind in ("last value", "seasonal naive (year)", "seasonal profile (year)")}
    assert error["seasonal profile (year)"] < 0.6 * error["seasonal naive (year)"]
    assert error["seasonal profile (year)"] < 0.4 * error["last value"]
    assert error["seasonal profile (year)"] < 1.0  # a third of the season's amplitude
    # with one period of history (under a year) it is last value
    short = int(np.searchsorted(weeks, 45)) - 1
    ahead = data.time[0, short] + np.array([4.0, 20.0]) * WEEK
    np.testing.assert_array_equal(_forecast(data, layout, "seasonal profile (year)", short, ahead),
                                  np.full(2, y[short]))


def test_drift_carries_a_trend_beyond_the_levels_seen():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 100, 80))
    y = 3.0 * t + rng.normal(0, 1, 80)
    data, layout = _tensors(t, y)
    k = len(t) - 1
    ahead = np.array([10.0, 50.0])
    forecast = _forecast(data, layout, "drift", k, data.time[0, k] + ahead)
    np.testing.assert_allclose(forecast, 3.0 * (t[-1] + ahead), rtol=0.03)
    assert forecast.max() > y.max() + 100


def test_a_floor_answers_each_range_ahead_with_its_own_forecaster():
    t = np.arange(50.0)
    y = np.where(t % 2 == 0, 1.0, -1.0)  # mean 0, last value -1
    data, layout = _tensors(t, y)
    floor = Floor(edges=(5.0,), kinds=("last value", "mean"))
    k = np.full(3, 49)
    point = apply_floor(floor, data, layout, np.zeros(3, int), k, data.time[0, 49] + np.array([1.0, 4.9, 5.0]),
                        lambda: pytest.fail("no range keeps the network"))
    np.testing.assert_allclose(point[:, 0], [-1.0, -1.0, 0.0], atol=1e-12)
    assert floor.describe() == "last value, mean from 5.0 ahead"
    assert Floor.from_json(floor.to_json()) == floor


def _noisy_mean_panel(seed=0):
    """Series that revert to their own means at once: white noise, where last value pays the noise twice."""
    return poisson_frame(lambda t, rng, i: 3.0 * i + rng.normal(0, 1, len(t)), n_series=24, n_obs=60, seed=seed)


def test_selection_keeps_the_mean_on_a_noisy_mean_reverting_series_and_says_so(caplog):
    history, future = split_last(_noisy_mean_panel(), 5)
    with caplog.at_level(logging.INFO, logger="smr_ts"):
        model = SMRForecaster(**FAST).fit(history)
    messages = [r.getMessage() for r in caplog.records if "model selection kept" in r.getMessage()]
    assert len(messages) == 1 and "mean" in messages[0]
    assert "mean" in model.selected_forecaster_
    scores = model.selection_scores_
    assert list(scores.columns) == ["up_to", NETWORK, *candidates(model.layout_), "kept"]
    assert (scores["mean"] < scores["last value"]).all()
    pred = model.predict(future[["unique_id", "ds"]])["y"].to_numpy()
    last = future["unique_id"].map(history.groupby("unique_id")["y"].last()).to_numpy()
    means = future["unique_id"].map(history.groupby("unique_id")["y"].mean()).to_numpy()
    truth = future["y"].to_numpy()
    assert np.abs(pred - truth).mean() < 0.85 * np.abs(last - truth).mean()
    if all(kind == "mean" for kind in model.forecast_state_.floor.kinds):
        np.testing.assert_allclose(pred, means, rtol=1e-9)


def test_floor_false_and_distribution_losses_keep_the_network():
    history, _ = split_last(_noisy_mean_panel(), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither fit warns about a kept simple forecaster
        off = SMRForecaster(**{**FAST, "epochs": 2}, floor=False).fit(history)
        gaussian = SMRForecaster(**{**FAST, "epochs": 2}, loss="gaussian").fit(history)
    for model in (off, gaussian):
        assert model.selected_forecaster_ in (NETWORK, "last value") and model.selection_scores_ is None
        assert model.forecast_state_.floor.network_only


def test_the_kept_floor_survives_save_load_update_and_calibrates_the_intervals(tmp_path):
    history, future = split_last(_noisy_mean_panel(), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SMRForecaster(**FAST).fit(history)
    assert not model.forecast_state_.floor.network_only
    before = model.forecast(h=3, level=[80])
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.selected_forecaster_ == model.selected_forecaster_
    pd.testing.assert_frame_equal(loaded.forecast(h=3, level=[80]), before)
    # the intervals are the kept forecaster's: centred on its point, bounded
    assert np.isfinite(before[["S5-lo-80", "S5-hi-80"]]).all().all()
    assert ((before["S5-lo-80"] <= before["S5"]) & (before["S5"] <= before["S5-hi-80"])).all()
    # update(rows) continues the kept forecaster: its forecast equals one with the rows as context
    new = future.groupby("unique_id").head(2)
    expected = model.forecast(h=2, context=new)
    model.update(new)
    pd.testing.assert_frame_equal(model.forecast(h=2), expected)


class _Network(torch.nn.Module):
    """A trained network's stand-in: its forecast on every pair is the batch's ``network``."""

    def forward(self, batch):
        return batch["network"], None


def _held_out(truth_minus_mean_per_cutoff, queries=60, seed=0):
    """Validation batches of one window per cut-off; corrections to the anchor: the truth 1 (last value is
    1 off everywhere), the network 3 off, "mean" off by each cut-off's given amount plus small noise."""
    rng = np.random.default_rng(seed)
    n = len(truth_minus_mean_per_cutoff)
    target = torch.ones(n, queries, 1)
    mean_off = torch.as_tensor(np.asarray(truth_minus_mean_per_cutoff)[:, None, None]
                               + rng.normal(0, 0.01, (n, queries, 1)), dtype=torch.float32)
    simple = torch.stack([torch.zeros(n, queries, 1), target - mean_off], 2)  # last value, mean
    return [{"network": target + 3.0, "target": target, "weight": torch.ones(n, queries, 1), "simple": simple,
             "ahead": torch.ones(n, queries, dtype=torch.float64), "k": torch.zeros(n, queries, dtype=torch.int64)}]


def test_a_forecaster_replaces_last_value_only_with_a_gain_clear_over_cut_offs():
    # better than last value over all pairs (mean error 0.7 against 1), but on two cut-offs of six: chance
    lucky = _held_out([0.0, 0.0, 1.05, 1.05, 1.05, 1.05], queries=60)
    floor, scores = select_floor(_Network(), lucky, ["last value", "mean"], network_is_last_value=False)
    assert scores["mean"].iloc[0] < scores["last value"].iloc[0] < scores[NETWORK].iloc[0]
    assert floor.kinds == ("last value",)
    # a smaller gain that every cut-off shows is kept
    steady = _held_out(np.full(8, 0.8) + np.linspace(-0.05, 0.05, 8))
    floor, _ = select_floor(_Network(), steady, ["last value", "mean"], network_is_last_value=False)
    assert floor.kinds == ("mean",)


def test_time_validation_scores_several_origins_per_series():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 300, 300))
    data, layout = _tensors(t, np.sin(t / 10))
    layout = ForecastLayout(**{**vars(layout), "horizon": 40.0})
    batches = origin_pairs(data, layout, np.array([200.0]), window=64, batch_size=8, device="cpu",
                           simple=candidates(layout))
    aheads = {float(a) for b in batches for a in (b["ahead"][b["weight"][..., 0] > 0]).numpy()}
    assert len(batches[0]["k"]) == ORIGINS  # one window per origin, each ending at its cut-off
    assert batches[0]["simple"].shape[2] == len(candidates(layout)) and len(aheads) > 10


# ---------------------------------------------------------------- horizon counts from the panel's "now"
def _panel_ending_at(now, ends, hours=300):
    rows = []
    for i, end in enumerate(ends):
        times = pd.date_range(end=end, periods=hours, freq="1h")
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": times, "y": np.sin(np.arange(hours) / 5.0) + i}))
    return pd.concat(rows, ignore_index=True)


def test_horizon_counts_from_the_panels_last_time():
    """A series that ended two hours before the others: forecasts up to now + 3 days are trained for and
    do not warn, one past it does; the time ahead trained covers the two hours."""
    now = pd.Timestamp("2025-03-01 12:00")
    frame = _panel_ending_at(now, [now, now, now - pd.Timedelta("2h")])
    model = SMRForecaster(**{**FAST, "epochs": 1}, horizon="3D", floor=False).fit(frame)
    assert model.horizon_ == pd.Timedelta("3D2h").value
    ids = ["s0", "s1", "s2"]
    within = pd.DataFrame({"unique_id": ids, "ds": now + pd.Timedelta("3D")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forecast(times=within)
    past = pd.DataFrame({"unique_id": ["s2"], "ds": [now + pd.Timedelta("3D1h")]})
    with pytest.warns(UserWarning, match=r"after the panel's last time, but horizon='3D' counts from it"):
        model.forecast(times=past)


def test_a_series_that_ended_long_before_now_does_not_stretch_training_and_is_warned_about():
    """Ten hours before now, with horizon="1D": past a quarter horizon, so training is not stretched for it."""
    now = pd.Timestamp("2025-03-01 12:00")
    frame = _panel_ending_at(now, [now, now, now - pd.Timedelta("10h")])
    model = SMRForecaster(**{**FAST, "epochs": 1}, horizon="1D", floor=False).fit(frame)
    assert model.horizon_ == pd.Timedelta("1D").value
    with pytest.warns(UserWarning, match=r"ended well before the panel's last time \(horizon='1D' counts from it\)"):
        model.forecast(times=pd.DataFrame({"unique_id": ["s2"], "ds": [now + pd.Timedelta("20h")]}))  # 30 h after its end
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 20 h after the others' end: trained for
        model.forecast(times=pd.DataFrame({"unique_id": ["s0", "s1"], "ds": now + pd.Timedelta("20h")}))
