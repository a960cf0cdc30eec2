"""The seasonal profile's change as a query feature (smr_ts.forecasting.profile): against a plain per-query
reference, causal, right on a season of 52.18 steps, silent on short histories, and wired into new fits."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.forecasting.floor import PROFILE_MIN_ROWS, PROFILE_PERIODS, PROFILE_RECENT
from smr_ts.forecasting.profile import BINS, profile_changes

from ._data import FAST


def _data(times: list, values: list, origin: float = 0.0) -> SimpleNamespace:
    """The parts of ForecastTensors the feature reads, for series of one target (padded with NaN)."""
    n = max(len(t) for t in times)
    time = np.array([np.pad(t, (0, n - len(t)), mode="edge") for t in times], np.float64)
    target = np.full((len(times), n, 1), np.nan)
    for s, y in enumerate(values):
        target[s, : len(y), 0] = y
    anchor = np.array([np.pad(y, (0, n - len(y)), mode="edge")[:, None] for y in values])  # every row observed
    scale = np.abs(anchor) * 0.1 + 1.0
    return SimpleNamespace(time=time, target=target, lengths=np.array([len(t) for t in times]), origin=origin,
                           anchor=anchor, scale=scale)


def _reference(t, y, period, t_cut, t_query) -> float:
    """The profile forecast for one query, from its definition, one loop per period and bin."""
    whole, phase_bin = np.floor(t / period).astype(int), np.minimum((np.mod(t, period) / period * BINS).astype(int),
                                                                     BINS - 1)

    def profile(m: int, b: int) -> float:
        usable, per_period = 0, []
        for w in range(m - PROFILE_PERIODS, m):
            inside = whole == w
            if inside.sum() < PROFILE_MIN_ROWS:
                continue
            usable += 1
            near = [y[inside & (phase_bin == (b + d) % BINS)].mean() - y[inside].mean()
                    for d in (-1, 0, 1) if (inside & (phase_bin == (b + d) % BINS)).any()]
            if near:
                per_period.append(np.mean(near))
        return np.mean(per_period) if usable >= 2 and per_period else np.nan

    recent = [y[i] - profile(whole[i], phase_bin[i]) for i in range(len(t))
              if t_cut - PROFILE_RECENT * period < t[i] <= t_cut]
    recent = [v for v in recent if np.isfinite(v)]
    level = np.mean(recent) if recent else np.nan
    b_query = min(int(np.mod(t_query, period) / period * BINS), BINS - 1)
    return level + profile(int(np.floor(t_cut / period)), b_query)


def _irregular(seed: int, n: int, span: float):
    rng = np.random.default_rng(seed)
    return rng, np.sort(rng.uniform(0, span, n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_equals_the_profile_computed_query_by_query(seed):
    rng, t = _irregular(seed, 400, 150.0)
    y = np.sin(2 * np.pi * t / 9.3) + 0.5 * rng.normal(size=len(t)) + 0.02 * t
    data, layout = _data([t], [y], origin=3.0), SimpleNamespace(periods=[9.3, 20.0])
    k = rng.integers(0, len(t), 60)
    t_query = t[k] + rng.uniform(0, 15, len(k))
    got = profile_changes(data, layout, np.zeros(len(k), int), k, t_query)
    for i, period in enumerate(layout.periods):
        want = np.array([_reference(t + 3.0, y, period, t[j] + 3.0, q + 3.0) for j, q in zip(k, t_query)])
        want = np.nan_to_num((want - y[k]) / data.scale[0, k, 0])
        np.testing.assert_allclose(got[i][:, 0], want, atol=1e-9)
        assert (got[i] != 0).mean() > 0.5  # most cuts have two periods behind them: the comparison is not of zeros


def test_it_reads_nothing_after_the_cut():
    rng, t = _irregular(4, 400, 100.0)
    y = np.cos(2 * np.pi * t / 7.0) + 0.3 * rng.normal(size=len(t))
    layout, k = SimpleNamespace(periods=[7.0]), np.array([150, 250, 320])
    t_query = t[k] + 5.0
    before = profile_changes(_data([t], [y]), layout, np.zeros(3, int), k, t_query)[0]
    for cut in k:
        changed = np.where(np.arange(len(t)) > cut, 50.0 + 10 * rng.normal(size=len(t)), y)
        after = profile_changes(_data([t], [changed]), layout, np.zeros(1, int), np.array([cut]),
                                t_query[k == cut])[0]
        assert after[0, 0] == before[k == cut][0, 0] != 0


def test_on_a_season_of_52_18_steps_it_forecasts_the_season_where_last_value_cannot():
    """Weekly-like steps with a yearly season of 52.18 of them, which no integer lag holds; queries up to half
    a season ahead from the last two seasons' cuts."""
    period = 52.18
    rng = np.random.default_rng(5)
    t = np.sort(rng.choice(np.arange(8 * 52), size=300, replace=False)).astype(float)
    y = 10 + 2 * np.sin(2 * np.pi * t / period) + 0.1 * rng.normal(size=len(t))
    data = _data([t], [y])
    k = np.flatnonzero(t > 6 * period)[:-1]
    ahead = rng.uniform(1, period / 2, len(k))
    change = profile_changes(data, SimpleNamespace(periods=[period]), np.zeros(len(k), int), k, t[k] + ahead)[0][:, 0]
    forecast = y[k] + change * data.scale[0, k, 0]
    truth = 10 + 2 * np.sin(2 * np.pi * (t[k] + ahead) / period)
    assert np.abs(forecast - truth).mean() < 0.25 * np.abs(y[k] - truth).mean()


def test_it_is_zero_until_two_periods_of_enough_observations():
    t = np.arange(0.0, 30.0)
    y = np.sin(t)
    got = profile_changes(_data([t], [y]), SimpleNamespace(periods=[12.0]), np.zeros(len(t), int),
                          np.arange(len(t)), t + 3.0)[0][:, 0]
    assert (got[t < 24] == 0).all() and (got[t >= 24] != 0).all()


def test_series_are_independent():
    rng, t1 = _irregular(6, 200, 60.0)
    _, t2 = _irregular(7, 150, 60.0)
    y1, y2 = np.sin(t1), 5 * np.cos(t2)
    layout = SimpleNamespace(periods=[6.0])
    both = _data([t1, t2], [y1, y2])
    series, k = np.array([1, 0, 1]), np.array([120, 150, 140])
    together = profile_changes(both, layout, series, k, np.array([65.0, 70.0, 66.0]))[0]
    alone = profile_changes(_data([t2], [y2]), layout, np.zeros(2, int), k[[0, 2]], np.array([65.0, 66.0]))[0]
    np.testing.assert_allclose(together[[0, 2]], alone)


def test_new_fits_read_it_and_the_network_is_sized_for_it():
    rng = np.random.default_rng(8)
    times = pd.date_range("2024-01-01", periods=24 * 15, freq="h")
    y = 5 + np.sin(2 * np.pi * np.arange(len(times)) / 24) + 0.2 * rng.normal(size=len(times))
    model = SMRForecaster(**{**FAST, "epochs": 1}).fit(pd.DataFrame({"unique_id": "s", "ds": times, "y": y}))
    layout = model.layout_
    assert layout.profile_changes and layout.period_names == ["day", "week"]
    before = dataclasses.replace(layout, profile_changes=False)
    assert layout.n_query_features == before.n_query_features + 2  # one per period and target
    assert model.forecast(h=3)["S5"].notna().all()
