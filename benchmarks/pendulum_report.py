"""The pendulum page (``docs/results/pendulum.md``), written from runs files; it trains nothing.

``write_report`` writes the full-budget table beside the published one, the sampling-shift table and its
figure; ``write_matched_section`` writes (or replaces) the matched-rate section, whose notes come from
``pendulum_notes``. Each keeps what the other wrote. ``benchmarks/pendulum.py`` calls both
(``--report-only``, ``--matched``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _machine import machine, relative, written
from pendulum_notes import BURSTY, label, matched_notes, ratio, trained_for
from pendulum_runs import EVAL_RATES, SHIFTS, config_order, flagged_groups, group_label, groups, summarise
from smr_ts.recipes import PENDULUM_PUBLISHED

MATCHED_HEADING = "## Matched-rate control"
# The rows of the matched-rate SMR table, (with SMR, without), where both ran.
SMR_TABLE_PAIRS = [("s5+smr", "s5"), ("s5+smr+gaps", "s5"), ("s5+smr+gaps", "s5+smr"), ("s6+smr", "s6"),
                   ("s6+smr+gaps", "s6")]


def mean_std(values) -> str:
    """"mean +- std" over seeds; one seed has no spread to show: "value (1 seed)"."""
    values = np.asarray(values, float)
    return f"{values[0]:.2f} (1 seed)" if len(values) == 1 else f"{values.mean():.2f} +- {values.std():.2f}"


def machines(runs) -> list[str]:
    """The page's machine lines: every machine the runs were made on, or this one when there are none."""
    return [f"- machine: {m}" for m in sorted({r.get("machine", "not recorded") for r in runs}) or [machine()]]


def write_report(runs, *, out: Path, results_path: Path, command: str, sizes, epochs: int, data_seed: int,
                 notes=()) -> None:
    """Write the page's full-budget table and its sampling-shift table from ``runs``, keeping its
    matched-rate section. ``sizes`` (train, valid, test) and ``epochs`` are the budget the page states."""
    lines = [
        "# Pendulum regression results",
        "",
        "Test MSE x 1e-3 of (sin, cos) on the irregularly sampled pendulum benchmark "
        f"(`smr_ts.datasets.make_pendulum`, data seed {data_seed}), read at the epoch with the best validation MSE.",
        "",
        f"- budget: {'/'.join(map(str, sizes))} train/valid/test sequences, "
        f"{epochs} epochs" + (" (the published recipe)" if (sizes[0], epochs) == (2000, 100)
                              else " (**a reduced budget: the published recipe is 2000 sequences, 100 epochs**)")
        + "".join(f"; **rows marked (clip {c:g}): gradients clipped to norm {c:g}** (not in the recipe)"
                  for c in sorted({r.get("grad_clip") for r in runs} - {None}))
        + "".join(f"; **rows marked (lr {v:g}): learning rate {v:g}** for the non-SSM parameters (the recipe's is 0.012)"
                  for v in sorted({r.get("lr") for r in runs} - {None})),
        f"- command: `{command}`",
        *machines(runs),
        f"- runs file: `{relative(results_path)}`",
        f"- written: {written()}",
        "",
        "Mean +- std over seeds, each seed's value beside it; s / epoch is wall time per epoch "
        "(training and validation) on the machine above, with the other runs of the batch sharing it.",
        "",
        "| model | test MSE x 1e-3 | per seed | seeds | parameters | s / epoch | best epoch | source |",
        "|---|---|---|---|---|---|---|---|",
        *results_table(runs),
    ]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    out.parent.mkdir(parents=True, exist_ok=True)
    lines += shift_section(runs, out)
    kept = matched_section(out.read_text()) if out.exists() else ""  # written by --matched: keep it
    out.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print(f"wrote {out}")


