"""Uncertainty: conformal intervals (forecast(level=...)) and quantile forecasts (loss="quantile").

The coverage tests use random walks observed at Poisson times, whose spread grows with the time
ahead and differs between series: intervals must cover their level near and far ahead, on small
and large series alike.
"""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.intervals import (
    MAX_PAIRS, MIN_LATE_PAIRS, MIN_PER_BIN, RECENT_CHANGES, _pairs, ahead_bins, calibration_source, check_levels,
    conformal_quantile, interval_columns, interval_names, recent_scale, recent_scale_and_changes,
)
from smr_ts.holdout import ValidationPlan, plan_validation, validation_origin
from smr_ts.model import pinball, pinball_loss
from smr_ts.model_selection import backtest
from smr_ts.plotting import plot_forecast

TINY = dict(d_model=8, state_size=8, n_layers=1, random_state=0)


def random_walks(n_series=200, n_obs=50, seed=0, history=40, horizon=6.0):
    """Random walks at Poisson times (rate 1), each with its own scale (log-uniform 0.2-5): the
    first ``history`` rows of every series, and its rows within ``horizon`` after them."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.cumsum(rng.exponential(1.0, n_obs))
        scale = math.exp(rng.uniform(math.log(0.2), math.log(5.0)))
        y = 10 * rng.normal() + scale * np.cumsum(rng.normal(size=n_obs) * np.sqrt(np.diff(t, prepend=0.0)))
        parts.append(pd.DataFrame({"unique_id": f"s{i:03d}", "ds": t, "y": y, "scale": scale,
                                   "cut": t[history - 1]}))
    frame = pd.concat(parts, ignore_index=True)
    past = frame[frame["ds"] <= frame["cut"]]
    future = frame[(frame["ds"] > frame["cut"]) & (frame["ds"] <= frame["cut"] + horizon)]
    return past[["unique_id", "ds", "y"]], future.assign(ahead=future["ds"] - future["cut"])


def within_binomial(share, p, n, z=3.0):
    """``share`` is within z binomial standard errors of ``p``, counting each series once (rows of
    one series are correlated, so the number of series is the conservative sample size)."""
    return abs(share - p) <= z * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def walks():
    past, future = random_walks()
    model = SMRForecaster(**TINY, epochs=2, validation_fraction=0.3, horizon=6.0).fit(past)
    forecast = model.forecast(times=future[["unique_id", "ds"]], level=[80, 95])
    return model, future.reset_index(drop=True), forecast


def noisy_levels(n_series, n_obs, seed, prefix):
    """White noise around a level per series, at Poisson times: a trained network beats the last value
    quickly (it moves the forecast toward the series' mean), so calibration sees its corrections."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    y = rng.uniform(-20, 20, (n_series, 1)) + rng.uniform(0.5, 3, (n_series, 1)) * rng.normal(size=t.shape)
    return pd.DataFrame({"unique_id": np.repeat([f"{prefix}{i}" for i in range(n_series)], n_obs),
                         "ds": t.ravel(), "y": y.ravel()})


def recent_scale_by_hand(t, y, k, window, prior):
    """The recent scale at row ``k`` written out: the mean absolute change over the changes observed within
    ``window`` before it, and over its last RECENT_CHANGES at least; fewer than those count ``prior`` as one
    more change."""
    observed = np.isfinite(y[: k + 1])
    values, times = y[: k + 1][observed], t[: k + 1][observed]
    changes = np.abs(np.diff(values))
    in_window = int((times[1:] > t[k] - window).sum())
    used = min(max(RECENT_CHANGES, in_window), len(changes))
    total = changes[len(changes) - used:].sum()
    if used < RECENT_CHANGES:
        total, used = total + prior, used + 1
    return total / used


def held_out_pairs(frame, horizon, late):
    """Every (series, cut row, query row) of the held-out ``frame``: cuts from the later half of each
    series' span (``late``) or all of them, queries within ``horizon`` after their cut."""
    pairs = []
    for sid, rows in frame.groupby("unique_id", sort=True):
        t = rows["ds"].to_numpy()
        first = t[0] + 0.5 * (t[-1] - t[0]) if late else -np.inf
        pairs += [(sid, k, q) for k in range(len(t)) if t[k] >= first
                  for q in range(k + 1, len(t)) if t[q] - t[k] <= horizon]
    return pairs


def scores_by_hand(model, frame, pairs):
    """(time ahead, score) of each pair, sorted: the model's forecast from the cut's history (given as
    ``context``, a series of its own per pair) at the query's time, its absolute error in units of the recent
    scale at the cut (the typical training series' scale as the prior)."""
    series = {sid: (rows["ds"].to_numpy(), rows["y"].to_numpy()) for sid, rows in frame.groupby("unique_id")}
    context = pd.concat([pd.DataFrame({"unique_id": f"{sid}|{k}|{q}", "ds": series[sid][0][: k + 1],
                                       "y": series[sid][1][: k + 1]}) for sid, k, q in pairs])
    queries = pd.DataFrame({"unique_id": [f"{sid}|{k}|{q}" for sid, k, q in pairs],
                            "ds": [series[sid][0][q] for sid, k, q in pairs]})
    point = model.forecast(times=queries, context=context)["S5"].to_numpy()
    prior, horizon = model.layout_.fallback[0], model.layout_.horizon
    ahead = np.array([series[sid][0][q] - series[sid][0][k] for sid, k, q in pairs])
    truth = np.array([series[sid][1][q] for sid, k, q in pairs])
    scale = np.array([recent_scale_by_hand(*series[sid], k, horizon, prior) for sid, k, q in pairs])
    scores = np.abs(truth - point) / scale
    order = np.lexsort((scores, np.round(ahead, 9)))
    return ahead[order], scores[order]


def model_scores(model):
    """The model's calibration (time ahead, score) pairs, sorted as :func:`scores_by_hand` sorts."""
    ahead, scores = model.calibration_ahead_, model.calibration_scores_[:, 0]
    order = np.lexsort((scores, np.round(ahead, 9)))
    return ahead[order], scores[order]


# ---------------------------------------------------------------- the pieces
def test_the_conformal_quantile_is_the_finite_sample_rank():
    scores = np.array([5.0, 1, 9, 3, np.nan, 7, 2, 8, 4, 6])  # 1..9 and an unobserved one
    assert conformal_quantile(scores, 80) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 50) == 5.0
    assert conformal_quantile(scores, 95) == math.inf  # ceil(10 * 0.95) = 10 > 9 scores


