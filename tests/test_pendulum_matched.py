"""The collapse rule, training at another sample rate, and the matched-rate section of the pendulum page.

The section's tables are read back as cells and its notes are checked on the findings they are
written from (``benchmarks/pendulum_notes.py``), not on their wording.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _pages import bullets, headings, items, numbers, row, table
from _scripts import load_script
from smr_ts.recipes import collapsed_seeds, pendulum_forecaster

ROOT = Path(__file__).resolve().parents[1]
bench = load_script(ROOT / "benchmarks" / "pendulum.py")  # puts benchmarks/ on sys.path for its modules
pendulum_runs = sys.modules["pendulum_runs"]
pendulum_notes = sys.modules["pendulum_notes"]


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
    settings = pendulum_runs.config_settings
    assert settings("s5+smr+gaps") == {"backbone": "s5", "smr": True, "smr_use_gaps": True}
    assert settings("s6+smr") == {"backbone": "s6", "smr": True}
    assert "s5+smr+gaps" not in pendulum_runs.DEFAULT_CONFIGS  # run only when named
    model = pendulum_forecaster(**settings("s6+smr+gaps"))
    assert (model.backbone, model.smr, model.smr_use_gaps) == ("s6", True, True)


def test_training_rate_is_a_setting_of_the_run_and_its_test_rate(tmp_path):
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


def _by(runs):
    by = {}
    for r in runs:
        by.setdefault((r["config"], r["train_rate"]), {})[r["seed"]] = r
    return by


def test_matched_section_computes_shift_penalties_and_smr_ratios_and_keeps_the_page(tmp_path):
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
    assert [h for h in headings(text) if h.startswith("##")][1:] == [
        "## Matched-rate control (reduced budget)", "### Test MSE x 1e-3", "### Shift penalty",
        "### SMR at the matched rate", "### Collapsed seeds", "### Notes"]
    # shift penalty at 0.25: mean(12, 14) / mean(6, 8) = 13 / 7; per seed 12/6 and 14/8
    shift = table(text, "### Shift penalty")
    assert [r["model"] for r in shift] == ["s5", "s5+smr"] and list(shift[0]) == ["model", "r = 0.25"]
    assert numbers(row(shift, model="s5")["r = 0.25"]) == pytest.approx([13 / 7, 2.0, 1.75], abs=0.005)
    assert numbers(row(shift, model="s5+smr")["r = 0.25"]) == pytest.approx([2.0, 2.0])
    # SMR at the matched rate: 5 / 7 at 0.25 (seed 0: 5/6), 1.5 / 3 at 0.5, bursty 45 / 30
    smr = row(table(text, "### SMR at the matched rate"), ratio="s5+smr / s5")
    assert [numbers(smr[k]) for k in ("rate 0.25", "rate 0.5", "bursty 0.5 (trained at 0.5)")] == [
        pytest.approx([5 / 7, 5 / 6], abs=0.005), [0.5, 0.5], [1.5, 1.5]]
    errors = row(table(text, "### Test MSE"), model="s5", **{"trained at": "0.25"})
    assert errors["seeds"] == "0, 1" and errors["rate 0.25"] == "**7.00 +- 1.00**"  # bold: the training rate
    assert numbers(errors["bursty 0.5"]) == [40.0, 0.0] and errors["best epochs"] == "20, 3"
    assert numbers(errors["s / epoch"]) == [10.0]
    collapsed = table(text, "### Collapsed seeds")
    assert numbers(row(collapsed, configuration="s5 (trained at rate 0.25)")["which"]) == [1, 3, 1e-3]  # seed, best epoch, best valid
    assert row(collapsed, configuration="s5+smr", budget="reduced")["collapsed"] == "0"
    assert "SMR helps here" in bullets(text, "### Notes") and "--note" not in items(text)["command"][0]
    assert numbers(items(text)["budget"][0])[:4] == [1000, 500, 500, 30]

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
    gru = row(table(text, "### Collapsed seeds"), configuration="gru_dt (lr 0.003, clip 1)")
    assert (gru["budget"], gru["seeds"], gru["collapsed"]) == ("reduced", "3", "1")
    assert numbers(gru["which"]) == [1, 4, 1e-3]  # seed 1, best epoch 4, best valid 1.00e-3
    # how the other backbones' runs were made: their configurations, seeds and this budget
    made_by = [line for line in text.splitlines() if line.startswith("- the collapse table's rows")]
    assert "--configs gru_dt --seeds 0 1 2 --tuned --epochs 30 --n-train 1000" in made_by[0]
    found = pendulum_notes.findings(_by(_s5_runs()), epochs=30, stability=tuned)
    assert found.collapses.stability == (["gru_dt (lr 0.003, clip 1) seed 1"], 3, (4, 28))
    assert pendulum_notes.notes(found)[-1] in text.replace("\n- ", "\n")  # the page prints the notes it found
    stability.write_text(json.dumps([{**r, "epochs": 100} for r in tuned]))  # another budget: refused
    with pytest.raises(ValueError, match="never mix budgets"):
        bench.main(argv)


def test_matched_findings_are_computed_from_the_runs(tmp_path):
    runs = [
        *_s5_runs(),
        _record("s5+smr", 0.5, 0, [10e-3, 1.5e-3, 2e-3, 2e-3, 45e-3]),
        _record("s5+smr", 0.5, 1, [5e-3, 1.5e-3, 2e-3, 2e-3, 45e-3]),
        _record("s5+smr", 0.25, 0, [8e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
        _record("s5+smr", 0.25, 1, [8e-3, 4e-3, 4e-3, 4e-3, 40e-3]),
        _record("s6", 0.5, 0, [20e-3, 5e-3, 5e-3, 5e-3, 40e-3]),
    ]
    by = _by(runs)
    found = pendulum_notes.findings(by, epochs=30)
    # what ran, and the missing cells of the grid, by configuration
    assert (found.runs, found.grid_runs, found.grid_done) == (9, 45, 9)
    assert found.missing["s6"] == {0.25: [0, 1, 2], 0.5: [1, 2], 1.0: [0, 1, 2]}
    assert found.missing["s5"] == {0.25: [2], 0.5: [2], 1.0: [0, 1, 2]}
    assert found.missing["s6+smr"] == {t: [0, 1, 2] for t in (0.25, 0.5, 1.0)}
    # shift penalty: S5 13 / 7, above 1 on both seeds (2.00, 1.75): shift; S5+SMR 7.5 / 8, seeds 1.25 and 0.62
    shift = {(p.config, p.rate): p for p in found.shift}
    assert set(shift) == {("s5", 0.25), ("s5+smr", 0.25)}
    assert (shift["s5", 0.25].ratio.mean, shift["s5", 0.25].ratio.paired) == (pytest.approx(13 / 7), (2.0, 1.75))
    assert shift["s5", 0.25].verdict == "shift"
    assert shift["s5+smr", 0.25].ratio.mean == pytest.approx(7.5 / 8)
    assert shift["s5+smr", 0.25].ratio.paired == pytest.approx((1.25, 0.625)) and shift["s5+smr", 0.25].verdict == "within"
    # off the training rate 0.5: trained at 0.25, tested at 0.5, over trained at 0.5
    assert found.off_rate == {"s5": [(0.25, 0.5, pytest.approx(4 / 3))], "s5+smr": [(0.25, 0.5, pytest.approx(4 / 1.5))]}
    # SMR: helps at 0.5 on every seed (1.5 / 3), hurts under bursty sampling (45 / 30); at 0.25, 8 / 7 on the
    # means with seeds 8/6 and 8/8 = 1.00: not on one side of 1 on both, so not settled
    smr = {c.test: c for c in found.smr}
    assert set(smr) == {0.25, 0.5, "bursty"} and all((c.smr, c.base) == ("s5+smr", "s5") for c in found.smr)
    assert (smr[0.5].ratio.mean, smr[0.5].verdict) == (pytest.approx(0.5), "helps")
    assert (smr["bursty"].ratio.mean, smr["bursty"].verdict) == (pytest.approx(1.5), "hurts")
    assert (smr[0.25].ratio.mean, smr[0.25].ratio.paired, smr[0.25].verdict) == (
        pytest.approx(8 / 7), pytest.approx((8 / 6, 1.0)), "unsure")
    assert [c.test for c in found.where("helps")] == [0.5] and [c.test for c in found.where("hurts")] == ["bursty"]
    assert found.seed_counts == [1, 2] and len(found.spread) == 4  # rows with two seeds
    # the seed flagged by the rule, the best epochs, and the rows the median part cannot judge
    c = found.collapses
    assert c.flagged == [("s5", 0.25, 1, 3)] and c.runs == 9 and c.best_epochs == (3, 20)
    assert c.few_seeds == [("s5", 0.25), ("s5", 0.5), ("s5+smr", 0.25), ("s5+smr", 0.5), ("s6", 0.5)]
    assert c.grad_norms is None and c.stability is None and c.full is None
    assert found.gate == []  # no gaps row, no gate note

    # The notes: one item per finding group, a sub-item per missing configuration, shift penalty and SMR
    # comparison; the plain answer right after what ran; every ratio cited as the findings hold it.
    notes = pendulum_notes.notes(found)
    top = [i for i, n in enumerate(notes) if not n.startswith("  - ")]
    subs = [top[k + 1] - top[k] - 1 for k in range(len(top) - 1)] + [len(notes) - top[-1] - 1]
    assert subs == [len(found.missing), 0, len(found.shift), len(found.off_rate), len(found.smr), 0]
    shift_items = notes[top[2] + 1:top[3]]
    for penalty, item in zip(found.shift, shift_items):
        which, what = item.split(": ", 1)
        assert penalty.config in which and numbers(which)[-1] == penalty.rate
        assert numbers(what)[0] == round(penalty.ratio.mean, 2)  # then the per-seed span, lowest-highest
        assert numbers(what)[-2:] == [round(min(penalty.ratio.paired), 2), round(max(penalty.ratio.paired), 2)]
    assert f"{smr[0.5].ratio.mean:.2f}" in notes[top[1]] and f"{smr['bursty'].ratio.mean:.2f}" in notes[top[1]]
    assert notes == pendulum_notes.matched_notes(by, epochs=30)

    # no number is typed by hand: change a run and the findings follow
    by["s5", 0.5][1] = _record("s5", 0.5, 1, [28e-3, 3e-3, 2e-3, 2e-3, 30e-3])
    moved = pendulum_notes.findings(by, epochs=30).shift[0]
    assert (moved.ratio.mean, moved.ratio.paired) == (pytest.approx(20 / 7), (2.0, 3.5))

    # the gate row against S5+SMR and S5, and the page carries the notes
    runs.append(_record("s5+smr+gaps", 0.25, 0, [5e-3, 4e-3, 4e-3, 4e-3, 40e-3]))
    [gate] = pendulum_notes.findings(_by(runs), epochs=30).gate
    assert gate.test == 0.25 and list(gate.errors) == ["s5+smr+gaps", "s5", "s5+smr"] and gate.rank == "best"
    assert list(gate.errors.values()) == pytest.approx([5e-3, 7e-3, 8e-3])
    assert gate.against_smr.mean == pytest.approx(5 / 8) and gate.against_smr.paired == pytest.approx((5 / 8,))
    matched, page = tmp_path / "matched.json", tmp_path / "pendulum.md"
    matched.write_text(json.dumps(runs))
    bench.main(["--matched", str(matched), "--out", str(page), "--full-runs", str(tmp_path / "none.json"),
                "--stability-runs", str(tmp_path / "none.json")])
    printed = bullets(page.read_text(), "### Notes")
    written = [n for n in pendulum_notes.matched_notes(_by(runs), epochs=30) if not n.startswith("  - ")]
    assert printed == written  # top-level items; the sub-items are indented under them


def test_device_script_runs_the_tuned_recipes_at_a_tiny_size(tmp_path):
    # benchmarks/pendulum_device.sh is meant for one device call; its arguments after the script's own win,
    # which is how it is tried on a CPU first (one GRU-dt run here).
    env = {**os.environ, "OUT": str(tmp_path), "WORK": str(tmp_path / "work"), "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "benchmarks" / "pendulum_device.sh"), "--device", "cpu", "--configs", "gru_dt",
                    "--seeds", "0", "--jobs", "1", "--epochs", "1", "--n-train", "6", "--n-valid", "3", "--n-test", "3"],
                   env=env, check=True, capture_output=True)
    [run] = json.loads((tmp_path / "pendulum_tuned_e100.json").read_text())
    assert (run["config"], run["lr"], run["grad_clip"], run["epochs"], run["sizes"]) == ("gru_dt", 0.003, 1.0, 1, [6, 3, 3])
