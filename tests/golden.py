"""The golden predictions: a fixed seed, the quickstart data, small models of every backbone.

``tests/test_golden.py`` holds the estimator to ``tests/data/golden_predictions.npz``, so a change
that moves the numbers shows up. Each forecast case trains long enough that model selection keeps
the trained network (its best epoch, stored beside its forecasts, is >= 0), not the last-value
network it starts from. A deliberate numerical change regenerates the file with

    python tests/golden.py

and says why in its commit message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from smr_ts import SMRForecaster
from smr_ts.datasets import make_oscillators

GOLDEN = Path(__file__).parent / "data" / "golden_predictions.npz"

# (name, estimator settings): forecast mode on the quickstart data. Three epochs leave S5 and GRU-dt
# short of a significant gain over last value, so selection would keep the untrained network.
CASES = [
    ("s5_gaussian", dict(backbone="s5", loss="gaussian", epochs=10)),
    ("s5_smr", dict(backbone="s5", smr=True, epochs=10)),
    ("s6_smr", dict(backbone="s6", smr=True, epochs=10)),
    ("gru_dt", dict(backbone="gru_dt", epochs=10)),
]
# The file holds CPU numerics: on a CUDA machine "auto" would compare another set of kernels. It pins the
# network's forecasts, so the floor (a simple forecaster in its place: tests/forecasting/test_floor.py) is off;
# smr=False keeps the cases that do not name SMR as they were made (the default became "auto").
COMMON = dict(d_model=8, state_size=8, n_layers=2, epochs=3, batch_size=16, lr=5e-3, ssm_lr=3e-3, random_state=0,
              device="cpu", floor=False, smr=False)


def columns_key(name: str) -> str:
    """The file's entry for the forecast columns of case ``name`` (named after the model, with the values)."""
    return f"{name}_columns"


def best_epoch_key(name: str) -> str:
    """The file's entry for the epoch whose weights case ``name`` kept (-1: the last-value network)."""
    return f"{name}_best_epoch"


def golden_predictions() -> dict[str, np.ndarray]:
    """Forecasts of each case at the quickstart's held-out times, their column names and the epoch each
    kept (and regression predictions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history, future = make_oscillators(n_series=12, n_obs=40, horizon=5, start="2024-01-01",
                                           freq_unit="1h", random_state=0)
        out = {}
        for name, settings in CASES:
            model = SMRForecaster(**{**COMMON, **settings}).fit(history)
            fc = model.forecast(times=future[["unique_id", "ds"]], return_std=settings.get("loss") == "gaussian")
            out[name] = fc.drop(columns=["unique_id", "ds"]).to_numpy(np.float64)
            out[columns_key(name)] = np.asarray(fc.columns.drop(["unique_id", "ds"]), dtype=str)
            out[best_epoch_key(name)] = np.asarray(model.best_epoch_, np.int64)
        # Regression mode: predict y from the time since start, per row.
        X = history[["unique_id", "ds"]].assign(x=history["y"].shift(1).fillna(0.0).to_numpy())
        reg = SMRForecaster(**COMMON).fit(X, history["y"])
        out["regression"] = np.asarray(reg.predict(X), np.float64)
        return out
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    np.savez(GOLDEN, **golden_predictions())
    print(f"wrote {GOLDEN}")