def test_time_ahead_bins_hold_equal_counts_and_never_an_empty_bin():
    rng = np.random.default_rng(0)
    ahead = rng.uniform(0, 10, 1000)
    edges = ahead_bins(ahead)
    counts = np.bincount(np.searchsorted(edges, ahead, "right"))
    assert len(counts) == 8 and counts.min() >= 120 and counts.max() <= 130
    assert len(ahead_bins(ahead[:150])) == 0  # fewer than 2 x 100 pairs: one bin
    ties = np.r_[np.full(600, 1.0), rng.uniform(1, 5, 400)]
    counts = np.bincount(np.searchsorted(ahead_bins(ties), ties, "right"))
    assert (counts > 0).all()


def test_the_recent_scale_is_the_mean_of_the_last_five_changes():
    rng = np.random.default_rng(1)
    class Data:  # the fields recent_scale reads
        target = rng.normal(size=(3, 20, 2)).cumsum(1)
        lengths = np.array([20, 12, 1])
        scale = rng.uniform(1, 2, (3, 20, 2))
        time = np.cumsum(rng.exponential(1.0, (3, 20)), 1)
    Data.target[rng.random(Data.target.shape) < 0.3] = np.nan
    series = np.repeat(np.arange(3), 6)
    k = np.concatenate([rng.integers(0, n, 6) for n in Data.lengths])
    got = recent_scale(Data, series, k)
    for i, (s, row) in enumerate(zip(series, k)):
        for j in range(2):
            y = Data.target[s, : row + 1, j]
            y = y[np.isfinite(y)]
            changes = np.abs(np.diff(y))[-5:]
            expected = changes.mean() if len(changes) and changes.mean() > 0 else Data.scale[s, row, j]
            assert got[i, j] == pytest.approx(expected)
    # with a window: every change whose later observation lies within it, and the last five at least
    windowed = recent_scale(Data, series, k, window=6.0)
    for i, (s, row) in enumerate(zip(series, k)):
        for j in range(2):
            y, t = Data.target[s, : row + 1, j], Data.time[s, : row + 1]
            t, y = t[np.isfinite(y)], y[np.isfinite(y)]
            changes = np.abs(np.diff(y))
            n = max(5, int((t[1:] > Data.time[s, row] - 6.0).sum()))
            expected = changes[-n:].mean() if len(changes) and changes[-n:].mean() > 0 else Data.scale[s, row, j]
            assert windowed[i, j] == pytest.approx(expected)
    # with a prior: a history of fewer than five changes counts it as one more change; five or more ignore it
    prior = np.array([7.0, 0.5])
    leaning, n_changes = recent_scale_and_changes(Data, series, k, prior=prior)
    for i, (s, row) in enumerate(zip(series, k)):
        for j in range(2):
            y = Data.target[s, : row + 1, j]
            changes = np.abs(np.diff(y[np.isfinite(y)]))[-5:]
            expected = changes.mean() if len(changes) == 5 else (changes.sum() + prior[j]) / (len(changes) + 1)
            assert leaning[i, j] == pytest.approx(expected)
            assert n_changes[i, j] == max(np.isfinite(y).sum() - 1, 0)


