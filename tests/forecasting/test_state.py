"""Forecasting's fitted state (smr_ts/forecasting/state.py): the stream state's typed operations, and the
state as JSON and tensors and back."""

import dataclasses

import numpy as np
import torch

from smr_ts import SMRForecaster
from smr_ts.forecasting.features import RunningStatistics
from smr_ts.forecasting.state import ForecastState, StreamState

from ._data import FAST, poisson_frame


def stream(n, seed=0):
    rng = np.random.default_rng(seed)
    stats = RunningStatistics(count=rng.integers(0, 9, (n, 2)), total=rng.normal(size=(n, 2)),
                              last=rng.normal(size=(n, 2)), abs_change=rng.random((n, 2)),
                              n_change=rng.integers(0, 9, (n, 2)), recent_sum=rng.random((n, 2)),
                              recent_weight=rng.random((n, 2)), last_time=rng.integers(0, 10**18, (n, 2)))
    return StreamState({"layer0.x": torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))},
                       torch.randn(n, 4, generator=torch.Generator().manual_seed(seed + 1)), stats)


def same(a: StreamState, b: StreamState) -> bool:
    return (a.backbone.keys() == b.backbone.keys()
            and all(torch.equal(a.backbone[k], b.backbone[k]) for k in a.backbone)
            and torch.equal(a.h_last, b.h_last)
            and all(np.array_equal(getattr(a.statistics, k), getattr(b.statistics, k)) for k in vars(a.statistics)))


def test_stream_states_take_concatenate_and_write_series_by_index():
    """take, concat and write address every part of a series' state (backbone, output, statistics) together:
    fails if one part is left out or indexed otherwise."""
    a, b = stream(5, 0), stream(3, 1)
    both = StreamState.concat([a, b])
    assert len(both) == 8
    assert same(both.take(np.arange(5)), a) and same(both.take(np.arange(5, 8)), b)
    order = np.array([7, 0, 3])
    picked = both.take(order)
    both.write(np.array([0, 1, 2]), picked)
    assert same(both.take(np.arange(3)), picked)
    assert same(both.take(np.arange(3, 8)), StreamState.concat([a, b]).take(np.arange(3, 8)))  # the others stay
    flat = both.as_dict()
    assert sorted(flat) == ["backbone.layer0.x", "h_last"] + [f"stats.{k}" for k in sorted(vars(both.statistics))]
    assert same(StreamState.from_dict(flat), both)


def test_a_fitted_state_turns_into_json_and_tensors_and_back():
    """Every part survives to_saved / from_saved (what save writes): the layout, the panel, the calibration and
    the stream state; a state without a stream or statics stays without them."""
    frame = poisson_frame(lambda t, rng, i: np.sin(t + i), n_series=8, n_obs=20)
    state = SMRForecaster(**{**FAST, "epochs": 1}).fit(frame).forecast_state_
    config, tensors = state.to_saved()
    back = ForecastState.from_saved(config, tensors)
    assert back.layout == state.layout and back.statics is None
    for part in ("rows", "time", "values", "value_observed", "valid", "lengths"):
        np.testing.assert_array_equal(getattr(back.panel, part), getattr(state.panel, part))
    np.testing.assert_array_equal(back.panel.ids, state.panel.ids)
    for part in ("ahead", "scores", "changes"):
        np.testing.assert_array_equal(getattr(back.calibration, part), getattr(state.calibration, part))
    assert same(back.stream, state.stream)
    bare = dataclasses.replace(state, stream=None)
    assert ForecastState.from_saved(*bare.to_saved()).stream is None
    assert bare.current_stream() is None and state.current_stream() is state.stream
