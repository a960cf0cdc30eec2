"""Pendulum benchmark: S5, S5+SMR, S6, S6+SMR and two recurrent baselines in one harness.

Every model is an SMRForecaster built by ``smr_ts.recipes.pendulum_forecaster`` (the S5 paper's
recipe; the baselines swap the backbone only) and trained through the public API on data
generated locally. For each (configuration, seed) the script records the test MSE at the epoch
with the best validation MSE, the parameter count and the seconds per epoch, then writes
``docs/results/pendulum.md`` with mean +- std over seeds beside the published table.

The sampling-shift experiment (``--shift``) evaluates the trained S5/S6 models, trained at sample
rate 0.5, on test sets regenerated from the same trajectories at sample rates 0.25, 0.5, 0.75,
1.0 and with bursty sampling (clustered observations, heavy-tailed gaps).

Runs are long (about an hour per model for the full recipe on a CPU, 13 minutes on a shared H100),
so every finished run is appended to a JSON file and skipped when the script is started again with
the same settings. ``--jobs N`` trains N (configuration, seed) pairs at a time in separate
processes (each with its own part file in ``parts/`` beside the results file, merged when they finish): the
models are small, so one GPU is used best by many concurrent runs.

    python benchmarks/pendulum.py                            # full recipe, 3 seeds, all configs
    python benchmarks/pendulum.py --configs s5 s5+smr --seeds 0 1 2 3 4 --shift
    python benchmarks/pendulum.py --device cuda --jobs 18 --shift   # all configs x 3 seeds on one GPU
    python benchmarks/pendulum.py --report-only --merge other_machine.json   # add runs made elsewhere
    python benchmarks/pendulum.py --quick                    # smoke run of the whole pipeline
    python benchmarks/pendulum.py --configs s6 s6+smr gru_dt --tuned   # each backbone's probe-chosen recipe

``benchmarks/pendulum_device.sh`` runs the full-budget runs of the tuned recipes in one device call.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from smr_ts.backbones import BACKBONES
from smr_ts.datasets import make_pendulum
from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, PENDULUM_PUBLISHED, collapsed_seeds, pendulum_forecaster, pendulum_mse
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import cpu_model  # noqa: E402
from _records import upsert_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Every registered backbone, and "+smr" for those that take SMR: s5, s5+smr, s6, s6+smr, gru_dt, ode_rnn.
CONFIGS = {}
for _name, _backbone in BACKBONES.items():
    CONFIGS[_name] = (_name, False)
    if _backbone.takes_smr:
        CONFIGS[f"{_name}+smr"] = (_name, True)
DEFAULT_CONFIGS = list(CONFIGS)
# The time-aware SMR gate (smr_use_gaps=True): "+gaps" configurations, run only when named.
for _name, _backbone in BACKBONES.items():
    if _backbone.takes_smr:
        CONFIGS[f"{_name}+smr+gaps"] = (_name, True)


def config_settings(config: str) -> dict:
    """The estimator settings a configuration name stands for: backbone, smr and smr_use_gaps."""
    backbone, smr = CONFIGS[config]
    return {"backbone": backbone, "smr": smr, **({"smr_use_gaps": True} if config.endswith("+gaps") else {})}
SHIFTS = [("rate 0.25", 0.25, "uniform"), ("rate 0.5 (train)", 0.5, "uniform"), ("rate 0.75", 0.75, "uniform"),
          ("rate 1.0", 1.0, "uniform"), ("bursty 0.5", 0.5, "bursty")]


def mean_std(values) -> str:
    """"mean +- std" over seeds; one seed has no spread to show: "value (1 seed)"."""
    values = np.asarray(values, float)
    return f"{values[0]:.2f} (1 seed)" if len(values) == 1 else f"{values.mean():.2f} +- {values.std():.2f}"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-valid", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--train-rate", type=float, default=0.5,
                   help="sample rate of the training and validation sets (the benchmark's is 0.5; the test set's is "
                        "the same; --shift also tests at every other rate)")
    p.add_argument("--shift", action="store_true", help="also run the sampling-shift evaluation")
    p.add_argument("--quick", action="store_true", help="smoke run: 64/32/32 sequences, 2 epochs, 1 seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--results", type=Path, default=None, help="JSON file of finished runs (default: runs/pendulum_<settings>.json)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="clip gradients to this norm (the recipe has no clipping; a departure from it)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the non-SSM parameters (the recipe's is 0.012; a departure from it)")
    p.add_argument("--tuned", action="store_true",
                   help="train each configuration with its backbone's probe-chosen departures from the recipe "
                        "(smr_ts.recipes.PENDULUM_BACKBONE_SETTINGS); --lr and --grad-clip, when given, still win")
    p.add_argument("--progress", action="store_true", help="show a progress bar per fit (with --jobs: in each run's log)")
    p.add_argument("--jobs", type=int, default=1, help="train this many (config, seed) pairs at a time, one process each")
    p.add_argument("--merge", nargs="+", type=Path, default=[], metavar="JSON",
                   help="first add the runs in these files (other processes' or machines' --results) to the results file")
    p.add_argument("--report-only", action="store_true", help="train nothing: write the report from the results file")
    p.add_argument("--no-report", action="store_true", help="only train and record runs (used by --jobs' workers)")
    p.add_argument("--note", action="append", default=[], help="a line for the report's notes (repeatable)")
    p.add_argument("--matched", type=Path, default=None, metavar="JSON",
                   help="train nothing: write the page's matched-rate section from this runs file (models trained at "
                        "several rates, each tested at every rate; --note lines go into the section)")
    p.add_argument("--full-runs", type=Path, default=ROOT / "docs" / "results" / "pendulum_runs_e100.json",
                   help="with --matched: the full-budget runs file, also checked for collapsed seeds")
    p.add_argument("--stability-runs", type=Path, default=ROOT / "docs" / "results" / "pendulum_reduced_tuned_runs.json",
                   help="with --matched: runs of other backbones at the section's budget with their chosen recipes "
                        "(--tuned), also checked for collapsed seeds (skipped when the file does not exist)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "pendulum.md")
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_valid, args.n_test, args.epochs, args.seeds = 64, 32, 32, 2, [0]
        if args.out == ROOT / "docs" / "results" / "pendulum.md":
            args.out = ROOT / "runs" / "pendulum_quick.md"
    return args


DEPARTURES = ("lr", "grad_clip")  # settings a run may change from the recipe (None: the recipe's)


def departures(args, config: str) -> dict:
    """A configuration's departures from the recipe in this invocation, ``{name: value or None}``:
    ``--lr`` and ``--grad-clip`` where given, else with ``--tuned`` its backbone's probe-chosen
    settings (``PENDULUM_BACKBONE_SETTINGS``), else the recipe's (None)."""
    tuned = PENDULUM_BACKBONE_SETTINGS.get(CONFIGS[config][0], {}) if args.tuned else {}
    return {name: getattr(args, name) if getattr(args, name) is not None else tuned.get(name) for name in DEPARTURES}


