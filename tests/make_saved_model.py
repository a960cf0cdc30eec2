"""tests/data/saved_model_format2/ holds a small forecasting model in save format 2, with the forecasts it
gave when it was written. tests/test_persistence.py loads it, so every later version must read it.

    python tests/make_saved_model.py   # adds a fixture of this version's format; never refreshes a kept one
"""

from pathlib import Path

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster
from smr_ts.persistence import FORMAT

FOLDER = Path(__file__).parent / "data" / "saved_model_format2"


def frame() -> pd.DataFrame:
    """Irregular series with a future-known dose and a static group: the save covers every part of the state."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        t = np.cumsum(rng.exponential(1.0, 30))
        dose = np.where(rng.random(30) < 0.3, 1.0, 0.0)
        y = np.sin(t + i) + 0.5 * np.cumsum(dose) * 0.1 + 0.05 * rng.normal(size=30)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": y, "dose": dose, "group": "ab"[i % 2]}))
    return pd.concat(rows, ignore_index=True)


def queries(history: pd.DataFrame) -> pd.DataFrame:
    last = history.groupby("unique_id")["ds"].max()
    return pd.DataFrame({"unique_id": np.repeat(last.index, 2), "ds": np.repeat(last.to_numpy(), 2) + np.tile([0.5, 2.0], len(last)),
                         "dose": np.tile([1.0, 0.0], len(last))})


def main() -> None:
    """Writes tests/data/saved_model_format<N> for this version's save format N, never over a kept fixture."""
    folder = FOLDER.with_name(f"saved_model_format{FORMAT}")
    if folder.exists():
        raise SystemExit(f"{folder} exists: a kept save is never refreshed")
    history = frame()
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=12, batch_size=8, future_cols=["dose"],
                          static_cols=["group"], validation_fraction=0.3, random_state=0).fit(history)
    model.save(folder)
    forecasts = model.forecast(times=queries(history), level=[80])
    forecasts.to_csv(folder / "forecasts.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