def results_table(runs) -> list[str]:
    """The rows of the main table: each group of runs and each published result, by mean test MSE."""
    table = []
    for group in groups(runs):
        rows, mse = summarise(runs, group)
        table.append((mse.mean(), f"| **{group_label(group)}** | {mean_std(mse)} | "
                      f"{', '.join(f'{v:.2f}' for v in mse)} | {len(rows)} | "
                      f"{rows[0]['parameters']:,} | {np.mean([r['seconds_per_epoch'] for r in rows]):.1f} "
                      f"({rows[0]['device']}) | {', '.join(str(r['best_epoch']) for r in rows)} | this run |"))
    for model, mu, sd, n, source in PENDULUM_PUBLISHED:
        table.append((mu, f"| {model} | {mu:.2f} +- {sd:.2f} | | {n} | | | | {source} |"))
    return [row for _, row in sorted(table)]


def shift_section(runs, out: Path) -> list[str]:
    """The sampling-shift table of the runs that have a shift evaluation, and its figure beside ``out``."""
    shift_rows = [r for r in runs if "shift" in r]
    if not shift_rows:
        return []
    labels = [label for label, _, _ in SHIFTS]
    lines = ["", "## Sampling shift", "",
             "Trained at sample rate 0.5 (uniform); evaluated on the same test trajectories re-sampled. "
             "Test MSE x 1e-3, mean +- std over seeds.", "",
             "| model | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for group in groups(shift_rows):
        rows, _ = summarise(shift_rows, group)
        cells = [mean_std(np.array([r["shift"][label] for r in rows]) * 1e3) for label in labels]
        lines.append(f"| {group_label(group)} ({len(rows)} seeds) | " + " | ".join(cells) + " |")
    plot = plot_shift(shift_rows, labels, out.with_name(out.stem + "_shift.png"))
    return lines + (["", f"![sampling shift]({plot.name})"] if plot is not None else [])


def plot_shift(rows, labels, path):
    """Test MSE per shift label, one line per group with its seed spread; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for group in groups(rows):
        sel, _ = summarise(rows, group)
        v = np.array([[r["shift"][label] for label in labels] for r in sel]) * 1e3
        ax.errorbar(range(len(labels)), v.mean(0), yerr=v.std(0), marker="o", capsize=3,
                    label=group_label(group).removeprefix("smr_ts "))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("test MSE x 1e-3")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the matched-rate section
def matched_section(text: str) -> str:
    """The page's matched-rate section (from its heading to the next "## " heading or the end), or ""."""
    start = text.find(MATCHED_HEADING)
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end + 1]


def collapse_rows(runs, budget: str) -> list[str]:
    """One row per (configuration, departures, training rate): its seeds and which collapsed."""
    out = []
    for group, rows, flags in flagged_groups(runs):
        bad = [f"{r['seed']} (best epoch {r['best_epoch']}, best valid {r['best_valid_mse'] * 1e3:.2f}e-3)"
               for r, f in zip(rows, flags) if f]
        out.append(f"| {budget} | {group_label(group).removeprefix('smr_ts ')} | {len(rows)} | "
                   f"{sum(flags)} | {', '.join(bad) or '-'} |")
    return out


def by_rate(runs) -> dict:
    """(configuration, training rate) -> {seed: run}."""
    by = {}
    for r in runs:
        by.setdefault((r["config"], r["train_rate"]), {})[r["seed"]] = r
    return by


