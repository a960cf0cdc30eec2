"""Covariates: future-known columns read at the query, past-only columns, static columns."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.covariates import TIME_CONSTANTS, future_features, future_track, rows_at_or_before, _sums_at
from smr_ts.model_selection import backtest


def doses(n_series=24, seed=0, tau=3.0):
    """A drug-like panel: doses (rows of their own, ``y`` missing) at irregular times, and a concentration
    ``y = sum_i dose_i * exp(-(t - t_i) / tau)`` measured at other irregular times, with noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_series):
        t_dose = np.sort(rng.uniform(0, 60, 8))
        amount = rng.choice([1.0, 2.0, 4.0], 8)
        t_obs = np.sort(rng.uniform(1, 62, 25))
        effect = (amount[None, :] * np.exp(-(t_obs[:, None] - t_dose[None, :]) / tau) * (t_obs[:, None] >= t_dose)).sum(1)
        y = effect + 0.05 * rng.normal(size=len(t_obs))
        frames += [pd.DataFrame({"unique_id": f"p{s}", "ds": t_dose, "y": np.nan, "dose": amount}),
                   pd.DataFrame({"unique_id": f"p{s}", "ds": t_obs, "y": y, "dose": np.nan})]
    return pd.concat(frames).sort_values(["unique_id", "ds"], ignore_index=True)


def split(frame, cut=45.0):
    train, later = frame[frame["ds"] <= cut], frame[frame["ds"] > cut]
    return train.reset_index(drop=True), later.reset_index(drop=True)


SMALL = dict(d_model=16, state_size=8, n_layers=1, epochs=25, random_state=0, horizon=25.0, validation_by="time")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(-3, 3)), min_size=1, max_size=12), st.floats(-5, 60))
def test_leaky_sums_equal_the_direct_sum(rows, t):
    """The recursive sums at any time equal (1 / tau) * sum of x_i * exp(-(t - t_i) / tau) over t_i <= t."""
    times = np.array(sorted(r[0] for r in rows))
    values = np.array([r[1] for r in sorted(rows)])[None, :, None]

    class Layout:
        time_unit, future_center, future_spread, future_rms = 2.0, [0.0], [1.0], [1.0]

    track = future_track(times[None], values, np.array([len(times)]), Layout)
    got = _sums_at(track, np.array([0]), np.array([t]), Layout.time_unit)[0, 0]
    taus = np.asarray(TIME_CONSTANTS)
    past = times <= t
    expect = (values[0, past, 0][:, None] * np.exp(-(t - times[past])[:, None] / (taus * 2.0))).sum(0) / taus
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-12)
    assert rows_at_or_before(track.time, track.lengths, np.array([0]), np.array([t]))[0] == past.sum() - 1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.one_of(st.none(), st.floats(-3, 3))), min_size=1, max_size=12),
       st.floats(0, 60), st.lists(st.floats(-10, 60), min_size=1, max_size=3))
def test_seasonal_changes_equal_the_latest_known_values(rows, t, past_times):
    """A future column's seasonal-change feature is its latest known value at the query minus the mean of
    its latest known values at the season times (those with one), 0 when either is unknown."""
    rows = sorted(rows, key=lambda r: r[0])
    times = np.array([r[0] for r in rows])
    values = np.array([np.nan if r[1] is None else r[1] for r in rows])[None, :, None]

    class Layout:
        time_unit, future_center, future_spread, future_rms, future_changes = 1.0, [0.0], [1.0], [1.0], True

    def latest(at):
        known = [v for u, v in zip(times, values[0, :, 0]) if u <= at and np.isfinite(v)]
        return known[-1] if known else np.nan

    track = future_track(times[None], values, np.array([len(times)]), Layout)
    seasons = [np.array(past_times)[:, None]]  # one period, its season times (m, P=1)
    got = future_features(track, Layout, np.array([0]), np.array([t]), np.array([t]), np.ones(1), seasons=seasons)
    past = [latest(u) for u in past_times if np.isfinite(latest(u))]
    expect = latest(t) - np.mean(past) if past and np.isfinite(latest(t)) else 0.0
    assert got.shape[1] == 2 + 2 * len(TIME_CONSTANTS) + 1
    np.testing.assert_allclose(got[0, -1], expect, rtol=1e-5, atol=1e-5)