def run_key(record: dict) -> tuple:
    """What identifies a run: configuration, seed, its departures from the recipe and its training
    sample rate (records made before the rate was a setting were trained at 0.5)."""
    return (record["config"], record["seed"], *(record.get(k) for k in DEPARTURES), record.get("train_rate", 0.5))


def run_group(record: dict) -> tuple:
    """The report's rows: one per configuration, departures from the recipe and training rate."""
    return (record["config"], *(record.get(k) for k in DEPARTURES), record.get("train_rate", 0.5))


def group_label(group: tuple) -> str:
    config, lr, clip, rate = group
    changes = ([] if lr is None else [f"lr {lr:g}"]) + ([] if clip is None else [f"clip {clip:g}"]) \
        + ([] if rate == 0.5 else [f"trained at rate {rate:g}"])
    return f"smr_ts {config}" + (f" ({', '.join(changes)})" if changes else "")


def save_run(path: Path, record: dict) -> None:
    """Add a finished run to the JSON file (replacing an earlier record of the same config, seed
    and departures), re-reading it first since several processes may share it; print its headline."""
    upsert_record(path, record, run_key)
    print(f"{record['config']} seed {record['seed']}: test MSE {record['test_mse'] * 1e3:.2f}e-3, "
          f"{record['seconds_per_epoch']:.1f} s/epoch", flush=True)


def settings_key(args) -> str:
    clip = "" if args.grad_clip is None else f"_clip{args.grad_clip:g}"
    lr = "" if args.lr is None else f"_lr{args.lr:g}"
    rate = "" if args.train_rate == 0.5 else f"_rate{args.train_rate:g}"
    tuned = "_tuned" if args.tuned else ""
    return f"e{args.epochs}_n{args.n_train}-{args.n_valid}-{args.n_test}_d{args.data_seed}{lr}{clip}{rate}{tuned}"


def main(argv=None):
    args = parse_args(argv)
    if args.matched is not None:
        write_matched_section(args, json.loads(args.matched.read_text()), argv)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    results_path = args.results or ROOT / "runs" / f"pendulum_{settings_key(args)}.json"
    for path in args.merge:
        for record in json.loads(path.read_text()):
            save_run(results_path, record)
    runs = json.loads(results_path.read_text()) if results_path.exists() else []
    done = {run_key(r)[:2] for r in runs if r["config"] in CONFIGS
            and run_key(r)[2:] == (*departures(args, r["config"]).values(), args.train_rate)}

    pending = [] if args.report_only else [(c, s) for c in args.configs for s in args.seeds if (c, s) not in done]
    if args.jobs > 1 and len(pending) > 1:
        run_in_parallel(args, pending, results_path)
    elif pending:
        train_runs(args, pending, results_path)

    if args.no_report:
        return
    runs = json.loads(results_path.read_text()) if results_path.exists() else []
    write_report(args, runs, results_path, argv)


