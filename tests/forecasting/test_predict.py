"""Forecasts in blocks of series (smr_ts/forecasting/predict.py): which series a forecast prepares, what each
reads, and context rows read as the same rows of the fitted history."""

import copy
import dataclasses

import numpy as np
import pandas as pd

from smr_ts import SMRForecaster

from _signals import SMALL, irregular_frame


def drifting_groups(n_series=12, seed=0):
    """Series whose level drifts up or down by their static group, at Poisson times."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_series):
        group = "up" if s % 3 else "down"
        t = np.cumsum(rng.exponential(1.0, 30))
        y = (0.5 if group == "up" else -0.5) * t + 0.1 * rng.normal(size=30)
        frames.append(pd.DataFrame({"unique_id": f"s{s:02d}", "ds": t, "y": y, "group": group}))
    return pd.concat(frames, ignore_index=True)


def test_forecasting_some_series_equals_their_rows_of_a_forecast_of_all():
    """Each series reads its own statics whichever series are forecast with it. Catches statics encoded for
    every series of the history and then read by the position among the chosen ones."""
    frame = drifting_groups()
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=4, random_state=0, static_cols=["group"],
                          validation_fraction=0.0, horizon=4.0).fit(frame)
    full = model.forecast(h=3)
    some = full[full["unique_id"].isin(["s03", "s06", "s07"])]  # "down", "down", "up"; s00 down, s01 up come first
    got = model.forecast(times=some[["unique_id", "ds"]])
    np.testing.assert_allclose(got["S5"], some["S5"], rtol=1e-6, atol=1e-6)
    # the statics matter: the same history read as the other group forecasts otherwise
    rows = frame[frame["unique_id"] == "s03"]
    queries = some.loc[some["unique_id"] == "s03", ["ds"]].assign(unique_id="copy")
    as_up, as_down = (model.forecast(times=queries, context=rows.assign(unique_id="copy", group=group))["S5"].to_numpy()
                      for group in ("up", "down"))
    np.testing.assert_allclose(as_down, some.loc[some["unique_id"] == "s03", "S5"], rtol=1e-6, atol=1e-6)
    assert np.abs(as_up - as_down).min() > 0.05


# ---------------------------------------------------------------- context
def test_context_rows_forecast_like_the_same_rows_in_the_fitted_history():
    """Planted: context rows dropped, misaligned or read in another scale than fitted rows.

    A model whose fitted history lacks each series' last rows, given those rows as ``context``,
    forecasts exactly as the same weights with a history that holds them.
    """
    X, _ = irregular_frame(n_series=5, n_obs=30, seed=3)
    history = X.rename(columns={"x": "y"})
    recent = history.groupby("unique_id").cumcount(ascending=False) < 4
    settings = dict(SMALL, validation_fraction=0.0, horizon=20.0)
    full = SMRForecaster(**settings, epochs=2).fit(history)
    short = SMRForecaster(**settings, epochs=1).fit(history[~recent])
    without_recent = copy.deepcopy(full)
    # full's weights, the shorter history (and no saved states: those are full's)
    without_recent.forecast_state_ = dataclasses.replace(full.forecast_state_, panel=short.history_panel_, stream=None)
    last = history.groupby("unique_id")["ds"].max()
    queries = pd.DataFrame({"unique_id": np.repeat(last.index, 2),
                            "ds": np.repeat(last.to_numpy(), 2) + np.tile([0.5, 2.0], len(last))})
    expected = full.forecast(times=queries)
    got = without_recent.forecast(times=queries, context=history[recent].sample(frac=1.0, random_state=0))
    pd.testing.assert_frame_equal(got, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(without_recent.forecast(times=queries)["S5"], expected["S5"])  # the rows matter
