"""Per-column standardisation (smr_ts/data/scaling.py): observed slots scaled, unobserved slots 0."""

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.regression.scaling import column_moments, standardise

from _signals import SMALL, irregular_frame


def test_unobserved_slots_hold_zero_and_observed_ones_are_standardised():
    """Catches a standardisation that leaves ``-mean / scale`` in unobserved slots (the slot's 0 fill scaled
    like a value)."""
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 2.0, (3, 8, 2))
    observed = rng.random((3, 8, 2)) > 0.3
    observed[0, 2] = [True, False]  # a row that hides one of its two columns
    values = np.where(observed, values, 0.0)  # what a panel holds where nothing was observed
    mean, scale = column_moments(np.where(observed, values, np.nan).reshape(-1, 2))
    out, mask = standardise(values, observed, mean, scale)
    np.testing.assert_array_equal(out[~observed], 0.0)
    np.testing.assert_allclose(out[observed], ((values - mean) / scale)[observed], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(mask, observed)
    assert out.dtype == np.float32


def test_a_shifted_feature_changes_no_prediction_when_some_of_its_slots_are_hidden():
    """Features are standardised per column, so ``x + 100`` feeds the network the same numbers as ``x``,
    also at rows where ``x`` is missing and ``z`` observed (those slots hold 0 either way). Fails if the
    hidden slots hold ``-mean / scale``, which moves with the shift."""
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.exponential(1.0, (6, 15)), 1)
    X = pd.DataFrame({"unique_id": np.repeat(np.arange(6), 15), "ds": t.ravel(),
                      "x": np.sin(t).ravel() + 0.1 * rng.normal(size=t.size), "z": rng.normal(size=t.size)})
    y = pd.Series(np.sin(t).ravel(), name="y")
    X.loc[X.index[3::7], "x"] = np.nan
    settings = dict(d_model=8, state_size=8, n_layers=1, epochs=2, random_state=0)
    base = SMRForecaster(**settings).fit(X, y).predict(X).to_numpy()
    shifted = SMRForecaster(**settings).fit(X.assign(x=X["x"] + 100.0), y).predict(X.assign(x=X["x"] + 100.0))
    np.testing.assert_allclose(shifted.to_numpy(), base, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- scaling undone on the way out
def test_regression_follows_an_affine_change_of_the_target():
    """Planted: the target's mean not added back; the predicted std left in scaled units; a NLL that
    weighs ``log(std)`` wrongly (the std then misses the noise's by sqrt(2)).

    Targets are standardised per column, so 10 y + 100 trains the same network as y: its
    predictions must be 10 x + 100 the others, and its std 10 x theirs. The targets are noise of std 3
    around 5 that the input does not predict, so the std is also known on an absolute scale.
    """
    X, _ = irregular_frame(n_series=24)
    y = pd.Series(5.0 + 3.0 * np.random.default_rng(1).normal(size=len(X)), name="target")
    settings = dict(SMALL, epochs=40, lr=0.02, batch_size=24, loss="gaussian", validation_fraction=0.0)
    mean, std = SMRForecaster(**settings).fit(X, y).predict(X, return_std=True)
    moved_mean, moved_std = SMRForecaster(**settings).fit(X, 10 * y + 100).predict(X, return_std=True)
    np.testing.assert_allclose(moved_mean, 10 * mean + 100, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(moved_std, 10 * std, rtol=1e-4)
    assert moved_mean.mean() == pytest.approx(150.0, abs=3.0)
    assert float(np.sqrt(np.mean(moved_std**2))) == pytest.approx(30.0, rel=0.1)  # on the targets' scale
