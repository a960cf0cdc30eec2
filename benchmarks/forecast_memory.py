"""Peak memory and wall time of forecasting 100,000 series x 100 rows.

The model is fitted once (1 epoch, default size: the weights do not change the cost) on hourly
series at irregular times (so the calendar and seasonal-lag features are in use) and saved. Each
scenario then runs in a fresh Python process that loads the model and forecasts, and reports its
peak resident memory (VmHWM of /proc/self/status, else ``resource.getrusage``: the whole process,
interpreter, torch, the loaded model and the forecast) and the wall time of the forecast call:

    python benchmarks/forecast_memory.py [--series 100000] [--rows 100] [--h 10]
                                         [--out docs/benchmarks/forecast_memory.md]

Scenarios: forecast from the saved states (no backbone pass); the same with the states dropped
(the backbone runs over every row); with ``context`` (one new row per series: the history is put
back together); ``update`` with one row per series, then a forecast; and the context scenario in
one block, which is how forecasts ran before they were chunked (every series' tensors at once).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import provenance, write_report  # noqa: E402

BOUND_GB = 4.0
SCENARIOS = {
    "states": "forecast(h) from the saved states",
    "recompute": "forecast(h), states dropped: the backbone runs over every row",
    "context": "forecast(h, context=one new row per series)",
    "update": "update(one new row per series), then forecast(h)",
    "context_one_block": "forecast(h, context=...) in one block (as before chunking)",
}


def frame(n_series: int, n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Hourly series at irregular times (gaps exponential, mean 1 hour): a daily cycle, a level, noise."""
    rng = np.random.default_rng(seed)
    hours = np.cumsum(rng.exponential(1.0, (n_series, n_rows)), axis=1)
    y = (np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, (n_series, 1)) + 0.2 * rng.normal(size=hours.shape))
    start = np.datetime64("2024-01-01T00:00", "ns")
    ds = start + (hours * 3.6e12).astype("timedelta64[ns]")
    ids = np.repeat(np.array([f"s{i:06d}" for i in range(n_series)], dtype=object), n_rows)
    return pd.DataFrame({"unique_id": ids, "ds": ds.ravel(), "y": y.ravel()})


def peak_gb() -> float:
    """This process's peak resident memory in GB: VmHWM of /proc/self/status (the high-water mark of
    its own address space). Not ``getrusage``'s ru_maxrss where /proc exists: on Linux that survives
    fork and exec, so a child started by a big parent reports the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(scenario: str, model_dir: Path, data: Path, h: int) -> dict:
    from smr_ts import SMRForecaster
    from smr_ts.data import panel

    start = time.perf_counter()
    model = SMRForecaster.load(model_dir)
    load_seconds = time.perf_counter() - start
    new_rows = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_pickle(data)
    rss_loaded = peak_gb()
    if scenario == "recompute":
        del model.stream_state_
    if scenario == "context_one_block":
        panel.BLOCK_ROWS = 1 << 62
    start = time.perf_counter()
    if scenario in ("states", "recompute"):
        out = model.forecast(h=h)
    elif scenario == "update":
        model.update(new_rows)
        out = model.forecast(h=h)
    else:
        out = model.forecast(h=h, context=new_rows)
    seconds = time.perf_counter() - start
    return {"scenario": scenario, "seconds": seconds, "load_seconds": load_seconds, "rows_out": len(out),
            "peak_gb": peak_gb(), "loaded_gb": rss_loaded,
            "finite": bool(np.isfinite(out[model.alias_]).all())}


def main(argv=None) -> list:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--h", type=int, default=10)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "forecast_memory.md")
    p.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.model, args.data, args.h)))
        return []

    from smr_ts import SMRForecaster

    torch.set_num_threads(1)
    data = frame(args.series, args.rows + 1)
    last = data.groupby("unique_id").cumcount() == args.rows
    history, new_rows = data[~last].reset_index(drop=True), data[last].reset_index(drop=True)
    del data
    start = time.perf_counter()
    model = SMRForecaster(epochs=1, validation_fraction=0.0, horizon="1D", random_state=0).fit(history)
    fit_seconds = time.perf_counter() - start
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        new_rows.to_pickle(Path(tmp) / "new_rows.pkl")
        del model, history
        for scenario in args.scenarios:
            command = [sys.executable, __file__, "--child", scenario, "--model", str(Path(tmp) / "model"),
                       "--data", str(Path(tmp) / "new_rows.pkl"), "--h", str(args.h)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if done.returncode != 0:
                results.append({"scenario": scenario, "error": done.stderr.strip().splitlines()[-1]})
            else:
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    lines = [
        "# Forecasting many series in bounded memory",
        "",
        f"{args.series:,} series x {args.rows} rows (hourly at irregular times: the day's phase and seasonal lags "
        f"are inputs), forecast {args.h} steps ahead each ({args.series * args.h:,} forecasts), default model size "
        "(S5, d_model 32, state size 16, 2 layers), one torch thread. Each scenario runs in a fresh process that "
        "loads the saved model; *peak RSS* is that whole process's high-water mark (VmHWM in /proc/self/status: "
        "interpreter, torch, the loaded model and history, the forecast), *after load* the mark before forecasting. "
        f"Bound: {BOUND_GB:g} GB.",
        "",
        "| scenario | peak RSS (GB) | after load (GB) | forecast wall time (s) | within bound |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {SCENARIOS[r['scenario']]} | failed: {r['error']} | | | no |")
            continue
        ok = "yes" if r["peak_gb"] <= BOUND_GB else "**no**"
        lines.append(f"| {SCENARIOS[r['scenario']]} | {r['peak_gb']:.2f} | {r['loaded_gb']:.2f} | {r['seconds']:.1f} | "
                     f"{ok} |")
    by = {r["scenario"]: r for r in results if "error" not in r}
    if "context" in by and "context_one_block" in by:
        lines += ["", f"In blocks, the context forecast peaks at {by['context']['peak_gb']:.2f} GB against "
                      f"{by['context_one_block']['peak_gb']:.2f} GB in one block "
                      f"({by['context_one_block']['peak_gb'] / BOUND_GB:.0%} of the bound, and growing with the "
                      "number of rows); most of what remains is the history put back together with the context."]
    lines += [
        "",
        "Forecasts run in blocks of series of about a million padded rows (`smr_ts.data.panel.BLOCK_ROWS`): one "
        "block's inputs, statistics and query features exist at a time, and the backbone runs over 64 series at "
        "a time. Without `context` the fitted history is read in place (no copy back to rows); with it, the "
        "history and the context are put together once. The last row is the context scenario with every series in "
        "one block, as forecasts ran before this change.",
        "",
        f"Fit on the same data (not part of the bound; 1 epoch, including the states computed at fit): "
        f"{fit_seconds:.0f} s.",
        "",
        *provenance("benchmarks/forecast_memory.py", argv, ' (shared with other jobs), torch threads 1', f", pandas {pd.__version__}"),
    ]
    write_report(args.out, lines)
    return results


if __name__ == "__main__":
    main()