def test_calibration_pairs_are_every_cut_and_later_observation_within_the_horizon():
    rng = np.random.default_rng(2)
    class Data:
        lengths = np.array([15, 9])
        time = np.cumsum(rng.exponential(1.0, (2, 15)), 1)
        anchor = np.ones((2, 15, 1))
    class Layout:
        horizon = 2.5
    first_cut = np.array([-np.inf, Data.time[1, 4]])
    series, k, q = _pairs(Data, Layout, first_cut, np.random.default_rng(0))
    expected = {(s, a, b) for s in range(2) for a in range(Data.lengths[s]) for b in range(a + 1, Data.lengths[s])
                if Data.time[s, a] >= first_cut[s] and Data.time[s, b] - Data.time[s, a] <= Layout.horizon}
    assert set(zip(series.tolist(), k.tolist(), q.tolist())) == expected and len(series) == len(expected)
    Layout.horizon = 1e9  # 2 x 200 x 199 / 2 pairs: a random MAX_PAIRS of them, all distinct
    class Big:
        time = np.cumsum(np.ones((2, 200)), 1)
        anchor = np.ones((2, 200, 1))
        lengths = np.array([200, 200])
    series, k, q = _pairs(Big, Layout, np.full(2, -np.inf), np.random.default_rng(0))
    assert len(series) == MAX_PAIRS and (q > k).all() and len(set(zip(series, k, q))) == MAX_PAIRS


def test_calibration_comes_from_what_the_fit_held_out(walks):
    model = walks[0]
    assert len(model.calibration_ahead_) == MAX_PAIRS and model.calibration_scores_.shape == (MAX_PAIRS, 1)
    assert (model.calibration_ahead_ > 0).all() and (model.calibration_ahead_ <= model.horizon_).all()
    held = forecast_tensors(model.history_panel_, model.layout_, FIRST_GAP)
    plan = ValidationPlan("series", np.array([0, 2]), np.array([1, 3]), 0.1)
    source, first_cut, fallback = calibration_source(held, model.layout_, plan)
    assert np.isneginf(fallback).all()
    np.testing.assert_array_equal(source.lengths, held.lengths[[1, 3]])
    end = held.time[[1, 3], held.lengths[[1, 3]] - 1]
    np.testing.assert_allclose(first_cut, held.time[[1, 3], 0] + 0.5 * (end - held.time[[1, 3], 0]))  # the later half
    nothing = plan_validation(len(held.lengths), 0, given=False, forecasting=True, validation_fraction=0.0)
    assert nothing.kind == "none" and calibration_source(held, model.layout_, nothing) is None


