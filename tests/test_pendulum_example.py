"""The pendulum example and benchmark run end to end on a tiny generated set."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from _pages import bullets, headings, items, numbers, row, table
from _scripts import load_script
from smr_ts.datasets import make_pendulum

ROOT = Path(__file__).resolve().parents[1]


def test_pendulum_example_runs_end_to_end(tmp_path, capsys, monkeypatch):
    example = load_script(ROOT / "examples" / "pendulum_regression.py")
    plot = tmp_path / "pred.png"
    sizes = ["--n-train", "8", "--n-valid", "4", "--n-test", "4", "--epochs", "1", "--verbose", "0"]
    out = example.main(sizes + ["--smr", "--seeds", "0", "1", "--plot", str(plot)])
    printed = capsys.readouterr().out
    assert out["name"] == "S5+SMR" and len(out["test_mse"]) == 2
    # The metric, recomputed here: MSE of (sin, cos) over every test frame, of the returned (last) model.
    data = make_pendulum(n_train=8, n_valid=4, n_test=4, seed=0)
    X_test, y_test = data.to_frame("test")
    _, y_train = data.to_frame("train")
    mse = float(np.mean((out["model"].predict(X_test).to_numpy() - y_test.to_numpy()) ** 2))
    assert out["test_mse"][-1] == pytest.approx(mse, rel=1e-12)
    # one epoch on 8 sequences learns little, but is not far off predicting the training mean
    assert mse < 2 * float(np.mean((y_test.to_numpy() - y_train.to_numpy().mean(0)) ** 2))
    for seed, value in zip((0, 1), out["test_mse"]):
        assert f"S5+SMR seed {seed}: test MSE {value * 1e3:.2f}e-3" in printed
    mean, std = np.mean(out["test_mse"]) * 1e3, np.std(out["test_mse"]) * 1e3
    assert re.search(rf"S5\+SMR \(smr_ts, this run: 8 train seqs, 1 epochs\)\s+{mean:.2f} \+- {std:.2f}\s+2", printed)
    assert "S5 paper, App. F.3, Table 9" in printed and "3.41 +- 0.27" in printed
    assert "each 50 frames observed at irregular times among frames 0-99" in printed
    assert "\nrecipe: S5's\n" in printed  # S5 keeps the published recipe

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    out = example.main(sizes + ["--backbone", "gru_dt", "--lr", "0.003", "--grad-clip", "1", "--plot", ""])
    printed = capsys.readouterr().out
    assert out["name"] == "GRU-DT" and len(out["test_mse"]) == 1
    assert (out["model"].lr, out["model"].grad_clip, out["model"].ssm_lr) == (0.003, 1.0, 0.003)
    assert not list(empty.iterdir())  # --plot '' saved nothing
    # one seed has no spread: no "+- 0.00"
    row = next(line for line in printed.splitlines() if line.startswith("GRU-DT (smr_ts"))
    assert f"{out['test_mse'][0] * 1e3:.2f} (1 seed)" in row and "+-" not in row
    pytest.importorskip("matplotlib")
    assert plot.stat().st_size > 10_000


def test_pendulum_example_trains_each_backbone_with_its_chosen_settings_unless_asked_not_to(capsys):
    example = load_script(ROOT / "examples" / "pendulum_regression.py")
    sizes = ["--n-train", "4", "--n-valid", "2", "--n-test", "2", "--epochs", "1", "--verbose", "0", "--plot", ""]
    out = example.main(sizes + ["--backbone", "s6", "--smr"])
    assert (out["model"].grad_clip, out["model"].lr) == (1.0, 0.012)
    assert "recipe: S5's, with S6+SMR's chosen grad_clip 1\n" in capsys.readouterr().out
    out = example.main(sizes + ["--backbone", "s6", "--smr", "--s5-recipe"])
    assert (out["model"].grad_clip, out["model"].lr) == (None, 0.012)
    assert "recipe: S5's\n" in capsys.readouterr().out
    out = example.main(sizes + ["--backbone", "gru_dt", "--grad-clip", "2"])  # an explicit setting wins
    assert (out["model"].grad_clip, out["model"].lr) == (2.0, 0.003)


def test_pendulum_plot_has_a_title_with_the_mse_a_legend_for_the_shades_and_frames_on_x(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    example = load_script(ROOT / "examples" / "pendulum_regression.py")
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    out = example.main(["--n-train", "8", "--n-valid", "4", "--n-test", "4", "--epochs", "1", "--verbose", "0",
                        "--plot", str(tmp_path / "p.png")])
    (fig,) = figures
    assert fig._suptitle.get_text() == f"S5, seed 0: test MSE {out['test_mse'][0] * 1e3:.2f}e-3 (8 training sequences, 1 epochs)"
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "observed frame of pure noise (f = 0)" in labels and "predicted" in labels
    bottom = fig.axes[-1]
    assert "time in frames" in bottom.get_xlabel() and "50 of frames 0-99" in bottom.get_xlabel()
    assert bottom.get_xlim() == (-0.5, 99.5)


def test_pendulum_benchmark_writes_its_report_and_resumes(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    results, report = tmp_path / "runs.json", tmp_path / "new_dir" / "pendulum.md"
    argv = ["--configs", "s5+smr", "gru_dt", "--seeds", "0", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
            "--n-test", "3", "--shift", "--note", "a note", "--results", str(results), "--out", str(report)]
    bench.main(argv)
    runs = json.loads(results.read_text())
    assert [r["config"] for r in runs] == ["s5+smr", "gru_dt"]
    assert set(runs[0]["shift"]) == {label for label, _, _ in bench.SHIFTS} and "shift" not in runs[1]
    text = report.read_text()
    assert headings(text) == ["# Pendulum regression results", "## Sampling shift"]
    mse = runs[0]["test_mse"] * 1e3  # one seed: its value, and no made-up spread
    ours = row(table(text), model="**smr_ts s5+smr**")
    assert ours["test MSE x 1e-3"] == f"{mse:.2f} (1 seed)" and ours["seeds"] == "1"
    assert ours["parameters"] == f"{runs[0]['parameters']:,}" and ours["best epoch"] == str(runs[0]["best_epoch"])
    assert "**smr_ts gru_dt**" in [r["model"] for r in table(text)]
    # the shift table: the SMR run only, a column per test set, the training rate's equal to the test MSE
    [shift] = table(text, "## Sampling shift")
    assert list(shift)[1:] == [label for label, _, _ in bench.SHIFTS] and shift["model"].startswith("smr_ts s5+smr")
    assert numbers(shift["rate 0.5 (train)"]) == [float(f"{mse:.2f}"), 1]
    assert numbers(items(text)["budget"][0])[:4] == [6, 3, 3, 1]  # sizes and epochs as run
    assert bullets(text, "Notes:") == ["a note"] and "--note" not in items(text)["command"][0]
    bench.main(argv)  # finished runs are skipped, not repeated
    assert len(json.loads(results.read_text())) == 2


def test_pendulum_benchmark_parallel_jobs_merge_into_one_report(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    results, report = tmp_path / "runs.json", tmp_path / "pendulum.md"
    argv = ["--configs", "s5", "gru_dt", "--seeds", "0", "1", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
            "--n-test", "3", "--jobs", "2", "--grad-clip", "0.5", "--progress", "--results", str(results), "--out", str(report)]
    bench.main(argv)
    runs = json.loads(results.read_text())
    assert sorted((r["config"], r["seed"]) for r in runs) == [("gru_dt", 0), ("gru_dt", 1), ("s5", 0), ("s5", 1)]
    assert all(len(r["valid_history"]) == len(r["grad_norm_history"]) == r["epochs_run"] == 1 and r["grad_clip"] == 0.5
               for r in runs)
    serial = tmp_path / "serial.json"
    bench.main(["--configs", "s5", "--seeds", "1", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
                "--n-test", "3", "--grad-clip", "0.5", "--results", str(serial), "--no-report"])
    same = [r for r in runs if (r["config"], r["seed"]) == ("s5", 1)][0]
    assert json.loads(serial.read_text())[0]["test_mse"] == pytest.approx(same["test_mse"], rel=1e-6)
    merged = tmp_path / "merged.json"  # runs from elsewhere are merged, and nothing is retrained
    bench.main(["--configs", "s5", "gru_dt", "--seeds", "1", "2", "--epochs", "1", "--merge", str(serial),
                "--results", str(merged), "--report-only", "--out", str(tmp_path / "merged.md")])
    assert json.loads(merged.read_text()) == json.loads(serial.read_text())
    text = report.read_text()
    ours = [r for r in table(text) if "smr_ts" in r["model"]]  # ordered by test MSE, among the published rows
    assert {r["model"] for r in ours} == {"**smr_ts s5 (clip 0.5)**", "**smr_ts gru_dt (clip 0.5)**"}
    assert [numbers(r["test MSE x 1e-3"])[0] for r in ours] == sorted(numbers(r["test MSE x 1e-3"])[0] for r in ours)
    assert "clip 0.5" in items(text)["budget"][0] and len(list((tmp_path / "parts").glob("*.log"))) == 4
    assert all("epoch" in log.read_text() for log in (tmp_path / "parts").glob("*.log"))  # --progress reached them


def test_pendulum_benchmark_keeps_clipped_and_recipe_runs_apart(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    results, report = tmp_path / "runs.json", tmp_path / "pendulum.md"
    base = ["--configs", "gru_dt", "--seeds", "0", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
            "--n-test", "3", "--results", str(results), "--out", str(report)]
    bench.main(base)
    bench.main(base + ["--grad-clip", "1.0"])  # the same config and seed, clipped: a second run, not a replacement
    runs = json.loads(results.read_text())
    assert [r["grad_clip"] for r in runs] == [None, 1.0]
    text = report.read_text()
    assert {r["model"] for r in table(text) if "smr_ts" in r["model"]} == {"**smr_ts gru_dt**", "**smr_ts gru_dt (clip 1)**"}
    assert "clip 1" in items(text)["budget"][0]  # the departure is stated with the budget
    bench.main(base + ["--grad-clip", "1.0"])  # both are done: nothing is retrained
    assert json.loads(results.read_text()) == runs
    bench.main(base + ["--grad-clip", "1.0", "--lr", "0.003"])  # a third departure from the recipe: a third row
    assert [(r["lr"], r["grad_clip"]) for r in json.loads(results.read_text())][2:] == [(0.003, 1.0)]
    assert "**smr_ts gru_dt (lr 0.003, clip 1)**" in [r["model"] for r in table(report.read_text())]


def test_pendulum_probe_stops_the_full_schedule_early_and_tabulates_each_epoch(tmp_path):
    probe = load_script(ROOT / "benchmarks" / "pendulum_probe.py")
    out = tmp_path / "probe.md"
    probe.main(["--configs", "gru_dt", "--seeds", "0", "--variant", "recipe", "--variant", "lr=0.003,grad_clip=1",
                "--variant", "tuned", "--stop-after", "2", "--epochs", "50", "--n-train", "6", "--n-valid", "3", "--n-test", "3",
                "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gru_dt |")]
    assert len(rows) == 6  # three probes, then three summary rows
    assert "lr 0.003, grad_clip 1" in rows[1] and rows[0].count("(") == 2  # two epochs, each with its gradient norm
    # the tuned variant is GRU-dt's chosen settings, so it trains exactly as the explicit one
    assert "| tuned (lr 0.003, grad_clip 1) |" in rows[2] and rows[2].split("|")[4:6] == rows[1].split("|")[4:6]
    assert probe.parse_variant("grad_clip=0.5") == {"grad_clip": 0.5}
    assert probe.parse_variant("tuned") == {"tuned": True}
    assert probe.describe({"tuned": True}, "s6+smr") == "tuned (grad_clip 1)"
    assert probe.describe({"tuned": True}, "s5") == "tuned (recipe)"
    with pytest.raises(Exception, match="variant"):
        probe.parse_variant("momentum=0.9")
