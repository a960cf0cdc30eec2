"""A noisy reading of a smooth signal at Poisson times, and network weights compared: what several test
modules build on."""

import numpy as np
import pandas as pd
import torch

SMALL = dict(d_model=8, state_size=8, n_layers=1, batch_size=4, random_state=0)


def irregular_frame(n_series=8, n_obs=20, seed=0, gaps=None):
    """Series at Poisson times (or at a constant gap per series, ``gaps[i]``) with a smooth signal and a
    noisy reading of it."""
    rng = np.random.default_rng(seed)
    if gaps is None:
        t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    else:
        t = np.asarray(gaps, np.float64)[:, None] * np.arange(1, n_obs + 1)
    signal = np.sin(0.6 * t + rng.uniform(0, 6, (n_series, 1)))
    X = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs), "ds": t.ravel(),
                      "x": (signal + 0.2 * rng.normal(size=t.shape)).ravel()})
    return X, pd.Series(signal.ravel(), name="target")


def weights(model):
    return {k: v.clone() for k, v in model.model_.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
