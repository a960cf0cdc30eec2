"""A battery of malformed and edge-case inputs: each has one outcome, and no input is ever changed.

Every case names what it calls (fit, predict, forecast, save/load, set_params), what it gives,
and what must come of it: a ``ValueError`` or ``TypeError`` whose message names the column,
parameter or file (a regex), or a specific valid result. After each case, every frame, array
and file it was given is compared with a deep copy taken before the call.

The rule behind them: a meaningless input gets a clear error, never a confident answer.
"""

from __future__ import annotations

import copy
import datetime
import json
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from smr_ts import SMRForecaster

SMALL = dict(d_model=8, state_size=8, n_layers=1, epochs=1, batch_size=8, random_state=0)


# ---------------------------------------------------------------- data
def regression_data(n_series=4, n_obs=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    X = pd.DataFrame({
        "unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs),
        "ds": t.ravel(),
        "x": (np.sin(t) + 0.1 * rng.normal(size=t.shape)).ravel(),
        "z": rng.normal(size=t.size),
    })
    return X, pd.Series(np.sin(t).ravel(), name="target")


def history_frame(n_series=4, n_obs=16, seed=1):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, (n_series, n_obs)), 1)
    return pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n_series)], n_obs), "ds": t.ravel(),
                         "y": np.sin(t).ravel() + 0.1 * rng.normal(size=t.size)})


def dated_history(start="2262-01-01", n_series=3, n_obs=12):
    """Daily-ish datetime64[ns] stamps starting at ``start`` (2262 is the last year nanoseconds reach)."""
    frame = history_frame(n_series, n_obs)
    return frame.assign(ds=pd.Timestamp(start) + pd.to_timedelta(frame["ds"], unit="D"))


def seconds_resolution(frame, start):
    """The frame's times moved to ``start`` as datetime64[s], which pandas keeps past 2262."""
    offset = (frame["ds"] - frame["ds"].min()).dt.total_seconds().to_numpy().astype("timedelta64[s]")
    return frame.assign(ds=pd.Series(np.datetime64(start, "s") + offset, index=frame.index))


class Models:
    """Fitted models shared by the cases, each trained on first use."""

    @cached_property
    def regression_data(self):
        return regression_data()

    @cached_property
    def regressor(self):
        X, y = self.regression_data
        return SMRForecaster(**SMALL).fit(X, y)

    @cached_property
    def history(self):
        return history_frame()

    @cached_property
    def forecaster(self):  # loss "auto": MAE, no std
        return SMRForecaster(**SMALL, validation_fraction=0.0).fit(self.history)

    @cached_property
    def dated(self):  # fitted on datetimes in 2262, a few months before nanoseconds run out
        return SMRForecaster(**SMALL, validation_fraction=0.0).fit(dated_history())


@pytest.fixture(scope="module")
def models():
    return Models()


# ---------------------------------------------------------------- the battery
@dataclass
class Case:
    """``inputs(models, tmp_path)`` builds fresh inputs; ``action(models, **inputs)`` is the call.

    Either ``raises`` (exception types) with ``match`` (a regex the message must match), or
    ``check(result, models, **inputs)`` for a valid result.
    """

    name: str
    inputs: Callable[..., dict]
    action: Callable[..., Any]
    raises: tuple | type | None = None
    match: str | None = None
    check: Callable[..., None] | None = None


CASES: list[Case] = []


def case(name, inputs, action, raises=None, match=None, check=None):
    CASES.append(Case(name, inputs, action, raises, match, check))


def reg_inputs(change=lambda X, y: (X, y)):
    def make(models, tmp_path):
        X, y = change(*regression_data())
        return {"X": X, "y": y}
    return make


def fit_regression(models, X, y):
    return SMRForecaster(**SMALL).fit(X, y)


def hist_inputs(change=lambda h: h):
    return lambda models, tmp_path: {"history": change(history_frame())}


