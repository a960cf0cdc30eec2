"""Adaptive conformal intervals in update (smr_ts/forecasting/adaptive.py): the ACI replay, the coverage log that
update keeps (saved with the model), and coverage that returns to nominal on a drifting stream where the
fit's static intervals do not."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.forecasting.adaptive import ACI_STEP, CoverageLog, effective_levels


def test_the_aci_replay_widens_after_misses_and_narrows_after_hits():
    ids = np.array(["a"] * 4 + ["b"] * 4, dtype=object)
    ranks = np.array([[100.0]] * 4 + [[1.0]] * 4)  # a: every row outside every interval; b: inside the narrowest
    log = CoverageLog(ids, ranks)
    out = effective_levels(log, np.array(["a", "b", "c"], dtype=object), 80.0, 0)
    alpha = 0.2
    for _ in range(4):
        alpha += ACI_STEP * (0.2 - 1.0)
    assert out[0] == pytest.approx(100 * (1 - alpha))  # 96: wider after four misses
    assert out[1] == pytest.approx(100 * (1 - (0.2 + 4 * ACI_STEP * 0.2)))  # 76: narrower after four hits
    assert out[2] == 80.0  # a series without logged rows keeps the nominal level
    # NaN ranks (the target not observed in that row) do not move it
    log_nan = CoverageLog(np.array(["a", "a"], dtype=object), np.array([[np.nan], [100.0]]))
    assert effective_levels(log_nan, np.array(["a"], dtype=object), 80.0, 0)[0] == pytest.approx(100 * (1 - 0.16))


def _stream(n_series=16, n_history=80, n_stream=60, seed=0):
    """Smooth sines the model forecasts well (small errors against the series' changes), then, after the
    fit, random walks: errors as large as the changes, so the held-out scores no longer describe them."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_series):
        t = np.arange(n_history + n_stream, dtype=float)
        y = np.sin(t / 5 + s) + 0.02 * rng.normal(size=len(t))
        walk = y[n_history - 1] + np.cumsum(0.2 * rng.normal(size=n_stream))
        y[n_history:] = walk
        rows.append(pd.DataFrame({"unique_id": f"s{s:02d}", "ds": t, "y": y}))
    frame = pd.concat(rows, ignore_index=True)
    return frame[frame["ds"] < n_history], frame[frame["ds"] >= n_history]


def test_adaptive_intervals_return_to_nominal_on_a_drifting_stream_and_static_ones_do_not(tmp_path):
    """The series turn into random walks after the fit. One row per series at a time: forecast it (80 %), then
    update with it.
    The fit's static intervals keep their width and cover far less than 80 %; the adapted ones widen until
    the second half of the stream covers close to 80 %."""
    history, stream = _stream()
    model = SMRForecaster(d_model=16, state_size=8, n_layers=1, epochs=20, random_state=0, horizon=1.0,
                          floor=False).fit(history)
    assert model.best_epoch_ >= 0  # a network that learnt the sines: its held-out errors are small
    adaptive, static = [], []
    for t, rows in stream.groupby("ds"):
        query = rows[["unique_id", "ds"]]
        state = model.forecast_state_
        out = model.forecast(times=query, level=[80])
        inside = (out["S5-lo-80"].to_numpy() <= rows["y"].to_numpy()) & (rows["y"].to_numpy() <= out["S5-hi-80"].to_numpy())
        adaptive.append(inside)
        model.forecast_state_ = dataclasses.replace(state, coverage=None)  # the fit's intervals, as before
        plain = model.forecast(times=query, level=[80])
        static.append((plain["S5-lo-80"].to_numpy() <= rows["y"].to_numpy())
                      & (rows["y"].to_numpy() <= plain["S5-hi-80"].to_numpy()))
        model.forecast_state_ = state
        model.update(rows)
    adaptive, static = np.array(adaptive), np.array(static)
    late = len(adaptive) // 2
    assert static.mean() < 0.6  # the drift: the fit's intervals are too narrow now
    assert abs(adaptive[late:].mean() - 0.8) < 0.07, adaptive[late:].mean()
    assert adaptive[late:].mean() > static[late:].mean() + 0.15
    log = model.forecast_state_.coverage
    assert len(log.ids) == len(stream)  # every streamed row was logged
    # the log is saved with the model: the loaded one adapts alike
    before = model.forecast(h=1, level=[80])
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(SMRForecaster.load(tmp_path / "m").forecast(h=1, level=[80]), before)
