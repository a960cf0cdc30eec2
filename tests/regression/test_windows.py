"""Sequence regression's tensors (smr_ts/data/windows.py): which rows count as observations."""

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster
from smr_ts.data.panel import to_panel
from smr_ts.regression.scaling import column_moments
from smr_ts.regression.windows import Scaling, panel_tensors


def two_feature_frame(n_series=4, n_obs=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    X = pd.DataFrame({"unique_id": np.repeat(np.arange(n_series), n_obs), "ds": t.ravel(),
                      "x": np.sin(t).ravel() + 0.1 * rng.normal(size=t.size), "z": rng.normal(size=t.size)})
    return X, pd.Series(np.sin(t).ravel(), name="y")


def test_a_row_that_observes_one_of_several_features_is_an_observation():
    """A row with ``x`` missing and ``z`` observed is an observation: the mask is on, its ``z`` reaches the
    outputs of later rows, and it is not the same as dropping the row. Catches a row mask that asks for every
    feature (all) where one is enough (any)."""
    X, y = two_feature_frame()
    hidden = X.copy()
    rows = X.index[(X["unique_id"] == 1).to_numpy()][[5, 9]]
    hidden.loc[rows, "x"] = np.nan
    values = hidden[["x", "z"]].to_numpy(np.float32)
    mean, scale = column_moments(values)
    panel = to_panel(hidden["unique_id"].to_numpy(), hidden["ds"].to_numpy(), values)
    data = panel_tensors(panel, Scaling(mean, scale, np.zeros(0, np.float32), np.ones(0, np.float32), 1.0))
    np.testing.assert_array_equal(data["observed"].numpy()[panel.valid], True)

    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=2, random_state=0).fit(X, y)
    with_z = model.predict(hidden).to_numpy()
    other_z = hidden.copy()
    other_z.loc[rows, "z"] += 3.0
    later = (X["unique_id"] == 1).to_numpy() & (X["ds"] > X.loc[rows[0], "ds"]).to_numpy()
    assert np.abs(model.predict(other_z).to_numpy()[later] - with_z[later]).min() > 1e-6
    dropped = model.predict(X.drop(index=rows)).to_numpy()
    assert not np.allclose(np.delete(with_z, rows), dropped, atol=1e-5)