def train_runs(args, pending, results_path):
    """Train and evaluate each (config, seed) in turn, recording each run as soon as it ends."""
    sizes = dict(n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test, seed=args.data_seed)
    data = make_pendulum(sample_rate=args.train_rate, **sizes)
    X_train, y_train = data.to_frame("train")
    X_valid, y_valid = data.to_frame("valid")
    shifted = {}
    if args.shift:
        for label, rate, sampling in SHIFTS:
            shifted[label] = make_pendulum(sample_rate=rate, sampling=sampling, **sizes).to_frame("test")

    for config, seed in pending:
        settings = config_settings(config)
        backbone = settings.pop("backbone")
        changed = departures(args, config)
        model = pendulum_forecaster(backbone, **settings, epochs=args.epochs, random_state=seed, device=args.device,
                                    grad_clip=changed["grad_clip"], verbose=int(args.progress),
                                    n_threads=args.threads or "auto",
                                    **({} if changed["lr"] is None else {"lr": changed["lr"]}))
        t0 = time.perf_counter()
        model.fit(X_train, y_train, validation_data=(X_valid, y_valid))
        fit_seconds = time.perf_counter() - t0
        record = {
            "config": config, "seed": seed,
            "test_mse": pendulum_mse(model, *data.to_frame("test")),
            "best_epoch": model.best_epoch_,
            "best_valid_mse": model.history_[model.best_epoch_]["valid_mse"],
            "epochs_run": len(model.history_),
            "seconds_per_epoch": fit_seconds / len(model.history_),
            "parameters": sum(p.numel() for p in model.model_.parameters()),
            "device": args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"),
            "grad_clip": changed["grad_clip"],
            "lr": changed["lr"],
            "train_rate": args.train_rate,
            "sizes": [args.n_train, args.n_valid, args.n_test],
            "epochs": args.epochs,
            "machine": machine(),
            "valid_history": [h["valid_mse"] for h in model.history_],
            "grad_norm_history": [h["grad_norm"] for h in model.history_],
        }
        if args.shift and BACKBONES[backbone].takes_smr:
            record["shift"] = {label: pendulum_mse(model, *frames) for label, frames in shifted.items()}
        save_run(results_path, record)


def run_in_parallel(args, pending, results_path):
    """Train each (config, seed) in its own process, ``args.jobs`` at a time; merge their runs."""
    parts = results_path.parent / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    shared = ["--epochs", str(args.epochs), "--n-train", str(args.n_train), "--n-valid", str(args.n_valid),
              "--n-test", str(args.n_test), "--data-seed", str(args.data_seed), "--train-rate", str(args.train_rate), "--device", args.device,
              "--threads", str(args.threads or 1), "--no-report"] + (["--shift"] if args.shift else []) \
        + ([] if args.grad_clip is None else ["--grad-clip", str(args.grad_clip)]) \
        + ([] if args.lr is None else ["--lr", str(args.lr)]) \
        + (["--tuned"] if args.tuned else []) + (["--progress"] if args.progress else [])
    queue, running = list(pending), []
    try:
        _drive(args, queue, running, parts, results_path, shared)
    finally:  # Ctrl-C or an error here: stop the workers too (their finished runs are kept)
        for proc, _, log in running:
            proc.terminate()
            proc.wait()
            log.close()


def _drive(args, queue, running, parts, results_path, shared):
    while queue or running:
        while queue and len(running) < args.jobs:
            config, seed = queue.pop(0)
            part = parts / f"{results_path.stem}_{config}_{seed}.json"
            log = open(part.with_suffix(".log"), "w")
            cmd = [sys.executable, __file__, "--configs", config, "--seeds", str(seed), "--results", str(part), *shared]
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), part, log))
        time.sleep(1.0)
        for entry in [e for e in running if e[0].poll() is not None]:
            proc, part, log = entry
            running.remove(entry)
            log.close()
            if proc.returncode != 0 or not part.exists():
                print(f"run {part.stem} failed (exit {proc.returncode}); see {part.with_suffix('.log')}", flush=True)
                continue
            for record in json.loads(part.read_text()):
                save_run(results_path, record)


def groups(runs):
    """The (configuration, departures) groups present, in the harness's configuration order."""
    present = {run_group(r) for r in runs}
    return sorted(present, key=lambda g: (list(CONFIGS).index(g[0]), *(-1 if v is None else v for v in g[1:])))


def summarise(runs, group):
    rows = [r for r in runs if run_group(r) == group]
    mse = np.array([r["test_mse"] for r in rows]) * 1e3
    return rows, mse


