"""The causal statistics and row inputs (smr_ts/forecasting/features.py): computed once, continued from a
carried state exactly, causal, and blind to a series' scale and offset."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP, to_panel
from smr_ts.forecasting.features import causal_statistics, forecast_tensors
from smr_ts.forecasting.pairs import _collate

from _signals import SMALL

from ._data import FAST, poisson_frame, split_last


@pytest.mark.parametrize("factor, offset", [(1e-12, 0.0), (1.0, 1e7), (1e6, -3e6)])
def test_scale_and_offset_do_not_change_the_forecast(factor, offset):
    base = poisson_frame(lambda t, rng, i: np.sin(0.7 * t + i) + 0.05 * rng.normal(size=len(t)), n_series=12)
    history, future = split_last(base, 3)
    settings = {**FAST, "epochs": 4}
    unit = SMRForecaster(**settings).fit(history).forecast(times=future[["unique_id", "ds"]])["S5"].to_numpy()
    moved = SMRForecaster(**settings).fit(history.assign(y=history["y"] * factor + offset))
    got = (moved.forecast(times=future[["unique_id", "ds"]])["S5"].to_numpy() - offset) / factor
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, unit, atol=2e-3)


def test_a_training_cut_sees_what_a_forecast_sees():
    """The training path (one pass, a pair (k, q)) and the forecast path (the history up to k,
    then a query) give the same number: statistics and inputs are causal."""
    frame = poisson_frame(lambda t, rng, i: np.cumsum(rng.normal(size=len(t))) + 0.1 * t, n_series=6)
    model = SMRForecaster(**{**FAST, "epochs": 3, "validation_fraction": 0.0}).fit(frame)
    series = frame[frame["unique_id"] == "s03"].sort_values("ds").reset_index(drop=True)
    k, q = 17, 21
    prefix = series.iloc[: k + 1].assign(unique_id="prefix")
    forecast = model.forecast(times=pd.DataFrame({"unique_id": ["prefix"], "ds": [series["ds"][q]]}),
                              context=prefix)["S5"].iloc[0]

    panel = to_panel(series["unique_id"].to_numpy(), series["ds"].to_numpy(),
                     series[["y"]].to_numpy(np.float64))
    data = forecast_tensors(panel, model.layout_, FIRST_GAP)
    batch = _collate(data, model.layout_, [(0, 0, len(series))], [(np.array([k]), np.array([q]))], "cpu")
    with torch.no_grad():
        correction, _ = model.model_(batch)
    trained = data.anchor[0, k, 0] + data.scale[0, k, 0] * float(correction[0, 0, 0])
    assert trained == pytest.approx(forecast, rel=1e-5, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(n_series=st.integers(1, 4), n_rows=st.integers(2, 30), n_columns=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1), data=st.data())
def test_statistics_continued_from_the_carried_state_equal_those_of_the_whole_history(n_series, n_rows, n_columns,
                                                                                       seed, data):
    """Cut a history anywhere: the statistics of the later rows, continued from where the earlier rows left them
    (the state update carries), equal those of the whole history at those rows, bit for bit, and so does the state
    after the last row. Fails if the carried sums are added after the cumulative sums instead of seeding them
    (tried: a float rounding apart), or if the first later observation's change ignores the carried last value.
    The recent scale too, on datetimes' int64 nanoseconds (its decay reads the carried last observation's time)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_series, n_rows, n_columns)) * 10.0 ** rng.uniform(-3, 3) + rng.normal() * 1e3
    observed = rng.random(x.shape) < 0.7
    x = np.where(observed, x, 0.0)
    fallback = rng.uniform(0.1, 2.0, n_columns)
    cut = data.draw(st.integers(1, n_rows - 1))
    time = 1_700_000_000 * 10**9 + np.cumsum(rng.integers(1, 10**12, (n_series, n_rows)), axis=1)
    tau = float(rng.uniform(1e11, 1e13))
    whole = causal_statistics(x, observed, fallback, time=time, tau=tau)
    first = causal_statistics(x[:, :cut], observed[:, :cut], fallback, time=time[:, :cut], tau=tau)
    later = causal_statistics(x[:, cut:], observed[:, cut:], fallback, carry=first.after, time=time[:, cut:], tau=tau)
    for name in ("mean", "scale", "recent", "change"):
        np.testing.assert_array_equal(getattr(later, name), getattr(whole, name)[:, cut:], err_msg=name)
    for name, value in vars(whole.after).items():
        np.testing.assert_array_equal(getattr(later.after, name), value, err_msg=name)


def test_forecasts_and_their_std_follow_an_affine_change_of_the_series():
    """Planted: the forecast std left in the series' scaled units (the mean is held by
    test_scale_and_offset_do_not_change_the_forecast); a NLL that weighs
    ``log(std)`` wrongly.

    A random walk with steps of std 2 on a grid of one time unit, forecast one step ahead: the error
    of the best forecast (the last value) has std 2, and 20 after the change. Training draws reach
    ``MIN_GAPS_AHEAD`` steps ahead whatever the horizon: 30 epochs let the one-step std settle."""
    rng = np.random.default_rng(0)
    walks = 2.0 * np.cumsum(rng.normal(size=(24, 60)), 1)
    history = pd.DataFrame({"unique_id": np.repeat(np.arange(24), 60), "ds": np.tile(np.arange(60.0), 24),
                            "y": walks.ravel()})
    settings = dict(SMALL, epochs=30, batch_size="auto", lr=0.01, horizon=1.0, loss="gaussian",
                    validation_fraction=0.0)
    base = SMRForecaster(**settings).fit(history).forecast(h=1, return_std=True)
    moved = SMRForecaster(**settings).fit(history.assign(y=10 * history["y"] + 100)).forecast(h=1, return_std=True)
    np.testing.assert_allclose(moved["S5"], 10 * base["S5"] + 100, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(moved["S5_std"], 10 * base["S5_std"], rtol=1e-4)
    assert float(np.sqrt(np.mean(base["S5_std"] ** 2))) == pytest.approx(2.0, rel=0.15)
