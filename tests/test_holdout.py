"""The validation plan (smr_ts/holdout.py): which series or times a fit holds out, read alike by training
and by the intervals."""

import numpy as np
import pandas as pd
import pytest

from smr_ts import SMRForecaster
from smr_ts.callbacks import Callback
from smr_ts.data.panel import FIRST_GAP
from smr_ts.forecasting.features import forecast_tensors
from smr_ts.forecasting.intervals import calibration_source
from smr_ts.forecasting.pairs import training_pairs
from smr_ts.holdout import plan_validation, validation_origin

from _signals import SMALL, irregular_frame
from forecasting._data import FAST, poisson_frame


def test_a_single_series_validates_on_its_last_part():
    frame = poisson_frame(lambda t, rng, i: np.sin(t) + 0.1 * rng.normal(size=len(t)), n_series=1, n_obs=300)
    model = SMRForecaster(**{**FAST, "epochs": 2}).fit(frame)
    assert all("valid_scaled_mae" in h and "valid_gain_z" in h for h in model.history_)


def test_a_time_split_trains_on_nothing_after_the_split():
    """With ``validation_by="time"`` each series' last part validates and training never scores it: mirroring
    every value after the split (which keeps every absolute change, so the fallback scales too) leaves each
    epoch's training loss as it was, and moves the validation scores. Catches training pairs whose query lies
    after the split (the sampler built without ``query_until``)."""
    frame = poisson_frame(lambda t, rng, i: np.sin(0.5 * t + i) + 0.1 * rng.normal(size=len(t)), n_series=3, n_obs=80)
    settings = {**FAST, "epochs": 2, "validation_by": "time", "horizon": 5.0}
    model = SMRForecaster(**settings).fit(frame)
    mirrored = []
    for _, rows in frame.groupby("unique_id"):
        t, y = rows["ds"].to_numpy(), rows["y"].to_numpy().copy()
        span = t[-1] - t[0]
        split = t[-1] - np.clip(5.0, model.validation_fraction * span, 0.5 * span)
        after = t > split
        assert 3 <= after.sum() < len(t) // 2
        y[after] = 2 * y[~after][-1] - y[after]  # reflected about the last value before the split
        mirrored.append(rows.assign(y=y))
    other = SMRForecaster(**settings).fit(pd.concat(mirrored))
    np.testing.assert_allclose([h["train_loss"] for h in other.history_], [h["train_loss"] for h in model.history_],
                               rtol=1e-6)
    assert other.history_[0]["valid_scaled_mae"] != pytest.approx(model.history_[0]["valid_scaled_mae"], rel=1e-3)


@pytest.mark.parametrize("n_series, fraction, held", [(49, 0.1, 12), (80, 0.1, 16), (200, 0.1, 20), (2, 0.1, 1),
                                                     (49, 0.0, 0)])
def test_forecasting_holds_out_enough_series_to_calibrate(n_series, fraction, held):
    """Forecasting holds out MIN_HELD_OUT_SERIES (16) series at least, or a quarter of a smaller panel; regression
    keeps validation_fraction as given."""
    plan = plan_validation(n_series, 0, given=False, forecasting=True, validation_fraction=fraction)
    train, val = plan.train, plan.held_out
    assert len(val) == held and len(train) + len(val) == n_series and not set(train) & set(val)
    regression = plan_validation(n_series, 0, given=False, forecasting=False, validation_fraction=fraction)
    assert len(regression.held_out) == (max(1, round(fraction * n_series)) if fraction else 0)


@pytest.mark.parametrize("by", ["series", "time"])
def test_training_and_the_intervals_read_the_same_held_out_part(by):
    """One plan, two readers. Held out by series: the training sampler holds exactly the training series and the
    calibration exactly the held-out ones, together every series once. Held out in time: training scores nothing
    after the origin from which the calibration cut-offs start. Fails if either reader holds out on its own."""
    frame = poisson_frame(lambda t, rng, i: np.sin(t + i) + 0.1 * rng.normal(size=len(t)), n_series=12, n_obs=60)
    model = SMRForecaster(**{**FAST, "epochs": 1}, horizon=5.0).fit(frame)
    layout = model.layout_
    data = forecast_tensors(model.history_panel_, layout, FIRST_GAP)
    plan = plan_validation(12, 0, given=False, forecasting=True, validation_fraction=0.25, validation_by=by)
    sampler, batches = training_pairs(data, layout, plan, window=64, batch_size=4, device="cpu",
                                      rng=np.random.default_rng(0))
    held, first_cut, *every = calibration_source(data, layout, plan)
    assert batches
    if by == "series":
        assert plan.kind == "series" and len(plan.held_out) == 3
        assert sorted([*plan.train, *plan.held_out]) == list(range(12))
        np.testing.assert_array_equal(sampler.data.time, data.time[plan.train])
        np.testing.assert_array_equal(held.time, data.time[plan.held_out])
        assert len(every) == 1 and np.isneginf(every[0]).all()
    else:
        assert plan.kind == "time" and len(plan.held_out) == 0 and held is data and not every
        origin = validation_origin(data, layout, plan.fraction)
        np.testing.assert_array_equal(first_cut, origin)
        assert not (sampler.scored & (data.time > origin[:, None])).any()
        assert sampler.scored.any()


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