def write_report(args, runs, results_path, argv):
    given = list(argv if argv is not None else sys.argv[1:])
    # The notes are the report's own text, not part of what produced the numbers.
    kept = [a for i, a in enumerate(given) if a != "--note" and (i == 0 or given[i - 1] != "--note")]
    command = shlex.join(["python", "benchmarks/pendulum.py", *kept])
    lines = [
        "# Pendulum regression results",
        "",
        "Test MSE x 1e-3 of (sin, cos) on the irregularly sampled pendulum benchmark "
        "(`smr_ts.datasets.make_pendulum`, data seed %d), read at the epoch with the best validation MSE." % args.data_seed,
        "",
        f"- budget: {args.n_train}/{args.n_valid}/{args.n_test} train/valid/test sequences, "
        f"{args.epochs} epochs" + (" (the published recipe)" if (args.n_train, args.epochs) == (2000, 100)
                                   else " (**a reduced budget: the published recipe is 2000 sequences, 100 epochs**)")
        + "".join(f"; **rows marked (clip {c:g}): gradients clipped to norm {c:g}** (not in the recipe)"
                  for c in sorted({r.get("grad_clip") for r in runs} - {None}))
        + "".join(f"; **rows marked (lr {v:g}): learning rate {v:g}** for the non-SSM parameters (the recipe's is 0.012)"
                  for v in sorted({r.get("lr") for r in runs} - {None})),
        f"- command: `{command}`",
        *[f"- machine: {m}" for m in sorted({r.get("machine", "not recorded") for r in runs}) or [machine()]],
        f"- runs file: `{results_path.relative_to(ROOT) if results_path.is_relative_to(ROOT) else results_path}`",
        f"- written: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "Mean +- std over seeds, each seed's value beside it; s / epoch is wall time per epoch "
        "(training and validation) on the machine above, with the other runs of the batch sharing it.",
        "",
        "| model | test MSE x 1e-3 | per seed | seeds | parameters | s / epoch | best epoch | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = []
    for group in groups(runs):
        rows, mse = summarise(runs, group)
        table.append((mse.mean(), f"| **{group_label(group)}** | {mean_std(mse)} | "
                      f"{', '.join(f'{v:.2f}' for v in mse)} | {len(rows)} | "
                      f"{rows[0]['parameters']:,} | {np.mean([r['seconds_per_epoch'] for r in rows]):.1f} "
                      f"({rows[0]['device']}) | {', '.join(str(r['best_epoch']) for r in rows)} | this run |"))
    for model, mu, sd, n, source in PENDULUM_PUBLISHED:
        table.append((mu, f"| {model} | {mu:.2f} +- {sd:.2f} | | {n} | | | | {source} |"))
    lines += [row for _, row in sorted(table)]
    if args.note:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in args.note]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    shift_rows = [r for r in runs if "shift" in r]
    if shift_rows:
        labels = [label for label, _, _ in SHIFTS]
        lines += ["", "## Sampling shift", "",
                  "Trained at sample rate 0.5 (uniform); evaluated on the same test trajectories re-sampled. "
                  "Test MSE x 1e-3, mean +- std over seeds.", "",
                  "| model | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for group in groups(shift_rows):
            rows, _ = summarise(shift_rows, group)
            cells = []
            for label in labels:
                v = np.array([r["shift"][label] for r in rows]) * 1e3
                cells.append(mean_std(v))
            lines.append(f"| {group_label(group)} ({len(rows)} seeds) | " + " | ".join(cells) + " |")
        plot = plot_shift(shift_rows, labels, args.out.with_name(args.out.stem + "_shift.png"))
        if plot is not None:
            lines += ["", f"![sampling shift]({plot.name})"]
    kept = matched_section(args.out.read_text()) if args.out.exists() else ""  # written by --matched: keep it
    args.out.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print(f"wrote {args.out}")


MATCHED_HEADING = "## Matched-rate control"
EVAL_RATES = [("rate 0.25", 0.25), ("rate 0.5 (train)", 0.5), ("rate 0.75", 0.75), ("rate 1.0", 1.0), ("bursty 0.5", None)]


def matched_section(text: str) -> str:
    """The page's matched-rate section (from its heading to the next "## " heading or the end), or ""."""
    start = text.find(MATCHED_HEADING)
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end + 1]


def flagged_groups(runs):
    """Per (configuration, departures, training rate) group of ``runs``, in the page's order: the group,
    its runs by seed, and which of them collapsed (issue 16's rule, over each run's own schedule)."""
    for group in groups(runs):
        rows = sorted((r for r in runs if run_group(r) == group), key=lambda r: r["seed"])
        epochs = rows[0].get("epochs") or rows[0]["epochs_run"]  # older records: no early stopping in the runs
        yield group, rows, collapsed_seeds([r["best_valid_mse"] for r in rows], [r["best_epoch"] for r in rows], epochs)


def flagged_names(runs) -> list[str]:
    """"<configuration (departures)> seed <s>" of every collapsed run of ``runs``."""
    return [f"{group_label(group).removeprefix('smr_ts ')} seed {r['seed']}"
            for group, rows, flags in flagged_groups(runs) for r, f in zip(rows, flags) if f]


def collapse_rows(runs, budget: str):
    """One row per (configuration, departures, training rate): its seeds and which collapsed (issue 16's rule)."""
    out = []
    for group, rows, flags in flagged_groups(runs):
        bad = [f"{r['seed']} (best epoch {r['best_epoch']}, best valid {r['best_valid_mse'] * 1e3:.2f}e-3)"
               for r, f in zip(rows, flags) if f]
        out.append(f"| {budget} | {group_label(group).removeprefix('smr_ts ')} | {len(rows)} | "
                   f"{sum(flags)} | {', '.join(bad) or '-'} |")
    return out