def test_a_single_series_calibrates_on_every_pair_of_its_validation_part():
    """One series validates on its last part in time: its calibration pairs are exactly the cut-offs from where
    that part starts (one horizon back from its end, at least a validation_fraction of its span) with every later
    observation within the horizon, and their scores are those forecasts' errors in the recent scale.
    Catches cut-offs taken from before the validation part, queries past the horizon, and scores in another
    scale."""
    past, _ = random_walks(n_series=1, n_obs=200, history=150)
    single = SMRForecaster(**TINY, epochs=1, horizon=6.0).fit(past)
    t = past["ds"].to_numpy()
    span = t[-1] - t[0]
    origin = t[-1] - np.clip(6.0, single.validation_fraction * span, 0.5 * span)
    tensors_origin = validation_origin(forecast_tensors(single.history_panel_, single.layout_, FIRST_GAP),
                                       single.layout_, single.validation_fraction)[0] + t[0]
    assert tensors_origin == pytest.approx(origin)
    pairs = [("s000", k, q) for k in range(len(t)) if t[k] >= origin
             for q in range(k + 1, len(t)) if t[q] - t[k] <= 6.0]
    assert 0 < len(pairs) < MAX_PAIRS
    ahead, scores = scores_by_hand(single, past, pairs)
    got_ahead, got_scores = model_scores(single)
    np.testing.assert_allclose(got_ahead, ahead, rtol=1e-9)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-5, atol=1e-7)


def test_calibration_scores_are_held_out_errors_in_the_recent_scale_at_the_cut():
    """Each score recomputed: the trained network's forecast from the held-out history up to the cut (through
    ``forecast(context=...)``), its absolute error over the recent scale at the cut written out by hand; and an
    interval's half-width is the recent scale at the series' last row times the conformal rank of those scores.

    Catches a calibration forecast de-scaled at the query row (the future's scale) instead of the cut, and
    scores or intervals in the model's expanding scale instead of the recent one."""
    train, held = noisy_levels(12, 40, 0, "s"), noisy_levels(2, 60, 1, "v")
    # floor=False: these are the network's scores (a simple forecaster's are held in tests/forecasting/test_floor.py)
    model = SMRForecaster(**TINY, epochs=4, horizon=3.0, floor=False).fit(train, validation_data=held)
    assert model.best_epoch_ >= 0  # a trained network: its corrections, not only the last value, are scaled
    horizon = model.horizon_  # 3 after the panel's last time: more after a series' own last row
    pairs = held_out_pairs(held, horizon, late=True)
    assert MIN_LATE_PAIRS <= len(pairs) < MIN_PER_BIN * 2  # every late pair serves, in one bin of time ahead
    ahead, scores = scores_by_hand(model, held, pairs)
    got_ahead, got_scores = model_scores(model)
    np.testing.assert_allclose(got_ahead, ahead, rtol=1e-9)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-5, atol=1e-7)

    out = model.forecast(h=1, level=80)
    rank = math.ceil((len(scores) + 1) * 0.8)
    quantile = np.sort(scores)[rank - 1]
    for sid, rows in train.groupby("unique_id"):
        t, y = rows["ds"].to_numpy(), rows["y"].to_numpy()
        scale = recent_scale_by_hand(t, y, len(t) - 1, horizon, model.layout_.fallback[0])
        row = out[out["unique_id"] == sid].iloc[0]
        assert row["S5-hi-80"] - row["S5"] == pytest.approx(scale * quantile, rel=1e-5)
        assert row["S5"] - row["S5-lo-80"] == pytest.approx(scale * quantile, rel=1e-5)


# ---------------------------------------------------------------- intervals
def test_conformal_intervals_cover_their_level_near_and_far_ahead_on_small_and_large_series(walks):
    _, future, forecast = walks
    y = future["y"].to_numpy()
    groups = {"all": np.ones(len(y), bool), "near": future["ahead"].to_numpy() < 1.5,
              "far": future["ahead"].to_numpy() > 4.0, "small": future["scale"].to_numpy() < 1.0,
              "large": future["scale"].to_numpy() >= 1.0}
    for level in (80, 95):
        inside = (y >= forecast[f"S5-lo-{level}"].to_numpy()) & (y <= forecast[f"S5-hi-{level}"].to_numpy())
        for name, rows in groups.items():
            n_series = future.loc[rows, "unique_id"].nunique()
            assert within_binomial(inside[rows].mean(), level / 100, n_series), (level, name, inside[rows].mean())
    width = (forecast["S5-hi-80"] - forecast["S5-lo-80"]).to_numpy()
    assert width[groups["far"]].mean() > 1.3 * width[groups["near"]].mean()  # spread grows with time ahead


