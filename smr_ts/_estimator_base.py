"""The estimator's plumbing: scikit-learn's tags, reading frames (a fit's training frame, and the
frames a fitted model is given), the forecast that ``predict`` and ``forecast`` share, forecasting's
documented fitted attributes (read from ``forecast_state_``), and save / load
(:mod:`smr_ts.persistence`).

:class:`smr_ts.forecaster.SMRForecaster` builds on it with what it does: fit, predict, forecast,
update and score. Both are the estimator: they read its parameters and fitted attributes, which no
module below them does.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from smr_ts import persistence
from smr_ts._runtime import resolve_device
from smr_ts.data.frames import FrameSchema, Rows, features_and_targets, known_rows, refuse_array, split_frame
from smr_ts.data.panel import median_gap, to_panel
from smr_ts.data.times import TimeInfo, parse_time_unit, show_duration
from smr_ts.forecasting.fit import covariate_columns, forecast_targets
from smr_ts.forecasting.intervals import check_levels, prediction_names
from smr_ts.forecasting.predict import forecast_frame
from smr_ts.model import build_network
from smr_ts.regression.fit import validation_panel
from smr_ts.regression.windows import Scaling

__all__ = ["FrameEstimator"]


class FrameEstimator(RegressorMixin, BaseEstimator):
    """The base of :class:`~smr_ts.forecaster.SMRForecaster` (see the module docstring)."""

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN means "not observed at this time"
        tags.target_tags.multi_output = True
        tags.target_tags.required = False  # fit(df) without y forecasts the frame's own columns
        tags.regressor_tags.poor_score = True  # rows of a plain array form one sequence, not i.i.d. samples
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ reading inputs
    def _read_rows(self, X, *, fitting: bool, what: str = "X"):
        """X -> (ids, raw times, TimeInfo, value DataFrame)."""
        if isinstance(X, pd.DataFrame):
            if fitting:
                self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
                self.n_features_in_ = X.shape[1]
            return split_frame(X, self.id_col, self.time_col, what=what)
        # A plain 2-D array: one series observed at unit gaps (so generic sklearn tooling works).
        if not fitting and hasattr(self, "feature_names_in_"):
            refuse_array(X, self.feature_names_in_, what)
        array = validate_data(self, X, reset=fitting, ensure_all_finite="allow-nan", dtype=np.float32)
        if fitting and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        n = array.shape[0]
        values = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        return np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.float64), TimeInfo("numeric"), values

    def _read_known(self, X, what: str, dtype=np.float32, schema: FrameSchema | None = None) -> Rows:
        """Rows of a frame for a fitted model, in fit's column order, their static columns apart."""
        ids, times, info, values = self._read_rows(X, fitting=False, what=what)
        return known_rows(ids, times, info, values, schema or self._schema(), what, dtype,
                          named=isinstance(X, pd.DataFrame))

    def _schema(self) -> FrameSchema:
        """How this fitted model reads frames (its id and time columns are the current parameters)."""
        return FrameSchema(self.id_col, self.time_col, self.time_info_, self.value_columns_, self.target_names_,
                           list(getattr(self, "future_names_", ())), list(getattr(self, "static_names_", ())))

    def _training_frame(self, X, y, static, params: dict, forecasting: bool):
        """A fit's training frame read: (panel, features, targets, schema, the statics' one row per series or
        None, y_ndim, time unit). Sets sklearn's n_features_in_ and feature_names_in_ as it reads X."""
        ids, times, info, values = self._read_rows(X, fitting=True)
        static_table, future_names, static_names = None, [], []
        if forecasting:
            values, static_table, future_names, static_names = covariate_columns(values, ids, static, params)
        elif self.future_cols or self.static_cols or static is not None:
            raise ValueError("future_cols, static_cols and static= are for forecasting (fit(df) without y)")
        columns = [str(c) for c in values.columns]
        targets_of = forecast_targets(self.target_cols, future_names, columns) if forecasting else self.target_cols
        features, targets, value_columns, target_names, y_ndim = features_and_targets(
            X, y, values, targets_of, np.float64 if forecasting else np.float32)
        if self.encoder == "cnn" and features.shape[1] != int(np.prod(self.image_shape)):
            raise ValueError(f"image_shape={tuple(self.image_shape)} needs {int(np.prod(self.image_shape))} "
                             f"value columns, X has {features.shape[1]}")
        panel = to_panel(ids, times, features if forecasting else np.concatenate([features, targets], 1),
                         id_col=self.id_col, time_col=self.time_col, info=info)
        unit = parse_time_unit(self.time_unit, info)
        schema = FrameSchema(self.id_col, self.time_col, info, value_columns, target_names, future_names, static_names)
        return panel, features, targets, schema, static_table, y_ndim, unit if unit is not None else median_gap(panel)

    def _validation_panel(self, validation_data, schema: FrameSchema):
        """Regression's ``validation_data=(X_val, y_val)`` as a panel of [features, targets] (None when not given)."""
        if validation_data is None:
            return None
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val) when fit gets y")
        X_val, y_val = validation_data
        return validation_panel(self._read_known(X_val, "validation_data", schema=schema), X_val, y_val, schema)

    def _report_divergence(self, diverged: str, best_epoch: int | None) -> None:
        """Warn what a diverged fit kept (raise when it has nothing to keep) and what to change."""
        change = f"lower lr (now {self.lr:g}) or ssm_lr (now {self.ssm_lr:g})"
        if best_epoch is None:  # sequence regression has no last-value network to fall back on
            raise ValueError(f"{diverged}, before any epoch could be kept: {change}, or set grad_clip")
        kept = "the last-value network" if best_epoch == -1 else f"epoch {best_epoch}'s weights"
        warnings.warn(f"{diverged}; kept {kept}: {change}", RuntimeWarning, stacklevel=4)

    # ------------------------------------------------------------------ prediction
    def _scaling(self) -> Scaling:
        return Scaling(self.feature_mean_, self.feature_scale_, self.target_mean_, self.target_scale_, self.time_unit_)

    def _build_model(self):
        """A network of this fitted model's shape (untrained)."""
        layout = self.forecast_state_.layout if self.mode_ == "forecast" else None
        params = {**self.get_params(deep=False), **getattr(self, "fitted_params_", {})}  # the shape it was fitted with
        return build_network(params, len(self.value_columns_), self.n_targets_, self.loss_, layout,
                             getattr(self, "quantiles_", None))

    def _check_std(self, return_std: bool):
        check_is_fitted(self, "model_")
        if return_std and self.loss_ != "gaussian":
            raise ValueError(f"return_std=True needs a model fitted with loss='gaussian'; this one was fitted with "
                             f"loss={self.loss_!r}: refit with loss='gaussian'")

    def _format_rows(self, array: np.ndarray, X):
        # The output mirrors y: a Series (or 1-D array) for 1-D y, a DataFrame (2-D array) otherwise.
        if isinstance(X, pd.DataFrame):
            if self.y_ndim_ == 1:
                return pd.Series(array[:, 0], index=X.index, name=self.target_names_[0])
            return pd.DataFrame(array, index=X.index, columns=self.target_names_)
        return array[:, 0] if self.y_ndim_ == 1 else array

    def _forecast(self, h, times, context, return_std: bool, what: str, level=None, state=None) -> pd.DataFrame:
        """``forecast``'s frame, from ``state`` (default: ``forecast_state_``)."""
        self._check_std(return_std)
        levels = None if level is None else check_levels(level)
        if self.mode_ != "forecast":
            raise ValueError("forecast() needs a model fitted without y (forecasting mode)")
        if (h is None) == (times is None):
            raise ValueError("give exactly one of h and times")
        state = self.forecast_state_ if state is None else state
        rows = None if context is None else self._read_known(context, "context", state.panel.values.dtype)
        return forecast_frame(state, self.model_, self._schema(), self._prediction_names(), h=h, times=times,
                              context=rows, return_std=return_std, what=what, levels=levels, quantiles=self.quantiles_,
                              horizon=self.fitted_params_.get("horizon", self.horizon),
                              device=resolve_device(self.device, strict=False))

    def _prediction_names(self) -> list[str]:
        """The forecast column of each target (:func:`~smr_ts.forecasting.intervals.prediction_names`)."""
        return prediction_names(self.alias_, self.target_names_)

    # ------------------------------------------------------------------ forecasting's fitted state, documented
    history_panel_ = property(lambda self: self.forecast_state_.panel,
                              doc="Forecasting: the fitted series (and the rows update appended), forecasts continue.")
    layout_ = property(lambda self: self.forecast_state_.layout, doc="Forecasting: what the network's inputs are.")
    selected_forecaster_ = property(lambda self: self.forecast_state_.floor.describe(show_duration(self.time_info_)),
                                    doc="Forecasting: what model selection kept, per range of time ahead.")
    horizon_ = property(lambda self: self.forecast_state_.layout.horizon,
                        doc="Forecasting: the longest time ahead trained, in raw units.")
    static_ids_ = property(lambda self: _present(self.forecast_state_.statics, "static columns").ids,
                           doc="Forecasting with static columns: the series whose statics are known.")
    static_codes_ = property(lambda self: _present(self.forecast_state_.statics, "static columns").codes,
                             doc="Forecasting with static columns: their encodings.")
    calibration_ahead_ = property(lambda self: _present(self.forecast_state_.calibration, "calibration").ahead,
                                  doc="Forecasting: how far ahead each held-out calibration pair is (raw units).")
    calibration_scores_ = property(lambda self: _present(self.forecast_state_.calibration, "calibration").scores,
                                   doc="Forecasting: each calibration pair's score.")
    calibration_changes_ = property(
        lambda self: _present(_present(self.forecast_state_.calibration, "calibration").changes, "history groups"),
        doc="Forecasting: the observed changes behind each calibration pair's cut-off.")

    @property
    def stream_state_(self) -> dict:
        """Forecasting: each series' state after its last row, as a dict of tensors (``backbone.<name>``,
        ``h_last``, ``stats.<name>``); ``del`` it and forecasts run the backbone over the history again."""
        return _present(self.forecast_state_.stream, "stream state").as_dict()

    @stream_state_.deleter
    def stream_state_(self):
        self.forecast_state_ = dataclasses.replace(self.forecast_state_, stream=None)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted model to directory ``path``: ``config.json`` and ``weights.pt``.

        The weights file holds tensors only and is read with ``torch.load(weights_only=True)``,
        which cannot execute code. A model trained on GPU loads on CPU. ``callbacks`` are
        run-time objects and are not written. Each file is written to a temporary file in ``path``
        and renamed over the old one, so a save that fails leaves the previous save intact, and a
        link in ``path`` is replaced, never written through.

        Raises
        ------
        TypeError
            A fitted attribute holds a value JSON cannot hold (named with its key, e.g. an object
            a callback put in ``history_``).
        ValueError
            ``path`` is a file, or ``path/config.json`` or ``path/weights.pt`` is a folder.
        """
        check_is_fitted(self, "model_")
        fitted = {name: getattr(self, name) for name in persistence.FITTED_ATTRIBUTES if name in vars(self)}
        persistence.save(path, self.get_params(deep=False), fitted)

    @classmethod
    def load(cls, path) -> "FrameEstimator":
        """Read a model written by :meth:`save`, on CPU, without executing any code from the files.

        Raises
        ------
        FileNotFoundError
            ``path/config.json`` or ``path/weights.pt`` is missing.
        ValueError
            A file is truncated or edited, the two files come from different saves, or the save
            comes from a version this one cannot read (the message names the file and both versions).
        """
        params, at_fit, fitted = persistence.load(path, cls._get_param_names())
        estimator = cls(**at_fit)  # the network is built as it was fitted; the current parameters come last
        vars(estimator).update(fitted)
        return estimator.set_params(**params)


def _present(value, what: str):
    """``value``, or an AttributeError (so ``hasattr`` is False) when this fitted model has no ``what``."""
    if value is None:
        raise AttributeError(f"this fitted model has no {what}")
    return value