def write_matched_section(args, runs, argv):
    """Write (or replace) the page's matched-rate section from runs trained at several sample rates."""
    given = list(argv if argv is not None else sys.argv[1:])
    kept = [a for i, a in enumerate(given) if a != "--note" and (i == 0 or given[i - 1] != "--note")]
    sizes = sorted({tuple(r["sizes"]) for r in runs})
    epochs = sorted({r["epochs"] for r in runs})
    if len(sizes) > 1 or len(epochs) > 1:  # one budget per section: never mix budgets in one row
        raise ValueError(f"the runs file mixes budgets: sizes {sizes}, epochs {epochs}")
    rel = lambda path: path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path  # noqa: E731
    stability = json.loads(args.stability_runs.read_text()) if args.stability_runs and args.stability_runs.exists() else []
    if stability and ({tuple(r["sizes"]) for r in stability} != set(sizes) or {r["epochs"] for r in stability} != set(epochs)):
        raise ValueError(f"{args.stability_runs} is not at the budget of {args.matched}: never mix budgets in one table")
    by = {}  # (config, train rate) -> runs by seed
    for r in runs:
        by.setdefault((r["config"], r["train_rate"]), {})[r["seed"]] = r
    configs = sorted({c for c, _ in by}, key=list(CONFIGS).index)
    rates = sorted({t for _, t in by})

    def cell(values, bold=False):
        v = np.asarray(values, float) * 1e3
        text = f"{v.mean():.2f}" + (f" +- {v.std():.2f}" if len(v) > 1 else "")
        return f"**{text}**" if bold else text

    lines = [
        MATCHED_HEADING + " (reduced budget)", "",
        "Does the error rise at rate 0.25 (and fall at 1.0) of a model trained at 0.5 come from the shift of "
        "sampling, or from the information a sparser sequence holds? Each model is trained and validated at one "
        "sample rate and tested on the same test trajectories at every rate and under bursty sampling; a model "
        "trained at the test rate is the control.", "",
        f"- budget: **reduced**, {'/'.join(map(str, sizes[0]))} train/valid/test sequences, "
        f"{epochs[0]} epochs (the full recipe: 2000/1000/1000, 100 epochs); otherwise the "
        "recipe (lr 0.012, no clipping; the schedule stretched over these epochs). None of these rows mixes with the "
        "full-budget table above.",
        f"- command: `{shlex.join(['python', 'benchmarks/pendulum.py', *kept])}` (writes this section from the runs file)",
        f"- runs file: `{rel(args.matched)}`, each run made by "
        f"`python benchmarks/pendulum.py --configs C --seeds S --train-rate R --epochs {epochs[0]} "
        f"--n-train {sizes[0][0]} --n-valid {sizes[0][1]} --n-test {sizes[0][2]} --shift --threads 1 --device cpu "
        f"--results {rel(args.matched)} --no-report` (one run per command, up to two at once beside other jobs; "
        "runs made into another file join it through `--merge`)",
        *([f"- the collapse table's rows with departures from the recipe (lr, clip): other backbones at the same "
           f"budget with their probe-chosen recipes (`smr_ts.recipes.PENDULUM_BACKBONE_SETTINGS`), runs file "
           f"`{rel(args.stability_runs)}`, made by `python benchmarks/pendulum.py --configs "
           f"{' '.join(sorted({r['config'] for r in stability}, key=list(CONFIGS).index))} --seeds "
           f"{' '.join(map(str, sorted({r['seed'] for r in stability})))} --tuned --epochs {epochs[0]} "
           f"--n-train {sizes[0][0]} --n-valid {sizes[0][1]} --n-test {sizes[0][2]} --threads 1 --device cpu --jobs 2 "
           f"--results FILE --no-report`, then copied there"] if stability else []),
        *[f"- machine: {m}" for m in sorted({r.get("machine", "not recorded") for r in runs + stability})],
        f"- written: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "", "### Test MSE x 1e-3", "",
        "Mean +- std over seeds (one seed: its value). Bold: tested at the rate it was trained at. s / epoch is wall "
        "time with one torch thread on a machine other jobs shared, so it varies with their load, not only with the "
        "model.", "",
        "| model | trained at | seeds | " + " | ".join(label.replace(" (train)", "") for label, _ in EVAL_RATES)
        + " | best epochs | s / epoch |",
        "|---|---|---|" + "---|" * (len(EVAL_RATES) + 2),
    ]
    for config in configs:
        for rate in rates:
            if (config, rate) not in by:
                continue
            seeds = by[config, rate]
            rows = [seeds[s] for s in sorted(seeds)]
            cells = [cell([r["shift"][label] for r in rows], bold=(test == rate)) for label, test in EVAL_RATES]
            lines.append(f"| {config} | {rate:g} | {', '.join(map(str, sorted(seeds)))} | " + " | ".join(cells)
                         + f" | {', '.join(str(r['best_epoch']) for r in rows)} | "
                         f"{np.mean([r['seconds_per_epoch'] for r in rows]):.1f} |")

    label_of = {test: label for label, test in EVAL_RATES if test is not None}
    lines += ["", "### Shift penalty", "",
              "error(trained at 0.5, tested at r) / error(trained at r, tested at r): above 1, training at 0.5 "
              "cost accuracy at rate r that a model trained at r recovers (the shift); near 1, the change of error "
              "with the rate is the information the sequence holds. The ratio of the seed means; in brackets the "
              "per-seed ratios, for the seeds present in both.", "",
              "| model | " + " | ".join(f"r = {r:g}" for r in rates if r != 0.5) + " |",
              "|---|" + "---|" * sum(r != 0.5 for r in rates)]
    for config in configs:
        if (config, 0.5) not in by:
            continue
        cells = []
        for rate in (r for r in rates if r != 0.5):
            if (config, rate) not in by:
                cells.append("not run")
                continue
            shifted, matched = by[config, 0.5], by[config, rate]
            label = label_of[rate]
            ratio = np.mean([r["shift"][label] for r in shifted.values()]) / np.mean(
                [r["shift"][label] for r in matched.values()])
            paired = [shifted[s]["shift"][label] / matched[s]["shift"][label] for s in sorted(set(shifted) & set(matched))]
            cells.append(f"{ratio:.2f} ({', '.join(f'{v:.2f}' for v in paired)})")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")

    pairs = [(c, b) for c, b in (("s5+smr", "s5"), ("s5+smr+gaps", "s5"), ("s5+smr+gaps", "s5+smr"),
                                  ("s6+smr", "s6"), ("s6+smr+gaps", "s6")) if c in configs and b in configs]
    if pairs:
        lines += ["", "### SMR at the matched rate", "",
                  "error(with SMR) / error(without), both trained and tested at the same rate, and under bursty "
                  "sampling for models trained at 0.5 (no model was trained on bursty sampling). Below 1: SMR helps. "
                  "The ratio of the seed means; in brackets the per-seed ratios, for the seeds present in both.", "",
                  "| ratio | " + " | ".join(f"rate {r:g}" for r in rates) + " | bursty 0.5 (trained at 0.5) |",
                  "|---|" + "---|" * (len(rates) + 1)]
        for c, b in pairs:
            cells = []
            for rate, label in [(r, label_of[r]) for r in rates] + [(0.5, "bursty 0.5")]:
                if (c, rate) not in by or (b, rate) not in by:
                    cells.append("not run")
                    continue
                x, y = by[c, rate], by[b, rate]
                ratio = np.mean([r["shift"][label] for r in x.values()]) / np.mean([r["shift"][label] for r in y.values()])
                paired = [x[s]["shift"][label] / y[s]["shift"][label] for s in sorted(set(x) & set(y))]
                cells.append(f"{ratio:.2f} ({', '.join(f'{v:.2f}' for v in paired)})")
            lines.append(f"| {c} / {b} | " + " | ".join(cells) + " |")

    lines += ["", "### Collapsed seeds", "",
              "A seed collapsed if its best validation MSE is over 2x the median of its configuration's seeds, or "
              "its best epoch falls in the first 20 % of the schedule (`smr_ts.recipes.collapsed_seeds`; validation "
              "only). Full budget: the runs of the table at the top of this page.", "",
              "| budget | configuration | seeds | collapsed | which |", "|---|---|---|---|---|"]
    full_runs = json.loads(args.full_runs.read_text()) if args.full_runs and args.full_runs.exists() else []
    lines += collapse_rows(full_runs, "full") + collapse_rows(runs, "reduced") + collapse_rows(stability, "reduced")
    lines += ["", "### Notes", "",
              "Computed from the runs file by the command above (no number in them is typed by hand); the tables "
              "hold every value they cite. Ratios are of seed means; \"per seed\" ranges are the per-seed ratios, "
              "for the seeds present in both.", ""]
    lines += [n if n.startswith("  - ") else f"- {n}" for n in matched_notes(by, epochs[0], full_runs, stability)]
    lines += [f"- {note}" for note in args.note]
    section = "\n".join(lines) + "\n"
    text = args.out.read_text() if args.out.exists() else ""
    old = matched_section(text)
    text = text.replace(old, section) if old else text.rstrip("\n") + "\n\n" + section
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote the matched-rate section of {args.out}")