def write_matched_section(runs, *, runs_path: Path, out: Path, command: str, full_runs=(), stability=(),
                          stability_path: Path | None = None, notes=()) -> None:
    """Write (or replace) the page's matched-rate section from ``runs``, trained at several sample rates
    and each tested at every rate. ``full_runs``: the full-budget runs (their collapses are listed);
    ``stability``: runs of other backbones at this budget with their chosen recipes."""
    sizes = sorted({tuple(r["sizes"]) for r in runs})
    epochs = sorted({r["epochs"] for r in runs})
    if len(sizes) > 1 or len(epochs) > 1:  # one budget per section: never mix budgets in one row
        raise ValueError(f"the runs file mixes budgets: sizes {sizes}, epochs {epochs}")
    if stability and ({tuple(r["sizes"]) for r in stability} != set(sizes) or {r["epochs"] for r in stability} != set(epochs)):
        raise ValueError(f"{stability_path} is not at the budget of {runs_path}: never mix budgets in one table")
    by = by_rate(runs)
    (n_train, n_valid, n_test), epochs = sizes[0], epochs[0]
    budget = f"--epochs {epochs} --n-train {n_train} --n-valid {n_valid} --n-test {n_test}"
    lines = [
        MATCHED_HEADING + " (reduced budget)", "",
        "Does the error rise at rate 0.25 (and fall at 1.0) of a model trained at 0.5 come from the shift of "
        "sampling, or from the information a sparser sequence holds? Each model is trained and validated at one "
        "sample rate and tested on the same test trajectories at every rate and under bursty sampling; a model "
        "trained at the test rate is the control.", "",
        f"- budget: **reduced**, {n_train}/{n_valid}/{n_test} train/valid/test sequences, "
        f"{epochs} epochs (the full recipe: 2000/1000/1000, 100 epochs); otherwise the "
        "recipe (lr 0.012, no clipping; the schedule stretched over these epochs). None of these rows mixes with the "
        "full-budget table above.",
        f"- command: `{command}` (writes this section from the runs file)",
        f"- runs file: `{relative(runs_path)}`, each run made by "
        f"`python benchmarks/pendulum.py --configs C --seeds S --train-rate R {budget} --shift --threads 1 --device cpu "
        f"--results {relative(runs_path)} --no-report` (one run per command, up to two at once beside other jobs; "
        "runs made into another file join it through `--merge`)",
        *([f"- the collapse table's rows with departures from the recipe (lr, clip): other backbones at the same "
           f"budget with their probe-chosen recipes (`smr_ts.recipes.PENDULUM_BACKBONE_SETTINGS`), runs file "
           f"`{relative(stability_path)}`, made by `python benchmarks/pendulum.py --configs "
           f"{' '.join(sorted({r['config'] for r in stability}, key=config_order))} --seeds "
           f"{' '.join(map(str, sorted({r['seed'] for r in stability})))} --tuned {budget} --threads 1 --device cpu "
           "--jobs 2 --results FILE --no-report`, then copied there"] if stability else []),
        *[f"- machine: {m}" for m in sorted({r.get("machine", "not recorded") for r in [*runs, *stability]})],
        f"- written: {written()}",
        *matched_error_table(by),
        *shift_penalty_table(by),
        *smr_table(by),
        "", "### Collapsed seeds", "",
        "A seed collapsed if its best validation MSE is over 2x the median of its configuration's seeds, or "
        "its best epoch falls in the first 20 % of the schedule (`smr_ts.recipes.collapsed_seeds`; validation "
        "only). Full budget: the runs of the table at the top of this page.", "",
        "| budget | configuration | seeds | collapsed | which |", "|---|---|---|---|---|",
        *collapse_rows(full_runs, "full"), *collapse_rows(runs, "reduced"), *collapse_rows(stability, "reduced"),
        "", "### Notes", "",
        "Computed from the runs file by the command above (no number in them is typed by hand); the tables "
        "hold every value they cite. Ratios are of seed means; \"per seed\" ranges are the per-seed ratios, "
        "for the seeds present in both.", "",
        *[n if n.startswith("  - ") else f"- {n}" for n in matched_notes(by, epochs, full_runs, stability)],
        *[f"- {note}" for note in notes],
    ]
    section = "\n".join(lines) + "\n"
    text = out.read_text() if out.exists() else ""
    old = matched_section(text)
    text = text.replace(old, section) if old else text.rstrip("\n") + "\n\n" + section
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote the matched-rate section of {out}")


def _configs_rates(by):
    return sorted({c for c, _ in by}, key=config_order), sorted({t for _, t in by})