def fit_forecaster(models, history, **params):
    return SMRForecaster(**{**SMALL, "validation_fraction": 0.0, **params}).fit(history)


def with_value(frame, column, row, value):
    frame = frame.copy()
    frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
    frame.loc[row, column] = value
    return frame


# ---- fit: malformed frames (regression)
case("fit: missing id column", reg_inputs(lambda X, y: (X.drop(columns="unique_id"), y)), fit_regression,
     ValueError, r"no column or index level 'unique_id' \(set id_col=")
case("fit: missing time column", reg_inputs(lambda X, y: (X.drop(columns="ds"), y)), fit_regression,
     ValueError, r"no column or index level 'ds' \(set time_col=")
case("fit: text in a value column", reg_inputs(lambda X, y: (X.assign(x=X["x"].astype(str)), y)), fit_regression,
     TypeError, r"columns \['x'\] are not numeric")
case("fit: inf in a value column", reg_inputs(lambda X, y: (with_value(X, "z", 2, np.inf), y)), fit_regression,
     ValueError, r"columns \['z'\] contain infinite values")
case("fit: NaT time", reg_inputs(lambda X, y: (with_value(X.assign(ds=pd.to_datetime(X["ds"], unit="h")), "ds", 3,
                                                         pd.NaT), y)),
     fit_regression, ValueError, r"time column 'ds' has missing times \(NaT\)")
case("fit: NaN numeric time", reg_inputs(lambda X, y: (with_value(X, "ds", 1, np.nan), y)), fit_regression,
     ValueError, r"time column 'ds' has missing values")
case("fit: inf numeric time", reg_inputs(lambda X, y: (with_value(X, "ds", 1, np.inf), y)), fit_regression,
     ValueError, r"time column 'ds' has infinite values")
case("fit: text times suggest pd.to_datetime",
     reg_inputs(lambda X, y: (X.assign(ds=pd.to_datetime(X["ds"], unit="h").astype(str)), y)), fit_regression,
     TypeError, r"time column 'ds' must be datetime or numeric.*pd\.to_datetime\(X\['ds'\]\)")
case("fit: bool times", reg_inputs(lambda X, y: (X.assign(ds=X.index % 2 == 0), y)), fit_regression,
     TypeError, r"time column 'ds' must be datetime or numeric, got bool")
case("fit: tz-aware and naive timestamps mixed",
     reg_inputs(lambda X, y: (X.assign(ds=[pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=t) if i % 2
                                           else pd.Timestamp("2024-01-01") + pd.Timedelta(hours=t)
                                           for i, t in enumerate(X["ds"])]), y)),
     fit_regression, ValueError, r"time column 'ds' mixes tz-aware and tz-naive")
case("fit: duplicate (id, time) rows", reg_inputs(lambda X, y: (with_value(X, "ds", 1, X.loc[0, "ds"]), y)),
     fit_regression, ValueError, r"1 duplicate \(unique_id, ds\) rows, for example unique_id='s0'")
case("fit: missing series id", reg_inputs(lambda X, y: (with_value(X, "unique_id", 4, None), y)), fit_regression,
     ValueError, r"id column 'unique_id' has missing values")
case("fit: duplicate column names", reg_inputs(lambda X, y: (X.set_axis(["unique_id", "ds", "x", "x"], axis=1), y)),
     fit_regression, ValueError, r"duplicate column names: \['x'\]")
case("fit: empty frame", reg_inputs(lambda X, y: (X.iloc[:0], y.iloc[:0])), fit_regression,
     ValueError, r"X is empty")
case("fit: y one row short", reg_inputs(lambda X, y: (X, y.iloc[:-1])), fit_regression,
     ValueError, r"y has 47 rows but X has 48")
case("fit: y with other row labels", reg_inputs(lambda X, y: (X, y.set_axis(y.index + 1000))), fit_regression,
     ValueError, r"y's index does not match X's index")
