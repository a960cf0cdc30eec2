"""Tests that see a wrong answer: each was checked against a plausible bug planted on purpose.

Bugs planted one at a time once showed that the estimator, training-loop and generator tests missed
half of them. Each test here names the bug it catches:

- the targets' scaling undone wrongly (the mean not added back, the std left in scaled units);
- training that keeps the last epoch's weights while reporting the best epoch;
- validation series also used for training;
- pendulum frames drawn at another frame's angle;
- ``context`` rows read differently from the same rows in the fitted history.
"""

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from smr_ts import SMRForecaster
from smr_ts.callbacks import Callback, EarlyStopping, StopAfter
from smr_ts.datasets import make_pendulum
from smr_ts.datasets.pendulum import _Geometry, _render

SMALL = dict(d_model=8, state_size=8, n_layers=1, batch_size=4, random_state=0)


def irregular_frame(n_series=8, n_obs=20, seed=0, gaps=None):
    """Series at Poisson times (or at a constant gap per series, ``gaps[i]``) with a smooth signal and a
    noisy reading of it."""
    rng = np.random.default_rng(seed)
    if gaps is None:
        t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    else:
        t = np.asarray(gaps, np.float64)[:, None] * np.arange(1, n_obs + 1)
    signal = np.sin(0.6 * t + rng.uniform(0, 6, (n_series, 1)))
    X = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs), "ds": t.ravel(),
                      "x": (signal + 0.2 * rng.normal(size=t.shape)).ravel()})
    return X, pd.Series(signal.ravel(), name="target")


