"""SMRForecaster: a scikit-learn estimator for irregularly sampled series in long frames.

A thin face over the package's rooms: the data pipeline (:mod:`smr_ts.data`) turns frames into
tensors, :mod:`smr_ts.model` is the network, :mod:`smr_ts.training` trains it with
:mod:`smr_ts.callbacks`, and :mod:`smr_ts.persistence` saves it. Two uses, one estimator:

- sequence regression: ``fit(X, y)``, ``predict(X)``: one prediction per row of X, each from the
  rows of its own series at or before its time;
- forecasting: ``fit(df)`` with the targets among the frame's columns, then ``forecast(...)`` (or
  ``predict(times_frame)``) at future times given per series, irregular or not.

A forecast query is a row with no observed value: the state-space layers advance their state
over its gap without input, which for S5 with ZOH is the exact continuous-time propagation.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from smr_ts import distributed, persistence
from smr_ts._estimator_params import PARAMETER_CONSTRAINTS, check_estimator_params, resolved_loss, resolved_quantiles
from smr_ts._runtime import resolve_device, uses_threads
from smr_ts.callbacks import training_callbacks
from smr_ts.data.frames import (
    align_columns, check_id_kind, features_and_targets, numeric_values, refuse_array, refuse_forecast_array, split_frame,
)
from smr_ts.data.panel import SeriesPanel, median_gap, to_panel
from smr_ts.data.times import TimeInfo, as_fitted_times, check_time_kind, parse_time_unit
from smr_ts.forecasting import predict, streaming
from smr_ts.forecasting.covariate_frames import check_static_rows, split_static
from smr_ts.forecasting.fit import covariates_at_fit, forecast_data, forecast_targets
from smr_ts.forecasting.intervals import calibration_residuals, check_levels
from smr_ts.forecasting.queries import history_rows
from smr_ts.model import ForecastNetwork, SequenceModel
from smr_ts.model_selection import forecast_score
from smr_ts.regression.fit import regression_data, regression_score
from smr_ts.regression.predict import predict_panel
from smr_ts.regression.windows import Scaling, panel_tensors
from smr_ts.training import TrainingSettings, train

__all__ = ["SMRForecaster"]

# Forecasting holds out at least this many series (a quarter of a smaller panel): they choose the epoch and
# calibrate the intervals, which a handful of series does not do reliably (docs/results/forecasting_design.md).
MIN_HELD_OUT_SERIES = 16

class SMRForecaster(RegressorMixin, BaseEstimator):
    """Variable-step state-space model (S5 or S6, optionally with SMR) for irregular time series.

    Takes long frames (one row per observation: series id, time, values) with uneven times and
    uses the real gaps between observations. See ``docs/data.md`` for the data contract and
    ``docs/estimator.md`` for a guide to the parameters.

    Parameters
    ----------
    backbone : {"s5", "s6", "gru_dt", "ode_rnn"}, default "s5"
        Sequence model: S5 (diagonal, ZOH over each gap) or S6 (Mamba with the gap injected);
        "gru_dt" and "ode_rnn" are the recurrent baselines of :mod:`smr_ts.baselines`.
    smr : bool, default False
        State Memory Replay input gate (S5 and S6 only).
    smr_kernel : int, default 4
        SMR's kernel length tau.
    smr_use_gaps : bool, default False
        Time-aware SMR: the gate also reads each row's log gap (``smr=True`` only; :mod:`smr_ts.ssm.smr`).
    d_model : int, default 32
        Width of the model.
    state_size : int, default 16
        State size (S5: P before conjugate symmetry; S6: N per channel).
    n_layers : int, default 2
    blocks : int, default 1
        S5's number of HiPPO-N blocks; must divide ``state_size`` (into even blocks).
    step_min, step_max : float, default 0.01, 1.0
        Range of the learned timescales at initialisation, per time unit (S5's log_step,
        S6's step bias are drawn log-uniform in it). With gaps of about one unit, a model
        remembers roughly 1 / step observations; the published S5 and Mamba defaults,
        [0.001, 0.1], suit sequences of thousands of steps.
    dropout : float, default 0.0
    encoder : {"linear", "mlp", "cnn"}, default "linear"
        Per-step input encoder; "cnn" reads each row's values as an image of ``image_shape``.
    image_shape : (int, int), optional
        (height, width) of image-valued rows; needed by ``encoder="cnn"``.
    encoder_hidden : int, default 30
        Hidden width of the "mlp" and "cnn" encoders.
    loss : {"auto", "mse", "mae", "gaussian", "quantile"}, default "auto"
        "auto" is "mae" when forecasting (the error forecasts are judged by) and "mse" in
        regression. "gaussian" trains a variance head by negative log-likelihood; predictions
        then come with a standard deviation (``return_std=True``). "quantile" (forecasting): the
        pinball loss at ``quantiles``; forecasts add ``<target>_ql<q>`` columns, the point is the 0.5.
    quantiles : list of float, optional
        Levels in (0, 1) for ``loss="quantile"`` (default (0.1, 0.5, 0.9); 0.5 is always added).
    epochs, batch_size : int, default 30, "auto"
        ``batch_size`` counts series (regression; "auto": 32) or forecast windows (forecasting;
        "auto": about 8,192 rows, 8 to 32 windows, so that long windows give more steps).
    lr : float, default 1e-2
        AdamW rate for all parameters but the SSM's own.
    ssm_lr : float, default 1e-3
        Rate, without weight decay, for the SSM's own parameters (S5: Lambda, B, log_step;
        S6: A_log, D) and the backbone's norms (one AdamW, two parameter groups).
    weight_decay : float, default 0.0
        AdamW weight decay of the other parameters.
    warmup_epochs : float, default 1.0
        Linear warm-up length; a cosine decay to 0 follows, stepped per batch.
    grad_clip : float or None, default 1.0
        Clip the gradient norm.
    validation_fraction : float, default 0.1
        Share of series held out for model selection and early stopping (0: select on the
        training loss). Ignored when ``fit`` gets ``validation_data``. Forecasting holds out at
        least ``MIN_HELD_OUT_SERIES`` (16) series, or a quarter of a smaller panel: the held-out
        series also calibrate the intervals, and a conformal quantile over 5 series is noise.
    validation_by : {"series", "time"}, default "series"
        Forecasting: hold out ``validation_fraction`` of the series, or (``"time"``, and always for
        a single series) the last part in time of every series (one horizon, between
        ``validation_fraction`` and half of its span), which training then does not score. With few
        series, "time" validates on all of them.
    patience : int or None, default None
        Stop after this many epochs without a better validation MSE. The best epoch's weights
        are restored at the end in any case. Shorthand for
        ``callbacks=[EarlyStopping(patience)]``; give one or the other.
    callbacks : list of Callback, optional
        Objects called after every epoch (:mod:`smr_ts.callbacks`): record, log or stop
        training. Run-time objects: ``save`` does not write them.
    id_col, time_col : str, default "unique_id", "ds"
        Names of the series id and time columns (or MultiIndex levels); ``id_col=None``: the
        frame is one series, and outputs have no id column.
    target_cols : list of str, optional
        Forecasting: the columns to forecast (default: every value column but ``future_cols``).
    future_cols : list of str, optional
        Forecasting: value columns known ahead (a planned dose, a temperature forecast). The history's
        values are inputs, and so are their values in query rows (``forecast(times=...)``, ``predict``,
        ``score``), NaN where not known. Other non-target columns are past-only: their query values are
        ignored. See ``docs/estimator.md#covariates``.
    static_cols : list of str, optional
        Forecasting: columns with one value per series (numeric, or categories one-hot encoded); also
        given as a separate frame, ``fit(X, static=frame)``.
    time_unit : "auto", float, str or timedelta, default "auto"
        Unit of the gaps the model sees. "auto" uses the median gap of the training data
        (``time_unit_``). A number is in the time column's unit (seconds for datetimes);
        a string such as "15min", a ``pd.Timedelta``, ``np.timedelta64`` or
        ``datetime.timedelta`` is a duration.
    horizon : "auto", float, str or timedelta, default "auto"
        Forecasting: the longest time ahead to train for, after a series' last row. Training
        draws how far ahead each scored row is uniformly in time up to it, and ``forecast``
        warns past it. A number is in the time column's unit (seconds for datetimes); a string
        such as "7D" (or a timedelta, as for ``time_unit``) is a duration. "auto": a quarter of the median series' time span, at least
        8 median gaps (``horizon_``). Tell it the longest horizon you will ask for.
    device : str, default "auto"
        "auto" trains on CUDA when available, else on CPU.
    random_state : int, RandomState or None, default None
        Seeds initialisation, batching and dropout: the same seed, data and device give
        identical predictions.
    n_threads : "auto" or int, default "auto"
        CPU threads torch may use during ``fit``, ``predict`` and ``forecast``; the previous
        setting is restored afterwards. "auto" is 1: these models are small, and on a CPU one
        thread is faster than several that wait on each other.
    verbose : int, default 0
        1 shows a progress bar per fit.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (on CPU after fit).
    history_ : list of dict
        Per epoch: ``train_loss``, ``grad_norm`` (the largest gradient norm of the epoch's steps,
        before clipping), validation metrics, ``seconds``.
    best_epoch_ : int or None
        Epoch whose weights were restored.
    time_unit_ : float
        The time unit in raw units of the time column (nanoseconds for datetimes).
    mode_ : {"regression", "forecast"}
        "regression" when ``fit`` got ``y``, else "forecast".
    loss_ : {"mse", "mae", "gaussian", "quantile"}
        The loss trained with (``loss`` with "auto" resolved); prediction follows it.
    fitted_params_ : dict
        ``get_params()`` at fit (less ``callbacks``): what the network was built with.
    n_features_in_ : int
        Number of columns of X at fit.
    feature_names_in_ : ndarray of str
        Columns of X at fit (only for DataFrames).
    target_names_ : list of str
        What the model predicts, in the order of its output columns. Forecasting: the columns of X it
        forecasts, ``target_cols`` when given, else the value columns its default picks (see
        ``target_cols``); the other value columns are inputs only. Regression: the names of ``y``'s
        columns (a Series' name, "y" for an unnamed or 1-D one; "y0", "y1", ... for a 2-D array).
    quantiles_ : tuple of float or None
        The quantile levels trained with ``loss="quantile"``, 0.5 among them; None otherwise.
    calibration_ahead_, calibration_scores_, calibration_changes_ : ndarray
        Forecasting: what calibrates ``forecast(level=...)`` (:mod:`smr_ts.forecasting.intervals`): per held-out
        pair, how far ahead, its score, and the observed changes behind its cut-off.
    stream_state_ : dict of Tensor
        Forecasting: each series' state after its last row, advanced by ``update`` (:mod:`smr_ts.forecasting.streaming`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> t = np.sort(rng.uniform(0, 20, size=(4, 30)), axis=1)
    >>> df = pd.DataFrame({"unique_id": np.repeat(["a", "b", "c", "d"], 30), "ds": t.ravel(),
    ...                    "y": np.sin(t.ravel())})
    >>> model = SMRForecaster(epochs=2, d_model=8, state_size=8, random_state=0).fit(df)
    >>> future = model.forecast(h=3)
    >>> list(future.columns), len(future)
    (['unique_id', 'ds', 'y'], 12)
    """

    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(
        self, backbone="s5", smr=False, smr_kernel=4, smr_use_gaps=False, d_model=32, state_size=16, n_layers=2,
        blocks=1, step_min=0.01, step_max=1.0, dropout=0.0, encoder="linear", image_shape=None, encoder_hidden=30,
        loss="auto", quantiles=None, epochs=30, batch_size="auto", lr=1e-2, ssm_lr=1e-3, weight_decay=0.0,
        warmup_epochs=1.0, grad_clip=1.0, validation_fraction=0.1, validation_by="series", patience=None,
        callbacks=None, id_col="unique_id", time_col="ds", target_cols=None, future_cols=None, static_cols=None,
        time_unit="auto", horizon="auto", device="auto", random_state=None, n_threads="auto", verbose=0,
    ):
        for name, value in dict(locals()).items():  # sklearn: __init__ only stores
            if name != "self":
                setattr(self, name, value)

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

    def _read_known(self, X, what: str, dtype=np.float32, static_out: list | None = None):
        """Rows of a frame for a fitted model: (ids, raw times, features in fit's column order). Static
        columns, when the rows carry them, go to ``static_out`` as one row per series."""
        ids, times, info, values = self._read_rows(X, fitting=False, what=what)
        check_time_kind(info, self.time_info_, self.time_col, what)
        static = [c for c in getattr(self, "static_names_", ()) if c in values.columns]
        if static:
            values, table = split_static(values, ids, static if len(static) == len(self.static_names_)
                                         else self.static_names_, self.id_col, what)
            if static_out is not None:
                static_out.append(table)
        if isinstance(X, pd.DataFrame):
            values = align_columns(values, self.value_columns_, what)
        return ids, times, numeric_values(values, what, dtype)

    # ------------------------------------------------------------------ fit
    @uses_threads
    def fit(self, X, y=None, *, validation_data=None, static=None):
        """Fit on a long frame.

        Parameters
        ----------
        X : DataFrame or 2-D array
            Long frame with ``id_col``, ``time_col`` (columns or index levels) and value
            columns. With ``y``, a 2-D array is one series observed at unit gaps; without ``y``
            (forecasting) X must be a DataFrame, since an array names no id, time or target column.
        y : DataFrame, Series or array, optional
            Per-row targets (sequence regression), aligned with X by index. Without ``y`` the
            model learns to forecast ``target_cols`` of X itself.
        validation_data : X_val or (X_val, y_val), optional
            Held-out series for model selection, instead of ``validation_fraction``.
        static : DataFrame, optional
            Forecasting: static covariates, one row per series (``id_col`` as a column or the index);
            its other columns join ``static_cols``.

        Returns
        -------
        self

        Notes
        -----
        The fitted attributes are those of this fit only, and only once it has succeeded: a fit that
        raises (an error, a callback, Ctrl-C before the first epoch has finished or while fit finishes
        after training) leaves the estimator as it was before it, fitted or not. A Ctrl-C after an
        epoch has finished ends training cleanly (``interrupted_``); a fit whose training diverges
        keeps the last-value network (regression: raises), with a warning (``docs/estimator.md``).
        """
        before = dict(vars(self))
        for name in [k for k in before if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)  # a fit starts from no fitted state, so it never keeps a part of the last one
        try:
            return self._fit(X, y, validation_data, static)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _fit(self, X, y, validation_data, static):
        check_estimator_params(self)
        if y is None and not isinstance(X, pd.DataFrame):
            refuse_forecast_array(X, self.id_col, self.time_col)
        collective, device = distributed.join(self.device)  # a torchrun group (docs/distributed.md), or None
        self.mode_ = "regression" if y is not None else "forecast"
        forecasting = self.mode_ == "forecast"
        self.loss_, self.fitted_params_ = resolved_loss(self.loss, self.mode_), persistence.fitted_params(self)
        self.quantiles_ = resolved_quantiles(self)
        ids, times, info, values = self._read_rows(X, fitting=True)
        self.time_info_ = info
        static_table = None
        if forecasting:
            values, static_table = covariates_at_fit(self, values, ids, static)
        elif self.future_cols or self.static_cols or static is not None:
            raise ValueError("future_cols, static_cols and static= are for forecasting (fit(df) without y)")
        features, targets, self.value_columns_, self.target_names_, self.y_ndim_ = features_and_targets(
            X, y, values, forecast_targets(self, [str(c) for c in values.columns]) if forecasting else self.target_cols,
            np.float64 if forecasting else np.float32)
        self.n_targets_ = targets.shape[1]
        if self.encoder == "cnn" and features.shape[1] != int(np.prod(self.image_shape)):
            raise ValueError(f"image_shape={tuple(self.image_shape)} needs {int(np.prod(self.image_shape))} "
                             f"value columns, X has {features.shape[1]}")
        panel = to_panel(ids, times, features if forecasting else np.concatenate([features, targets], 1),
                         id_col=self.id_col, time_col=self.time_col, info=info)
        unit = parse_time_unit(self.time_unit, info)
        self.time_unit_ = unit if unit is not None else median_gap(panel)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        seed = distributed.same_on_every_rank(collective, seed)  # every rank draws the same windows
        if forecasting:
            sampler, val_batches, loss_fn, evaluate_fn = forecast_data(self, panel, static_table, validation_data,
                                                                       seed, device)
        else:
            sampler, val_batches, loss_fn, evaluate_fn = regression_data(self, panel, features, targets,
                                                                         validation_data, seed, device)
        if collective is not None:  # each rank validates its share; the sums are all-reduced
            val_batches, evaluate_fn = collective.shard_list(val_batches), partial(evaluate_fn, reduce=collective)

        settings = TrainingSettings(epochs=self.epochs, lr=self.lr, ssm_lr=self.ssm_lr, weight_decay=self.weight_decay,
                                    warmup_epochs=self.warmup_epochs, grad_clip=self.grad_clip)
        # Model selection (with patience), last value as the floor when forecasting, the progress bar.
        callbacks, stopper = training_callbacks(self.callbacks, self.patience, int(self.verbose),
                                                require_gain=forecasting and bool(val_batches))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.model_ = self._build_model().to(device)
            batch_rng = np.random.default_rng(seed + 1)
            result = train(self.model_, settings, lambda epoch: sampler.epoch(batch_rng), sampler.n_batches,
                           partial(loss_fn, distributed.parallel(self.model_, collective)),
                           partial(evaluate_fn, self.model_, val_batches) if val_batches else None, callbacks,
                           initial_candidate=forecasting, collective=collective)
        self.model_.to("cpu").eval()
        best_epoch = stopper.best_epoch
        if result.diverged:
            self._report_divergence(result.diverged, best_epoch)
        if forecasting:  # what calibrates forecast(level=...): the held-out part, forecast by the final network
            self.calibration_ahead_, self.calibration_scores_, self.calibration_changes_ = calibration_residuals(
                self.model_, self.layout_, vars(self).pop("_calibration_source"), np.random.default_rng(seed + 3), device)
            # Each series' state after its last row, which forecast() continues and update() advances.
            self.stream_state_ = streaming.history_state(self.model_, self.layout_, self.history_panel_, device)
        self.history_, self.best_epoch_, self.interrupted_ = result.history, best_epoch, result.interrupted
        return self

    def _report_divergence(self, diverged: str, best_epoch: int | None) -> None:
        """Warn what a diverged fit kept (raise when it has nothing to keep) and what to change."""
        change = f"lower lr (now {self.lr:g}) or ssm_lr (now {self.ssm_lr:g})"
        if best_epoch is None:  # sequence regression has no last-value network to fall back on
            raise ValueError(f"{diverged}, before any epoch could be kept: {change}, or set grad_clip")
        kept = "the last-value network" if best_epoch == -1 else f"epoch {best_epoch}'s weights"
        warnings.warn(f"{diverged}; kept {kept}: {change}", RuntimeWarning, stacklevel=4)

    def _split(self, n_series: int, seed: int, given: bool):
        """Training and validation series (validation_fraction of them, when there are >= 2)."""
        order = np.random.default_rng(seed).permutation(n_series)
        by_time = self.mode_ == "forecast" and self.validation_by == "time"
        split = not given and not by_time and self.validation_fraction > 0 and n_series >= 2
        n_val = max(1, int(round(self.validation_fraction * n_series)))
        if self.mode_ == "forecast":  # calibration and early stopping need enough held-out series
            n_val = max(n_val, min(MIN_HELD_OUT_SERIES, n_series // 4))
        n_val = min(n_series - 1, n_val) if split else 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _scaling(self) -> Scaling:
        return Scaling(self.feature_mean_, self.feature_scale_, self.target_mean_, self.target_scale_, self.time_unit_)

    def _build_model(self):
        n_features = len(self.value_columns_)
        if self.mode_ == "forecast":
            return ForecastNetwork(self.layout_.n_inputs(n_features), self.layout_.n_query_features, self.n_targets_,
                                   self.d_model, self.n_layers, self.backbone, self.get_params(deep=False),
                                   gaussian=self.loss_ == "gaussian", dropout=self.dropout,
                                   quantiles=getattr(self, "quantiles_", None),
                                   n_linear=self.layout_.n_covariate_features)
        return SequenceModel(
            n_features=n_features, n_outputs=self.n_targets_, d_model=self.d_model, n_layers=self.n_layers,
            backbone=self.backbone, encoder=self.encoder, image_shape=self.image_shape,
            encoder_hidden=self.encoder_hidden, gaussian=self.loss_ == "gaussian", dropout=self.dropout,
            backbone_settings=self.get_params(deep=False),
        )

    # ------------------------------------------------------------------ prediction
    def _run(self, panel: SeriesPanel):
        """Model outputs on every step of a panel of features: (mean, std or None), unscaled, (S, L, T)."""
        device = resolve_device(self.device, strict=False)
        mean, std = predict_panel(self.model_, panel_tensors(panel, self._scaling()), device)
        return mean * self.target_scale_ + self.target_mean_, (std * self.target_scale_ if std is not None else None)

    def _check_std(self, return_std: bool):
        check_is_fitted(self, "model_")
        if return_std and self.loss_ != "gaussian":
            raise ValueError(f"return_std=True needs a model fitted with loss='gaussian'; this one was fitted with "
                             f"loss={self.loss_!r}: refit with loss='gaussian'")

    @uses_threads
    def predict(self, X, return_std: bool = False):
        """Predict per row of X.

        Regression mode (fitted with ``y``): one prediction per row, from the rows of its
        own series at or before its time. Forecast mode: X holds (id, time) rows at future
        times of fitted series, and the forecasts are returned for them.

        Parameters
        ----------
        X : DataFrame or 2-D array
        return_std : bool, default False
            Also return the predictive standard deviation (``loss="gaussian"`` only).

        Returns
        -------
        y_pred : for a DataFrame X, a Series (1-D y) or DataFrame (columns ``target_names_``)
            aligned to X's index; for an array X, an ndarray of shape (n,) or (n, n_targets).
        y_std : same type and shape, only with ``return_std``.
        """
        self._check_std(return_std)
        if self.mode_ == "forecast":
            if not isinstance(X, pd.DataFrame):
                raise TypeError("in forecast mode, predict takes a DataFrame of (id, time) rows; see also forecast()")
            result = self._forecast(None, X, None, return_std, what="X")
            mean = result[self.target_names_].set_axis(X.index)
            if return_std:
                return mean, result[[f"{c}_std" for c in self.target_names_]].set_axis(X.index).set_axis(
                    self.target_names_, axis=1)
            return mean
        ids, times, features = self._read_known(X, "X")
        panel = to_panel(ids, times, features, id_col=self.id_col, time_col=self.time_col, info=self.time_info_)
        mean, std = self._run(panel)
        rows = panel.rows[panel.valid]
        outputs = []
        for values in (mean, std) if return_std else (mean,):
            out = np.empty((len(features), self.n_targets_), np.float64)
            out[rows] = values[panel.valid]
            outputs.append(self._format_rows(out, X))
        return tuple(outputs) if return_std else outputs[0]

    def _format_rows(self, array: np.ndarray, X):
        # The output mirrors y: a Series (or 1-D array) for 1-D y, a DataFrame (2-D array) otherwise.
        if isinstance(X, pd.DataFrame):
            if self.y_ndim_ == 1:
                return pd.Series(array[:, 0], index=X.index, name=self.target_names_[0])
            return pd.DataFrame(array, index=X.index, columns=self.target_names_)
        return array[:, 0] if self.y_ndim_ == 1 else array

    def score(self, X, y=None, sample_weight=None):
        """Greater is better. Regression: R^2 of ``predict(X)`` against y, as for every scikit-learn
        regressor. Forecast mode (no y): minus the mean scaled MAE of forecasts at X's rows against X's
        target columns (:func:`smr_ts.model_selection.forecast_score`)."""
        check_is_fitted(self, "model_")
        return (forecast_score if self.mode_ == "forecast" else regression_score)(self, X, y, sample_weight)

    # ------------------------------------------------------------------ forecasting
    @uses_threads
    def forecast(self, h: int | None = None, times=None, context=None, return_std: bool = False,
                 level=None) -> pd.DataFrame:
        """Forecast fitted (or context) series at future times.

        Parameters
        ----------
        h : int, optional
            Forecast the next ``h`` steps of every series at its typical (median) gap.
        times : DataFrame, optional
            Future (``id_col``, ``time_col``) rows: any times after each series' history,
            irregular allowed. Exactly one of ``h`` and ``times`` is needed.
        context : DataFrame, optional
            New observations (same columns as at fit) used without refitting: they extend the
            fitted history of known series, or start new series.
        return_std : bool, default False
            Add ``<target>_std`` columns (``loss="gaussian"`` only).
        level : float or list of float, optional
            Conformal intervals at these coverages in percent (e.g. ``[80, 95]``): ``<target>-lo-80``,
            ``<target>-hi-80``, calibrated at fit on held-out forecasts as far ahead
            (:mod:`smr_ts.forecasting.intervals`; needs ``validation_fraction > 0`` or ``validation_data``).

        Returns
        -------
        DataFrame
            Columns ``id_col`` (unless None), ``time_col`` and one per target (plus ``_std``,
            ``_ql<q>`` and interval columns), sorted by series and time (for ``times``: in the
            order of ``times``'s rows). Integer times come back as int64, exactly (``times``'s own
            values; ``h`` steps by each series' median gap rounded half up to a whole number).
        """
        return self._forecast(h, times, context, return_std, what="times", level=level)

    def _forecast(self, h, times, context, return_std: bool, what: str, level=None) -> pd.DataFrame:
        self._check_std(return_std)
        levels = None if level is None else check_levels(level)
        if self.mode_ != "forecast":
            raise ValueError("forecast() needs a model fitted without y (forecasting mode)")
        if (h is None) == (times is None):
            raise ValueError("give exactly one of h and times")
        return predict.forecast_frame(self, h, times, context, return_std, what, levels)

    @uses_threads
    def update(self, new_rows) -> "SMRForecaster":
        """Append new observations to the fitted history; later forecasts continue from them.

        Each series' state after its last row (``stream_state_``: the backbone's state, its output
        there and the running statistics) is advanced over the new rows only, in O(new rows), without
        re-running the history; the statistics are refreshed as a forecast from the whole history would
        compute them. ``forecast(...)`` afterwards equals ``forecast(..., context=new_rows)`` before it,
        without refitting (``docs/estimator.md``, Streaming). Ids not fitted start new series.

        All or nothing: every row and id is checked before anything changes, and a refused update
        leaves the forecasts, history and states as they were.

        Parameters
        ----------
        new_rows : DataFrame
            Rows with the fitted columns, each later than its series' last row. A new series needs
            an observed target value among its rows and, with static columns, its statics; the
            rows of a known series may carry its statics only as the model holds them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Naming the ids or columns at fault, for any of the above, ids of another type than the
            fitted ones, or (on integer times) a time with a fraction.
        """
        check_is_fitted(self, "model_")
        return streaming.update(self, new_rows)

    def _history(self, context, static_out: list | None = None):
        """The fitted history's rows, extended by ``context`` rows when given (their statics to ``static_out``)."""
        ids, times, values = history_rows(self.history_panel_, len(self.value_columns_))
        if context is None:
            return ids, times, values
        tables = []
        c_ids, c_times, c_values = self._read_known(context, "context", values.dtype, static_out=tables)
        check_id_kind(c_ids, self.history_panel_.ids, self.id_col, "context")
        check_static_rows(self, c_ids, tables[0] if tables else None, "context")  # as update() checks them
        if static_out is not None:
            static_out.extend(tables)
        # A duplicate (id, time) between history and context is an error (to_panel, in serving.forecast_frame).
        return (np.concatenate([ids, c_ids]),
                np.concatenate([times, as_fitted_times(c_times, times.dtype, self.time_col, "context")]),
                np.concatenate([values, c_values]))

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
        persistence.save(self, path)

    @classmethod
    def load(cls, path) -> "SMRForecaster":
        """Read a model written by :meth:`save`, on CPU, without executing any code from the files.

        Raises
        ------
        FileNotFoundError
            ``path/config.json`` or ``path/weights.pt`` is missing.
        ValueError
            A file is truncated or edited, the two files come from different saves, or the save
            comes from a version this one cannot read (the message names the file and both versions).
        """
        return persistence.load(cls, path)