case("fit: inf in y", reg_inputs(lambda X, y: (X, with_value(y.to_frame(), "target", 0, np.inf)["target"])),
     fit_regression, ValueError, r"infinit")
case("fit: y all NaN", reg_inputs(lambda X, y: (X, y * np.nan)), fit_regression, ValueError, r"NaN only")
case("fit: one column of a 2-D y all NaN",
     reg_inputs(lambda X, y: (X, pd.DataFrame({"a": y, "b": np.nan}))), fit_regression,
     ValueError, r"y: target column 'b' has no observed value")
case("fit: validation_data not a pair", reg_inputs(),
     lambda models, X, y: SMRForecaster(**SMALL).fit(X, y, validation_data=X), ValueError,
     r"validation_data must be a pair \(X_val, y_val\)")
case("fit: validation_data with other columns", reg_inputs(),
     lambda models, X, y: SMRForecaster(**SMALL).fit(X, y, validation_data=(X.drop(columns="z"), y)),
     ValueError, r"validation_data: feature columns differ from fit: missing \['z'\]")
case("fit: cnn encoder with the wrong image_shape", reg_inputs(),
     lambda models, X, y: SMRForecaster(**SMALL, encoder="cnn", image_shape=(3, 3)).fit(X, y),
     ValueError, r"image_shape=\(3, 3\) needs 9 value columns, X has 2")


# ---- fit: forecasting targets
case("fit: forecasting target all NaN (used to train on nothing and report valid_mse 0)",
     hist_inputs(lambda h: h.assign(y=np.nan)), fit_forecaster,
     ValueError, r"X: target column 'y' has no observed value")
case("fit: one of two forecasting targets all NaN",
     hist_inputs(lambda h: h.assign(w=np.nan)),
     lambda models, history: fit_forecaster(models, history, target_cols=["y", "w"]),
     ValueError, r"target column 'w' has no observed value.*target_cols")
case("fit: several value columns, none named y, no target_cols",
     hist_inputs(lambda h: h.rename(columns={"y": "load"}).assign(price=1.0)), fit_forecaster,
     ValueError, r"no 'y' column and several value columns \['load', 'price'\]: name the ones to forecast with "
                 r"target_cols")
case("fit: target_cols names a missing column", hist_inputs(),
     lambda models, history: fit_forecaster(models, history, target_cols=["nope"]),
     ValueError, r"target_cols \['nope'\] are not columns of X")
case("fit: forecasting frame without value columns", hist_inputs(lambda h: h.drop(columns="y")), fit_forecaster,
     ValueError, r"X has no value columns to forecast")
case("fit: future_cols naming every value column (used to raise IndexError)", hist_inputs(lambda h: h.assign(w=1.0)),
     lambda models, history: fit_forecaster(models, history, future_cols=["y", "w"]),
     ValueError, r"future_cols=\['y', 'w'\] names every value column of X, so there is no target left to forecast")


# ---- fit: durations from numpy and the standard library (np.timedelta64 used to raise numpy's UFuncTypeError)
def _durations_read_as_timedeltas(result, models, history):
    assert result.horizon_ == pd.Timedelta(hours=6).value and result.time_unit_ == pd.Timedelta(minutes=90).value


case("fit: horizon=np.timedelta64 and time_unit=datetime.timedelta on datetimes",
     lambda models, tmp_path: {"history": dated_history("2024-01-01")},
     lambda models, history: fit_forecaster(models, history, horizon=np.timedelta64(6, "h"),
                                            time_unit=datetime.timedelta(minutes=90)),
     check=_durations_read_as_timedeltas)
case("fit: horizon=np.timedelta64 on numeric times", hist_inputs(),
     lambda models, history: fit_forecaster(models, history, horizon=np.timedelta64(6, "h")),
     ValueError, r"horizon=(np|numpy)\.timedelta64\(6,'h'\) is a duration but the time column is numeric")