def weights(model):
    return {k: v.clone() for k, v in model.model_.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- scaling undone on the way out
def test_regression_follows_an_affine_change_of_the_target():
    """Planted: the target's mean not added back; the predicted std left in scaled units; a NLL that
    weighs ``log(std)`` wrongly (the std then misses the noise's by sqrt(2)).

    Targets are standardised per column, so 10 y + 100 trains the same network as y: its
    predictions must be 10 x + 100 the others, and its std 10 x theirs. The targets are noise of std 3
    around 5 that the input does not predict, so the std is also known on an absolute scale.
    """
    X, _ = irregular_frame(n_series=24)
    y = pd.Series(5.0 + 3.0 * np.random.default_rng(1).normal(size=len(X)), name="target")
    settings = dict(SMALL, epochs=40, lr=0.02, batch_size=24, loss="gaussian", validation_fraction=0.0)
    mean, std = SMRForecaster(**settings).fit(X, y).predict(X, return_std=True)
    moved_mean, moved_std = SMRForecaster(**settings).fit(X, 10 * y + 100).predict(X, return_std=True)
    np.testing.assert_allclose(moved_mean, 10 * mean + 100, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(moved_std, 10 * std, rtol=1e-4)
    assert moved_mean.mean() == pytest.approx(150.0, abs=3.0)
    assert float(np.sqrt(np.mean(moved_std**2))) == pytest.approx(30.0, rel=0.1)  # on the targets' scale


def test_forecasts_and_their_std_follow_an_affine_change_of_the_series():
    """Planted: the forecast std left in the series' scaled units (the mean is held by
    tests/test_forecasting.py::test_scale_and_offset_do_not_change_the_forecast); a NLL that weighs
    ``log(std)`` wrongly.

    A random walk with steps of std 2 on a grid of one time unit, forecast one step ahead: the error
    of the best forecast (the last value) has std 2, and 20 after the change."""
    rng = np.random.default_rng(0)
    walks = 2.0 * np.cumsum(rng.normal(size=(24, 60)), 1)
    history = pd.DataFrame({"unique_id": np.repeat(np.arange(24), 60), "ds": np.tile(np.arange(60.0), 24),
                            "y": walks.ravel()})
    settings = dict(SMALL, epochs=15, batch_size="auto", lr=0.01, horizon=1.0, loss="gaussian",
                    validation_fraction=0.0)
    base = SMRForecaster(**settings).fit(history).forecast(h=1, return_std=True)
    moved = SMRForecaster(**settings).fit(history.assign(y=10 * history["y"] + 100)).forecast(h=1, return_std=True)
    np.testing.assert_allclose(moved["y"], 10 * base["y"] + 100, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(moved["y_std"], 10 * base["y_std"], rtol=1e-4)
    assert float(np.sqrt(np.mean(base["y_std"] ** 2))) == pytest.approx(2.0, rel=0.15)


# ---------------------------------------------------------------- the best epoch's weights
def test_the_restored_weights_are_those_the_best_epoch_trained():
    """Planted: the last epoch's weights kept while ``best_epoch_`` reports the best one.

    The same fit stopped right after the best epoch (StopAfter keeps the learning-rate schedule)
    ends with that epoch's weights; the full fit must hand back exactly those.
    """
    X, y = irregular_frame(n_series=10, n_obs=15)
    settings = dict(SMALL, epochs=6, lr=0.05, validation_fraction=0.3)
    model = SMRForecaster(**settings).fit(X, y)
    best = model.best_epoch_
    scores = [h["valid_mse"] for h in model.history_]
    assert best == int(np.argmin(scores)) and best < 5, scores  # the data make the best epoch not the last
    at_best = SMRForecaster(**settings, callbacks=[StopAfter(best + 1)]).fit(X, y)
    assert same_weights(weights(model), weights(at_best))
    last = SMRForecaster(**settings, callbacks=[EarlyStopping(restore_best=False)]).fit(X, y)
    assert not same_weights(weights(model), weights(last))


# ---------------------------------------------------------------- training and validation series
class SeriesSeen(Callback):
    """Records which series the network reads in training (train mode) and in validation (eval).

    Each series is sampled at its own constant gap, so the gaps of a batch row name its series.
    """

    def __init__(self, gaps):
        self.gaps = np.asarray(gaps)

    def on_train_begin(self, state):
        self.seen = {True: set(), False: set()}
        self._handle = state.model.register_forward_pre_hook(self._record)

    def _record(self, module, args):
        dt = args[0]["dt"] if isinstance(args[0], dict) else args[1]
        for row in dt.detach().cpu().numpy().reshape(len(dt), -1):
            inner = row[1:][row[1:] > 0]  # the first gap of a window and padding say nothing
            if len(inner):
                self.seen[module.training].add(float(np.median(inner)))

    def on_train_end(self, state):
        self._handle.remove()

    def series(self, training: bool, unit: float) -> set:
        gaps = np.array(sorted(self.seen[training])) * unit
        return {int(np.argmin(np.abs(self.gaps - g))) for g in gaps}


@pytest.mark.parametrize("mode", ["regression", "forecast"])
def test_training_and_validation_series_are_disjoint(mode):
    """Planted: the validation series also drawn into training batches."""
    gaps = 1.0 + 0.1 * np.arange(10)
    X, y = irregular_frame(n_series=10, n_obs=16, gaps=gaps)
    seen = SeriesSeen(gaps)
    model = SMRForecaster(**{**SMALL, "batch_size": 2}, epochs=2, validation_fraction=0.3, callbacks=[seen])
    if mode == "regression":
        model.fit(X, y)
    else:
        model.fit(X.rename(columns={"x": "y"}))
    trained, validated = seen.series(True, model.time_unit_), seen.series(False, model.time_unit_)
    assert len(validated) == 3 and len(trained) == 7, (trained, validated)
    assert not trained & validated


# ---------------------------------------------------------------- the pendulum generator
def test_clean_frames_are_renders_of_the_target_angle():
    """Planted: frames drawn at the previous kept frame's angle (or any angle but the target's).

    Compared with a fresh render of the angle the targets encode, not with the generator itself.
    """
    data = make_pendulum(n_train=6, n_valid=1, n_test=1, seed=2)
    part = data.train
    angle = np.arctan2(part.targets[..., 0].astype(np.float64), part.targets[..., 1].astype(np.float64))
    geometry = _Geometry(24, 128, (64.0, 64.0), 55.0, 8.0)  # make_pendulum's defaults
    fresh = _render(angle.reshape(-1), geometry).reshape(part.clean_images.shape).astype(int)
    # the generator draws at the angle plus 1e-5 rad of render noise: at most one grey level apart
    assert np.abs(fresh - part.clean_images.astype(int)).max() <= 1
    moved = np.diff(angle, axis=1)
    assert np.abs(moved).max() > 0.05  # the angle does change between kept frames: the check can fail


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
    assert not np.allclose(without_recent.forecast(times=queries)["y"], expected["y"])  # the rows matter
