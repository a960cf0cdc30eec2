"""SMRForecaster: a scikit-learn estimator for irregularly sampled series in long frames.

It glues the pandas layer (:mod:`smr_ts.frames`) to the network (:mod:`smr_ts.model`) and owns
training (:mod:`smr_ts.training`). Two uses, one estimator:

- sequence regression: ``fit(X, y)``, ``predict(X)``: one prediction per row of X, each from the
  rows of its own series at or before its time;
- forecasting: ``fit(df)`` with the targets among the frame's columns, then ``forecast(...)`` (or
  ``predict(times_frame)``) at future times given per series, irregular or not.

A forecast query is a row with no observed value: the state-space layers advance their state
over its gap without input, which for S5 with ZOH is the exact continuous-time propagation.
"""

from __future__ import annotations

import json
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from smr_ts._version import __version__
from smr_ts.frames import (
    SeriesPanel,
    TimeInfo,
    as_target_frame,
    median_gap,
    numeric_values,
    parse_time_unit,
    split_frame,
    to_panel,
)
from smr_ts.model import ENCODERS, SequenceModel, backbone_names, gaussian_nll, masked_mse
from smr_ts.training import TrainingSettings, train

__all__ = ["SMRForecaster"]

_FIRST_GAP = 1.0  # gap given to each series' first step, in time units (the S5 convention)


def _is_int(x, low=None):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and (low is None or x >= low)


def _is_real(x, low=None, high=None, low_open=False):
    if not isinstance(x, numbers.Real) or isinstance(x, bool) or not np.isfinite(x):
        return False
    if low is not None and (x <= low if low_open else x < low):
        return False
    return high is None or x <= high


def _image_shape_ok(v):
    return v is None or (isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(s, 1) for s in v))


def _time_unit_ok(v):
    return v == "auto" or _is_real(v, 0, low_open=True) or (isinstance(v, (str, pd.Timedelta)) and v != "auto")