def test_interval_columns_are_named_and_nested_as_nixtlas(walks):
    model, future, forecast = walks
    assert list(forecast.columns) == ["unique_id", "ds", "S5", "S5-lo-95", "S5-lo-80", "S5-hi-80", "S5-hi-95"]
    assert interval_names("y", [95, 80]) == ["y-lo-95", "y-lo-80", "y-hi-80", "y-hi-95"]
    assert (forecast["S5-lo-95"] <= forecast["S5-lo-80"]).all() and (forecast["S5-lo-80"] <= forecast["S5"]).all()
    assert (forecast["S5"] <= forecast["S5-hi-80"]).all() and (forecast["S5-hi-80"] <= forecast["S5-hi-95"]).all()
    again = model.forecast(times=future[["unique_id", "ds"]], level=80)
    np.testing.assert_array_equal(again["S5-hi-80"], forecast["S5-hi-80"])
    assert list(model.forecast(h=2, level=[97.5]).columns)[-2:] == ["S5-lo-97.5", "S5-hi-97.5"]
    assert check_levels([95, 80, 80]) == [80, 95]


@pytest.mark.parametrize("level", [0, 100, -5, "80", [80, 120], [], True])
def test_a_level_outside_0_100_is_refused_naming_it(walks, level):
    with pytest.raises(ValueError, match="level must be a coverage in percent"):
        walks[0].forecast(h=1, level=level)


@pytest.mark.parametrize("level, percent", [([0.8, 0.95], r"level=\[80, 95\]"), (0.9, "level=90"),
                                            ((0.5,), r"level=\[50\]"), ([0.025, 1], r"level=\[2.5\]"),
                                            (1, r"level=\[80, 95\]")])
def test_levels_given_as_fractions_are_refused_showing_the_call_in_percent(walks, level, percent):
    """At every entry point that takes ``level``. Fails if fractions are read as percent, as they were:
    ``level=[0.8, 0.95]`` gave 0.8 % and 0.95 % intervals, nearly zero-width, and no word."""
    model, future, forecast = walks
    history = future[["unique_id", "ds", "y"]]
    calls = {"forecast": lambda: model.forecast(h=1, level=level),
             "backtest": lambda: backtest(SMRForecaster(**TINY, epochs=1), history, horizon=1.0, n_cutoffs=1,
                                          level=level),
             "plot_forecast": lambda: plot_forecast(history, forecast, level=level)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"level is a coverage in percent.*looks like fractions.*In percent: "
                                             rf"{percent}$"):
            call()
    assert check_levels([0.5, 80]) == [0.5, 80]  # one level above 1: percent, a 0.5 % interval among them


def test_intervals_need_held_out_data_and_say_so():
    past, _ = random_walks(n_series=4, n_obs=20, history=20)
    model = SMRForecaster(**TINY, epochs=1, validation_fraction=0.0).fit(past)
    assert len(model.calibration_ahead_) == 0
    with pytest.raises(ValueError, match="validation_fraction > 0"):
        model.forecast(h=1, level=80)


def test_too_few_residuals_for_a_level_give_unbounded_intervals_and_a_warning():
    past, _ = random_walks(n_series=3, n_obs=8, history=8)
    model = SMRForecaster(**TINY, epochs=1, validation_fraction=0.4, horizon=2.0).fit(past)
    assert 0 < np.isfinite(model.calibration_scores_).sum() < 99
    with pytest.warns(UserWarning, match="too few calibration residuals"):
        out = model.forecast(h=1, level=[99])
    assert np.isinf(out["S5-hi-99"]).all() and np.isinf(out["S5-lo-99"]).all()


