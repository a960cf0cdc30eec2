"""How much elecdemand's temperature can tell: a gradient-boosted tree on the calendar, with and without it.

A reference for the real-data suite's covariate row (``benchmarks/forecast_real.py``), not a row of
it: scikit-learn's ``HistGradientBoostingRegressor`` fitted per cut-off on the suite's kept rows
before it, regressing the demand on the half-hour of the day, the day of the week and the day of
the year, and then also on the temperature and the work-day flag, known ahead as in the suite. It
forecasts the suite's query rows (the kept times of the next 7 days) and prints the MAE per
cut-off and on average, beside carrying the last value forward.

    .venv-bench/bin/python benchmarks/elecdemand_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_data  # noqa: E402

FEATURES = {"calendar": (), "calendar + temperature": ("temperature",),
            "calendar + temperature + workday": ("temperature", "workday")}


def calendar(frame: pd.DataFrame, extra) -> pd.DataFrame:
    ds = frame["ds"]
    return pd.DataFrame({"half_hour": ds.dt.hour * 2 + ds.dt.minute // 30, "weekday": ds.dt.dayofweek,
                         "day_of_year": ds.dt.dayofyear, **{name: frame[name] for name in extra}})


def main() -> dict:
    data = real_data.elecdemand()
    keys = ["unique_id", "ds"]
    errors = {name: [] for name in [*FEATURES, "last value"]}
    for task in data.tasks:
        train, query = task.train.merge(data.covariates, on=keys), task.query.merge(data.covariates, on=keys)
        for name, extra in FEATURES.items():
            tree = HistGradientBoostingRegressor(max_iter=300, random_state=0).fit(calendar(train, extra), train["y"])
            errors[name].append(float(np.abs(tree.predict(calendar(query, extra)) - query["y"]).mean()))
        errors["last value"].append(float(np.abs(train.sort_values("ds")["y"].iloc[-1] - query["y"]).mean()))
    print("| features | " + " | ".join(t.label for t in data.tasks) + " | mean |")
    print("|---|" + "---|" * (len(data.tasks) + 1))
    for name, values in errors.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} |")
    return errors


if __name__ == "__main__":
    with threadpool_limits(1):  # small trees: one OpenMP thread is faster than a shared machine's many
        main()