def test_a_query_at_a_known_row_reads_that_row_and_between_rows_the_one_before():
    """The deterministic edge the random tests above rarely draw: a query exactly at a known row's time reads
    that row (its value, age 0, its value in the sums), one just before it reads the row before. Catches a
    search for the last row strictly before the query (one row early at ties)."""
    class Layout:
        time_unit, future_center, future_spread, future_rms, future_changes = 1.0, [0.0], [1.0], [1.0], False

    times, values = np.array([0.0, 2.0, 5.0]), np.array([1.0, -2.0, 3.0])
    track = future_track(times[None], values[None, :, None], np.array([3]), Layout)
    t = np.array([2.0, 3.0, 5.0, 2.0 - 1e-9, -1.0])
    series = np.zeros(len(t), int)
    np.testing.assert_array_equal(rows_at_or_before(track.time, track.lengths, series, t), [1, 1, 2, 0, -1])
    got = future_features(track, Layout, series, t, t, np.ones(len(t)))
    np.testing.assert_allclose(got[:, 0], [-2.0, -2.0, 3.0, 1.0, 0.0])  # the latest value (0: none yet)
    age = [0.0, np.log1p(1.0), 0.0, np.log1p(2.0 - 1e-9), -1.0]  # log1p(time since it), -1: never known
    np.testing.assert_allclose(got[:, 1], age, atol=1e-7)
    taus = np.asarray(TIME_CONSTANTS)
    for i, ti in enumerate(t):
        past = times <= ti
        expect = (values[past][:, None] * np.exp(-(ti - times[past])[:, None] / taus)).sum(0) / taus
        np.testing.assert_allclose(got[i, 2 : 2 + len(taus)], expect, rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def fitted():
    train, later = split(doses())
    return SMRForecaster(future_cols=["dose"], **SMALL).fit(train), train, later


def test_planned_doses_lower_the_error(fitted):
    """The gain the covariates exist for: the same model without the dose column forecasts worse."""
    model, train, later = fitted
    without = SMRForecaster(**SMALL).fit(train.drop(columns="dose"))
    truth = later["y"].notna().to_numpy()
    with_dose = model.forecast(times=later[["unique_id", "ds", "dose"]])["S5"].to_numpy()[truth]
    blind = without.forecast(times=later[["unique_id", "ds"]])["S5"].to_numpy()[truth]
    y = later["y"].to_numpy()[truth]
    assert model.target_names_ == ["y"]  # a future-known column is an input, not a target
    assert np.abs(with_dose - y).mean() < 0.7 * np.abs(blind - y).mean()


def test_a_query_reads_known_values_at_or_before_it_only(fitted):
    model, _, later = fitted
    query = later[["unique_id", "ds", "dose"]]
    base = model.forecast(times=query)["S5"].to_numpy()
    times = query["ds"].to_numpy()
    t0 = np.median(times)
    changed = query.assign(dose=np.where(times > t0, 9.0, query["dose"]))  # later plans change
    after = model.forecast(times=changed)["S5"].to_numpy()
    np.testing.assert_array_equal(after[times <= t0], base[times <= t0])
    assert not np.allclose(after[times > t0], base[times > t0])
    # a query reads its own row's known value: one dose changed moves the forecast at that very row
    own = np.flatnonzero(query["dose"].notna().to_numpy() & (times > t0))
    for i in own[:3]:
        moved = query.copy()
        moved.iloc[i, moved.columns.get_loc("dose")] = query["dose"].iloc[i] + 5.0
        out = model.forecast(times=moved)["S5"].to_numpy()
        mine = query["unique_id"].to_numpy() == query["unique_id"].iloc[i]
        assert abs(out[i] - base[i]) > 1e-4
        np.testing.assert_array_equal(out[mine & (times < times[i])], base[mine & (times < times[i])])


def test_future_columns_are_required_in_query_rows(fitted):
    model, _, later = fitted
    with pytest.raises(ValueError, match=r"future-known columns \['dose'\]"):
        model.forecast(times=later[["unique_id", "ds"]])
    assert np.isfinite(model.forecast(h=2)["S5"]).all()  # h=: nothing known ahead, the history only


def test_past_only_columns_are_ignored_in_query_rows():
    train, later = split(doses(n_series=8))
    model = SMRForecaster(target_cols=["y"], **{**SMALL, "epochs": 2}).fit(train)  # "dose" is past-only
    query = later[["unique_id", "ds", "dose"]]
    a = model.forecast(times=query)
    b = model.forecast(times=query.assign(dose=100.0))
    pd.testing.assert_frame_equal(a[["unique_id", "ds", "S5"]], b[["unique_id", "ds", "S5"]])


def test_save_load_and_score_and_backtest_keep_covariates(fitted, tmp_path):
    model, train, later = fitted
    query = later[["unique_id", "ds", "dose"]]
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.forecast(times=query), model.forecast(times=query))
    assert np.isfinite(model.score(later))
    # score reads the test rows' doses: without them (NaN) it is another number
    assert model.score(later) != model.score(later.assign(dose=np.nan))
    frame = doses(n_series=8)
    result = backtest(SMRForecaster(future_cols=["dose"], **{**SMALL, "epochs": 2}), frame, horizon=10.0,
                      cutoffs=[40.0])
    assert result["y"].notna().all()  # dose-only rows are read as queries, not scored
    assert len(result) == int(((frame["ds"] > 40) & (frame["ds"] <= 50) & frame["y"].notna()).sum())


