"""Compare SMRForecaster settings on the real-data suite's protocol, against last value.

The quick loop for design choices (loss, learning rate, batch size, ...): each setting is fitted
on every task of the chosen data sets, told the horizon as the suite's rows are (``SMRRow``), and
scored by scaled MAE as in ``benchmarks/forecast_real.py`` (and by MAE per task). It prints one JSON line per
(setting, data set, seed) and writes nothing; the suite itself writes the results page.

    python benchmarks/forecast_variants.py '{"loss": "mae"}' '{"lr": 0.01}' --datasets Quinidine ChickWeight --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
import forecast_real as suite  # noqa: E402
import real_data  # noqa: E402


def run(name: str, kwargs: dict, seed: int) -> dict:
    import real_models

    data = real_data.LOADERS[name]()
    model_errors, last_value_errors, fit_s, inside = [], [], 0.0, {}
    for i, task in enumerate(data.tasks):
        train, query = task.train, task.query.reset_index(drop=True)
        row = real_models.SMRRow(data, seed, None, kwargs)  # "covariates": true reads them; it tells the horizon
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row.fit(train, query)
            fit_s += time.perf_counter() - start
            pred = row.predict(query)
        model = row.model_
        truth = query["y"].to_numpy(float)
        for level, (lo, hi) in row.intervals.items():
            inside.setdefault(level, []).append((lo <= truth) & (truth <= hi))
        last = query["unique_id"].map(train.sort_values("ds").groupby("unique_id")["y"].last()).to_numpy(float)
        model_errors.append(suite.series_errors(train, query, pred).assign(task=i))
        last_value_errors.append(suite.series_errors(train, query, last).assign(task=i))
    scaled, _ = suite.scaled_mae(pd.concat(model_errors))
    last_value, _ = suite.scaled_mae(pd.concat(last_value_errors))
    task_mae = [round(float((e["mae"] * e["n"]).sum() / e["n"].sum()), 4) for e in model_errors]  # MAE per cut-off
    return {"dataset": name, "kwargs": kwargs, "seed": seed, "scaled_mae": round(scaled, 4), "task_mae": task_mae,
            "last_value": round(last_value, 4), "ratio": round(scaled / last_value, 4), "fit_s": round(fit_s, 1),
            "best_epoch": model.best_epoch_, "kept": model.selected_forecaster_,
            "coverage": {lv: round(float(np.concatenate(v).mean()), 3) for lv, v in inside.items()}}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("settings", nargs="*", type=json.loads, default=[{}], help="JSON objects of estimator keywords")
    p.add_argument("--datasets", nargs="+", default=list(real_data.LOADERS), choices=list(real_data.LOADERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--jobs", type=int, default=2, help="fits at a time, one process each")
    args = p.parse_args(argv)
    jobs = [(name, kwargs, seed) for kwargs in (args.settings or [{}]) for name in args.datasets for seed in args.seeds]
    results = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for result in pool.map(run, *zip(*jobs)):
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    main()