case("fit: time_unit=np.timedelta64 of zero", lambda models, tmp_path: {"history": dated_history("2024-01-01")},
     lambda models, history: fit_forecaster(models, history, time_unit=np.timedelta64(0, "s")),
     ValueError, r"time_unit must be positive")
def _saves_and_loads_with_its_durations(result, models, history, tmp_path):
    result.save(tmp_path / "m")
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.get_params()["horizon"] == np.timedelta64(6, "h") and loaded.horizon_ == result.horizon_
    pd.testing.assert_frame_equal(loaded.forecast(h=2), result.forecast(h=2))


case("save: a model fitted with np.timedelta64 and datetime.timedelta durations loads with them",
     lambda models, tmp_path: {"history": dated_history("2024-01-01"), "tmp_path": tmp_path},
     lambda models, history, tmp_path: fit_forecaster(models, history, horizon=np.timedelta64(6, "h"),
                                                      time_unit=datetime.timedelta(minutes=90)),
     check=_saves_and_loads_with_its_durations)
case("fit: a negative datetime.timedelta horizon", lambda models, tmp_path: {"history": dated_history("2024-01-01")},
     lambda models, history: fit_forecaster(models, history, horizon=datetime.timedelta(hours=-1)),
     ValueError, r"horizon must be positive")


# ---- fit: datetimes nanoseconds cannot hold (they used to wrap to 1739)
case("fit: datetime64[s] times after 2262",
     lambda models, tmp_path: {"history": seconds_resolution(dated_history(), "2300-01-01")}, fit_forecaster,
     ValueError, r"time column 'ds' has times outside 1677-09-21 \.\. 2262-04-11.*give the times as numbers")
case("fit: datetime64[s] times before 1677",
     lambda models, tmp_path: {"history": seconds_resolution(dated_history(), "1600-01-01")}, fit_forecaster,
     ValueError, r"time column 'ds' has times outside")


# ---- fit: valid edge cases with a specific result
def _same_predictions_as_sorted(result, models, X, y):
    sorted_fit = SMRForecaster(**SMALL).fit(*regression_data())
    X_sorted, _ = regression_data()
    # the same model up to float rounding (column statistics summed in another order)
    pd.testing.assert_series_equal(result.predict(X).loc[X_sorted.index], sorted_fit.predict(X_sorted),
                                   rtol=1e-5, atol=1e-6)


case("fit: rows in any order give the model sorted rows give",
     reg_inputs(lambda X, y: (X.sample(frac=1.0, random_state=1), y.sample(frac=1.0, random_state=1))),
     fit_regression, check=_same_predictions_as_sorted)


def _nan_values_are_unobserved(result, models, X, y):
    pred = result.predict(X)
    assert np.isfinite(pred.to_numpy()).all() and pred.index.equals(X.index)


case("fit: NaN values mean 'not observed'", reg_inputs(lambda X, y: (with_value(X, "x", [1, 5, 9], np.nan), y)),
     fit_regression, check=_nan_values_are_unobserved)


# ---- predict (regression)
def reg_X(change=lambda X: X):
    return lambda models, tmp_path: {"X": change(regression_data()[0])}


def predict(models, X, **kwargs):
    return models.regressor.predict(X, **kwargs)


case("predict: a plain array after a DataFrame fit (used to read id and time as values)",
     reg_X(lambda X: X.assign(unique_id=0).to_numpy(float)),
     predict, TypeError, r"X is a ndarray of shape \(48, 4\), but the model was fitted on a DataFrame with columns "
                         r"\['unique_id', 'ds', 'x', 'z'\]")
case("predict: a feature column missing", reg_X(lambda X: X.drop(columns="z")), predict,
     ValueError, r"X: feature columns differ from fit: missing \['z'\]")
case("predict: an unknown feature column", reg_X(lambda X: X.assign(w=1.0)), predict,
     ValueError, r"unexpected \['w'\]")
