"""The golden predictions: a fixed seed, the quickstart data, small models of every backbone.

``tests/test_golden.py`` holds the estimator to ``tests/data/golden_predictions.npz``, so a change
that moves the numbers shows up. A deliberate numerical change regenerates the file with

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

# (name, estimator settings): forecast mode on the quickstart data.
CASES = [
    ("s5_gaussian", dict(backbone="s5", loss="gaussian")),
    ("s5_smr", dict(backbone="s5", smr=True)),
    ("s6_smr", dict(backbone="s6", smr=True)),
    ("gru_dt", dict(backbone="gru_dt")),
]
COMMON = dict(d_model=8, state_size=8, n_layers=2, epochs=3, batch_size=16, lr=5e-3, ssm_lr=3e-3, random_state=0)


def golden_predictions() -> dict[str, np.ndarray]:
    """Forecasts of each case at the quickstart's held-out times (and regression predictions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history, future = make_oscillators(n_series=12, n_obs=40, horizon=5, start="2024-01-01",
                                           freq_unit="1h", random_state=0)
        out = {}
        for name, settings in CASES:
            model = SMRForecaster(**COMMON, **settings).fit(history)
            fc = model.forecast(times=future[["unique_id", "ds"]], return_std=settings.get("loss") == "gaussian")
            out[name] = fc.drop(columns=["unique_id", "ds"]).to_numpy(np.float64)
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
