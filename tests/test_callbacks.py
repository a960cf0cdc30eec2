"""Callbacks: model selection restores the best epoch's weights, stopping, logging, and their
place in the scikit-learn contract (clone, save/load)."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from smr_ts import SMRForecaster
from smr_ts.callbacks import Callback, EarlyStopping, HistoryLogger, RequireGain, StopAfter, TrainingState

from _signals import irregular_frame, weights

SMALL = dict(d_model=8, state_size=8, n_layers=1, batch_size=4, validation_fraction=0.0, random_state=0)


def frame(n_series=4, n_obs=16, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    return pd.DataFrame({"unique_id": np.repeat(np.arange(n_series), n_obs), "ds": t.ravel(),
                         "y": np.sin(t).ravel() + 0.1 * rng.normal(size=t.size)})


class ScriptedCurve(Callback):
    """Replaces the epoch's validation score by a scripted one and keeps each epoch's weights."""

    def __init__(self, curve):
        self.curve = curve

    def on_train_begin(self, state):
        self.weights = []

    def on_epoch_end(self, state, record):
        record["valid_mse"] = self.curve[record["epoch"]]
        self.weights.append(copy.deepcopy(state.model.state_dict()))


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_epochs_weights_are_the_ones_restored():
    curve = [5.0, 3.0, 1.0, 2.0, 4.0, 6.0]
    script = ScriptedCurve(curve)
    model = SMRForecaster(**SMALL, epochs=6, callbacks=[script, EarlyStopping()]).fit(frame())
    assert model.best_epoch_ == 2 and len(model.history_) == 6
    assert same_weights(model.model_.state_dict(), script.weights[2])
    assert not same_weights(model.model_.state_dict(), script.weights[-1])  # the last epoch's differ


def test_without_restore_the_last_weights_stay():
    script = ScriptedCurve([5.0, 1.0, 2.0, 3.0])
    model = SMRForecaster(**SMALL, epochs=4, callbacks=[script, EarlyStopping(restore_best=False)]).fit(frame())
    assert same_weights(model.model_.state_dict(), script.weights[-1])


@pytest.mark.parametrize("how", ["callback", "shorthand"])
def test_patience_stops_after_that_many_epochs_without_improvement(how):
    curve = [3.0, 2.0, 1.0, 1.5, 1.6, 1.7, 1.8, 1.9]
    callbacks = [ScriptedCurve(curve)] + ([EarlyStopping(patience=2)] if how == "callback" else [])
    settings = dict(SMALL, epochs=8, callbacks=callbacks, patience=2 if how == "shorthand" else None)
    if how == "shorthand":
        # the estimator's own EarlyStopping runs first and sees the real score: script a real curve instead
        settings["callbacks"] = []
    model = SMRForecaster(**settings).fit(frame())
    if how == "callback":
        assert len(model.history_) == 5 and model.best_epoch_ == 2  # epochs 3 and 4 without improvement
    else:
        scores = [h["train_loss"] for h in model.history_]
        assert model.best_epoch_ == int(np.argmin(scores))
        # the weights are that epoch's: the same schedule stopped right after it ends with them
        at_best = SMRForecaster(**{**settings, "callbacks": [StopAfter(model.best_epoch_ + 1)]}).fit(frame())
        assert same_weights(model.model_.state_dict(), at_best.model_.state_dict())
        best, expected = 0, 8  # replay the rule on the recorded scores
        for epoch, score in enumerate(scores):
            best = epoch if score < scores[best] else best
            if epoch - best >= 2:
                expected = epoch + 1
                break
        assert len(scores) == expected


def test_a_non_finite_score_stops_training_with_a_warning():
    with pytest.warns(RuntimeWarning, match="non-finite valid_mse"):
        model = SMRForecaster(**SMALL, epochs=5,
                              callbacks=[ScriptedCurve([2.0, 1.0, np.nan, 0.5, 0.4]), EarlyStopping()]).fit(frame())
    assert len(model.history_) == 3 and model.best_epoch_ == 1


def test_stop_after_keeps_the_full_schedule():
    df = frame()
    full = SMRForecaster(**SMALL, epochs=6).fit(df)
    stopped = SMRForecaster(**SMALL, epochs=6, callbacks=[StopAfter(4)]).fit(df)
    short = SMRForecaster(**SMALL, epochs=4).fit(df)
    losses = [h["train_loss"] for h in stopped.history_]
    assert len(losses) == 4 and not stopped.interrupted_
    assert losses == [h["train_loss"] for h in full.history_[:4]]  # same schedule, same steps
    # one step per epoch: a 4-epoch schedule takes its third step at a lower rate, seen in epoch 3's loss
    assert losses[3] != short.history_[3]["train_loss"]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_history_logger_writes_the_history(tmp_path, suffix):
    path = tmp_path / "logs" / f"history{suffix}"
    model = SMRForecaster(**{**SMALL, "validation_fraction": 0.5}, epochs=3,
                          callbacks=[HistoryLogger(path)]).fit(frame())
    if suffix == ".json":
        logged = json.loads(path.read_text())
        assert [list(record) for record in logged] == [list(record) for record in model.history_]
        # JSON writes floats by their repr, so every value comes back exactly (NaN included)
        assert logged == [pytest.approx(record, rel=0, abs=0, nan_ok=True) for record in model.history_]
    else:
        logged = pd.read_csv(path)
        assert list(logged.columns) == list(model.history_[0])
        np.testing.assert_allclose(logged["valid_mse"], [h["valid_mse"] for h in model.history_], rtol=1e-12)


def test_callbacks_are_cloned_and_never_saved(tmp_path):
    logger = HistoryLogger(tmp_path / "h.json")
    model = SMRForecaster(**SMALL, epochs=2, callbacks=[logger])
    copied = clone(model)
    assert copied.callbacks[0] is not logger and copied.callbacks[0].path == logger.path
    model.fit(frame())
    model.save(tmp_path / "m")
    assert "callbacks" not in json.loads((tmp_path / "m" / "config.json").read_text())["params"]
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.callbacks is None
    pd.testing.assert_frame_equal(loaded.forecast(h=2), model.forecast(h=2))


@pytest.mark.parametrize("callbacks, patience, match", [
    ([EarlyStopping()], 3, "patience"),
    (["not a callback"], None, "callbacks"),
    (EarlyStopping(), None, "callbacks"),
])
def test_bad_callbacks_are_refused(callbacks, patience, match):
    with pytest.raises(InvalidParameterError, match=match):
        SMRForecaster(**SMALL, epochs=1, callbacks=callbacks, patience=patience).fit(frame())


@pytest.mark.parametrize("make, match", [
    (lambda: EarlyStopping(patience=0), "patience"),
    (lambda: EarlyStopping(patience=True), "patience"),
    (lambda: StopAfter(0), "epochs"),
    (lambda: HistoryLogger("history.txt"), "path"),
])
def test_callback_parameters_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_require_gain_keeps_the_initial_weights_unless_the_gain_is_clear():
    model = torch.nn.Linear(2, 1)
    initial = copy.deepcopy(model.state_dict())
    for z, kept in [(0.5, True), (3.0, False)]:
        model.load_state_dict(initial)
        stopper = EarlyStopping()
        gain = RequireGain(stopper)
        state = TrainingState(model=model, epochs=2)
        for cb in (stopper, gain):
            cb.on_train_begin(state)
        with torch.no_grad():
            model.weight.add_(1.0)  # "training" moved the weights
        record = {"epoch": 0, "train_loss": 1.0, "valid_scaled_mae": 0.5, "valid_gain_z": z}
        state.history.append(record)
        for cb in (stopper, gain):
            cb.on_epoch_end(state, record)
        for cb in (stopper, gain):
            cb.on_train_end(state)
        same = all(torch.equal(model.state_dict()[k], initial[k]) for k in initial)
        assert same == kept
        assert stopper.best_epoch == (-1 if kept else 0)


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