case("predict: datetimes after a numeric-time fit", reg_X(lambda X: X.assign(ds=pd.to_datetime(X["ds"], unit="h"))),
     predict, TypeError, r"time column 'ds' is tz-naive datetime but was numeric at fit")
case("predict: empty frame", reg_X(lambda X: X.iloc[:0]), predict, ValueError, r"X is empty")
case("predict: text in a value column", reg_X(lambda X: X.assign(z="a")), predict, TypeError, r"\['z'\] are not numeric")
case("predict: return_std from a model fitted with mse", reg_X(),
     lambda models, X: predict(models, X, return_std=True),
     ValueError, r"return_std=True needs a model fitted with loss='gaussian'; this one was fitted with loss='mse'")
case("predict: before fit", reg_X(), lambda models, X: SMRForecaster(**SMALL).predict(X), NotFittedError, "not fitted")
case("forecast: on a regression model", reg_X(), lambda models, X: models.regressor.forecast(h=2),
     ValueError, r"forecast\(\) needs a model fitted without y")


def _same_as_in_fit_order(result, models, X):
    X0, _ = regression_data()
    pd.testing.assert_series_equal(result, models.regressor.predict(X0))


case("predict: columns in another order", reg_X(lambda X: X[["z", "ds", "x", "unique_id"]]), predict,
     check=_same_as_in_fit_order)


def _new_series_predicted_from_their_own_rows(result, models, X):
    assert result.index.equals(X.index) and np.isfinite(result.to_numpy()).all()
    X0, _ = regression_data()
    renamed = models.regressor.predict(X0)  # the same rows under the fitted ids: the same predictions
    np.testing.assert_allclose(result.to_numpy(), renamed.to_numpy(), rtol=1e-6)


case("predict: series never seen in fit (regression reads each series' own rows)",
     reg_X(lambda X: X.assign(unique_id="new_" + X["unique_id"])), predict,
     check=_new_series_predicted_from_their_own_rows)


# ---- predict / forecast (forecasting)
def hist_rows(change=lambda h: h):
    return lambda models, tmp_path: {"frame": change(history_frame())}


def last_times():
    return history_frame().groupby("unique_id")["ds"].max()


case("predict: the history itself in forecasting mode names X, not 'times'",
     hist_rows(lambda h: h[["unique_id", "ds"]]), lambda models, frame: models.forecaster.predict(frame),
     ValueError, r"^X: ds values must be after each series' history; unique_id='s0' .*predict\(X\) forecasts at "
                 r"X's \(id, time\) rows")
case("predict: a plain array in forecasting mode", hist_rows(lambda h: h[["ds", "y"]].to_numpy()),
     lambda models, frame: models.forecaster.predict(frame), TypeError, r"predict takes a DataFrame")
case("forecast: unknown series", lambda models, tmp_path: {"frame": pd.DataFrame({"unique_id": ["nobody"], "ds": [99.0]})},
     lambda models, frame: models.forecaster.forecast(times=frame), ValueError,
     r"^times: unknown unique_id values \['nobody'\]")
case("forecast: a query at the last observed time",
     lambda models, tmp_path: {"frame": last_times().reset_index().iloc[:1]},
     lambda models, frame: models.forecaster.forecast(times=frame), ValueError,
     r"^times: ds values must be after each series' history; unique_id='s0'")
case("forecast: neither h nor times", hist_rows(), lambda models, frame: models.forecaster.forecast(),
     ValueError, r"exactly one of h and times")
case("forecast: both h and times", hist_rows(lambda h: h[["unique_id", "ds"]]),
     lambda models, frame: models.forecaster.forecast(h=2, times=frame), ValueError, r"exactly one of h and times")
