"""Quickstart: forecast irregularly sampled series with SMRForecaster.

Builds a long frame of damped oscillators observed at Poisson times (datetime stamps; no two
series share a grid), fits a small S5 model with a Gaussian head, forecasts every series at its
own held-out future timestamps, compares the error with a last-value baseline, uses new
observations as context without refitting, and saves and reloads the model.

    python examples/quickstart.py [--seed 0] [--epochs 30]

About 10-20 s on a laptop CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster
from smr_ts.datasets import make_oscillators


def _mse(truth, pred) -> float:
    return float(np.mean((np.asarray(truth) - np.asarray(pred)) ** 2))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    # 32 series, 60 observations each at ~2 per hour (exponential gaps), and the next 5 of each.
    history, future = make_oscillators(
        n_series=32, n_obs=60, horizon=5, start="2024-01-01", freq_unit="1h", random_state=args.seed
    )
    print(f"history: {len(history)} rows, {history['unique_id'].nunique()} series; future: {len(future)} rows")
    print(history.head(3).to_string(index=False), end="\n\n")

    model = SMRForecaster(
        d_model=16, state_size=16, n_layers=2, loss="gaussian", epochs=args.epochs, lr=5e-3, ssm_lr=3e-3,
        batch_size=16, random_state=args.seed,
    )
    start = time.perf_counter()
    model.fit(history)
    unit = pd.Timedelta(round(model.time_unit_), unit="ns").round("s")
    print(f"fit: {len(model.history_)} epochs in {time.perf_counter() - start:.1f} s, best epoch "
          f"{model.best_epoch_}, time unit (median gap) {unit}\n")

    # Forecasts at the held-out times: irregular and different for every series.
    queries = future[["unique_id", "ds"]]
    forecast = model.forecast(times=queries, return_std=True)
    last_value = history.groupby("unique_id")["y"].last().reindex(future["unique_id"])
    inside = np.abs(future["y"] - forecast["S5"]) <= 2 * forecast["S5_std"]  # columns named after the model

    # Context: reveal each series' first 2 future observations, forecast the other 3, no refit.
    seen = future.groupby("unique_id").cumcount() < 2
    context, later = future[seen], future[~seen]
    with_context = model.forecast(times=later[["unique_id", "ds"]], context=context)
    last_seen = context.groupby("unique_id")["y"].last().reindex(later["unique_id"])

    table = pd.DataFrame(
        {
            "all 5 future points": [_mse(future["y"], forecast["S5"]), _mse(future["y"], last_value)],
            "last 3, 2 given as context": [_mse(later["y"], with_context["S5"]), _mse(later["y"], last_seen)],
        },
        index=["SMRForecaster", "last value"],
    )
    print("Mean squared error at the held-out timestamps:")
    print(table.to_string(float_format="{:.4f}".format), end="\n\n")
    print(f"{inside.mean():.0%} of the held-out values lie within 2 predicted std (return_std=True)\n")

    # The same queries through the estimator API: predictions aligned to the queries' index.
    mean, std = model.predict(queries, return_std=True)
    print("predict(future[['unique_id', 'ds']], return_std=True):")
    print(pd.concat([queries, mean, std.add_suffix("_std")], axis=1).head(3).to_string(index=False), end="\n\n")

    # h steps at each series' typical gap, when there are no particular times to ask about.
    steps = model.forecast(h=3, return_std=True)
    print("forecast(h=3, return_std=True):")
    print(steps.head(6).to_string(index=False), end="\n\n")

    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        files = sorted(p.name for p in Path(folder).iterdir())
        loaded = SMRForecaster.load(folder)
        identical = loaded.forecast(h=3, return_std=True).equals(steps)
    print(f"save/load: wrote {files}; reloaded model gives identical forecasts: {identical}")

    return {
        "mse": table.iloc[0, 0], "last_value_mse": table.iloc[1, 0],
        "context_mse": table.iloc[0, 1], "coverage": float(inside.mean()), "reload_identical": identical,
        "history": history, "future": future, "forecast": forecast, "with_context": with_context,
        "steps": steps, "model": model,
    }


if __name__ == "__main__":
    main()
