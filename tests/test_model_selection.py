"""Model selection in time: cut-offs, the splitter, backtests, the forecast-mode score, a single
series without an id, Pipelines in forecast mode, the horizon warning, and utilsforecast reading
the output frames."""

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smr_ts import SMRForecaster
from smr_ts.model_selection import TimeCutoffSplit, backtest, naive_scales

TINY = dict(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0)


def irregular_frame(n_series=6, n_obs=30, seed=0, start=None):
    """Random walks at Poisson times (per series its own times); rows shuffled. ``start``: datetimes,
    one time unit = one hour."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        t = np.cumsum(rng.exponential(1.0, n_obs)) + rng.uniform(0, 3)
        parts.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": 5 * i + np.cumsum(rng.normal(size=n_obs))}))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if start is not None:
        frame["ds"] = pd.Timestamp(start) + pd.to_timedelta(frame["ds"], unit="h")
    return frame


# ---------------------------------------------------------------- cut-offs and the splitter
def test_cutoffs_from_a_count_and_a_step_end_one_horizon_before_the_last_time():
    frame = pd.DataFrame({"unique_id": ["a", "a", "b"], "ds": [0.0, 7.5, 20.0], "y": [1.0, 2.0, 3.0]})
    assert TimeCutoffSplit(horizon=3.0, n_cutoffs=3, step=2.0).cutoffs_for(frame) == [13.0, 15.0, 17.0]
    assert TimeCutoffSplit(horizon=3.0, n_cutoffs=2).cutoffs_for(frame) == [14.0, 17.0]  # step defaults to horizon
    assert TimeCutoffSplit(horizon=1.0, cutoffs=[9, 2.5]).cutoffs_for(frame) == [2.5, 9.0]  # sorted


def test_datetime_cutoffs_take_durations_calendar_offsets_and_time_zones():
    days = pd.to_datetime(["2024-03-01 00:00", "2024-05-17 00:00", "2024-06-20 12:00"])
    frame = pd.DataFrame({"unique_id": ["a", "a", "a"], "ds": days, "y": [1.0, 2.0, 3.0]})
    cuts = TimeCutoffSplit(horizon="2D", n_cutoffs=2, step=pd.Timedelta("12h")).cutoffs_for(frame)
    assert cuts == [pd.Timestamp("2024-06-18"), pd.Timestamp("2024-06-18 12:00")]
    # a number is seconds, as for the estimator's horizon
    assert TimeCutoffSplit(horizon=3600.0, n_cutoffs=1).cutoffs_for(frame) == [pd.Timestamp("2024-06-20 11:00")]
    # calendar offsets follow pandas' arithmetic: back to the month's start, keeping the time of day
    cuts = TimeCutoffSplit(horizon="10D", n_cutoffs=3, step="MS").cutoffs_for(frame)
    assert cuts == [pd.Timestamp("2024-05-01 12:00"), pd.Timestamp("2024-06-01 12:00"), pd.Timestamp("2024-06-10 12:00")]
    aware = frame.assign(ds=frame["ds"].dt.tz_localize("Europe/Paris"))
    cuts = TimeCutoffSplit(horizon="1D", cutoffs=["2024-05-01 00:00+02:00"]).cutoffs_for(aware)
    assert cuts == [pd.Timestamp("2024-05-01", tz="Europe/Paris")] and str(cuts[0].tz) == "Europe/Paris"


def test_numpy_and_standard_library_durations_are_durations():
    """Fails if np.timedelta64 is read as a number (numpy calls it an integer: 12 hours became 12 seconds,
    or a raw UFuncTypeError) or datetime.timedelta is refused."""
    days = pd.to_datetime(["2024-03-01 00:00", "2024-05-17 00:00", "2024-06-20 12:00"])
    frame = pd.DataFrame({"unique_id": ["a", "a", "a"], "ds": days, "y": [1.0, 2.0, 3.0]})
    expected = TimeCutoffSplit(horizon="12h", n_cutoffs=2, step="1D").cutoffs_for(frame)
    for horizon, step in ((np.timedelta64(12, "h"), np.timedelta64(1, "D")),
                          (datetime.timedelta(hours=12), datetime.timedelta(days=1))):
        assert TimeCutoffSplit(horizon=horizon, n_cutoffs=2, step=step).cutoffs_for(frame) == expected
    numeric = frame.assign(ds=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"horizon=(np|numpy)\.timedelta64\(12,'h'\) is a duration but the time column "
                                         "is numeric"):
        TimeCutoffSplit(horizon=np.timedelta64(12, "h"), n_cutoffs=1).cutoffs_for(numeric)


def test_split_trains_up_to_each_cutoff_and_tests_every_row_within_the_horizon():
    frame = irregular_frame(n_series=5, n_obs=25)
    frame.loc[frame["unique_id"] == "s4", "ds"] += 100.0  # a series that starts after every cut-off
    cutoffs = [10.0, 14.5]
    horizon = 4.0
    frame.loc[0, "ds"], frame.loc[1, "ds"] = 10.0, 14.0  # rows exactly at a cut-off and at its end
    splits = list(TimeCutoffSplit(horizon=horizon, cutoffs=cutoffs).split(frame))
    assert len(splits) == 2
    for cut, (train, test) in zip(cutoffs, splits):
        t = frame["ds"].to_numpy()
        known = frame.loc[t <= cut, "unique_id"].unique()
        expected_test = np.flatnonzero((t > cut) & (t <= cut + horizon) & frame["unique_id"].isin(known).to_numpy())
        assert train.tolist() == np.flatnonzero(t <= cut).tolist()
        assert test.tolist() == expected_test.tolist()
        assert "s4" not in set(frame["unique_id"].iloc[test])
    assert 0 in splits[0][0] and 1 in splits[0][1]  # at the cut-off: training; at cut-off + horizon: tested


def test_the_splitter_reads_index_levels_and_counts_its_splits():
    frame = irregular_frame(n_series=3)
    cv = TimeCutoffSplit(horizon=2.0, n_cutoffs=3, step=1.0)
    assert cv.get_n_splits() == 3 and TimeCutoffSplit(horizon=1.0, cutoffs=[5.0]).get_n_splits() == 1
    by_index = [(a.tolist(), b.tolist()) for a, b in cv.split(frame.set_index(["unique_id", "ds"]))]
    assert by_index == [(a.tolist(), b.tolist()) for a, b in cv.split(frame)]
    assert "n_cutoffs=3" in repr(cv)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(horizon=2.0), ValueError, "exactly one of cutoffs"),
    (dict(horizon=2.0, cutoffs=[5.0], n_cutoffs=2), ValueError, "exactly one of cutoffs"),
    (dict(horizon=2.0, cutoffs=[5.0], step=1.0), ValueError, "step goes with n_cutoffs"),
    (dict(horizon="2D", n_cutoffs=1), ValueError, "horizon='2D' is a duration but the time column is numeric"),
    (dict(horizon=-1.0, n_cutoffs=1), ValueError, "'horizon' parameter"),
    (dict(horizon=2.0, n_cutoffs=0), ValueError, "'n_cutoffs' parameter"),
    (dict(horizon=2.0, cutoffs=[-50.0]), ValueError, "cut-off -50.0 .* has no row at or before it"),
    (dict(horizon=2.0, cutoffs=["2024-01-01"]), TypeError, "cutoffs: '2024-01-01' is not a number"),
])
def test_bad_splitter_settings_name_what_to_change(kwargs, error, match):
    with pytest.raises(error, match=match):
        list(TimeCutoffSplit(**kwargs).split(irregular_frame(n_series=2)))


def test_datetime_splitter_errors():
    frame = irregular_frame(n_series=2, start="2024-01-01")
    with pytest.raises(ValueError, match="horizon='banana' is not a duration pandas reads"):
        TimeCutoffSplit(horizon="banana", n_cutoffs=1).cutoffs_for(frame)
    aware = frame.assign(ds=frame["ds"].dt.tz_localize("UTC"))
    with pytest.raises(ValueError, match="tz-naive but the time column 'ds' is tz-aware"):
        TimeCutoffSplit(horizon="1h", cutoffs=["2024-01-01 10:00"]).cutoffs_for(aware)


# ---------------------------------------------------------------- tuning with scikit-learn
def test_grid_search_in_forecast_mode_gives_finite_scores():
    """GridSearchCV(SMRForecaster(...), {...}).fit(df) in forecast mode: fails if score() needs y, with
    which the search 'succeeds' with every score NaN."""
    frame = irregular_frame(n_series=6, n_obs=30)
    cv = TimeCutoffSplit(horizon=4.0, n_cutoffs=2, step=3.0)
    search = GridSearchCV(SMRForecaster(**TINY, horizon=6.0), {"d_model": [4, 8], "lr": [3e-3, 1e-2]}, cv=cv,
                          error_score="raise").fit(frame)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.isfinite(scores).all() and (scores < 0).all()
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_estimator_.mode_ == "forecast"

    # each fold's score is the model fitted on the training rows scoring the test rows
    train, test = next(cv.split(frame))
    by_hand = SMRForecaster(**{**TINY, "d_model": 4}, horizon=6.0, lr=3e-3).fit(frame.iloc[train]).score(frame.iloc[test])
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(by_hand)
    folds = cross_val_score(SMRForecaster(**TINY, horizon=6.0), frame, cv=cv, error_score="raise")
    assert folds.shape == (2,) and np.isfinite(folds).all()


def test_the_forecast_score_is_minus_the_mean_scaled_mae():
    frame = irregular_frame(n_series=5, n_obs=30).sort_values(["unique_id", "ds"])
    later = frame.groupby("unique_id").cumcount(ascending=False) < 4
    history, future = frame[~later], frame[later]
    model = SMRForecaster(**TINY, horizon=8.0).fit(history)
    pred = model.forecast(times=future[["unique_id", "ds"]])["S5"].to_numpy()
    scale = history.groupby("unique_id")["y"].apply(lambda y: np.abs(np.diff(y.to_numpy())).mean())
    scaled_error = np.abs(future["y"].to_numpy() - pred) / future["unique_id"].map(scale).to_numpy()
    expected = -pd.Series(scaled_error).groupby(future["unique_id"].to_numpy()).mean().mean()
    assert model.score(future) == pytest.approx(expected, rel=1e-12)
    assert naive_scales(model)["y"].to_dict() == pytest.approx(scale.to_dict())
    # the truth is read, never fed to the model: other values at the same rows move the score only
    assert model.score(future.assign(y=future["y"] + 1.0)) != pytest.approx(expected)
    shuffled = future.sample(frac=1.0, random_state=1)
    assert model.score(shuffled) == pytest.approx(expected, rel=1e-12)


def test_naive_scales_fall_back_to_the_median_series():
    frame = pd.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"],
                          "ds": [0.0, 1, 2] * 3 + [0.0], "y": [0.0, 1, 3, 5, 5, 5, 0, 4, 8, 1]})
    model = SMRForecaster(**TINY, validation_fraction=0.0).fit(frame)
    # a: 1.5, c: 4; b is constant and d has one observation: the median of a and c
    assert naive_scales(model)["y"].to_dict() == {"a": 1.5, "b": 2.75, "c": 4.0, "d": 2.75}


def test_score_errors_say_what_to_pass():
    frame = irregular_frame(n_series=3)
    model = SMRForecaster(**TINY).fit(frame)
    last = frame.groupby("unique_id")["ds"].max()
    future = pd.DataFrame({"unique_id": last.index, "ds": last.to_numpy() + 1.0, "y": 0.0})
    with pytest.raises(ValueError, match=r"call score\(X\) without y"):
        model.score(future, future["y"])
    with pytest.raises(ValueError, match=r"X lacks \['y'\]"):
        model.score(future.drop(columns="y"))
    with pytest.raises(ValueError, match="later rows of fitted series .*TimeCutoffSplit"):
        model.score(frame)  # the history itself
    regressor = SMRForecaster(**TINY).fit(frame.drop(columns="y").assign(x=1.0), frame["y"])
    with pytest.raises(ValueError, match="y is required"):
        regressor.score(frame.drop(columns="y").assign(x=1.0))


# ---------------------------------------------------------------- backtests
def test_a_backtest_is_a_fit_at_each_cutoff_forecasting_every_later_observation():
    frame = irregular_frame(n_series=5, n_obs=30)
    frame.loc[frame.index[:6], "y"] = np.nan  # unobserved rows are not scored
    model = SMRForecaster(**TINY, horizon=12.0)
    cutoffs, horizon = [15.0, 20.0], 4.0
    result = backtest(model, frame, horizon=horizon, cutoffs=cutoffs, level=[95, 80])
    assert list(result.columns) == ["unique_id", "ds", "cutoff", "y", "S5", "S5-lo-95", "S5-lo-80",
                                    "S5-hi-80", "S5-hi-95"]
    for cut in cutoffs:
        rows = result[result["cutoff"] == cut]
        fitted = clone(model).fit(frame[frame["ds"] <= cut])
        window = frame[(frame["ds"] > cut) & (frame["ds"] <= cut + horizon) & frame["y"].notna()]
        assert len(rows) == len(window)
        expected = fitted.forecast(times=window[["unique_id", "ds"]], level=[80, 95])
        got = rows.set_index(["unique_id", "ds"]).loc[list(zip(window["unique_id"], window["ds"]))]
        np.testing.assert_array_equal(got["y"].to_numpy(), window["y"].to_numpy())
        np.testing.assert_allclose(got["S5"].to_numpy(), expected["S5"].to_numpy())
        np.testing.assert_allclose(got["S5-hi-95"].to_numpy(), expected["S5-hi-95"].to_numpy())
    assert (result["S5-lo-95"] <= result["S5-lo-80"]).all()
    assert (result["S5-lo-80"] <= result["S5"]).all() and (result["S5"] <= result["S5-hi-80"]).all()


def test_a_backtest_without_refit_gives_the_later_rows_as_context():
    frame = irregular_frame(n_series=4, n_obs=30)
    model = SMRForecaster(**{**TINY, "epochs": 2}, horizon=8.0, validation_fraction=0.0)  # trains: no last-value floor
    result = backtest(model, frame, horizon=3.0, cutoffs=[14.0, 18.0], refit=False)
    fitted = clone(model).fit(frame[frame["ds"] <= 14.0])
    context = frame[(frame["ds"] > 14.0) & (frame["ds"] <= 18.0)]
    second = result[result["cutoff"] == 18.0]
    expected = fitted.forecast(times=second[["unique_id", "ds"]], context=context)
    np.testing.assert_allclose(second["S5"].to_numpy(), expected["S5"].to_numpy())
    refit = backtest(model, frame, horizon=3.0, cutoffs=[14.0, 18.0])
    assert not np.allclose(refit.loc[refit["cutoff"] == 18.0, "S5"].to_numpy(), second["S5"].to_numpy())


def test_a_datetime_backtest_keeps_the_time_zone_and_quantile_columns():
    frame = irregular_frame(n_series=4, n_obs=30, start="2024-03-30")
    frame["ds"] = frame["ds"].dt.tz_localize("Europe/Paris", nonexistent="shift_forward")
    model = SMRForecaster(**TINY, horizon="12h", loss="quantile", quantiles=[0.25, 0.75])
    result = backtest(model, frame, horizon="6h", n_cutoffs=2)
    cuts = TimeCutoffSplit(horizon="6h", n_cutoffs=2).cutoffs_for(frame)
    assert list(pd.unique(result["cutoff"])) == cuts and str(result["cutoff"].dt.tz) == "Europe/Paris"
    assert list(result.columns)[-3:] == ["S5_ql0.25", "S5_ql0.5", "S5_ql0.75"]
    np.testing.assert_array_equal(result["S5"], result["S5_ql0.5"])
    assert ((result["ds"] > result["cutoff"]) & (result["ds"] <= result["cutoff"] + pd.Timedelta("6h"))).all()


def test_backtest_refuses_an_estimator_without_forecast():
    pipe = make_pipeline(StandardScaler(), SMRForecaster(**TINY))
    with pytest.raises(TypeError, match="cross_val_score"):
        backtest(pipe, irregular_frame(), horizon=2.0, n_cutoffs=1)


def test_utilsforecast_evaluate_reads_the_backtest_frame():
    evaluation = pytest.importorskip("utilsforecast.evaluation")
    losses = pytest.importorskip("utilsforecast.losses")
    frame = irregular_frame(n_series=4, n_obs=30)
    result = backtest(SMRForecaster(**TINY, horizon=8.0), frame, horizon=3.0, cutoffs=[12.0], level=[80])
    # level= makes evaluate look for the interval columns <model>-lo-80 / <model>-hi-80 by name
    scores = evaluation.evaluate(result.drop(columns="cutoff"), metrics=[losses.mae], models=["S5"], level=[80])
    mae = scores[scores["metric"] == "mae"].set_index("unique_id")["S5"]
    expected = (result["y"] - result["S5"]).abs().groupby(result["unique_id"]).mean()
    pd.testing.assert_series_equal(mae.sort_index(), expected.sort_index(), check_names=False)
    covered = losses.coverage(result, models=["S5"], level=80)
    covered = covered.set_index("unique_id") if "unique_id" in covered.columns else covered  # versions differ
    inside = ((result["y"] >= result["S5-lo-80"]) & (result["y"] <= result["S5-hi-80"]))
    pd.testing.assert_series_equal(covered["S5"].sort_index(), inside.groupby(result["unique_id"]).mean().sort_index(),
                                   check_names=False, check_dtype=False)


# ---------------------------------------------------------------- ergonomics
def test_a_single_series_needs_no_id_column():
    frame = irregular_frame(n_series=1, n_obs=60)
    alone = frame.drop(columns="unique_id")
    model = SMRForecaster(**TINY, id_col=None, horizon=8.0).fit(alone)
    same = SMRForecaster(**TINY, horizon=8.0).fit(frame)
    future = model.forecast(h=3, level=[80])
    assert list(future.columns) == ["ds", "S5", "S5-lo-80", "S5-hi-80"]
    np.testing.assert_array_equal(future["S5"], same.forecast(h=3)["S5"])  # the same model as with a constant id
    at = model.forecast(times=future[["ds"]])
    np.testing.assert_array_equal(at["S5"], future["S5"])
    result = backtest(model, alone, horizon=3.0, n_cutoffs=2)
    assert list(result.columns) == ["ds", "cutoff", "y", "S5"]
    early = alone[alone["ds"] <= 40.0]
    assert np.isfinite(clone(model).fit(early).score(alone[(alone["ds"] > 40.0) & (alone["ds"] <= 44.0)]))
    with pytest.raises(ValueError, match="the series has a query at or before its last observation"):
        model.forecast(times=alone[["ds"]].head(2))
    with pytest.raises(ValueError, match="or id_col=None for a single series"):
        SMRForecaster(**TINY).fit(alone)


def test_forecast_mode_through_a_pipeline_scores_and_predicts_in_the_transformed_units():
    """Transformers in front work when the id and time ride in the index: fit, score (so
    GridSearchCV on time cut-offs), and predict on future rows that carry the value columns (NaN)."""
    frame = irregular_frame(n_series=5, n_obs=30).set_index(["unique_id", "ds"]).sort_index()
    scale = ColumnTransformer([("scale", StandardScaler(), ["y"])], verbose_feature_names_out=False)
    pipe = make_pipeline(scale.set_output(transform="pandas"), SMRForecaster(**TINY, horizon=6.0))
    search = GridSearchCV(pipe, {"smrforecaster__d_model": [4, 8]}, cv=TimeCutoffSplit(horizon=3.0, n_cutoffs=2),
                          error_score="raise").fit(frame)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    pipe.fit(frame)
    last = frame.reset_index().groupby("unique_id")["ds"].max()
    queries = pd.DataFrame({"unique_id": last.index, "ds": last.to_numpy() + 1.0, "y": np.nan})
    pred = pipe.predict(queries.set_index(["unique_id", "ds"]))
    direct = pipe[-1].forecast(times=queries[["unique_id", "ds"]])
    np.testing.assert_allclose(pred["y"].to_numpy(), direct["S5"].to_numpy())  # predict mirrors y
    fitted_scaler = pipe[0].named_transformers_["scale"]
    back = pred["y"].to_numpy() * fitted_scaler.scale_[0] + fitted_scaler.mean_[0]
    assert np.abs(back - frame.groupby("unique_id")["y"].last().to_numpy()).max() < 3 * frame["y"].std()


def test_a_pipeline_that_drops_the_id_and_time_gets_an_error_saying_what_to_do():
    frame = irregular_frame(n_series=3)  # id and time as columns: a ColumnTransformer drops them
    scale = ColumnTransformer([("scale", StandardScaler(), ["y"])]).set_output(transform="pandas")
    with pytest.raises(ValueError, match=r"no column or index level 'unique_id'.*put the id and time in the index"):
        make_pipeline(scale, SMRForecaster(**TINY)).fit(frame)


def test_forecasting_past_the_trained_horizon_warns_in_time_units():
    frame = irregular_frame(n_series=3, n_obs=20, start="2024-01-01")
    model = SMRForecaster(**TINY, horizon="2h").fit(frame)
    last = frame.groupby("unique_id")["ds"].max()
    lag = last.max() - last  # the series that ended within the horizon of the panel's last time stretch training
    assert model.horizon_ == (pd.Timedelta("2h") + lag[lag <= pd.Timedelta("30min")].max()).value
    recent = lag.index[lag <= pd.Timedelta("30min")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forecast(times=pd.DataFrame({"unique_id": recent, "ds": last.max() + pd.Timedelta("2h")}))
    if len(recent) < len(lag):  # a series that ended long before: its forecasts are past what training covered
        stale = pd.DataFrame({"unique_id": lag.index[lag > pd.Timedelta("30min")], "ds": last.max() + pd.Timedelta("2h")})
        with pytest.warns(UserWarning, match="ended well before the panel's last time"):
            model.forecast(times=stale)
    far = pd.DataFrame({"unique_id": last.index, "ds": last.max() + pd.Timedelta("5h")})
    with pytest.warns(UserWarning, match=r"up to 0 days 05:00:00 after the panel's last time, but horizon='2h'"):
        model.forecast(times=far)
    with pytest.warns(UserWarning, match="horizon='2h'"):  # a backtest longer than the trained horizon
        backtest(model, frame, horizon="4h", n_cutoffs=1)


def test_a_parallel_backtest_equals_the_serial_one():
    """n_jobs=2 fits the cut-offs in two processes; the rows, their order and the forecasts are the serial ones."""
    from smr_ts.datasets import make_oscillators

    df = make_oscillators(n_series=6, n_obs=30, random_state=0)
    model = SMRForecaster(d_model=8, state_size=8, epochs=1, horizon=3.0, random_state=0)
    serial = backtest(model, df, horizon=2.0, n_cutoffs=3, level=[80])
    parallel = backtest(model, df, horizon=2.0, n_cutoffs=3, level=[80], n_jobs=2)
    assert serial["cutoff"].nunique() == 3
    pd.testing.assert_frame_equal(parallel, serial, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="n_jobs"):
        backtest(model, df, horizon=2.0, n_cutoffs=3, n_jobs="two")


def test_utilsforecast_scores_each_cut_off_against_its_own_training_rows():
    """utilsforecast >= 0.2.15 groups by `cutoff` and scales MASE by the training rows up to each cut-off: the
    backtest frame, cutoff kept, gives per-cut-off MAE, MASE and coverage equal to ours by hand."""
    from functools import partial

    evaluation = pytest.importorskip("utilsforecast.evaluation")
    losses = pytest.importorskip("utilsforecast.losses")
    frame = irregular_frame(n_series=3, n_obs=40)
    result = backtest(SMRForecaster(**TINY, horizon=8.0), frame, horizon=4.0, cutoffs=[14.0, 20.0], level=[80])
    scores = evaluation.evaluate(result, metrics=[losses.mae, partial(losses.mase, seasonality=1), losses.coverage],
                                 models=["S5"], level=[80], train_df=frame)
    assert set(scores["cutoff"]) == {14.0, 20.0}
    mae = scores[scores["metric"] == "mae"].set_index(["unique_id", "cutoff"])["S5"]
    errors = (result["y"] - result["S5"]).abs().groupby([result["unique_id"], result["cutoff"]]).mean()
    pd.testing.assert_series_equal(mae.sort_index(), errors.sort_index(), check_names=False)
    mase = scores[scores["metric"] == "mase"].set_index(["unique_id", "cutoff"])["S5"]
    for (uid, cutoff), value in mase.items():  # the in-sample naive MAE of the rows up to that cut-off
        seen = frame[(frame["unique_id"] == uid) & (frame["ds"] <= cutoff)].sort_values("ds")["y"]
        assert value == pytest.approx(errors[(uid, cutoff)] / seen.diff().abs().mean(), rel=1e-9)
    assert scores["metric"].str.startswith("coverage").any()


def test_utilsforecast_plot_series_draws_the_backtest_with_its_interval():
    plotting = pytest.importorskip("utilsforecast.plotting")
    pytest.importorskip("matplotlib")
    frame = irregular_frame(n_series=2, n_obs=30, start="2024-01-01")  # plot_series wants timestamps or integers
    result = backtest(SMRForecaster(**TINY, horizon="6h"), frame, horizon="3h", n_cutoffs=1, level=[80])
    fig = plotting.plot_series(frame, result.drop(columns="cutoff"), models=["S5"], level=[80])
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert "S5" in labels and "y" in labels
    assert any(len(ax.collections) for ax in fig.axes)  # the interval's band


def test_the_backtest_frame_merges_with_a_statsforecast_cross_validation():
    """Same cut-offs, same keys: statsforecast's cross_validation rows and ours line up on (unique_id, ds, cutoff, y)
    without renaming (statsforecast is not a dependency: skipped where it is not installed)."""
    pytest.importorskip("statsforecast")
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    df = pd.concat([pd.DataFrame({"unique_id": uid, "ds": days, "y": rng.normal(size=40).cumsum()})
                    for uid in ("a", "b")], ignore_index=True)
    theirs = StatsForecast(models=[Naive()], freq="D").cross_validation(df=df, h=3, n_windows=2, step_size=3)
    ours = backtest(SMRForecaster(**TINY, horizon="3D"), df, horizon="3D", cutoffs=sorted(theirs["cutoff"].unique()))
    both = theirs.merge(ours, on=["unique_id", "ds", "cutoff", "y"], validate="one_to_one")
    assert len(both) == len(theirs) == len(ours) == 2 * 2 * 3
    assert {"Naive", "S5"} <= set(both.columns)


def test_utilsforecast_scaled_crps_reads_the_quantile_columns_of_a_backtest():
    losses = pytest.importorskip("utilsforecast.losses")
    frame = irregular_frame(n_series=3, n_obs=40)
    result = backtest(SMRForecaster(**TINY, horizon=8.0, loss="quantile", quantiles=[0.1, 0.5, 0.9]), frame,
                      horizon=4.0, cutoffs=[14.0, 20.0])
    columns = ["S5_ql0.1", "S5_ql0.5", "S5_ql0.9"]
    crps = losses.scaled_crps(result, models={"S5": columns}, quantiles=np.array([0.1, 0.5, 0.9]))
    assert set(crps["cutoff"]) == {14.0, 20.0} and np.isfinite(crps["S5"]).all() and (crps["S5"] > 0).all()
