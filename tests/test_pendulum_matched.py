"""The pendulum benchmark's collapse rule, training at another sample rate, and the matched-rate section of the page."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _scripts import load_script
from smr_ts.recipes import collapsed_seeds, pendulum_forecaster

ROOT = Path(__file__).resolve().parents[1]


def test_collapse_rule_reads_the_median_and_the_first_fifth_of_the_schedule():
    # over 2x the median collapses; exactly 2x does not
    assert collapsed_seeds([1.0, 1.0, 2.0], [50, 50, 50], epochs=100) == [False, False, False]
    assert collapsed_seeds([1.0, 1.0, 2.01], [50, 50, 50], epochs=100) == [False, False, True]
    # best epoch 19 of 100 is in the first 20 %, epoch 20 is not; 30 epochs: 0-5
    assert collapsed_seeds([1.0, 1.0, 1.0], [19, 20, 99], epochs=100) == [True, False, False]
    assert collapsed_seeds([1.0, 1.0], [5, 6], epochs=30) == [True, False]
    # the full-budget S6+SMR seed 0 of the page: best epoch 6, best valid 11.2e-3 against 2.7 and 2.5
    assert collapsed_seeds([11.23e-3, 2.67e-3, 2.54e-3], [6, 77, 79], epochs=100) == [True, False, False]


def test_configurations_name_the_time_aware_gate():
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    assert bench.config_settings("s5+smr+gaps") == {"backbone": "s5", "smr": True, "smr_use_gaps": True}
    assert bench.config_settings("s6+smr") == {"backbone": "s6", "smr": True}
    assert "s5+smr+gaps" not in bench.DEFAULT_CONFIGS  # run only when named
    model = pendulum_forecaster(**bench.config_settings("s6+smr+gaps"))
    assert (model.backbone, model.smr, model.smr_use_gaps) == ("s6", True, True)


def test_training_rate_is_a_setting_of_the_run_and_its_test_rate(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    results = tmp_path / "runs.json"
    base = ["--configs", "s5+smr+gaps", "--seeds", "0", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
            "--n-test", "3", "--shift", "--threads", "1", "--results", str(results), "--no-report"]
    bench.main(base + ["--train-rate", "0.25"])
    bench.main(base)  # rate 0.5: another run, not the same one skipped
    bench.main(base + ["--train-rate", "0.25"])  # done: nothing retrained
    runs = json.loads(results.read_text())
    assert [r["train_rate"] for r in runs] == [0.25, 0.5]
    assert runs[0]["test_mse"] == pytest.approx(runs[0]["shift"]["rate 0.25"], rel=1e-6)
    assert runs[1]["test_mse"] == pytest.approx(runs[1]["shift"]["rate 0.5 (train)"], rel=1e-6)
    assert runs[0]["test_mse"] != pytest.approx(runs[1]["test_mse"], rel=1e-3)
    assert (runs[0]["sizes"], runs[0]["epochs"]) == ([6, 3, 3], 1)


def test_tuned_runs_take_each_backbones_chosen_departures_and_are_runs_of_their_own(tmp_path, monkeypatch):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    monkeypatch.setitem(bench.PENDULUM_BACKBONE_SETTINGS, "gru_dt", {"lr": 0.005, "grad_clip": 2.0})
    results = tmp_path / "runs.json"
    base = ["--configs", "gru_dt", "s5", "--seeds", "0", "--epochs", "1", "--n-train", "6", "--n-valid", "3",
            "--n-test", "3", "--threads", "1", "--results", str(results), "--no-report"]
    bench.main(base)  # the recipe
    bench.main(base + ["--tuned"])  # gru_dt's departures: a new run; s5 has none, so its recipe run is done
    bench.main(base + ["--tuned", "--grad-clip", "0.5"])  # an explicit departure wins over the tuned one
    runs = json.loads(results.read_text())
    assert [(r["config"], r["lr"], r["grad_clip"]) for r in runs] == [
        ("gru_dt", None, None), ("s5", None, None), ("gru_dt", 0.005, 2.0), ("gru_dt", 0.005, 0.5), ("s5", None, 0.5)]


def _record(config, rate, seed, mse, best_epoch=20, best_valid=1e-3):
    labels = {"rate 0.25": mse[0], "rate 0.5 (train)": mse[1], "rate 0.75": mse[2], "rate 1.0": mse[3],
              "bursty 0.5": mse[4]}
    return {"config": config, "seed": seed, "lr": None, "grad_clip": None, "train_rate": rate,
            "sizes": [1000, 500, 500], "epochs": 30, "epochs_run": 30, "best_epoch": best_epoch,
            "best_valid_mse": best_valid, "test_mse": labels[{0.25: "rate 0.25", 0.5: "rate 0.5 (train)"}[rate]],
            "seconds_per_epoch": 10.0, "machine": "test machine", "shift": labels}


def _s5_runs():
    """S5 at rates 0.5 and 0.25, two seeds each; seed 1 at 0.25 collapsed (best epoch 3 of 30)."""
    return [_record("s5", 0.5, 0, [12e-3, 3e-3, 2e-3, 2e-3, 30e-3]),
            _record("s5", 0.5, 1, [14e-3, 3e-3, 2e-3, 2e-3, 30e-3]),
            _record("s5", 0.25, 0, [6e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
            _record("s5", 0.25, 1, [8e-3, 4e-3, 4e-3, 4e-3, 40e-3], best_epoch=3)]


def test_matched_section_computes_shift_penalties_and_smr_ratios_and_keeps_the_page(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    runs = [
        *_s5_runs(),
        _record("s5+smr", 0.5, 0, [10e-3, 1.5e-3, 2e-3, 2e-3, 45e-3]),
        _record("s5+smr", 0.25, 0, [5e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
    ]
    matched, page = tmp_path / "matched.json", tmp_path / "pendulum.md"
    matched.write_text(json.dumps(runs))
    page.write_text("# Pendulum regression results\n\nthe full table\n\n## Sampling shift\n\nthe shift table\n")
    argv = ["--matched", str(matched), "--out", str(page), "--full-runs", str(tmp_path / "none.json"),
            "--stability-runs", str(tmp_path / "none.json"), "--note", "SMR helps here"]
    bench.main(argv)
    text = page.read_text()
    assert text.startswith("# Pendulum regression results\n\nthe full table\n\n## Sampling shift\n\nthe shift table\n")
    lines = text.splitlines()
    # shift penalty at 0.25: mean(12, 14) / mean(6, 8) = 13 / 7; per seed 12/6 and 14/8
    assert f"| s5 | {13 / 7:.2f} (2.00, 1.75) |" in lines
    assert "| s5+smr | 2.00 (2.00) |" in lines
    # SMR at the matched rate: 5 / 7 at 0.25 (seed 0: 5/6), 1.5 / 3 at 0.5, bursty 45 / 30
    assert f"| s5+smr / s5 | {5 / 7:.2f} (0.83) | 0.50 (0.50) | 1.50 (1.50) |" in lines
    assert "| s5 | 0.25 | 0, 1 | **7.00 +- 1.00** | 4.00 +- 0.00 | 4.00 +- 0.00 | 4.00 +- 0.00 | 40.00 +- 0.00 | 20, 3 | 10.0 |" in lines
    assert any(line.startswith("| reduced | s5 (trained at rate 0.25) | 2 | 1 | 1 (best epoch 3") for line in lines)
    assert "| reduced | s5+smr | 1 | 0 | - |" in lines
    assert "- SMR helps here" in lines and "--note" not in text
    assert "1000/500/500 train/valid/test sequences, 30 epochs" in text

    bench.main(argv)  # written again: replaced, not appended
    assert page.read_text().count("## Matched-rate control") == 1

    # the main report, rewritten, keeps the section
    full = tmp_path / "full.json"
    full.write_text(json.dumps([{**_record("s5", 0.5, 0, [1e-3] * 5), "sizes": [6, 3, 3], "epochs": 1,
                                 "parameters": 10, "device": "cpu"}]))
    bench.main(["--results", str(full), "--report-only", "--out", str(page), "--epochs", "1", "--n-train", "6"])
    text = page.read_text()
    assert "the full table" not in text and text.count("## Matched-rate control") == 1 and "SMR helps here" in text

    runs.append({**_record("s6", 0.5, 0, [1e-3] * 5), "epochs": 100})  # another budget in the same file
    matched.write_text(json.dumps(runs))
    with pytest.raises(ValueError, match="mixes budgets"):
        bench.main(argv)


def test_other_backbones_runs_with_their_chosen_recipes_join_the_collapse_table_at_the_same_budget(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    matched, stability, page = tmp_path / "matched.json", tmp_path / "tuned.json", tmp_path / "pendulum.md"
    matched.write_text(json.dumps(_s5_runs()))
    tuned = [{**_record("gru_dt", 0.5, seed, [1e-3] * 5, best_epoch=best), "lr": 0.003, "grad_clip": 1.0}
             for seed, best in ((0, 25), (1, 4), (2, 28))]
    for r in tuned:
        del r["shift"]  # the recurrent baselines have no shift evaluation
    stability.write_text(json.dumps(tuned))
    argv = ["--matched", str(matched), "--out", str(page), "--full-runs", str(tmp_path / "none.json"),
            "--stability-runs", str(stability)]
    bench.main(argv)
    text = page.read_text()
    assert "| reduced | gru_dt (lr 0.003, clip 1) | 3 | 1 | 1 (best epoch 4, best valid 1.00e-3) |" in text
    assert "--configs gru_dt --seeds 0 1 2 --tuned --epochs 30 --n-train 1000" in text
    assert "other backbones with their chosen recipes: 1 of 3 runs flagged (gru_dt (lr 0.003, clip 1) seed 1); " \
           "best epochs 4-28." in text
    stability.write_text(json.dumps([{**r, "epochs": 100} for r in tuned]))  # another budget: refused
    with pytest.raises(ValueError, match="never mix budgets"):
        bench.main(argv)


def test_matched_notes_are_computed_from_the_runs(tmp_path):
    bench = load_script(ROOT / "benchmarks" / "pendulum.py")
    runs = [
        *_s5_runs(),
        _record("s5+smr", 0.5, 0, [10e-3, 1.5e-3, 2e-3, 2e-3, 45e-3]),
        _record("s5+smr", 0.5, 1, [5e-3, 1.5e-3, 2e-3, 2e-3, 45e-3]),
        _record("s5+smr", 0.25, 0, [8e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
        _record("s5+smr", 0.25, 1, [8e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
        _record("s6", 0.5, 0, [20e-3, 5e-3, 5e-3, 5e-3, 40e-3]),
    ]
    by = {}
    for r in runs:
        by.setdefault((r["config"], r["train_rate"]), {})[r["seed"]] = r
    notes = bench.matched_notes(by, epochs=30)
    text = "\n".join(notes)
    # what ran, and the missing cells of the grid, by configuration
    assert f"{len(runs)} runs" in notes[0] and "is 45 runs, of which 9 ran" in notes[0]
    assert "  - s6: rate 0.25, seeds 0, 1, 2; rate 0.5, seeds 1, 2; rate 1, seeds 0, 1, 2" in notes
    assert "  - s5: rate 0.25, seed 2; rate 0.5, seed 2; rate 1, seeds 0, 1, 2" in notes
    assert "  - s6+smr: rate 0.25, seeds 0, 1, 2; rate 0.5, seeds 0, 1, 2; rate 1, seeds 0, 1, 2" in notes
    # shift penalty: S5 13 / 7, above 1 on both seeds (2.00, 1.75) -> shift; S5+SMR 7.5 / 8, seeds 1.25 and 0.62
    assert f"  - s5 at r = 0.25: {13 / 7:.2f}, above 1; above 1 on every one of 2 seeds (per seed 1.75-2.00)." in notes
    assert f"  - s5+smr at r = 0.25: {7.5 / 8:.2f}, below 1; above 1 on 1 of 2 seeds (per seed 0.62-1.25)" in text
    shift = next(n for n in notes if n.startswith("**Shift penalty**"))
    assert "training at the test rate recovers: s5 at 0.25." in shift
    assert "not shift: s5+smr at 0.25." in shift
    # SMR: helps at 0.5 on every seed (1.5 / 3), hurts under bursty sampling on every seed (45 / 30)
    summary = next(n for n in notes if n.startswith("**Where SMR helps"))
    assert "SMR helps on every paired seed (two or more): s5+smr / s5 at rate 0.5 (0.50, 2 paired seeds)" in summary
    assert "SMR hurts on every paired seed (two or more): s5+smr / s5 under bursty sampling (trained at 0.5) (1.50" \
        in summary
    assert notes.index(summary) < notes.index(shift)  # the plain answer comes first
    assert "  - s5+smr / s5 under bursty sampling (trained at 0.5): 1.50, above 1; above 1 on every one of 2 seeds" \
        in text
    # S5+SMR at 0.25: 8 / 7 on the means, seeds 8/6 and 8/8 = 1.00 -> not below 1 on both: not settled
    assert f"s5+smr / s5 at rate 0.25 ({8 / 7:.2f}, 2 paired seeds)" in summary.split("Not settled")[1]
    # the seed flagged by the rule, the best epochs, and the rows the median part cannot judge
    collapsed = notes[-1]
    assert "1 of 9 runs flagged" in collapsed and "s5 at 0.25 seed 1 (best epoch 3)" in collapsed
    assert "best epochs 3-20" in collapsed  # two seeds or fewer: the median part of the rule cannot flag
    assert "only the early-epoch part applies: s5 at 0.25, s5 at 0.5, s5+smr at 0.25, s5+smr at 0.5, s6 at 0.5." \
        in collapsed
    assert "time-aware gate" not in text  # no gaps row, no gate note

    # no number is typed by hand: change a run and the notes follow
    by["s5", 0.5][1] = _record("s5", 0.5, 1, [28e-3, 3e-3, 2e-3, 2e-3, 30e-3])
    assert f"  - s5 at r = 0.25: {20 / 7:.2f}, above 1; above 1 on every one of 2 seeds (per seed 2.00-3.50)." \
        in bench.matched_notes(by, epochs=30)

    # the gate row against S5+SMR and S5, and the page carries the notes
    runs.append(_record("s5+smr+gaps", 0.25, 0, [5e-3, 4e-3, 4e-3, 4e-3, 40e-3]))
    matched, page = tmp_path / "matched.json", tmp_path / "pendulum.md"
    matched.write_text(json.dumps(runs))
    bench.main(["--matched", str(matched), "--out", str(page), "--full-runs", str(tmp_path / "none.json")])
    text = page.read_text()
    assert "### Notes" in text and "**Missing**" in text
    assert "  - at rate 0.25: s5+smr+gaps 5.00 < s5 7.00 < s5+smr 8.00 x1e-3 (seed means), the gate is the best" in text


def test_device_script_runs_the_tuned_recipes_at_a_tiny_size(tmp_path):
    # benchmarks/pendulum_device.sh is meant for one device call; its arguments after the script's own win,
    # which is how it is tried on a CPU first (one GRU-dt run here).
    env = {**os.environ, "OUT": str(tmp_path), "WORK": str(tmp_path / "work"), "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "benchmarks" / "pendulum_device.sh"), "--device", "cpu", "--configs", "gru_dt",
                    "--seeds", "0", "--jobs", "1", "--epochs", "1", "--n-train", "6", "--n-valid", "3", "--n-test", "3"],
                   env=env, check=True, capture_output=True)
    [run] = json.loads((tmp_path / "pendulum_tuned_e100.json").read_text())
    assert (run["config"], run["lr"], run["grad_clip"], run["epochs"], run["sizes"]) == ("gru_dt", 0.003, 1.0, 1, [6, 3, 3])