def static_panel(seed=0):
    """Two groups of series whose level drifts up or down by group: the group is a static input."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(16):
        group = "up" if s % 2 else "down"
        t = np.sort(rng.uniform(0, 40, 30))
        y = (1.0 if group == "up" else -1.0) * 0.5 * t + 0.1 * rng.normal(size=30)
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": t, "y": y, "group": group, "size": float(s)}))
    return pd.concat(frames, ignore_index=True)


def test_static_columns_and_a_static_frame_are_the_same_model():
    frame = static_panel()
    # floor=False: the statics reach the forecasts through the network, which a simple forecaster would replace
    kwargs = dict(d_model=8, state_size=8, n_layers=1, epochs=3, random_state=0, floor=False)
    a = SMRForecaster(static_cols=["group", "size"], **kwargs).fit(frame)
    table = frame.groupby("unique_id")[["group", "size"]].first()
    b = SMRForecaster(**kwargs).fit(frame.drop(columns=["group", "size"]), static=table)
    assert a.static_names_ == b.static_names_ == ["group", "size"] and a.target_names_ == ["y"]
    pd.testing.assert_frame_equal(a.forecast(h=3), b.forecast(h=3))
    # a new series given as context brings its statics; unseen categories encode as zeros
    new = frame[frame["unique_id"] == "s1"].assign(unique_id="new", group="sideways")
    out = a.forecast(h=2, context=new)
    assert np.isfinite(out["S5"]).all() and "new" in set(out["unique_id"])
    # update() keeps a new series' statics: its forecasts then equal the context forecast's
    expected = a.forecast(h=2, context=new.assign(group="up")).query("unique_id == 'new'")["S5"].to_numpy()
    unseen = out.query("unique_id == 'new'")["S5"].to_numpy()
    assert np.abs(expected - unseen).min() > 1e-4  # the group matters to this series' forecasts
    a.update(new.assign(group="up"))
    updated = a.forecast(h=2).query("unique_id == 'new'")["S5"].to_numpy()
    assert a.static_ids_[-1] == "new" and a.static_codes_[-1][1] == 1.0  # one-hot of "up" (levels: down, up)
    np.testing.assert_allclose(updated, expected, rtol=1e-5, atol=1e-5)


def test_the_level_block_comes_with_future_known_columns_only():
    frame = static_panel()
    kwargs = dict(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0)
    static = SMRForecaster(static_cols=["group"], **kwargs).fit(frame.drop(columns=["size"]))
    plain = SMRForecaster(**kwargs).fit(frame.drop(columns=["group", "size"]))
    future = SMRForecaster(future_cols=["size"], **kwargs).fit(frame.drop(columns=["group"]))
    assert static.layout_.target_moments == [] and len(future.layout_.target_moments) == 2
    # the static model reads exactly the plain model's features plus the diet-like one-hot
    assert static.layout_.n_query_features == plain.layout_.n_query_features + 2
    one = frame[frame["unique_id"] == "s1"].drop(columns=["group"])
    single = SMRForecaster(future_cols=["size"], **kwargs).fit(one)
    assert single.layout_.target_moments == []  # one series: its level against its own past only drifts


def test_a_static_column_must_be_constant_per_series():
    frame = static_panel()
    frame.loc[3, "group"] = "up" if frame.loc[3, "group"] == "down" else "down"
    with pytest.raises(ValueError, match="static column 'group' must hold one value per series"):
        SMRForecaster(static_cols=["group"], epochs=1).fit(frame)


@pytest.mark.parametrize("kwargs, match", [
    (dict(future_cols=["nope"]), r"future_cols: \['nope'\] are not columns"),
    (dict(future_cols=["size"], static_cols=["size"]), "both future_cols and static_cols"),
    (dict(target_cols=["y", "size"], future_cols=["size"]), "also covariates"),
    (dict(future_cols=[]), "non-empty list"),
])
def test_covariate_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SMRForecaster(epochs=1, **kwargs).fit(static_panel())


def test_covariates_are_for_forecasting():
    frame = static_panel()
    with pytest.raises(ValueError, match="for forecasting"):
        SMRForecaster(epochs=1, static_cols=["size"]).fit(frame[["unique_id", "ds", "size"]], frame["y"])


def test_the_vectorised_row_search_matches_searchsorted_per_series():
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


def test_y_is_the_default_target_and_the_other_columns_are_inputs(caplog):
    """A Nixtla-shaped frame with an extra numeric column trains on y alone (the column is a past-only input),
    says so in its INFO line, and a frame of one value column forecasts that column."""
    import logging

    frame = static_panel().drop(columns=["group", "size"]).assign(price=lambda f: f["y"].shift(1).fillna(0.0))
    with caplog.at_level(logging.INFO, logger="smr_ts"):
        model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0).fit(frame)
    assert model.target_names_ == ["y"] and model.value_columns_ == ["y", "price"]
    assert list(model.forecast(h=1).columns) == ["unique_id", "ds", "S5"]
    assert any("targets ['y']" in r.getMessage() and "past only ['price']" in r.getMessage() for r in caplog.records)
    both = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0,
                         target_cols=["y", "price"]).fit(frame)
    assert both.target_names_ == ["y", "price"]
    one = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, random_state=0).fit(
        frame.drop(columns="price").rename(columns={"y": "load"}))
    assert one.target_names_ == ["load"]
