"""Series the forecasting tests share: Poisson-timed panels and how to split off their last rows."""

import numpy as np
import pandas as pd

FAST = dict(d_model=16, state_size=8, n_layers=1, epochs=12, batch_size=16, random_state=0)


def poisson_frame(values_fn, n_series=24, n_obs=40, seed=0, rate=1.0):
    """Series observed at Poisson times; ``values_fn(t, rng, i)`` gives series i's values."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        t = np.cumsum(rng.exponential(1.0 / rate, n_obs))
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": t, "y": values_fn(t, rng, i)}))
    return pd.concat(rows, ignore_index=True)


def split_last(frame, n_last):
    frame = frame.sort_values(["unique_id", "ds"])
    from_end = frame.groupby("unique_id").cumcount(ascending=False)
    return frame[from_end >= n_last].reset_index(drop=True), frame[from_end < n_last].reset_index(drop=True)


def last_values(history, future):
    return future["unique_id"].map(history.sort_values("ds").groupby("unique_id")["y"].last()).to_numpy()
