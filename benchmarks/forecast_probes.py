"""Probes behind entries of docs/results/forecasting_design.md ("The ten data sets"), each one command.

    python benchmarks/forecast_probes.py stretch   # us_employment, seed 0: how far `horizon` stretches training
    python benchmarks/forecast_probes.py ranges    # damped oscillators: the floor per range of time ahead or not
    python benchmarks/forecast_probes.py gold      # gold, seed 1: per cut-off MAE against last value, what was kept
    python benchmarks/forecast_probes.py candidates --dataset elecdemand --seed 0
        # the default: per cut-off, the held-out scores selection read, and every candidate's test score

Each prints its numbers; stretch, ranges and gold run S5 without SMR (the default when they were taken),
candidates the default of the code it runs with; one torch thread.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers

S5 = {"smr": False}


def stretch() -> None:
    """us_employment's scaled MAE with training stretched by no lag, a quarter horizon's (shipped), a whole one's."""
    import forecast_variants

    import smr_ts.forecasting.fit as fit
    import smr_ts.forecasting.layout as layout

    shipped = fit.trained_horizon
    for name, share in (("no stretch", 0.0), ("a quarter horizon (shipped)", layout.CURRENT_LAG), ("a whole horizon", 1.0)):
        layout.CURRENT_LAG = share
        fit.trained_horizon = shipped if share else (lambda panel, horizon: horizon)
        result = forecast_variants.run("us_employment", S5, 0)
        print(f"{name:28s} scaled MAE {result['scaled_mae']:.4f}")


def ranges() -> None:
    """Test MSE on damped oscillators: the network alone, the floor with one choice for all, the floor per range."""
    import smr_ts.forecasting.floor as floor
    from smr_ts import SMRForecaster
    from smr_ts.datasets import make_oscillators

    history, future = make_oscillators(n_series=32, n_obs=60, horizon=5, frequency=(0.25, 0.35), random_state=1)
    truth = future["y"].to_numpy()
    last = history.groupby("unique_id")["y"].last().reindex(future["unique_id"]).to_numpy()
    print(f"{'last value':28s} MSE {np.mean((truth - last) ** 2):.4f}")
    shipped = floor.MAX_RANGES
    for name, kw, n_ranges in (("network alone", {"floor": False}, shipped), ("one choice for all", {}, 1),
                               ("per range (shipped)", {}, shipped)):
        floor.MAX_RANGES = n_ranges
        model = SMRForecaster(d_model=16, state_size=16, n_layers=2, epochs=15, lr=5e-3, ssm_lr=3e-3, batch_size=16,
                              random_state=0, **S5, **kw).fit(history)
        pred = model.predict(future[["unique_id", "ds"]])["y"].to_numpy()
        print(f"{name:28s} MSE {np.mean((truth - pred) ** 2):.4f}  kept: {model.selected_forecaster_}")
    floor.MAX_RANGES = shipped


def gold() -> None:
    """Per cut-off of gold, seed 1: the forecast's MAE, last value's, the epoch kept and its gain z on validation."""
    import real_data
    import real_models

    data = real_data.LOADERS["gold"]()
    for i, task in enumerate(data.tasks):
        query = task.query.reset_index(drop=True)
        row = real_models.SMRRow(data, 1, None, dict(S5))
        row.fit(task.train, query)
        pred = row.predict(query)
        last = query["unique_id"].map(task.train.sort_values("ds").groupby("unique_id")["y"].last()).to_numpy()
        model = row.model_
        z = model.history_[model.best_epoch_]["valid_gain_z"] if model.best_epoch_ >= 0 else float("nan")
        print(f"cut-off {i}: MAE {np.abs(pred - query['y']).mean():.2f}, last value {np.abs(last - query['y']).mean():.2f}, "
              f"epoch {model.best_epoch_}, gain z {z:.2f}, kept {model.selected_forecaster_}")


def candidates(dataset: str, seed: int) -> None:
    """Per cut-off of ``dataset``, the default row: what selection kept, its held-out scores per range, and the
    test's scaled MAE of the network and of each simple forecaster standing alone (as the whole floor)."""
    import dataclasses

    import pandas as pd

    import forecast_real as suite
    import real_data
    import real_models
    from smr_ts.forecasting.floor import NETWORK, Floor
    from smr_ts.forecasting.floor import candidates as simple_forecasters

    pd.set_option("display.width", 250)
    data, errors = real_data.LOADERS[dataset](), {}
    for i, task in enumerate(data.tasks):
        train, query = task.train, task.query.reset_index(drop=True)
        row = real_models.SMRRow(data, seed, None, {})
        row.fit(train, query)
        model = row.model_
        state = model.forecast_state_
        print(f"cut-off {i}: kept {model.selected_forecaster_}; held-out scaled MAE per range:")
        print(model.selection_scores_.round(3).to_string())
        test = {}
        for kind in ["selected", NETWORK, *simple_forecasters(state.layout)]:
            if kind != "selected":
                model.forecast_state_ = dataclasses.replace(state, floor=Floor((), (kind,)))
            e = suite.series_errors(train, query, row.predict(query)).assign(task=i)
            errors.setdefault(kind, []).append(e)
            test[kind] = round(suite.scaled_mae(e)[0], 3)
        model.forecast_state_ = state
        print(f"  test scaled MAE: {test}")
    print("all cut-offs:", {k: round(suite.scaled_mae(pd.concat(v))[0], 3) for k, v in errors.items()})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("probe", choices=["stretch", "ranges", "gold", "candidates"])
    p.add_argument("--dataset", default="elecdemand", help="candidates: the suite's data set")
    p.add_argument("--seed", type=int, default=0, help="candidates: the seed")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    if args.probe == "candidates":
        candidates(args.dataset, args.seed)
    else:
        {"stretch": stretch, "ranges": ranges, "gold": gold}[args.probe]()


if __name__ == "__main__":
    main()