def _cell(values, bold=False) -> str:
    v = np.asarray(values, float) * 1e3
    text = f"{v.mean():.2f}" + (f" +- {v.std():.2f}" if len(v) > 1 else "")
    return f"**{text}**" if bold else text


def _ratio_cell(x: dict, y: dict, test) -> str:
    """error(x) / error(y) at a test rate: the ratio of the seed means, in brackets the per-seed ratios."""
    r = ratio(x, y, label(test))
    return f"{r.mean:.2f} ({', '.join(f'{v:.2f}' for v in r.paired)})"


def matched_error_table(by) -> list[str]:
    """Test MSE of every (configuration, training rate) at every test set; bold at the training rate."""
    configs, rates = _configs_rates(by)
    lines = ["", "### Test MSE x 1e-3", "",
             "Mean +- std over seeds (one seed: its value). Bold: tested at the rate it was trained at. s / epoch is "
             "wall time with one torch thread on a machine other jobs shared, so it varies with their load, not only "
             "with the model.", "",
             "| model | trained at | seeds | " + " | ".join(label.replace(" (train)", "") for label, _ in EVAL_RATES)
             + " | best epochs | s / epoch |",
             "|---|---|---|" + "---|" * (len(EVAL_RATES) + 2)]
    for config in configs:
        for rate in rates:
            if (config, rate) not in by:
                continue
            seeds = by[config, rate]
            rows = [seeds[s] for s in sorted(seeds)]
            cells = [_cell([r["shift"][label] for r in rows], bold=(test == rate)) for label, test in EVAL_RATES]
            lines.append(f"| {config} | {rate:g} | {', '.join(map(str, sorted(seeds)))} | " + " | ".join(cells)
                         + f" | {', '.join(str(r['best_epoch']) for r in rows)} | "
                         f"{np.mean([r['seconds_per_epoch'] for r in rows]):.1f} |")
    return lines


def shift_penalty_table(by) -> list[str]:
    """error(trained at 0.5, tested at r) / error(trained at r, tested at r) per configuration and r."""
    configs, rates = _configs_rates(by)
    others = [r for r in rates if r != 0.5]
    lines = ["", "### Shift penalty", "",
             "error(trained at 0.5, tested at r) / error(trained at r, tested at r): above 1, training at 0.5 "
             "cost accuracy at rate r that a model trained at r recovers (the shift); near 1, the change of error "
             "with the rate is the information the sequence holds. The ratio of the seed means; in brackets the "
             "per-seed ratios, for the seeds present in both.", "",
             "| model | " + " | ".join(f"r = {r:g}" for r in others) + " |", "|---|" + "---|" * len(others)]
    for config in configs:
        if (config, 0.5) not in by:
            continue
        cells = [_ratio_cell(by[config, 0.5], by[config, rate], rate) if (config, rate) in by else "not run"
                 for rate in others]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return lines


def smr_table(by) -> list[str]:
    """error(with SMR) / error(without) at each matched rate and under bursty sampling."""
    configs, rates = _configs_rates(by)
    pairs = [(c, b) for c, b in SMR_TABLE_PAIRS if c in configs and b in configs]
    if not pairs:
        return []
    lines = ["", "### SMR at the matched rate", "",
             "error(with SMR) / error(without), both trained and tested at the same rate, and under bursty "
             "sampling for models trained at 0.5 (no model was trained on bursty sampling). Below 1: SMR helps. "
             "The ratio of the seed means; in brackets the per-seed ratios, for the seeds present in both.", "",
             "| ratio | " + " | ".join(f"rate {r:g}" for r in rates) + " | bursty 0.5 (trained at 0.5) |",
             "|---|" + "---|" * (len(rates) + 1)]
    for c, b in pairs:
        cells = [_ratio_cell(by[c, trained_for(t)], by[b, trained_for(t)], t)
                 if (c, trained_for(t)) in by and (b, trained_for(t)) in by else "not run" for t in [*rates, BURSTY]]
        lines.append(f"| {c} / {b} | " + " | ".join(cells) + " |")
    return lines