for bad_h in (0, 1.5, True, "3"):
    case(f"forecast: h={bad_h!r}", hist_rows(), lambda models, frame, h=bad_h: models.forecaster.forecast(h=h),
         ValueError, r"'h' parameter of forecast must be (an int in the range \[1, inf\)|a number, not a bool)")
case("forecast: times not a frame", hist_rows(), lambda models, frame: models.forecaster.forecast(times=[1.0, 2.0]),
     TypeError, r"times must be a DataFrame with columns 'unique_id' and 'ds', got list")
case("forecast: datetime queries after a numeric-time fit",
     lambda models, tmp_path: {"frame": pd.DataFrame({"unique_id": ["s0"], "ds": [pd.Timestamp("2030-01-01")]})},
     lambda models, frame: models.forecaster.forecast(times=frame), TypeError,
     r"times: time column 'ds' is tz-naive datetime but was numeric at fit")
case("forecast: context repeating a fitted row", hist_rows(lambda h: h.iloc[[3]]),
     lambda models, frame: models.forecaster.forecast(h=1, context=frame), ValueError,
     r"context has 1 duplicate \(unique_id, ds\) rows")
case("forecast: context without the value column",
     lambda models, tmp_path: {"frame": pd.DataFrame({"unique_id": ["new"], "ds": [1.0]})},
     lambda models, frame: models.forecaster.forecast(h=1, context=frame), ValueError,
     r"context: feature columns differ from fit: missing \['y'\]")
def _unobserved_target_is_nan(result, models, frame):
    assert result["unique_id"].tolist() == ["new"] and result["S5"].isna().all()


case("forecast: a new series whose context never observes the target (used to raise for the whole call): NaN",
     lambda models, tmp_path: {"frame": pd.DataFrame({"unique_id": ["new"] * 2, "ds": [1.0, 2.0], "y": np.nan})},
     lambda models, frame: models.forecaster.forecast(times=pd.DataFrame({"unique_id": ["new"], "ds": [3.0]}),
                                                      context=frame),
     check=_unobserved_target_is_nan)
case("forecast: return_std from a model fitted with mae", hist_rows(),
     lambda models, frame: models.forecaster.forecast(h=1, return_std=True), ValueError,
     r"fitted with loss='mae': refit with loss='gaussian'")
case("forecast: h steps past 2262 (used to come back dated 1677-1739)", hist_rows(),
     lambda models, frame: models.dated.forecast(h=400), ValueError,
     r"forecast\(h=400\) would reach past 2262-04-11")
case("forecast: datetime64[s] query times after 2262",
     lambda models, tmp_path: {"frame": pd.DataFrame({"unique_id": ["s0"],
                                                      "ds": np.array(["2263-01-01"], dtype="datetime64[s]")})},
     lambda models, frame: models.dated.forecast(times=frame), ValueError,
     r"^times: time column 'ds' has times outside")


def _dated_forecast_stays_in_its_year(result, models, frame):
    last = dated_history().groupby("unique_id")["ds"].max()
    assert (result["ds"].dt.year == 2262).all()
    assert (result.groupby("unique_id")["ds"].min() > last).all() and len(result) == 5 * len(last)


case("forecast: h steps that stay before the end of 2262 are dated correctly", hist_rows(),
     lambda models, frame: models.dated.forecast(h=5), check=_dated_forecast_stays_in_its_year)


# ---- set_params after fit: prediction follows what the model was fitted with
def _copy_of(name):
    return lambda models, tmp_path: {"model": copy.deepcopy(getattr(models, name)), "tmp_path": tmp_path}


case("set_params(loss='gaussian') after an mae fit, then return_std",
     _copy_of("forecaster"), lambda models, model, tmp_path: model.set_params(loss="gaussian").forecast(
         h=2, return_std=True),
     ValueError, r"this one was fitted with loss='mae'")


def _fitted_network_is_kept(result, models, model, tmp_path):
    expected = models.forecaster.forecast(h=3)
    pd.testing.assert_frame_equal(result, expected)
    model.save(tmp_path / "m")  # the weights are written with what they were built from
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params() and loaded.d_model == 16
    pd.testing.assert_frame_equal(loaded.forecast(h=3), expected)