def test_short_histories_are_calibrated_by_short_history_pairs_where_there_are_enough():
    rng = np.random.default_rng(0)
    n = 3 * MIN_PER_BIN
    changes = np.repeat([[1], [RECENT_CHANGES]], n, axis=0)  # half of the pairs with one change behind them
    scores = np.where(changes == 1, rng.uniform(0, 10, (2 * n, 1)), rng.uniform(0, 1, (2 * n, 1)))
    ahead = rng.uniform(0, 1, 2 * n)
    point, scale = np.zeros((2, 1)), np.ones((2, 1))
    query_changes = np.array([[1], [RECENT_CHANGES + 3]])

    def half_width(cal_changes, query=query_changes, cal_scores=scores, cal_ahead=ahead):
        out = interval_columns(point, scale, np.full(2, 0.5), cal_ahead, cal_scores, [80], ["y"], query, cal_changes)
        return out["y-hi-80"]

    short, long = half_width(changes)
    assert short == pytest.approx(8.0, abs=0.8) and long == pytest.approx(0.8, abs=0.1)
    pooled = half_width(None)  # a model saved before the groups: every pair calibrates every forecast
    assert pooled[0] == pooled[1] and 1.0 < pooled[0] < 8.0
    few = np.r_[np.arange(MIN_PER_BIN - 1), n + np.arange(n)]  # too few short pairs: they borrow every pair's
    borrowed = half_width(changes[few], cal_scores=scores[few], cal_ahead=ahead[few])
    assert borrowed[0] == half_width(None, cal_scores=scores[few], cal_ahead=ahead[few])[0] != borrowed[1]


def test_intervals_cover_forecasts_from_short_histories():
    # Half the series end their history after three observations: their recent scale rests on two
    # changes. Without the prior (the typical series' scale counted as one more change) they covered
    # 0.71 / 0.88 at 80 / 95 %, outside the tolerance below; with it 0.78 / 0.94.
    long_past, long_future = random_walks(n_series=150, seed=3)
    short_past, short_future = random_walks(n_series=150, seed=4, history=3)
    past = pd.concat([long_past, short_past.assign(unique_id="short-" + short_past["unique_id"])])
    future = pd.concat([long_future, short_future.assign(unique_id="short-" + short_future["unique_id"])])
    model = SMRForecaster(**TINY, epochs=2, validation_fraction=0.4, horizon=6.0).fit(past)
    forecast = model.forecast(times=future[["unique_id", "ds"]], level=[80, 95])
    y, short = future["y"].to_numpy(), future["unique_id"].str.startswith("short").to_numpy()
    for level in (80, 95):
        inside = (y >= forecast[f"S5-lo-{level}"].to_numpy()) & (y <= forecast[f"S5-hi-{level}"].to_numpy())
        assert within_binomial(inside[short].mean(), level / 100, 150, z=2.5), (level, inside[short].mean())


def test_intervals_survive_save_load_and_pickle(walks, tmp_path):
    model, future, forecast = walks
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.calibration_changes_, model.calibration_changes_)
    pd.testing.assert_frame_equal(loaded.forecast(times=future[["unique_id", "ds"]], level=[80, 95]), forecast)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(model)).forecast(
        times=future[["unique_id", "ds"]], level=[80, 95]), forecast)


# ---------------------------------------------------------------- quantiles
def test_the_pinball_loss_at_the_median_is_half_the_absolute_error():
    target = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    levels = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]])
    weight = torch.ones(2, 2)
    median = pinball(levels[..., 1:2], target, (0.5,))
    torch.testing.assert_close(median, 0.5 * (target - levels[..., 1]).abs())
    # an error of +1 costs q at level q, an error of -1 costs 1 - q
    one = pinball(torch.zeros(1, 1, 2), torch.tensor([[1.0]]), (0.1, 0.9))
    assert float(one) == pytest.approx((0.1 + 0.9) / 2)
    below = pinball(torch.zeros(1, 1, 2), torch.tensor([[-1.0]]), (0.1, 0.9))
    assert float(below) == pytest.approx((0.9 + 0.1) / 2)
    assert float(pinball_loss(levels, target, weight, (0.1, 0.5, 0.9))) > 0


def test_quantile_forecasts_cover_their_levels_on_a_random_walk():
    past, future = random_walks(seed=1)
    model = SMRForecaster(**TINY, epochs=15, loss="quantile", validation_fraction=0.3, horizon=6.0).fit(past)
    assert model.quantiles_ == (0.1, 0.5, 0.9) and model.best_epoch_ >= 0  # trained, not the last-value network
    assert all("valid_pinball" in record for record in model.history_)
    forecast = model.forecast(times=future[["unique_id", "ds"]])
    assert list(forecast.columns) == ["unique_id", "ds", "S5", "S5_ql0.1", "S5_ql0.5", "S5_ql0.9"]
    np.testing.assert_array_equal(forecast["S5"], forecast["S5_ql0.5"])
    assert (forecast["S5_ql0.1"] <= forecast["S5_ql0.5"]).all() and (forecast["S5_ql0.5"] <= forecast["S5_ql0.9"]).all()
    n_series = future["unique_id"].nunique()
    for q in (0.1, 0.5, 0.9):
        below = (future["y"].to_numpy() < forecast[f"S5_ql{q}"].to_numpy()).mean()
        assert within_binomial(below, q, n_series), (q, below)


