"""Would averaging whole fits help? Score bags of the default's fits against the fits alone.

Fits a setting on every task of the chosen data sets for each seed, as ``forecast_variants.py`` does
(``SMRRow``, the horizon told), keeps each fit's point forecasts in a pickle (so a rerun fits only the
seeds it lacks), then scores each bag (a group of seeds whose forecasts are averaged, or their
median) against the mean of its members' own scaled MAE. Unlike ``n_networks``, each member has its
own held-out part, epoch and floor. Prints one line per data set and the geometric means.

    python benchmarks/forecast_bagging.py runs/bag.pkl --bags 0,1,2 3,4,5 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
import forecast_real as suite  # noqa: E402
import real_data  # noqa: E402


def forecasts(name: str, kwargs: dict, seed: int) -> tuple:
    import real_models
    import torch

    torch.set_num_threads(1)
    data, out = real_data.LOADERS[name](), []
    for task in data.tasks:
        query = task.query.reset_index(drop=True)
        row = real_models.SMRRow(data, seed, None, kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row.fit(task.train, query)
            out.append(np.asarray(row.predict(query), float))
    return name, seed, out


def scaled(tasks: list, predictions: list) -> float:
    errors = [suite.series_errors(t.train, t.query.reset_index(drop=True), p).assign(task=i)
              for i, (t, p) in enumerate(zip(tasks, predictions))]
    return suite.scaled_mae(pd.concat(errors))[0]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", type=Path, help="pickle of the fits' forecasts (read, then extended)")
    p.add_argument("--bags", nargs="+", default=["0,1,2", "3,4,5"], help="comma-separated seeds per bag")
    p.add_argument("--datasets", nargs="+", default=list(real_data.LOADERS), choices=list(real_data.LOADERS))
    p.add_argument("--kwargs", default="{}", help="the setting, as JSON (default: the estimator's defaults)")
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args(argv)
    bags = [[int(s) for s in b.split(",")] for b in args.bags]
    kwargs = json.loads(args.kwargs)
    store = pickle.loads(args.store.read_bytes()) if args.store.exists() else {}
    todo = [(n, s) for n in args.datasets for s in sorted({s for b in bags for s in b}) if (n, s) not in store]
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, seed, out in pool.map(forecasts, *zip(*[(n, kwargs, s) for n, s in todo])) if todo else []:
            store[(name, seed)] = out
            args.store.write_bytes(pickle.dumps(store))
    logs = {"single": 0.0, "mean": 0.0, "median": 0.0}
    for name in args.datasets:
        tasks = real_data.LOADERS[name]().tasks
        single = np.mean([scaled(tasks, store[(name, s)]) for b in bags for s in b])
        bagged = {how: np.mean([scaled(tasks, [how_f([store[(name, s)][i] for s in b], 0) for i in range(len(tasks))])
                                for b in bags]) for how, how_f in (("mean", np.mean), ("median", np.median))}
        for key, value in (("single", single), *bagged.items()):
            logs[key] += math.log(value)
        print(f"{name:14s} single fits {single:.3f}  bag mean {bagged['mean']:.3f} ({bagged['mean'] / single - 1:+.1%})"
              f"  bag median {bagged['median']:.3f}")
    n = len(args.datasets)
    print("geometric mean: " + ", ".join(f"{k} {math.exp(v / n):.3f}" for k, v in logs.items()))


if __name__ == "__main__":
    main()
