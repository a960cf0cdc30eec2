"""A fit either succeeds or leaves the estimator as it was; Ctrl-C and divergence end it cleanly.

- A fit that raises (a callback, bad data found late, Ctrl-C before the first epoch has finished
  or while fit finishes after training) leaves a fitted estimator forecasting exactly as before,
  and an unfitted one unfitted: never a mix of two fits.
- Ctrl-C after an epoch has finished is a clean stop: the best epoch so far is kept.
- A diverged fit (non-finite or exploding losses) keeps the last-value network and says so.

Everything goes through the public API (fit, forecast, update, save/load, documented fitted
attributes); Ctrl-C is raised from a callback, or from a global module hook at a chosen forward
pass, so these tests hold however the fitted state is stored.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from smr_ts import SMRForecaster
from smr_ts.callbacks import Callback, StopAfter

SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=3, batch_size=8, random_state=0)


def walks(n_series=8, n_obs=30, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    y = scale * (np.sin(t + rng.random((n_series, 1)) * 6) + 0.1 * rng.normal(size=t.shape))
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs), "ds": t.ravel(),
                         "y": y.ravel()})


def next_rows(frame, n=3):
    """``n`` new rows of every series, one unit after its last."""
    last = frame.groupby("unique_id").tail(1)
    rows = [last.assign(ds=last["ds"] + k, y=last["y"] * 0.5) for k in range(1, n + 1)]
    return pd.concat(rows).sort_values(["unique_id", "ds"], ignore_index=True)


# ---------------------------------------------------------------- what "exactly as before" means
DOCUMENTED = ("mode_", "loss_", "fitted_params_", "history_", "best_epoch_", "interrupted_", "time_unit_",
              "target_names_", "horizon_", "quantiles_", "calibration_ahead_", "calibration_scores_",
              "calibration_changes_", "stream_state_")


def equal(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


def assert_as_before(model, before, frame):
    """``model`` answers as ``before`` (a deep copy taken before the failed fit) in every public way."""
    for name in DOCUMENTED:
        assert hasattr(model, name) == hasattr(before, name), name
        if hasattr(before, name):
            assert equal(getattr(model, name), getattr(before, name)), name
    assert equal(model.model_.state_dict(), before.model_.state_dict())
    if before.mode_ == "forecast":
        for kwargs in (dict(h=4), dict(h=4, level=[80, 95])):
            pd.testing.assert_frame_equal(model.forecast(**kwargs), before.forecast(**kwargs))
        new = next_rows(frame)
        pd.testing.assert_frame_equal(copy.deepcopy(model).update(new).forecast(h=2),
                                      copy.deepcopy(before).update(new).forecast(h=2))


def assert_unfitted(model):
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.forecast(h=2)
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]


class _Raises(Callback):
    """Raises ``error`` at the end of epoch ``epoch``."""

    def __init__(self, epoch, error):
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.epoch:
            raise self.error


@contextmanager
def interrupt_at_forward(call: int):
    """Ctrl-C (a KeyboardInterrupt) at the ``call``-th forward pass of any module; yields the count."""
    count = [0]

    def hook(module, inputs):
        count[0] += 1
        if count[0] == call:
            raise KeyboardInterrupt

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def fitted():
    frame = walks()
    return SMRForecaster(**SMALL).fit(frame), frame


# ---------------------------------------------------------------- a failed refit changes nothing
def test_a_refit_that_raises_from_a_callback_leaves_the_previous_fit(fitted):
    """Failed when fit assigned as it went: the new network answered with the old fit's streaming
    states, calibration and history_."""
    model, frame = copy.deepcopy(fitted[0]), fitted[1]
    before = copy.deepcopy(model)
    model.set_params(callbacks=[_Raises(1, RuntimeError("callback failed"))], random_state=3)
    with pytest.raises(RuntimeError, match="callback failed"):
        model.fit(walks(seed=5, scale=3.0))
    assert_as_before(model, before, frame)


def test_a_refit_that_finds_bad_data_late_leaves_the_previous_fit(fitted):
    """Validation data are read after the layout and history are fixed: the error came after the
    new fit had replaced them."""
    model, frame = copy.deepcopy(fitted[0]), fitted[1]
    before = copy.deepcopy(model)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(walks(seed=5), validation_data=walks(seed=6).drop(columns="y"))
    assert_as_before(model, before, frame)


def test_a_forecaster_refitted_as_a_regressor_that_fails_stays_a_forecaster(fitted):
    model, frame = copy.deepcopy(fitted[0]), fitted[1]
    before = copy.deepcopy(model)
    X = frame.assign(x=frame["y"].shift(1).fillna(0.0)).drop(columns="y")
    model.set_params(callbacks=[_Raises(0, RuntimeError("callback failed"))])
    with pytest.raises(RuntimeError):
        model.fit(X, frame["y"])
    assert_as_before(model, before, frame)


def test_a_first_fit_that_raises_leaves_the_estimator_unfitted():
    model = SMRForecaster(**SMALL, callbacks=[_Raises(1, RuntimeError("callback failed"))])
    with pytest.raises(RuntimeError):
        model.fit(walks())
    assert_unfitted(model)
    model.set_params(callbacks=None).fit(walks())  # and it fits as a fresh one would
    pd.testing.assert_frame_equal(model.forecast(h=2), SMRForecaster(**SMALL).fit(walks()).forecast(h=2))


def test_a_successful_refit_keeps_nothing_of_the_previous_fit():
    """A refit without statics after one with them left the old static_ids_ behind."""
    frame = walks()
    static = pd.DataFrame({"unique_id": frame["unique_id"].unique(), "size": np.arange(8.0)})
    model = SMRForecaster(**SMALL).fit(frame, static=static).fit(frame)
    fresh = SMRForecaster(**SMALL).fit(frame)
    assert sorted(k for k in vars(model) if k.endswith("_")) == sorted(k for k in vars(fresh) if k.endswith("_"))


# ---------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("where", ["initial validation", "first training step"])
def test_ctrl_c_before_the_first_epoch_leaves_a_fitted_estimator_as_it_was(fitted, where):
    """Failed: the KeyboardInterrupt left the new network beside the old fit's history_ and
    streaming states (or, during the initial validation, a model_ without history_)."""
    model, frame = copy.deepcopy(fitted[0]), fitted[1]
    before = copy.deepcopy(model)
    if where == "first training step":
        model.set_params(validation_fraction=0.0)  # no initial validation: the first forward pass trains
    with interrupt_at_forward(1), pytest.raises(KeyboardInterrupt):
        model.fit(walks(seed=5))
    assert_as_before(model, before, frame)


def test_ctrl_c_before_the_first_epoch_leaves_an_unfitted_estimator_unfitted():
    model = SMRForecaster(**SMALL)
    with interrupt_at_forward(1), pytest.raises(KeyboardInterrupt):
        model.fit(walks())
    assert_unfitted(model)


def test_ctrl_c_while_fit_finishes_after_training_leaves_the_estimator_as_it_was(fitted):
    """The last forward passes of a fit compute the calibration and the streaming state: an interrupt
    there abandons the fit rather than leave one without them."""
    model, frame = copy.deepcopy(fitted[0]), fitted[1]
    before = copy.deepcopy(model)
    with interrupt_at_forward(0) as count:  # counts the forward passes of a whole fit
        copy.deepcopy(model).fit(walks(seed=5))
    with interrupt_at_forward(count[0]), pytest.raises(KeyboardInterrupt):
        model.fit(walks(seed=5))
    assert_as_before(model, before, frame)


@pytest.mark.parametrize("validation_fraction", [0.2, 0.0])
def test_ctrl_c_after_an_epoch_keeps_the_best_epoch_so_far(validation_fraction):
    """A clean stop: the same model as a fit stopped after as many epochs, marked interrupted."""
    frame = walks()
    params = dict(SMALL, epochs=6, validation_fraction=validation_fraction)
    with pytest.warns(RuntimeWarning, match="interrupted after 3 epoch"):
        model = SMRForecaster(**params, callbacks=[_Raises(2, KeyboardInterrupt())]).fit(frame)
    stopped = SMRForecaster(**params, callbacks=[StopAfter(3)]).fit(frame)
    assert model.interrupted_ and not stopped.interrupted_
    assert len(model.history_) == 3 and model.best_epoch_ == stopped.best_epoch_
    for kwargs in (dict(h=4),) + ((dict(h=4, level=[80]),) if validation_fraction else ()):
        pd.testing.assert_frame_equal(model.forecast(**kwargs), stopped.forecast(**kwargs))
    new = next_rows(frame)
    pd.testing.assert_frame_equal(model.update(new).forecast(h=2), stopped.update(new).forecast(h=2))


# ---------------------------------------------------------------- divergence
@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
@pytest.mark.parametrize("lr", [1e6, 1e30])
def test_a_diverged_fit_keeps_the_last_value_network_and_says_so(lr, validation_fraction):
    """Failed with validation_fraction=0: the smaller rate served forecasts many orders of magnitude
    beyond the data with no warning, the larger one NaN forecasts after only 'non-finite train_loss;
    stopping'. With validation the last-value floor kept the forecasts sane, but nothing said
    training had diverged."""
    frame = walks()
    with pytest.warns(RuntimeWarning, match=r"training diverged at epoch 0 .*kept the last-value network.*lower lr"):
        # floor=False: what the diverged network is (the floor may then pick a simple forecaster over it)
        model = SMRForecaster(**SMALL, lr=lr, validation_fraction=validation_fraction, floor=False).fit(frame)
    assert model.best_epoch_ == -1
    forecast = model.forecast(h=4)["S5"].to_numpy()
    last = frame.groupby("unique_id")["y"].last().to_numpy()
    np.testing.assert_array_equal(forecast, np.repeat(last, 4))  # the last-value network forecasts exactly that
    assert np.isfinite(forecast).all() and np.abs(forecast).max() <= np.abs(frame["y"]).max()


def test_a_regressor_that_diverges_at_once_raises_and_names_the_learning_rate():
    """Regression has no last-value network to keep: the NaN weights used to be served."""
    frame = walks()
    X = frame.assign(x=frame["y"].shift(1).fillna(0.0)).drop(columns="y")
    model = SMRForecaster(**SMALL, lr=1e30)
    with pytest.raises(ValueError, match=r"training diverged at epoch 0 .*lower lr \(now 1e\+30\)"):
        model.fit(X, frame["y"])
    assert_unfitted(model)


class _BlowsUp(Callback):
    """Scales every weight by ``factor`` after epoch ``epoch``, as a step at a wild learning rate would."""

    def __init__(self, epoch, factor):
        self.epoch, self.factor = epoch, factor

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.epoch:
            with torch.no_grad():
                for p in state.model.parameters():
                    p.mul_(self.factor)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
@pytest.mark.parametrize("factor, why", [(1e20, "train_loss is nan"), (1e4, "train_loss .* is over 1000 times")])
def test_a_fit_that_diverges_later_keeps_its_best_epoch_before_and_says_so(validation_fraction, factor, why,
                                                                          monkeypatch):
    """Failed: an exploded (finite) epoch was not noticed and training ran on to the last epoch, and
    a NaN one only said 'non-finite train_loss; stopping'. Now the fit stops at the diverged epoch,
    keeps the same model as a fit stopped before it, and says what happened and what to change."""
    # Callbacks see the running average of the weights, not the weights that train: without it, the
    # callback below scales the weights that train, as a wild step would.
    monkeypatch.setattr("smr_ts.forecaster.WEIGHT_AVERAGE_EPOCHS", None)
    frame = walks()
    # smr=False: a backbone whose first epochs beat last value on these walks, so an epoch is kept
    params = dict(SMALL, epochs=6, validation_fraction=validation_fraction, smr=False)
    with pytest.warns(RuntimeWarning, match=rf"training diverged at epoch 2 \({why}.*\); kept epoch \d's weights: "
                                            r"lower lr \(now 0\.01\)"):
        model = SMRForecaster(**params, callbacks=[_BlowsUp(1, factor)]).fit(frame)
    stopped = SMRForecaster(**params, callbacks=[StopAfter(2)]).fit(frame)
    assert len(model.history_) == 3 and model.best_epoch_ == stopped.best_epoch_
    pd.testing.assert_frame_equal(model.forecast(h=4), stopped.forecast(h=4))