case("set_params(d_model, n_layers, smr, loss) after fit: forecasts, save and load follow the fit",
     _copy_of("forecaster"),
     lambda models, model, tmp_path: model.set_params(d_model=16, n_layers=2, smr=True, loss="gaussian").forecast(h=3),
     check=_fitted_network_is_kept)
case("set_params: an unknown parameter", _copy_of("forecaster"),
     lambda models, model, tmp_path: model.set_params(depth=3), ValueError, r"Invalid parameter 'depth'")
case("set_params(epochs=0), then fit", hist_inputs(),
     lambda models, history: SMRForecaster(**SMALL).set_params(epochs=0).fit(history), ValueError,
     r"'epochs' parameter of SMRForecaster must be an int in the range \[1, inf\)")
case("set_params(loss='huber'), then fit", hist_inputs(),
     lambda models, history: SMRForecaster(**SMALL).set_params(loss="huber").fit(history), ValueError,
     r"'loss' parameter of SMRForecaster must be a str among")


# ---- save / load
def saved(change: Callable[[Path, Models], None] = lambda path, models: None):
    """A saved forecaster in a fresh folder, then ``change`` applied to its files."""
    def make(models, tmp_path):
        path = tmp_path / "model"
        models.forecaster.save(path)
        change(path, models)
        return {"path": path}
    return make


def truncate(name):
    def change(path, models):
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: len(data) // 2])
    return change


def other_models_weights(path, models):
    other = SMRForecaster(**{**SMALL, "d_model": 16}, validation_fraction=0.0).fit(models.history)
    other.save(path.parent / "other")
    (path / "weights.pt").write_bytes((path.parent / "other" / "weights.pt").read_bytes())


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def code_in_weights(path, models):
    torch.save({"model_.x": _RunsCode(path / "ran")}, path / "weights.pt")


def load(models, path):
    return SMRForecaster.load(path)


case("load: a folder that does not exist", lambda models, tmp_path: {"path": tmp_path / "nowhere"}, load,
     FileNotFoundError, r"nowhere/config\.json does not exist: load\(path\) reads the folder SMRForecaster\.save")
case("load: weights.pt missing", saved(lambda path, models: (path / "weights.pt").unlink()), load,
     FileNotFoundError, r"weights\.pt does not exist")
case("load: truncated weights.pt (used to raise OSError: Invalid argument)", saved(truncate("weights.pt")), load,
     ValueError, r"model/weights\.pt could not be read as a tensors-only weights file.*save the model again")
case("load: truncated config.json (used to raise a bare JSONDecodeError)", saved(truncate("config.json")), load,
     ValueError, r"model/config\.json is not a config written by SMRForecaster\.save.*save the model again")
case("load: config.json that is JSON but not a config",
     saved(lambda path, models: (path / "config.json").write_text("[1, 2]")), load,
     ValueError, r"config\.json is not a config written by SMRForecaster\.save")
case("load: config.json with a parameter this version does not know",
     saved(lambda path, models: (path / "config.json").write_text(
         (path / "config.json").read_text().replace('"d_model"', '"width"'))), load,
     ValueError, r"config\.json was written by smr_ts .* does not know \(params\['width'\].*it was edited")
case("load: weights of another model (used to raise torch's size mismatch)", saved(other_models_weights), load,
     ValueError, r"weights\.pt does not match .*config\.json \(RuntimeError: .*size mismatch.*save the model again")


def _nothing_ran(result, models, path):
    raise AssertionError("a weights file holding an object was loaded")


case("load: weights.pt holding an object that would run code: refused, nothing runs", saved(code_in_weights), load,
     ValueError, r"weights\.pt could not be read as a tensors-only weights file.*nothing in it was run")
