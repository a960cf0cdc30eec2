"""Forecast columns are named after the model (``alias``), as the Nixtla libraries name theirs: ``S5``,
``S5-lo-80``, ``S5_ql0.1``, ``S5_std``, ``S5:<target>`` per target of several; the target's name stays the
truth's (backtests) and ``predict``'s (it stands in for ``y``)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from smr_ts import SMRForecaster
from smr_ts.datasets import make_oscillators
from smr_ts.model_selection import backtest

TINY = dict(d_model=8, state_size=8, n_layers=1, epochs=1, horizon=3.0, random_state=0)


@pytest.fixture(scope="module")
def panel():
    return make_oscillators(n_series=6, n_obs=30, random_state=0)


def test_an_alias_names_every_forecast_column_and_the_backtest_keeps_the_truth(panel):
    model = SMRForecaster(**TINY, alias="mine", loss="quantile").fit(panel)
    assert model.alias_ == "mine"
    out = model.forecast(h=2, level=[80])
    assert list(out.columns) == ["unique_id", "ds", "mine", "mine_ql0.1", "mine_ql0.5", "mine_ql0.9",
                                 "mine-lo-80", "mine-hi-80"]
    result = backtest(model, panel, horizon=2.0, n_cutoffs=1, level=[80])
    assert list(result.columns) == ["unique_id", "ds", "cutoff", "y", "mine", "mine_ql0.1", "mine_ql0.5",
                                    "mine_ql0.9", "mine-lo-80", "mine-hi-80"]
    truth = panel.set_index(["unique_id", "ds"])["y"]
    np.testing.assert_array_equal(result["y"], truth.loc[list(zip(result["unique_id"], result["ds"]))])
    # predict mirrors y, so it keeps the target's name; its values are the forecast's
    queries = out[["unique_id", "ds"]]
    np.testing.assert_array_equal(model.predict(queries)["y"], out["mine"])


def test_the_default_alias_is_the_backbone_name_and_the_std_follows_it(panel):
    model = SMRForecaster(**TINY, loss="gaussian").fit(panel)
    assert model.alias_ == "S5" and model.alias is None
    assert list(model.forecast(h=1, return_std=True).columns) == ["unique_id", "ds", "S5", "S5_std"]
    gru = SMRForecaster(**TINY, backbone="gru_dt").fit(panel)
    assert list(gru.forecast(h=1).columns) == ["unique_id", "ds", "GRU-dt"]


def test_several_targets_get_one_column_each_after_the_model(panel):
    frame = panel.assign(z=lambda f: 2.0 * f["y"] + 1.0)
    model = SMRForecaster(**TINY, target_cols=["y", "z"]).fit(frame)
    out = model.forecast(h=1, level=[80])
    assert list(out.columns) == ["unique_id", "ds", "S5:y", "S5:z", "S5:y-lo-80", "S5:y-hi-80", "S5:z-lo-80",
                                 "S5:z-hi-80"]
    result = backtest(model, frame, horizon=2.0, n_cutoffs=1)
    assert list(result.columns) == ["unique_id", "ds", "cutoff", "y", "S5:y", "z", "S5:z"]
    assert np.isfinite(model.score(frame.groupby("unique_id").tail(2).assign(
        ds=lambda f: f["ds"] + 100.0)))  # score reads each target's own column


def test_an_alias_that_names_a_column_of_x_or_nothing_is_refused(panel):
    with pytest.raises(ValueError, match="alias='y' names the forecast column 'y', which is a column of X"):
        SMRForecaster(**TINY, alias="y").fit(panel)
    with pytest.raises(ValueError, match="alias='price' names the forecast column 'price'"):
        SMRForecaster(**TINY, alias="price").fit(panel.assign(price=1.0))
    with pytest.raises(ValueError, match="'S5:z', which is a column of X"):
        SMRForecaster(**TINY, target_cols=["y", "z"]).fit(panel.assign(z=1.0, **{"S5:z": 0.0}))
    with pytest.raises(InvalidParameterError, match="'alias' parameter"):
        SMRForecaster(**TINY, alias=" ").fit(panel)


def test_the_alias_is_fixed_at_fit_and_saved(panel, tmp_path):
    model = SMRForecaster(**TINY, alias="first").fit(panel)
    model.set_params(alias="second")  # changes the next fit, not this one's columns
    assert "first" in model.forecast(h=1).columns
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.alias_ == "first" and loaded.alias == "second"
    pd.testing.assert_frame_equal(loaded.forecast(h=1), model.forecast(h=1))
    assert "second" in loaded.fit(panel).forecast(h=1).columns
