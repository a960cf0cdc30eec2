"""The recent scale (smr_ts/forecasting/features.py) and the scale gate that reads it (smr_ts/model.py): held
against a plain loop, causal, and doing what it is for on a series whose swings grow."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.data.panel import FIRST_GAP
from smr_ts.forecasting import fit as forecasting_fit
from smr_ts.forecasting.features import RECENT_HORIZONS, causal_statistics, forecast_tensors
from smr_ts.forecasting.layout import fit_layout
from smr_ts.forecasting.queries import query_features
from smr_ts.model import GATE_BOUND, GATE_SPEED, ForecastNetwork

from ._data import FAST, poisson_frame


def reference_recent(time, x, observed, fallback, tau):
    """The recent scale row by row, one series and column at a time: the expanding scale (mean absolute change,
    the fallback as one prior change, floored), and the exponentially weighted mean of the changes, in time,
    with the fallback as one prior change, as the expanding scale has it."""
    n_series, n_rows, n_columns = x.shape
    out = np.zeros(x.shape)
    for s in range(n_series):
        for j in range(n_columns):
            total = n = count = abs_sum = n_change = weighted = weight = 0.0
            prev_x = prev_t = None
            for r in range(n_rows):
                if observed[s, r, j]:
                    count += 1
                    total += x[s, r, j]
                    if prev_x is not None:
                        change = abs(x[s, r, j] - prev_x)
                        abs_sum += change
                        n_change += 1
                        decay = np.exp(-(time[s, r] - prev_t) / tau)
                        weighted = decay * weighted + change
                        weight = decay * weight + 1
                    prev_x, prev_t = x[s, r, j], time[s, r]
                mean = total / count if count else 0.0
                floor = max(1e-3 * fallback[j], 1e-10 * abs(mean))
                scale = max((abs_sum + fallback[j]) / (n_change + 1), floor)
                out[s, r, j] = max((weighted + fallback[j]) / (weight + 1), floor)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_the_recent_scale_equals_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 40, 2)) * np.linspace(1, 5, 40)[None, :, None]
    observed = rng.random(x.shape) < 0.6
    x = np.where(observed, x, 0.0)
    time = np.cumsum(rng.exponential(1.0, (3, 40)), axis=1)
    fallback = np.array([0.5, 2.0])
    got = causal_statistics(x, observed, fallback, time=time, tau=4.0).recent
    np.testing.assert_allclose(got, reference_recent(time, x, observed, fallback, 4.0), rtol=1e-12)


def test_the_recent_scale_reads_nothing_after_its_row():
    rng = np.random.default_rng(1)
    x, observed = rng.normal(size=(2, 50, 1)), np.ones((2, 50, 1), bool)
    time = np.cumsum(rng.exponential(1.0, (2, 50)), axis=1)
    before = causal_statistics(x, observed, np.ones(1), time=time, tau=3.0).recent
    changed = x.copy()
    changed[:, 30:] *= 100.0
    after = causal_statistics(changed, observed, np.ones(1), time=time, tau=3.0).recent
    np.testing.assert_array_equal(after[:, :30], before[:, :30])
    assert (after[:, 31:] > 10 * before[:, 31:]).all()  # and it does read the row itself


def test_the_recent_scale_follows_a_tenfold_change_the_expanding_scale_averages_away():
    """Steps of 1, then of 10 for the last fifth: ten time constants on, the recent scale is above 9,
    while the mean over the whole history is under 3. Without the gap in the decay (rows, not time) the
    recent scale would not depend on how far apart the rows are: checked with a slower clock."""
    steps = np.r_[np.ones(400), 10 * np.ones(100)] * np.where(np.arange(500) % 2, 1, -1)
    x = np.cumsum(steps)[None, :, None]
    observed = np.ones(x.shape, bool)
    time = np.arange(500.0)[None]
    stats = causal_statistics(x, observed, np.ones(1), time=time, tau=10.0)
    assert stats.recent[0, -1, 0] > 9.0
    assert stats.scale[0, -1, 0] < 3.0
    slow = causal_statistics(x, observed, np.ones(1), time=time / 10.0, tau=10.0)  # tau is 100 rows now
    assert slow.recent[0, -1, 0] < 0.8 * stats.recent[0, -1, 0]


def test_without_a_time_constant_the_recent_scale_is_the_scale():
    rng = np.random.default_rng(2)
    x, observed = rng.normal(size=(2, 20, 1)), rng.random((2, 20, 1)) < 0.8
    stats = causal_statistics(x, observed, np.ones(1), time=np.arange(20.0)[None].repeat(2, 0))
    np.testing.assert_array_equal(stats.recent, stats.scale)


@pytest.mark.parametrize("gap", [1e-9, 1e12])
def test_the_recent_scale_stays_finite_on_extreme_gaps(gap):
    rng = np.random.default_rng(3)
    x, observed = rng.normal(size=(1, 30, 1)), np.ones((1, 30, 1), bool)
    time = np.cumsum(np.full((1, 30), gap), axis=1)
    recent = causal_statistics(x, observed, np.ones(1), time=time, tau=1.0).recent
    assert np.isfinite(recent).all() and (recent > 0).all()


@pytest.mark.parametrize("head", ["point", "gaussian", "quantile"])
def test_the_gate_multiplies_every_output_by_the_ratio_to_the_power_g(head):
    """With the gate's weight at w, every output of a target is the gate-free output times
    exp(g * log ratio), g = GATE_SPEED * w clipped to +-GATE_BOUND, the log ratio being the target's
    first query feature. A weight blown up (a wild step) leaves g at the bound and the outputs finite."""
    torch.manual_seed(0)
    quantiles = (0.1, 0.5, 0.9) if head == "quantile" else None
    net = ForecastNetwork(3, 6, 2, 8, 1, backbone_settings=SMRForecaster(state_size=4).get_params(),
                          gaussian=head == "gaussian", quantiles=quantiles, scale_gate=True)
    for p in net.parameters():  # the head's last layers start at zero: make the outputs non-trivial
        torch.nn.init.normal_(p, std=0.3)
    h, query = torch.randn(5, 8), torch.randn(5, 6)
    with torch.no_grad():
        w = net.gate.clone()
        net.gate.zero_()
        mean0, second0 = net.decode(h, query)
        net.gate.copy_(w)
        mean, second = net.decode(h, query)
    g = (GATE_SPEED * w).clamp(-GATE_BOUND, GATE_BOUND)
    assert (g.abs() > 0.05).all()
    factor = torch.exp(g * query[:, :2])
    torch.testing.assert_close(mean, mean0 * factor)
    if head == "gaussian":
        torch.testing.assert_close(second, second0 * factor)
    if head == "quantile":
        torch.testing.assert_close(second, second0 * factor[..., None])
    with torch.no_grad():
        net.gate.fill_(1e6)
        blown, _ = net.decode(h, query)
    torch.testing.assert_close(blown, mean0 * torch.exp(GATE_BOUND * query[:, :2]))
    assert torch.isfinite(blown).all()


def test_a_season_that_grows_with_its_level_opens_the_gate():
    """Series whose season and noise grow with their level (a10's kind): their recent changes are larger than
    their mean change, and the fitted gate's power is positive, so forecasts move in the recent units.
    Fails if the log ratio were fed with its sign flipped, or the gate never trained."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        t = np.cumsum(rng.exponential(1.0, 240))
        level = np.exp(t / 80)
        y = level * (10 + 3 * np.sin(2 * np.pi * t / 12 + i)) + 0.3 * level * rng.normal(size=len(t))
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": y}))
    model = SMRForecaster(**{**FAST, "epochs": 20, "horizon": 6.0, "floor": False}).fit(pd.concat(rows))
    assert model.layout_.scale_gate and model.best_epoch_ >= 0
    assert float(model.model_.gate_power()[0]) > 0.05


def test_the_gate_reads_the_log_ratio_at_the_cut_first_with_one_horizon_as_time_constant():
    frame = poisson_frame(lambda t, rng, i: np.cumsum(rng.normal(size=len(t)) * (1 + t / 10)), n_series=4, n_obs=60)
    model = SMRForecaster(**{**FAST, "epochs": 1, "horizon": 5.0}).fit(frame)
    layout, panel = model.layout_, model.history_panel_
    data = forecast_tensors(panel, layout, FIRST_GAP)
    x = np.where(panel.value_observed, panel.values, 0.0).astype(np.float64)
    expected = causal_statistics(x, panel.value_observed, np.asarray(layout.fallback), time=panel.time,
                                 tau=RECENT_HORIZONS * layout.horizon).recent
    np.testing.assert_array_equal(data.recent, expected[..., layout.target_index])
    series, k = np.arange(4), panel.lengths - 1
    features = query_features(data, layout, series, k, data.time[series, k] + 2.0)
    ratio = np.log(data.recent[series, k] / data.scale[series, k])
    assert np.abs(ratio).max() > 0.05  # the steps grow: the ratio is not trivially 0
    np.testing.assert_allclose(features[:, :1], np.clip(ratio, -3, 3), rtol=1e-6)


def test_a_save_of_format_6_loads_without_the_gate_and_forecasts_and_updates_as_before(tmp_path, monkeypatch):
    """Models saved before the gate (format 6) had no ``scale_gate`` and no recent sums in their stream state."""
    before_gate = lambda *a, **k: dataclasses.replace(fit_layout(*a, **k), scale_gate=False)  # noqa: E731
    monkeypatch.setattr(forecasting_fit, "fit_layout", before_gate)
    frame = poisson_frame(lambda t, rng, i: np.sin(t) + 0.1 * rng.normal(size=len(t)), n_series=4, n_obs=50)
    model = SMRForecaster(**{**FAST, "epochs": 2}).fit(frame)
    assert model.model_.gate is None
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["format"] = 6
    del config["fitted"]["forecast_state_"]["layout"]["scale_gate"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.layout_.scale_gate is False
    pd.testing.assert_frame_equal(model.forecast(h=3), loaded.forecast(h=3))
    new = frame.groupby("unique_id").tail(1).assign(ds=lambda f: f["ds"] + 1.0, y=0.5)
    pd.testing.assert_frame_equal(model.update(new).forecast(h=3), loaded.update(new).forecast(h=3))