case("save: before fit", lambda models, tmp_path: {"path": tmp_path / "m"},
     lambda models, path: SMRForecaster(**SMALL).save(path), NotFittedError, "not fitted")


# ---------------------------------------------------------------- the test
def folder_files(path: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


class Folder(dict):
    """The files of a folder, as they were."""


class Absent:
    """A path that did not exist, and must not exist afterwards."""


def snapshot(inputs: dict) -> dict:
    """A deep copy of the inputs (frames, arrays); a folder is kept as the bytes of its files."""
    copied = {}
    for key, value in inputs.items():
        if isinstance(value, Path):
            copied[key] = Folder(folder_files(value)) if value.is_dir() else Absent()
        elif not isinstance(value, SMRForecaster):  # a model a case changes is its own deep copy
            copied[key] = copy.deepcopy(value)
    return copied


def assert_unchanged(now, before, where="inputs"):
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(now, before, check_exact=True, obj=where)
        assert list(now.index.names) == list(before.index.names) and now.attrs == before.attrs
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(now, before, check_exact=True, obj=where)
    elif isinstance(before, np.ndarray):
        np.testing.assert_array_equal(now, before, err_msg=where)
        assert now.dtype == before.dtype
    elif isinstance(before, Folder):
        assert folder_files(now) == before, f"{where}: the files changed"
    elif isinstance(before, Absent):
        assert not now.exists(), f"{where}: {now} was created"
    elif isinstance(before, dict):
        assert now.keys() == before.keys()
        for key in before:
            assert_unchanged(now[key], before[key], f"{where}[{key!r}]")
    else:
        assert now == before, where


def test_the_battery_is_large_and_names_are_unique():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert all((c.raises is None) != (c.check is None) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, models, tmp_path):
    inputs = case.inputs(models, tmp_path)
    before = snapshot(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # horizon warnings are tested in test_forecasting
        if case.raises is not None:
            with pytest.raises(case.raises, match=case.match) as info:
                case.action(models, **inputs)
            assert isinstance(info.value, (ValueError, TypeError, FileNotFoundError)), type(info.value)
        else:
            case.check(case.action(models, **inputs), models, **inputs)
    assert_unchanged({k: inputs[k] for k in before}, before)
    if "path" in inputs:
        assert not (Path(inputs["path"]) / "ran").exists()


def test_an_all_nan_target_never_reports_a_perfect_validation_score():
    """The failure behind the first case: an all-NaN target trained on nothing and reported 0."""
    history = history_frame().assign(y=np.nan)
    with pytest.raises(ValueError, match="no observed value"):
        SMRForecaster(**SMALL).fit(history)


def test_datetimes_with_second_resolution_inside_the_range_work(models):
    """datetime64[s] inside the nanosecond range are read, not refused: the same model as with [ns]."""
    history = dated_history("2024-01-01").assign(ds=lambda d: d["ds"].dt.floor("s"))
    as_seconds = history.assign(ds=history["ds"].astype("datetime64[s]"))
    ns = SMRForecaster(**SMALL, validation_fraction=0.0).fit(history).forecast(h=2)
    s = SMRForecaster(**SMALL, validation_fraction=0.0).fit(as_seconds).forecast(h=2)
    pd.testing.assert_frame_equal(s, ns)


def test_a_saved_config_names_the_fitted_loss_and_parameters(models, tmp_path):
    model = copy.deepcopy(models.forecaster).set_params(loss="gaussian")
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["loss"] == "gaussian"
    assert config["fitted"]["loss_"] == "mae" and config["fitted"]["fitted_params_"]["params"]["loss"] == "auto"
    loaded = SMRForecaster.load(tmp_path / "m")
    assert loaded.loss == "gaussian" and loaded.loss_ == "mae"
    with pytest.raises(ValueError, match="fitted with loss='mae'"):
        loaded.forecast(h=1, return_std=True)
