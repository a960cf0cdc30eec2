"""The pendulum example and benchmark run end to end on a tiny generated set."""

import json
from pathlib import Path

import pytest

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]




def test_pendulum_example_runs_end_to_end(tmp_path, capsys, monkeypatch):
    example = load_script(ROOT / "examples" / "pendulum_regression.py")
    plot = tmp_path / "pred.png"
    out = example.main(["--n-train", "8", "--n-valid", "4", "--n-test", "4", "--epochs", "1", "--verbose", "0",
                        "--smr", "--seeds", "0", "1", "--plot", str(plot)])
    printed = capsys.readouterr().out
    assert out["name"] == "S5+SMR" and len(out["test_mse"]) == 2
    assert all(0 < m < 10 for m in out["test_mse"])
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    out = example.main(["--n-train", "8", "--n-valid", "4", "--n-test", "4", "--epochs", "1", "--verbose", "0",
                        "--backbone", "gru_dt", "--lr", "0.003", "--grad-clip", "1", "--plot", ""])
    assert out["name"] == "GRU-DT" and len(out["test_mse"]) == 1
    assert (out["model"].lr, out["model"].grad_clip, out["model"].ssm_lr) == (0.003, 1.0, 0.003)
    assert not list(empty.iterdir())  # --plot '' saved nothing
    assert "S5 paper, App. F.3, Table 9" in printed and "test MSE" in printed
    pytest.importorskip("matplotlib")
    assert plot.stat().st_size > 10_000


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
    assert "smr_ts s5+smr" in text and "Sampling shift" in text and "reduced budget" in text and "- a note" in text
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
    assert "| **smr_ts s5 (clip 0.5)** |" in report.read_text() and "clipped to norm 0.5" in report.read_text() and len(list((tmp_path / "parts").glob("*.log"))) == 4
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
    assert "| **smr_ts gru_dt** |" in text and "| **smr_ts gru_dt (clip 1)** |" in text
    assert "rows marked (clip 1): gradients clipped to norm 1" in text
    bench.main(base + ["--grad-clip", "1.0"])  # both are done: nothing is retrained
    assert json.loads(results.read_text()) == runs
    bench.main(base + ["--grad-clip", "1.0", "--lr", "0.003"])  # a third departure from the recipe: a third row
    assert [(r["lr"], r["grad_clip"]) for r in json.loads(results.read_text())][2:] == [(0.003, 1.0)]
    assert "| **smr_ts gru_dt (lr 0.003, clip 1)** |" in report.read_text()


def test_pendulum_probe_stops_the_full_schedule_early_and_tabulates_each_epoch(tmp_path):
    probe = load_script(ROOT / "benchmarks" / "pendulum_probe.py")
    out = tmp_path / "probe.md"
    probe.main(["--configs", "gru_dt", "--seeds", "0", "--variant", "recipe", "--variant", "lr=0.003,grad_clip=1",
                "--stop-after", "2", "--epochs", "50", "--n-train", "6", "--n-valid", "3", "--n-test", "3",
                "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gru_dt |")]
    assert len(rows) == 4  # two probes, then two summary rows
    assert "lr 0.003, grad_clip 1" in rows[1] and rows[0].count("(") == 2  # two epochs, each with its gradient norm
    assert probe.parse_variant("grad_clip=0.5") == {"grad_clip": 0.5}
    with pytest.raises(Exception, match="variant"):
        probe.parse_variant("momentum=0.9")