# Issue 16's grid: these configurations (the time-aware gate on S5) x training rates x seeds.
GRID_CONFIGS = ["s5", "s5+smr", "s6", "s6+smr", "s5+smr+gaps"]
GRID_RATES = [0.25, 0.5, 1.0]
GRID_SEEDS = [0, 1, 2]
SMR_PAIRS = [("s5+smr", "s5"), ("s6+smr", "s6")]  # (with SMR, without)


def _label(rate) -> str:
    """The shift-evaluation label of a test rate ("bursty" for bursty sampling at 0.5)."""
    return "bursty 0.5" if rate == "bursty" else {test: label for label, test in EVAL_RATES if test is not None}[rate]


def _ratio(x: dict, y: dict, label: str):
    """error(x) / error(y) at one test label: the ratio of the seed means, and the per-seed ratios of
    the seeds present in both (``x`` and ``y`` map seeds to runs)."""
    mean = np.mean([r["shift"][label] for r in x.values()]) / np.mean([r["shift"][label] for r in y.values()])
    return float(mean), [x[s]["shift"][label] / y[s]["shift"][label] for s in sorted(set(x) & set(y))]


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def _side(mean: float, paired) -> str:
    """Where a ratio lies against 1: its mean, and on how many of the paired seeds."""
    above = sum(v > 1 for v in paired)
    n = len(paired)
    if n == 0:
        where = "no seed present in both"
    elif n == 1:
        where = f"one paired seed ({paired[0]:.2f}): a hint, not a result"
    elif above == n:
        where = f"above 1 on every one of {n} seeds (per seed {_span(paired)})"
    elif all(v < 1 for v in paired):
        where = f"below 1 on every one of {n} seeds (per seed {_span(paired)})"
    else:
        where = (f"above 1 on {above} of {n} seeds (per seed {_span(paired)}): the seeds disagree, so the sign is "
                 "not separated from the seed spread")
    side = "at" if f"{mean:.2f}" == "1.00" else "above" if mean > 1 else "below"
    return f"{mean:.2f}, {side} 1; {where}"