def test_quantile_levels_add_the_median_and_are_checked():
    past, _ = random_walks(n_series=6, n_obs=20, history=20)
    model = SMRForecaster(**TINY, epochs=1, loss="quantile", quantiles=[0.8, 0.2]).fit(past)
    assert model.quantiles_ == (0.2, 0.5, 0.8)
    assert list(model.forecast(h=1, level=80).columns) == ["unique_id", "ds", "S5", "S5_ql0.2", "S5_ql0.5", "S5_ql0.8",
                                                           "S5-lo-80", "S5-hi-80"]
    for bad in ([0.0, 0.5], [0.5, 1.0], [0.3, 0.3], [], ["0.5"]):
        with pytest.raises(ValueError, match="'quantiles' parameter"):
            SMRForecaster(loss="quantile", quantiles=bad).fit(past)
    with pytest.raises(ValueError, match="'quantile' is for forecasting"):
        SMRForecaster(**TINY, epochs=1, loss="quantile").fit(past.drop(columns="y").assign(x=1.0), past["y"])
    assert SMRForecaster(**TINY, epochs=1, quantiles=[0.1]).fit(past).quantiles_ is None  # read with loss="quantile" only


def test_held_out_series_without_a_late_pair_calibrate_from_all_their_cut_offs():
    """Later halves with no observation within horizon of a cut-off fall back on every cut-off."""
    train = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 6), "ds": np.tile([0.0, 1, 2, 3, 4, 5], 2),
                          "y": np.arange(12.0)})
    held = pd.DataFrame({"unique_id": ["c"] * 3, "ds": [0.0, 1.0, 10.0], "y": [1.0, 2.0, 3.0]})  # late: t=10 only
    model = SMRForecaster(**TINY, epochs=1, horizon=2.0).fit(train, validation_data=held)
    np.testing.assert_allclose(model.calibration_ahead_, [1.0])  # the cut at t=0, its query at t=1


def test_held_out_series_with_too_few_late_pairs_calibrate_from_all_their_cut_offs():
    """Short held-out series (Quinidine's patients: 14 held out gave 3 late pairs on one seed, so every
    interval was unbounded) lend every cut-off; long ones keep their later halves."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 30), "ds": np.tile(np.arange(30.0), 2),
                          "y": rng.normal(size=60).cumsum()})
    short = pd.DataFrame({"unique_id": np.repeat([f"c{i}" for i in range(30)], 4), "ds": np.tile([0.0, 1, 2, 3], 30),
                          "y": rng.normal(size=120)})
    model = SMRForecaster(**TINY, epochs=1, horizon=3.0).fit(train, validation_data=short)
    # later halves: cuts at t=2 (queries 3) only, 30 pairs (< MIN_LATE_PAIRS); every cut: 3 + 2 + 1 per series
    assert len(model.calibration_ahead_) == 6 * 30
    # the pairs and scores are those of every cut-off, recomputed (short histories lean on the prior)
    for got, expected in zip(model_scores(model), scores_by_hand(model, short, held_out_pairs(short, 3.0, late=False))):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    long = pd.DataFrame({"unique_id": np.repeat([f"d{i}" for i in range(3)], 40), "ds": np.tile(np.arange(40.0), 3),
                         "y": rng.normal(size=120)})
    model = SMRForecaster(**TINY, epochs=1, horizon=3.0).fit(train, validation_data=long)
    # later halves (cuts at t = 20..38, each with min(3, 39 - t) queries): 3 * 17 + 2 + 1 per series
    assert len(model.calibration_ahead_) == 54 * 3
    for got, expected in zip(model_scores(model), scores_by_hand(model, long, held_out_pairs(long, 3.0, late=True))):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
