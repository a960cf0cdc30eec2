"""Callbacks: objects that watch training epoch by epoch and may record, log or stop it.

A callback overrides any of three hooks, each given the :class:`TrainingState`:

- ``on_train_begin(state)``: before the first epoch (reset per-fit state here);
- ``on_epoch_end(state, record)``: after each epoch, with that epoch's record (also the last
  entry of ``state.history``); set ``state.stop_training = True`` to stop after it;
- ``on_train_end(state)``: after the last epoch, also when training was stopped or interrupted.

Pass them as ``SMRForecaster(callbacks=[...])``. They are run-time objects: ``save`` does not
write them, ``clone`` copies them, and the same objects are used (not copies) during ``fit``,
so their state can be read afterwards.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from smr_ts import SMRForecaster
>>> from smr_ts.callbacks import Callback, StopAfter
>>> class Losses(Callback):
...     def on_train_begin(self, state):
...         self.losses = []
...     def on_epoch_end(self, state, record):
...         self.losses.append(record["train_loss"])
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 20), "ds": np.tile(np.arange(20.0), 2),
...                    "y": rng.normal(size=40)})
>>> losses = Losses()
>>> model = SMRForecaster(d_model=8, state_size=8, epochs=10, random_state=0,
...                       callbacks=[losses, StopAfter(3)]).fit(df)
>>> len(losses.losses), len(model.history_)
(3, 3)
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from smr_ts._logging import logger
from smr_ts._validation import check_params, positive_int

__all__ = ["Callback", "EarlyStopping", "HistoryLogger", "LogEpochs", "MLflowLogger", "OptunaPruning", "ProgressBar",
           "RequireGain", "StopAfter", "TensorBoard", "TrainingState", "training_callbacks"]


@dataclass
class TrainingState:
    """What callbacks see: the model being trained, the epochs so far and the stop flag."""

    model: nn.Module
    epochs: int
    history: list = field(default_factory=list)
    stop_training: bool = False
    initial: dict | None = None  # validation metrics of the initial weights ({} without), when they are a candidate
    diverged: str | None = None  # why training diverged at the last epoch (smr_ts.training.divergence), if it did


class Callback:
    """Base class: every hook does nothing. A callback with ``rank_zero_only = True`` (one that
    writes files or prints) runs on rank 0 only when training is data-parallel (:mod:`smr_ts.distributed`)."""

    rank_zero_only = False

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass


class EarlyStopping(Callback):
    """Model selection: keep the best epoch's weights, restore them at the end, stop on a plateau.

    Parameters
    ----------
    patience : int or None, default None
        Stop after this many epochs without a better score; None never stops early (the best
        weights are still restored).
    monitor : str, default "auto"
        The record key to minimise; "auto" is the first of ``valid_pinball`` (forecasting with
        ``loss="quantile"``: every level counts), ``valid_scaled_mae`` (forecasting), ``valid_mse``
        and ``train_loss`` that the record has.
    restore_best : bool, default True
        Load the best epoch's weights into the model when training ends.

    Attributes
    ----------
    best_epoch : int or None
        None before any epoch; -1 when the initial weights were a candidate (``state.initial``;
        in forecasting, the last-value forecast) and no epoch beat them (without validation
        metrics they score ``inf``: kept only when no epoch can be selected).
    best_score : float

    A diverged epoch (``state.diverged``) is never selected and stops training; a non-finite score
    of another metric stops training with a ``RuntimeWarning``.
    """

    def __init__(self, patience: int | None = None, monitor: str = "auto", restore_best: bool = True):
        check_params({"patience": [positive_int(), None], "monitor": [str], "restore_best": ["boolean"]},
                     dict(patience=patience, monitor=monitor, restore_best=restore_best), "EarlyStopping")
        self.patience = patience
        self.monitor = monitor
        self.restore_best = restore_best

    def on_train_begin(self, state):
        self.best_score, self.best_epoch, self._best_weights = math.inf, None, None
        if state.initial is not None:
            score = state.initial.get(self._metric(state.initial), math.inf) if state.initial else math.inf
            self.best_score = score if math.isfinite(score) else math.inf
            self.best_epoch, self._best_weights = -1, copy.deepcopy(state.model.state_dict())

    def _metric(self, record: dict) -> str:
        if self.monitor != "auto":
            return self.monitor
        return next(k for k in ("valid_pinball", "valid_scaled_mae", "valid_mse", "train_loss") if k in record)

    def on_epoch_end(self, state, record):
        name = self._metric(record)
        if name not in record:
            raise KeyError(f"EarlyStopping: monitor={name!r} is not in the epoch's record {sorted(record)}")
        score, epoch = record[name], record["epoch"]
        if state.diverged:
            state.stop_training = True
            return
        if not math.isfinite(score):
            warnings.warn(f"epoch {epoch}: non-finite {name}; stopping", RuntimeWarning, stacklevel=2)
            state.stop_training = True
            return
        if score < self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self._best_weights = copy.deepcopy(state.model.state_dict())
        if self.patience is not None and epoch - self.best_epoch >= self.patience:
            state.stop_training = True

    def on_train_end(self, state):
        if self.restore_best and self._best_weights is not None:
            state.model.load_state_dict(self._best_weights)
        self._best_weights = None  # the weights live in the model now; don't keep a second copy


class RequireGain(Callback):
    """Keep the initial weights unless the selected epoch beats them clearly on validation.

    In forecasting the initial network forecasts the last observed value. After model selection
    (``stopper``, an :class:`EarlyStopping` placed before this callback), the selected epoch's
    ``valid_gain_z`` (its mean gain over the last-value forecast on the validation pairs, in
    standard errors) must reach ``min_z``; otherwise the initial weights are restored and
    ``stopper.best_epoch`` becomes -1. On data with little to learn (a few noisy observations per
    series) this keeps the forecast at last value instead of fitting noise.
    """

    def __init__(self, stopper: EarlyStopping, min_z: float = 2.0, key: str = "valid_gain_z"):
        self.stopper, self.min_z, self.key = stopper, min_z, key

    def on_train_begin(self, state):
        self._initial = copy.deepcopy(state.model.state_dict())

    def on_train_end(self, state):
        best = self.stopper.best_epoch
        if best is not None and best >= 0 and best < len(state.history):
            z = state.history[best].get(self.key)
            if z is not None and not z >= self.min_z:
                state.model.load_state_dict(self._initial)
                self.stopper.best_epoch = -1
                logger.info("model selection: epoch %d's gain over last value on validation was %.2f standard errors, "
                            "short of %g: kept the last-value network", best, z, self.min_z)
        self._initial = None


class StopAfter(Callback):
    """Stop after ``epochs`` epochs, keeping the learning-rate schedule of the full run.

    Useful to look at the first epochs of a long schedule (``benchmarks/pendulum_probe.py``).
    """

    def __init__(self, epochs: int):
        check_params({"epochs": [positive_int()]}, {"epochs": epochs}, "StopAfter")
        self.epochs = epochs

    def on_epoch_end(self, state, record):
        if len(state.history) >= self.epochs:
            state.stop_training = True


class HistoryLogger(Callback):
    """Write the training history to ``path`` after every epoch: CSV or JSON, by the suffix.

    The file is rewritten (JSON) or appended to (CSV, a header first) each epoch, so it is
    complete up to the last finished epoch even if training is interrupted. In data-parallel
    training only rank 0 writes it.
    """

    rank_zero_only = True  # smr_ts.distributed: one writer, not one per process

    def __init__(self, path):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".json"):
            raise ValueError(f"The 'path' parameter of HistoryLogger must end in .csv or .json. Got {str(path)!r} instead.")

    def on_train_begin(self, state):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._columns = None

    def on_epoch_end(self, state, record):
        if self.path.suffix == ".json":
            self.path.write_text(json.dumps(state.history, indent=1))
            return
        first = self._columns is None
        if first:
            self._columns = list(record)
        with open(self.path, "w" if first else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns, extrasaction="ignore")
            if first:
                writer.writeheader()
            writer.writerow(record)


class LogEpochs(Callback):
    """Each epoch's record at DEBUG on the ``"smr_ts"`` logger (:mod:`smr_ts._logging`). Every fit runs it;
    it formats nothing unless DEBUG is on. In data-parallel training only rank 0 logs."""

    rank_zero_only = True

    def on_epoch_end(self, state, record):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("epoch %d: %s", record["epoch"],
                         ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"))


class TensorBoard(Callback):
    """Each epoch's record (losses, validation metrics, gradient norm, seconds) as TensorBoard scalars,
    in skorch's pattern: give a ``torch.utils.tensorboard.SummaryWriter``, or a ``log_dir`` for one this
    callback opens and closes. Needs the ``tensorboard`` package. In data-parallel training only rank
    0 writes.

    Parameters
    ----------
    writer : SummaryWriter, optional
    log_dir : str or Path, optional
        Where a writer of this callback's own writes (used when ``writer`` is None).
    prefix : str, default ""
        Put before every scalar's name (``"fold0/"``: one chart group per backtest fold).
    """

    rank_zero_only = True

    def __init__(self, writer=None, log_dir=None, prefix: str = ""):
        self.writer, self.log_dir, self.prefix = writer, log_dir, prefix

    def on_train_begin(self, state):
        self._own = self.writer is None
        if self._own:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ImportError("The TensorBoard callback needs the tensorboard package: "
                                  "python -m pip install tensorboard") from exc
            self._writer = SummaryWriter(log_dir=None if self.log_dir is None else str(self.log_dir))
        else:
            self._writer = self.writer

    def on_epoch_end(self, state, record):
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self._writer.add_scalar(f"{self.prefix}{key}", value, record["epoch"])

    def on_train_end(self, state):
        self._writer.flush()
        if self._own:
            self._writer.close()
        self._writer = None


class MLflowLogger(Callback):
    """Each epoch's record as MLflow metrics (step: the epoch), in skorch's pattern: logged to ``run``,
    or to the active run, or to a run this callback starts and ends. Needs the ``mlflow`` package
    (tested against MLflow's local file store where it is installed). In data-parallel training only
    rank 0 logs.

    Parameters
    ----------
    run : mlflow.entities.Run, optional
    client : mlflow.tracking.MlflowClient, optional
    prefix : str, default ""
        Put before every metric's name.
    """

    rank_zero_only = True

    def __init__(self, run=None, client=None, prefix: str = ""):
        self.run, self.client, self.prefix = run, client, prefix

    def on_train_begin(self, state):
        try:
            import mlflow
        except ImportError as exc:
            raise ImportError("The MLflowLogger callback needs the mlflow package: python -m pip install mlflow") from exc
        self._client = self.client or mlflow.tracking.MlflowClient()
        self._started = self.run is None and mlflow.active_run() is None
        run = self.run or mlflow.active_run() or mlflow.start_run()
        self._run_id = run.info.run_id

    def on_epoch_end(self, state, record):
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                self._client.log_metric(self._run_id, f"{self.prefix}{key}", float(value), step=record["epoch"])

    def on_train_end(self, state):
        if self._started:
            import mlflow

            mlflow.end_run()


class OptunaPruning(Callback):
    """Report each epoch's validation score to an Optuna ``trial`` and stop the fit when its pruner says
    so (``optuna.TrialPruned`` is raised; the estimator is left as it was before the fit). Needs the
    ``optuna`` package.

    Parameters
    ----------
    trial : optuna.trial.Trial
    monitor : str, default "auto"
        The record key reported, as :class:`EarlyStopping` chooses it ("auto": ``valid_pinball``,
        ``valid_scaled_mae``, ``valid_mse`` or ``train_loss``, the first the record has); lower is better.
    """

    def __init__(self, trial, monitor: str = "auto"):
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, state, record):
        import optuna

        name = EarlyStopping(monitor=self.monitor)._metric(record)
        self.trial.report(float(record[name]), step=record["epoch"])
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {record['epoch']} ({name} {record[name]:.4g})")


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the record's losses; ``leave`` keeps it after training.
    In data-parallel training only rank 0 shows it."""

    rank_zero_only = True

    def __init__(self, leave: bool = False):
        self.leave = leave

    def on_train_begin(self, state):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.epochs, desc="fit", unit="epoch", leave=self.leave)

    def on_epoch_end(self, state, record):
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")})

    def on_train_end(self, state):
        self._bar.close()


def training_callbacks(callbacks, patience, verbose: int, require_gain: bool):
    """The callbacks a fit runs: the user's, an :class:`EarlyStopping` first unless they hold one
    (``patience`` is its shorthand), :class:`RequireGain` after it when asked, and a
    :class:`ProgressBar` when ``verbose``. Returns (callbacks, the EarlyStopping)."""
    callbacks = list(callbacks or ())
    stopper = next((cb for cb in callbacks if isinstance(cb, EarlyStopping)), None)
    if stopper is None:
        stopper = EarlyStopping(patience=patience)
        callbacks.insert(0, stopper)
    if require_gain:
        callbacks.insert(callbacks.index(stopper) + 1, RequireGain(stopper))
    callbacks.append(LogEpochs())
    if verbose:
        callbacks.append(ProgressBar(leave=verbose > 1))
    return callbacks, stopper