# name -> (predicate, what is expected): checked once, at the start of fit.
_PARAMETER_RULES = {
    "backbone": (lambda v: v in backbone_names(), f"one of {backbone_names()}"),
    "smr": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
    "smr_kernel": (lambda v: _is_int(v, 1), "an int >= 1"),
    "d_model": (lambda v: _is_int(v, 1), "an int >= 1"),
    "state_size": (lambda v: _is_int(v, 1), "an int >= 1"),
    "n_layers": (lambda v: _is_int(v, 1), "an int >= 1"),
    "blocks": (lambda v: _is_int(v, 1), "an int >= 1"),
    "step_min": (lambda v: _is_real(v, 0, low_open=True), "a float > 0"),
    "step_max": (lambda v: _is_real(v, 0, low_open=True), "a float > 0"),
    "dropout": (lambda v: _is_real(v, 0, 1) and v < 1, "a float in [0, 1)"),
    "encoder": (lambda v: v in ENCODERS, f"one of {list(ENCODERS)}"),
    "image_shape": (_image_shape_ok, "None or a (height, width) pair of positive ints"),
    "encoder_hidden": (lambda v: _is_int(v, 1), "an int >= 1"),
    "loss": (lambda v: v in ("mse", "gaussian"), "'mse' or 'gaussian'"),
    "epochs": (lambda v: _is_int(v, 1), "an int >= 1"),
    "batch_size": (lambda v: _is_int(v, 1), "an int >= 1"),
    "lr": (lambda v: _is_real(v, 0, low_open=True), "a float > 0"),
    "ssm_lr": (lambda v: _is_real(v, 0, low_open=True), "a float > 0"),
    "weight_decay": (lambda v: _is_real(v, 0), "a float >= 0"),
    "warmup_epochs": (lambda v: _is_real(v, 0), "a float >= 0"),
    "grad_clip": (lambda v: v is None or _is_real(v, 0, low_open=True), "None or a float > 0"),
    "validation_fraction": (lambda v: _is_real(v, 0) and v < 1, "a float in [0, 1)"),
    "patience": (lambda v: v is None or _is_int(v, 1), "None or an int >= 1"),
    "id_col": (lambda v: isinstance(v, str) and v, "a column name (str)"),
    "time_col": (lambda v: isinstance(v, str) and v, "a column name (str)"),
    "target_cols": (lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(c, str) for c in v)),
                    "None or a non-empty list of column names"),
    "time_unit": (_time_unit_ok, "'auto', a positive number, or a duration such as '1h'"),
    "max_horizon": (lambda v: _is_int(v, 1), "an int >= 1"),
    "device": (lambda v: isinstance(v, str) and (v in ("auto", "cpu") or v.startswith("cuda")), "'auto', 'cpu' or 'cuda[:N]'"),
    "random_state": (lambda v: v is None or _is_int(v, 0) or isinstance(v, np.random.RandomState), "None, an int >= 0 or a RandomState"),
    "verbose": (lambda v: _is_int(v, 0) or isinstance(v, (bool, np.bool_)), "an int >= 0"),
}


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
    loss : {"mse", "gaussian"}, default "mse"
        "gaussian" trains a variance head by negative log-likelihood; predictions then come
        with a standard deviation (``return_std=True``).
    epochs, batch_size : int, default 30, 32
        ``batch_size`` counts series (regression) or forecast windows (forecasting).
    lr : float, default 3e-3
        AdamW rate for all parameters but the SSM's own.
    ssm_lr : float, default 1e-3
        Adam rate, without weight decay, for the SSM's own parameters (S5: Lambda, B, log_step;
        S6: A_log, D) and the backbone's norms.
    weight_decay : float, default 0.0
        AdamW weight decay of the other parameters.
    warmup_epochs : float, default 1.0
        Linear warm-up length; a cosine decay to 0 follows, stepped per batch.
    grad_clip : float or None, default 1.0
        Clip the gradient norm.
    validation_fraction : float, default 0.1
        Share of series held out for model selection and early stopping (0: select on the
        training loss). Ignored when ``fit`` gets ``validation_data``.
    patience : int or None, default None
        Stop after this many epochs without a better validation MSE. The best epoch's weights
        are restored at the end in any case.
    id_col, time_col : str, default "unique_id", "ds"
        Names of the series id and time columns (or MultiIndex levels).
    target_cols : list of str, optional
        Forecasting: the columns to forecast (default: every value column).
    time_unit : "auto", float or str, default "auto"
        Unit of the gaps the model sees. "auto" uses the median gap of the training data
        (``time_unit_``). A number is in the time column's unit (seconds for datetimes);
        a string such as "15min" is a duration.
    max_horizon : int, default 8
        Forecasting: the number of future observations each training window is scored on.
    device : str, default "auto"
        "auto" trains on CUDA when available, else on CPU.
    random_state : int, RandomState or None, default None
        Seeds initialisation, batching and dropout: the same seed, data and device give
        identical predictions.
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
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Columns of X at fit (only for DataFrames).
    target_names_ : list of str

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

    def __init__(
        self,
        backbone="s5",
        smr=False,
        smr_kernel=4,
        d_model=32,
        state_size=16,
        n_layers=2,
        blocks=1,
        step_min=0.01,
        step_max=1.0,
        dropout=0.0,
        encoder="linear",
        image_shape=None,
        encoder_hidden=30,
        loss="mse",
        epochs=30,
        batch_size=32,
        lr=3e-3,
        ssm_lr=1e-3,
        weight_decay=0.0,
        warmup_epochs=1.0,
        grad_clip=1.0,
        validation_fraction=0.1,
        patience=None,
        id_col="unique_id",
        time_col="ds",
        target_cols=None,
        time_unit="auto",
        max_horizon=8,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.smr = smr
        self.smr_kernel = smr_kernel
        self.d_model = d_model
        self.state_size = state_size
        self.n_layers = n_layers
        self.blocks = blocks
        self.step_min = step_min
        self.step_max = step_max
        self.dropout = dropout
        self.encoder = encoder
        self.image_shape = image_shape
        self.encoder_hidden = encoder_hidden
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.ssm_lr = ssm_lr
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.grad_clip = grad_clip
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.id_col = id_col
        self.time_col = time_col
        self.target_cols = target_cols
        self.time_unit = time_unit
        self.max_horizon = max_horizon
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN means "not observed at this time"
        tags.target_tags.multi_output = True
        tags.target_tags.required = False  # fit(df) without y forecasts the frame's own columns
        tags.regressor_tags.poor_score = True  # rows of a plain array form one sequence, not i.i.d. samples
        tags.non_deterministic = False
        return tags

    def _validate_params(self):
        for name, (ok, expected) in _PARAMETER_RULES.items():
            value = getattr(self, name)
            try:
                good = bool(ok(value))
            except Exception:  # noqa: BLE001 - a predicate failing on an odd type means "invalid"
                good = False
            if not good:
                raise ValueError(f"SMRForecaster parameter {name}={value!r} is invalid: expected {expected}")
        if self.step_min > self.step_max:
            raise ValueError(
                f"SMRForecaster parameters step_min={self.step_min} and step_max={self.step_max} are invalid: "
                "step_min must not exceed step_max"
            )
        if self.encoder == "cnn" and self.image_shape is None:
            raise ValueError("SMRForecaster parameter image_shape is required with encoder='cnn'")
        if self.backbone == "s5":
            per_block = self.state_size // self.blocks if self.state_size % self.blocks == 0 else None
            if per_block is None or per_block % 2:
                raise ValueError(
                    f"SMRForecaster parameters state_size={self.state_size} and blocks={self.blocks} are invalid: "
                    "for backbone='s5' state_size must split into `blocks` blocks of even size"
                )
        if self.smr and self.backbone not in ("s5", "s6"):
            raise ValueError(f"SMRForecaster parameter smr=True needs backbone 's5' or 's6', got {self.backbone!r}")

    def _device(self, strict: bool = True) -> torch.device:
        """The device to train (strict) or predict on. Prediction falls back to the CPU, so a
        model trained with device="cuda" still predicts on a machine without a GPU."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            if not strict:
                return torch.device("cpu")
            raise ValueError(f"SMRForecaster parameter device={self.device!r}: CUDA is not available")
        return device

    # ------------------------------------------------------------------ reading inputs
    def _read_rows(self, X, *, fitting: bool, what: str = "X"):
        """X -> (ids, raw times, TimeInfo, value DataFrame or array, value column names)."""
        if isinstance(X, pd.DataFrame):
            if fitting:
                self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
                self.n_features_in_ = X.shape[1]
            ids, times, info, values = split_frame(X, self.id_col, self.time_col, what=what)
            return ids, times, info, values
        # A plain 2-D array: one series observed at unit gaps (so generic sklearn tooling works).
        array = validate_data(self, X, reset=fitting, ensure_all_finite="allow-nan", dtype=np.float32)
        if fitting and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        n = array.shape[0]
        values = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        return np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.float64), TimeInfo("numeric"), values

    def _check_time_info(self, info: TimeInfo, what: str):
        fitted = self.time_info_
        if info.kind == fitted.kind:
            return
        kinds = {info.kind, fitted.kind}
        if kinds == {"datetime", "datetime_tz"}:
            raise ValueError(
                f"{what}: time column {self.time_col!r} is {info.describe()} but the model was fitted on "
                f"{fitted.describe()} times; convert one of them (tz_localize / tz_convert)"
            )
        raise TypeError(f"{what}: time column {self.time_col!r} is {info.describe()} but was {fitted.describe()} at fit")

    def _value_columns(self, values: pd.DataFrame, what: str) -> pd.DataFrame:
        """Reorder value columns as at fit; unknown or missing columns are an error."""
        expected = list(self.value_columns_)
        got = [str(c) for c in values.columns]
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        if missing or extra:
            raise ValueError(
                f"{what}: feature columns differ from fit: missing {missing[:10]}, unexpected {extra[:10]}"
            )
        values.columns = got
        return values[expected]

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, validation_data=None):
        """Fit on a long frame.

        Parameters
        ----------
        X : DataFrame or 2-D array
            Long frame with ``id_col``, ``time_col`` (columns or index levels) and value
            columns. A 2-D array is one series observed at unit gaps.
        y : DataFrame, Series or array, optional
            Per-row targets (sequence regression), aligned with X by index. Without ``y`` the
            model learns to forecast ``target_cols`` of X itself.
        validation_data : X_val or (X_val, y_val), optional
            Held-out series for model selection, instead of ``validation_fraction``.

        Returns
        -------
        self
        """
        self._validate_params()
        device = self._device()
        self.mode_ = "regression" if y is not None else "forecast"
        ids, times, info, values = self._read_rows(X, fitting=True)
        self.time_info_ = info
        if self.mode_ == "regression":
            self.value_columns_ = [str(c) for c in values.columns]
            features = numeric_values(values, "X")
            index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(features))
            targets, self.target_names_ = as_target_frame(y, index, len(features))
            self.y_ndim_ = 1 if isinstance(y, pd.Series) or (not isinstance(y, pd.DataFrame) and np.asarray(y).ndim == 1) else 2
            if np.isnan(targets).all():
                raise ValueError("Input y contains NaN only: there is no observed target to fit")
        else:
            self.y_ndim_ = 2
            self.value_columns_ = [str(c) for c in values.columns]
            if not self.value_columns_:
                raise ValueError("X has no value columns to forecast")
            targets_names = list(self.target_cols) if self.target_cols is not None else self.value_columns_
            missing = [c for c in targets_names if c not in self.value_columns_]
            if missing:
                raise ValueError(f"target_cols {missing} are not columns of X")
            self.target_names_ = targets_names
            features = numeric_values(values, "X")
            targets = features[:, [self.value_columns_.index(c) for c in targets_names]]
        self.n_targets_ = targets.shape[1]
        if self.encoder == "cnn" and features.shape[1] != int(np.prod(self.image_shape)):
            raise ValueError(
                f"image_shape={tuple(self.image_shape)} needs {int(np.prod(self.image_shape))} value columns, "
                f"X has {features.shape[1]}"
            )

        panel = to_panel(ids, times, np.concatenate([features, targets], 1), id_col=self.id_col, time_col=self.time_col,
                         info=info)
        unit = parse_time_unit(self.time_unit, info)
        self.time_unit_ = unit if unit is not None else median_gap(panel)
        self._fit_scalers(features, targets)

        val_panel = None
        if validation_data is not None:
            val_panel = self._validation_panel(validation_data)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        n_series = len(panel.ids)
        order = np.random.default_rng(seed).permutation(n_series)
        n_val = 0
        if val_panel is None and self.validation_fraction > 0 and n_series >= 2:
            n_val = min(n_series - 1, max(1, int(round(self.validation_fraction * n_series))))
        train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])

        tensors = self._panel_tensors(panel)
        train_set = {k: v[train_idx] for k, v in tensors.items()}
        if val_panel is not None:
            val_set = self._panel_tensors(val_panel)
        elif n_val:
            val_set = {k: v[val_idx] for k, v in tensors.items()}
        else:
            val_set = None

        if self.mode_ == "forecast":
            # The fitted history: forecasts continue every training series from its last row.
            self.history_panel_ = panel

        settings = TrainingSettings(
            epochs=self.epochs, lr=self.lr, ssm_lr=self.ssm_lr, weight_decay=self.weight_decay,
            warmup_epochs=self.warmup_epochs, grad_clip=self.grad_clip, patience=self.patience,
            verbose=int(self.verbose),
        )
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.model_ = self._build_model(features.shape[1]).to(device)
            batch_rng = np.random.default_rng(seed + 1)
            windows = self._windows_per_series(train_set)
            n_examples = len(train_idx) * windows
            n_batches = -(-n_examples // self.batch_size)

            def make_batches(epoch):
                examples = np.repeat(np.arange(len(train_idx)), windows)
                cuts = self._forecast_cuts(train_set, examples, batch_rng) if self.mode_ == "forecast" else None
                perm = batch_rng.permutation(n_examples)
                for start in range(0, n_examples, self.batch_size):
                    sel = perm[start : start + self.batch_size]
                    yield self._batch(train_set, examples[sel], device, None if cuts is None else cuts[sel])

            val_batches = None
            if val_set is not None:
                n_v = len(val_set["valid"])
                examples = np.repeat(np.arange(n_v), self._windows_per_series(val_set))
                val_cuts = (
                    self._forecast_cuts(val_set, examples, np.random.default_rng(seed + 2))
                    if self.mode_ == "forecast" else None
                )
                val_batches = [
                    self._batch(val_set, examples[s : s + self.batch_size], device,
                                None if val_cuts is None else val_cuts[s : s + self.batch_size])
                    for s in range(0, len(examples), self.batch_size)
                ]

            def evaluate():
                return self._evaluate(val_batches)

            result = train(
                self.model_, settings, make_batches, n_batches, self._batch_loss,
                evaluate if val_batches else None,
            )
        self.model_.to("cpu").eval()
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.interrupted_ = result.interrupted
        return self

    def _validation_panel(self, validation_data) -> SeriesPanel:
        if self.mode_ == "regression":
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a pair (X_val, y_val) when fit gets y")
            X_val, y_val = validation_data
        else:
            X_val, y_val = validation_data, None
        ids, times, info, values = self._read_rows(X_val, fitting=False, what="validation_data")
        self._check_time_info(info, "validation_data")
        features = numeric_values(self._value_columns(values, "validation_data"), "validation_data")
        if self.mode_ == "regression":
            index = X_val.index if isinstance(X_val, pd.DataFrame) else pd.RangeIndex(len(features))
            targets, _ = as_target_frame(y_val, index, len(features))
        else:
            targets = features[:, [self.value_columns_.index(c) for c in self.target_names_]]
        return to_panel(ids, times, np.concatenate([features, targets], 1), what="validation_data",
                        id_col=self.id_col, time_col=self.time_col, info=info)

    def _build_model(self, n_features: int) -> SequenceModel:
        backbone_kwargs = {}
        if self.backbone in ("s5", "s6"):
            backbone_kwargs = {
                "state_size": self.state_size, "smr": bool(self.smr), "smr_kernel": self.smr_kernel,
                "dt_min": self.step_min, "dt_max": self.step_max,
            }
            if self.backbone == "s5":
                backbone_kwargs["blocks"] = self.blocks
        return SequenceModel(
            n_features=n_features, n_outputs=self.n_targets_, d_model=self.d_model, n_layers=self.n_layers,
            backbone=self.backbone, encoder=self.encoder, image_shape=self.image_shape,
            encoder_hidden=self.encoder_hidden, gaussian=self.loss == "gaussian", dropout=self.dropout,
            backbone_kwargs=backbone_kwargs,
        )

    # ------------------------------------------------------------------ scaling
    def _fit_scalers(self, features: np.ndarray, targets: np.ndarray):
        def moments(a):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                mean, std = np.nanmean(a, 0), np.nanstd(a, 0)
            mean = np.nan_to_num(mean, nan=0.0)
            std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
            return mean.astype(np.float32), std.astype(np.float32)

        if self.encoder == "cnn":  # images are fed as they are
            self.feature_mean_ = np.zeros(features.shape[1], np.float32)
            self.feature_scale_ = np.ones(features.shape[1], np.float32)
        else:
            self.feature_mean_, self.feature_scale_ = moments(features)
        self.target_mean_, self.target_scale_ = moments(targets)

    def _panel_tensors(self, panel: SeriesPanel) -> dict:
        """Scaled, zero-filled tensors (CPU) of a panel whose values are [features, targets]."""
        n_feat = len(self.feature_mean_)
        values, observed = panel.values, panel.value_observed
        feat, feat_obs = _standardise(values[..., :n_feat], observed[..., :n_feat], self.feature_mean_, self.feature_scale_)
        out = {
            "values": torch.from_numpy(feat),
            "observed": torch.from_numpy(feat_obs.any(-1)),
            "dt": torch.from_numpy(panel.gaps(self.time_unit_, _FIRST_GAP).astype(np.float32)),
            "valid": torch.from_numpy(panel.valid),
        }
        if values.shape[-1] > n_feat:
            tgt, tgt_obs = _standardise(values[..., n_feat:], observed[..., n_feat:], self.target_mean_, self.target_scale_)
            out["target"] = torch.from_numpy(tgt)
            out["target_observed"] = torch.from_numpy(tgt_obs)
        return out

    # ------------------------------------------------------------------ batches and losses
    def _windows_per_series(self, data: dict) -> int:
        """Forecast windows drawn per series and epoch: enough to cover a typical series once."""
        if self.mode_ != "forecast":
            return 1
        return max(1, int(np.median(data["valid"].sum(1).numpy())) // self.max_horizon)

    def _forecast_cuts(self, data: dict, examples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random forecast origin per example: its number of context rows, in [1, length - 1]."""
        lengths = data["valid"].sum(1).numpy()[examples]
        return np.floor(rng.random(len(examples)) * np.maximum(lengths - 1, 1)).astype(np.int64) + 1

    def _batch(self, data: dict, sel: np.ndarray, device, cuts=None) -> dict:
        sel_t = torch.as_tensor(sel, dtype=torch.long)
        length = int(data["valid"][sel_t].sum(1).max())
        batch = {k: v[sel_t, :length].to(device) for k, v in data.items()}
        weight = batch["target_observed"].float()
        if cuts is not None:
            # Rows before the cut are context; the next max_horizon rows are queries: their
            # values are hidden from the model and are what it is scored on.
            steps = torch.arange(length, device=device)
            cut = torch.as_tensor(cuts, device=device).unsqueeze(1)
            context = steps < cut
            query = (steps >= cut) & (steps < cut + self.max_horizon)
            batch["observed"] = batch["observed"] & context
            weight = weight * query.unsqueeze(-1).float()
        batch["weight"] = weight
        return batch

    def _batch_loss(self, batch):
        mean, std = self.model_(batch["values"], batch["dt"], batch["observed"])
        weight = batch["weight"]
        if std is None:
            loss = masked_mse(mean, batch["target"], weight)
        else:
            loss = gaussian_nll(mean, std, batch["target"], weight)
        return loss, float(weight.sum())

    @torch.no_grad()
    def _evaluate(self, batches) -> dict:
        self.model_.eval()
        sq, nll, count = 0.0, 0.0, 0.0
        for batch in batches:
            mean, std = self.model_(batch["values"], batch["dt"], batch["observed"])
            w = batch["weight"]
            n = float(w.sum())
            # MSE in the targets' own units, the number users compare.
            scale = torch.as_tensor(self.target_scale_, device=mean.device)
            sq += float((((mean - batch["target"]) * scale) ** 2 * w).sum())
            if std is not None:
                nll += float(gaussian_nll(mean, std, batch["target"], w)) * n
            count += n
        out = {"valid_mse": sq / max(count, 1)}
        if self.loss == "gaussian":
            out["valid_nll"] = nll / max(count, 1)
        return out

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def _run(self, panel: SeriesPanel):
        """Model outputs on every step of a panel of features: (mean, std or None), unscaled, (S, L, T)."""
        data = self._panel_tensors(panel)
        # The fitted model lives on the CPU (so pickles load anywhere); it visits the device
        # for the forward passes only.
        device = self._device(strict=False)
        model = self.model_.to(device).eval()
        means, stds = [], []
        n, chunk = len(panel.ids), max(self.batch_size, 64)
        try:
            for start in range(0, n, chunk):
                sel = slice(start, min(start + chunk, n))
                mean, std = model(data["values"][sel].to(device), data["dt"][sel].to(device),
                                  data["observed"][sel].to(device))
                means.append(mean.cpu())
                stds.append(std.cpu() if std is not None else None)
        finally:
            self.model_.to("cpu")
        mean = torch.cat(means).numpy() * self.target_scale_ + self.target_mean_
        std = torch.cat(stds).numpy() * self.target_scale_ if stds[0] is not None else None
        return mean, std

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
        check_is_fitted(self, "model_")
        if return_std and self.loss != "gaussian":
            raise ValueError("return_std=True needs a model fitted with loss='gaussian'")
        if self.mode_ == "forecast":
            if not isinstance(X, pd.DataFrame):
                raise TypeError("in forecast mode, predict takes a DataFrame of (id, time) rows; see also forecast()")
            result = self.forecast(times=X, return_std=return_std)
            mean = result[self.target_names_].set_axis(X.index)
            if return_std:
                std = result[[f"{c}_std" for c in self.target_names_]].set_axis(X.index)
                std.columns = self.target_names_
                return mean, std
            return mean
        ids, times, info, values = self._read_rows(X, fitting=False)
        self._check_time_info(info, "X")
        if isinstance(X, pd.DataFrame):
            values = self._value_columns(values, "X")
        features = numeric_values(values, "X")
        panel = to_panel(ids, times, features, id_col=self.id_col, time_col=self.time_col, info=info)
        mean, std = self._run(panel)
        rows = panel.rows[panel.valid]
        out_mean = np.empty((len(features), self.n_targets_), np.float64)
        out_mean[rows] = mean[panel.valid]
        out_std = None
        if std is not None:
            out_std = np.empty_like(out_mean)
            out_std[rows] = std[panel.valid]
        mean_out = self._format_rows(out_mean, X)
        if return_std:
            return mean_out, self._format_rows(out_std, X)
        return mean_out

    def _format_rows(self, array: np.ndarray, X):
        # The output mirrors y: a Series (or 1-D array) for 1-D y, a DataFrame (2-D array) otherwise.
        if isinstance(X, pd.DataFrame):
            if self.y_ndim_ == 1:
                return pd.Series(array[:, 0], index=X.index, name=self.target_names_[0])
            return pd.DataFrame(array, index=X.index, columns=self.target_names_)
        return array[:, 0] if self.y_ndim_ == 1 else array

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)`` against y, as for every scikit-learn regressor."""
        from sklearn.metrics import r2_score

        pred = self.predict(X)
        y_arr, _ = as_target_frame(y, X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(y)), len(y))
        pred_arr = np.asarray(pred, dtype=np.float64).reshape(len(y_arr), -1)
        return r2_score(y_arr, pred_arr, sample_weight=sample_weight)

    # ------------------------------------------------------------------ forecasting
    def forecast(self, h: int | None = None, times=None, context=None, return_std: bool = False) -> pd.DataFrame:
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

        Returns
        -------
        DataFrame
            Columns ``id_col``, ``time_col`` and one per target (plus ``_std`` columns),
            sorted by series and time (for ``times``: in the order of ``times``'s rows).
        """
        check_is_fitted(self, "model_")
        if self.mode_ != "forecast":
            raise ValueError("forecast() needs a model fitted without y (forecasting mode)")
        if return_std and self.loss != "gaussian":
            raise ValueError("return_std=True needs a model fitted with loss='gaussian'")
        if (h is None) == (times is None):
            raise ValueError("give exactly one of h and times")
        hist_ids, hist_times, hist_values = self._history(context)
        order = np.lexsort((hist_times, pd.factorize(hist_ids, sort=True)[0]))
        hist_ids, hist_times, hist_values = hist_ids[order], hist_times[order], hist_values[order]
        known = pd.Index(pd.unique(hist_ids))
        last_time = pd.Series(hist_times).groupby(hist_ids).max()

        if h is not None:
            if not _is_int(h, 1):
                raise ValueError(f"h must be an int >= 1, got {h!r}")
            gaps = pd.Series(np.diff(hist_times, prepend=np.nan)).where(
                np.r_[False, hist_ids[1:] == hist_ids[:-1]]
            ).groupby(hist_ids).median()
            step = gaps.fillna(self.time_unit_).where(gaps > 0, self.time_unit_)
            q_ids = np.repeat(last_time.index.to_numpy(), h)
            q_times = (last_time.to_numpy()[:, None] + step.reindex(last_time.index).to_numpy()[:, None]
                       * np.arange(1, h + 1)).ravel()
            if self.time_info_.kind != "numeric":
                q_times = np.round(q_times).astype(np.int64)
        else:
            if not isinstance(times, pd.DataFrame):
                raise TypeError(f"times must be a DataFrame with columns {self.id_col!r} and {self.time_col!r}")
            q_ids, q_times, info, _ = split_frame(times, self.id_col, self.time_col, what="times")
            self._check_time_info(info, "times")
            unknown = ~pd.Index(q_ids).isin(known)
            if unknown.any():
                raise ValueError(
                    f"times: unknown {self.id_col} values {list(pd.unique(q_ids[unknown]))[:5]}: "
                    "no history was fitted or given as context for them"
                )
            not_after = q_times <= last_time.reindex(q_ids).to_numpy()
            if not_after.any():
                i = int(np.argmax(not_after))
                raise ValueError(
                    f"times: {self.time_col} values must be after each series' history; "
                    f"{self.id_col}={q_ids[i]!r} has a query at or before its last observation"
                )

        n_hist = len(hist_ids)
        all_ids = np.concatenate([hist_ids, q_ids])
        all_times = np.concatenate([hist_times, np.asarray(q_times, hist_times.dtype)])
        nan_rows = np.full((len(q_ids), hist_values.shape[1]), np.nan, np.float32)
        panel = to_panel(all_ids, all_times, np.concatenate([hist_values, nan_rows]), what="times",
                         id_col=self.id_col, time_col=self.time_col, info=self.time_info_)
        mean, std = self._run(panel)
        flat_rows = panel.rows[panel.valid]
        pos = np.empty(len(all_ids), np.int64)
        pos[flat_rows] = np.flatnonzero(panel.valid.ravel())
        q_pos = pos[n_hist:]
        out = pd.DataFrame({self.id_col: q_ids, self.time_col: self._times_out(np.asarray(q_times))})
        flat_mean = mean.reshape(-1, self.n_targets_)[q_pos]
        for j, name in enumerate(self.target_names_):
            out[name] = flat_mean[:, j]
        if return_std:
            flat_std = std.reshape(-1, self.n_targets_)[q_pos]
            for j, name in enumerate(self.target_names_):
                out[f"{name}_std"] = flat_std[:, j]
        return out

    def _history(self, context):
        panel = self.history_panel_
        valid = panel.valid
        ids = np.repeat(panel.ids, panel.lengths)
        times = panel.time[valid]
        n_feat = len(self.value_columns_)
        values = np.where(panel.value_observed, panel.values, np.nan)[valid][:, :n_feat].astype(np.float32)
        if context is None:
            return ids, times, values
        c_ids, c_times, info, c_values = split_frame(context, self.id_col, self.time_col, what="context")
        self._check_time_info(info, "context")
        c_feat = numeric_values(self._value_columns(c_values, "context"), "context")
        ids = np.concatenate([ids, c_ids])
        times = np.concatenate([times, c_times.astype(times.dtype)])
        values = np.concatenate([values, c_feat])
        # Duplicate (id, time) between history and context is an error, as within a frame.
        to_panel(ids, times, values[:, :1], what="context", id_col=self.id_col, time_col=self.time_col,
                 info=self.time_info_)
        return ids, times, values

    def _times_out(self, raw: np.ndarray):
        return self.time_info_.to_times(raw)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted model to directory ``path``: ``config.json`` and ``weights.pt``.

        The weights file holds tensors only and is read with ``torch.load(weights_only=True)``,
        which cannot execute code. A model trained on GPU loads on CPU.
        """
        check_is_fitted(self, "model_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = None
        # JSON has no tuples or Timedeltas: name the parameters that were, so load gives them back.
        param_types = {k: type(v).__name__ for k, v in params.items() if isinstance(v, (tuple, pd.Timedelta))}
        params = {k: str(v) if isinstance(v, pd.Timedelta) else v for k, v in params.items()}
        state = {
            "params": _jsonable(params),
            "param_types": param_types,
            "version": __version__,
            "mode": self.mode_,
            "n_features": int(len(self.feature_mean_)),
            "value_columns": self.value_columns_,
            "target_names": self.target_names_,
            "y_ndim": self.y_ndim_,
            "time_info": [self.time_info_.kind, self.time_info_.tz],
            "time_unit": self.time_unit_,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None,
        }
        tensors = {f"model.{k}": v.detach().cpu() for k, v in self.model_.state_dict().items()}
        for name in ("feature_mean_", "feature_scale_", "target_mean_", "target_scale_"):
            tensors[f"scaler.{name}"] = torch.from_numpy(getattr(self, name))
        if self.mode_ == "forecast":
            p = self.history_panel_
            state["history_ids"] = _jsonable(p.ids.tolist())
            for name in ("rows", "time", "values", "value_observed", "valid", "lengths"):
                tensors[f"panel.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(p, name)))
        with open(path / "config.json", "w") as f:
            json.dump(state, f, indent=1)
        torch.save(tensors, path / "weights.pt")

    @classmethod
    def load(cls, path) -> "SMRForecaster":
        """Read a model written by :meth:`save`, on CPU, without executing any code from the files."""
        path = Path(path)
        with open(path / "config.json") as f:
            state = json.load(f)
        tensors = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        params = state["params"]
        restore = {"tuple": tuple, "Timedelta": pd.Timedelta}
        for name, kind in state.get("param_types", {"image_shape": "tuple"}).items():
            if params.get(name) is not None:
                params[name] = restore[kind](params[name])
        model = cls(**params)
        model.mode_ = state["mode"]
        model.value_columns_ = state["value_columns"]
        model.target_names_ = state["target_names"]
        model.n_targets_ = len(model.target_names_)
        model.y_ndim_ = state["y_ndim"]
        model.time_info_ = TimeInfo(*state["time_info"])
        model.time_unit_ = state["time_unit"]
        model.history_ = state["history"]
        model.best_epoch_ = state["best_epoch"]
        model.interrupted_ = False
        model.n_features_in_ = state["n_features_in"]
        if state["feature_names_in"] is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        for name in ("feature_mean_", "feature_scale_", "target_mean_", "target_scale_"):
            setattr(model, name, tensors[f"scaler.{name}"].numpy())
        model.model_ = model._build_model(state["n_features"])
        model.model_.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        model.model_.eval()
        if model.mode_ == "forecast":
            arrays = {k[len("panel."):]: v.numpy() for k, v in tensors.items() if k.startswith("panel.")}
            model.history_panel_ = SeriesPanel(ids=np.asarray(state["history_ids"]), **arrays)
        return model


def _standardise(values, observed, mean, scale):
    """(values - mean) / scale as float32, 0 where not observed; and the observed mask."""
    out = np.subtract(values, mean, dtype=np.float32)
    out /= scale
    out *= observed  # unobserved slots hold 0 already; this also clears any -mean / scale there
    return out, np.ascontiguousarray(observed)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
