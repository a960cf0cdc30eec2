"""Pendulum benchmark: S5, S5+SMR, S6, S6+SMR and two recurrent baselines in one harness.

This file is the command line and the runner: it trains, and records each run in a runs file
(``pendulum_runs`` says what a run is). The page is written from runs files by
``pendulum_report`` (``--report-only``, ``--matched``), with the matched-rate notes from
``pendulum_notes``.

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
import subprocess
import sys
import time
from pathlib import Path

import torch

from smr_ts.backbones import BACKBONES
from smr_ts.datasets import make_pendulum
from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, pendulum_forecaster, pendulum_mse
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
import pendulum_report  # noqa: E402
from _machine import ROOT, command, machine  # noqa: E402
from _records import upsert_record  # noqa: E402
from pendulum_runs import CONFIGS, DEFAULT_CONFIGS, DEPARTURES, SHIFTS, config_settings, load_runs, run_key  # noqa: E402


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


def departures(args, config: str) -> dict:
    """A configuration's departures from the recipe in this invocation, ``{name: value or None}``:
    ``--lr`` and ``--grad-clip`` where given, else with ``--tuned`` its backbone's probe-chosen
    settings (``PENDULUM_BACKBONE_SETTINGS``), else the recipe's (None)."""
    tuned = PENDULUM_BACKBONE_SETTINGS.get(CONFIGS[config][0], {}) if args.tuned else {}
    return {name: getattr(args, name) if getattr(args, name) is not None else tuned.get(name) for name in DEPARTURES}


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
    cited = command("benchmarks/pendulum.py", argv)
    if args.matched is not None:
        pendulum_report.write_matched_section(
            json.loads(args.matched.read_text()), runs_path=args.matched, out=args.out, command=cited,
            full_runs=load_runs(args.full_runs), stability=load_runs(args.stability_runs),
            stability_path=args.stability_runs, notes=args.note)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    results_path = args.results or ROOT / "runs" / f"pendulum_{settings_key(args)}.json"
    for path in args.merge:
        for record in json.loads(path.read_text()):
            save_run(results_path, record)
    done = {run_key(r)[:2] for r in load_runs(results_path) if r["config"] in CONFIGS
            and run_key(r)[2:] == (*departures(args, r["config"]).values(), args.train_rate)}

    pending = [] if args.report_only else [(c, s) for c in args.configs for s in args.seeds if (c, s) not in done]
    if args.jobs > 1 and len(pending) > 1:
        run_in_parallel(args, pending, results_path)
    elif pending:
        train_runs(args, pending, results_path)

    if not args.no_report:
        pendulum_report.write_report(
            load_runs(results_path), out=args.out, results_path=results_path, command=cited,
            sizes=(args.n_train, args.n_valid, args.n_test), epochs=args.epochs, data_seed=args.data_seed,
            notes=args.note)


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


if __name__ == "__main__":
    main()
