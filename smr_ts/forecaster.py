"""SMRForecaster: a scikit-learn estimator for irregularly sampled series in long frames.

A thin face over the package's rooms: :mod:`smr_ts.data` reads frames into padded panels,
:mod:`smr_ts.forecasting` and :mod:`smr_ts.regression` prepare what each use trains on and answer
from it, :mod:`smr_ts.model` is the network, :mod:`smr_ts.training` trains it with
:mod:`smr_ts.callbacks`, and :mod:`smr_ts.persistence` saves it. The helpers return values and
only ``fit`` assigns the fitted attributes; forecasting's are one state, ``forecast_state_``,
which ``forecast`` reads and ``update`` replaces. Two uses, one estimator:

- sequence regression: ``fit(X, y)``, ``predict(X)``: one prediction per row of X, each from the
  rows of its own series at or before its time;
- forecasting: ``fit(df)`` with the targets among the frame's columns, then ``forecast(...)`` (or
  ``predict(times_frame)``) at future times given per series, irregular or not.

A forecast query is a row with no observed value: the state-space layers advance their state
over its gap without input, which for S5 with ZOH is the exact continuous-time propagation.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from smr_ts import distributed
from smr_ts._estimator_base import FrameEstimator
from smr_ts._logging import logger, showing_info
from smr_ts._estimator_params import (
    PARAMETER_CONSTRAINTS, check_estimator_params, resolved_epochs, resolved_loss, resolved_quantiles,
)
from smr_ts._runtime import resolve_device, uses_threads
from smr_ts.callbacks import training_callbacks
from smr_ts.data.frames import refuse_forecast_array
from smr_ts.data.times import show_duration
from smr_ts.forecasting import streaming
from smr_ts.forecasting.adaptive import RANK_GRID, CoverageLog, coverage_ranks
from smr_ts.forecasting.fit import WEIGHT_AVERAGE_EPOCHS, forecast_alias
from smr_ts.forecasting.fit import prepare as prepare_forecasting
from smr_ts.forecasting.floor import POINT_LOSSES, Floor, candidates, report_kept, select_floor
from smr_ts.forecasting.intervals import calibration_residuals
from smr_ts.forecasting.state import Calibration
from smr_ts.model import build_network
from smr_ts.model_selection import score_forecasts
from smr_ts.persistence import fitted_params
from smr_ts.regression.fit import prepare as prepare_regression
from smr_ts.regression.fit import r2
from smr_ts.regression.predict import predict_rows
from smr_ts.training import TrainingSettings, train

__all__ = ["SMRForecaster"]


def _log_start(mode: str, panel, schema, prepared, time_unit: float) -> None:
    """The fit's INFO line: what it read as targets and inputs, how far ahead it trains, its validation."""
    rows = int(panel.valid.sum())
    if mode == "regression":
        logger.info("fit: regression on %d series (%d rows): features %s, targets %s", len(panel.ids), rows,
                    schema.value_columns, schema.target_names)
        return
    past = [c for c in schema.value_columns if c not in schema.target_names and c not in schema.future_names]
    show = show_duration(schema.time_info)
    held = "none" if not prepared.validation else f"{len(prepared.validation)} batches of held-out pairs"
    logger.info("fit: forecasting %d series (%d rows): targets %s, known ahead %s, static %s, past only %s; "
                "training covers %s after a series' last row; validation: %s", len(panel.ids), rows,
                schema.target_names, schema.future_names, schema.static_names, past,
                show(prepared.state.layout.horizon), held)


