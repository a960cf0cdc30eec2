"""What a sequence-regression fit trains on (``smr_ts/regression/fit.py``): its scalers."""

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster

SMALL = dict(d_model=8, state_size=8, n_layers=1, batch_size=4, epochs=1, random_state=0)


def constant_series(n_series: int, n_obs: int):
    """Series ``i`` holds the value ``2**i`` in every row (feature and target), at uneven times, so a
    mean over whole series, times the number of series, is a sum of distinct powers of two that
    names the series it was taken over."""
    rng = np.random.default_rng(0)
    level = np.repeat(2.0 ** np.arange(n_series), n_obs)
    X = pd.DataFrame({"unique_id": np.repeat(np.arange(n_series), n_obs),
                      "ds": np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1).ravel(),
                      "x": -level})
    return X, pd.Series(level, name="y")


def series_named_by(mean: float, n_series: int) -> list[int]:
    """The series whose levels ``2**i`` sum to ``mean * n_series`` (or fail if no such set exists)."""
    total = mean * n_series
    assert total == pytest.approx(round(total), abs=1e-3), f"{mean} is no mean over {n_series} whole series"
    return [i for i in range(64) if int(round(total)) >> i & 1]


@pytest.mark.parametrize("validation_fraction", [0.3, 0.0])
def test_scalers_are_fitted_on_the_training_series_only(validation_fraction):
    """Fails if the scalers are fitted on every series of X, the validation series included."""
    n_series, n_obs = 10, 6
    X, y = constant_series(n_series, n_obs)
    model = SMRForecaster(**SMALL, validation_fraction=validation_fraction).fit(X, y)
    n_train = n_series - int(round(validation_fraction * n_series))
    trained = series_named_by(float(model.target_mean_[0]), n_train)
    assert len(trained) == n_train, trained
    assert series_named_by(-float(model.feature_mean_[0]), n_train) == trained
    rows = X["unique_id"].isin(trained).to_numpy()
    np.testing.assert_allclose(model.target_scale_[0], np.std(y[rows]), rtol=1e-5)
    np.testing.assert_allclose(model.feature_scale_[0], np.std(X["x"][rows]), rtol=1e-5)