def _at(rate) -> str:
    return "under bursty sampling (trained at 0.5)" if rate == "bursty" else f"at rate {rate:g}"


def _consistent(paired) -> bool:
    """Two or more paired seeds, all on the same side of 1."""
    return len(paired) > 1 and (all(v < 1 for v in paired) or all(v > 1 for v in paired))


def matched_notes(by: dict, epochs: int, full_runs=(), stability=()) -> list[str]:
    """The matched-rate section's notes, every number computed from the runs: ``by`` maps
    (configuration, training rate) to {seed: run}; ``stability``, runs of other backbones at the same
    budget with their chosen recipes. One markdown list item per string; a string that
    starts with "  - " is a sub-item of the one before."""
    notes = []
    runs = [r for seeds in by.values() for r in seeds.values()]
    configs = sorted({c for c, _ in by}, key=list(CONFIGS).index)
    rates = sorted({t for _, t in by})

    # What ran, and which cells of the grid are missing.
    grid = [(c, t, s) for c in GRID_CONFIGS for t in GRID_RATES for s in GRID_SEEDS]
    done = [cell for cell in grid if cell[2] in by.get(cell[:2], {})]
    missing = {}
    for c, t, s in grid:
        if s not in by.get((c, t), {}):
            missing.setdefault(c, {}).setdefault(t, []).append(s)
    notes.append(f"**What ran.** {len(runs)} runs. The issue's grid ({', '.join(GRID_CONFIGS)} x training rates "
                 f"{', '.join(f'{t:g}' for t in GRID_RATES)} x seeds {', '.join(map(str, GRID_SEEDS))}) is "
                 f"{len(grid)} runs, of which {len(done)} ran."
                 + (" **Missing** (not run, not failed; the tables' 'not run' cells and absent rows are these):"
                    if missing else " No cell of the grid is missing."))
    for c, m in missing.items():
        notes.append(f"  - {c}: " + "; ".join(f"rate {t:g}, seed{'s' * (len(s) != 1)} {', '.join(map(str, s))}"
                                               for t, s in sorted(m.items())))

    summary_at = len(notes)

    # Shift penalty: error(trained at 0.5, tested at r) / error(trained at r, tested at r).
    items, shift, within, single = [], [], [], []
    for c in configs:
        for t in rates:
            if t == 0.5 or (c, 0.5) not in by or (c, t) not in by:
                continue
            mean, paired = _ratio(by[c, 0.5], by[c, t], _label(t))
            items.append(f"  - {c} at r = {t:g}: {_side(mean, paired)}.")
            if _consistent(paired) and mean > 1:
                shift.append(f"{c} at {t:g}")
            elif len(paired) > 1 and min(paired) <= 1 <= max(paired):
                within.append(f"{c} at {t:g}")
            elif len(paired) == 1:
                single.append(f"{c} at {t:g}")
    if items:
        text = "**Shift penalty** (error of the model trained at 0.5 over that of the model trained at the test rate r)."
        if shift:
            text += (f" Above 1 on every one of two or more seeds, so part of the error at that rate is shift, which "
                     f"training at the test rate recovers: {', '.join(shift)}.")
        if within:
            text += (" Per-seed ratios on both sides of 1, so within the seed spread the change of error with the rate "
                     f"is the information the sequence holds, not shift: {', '.join(within)}.")
        if single:
            text += f" One seed only, to be confirmed: {', '.join(single)}."
        notes += [text] + items

    # The cost of training at a rate other than 0.5, both ways.
    items = []
    for c in configs:
        cells = [f"trained at {a:g}, tested at {t:g}: {_ratio(by[c, a], by[c, t], _label(t))[0]:.2f}"
                 for a in rates for t in rates if a != t and a != 0.5 and (c, a) in by and (c, t) in by]
        if cells:
            items.append(f"  - {c}: " + "; ".join(cells) + ".")
    if items:
        notes += ["**Training at a rate other than 0.5**: error over that of the model trained at the test rate "
                  "(above 1, the mismatch costs accuracy)."] + items

    # SMR at matched rates and under bursty sampling.
    compared, items = [], []  # (what, mean ratio, per-seed ratios)
    for c, b in SMR_PAIRS:
        for t in rates + ["bursty"]:
            train = 0.5 if t == "bursty" else t
            if (c, train) not in by or (b, train) not in by:
                continue
            mean, paired = _ratio(by[c, train], by[b, train], _label(t))
            items.append(f"  - {c} / {b} {_at(t)}: {_side(mean, paired)}.")
            compared.append((f"{c} / {b} {_at(t)} ({mean:.2f}, {len(paired)} paired seed{'s' * (len(paired) != 1)})",
                             mean, paired))
    if items:
        notes += ["**SMR / no SMR**: error with SMR over error without, both trained at the rate tested (at 0.5 for "
                  "bursty sampling); below 1, SMR helps."] + items

    # The time-aware gate against S5+SMR and S5.
    items = []
    for t in rates + ["bursty"]:
        train = 0.5 if t == "bursty" else t
        if ("s5+smr+gaps", train) not in by:
            continue
        errors = {c: np.mean([r["shift"][_label(t)] for r in by[c, train].values()])
                  for c in ("s5", "s5+smr", "s5+smr+gaps") if (c, train) in by}
        order = sorted(errors, key=errors.get)
        place = order.index("s5+smr+gaps")
        rank = "is the only one run" if len(order) == 1 else "is the best" if place == 0 else \
            "is the worst" if place == len(order) - 1 else "lies between the others"
        item = (f"  - {_at(t)}: {' < '.join(f'{c} {errors[c] * 1e3:.2f}' for c in order)} x1e-3 (seed means), "
                f"the gate {rank}")
        if ("s5+smr", train) in by:
            mean, paired = _ratio(by["s5+smr+gaps", train], by["s5+smr", train], _label(t))
            item += f"; gaps / S5+SMR {_side(mean, paired)}"
        items.append(item + ".")
    if items:
        notes += ["**The time-aware gate** (s5+smr+gaps: smr_use_gaps=True) against S5+SMR and S5."] + items

    # Where SMR helps, where it does not, and how sure we are.
    spread = [np.std(v) / np.mean(v) for v in ([r["shift"][_label(t)] for r in by[c, t].values()]
                                               for c, t in by if len(by[c, t]) > 1)]
    seed_counts = sorted({len(v) for v in by.values()})
    helps = [w for w, mean, paired in compared if _consistent(paired) and mean < 1]
    hurts = [w for w, mean, paired in compared if _consistent(paired) and mean > 1]
    unsure = [w for w, mean, paired in compared if not _consistent(paired)]
    below = [w for w, mean, paired in compared if mean < 1]
    text = "**Where SMR helps, where it does not, how sure.** "
    text += (f"SMR helps on every paired seed (two or more): {'; '.join(helps)}. " if helps
             else "No comparison where SMR helps on every paired seed (two or more). ")
    text += (f"SMR hurts on every paired seed (two or more): {'; '.join(hurts)}. " if hurts
             else "No comparison where SMR hurts on every paired seed (two or more). ")
    if unsure:
        text += f"Not settled (the seeds disagree, or one seed): {'; '.join(unsure)}. "
    text += ("On the seed means alone, the ratio is below 1 (SMR helps) for " + ("; ".join(below) if below else "none")
             + ", and at or above 1 for the rest. ")
    text += (f"Seeds per row: {', '.join(map(str, seed_counts))}"
             + (f"; the seed spread (std / mean of a row's matched-rate error) is {min(spread) * 100:.0f}-"
                f"{max(spread) * 100:.0f} % in rows with two or more seeds, so a ratio within that distance of 1 "
                "is not distinguishable from seed noise" if spread else "")
             + f". Reduced budget only ({epochs} epochs); none of this is measured at the full recipe.")
    notes.insert(summary_at, text)  # the plain answer first, after what ran

    # Collapses and training histories.
    flagged, small = [], []
    for (c, t), seeds in sorted(by.items(), key=lambda kv: (list(CONFIGS).index(kv[0][0]), kv[0][1])):
        rows = [seeds[s] for s in sorted(seeds)]
        flags = collapsed_seeds([r["best_valid_mse"] for r in rows], [r["best_epoch"] for r in rows], epochs)
        flagged += [f"{c} at {t:g} seed {r['seed']} (best epoch {r['best_epoch']})" for r, f in zip(rows, flags) if f]
        if len(rows) < 3:
            small.append(f"{c} at {t:g}")
    best = [r["best_epoch"] for r in runs]
    text = (f"**Collapsed seeds.** Reduced budget: {len(flagged)} of {len(runs)} runs flagged by "
            f"`smr_ts.recipes.collapsed_seeds`" + (f" ({'; '.join(flagged)})" if flagged else "")
            + f"; best epochs {min(best)}-{max(best)} (of epochs 0-{epochs - 1}; the rule's early part flags "
            f"epochs below {0.2 * epochs:g}).")
    norms = [max(r["grad_norm_history"]) for r in runs if r.get("grad_norm_history")]
    if norms:
        text += f" The largest gradient norm of any epoch of a run is {min(norms):.0f}-{max(norms):.0f} across runs."
    if small:
        text += (" With fewer than 3 seeds the median part of the rule cannot flag a seed, only the early-epoch part "
                 f"applies: {', '.join(small)}.")
    if stability:
        flagged, best = flagged_names(stability), [r["best_epoch"] for r in stability]
        text += (f" Reduced budget, other backbones with their chosen recipes: {len(flagged)} of {len(stability)} runs "
                 f"flagged" + (f" ({', '.join(flagged)})" if flagged else "") + f"; best epochs {min(best)}-{max(best)}.")
    if full_runs:
        full_flags = flagged_names(full_runs)
        text += (f" Full budget: {len(full_flags)} of {len(full_runs)} runs flagged"
                 + (f" ({', '.join(full_flags)})." if full_flags else "."))
    notes.append(text)
    return notes


def plot_shift(rows, labels, path):
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


def machine() -> str:
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu_model()}, {torch.get_num_threads()} torch threads{gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
