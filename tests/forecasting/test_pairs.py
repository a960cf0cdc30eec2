"""How far ahead training draws its queries (smr_ts.forecasting.pairs.draw_ahead)."""

import numpy as np
import pandas as pd
import pytest

from smr_ts.forecasting.layout import MIN_GAPS_AHEAD, ForecastLayout
from smr_ts.forecasting.pairs import LOG_SHARE, draw_ahead, training_reach


def _layout(horizon: float, gap: float) -> ForecastLayout:
    return ForecastLayout(target_index=[0], time_unit=1.0, horizon=horizon, periods=[], fallback=[1.0], gap=gap)


@pytest.mark.parametrize("horizon, gap", [(100.0, 1.0), (7.0, 0.5), (1.0, 4.0), (3.0, 1.0)])
def test_draws_are_the_stated_mixture_up_to_the_reach(horizon, gap):
    """A share 1 - LOG_SHARE uniform on (0, reach], the rest log-uniform from half a gap to the reach,
    the reach being the horizon or MIN_GAPS_AHEAD gaps where longer: the empirical distribution
    matches that mixture's, and nothing lies outside (0, reach]."""
    reach = training_reach(_layout(horizon, gap))
    assert reach == max(horizon, MIN_GAPS_AHEAD * gap)
    ahead = draw_ahead(_layout(horizon, gap), np.random.default_rng(0), 200_000, reach)
    assert np.all(ahead > 0) and np.all(ahead <= reach * (1 + 1e-12))
    low = min(0.5 * gap, reach)
    for x in reach * np.array([0.01, 0.1, 0.5, 0.9]):
        log_part = 0.0 if x < low else np.log(x / low) / np.log(reach / low)
        expected = (1 - LOG_SHARE) * x / reach + LOG_SHARE * log_part
        assert np.mean(ahead <= x) == pytest.approx(expected, abs=0.005)


def test_a_horizon_of_two_gaps_still_trains_several_gaps_ahead():
    """horizon = 2 gaps (a chick weighed every 2 days, forecast 4 days on): draws reach MIN_GAPS_AHEAD
    gaps, so a good share of training pairs lies past the horizon."""
    layout = _layout(4.0, 2.0)
    ahead = draw_ahead(layout, np.random.default_rng(2), 50_000, training_reach(layout))
    assert ahead.max() == pytest.approx(MIN_GAPS_AHEAD * 2.0, rel=1e-3)
    assert np.mean(ahead > 4.0) > 0.4


def test_short_times_ahead_weigh_more_than_uniform_draws():
    """On a long horizon, over three times the share a uniform draw puts in its first tenth falls there."""
    ahead = draw_ahead(_layout(1000.0, 1.0), np.random.default_rng(1), 50_000, 1000.0)
    assert np.mean(ahead <= 100.0) > 0.3


def test_draws_repeat_under_a_seed():
    layout = _layout(30.0, 1.0)
    first = draw_ahead(layout, np.random.default_rng(7), 100, 30.0)
    np.testing.assert_array_equal(first, draw_ahead(layout, np.random.default_rng(7), 100, 30.0))


def test_training_draws_past_a_short_horizon_and_validation_does_not():
    """A panel weighed every 2 time units, horizon 4: training pairs reach past the horizon (up to
    MIN_GAPS_AHEAD gaps), the held-out series' validation pairs stay within it."""
    from smr_ts import SMRForecaster
    from smr_ts.data.panel import FIRST_GAP
    from smr_ts.forecasting.features import forecast_tensors
    from smr_ts.forecasting.pairs import training_pairs
    from smr_ts.holdout import plan_validation

    times = np.arange(0.0, 40.0, 2.0)
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(12), len(times)), "ds": np.tile(times, 12),
                          "y": (np.arange(12)[:, None] + 0.5 * times[None, :]).ravel()})
    model = SMRForecaster(d_model=8, state_size=8, n_layers=1, epochs=1, horizon=4.0, random_state=0).fit(frame)
    layout = model.layout_
    assert model.horizon_ == 4.0 and training_reach(layout) == pytest.approx(MIN_GAPS_AHEAD * 2.0)
    data = forecast_tensors(model.history_panel_, layout, FIRST_GAP)
    plan = plan_validation(12, 0, given=False, forecasting=True, validation_fraction=0.2)
    rng = np.random.default_rng(0)
    sampler, held = training_pairs(data, layout, plan, window=64, batch_size=4, device="cpu", rng=rng)
    ahead = []
    for segment in sampler._windows(rng):
        k, q = sampler._pairs(segment, rng)
        ahead.append(data.time[segment[0], q] - data.time[segment[0], k])
    ahead = np.concatenate(ahead)
    assert ahead.max() > 4.0 and np.mean(ahead > 4.0) > 0.2
    held_ahead = np.concatenate([b["ahead"][b["weight"].sum(-1) > 0] for b in held])
    assert len(held_ahead) and held_ahead.max() <= 4.0