class SMRForecaster(FrameEstimator):
    """Variable-step state-space model (S5 or S6, optionally with SMR) for irregular time series.

    Takes long frames (one row per observation: series id, time, values) with uneven times and
    uses the real gaps between observations. See ``docs/data.md`` for the data contract and
    ``docs/estimator.md`` for a guide to the parameters.

    Parameters
    ----------
    backbone : {"s5", "s6", "gru_dt", "ode_rnn"}, default "s5"
        Sequence model: S5 (diagonal, ZOH over each gap) or S6 (Mamba with the gap injected);
        "gru_dt" and "ode_rnn" are the recurrent baselines of :mod:`smr_ts.baselines`.
    smr : bool or "auto", default "auto"
        State Memory Replay input gate (S5 and S6 only). "auto": on when forecasting with S5 or S6
        (chosen on the real-data suite, ``docs/results/forecasting_design.md``), off in sequence
        regression and for the recurrent baselines (which take none).
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
        pinball loss at ``quantiles``; forecasts add ``<alias>_ql<q>`` columns, the point is the 0.5.
    quantiles : list of float, optional
        Levels in (0, 1) for ``loss="quantile"`` (default (0.1, 0.5, 0.9); 0.5 is always added).
    epochs : int or "auto", default "auto"
        Training epochs at most. "auto": 20 when forecasting (chosen on the real-data suite for accuracy and
        cost, ``docs/results/forecasting_design.md``), 30 in sequence regression.
    batch_size : int or "auto", default "auto"
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
    n_networks : int, default 1
        Forecasting: train this many networks side by side on the same batches, from different initial
        weights, and forecast their average (:class:`~smr_ts.model.ForecastEnsemble`). The average
        varies less from seed to seed; a fit costs about ``n_networks`` times one network's.
    floor : bool, default True
        Forecasting: after training, weigh the network against simple forecasters (last value, the
        series' mean, drift, seasonal naive and seasonal profile per period the model reads) on the
        held-out forecasts and keep last value, or whichever scores best of those that beat it clearly
        over the held-out cut-offs (``selected_forecaster_``; :mod:`smr_ts.forecasting.floor`). False
        keeps the network (the last-value network when training never beat last value).
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
        Forecasting: the columns to forecast. Default: ``["y"]`` when X has a ``y`` column (as the
        Nixtla frames do; the other value columns are inputs), else X's one value column outside
        ``future_cols``; with several and no ``y``, fit asks for ``target_cols``. The fit logs what it
        took as targets and inputs (the ``"smr_ts"`` logger).
    future_cols : list of str, optional
        Forecasting: value columns known ahead (a planned dose, a temperature forecast). The history's
        values are inputs, and so are their values in query rows (``forecast(times=...)``, ``predict``,
        ``score``), NaN where not known. Other non-target columns are past-only: their query values are
        ignored. See ``docs/estimator.md#covariates``.
    static_cols : list of str, optional
        Forecasting: columns with one value per series (numeric, or categories one-hot encoded); also
        given as a separate frame, ``fit(X, static=frame)``.
    alias : str, optional
        Forecasting: the name of the forecast columns, as the Nixtla libraries name theirs after the
        model. Default: the backbone's name ("S5", "S6", "GRU-dt", "ODE-RNN"). One target's forecast is
        ``<alias>``, with ``<alias>-lo-80`` / ``<alias>-hi-80`` intervals, ``<alias>_ql0.1`` quantiles and
        ``<alias>_std``; with several targets each is ``<alias>:<target>`` (``S5:temp``, ``S5:temp-lo-80``).
        The target's own name stays the truth's (backtests). It may not name a column of X.
    time_unit : "auto", float, str or timedelta, default "auto"
        Unit of the gaps the model sees. "auto" uses the median gap of the training data
        (``time_unit_``). A number is in the time column's unit (seconds for datetimes);
        a string such as "15min", a ``pd.Timedelta``, ``np.timedelta64`` or
        ``datetime.timedelta`` is a duration.
    horizon : "auto", float, str or timedelta, default "auto"
        Forecasting: the longest time ahead to train for, counted from the fitted frame's last
        time (the panel's "now"). Training draws how far ahead each scored row is up to it,
        weighted towards short times ahead, and ``forecast`` warns past it. A number is in the
        time column's unit (seconds for datetimes); a string such as "7D" (or a timedelta, as
        for ``time_unit``) is a duration. "auto": a quarter of the median series' time span, at least
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
        1 shows a progress bar per fit and the fit's INFO lines of the ``"smr_ts"`` logger (what it
        read as targets and inputs, what model selection kept) on stderr; 3 adds each epoch's
        metrics (DEBUG). An application that configures logging sees those lines at any verbosity
        (:mod:`smr_ts._logging`).

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
    alias_ : str
        Forecasting: the name of the forecast columns (``alias``, or the backbone's name).
    quantiles_ : tuple of float or None
        The quantile levels trained with ``loss="quantile"``, 0.5 among them; None otherwise.
    calibration_ahead_, calibration_scores_, calibration_changes_ : ndarray
        Forecasting: what calibrates ``forecast(level=...)`` (:mod:`smr_ts.forecasting.intervals`): per
        held-out pair, how far ahead, its score, and the observed changes behind its cut-off.
    stream_state_ : dict of Tensor
        Forecasting: each series' state after its last row, advanced by ``update``
        (:mod:`smr_ts.forecasting.streaming`).
    selected_forecaster_ : str
        Forecasting: what forecasts come from. ``"network"``, or the simple forecaster ("last value",
        "mean", "drift", "seasonal naive (<period>)", "seasonal profile (<period>)") that beat it on the
        held-out forecasts (:mod:`smr_ts.forecasting.floor`; the fit logs the decision at INFO).
        Losses "gaussian" and "quantile", and fits without validation, keep the network.
    selection_scores_ : dict
        Forecasting: each candidate's scaled MAE on the held-out forecasts that chose
        ``selected_forecaster_`` (empty when there was no choice).
    forecast_state_ : ForecastState
        Forecasting: all a fit leaves but the network (:mod:`smr_ts.forecasting.state`); the attributes
        above that start "Forecasting" read it.

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
    (['unique_id', 'ds', 'S5'], 12)
    """

    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(
        self, backbone="s5", smr="auto", smr_kernel=4, smr_use_gaps=False, d_model=32, state_size=16, n_layers=2,
        blocks=1, step_min=0.01, step_max=1.0, dropout=0.0, encoder="linear", image_shape=None, encoder_hidden=30,
        loss="auto", quantiles=None, epochs="auto", batch_size="auto", lr=1e-2, ssm_lr=1e-3, weight_decay=0.0,
        warmup_epochs=1.0, grad_clip=1.0, validation_fraction=0.1, validation_by="series", n_networks=1,
        floor=True, patience=None,
        callbacks=None, id_col="unique_id", time_col="ds", target_cols=None, future_cols=None, static_cols=None,
        alias=None, time_unit="auto", horizon="auto", device="auto", random_state=None, n_threads="auto", verbose=0,
    ):
        for name, value in dict(locals()).items():  # sklearn: __init__ only stores
            if name != "self":
                setattr(self, name, value)

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
            with showing_info(int(self.verbose)):
                return self._fit(X, y, validation_data, static)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _fit(self, X, y, validation_data, static):
        params = self.get_params(deep=False)
        check_estimator_params(params, type(self).__name__)
        if y is None and not isinstance(X, pd.DataFrame):
            refuse_forecast_array(X, self.id_col, self.time_col)
        collective, device = distributed.join(self.device)  # a torchrun group (docs/distributed.md), or None
        mode = "regression" if y is not None else "forecast"
        forecasting = mode == "forecast"
        loss, quantiles = resolved_loss(self.loss, mode), resolved_quantiles(self.loss, self.quantiles)
        panel, features, targets, schema, static_table, y_ndim, time_unit = self._training_frame(X, y, static, params,
                                                                                                forecasting)
        alias = forecast_alias(self.alias, self.backbone, schema) if forecasting else None
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        seed = distributed.same_on_every_rank(collective, seed)  # every rank draws the same windows
        if forecasting:
            rows = None if validation_data is None else self._read_known(validation_data, "validation_data",
                                                                         np.float64, schema)
            prepared = prepare_forecasting(panel, static_table, rows, schema, time_unit, params, loss, seed, device)
        else:
            prepared = prepare_regression(panel, features, targets, self._validation_panel(validation_data, schema),
                                          time_unit, params, loss, seed, device)
        _log_start(mode, panel, schema, prepared, time_unit)
        started = time.perf_counter()
        val_batches, evaluate_fn = prepared.validation, prepared.evaluate
        if collective is not None:  # each rank validates its share; the sums are all-reduced
            val_batches, evaluate_fn = collective.shard_list(val_batches), partial(evaluate_fn, reduce=collective)

        settings = TrainingSettings(epochs=resolved_epochs(self.epochs, mode), lr=self.lr, ssm_lr=self.ssm_lr,
                                    weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs,
                                    grad_clip=self.grad_clip,
                                    average_epochs=WEIGHT_AVERAGE_EPOCHS if forecasting else None)
        # Model selection (with patience), last value as the floor when forecasting, the progress bar.
        callbacks, stopper = training_callbacks(self.callbacks, self.patience, int(self.verbose),
                                                require_gain=forecasting and bool(val_batches))
        layout = prepared.state.layout if forecasting else None
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            network = build_network(params, features.shape[1], targets.shape[1], loss, layout, quantiles).to(device)
            batch_rng = np.random.default_rng(seed + 1)
            sampler = prepared.sampler
            result = train(network, settings, lambda epoch: sampler.epoch(batch_rng), sampler.n_batches,
                           partial(prepared.loss, distributed.parallel(network, collective)),
                           partial(evaluate_fn, network, val_batches) if val_batches else None, callbacks,
                           initial_candidate=forecasting, collective=collective)
        network.to("cpu").eval()
        if result.diverged:
            self._report_divergence(result.diverged, stopper.best_epoch)
        kept, scores = Floor(), None
        if forecasting and self.floor and val_batches and loss in POINT_LOSSES:  # the floor: simple forecasters
            last_value = stopper.best_epoch == -1  # the network is the last-value network
            kept, scores = select_floor(network.to(device), val_batches, candidates(layout), last_value,
                                        reduce=collective)
            network.to("cpu")
            report_kept(kept, scores, last_value, show_duration(schema.time_info))
        if forecasting:  # what calibrates forecast(level=...): the held-out part, forecast by what selection kept
            calibration = Calibration(*calibration_residuals(network, layout, prepared.calibration_source,
                                                             np.random.default_rng(seed + 3), device, floor=kept))
            # Each series' state after its last row, which forecast() continues and update() advances.
            stream = streaming.history_state(network, layout, panel, device)
            self.forecast_state_ = dataclasses.replace(prepared.state, calibration=calibration, stream=stream,
                                                       floor=kept)
            self.selection_scores_, self.alias_ = scores, alias
            self.future_names_, self.static_names_ = schema.future_names, schema.static_names
        else:
            scalers = dataclasses.astuple(prepared.scaling)[:4]  # (feature mean, scale, target mean, scale)
            self.feature_mean_, self.feature_scale_, self.target_mean_, self.target_scale_ = scalers
        self.mode_, self.loss_, self.quantiles_, self.fitted_params_ = mode, loss, quantiles, fitted_params(params)
        self.time_info_, self.time_unit_, self.value_columns_ = schema.time_info, time_unit, schema.value_columns
        self.target_names_, self.n_targets_, self.y_ndim_ = schema.target_names, targets.shape[1], y_ndim
        self.model_, self.history_, self.best_epoch_ = network, result.history, stopper.best_epoch
        self.interrupted_ = result.interrupted
        logger.info("fit done in %.1f s: %d epochs, kept %s%s", time.perf_counter() - started, len(result.history),
                    "the last-value network" if stopper.best_epoch == -1 else f"epoch {stopper.best_epoch}",
                    f"; forecasts from {self.selected_forecaster_}" if forecasting else "")
        return self

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
            names = self._prediction_names()  # predict mirrors y: its columns are the targets'
            mean = result[names].set_axis(X.index).set_axis(self.target_names_, axis=1)
            if return_std:
                std = result[[f"{c}_std" for c in names]].set_axis(X.index)
                return mean, std.set_axis(self.target_names_, axis=1)
            return mean
        rows = self._read_known(X, "X")
        device = resolve_device(self.device, strict=False)
        outputs = predict_rows(self.model_, rows, self._schema(), self._scaling(), device, return_std)
        outputs = [self._format_rows(out, X) for out in outputs]
        return tuple(outputs) if return_std else outputs[0]

    def score(self, X, y=None, sample_weight=None):
        """Greater is better. Regression: R^2 of ``predict(X)`` against y, as for every scikit-learn
        regressor. Forecast mode (no y): minus the mean scaled MAE of forecasts at X's rows against X's
        target columns (:func:`smr_ts.model_selection.forecast_score`)."""
        check_is_fitted(self, "model_")
        if self.mode_ != "forecast":
            return r2(self.predict, X, y, sample_weight)
        return score_forecasts(self.forecast, X, y, sample_weight, history=self.forecast_state_.panel,
                               value_columns=self.value_columns_, target_names=self.target_names_,
                               future_names=self.future_names_, id_col=self.id_col, time_col=self.time_col,
                               prediction_names=self._prediction_names())

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
            Add ``<alias>_std`` columns (``loss="gaussian"`` only).
        level : float or list of float, optional
            Conformal intervals at these coverages in percent (e.g. ``[80, 95]``): ``<alias>-lo-80``,
            ``<alias>-hi-80``, calibrated at fit on held-out forecasts as far ahead
            (:mod:`smr_ts.forecasting.intervals`; needs ``validation_fraction > 0`` or ``validation_data``).

        Returns
        -------
        DataFrame
            Columns ``id_col`` (unless None), ``time_col`` and the forecast, named after the model
            (``alias_``: ``S5``; ``S5:<target>`` per target of several; plus ``_std``, ``_ql<q>`` and
            interval columns), sorted by series and time (for ``times``: in the
            order of ``times``'s rows). Integer times come back as int64, exactly (``times``'s own
            values; ``h`` steps by each series' median gap rounded half up to a whole number).
        """
        return self._forecast(h, times, context, return_std, what="times", level=level)

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
        if self.mode_ != "forecast":
            raise ValueError("update() needs a model fitted without y (forecasting mode)")
        rows = self._read_known(new_rows, "new_rows", np.float64)
        logged = self._coverage_ranks(new_rows, rows)  # read before the rows join the history
        state = streaming.update(self.forecast_state_, self.model_, rows, self._schema(),
                                 resolve_device(self.device, strict=False))
        if logged is not None:
            log = state.coverage
            state = dataclasses.replace(state, coverage=CoverageLog(*logged) if log is None else log.extended(*logged))
        self.forecast_state_ = state
        return self

    def _coverage_ranks(self, frame, rows):
        """(ids, ranks) of the ``update`` rows of fitted series that observe a target: where each fell in the
        intervals forecast from the state before them (:mod:`smr_ts.forecasting.adaptive`); None when the
        model has no intervals or nothing to log (invalid rows are left to ``update``'s own checks)."""
        state = self.forecast_state_
        if state.calibration is None or not len(state.calibration.ahead) or not isinstance(frame, pd.DataFrame):
            return None
        targets = [self.value_columns_.index(c) for c in self.target_names_]
        truth = rows.values[:, targets].astype(np.float64)
        keep = pd.Index(state.panel.ids).get_indexer(rows.ids) >= 0
        keep &= np.isfinite(truth).any(1)
        if not keep.any():
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # horizon and infinite-bound notes: not this call's news
                # against the fit's own intervals (the levels the replay adapts), not adapted ones
                forecast = self._forecast(None, frame.iloc[np.flatnonzero(keep)], None, False, what="new_rows",
                                          level=RANK_GRID, state=dataclasses.replace(state, coverage=None))
        except ValueError:
            return None
        return rows.ids[keep], coverage_ranks(forecast, truth[keep], self._prediction_names())


