"""A period the data show and the calendar does not hold (smr_ts/forecasting/layout.py, detected_period):
found in a planted cycle, not in noise, random walks or trends, named, and saved with the model."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.data.panel import median_gap, to_panel
from smr_ts.forecasting.floor import candidates
from smr_ts.forecasting import fit as forecasting_fit
from smr_ts.forecasting.layout import _median_span, detected_name, detected_period, fit_layout

from ._data import FAST

PERIOD = 11.3


def _detect(times, values, ids=None, known=()):
    ids = np.zeros(len(times), int) if ids is None else ids
    panel = to_panel(ids, np.asarray(times), np.asarray(values, np.float64)[:, None])
    return detected_period(panel, 0, median_gap(panel), _median_span(panel), known=known)


def _irregular(seed, n=300, span=200.0):
    rng = np.random.default_rng(seed)
    return rng, np.sort(rng.uniform(0.0, span, n))


@pytest.mark.parametrize("seed", range(5))
def test_a_planted_period_sampled_irregularly_with_noise_is_found_within_a_few_percent(seed):
    rng, t = _irregular(seed)
    y = 3.0 + 0.02 * t + np.sin(2 * np.pi * t / PERIOD) + 0.5 * rng.normal(size=len(t))
    assert _detect(t, y) == pytest.approx(PERIOD, rel=0.03)


def test_a_period_shared_by_a_panel_is_found_from_its_pooled_series():
    rng = np.random.default_rng(0)
    ids, times, values = [], [], []
    for i in range(8):  # each its own phase, times and noise
        t = np.sort(rng.uniform(0.0, 100.0, 120))
        ids += [i] * len(t)
        times.append(t)
        values.append(np.sin(2 * np.pi * t / PERIOD + rng.uniform(0, 2 * np.pi)) + 0.7 * rng.normal(size=len(t)))
    assert _detect(np.concatenate(times), np.concatenate(values), np.array(ids)) == pytest.approx(PERIOD, rel=0.03)


def test_a_big_panel_pools_at_most_256_series_and_still_finds_its_period(monkeypatch):
    """The cost is bounded on big panels: of 600 series sharing a period, 256 are read, and the period found."""
    from smr_ts.forecasting import layout

    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0.0, 100.0, (600, 80)), 1)
    y = np.sin(2 * np.pi * t / PERIOD + rng.uniform(0, 2 * np.pi, (600, 1))) + 0.3 * rng.normal(size=t.shape)
    read = []
    real = layout._lomb_scargle
    monkeypatch.setattr(layout, "_lomb_scargle", lambda t_, y_, f: read.append(len(t_)) or real(t_, y_, f))
    found = _detect(t.ravel(), y.ravel(), np.repeat(np.arange(600), 80))
    assert len(read) == 256
    assert found == pytest.approx(PERIOD, rel=0.03)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("kind", ["random walk", "white noise", "trend"])
def test_noise_random_walks_and_trends_have_no_period(kind, seed):
    rng, t = _irregular(seed)
    if kind == "random walk":
        y = np.cumsum(rng.normal(size=len(t)) * np.sqrt(np.diff(t, prepend=0.0)))
    elif kind == "white noise":
        y = rng.normal(size=len(t))
    else:
        y = np.exp(t / 80.0) + 0.05 * rng.normal(size=len(t))
    assert _detect(t, y) is None


def test_a_calendar_period_or_its_harmonic_is_not_found_again():
    rng, t = _irregular(0)
    y = np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=len(t))
    assert _detect(t, y, known=[PERIOD]) is None
    assert _detect(t, y, known=[2 * PERIOD]) is None  # 11.3 is the half of 22.6
    assert _detect(t, y, known=[5.0]) == pytest.approx(PERIOD, rel=0.03)


def test_too_few_observations_or_too_short_a_span_find_nothing():
    rng, t = _irregular(0, n=20)
    assert _detect(t, np.sin(2 * np.pi * t / PERIOD)) is None  # under 24 observations
    t = np.sort(rng.uniform(0.0, 2 * PERIOD, 300))  # two cycles: the longest candidate is a third of the span
    assert _detect(t, np.sin(2 * np.pi * t / PERIOD)) is None


def test_detected_periods_are_named_in_the_time_kind():
    assert detected_name(11.3, "numeric") == "detected, 11.3"
    year = 365.2425 * 86_400e9
    assert detected_name(11.1 * year, "datetime") == "detected, 11.1 years"
    assert detected_name(36 * 3600e9, "datetime") == "detected, 1.5 days"


def _frame(t, y):
    return pd.DataFrame({"unique_id": "s", "ds": t, "y": y})


def test_the_fit_reads_its_period_from_the_training_rows_only():
    """The layout is fitted on the rows the forecaster is given: rows after the cut-off with another period
    change nothing."""
    rng, t = _irregular(1, n=600, span=400.0)
    cut = 200.0
    before = np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=len(t))
    y = np.where(t < cut, before, 3 * np.sin(2 * np.pi * t / 4.0))
    full = _frame(t, y)
    train = full[full["ds"] < cut]
    model = SMRForecaster(**{**FAST, "epochs": 1}).fit(train)
    assert len(model.layout_.periods) == 1 and model.layout_.periods[0] == pytest.approx(PERIOD, rel=0.03)
    assert model.layout_.period_names == [detected_name(model.layout_.periods[0], "numeric")]
    assert _detect(t, y) == pytest.approx(4.0, rel=0.03)  # all the rows show the later period


def test_a_model_with_a_detected_period_weighs_its_seasonal_naive_and_saves_it(tmp_path):
    rng, t = _irregular(2, n=400, span=150.0)
    y = 10 + 2 * np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=len(t))
    model = SMRForecaster(**{**FAST, "epochs": 2}).fit(_frame(t, y))
    name = model.layout_.period_names[0]
    assert f"seasonal naive ({name})" in candidates(model.layout_)
    model.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.layout_ == model.layout_
    pd.testing.assert_frame_equal(model.forecast(h=5), loaded.forecast(h=5))


def test_a_save_of_format_4_loads_with_its_calendar_periods_named_by_their_length(tmp_path, monkeypatch):
    """Layouts saved before detected periods (format 4) had no ``period_names``: their periods were the
    calendar's, and keep the calendar's names."""
    before_profiles = lambda *a, **k: dataclasses.replace(fit_layout(*a, **k), profile_changes=False,  # noqa: E731
                                                          scale_gate=False)
    monkeypatch.setattr(forecasting_fit, "fit_layout", before_profiles)  # as format 4 fitted
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-01-01", periods=24 * 20, freq="h")
    y = 5 + np.sin(2 * np.pi * np.arange(len(times)) / 24) + 0.2 * rng.normal(size=len(times))
    model = SMRForecaster(**{**FAST, "epochs": 1}).fit(pd.DataFrame({"unique_id": "s", "ds": times, "y": y}))
    assert model.layout_.period_names == ["day", "week"]
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["format"] = 4
    del config["fitted"]["forecast_state_"]["layout"]["period_names"]
    del config["fitted"]["forecast_state_"]["layout"]["profile_changes"]
    del config["fitted"]["forecast_state_"]["layout"]["scale_gate"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.layout_.period_names == [] and candidates(loaded.layout_) == candidates(model.layout_)
    pd.testing.assert_frame_equal(model.forecast(h=5), loaded.forecast(h=5))


def test_validating_in_time_the_period_is_read_before_the_validating_last_part():
    """A single series validates on its last part: values there with another period change nothing."""
    rng, t = _irregular(4, n=600, span=300.0)
    y = np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=len(t))
    settings = {**FAST, "epochs": 1, "horizon": 60.0}
    model = SMRForecaster(**settings).fit(_frame(t, y))
    span = t[-1] - t[0]
    split = t[-1] - np.clip(60.0, model.validation_fraction * span, 0.5 * span)
    changed = np.where(t > split, 3 * np.sin(2 * np.pi * t / 4.0), y)
    assert _detect(t, changed) == pytest.approx(4.0, rel=0.03)  # all the rows show the last part's period
    other = SMRForecaster(**settings).fit(_frame(t, changed))
    assert other.layout_.periods == model.layout_.periods
    assert model.layout_.periods[0] == pytest.approx(PERIOD, rel=0.03)


def test_a_series_read_until_minus_infinity_is_not_read():
    """How a fit keeps held-out series out of the rule."""
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0.0, 200.0, 300))
    ids = np.repeat([0, 1], len(t))
    times = np.concatenate([t, t])
    values = np.concatenate([np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=len(t)),
                             3 * np.sin(2 * np.pi * t / 4.0)])
    panel = to_panel(ids, times, values[:, None])
    gap, span = median_gap(panel), _median_span(panel)
    assert detected_period(panel, 0, gap, span) == pytest.approx(4.0, rel=0.03)
    assert detected_period(panel, 0, gap, span, until=np.array([np.inf, -np.inf])) == pytest.approx(PERIOD, rel=0.03)


@pytest.mark.parametrize("line", [lambda t: np.full(len(t), 7.0), lambda t: 2.0 + 0.5 * t])
def test_a_constant_or_a_straight_line_has_no_period(line):
    _, t = _irregular(6)
    assert _detect(t, line(t)) is None
