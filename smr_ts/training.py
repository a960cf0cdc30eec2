"""The training loop the estimator owns: one optimiser with two parameter groups, warm-up +
cosine, clipping, an optional running average of the weights, history, callbacks, Ctrl-C.

The loop knows nothing about frames: the estimator hands it a function that yields training
batches for an epoch, a function that computes a batch's loss, and one that evaluates. Model
selection (best-weights restore, early stopping) is a callback
(:class:`~smr_ts.callbacks.EarlyStopping`), like anything else that watches epochs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from smr_ts.callbacks import Callback, TrainingState
from smr_ts.model import gaussian_nll, masked_mae, masked_mse, pinball, pinball_loss
from smr_ts.ssm.params import parameter_groups

__all__ = ["EXPLODED", "TrainingSettings", "TrainingResult", "WeightAverage", "batch_loss", "divergence", "evaluate",
           "forecast_evaluate", "forecast_loss", "cutoff_keys", "gain_z", "pooled_z", "sample_moments", "train",
           "warmup_cosine"]


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int
    lr: float
    ssm_lr: float
    weight_decay: float
    warmup_epochs: float
    grad_clip: float | None
    # Evaluate and keep an exponential average of the weights over about this many epochs of steps
    # (:class:`WeightAverage`); None trains and keeps the weights as they are.
    average_epochs: float | None = None


@dataclass
class TrainingResult:
    """``history``: one dict per finished epoch; ``interrupted``: stopped by Ctrl-C; ``diverged``: why
    training stopped on a diverged epoch (:func:`divergence`), or None."""

    history: list[dict]
    interrupted: bool
    diverged: str | None = None


# An epoch whose mean training loss is this many times the initial network's (or 1, on the standardised
# scale the losses are on, whichever is larger) has blown up: no epoch that trains comes near it.
EXPLODED = 1e3


def divergence(record: dict, initial_loss: float) -> str | None:
    """Why an epoch's record shows training diverged: a non-finite loss or validation metric, or a
    training loss over :data:`EXPLODED` times the initial network's; None if it did not."""
    for key, value in record.items():
        if (key == "train_loss" or key.startswith("valid_")) and not math.isfinite(value):
            return f"{key} is {value}"
    limit = EXPLODED * max(abs(initial_loss), 1.0)
    if record["train_loss"] > limit:
        return (f"train_loss {record['train_loss']:.3g} is over {EXPLODED:g} times the initial network's "
                f"{initial_loss:.3g}")
    return None


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up from 0 to 1, then cosine decay to 0 (per step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _optimizer(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    other, ssm = parameter_groups(model)
    groups = [{"params": other, "lr": settings.lr, "weight_decay": settings.weight_decay}]
    if ssm:
        # The SSM's own parameters: lower rate, no weight decay (S5 App. F.3; Mamba's A_log and D).
        # AdamW without weight decay is Adam.
        groups.append({"params": ssm, "lr": settings.ssm_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


class WeightAverage:
    """An exponential moving average of a model's parameters, updated after every optimiser step (Polyak
    averaging; Polyak and Juditsky 1992).

    Each step moves the average ``1 - d`` of the way to the current weights, with ``d = exp(-1 / (epochs *
    n_batches))`` (a time constant of ``epochs`` epochs of steps), and less at first: ``d`` is at most
    ``(1 + t) / (10 + t)`` at step ``t``, so the average does not hold on to the initial weights.
    :meth:`swap` exchanges the average and the weights in place (twice restores both).
    """

    def __init__(self, model: nn.Module, epochs: float, n_batches: int):
        if not epochs > 0:
            raise ValueError(f"average_epochs must be positive, got {epochs!r}")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]
        self.decay = math.exp(-1.0 / (epochs * max(n_batches, 1)))
        self.steps, self.swapped = 0, False

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for a, p in zip(self.average, self.params):
            a.lerp_(p, 1.0 - d)

    @torch.no_grad()
    def swap(self) -> None:
        for a, p in zip(self.average, self.params):
            held = p.detach().clone()
            p.copy_(a)
            a.copy_(held)
        self.swapped = not self.swapped


def _train_epoch(model, batches, loss_fn, optimizer, scheduler, grad_clip, collective=None, average=None) -> tuple:
    """One pass over ``batches``: (mean training loss, largest gradient norm before clipping, scored targets,
    the first batch's loss, before any step of the epoch), over every rank's batches when data-parallel."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, count, peak, first = 0.0, 0, None, None
    for batch in batches:
        loss, weight = loss_fn(batch)
        if first is None:
            first = (loss.item() * weight, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # An infinite max_norm scales by exactly 1: the norm is measured the same way with or without clipping.
        norm = nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
        peak = norm.detach() if peak is None else torch.maximum(peak, norm.detach())  # no sync per step
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update()
        total += loss.item() * weight
        count += weight
    peak = math.nan if peak is None else float(peak)
    first = first or (0.0, 0.0)
    if collective is not None:
        (total, count, *first), peak = collective.sum([total, count, *first]), collective.max(peak)
    return total / max(count, 1), peak, float(count), first[0] / max(first[1], 1)


def train(
    model: nn.Module,
    settings: TrainingSettings,
    make_batches: Callable[[int], Iterable],
    n_batches: int,
    loss_fn: Callable,
    evaluate_fn: Callable[[], dict] | None,
    callbacks: Sequence[Callback] = (),
    initial_candidate: bool = False,
    collective=None,
) -> TrainingResult:
    """Train ``model`` in place for up to ``settings.epochs`` epochs.

    Parameters
    ----------
    make_batches : callable(epoch) -> iterable of batches
    n_batches : int
        Batches per epoch (for the schedule).
    loss_fn : callable(batch) -> (loss tensor, weight)
    evaluate_fn : callable() -> dict, optional
        Validation metrics after each epoch, added to the epoch's record.
    callbacks : sequence of Callback
        Called in order after each epoch; any of them may stop training.
    initial_candidate : bool
        The initial weights are a candidate of model selection (``state.initial``: their validation
        metrics, or ``{}`` without validation), which keeps them when no epoch beats them or every
        epoch diverged.

    An epoch that diverges (:func:`divergence`: a non-finite loss, or one that exploded) ends
    training and is never selected (``state.diverged`` and ``TrainingResult.diverged`` say why). A
    ``KeyboardInterrupt`` (Ctrl-C) after an epoch has finished ends training as if it had stopped
    there (``TrainingResult.interrupted``); one before, with nothing to keep, is raised.
    With ``settings.average_epochs``, each epoch is evaluated, and seen by the callbacks, with the
    running average of the weights (:class:`WeightAverage`), and the model ends holding the average
    (unless a callback restores other weights, such as the best epoch's, which are averaged too).
    collective : smr_ts.distributed.Collective, optional
        Data-parallel training (``torchrun``): each rank trains on its share of every batch through a
        DistributedDataParallel network bound in ``loss_fn``, its loss scaled to its part of the
        global batch; the epoch's loss is reduced over the ranks, and the callbacks that write or
        print (``rank_zero_only``) run on rank 0 only.
    """
    if collective is not None:
        loss_fn = collective.scaled_loss(loss_fn)
        if collective.rank != 0:
            callbacks = [c for c in callbacks if not getattr(c, "rank_zero_only", False)]
    optimizer = _optimizer(model, settings)
    total_steps = settings.epochs * n_batches
    warmup_steps = max(1, round(settings.warmup_epochs * n_batches)) if settings.warmup_epochs > 0 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, total_steps))

    state = TrainingState(model=model, epochs=settings.epochs)
    average = None if settings.average_epochs is None else WeightAverage(model, settings.average_epochs, n_batches)
    if initial_candidate:
        state.initial = evaluate_fn() if evaluate_fn is not None else {}
    interrupted, initial_loss = False, None
    for callback in callbacks:
        callback.on_train_begin(state)
    try:
        for epoch in range(settings.epochs):
            start = time.perf_counter()
            batches = make_batches(epoch) if collective is None else map(collective.shard, make_batches(epoch))
            train_loss, grad_norm, scored, first_loss = _train_epoch(
                model, batches, loss_fn, optimizer, scheduler, settings.grad_clip, collective, average
            )
            initial_loss = first_loss if initial_loss is None else initial_loss
            if average is not None:
                average.swap()  # the epoch is judged, and kept, by the averaged weights
            record = {"epoch": epoch, "train_loss": train_loss, "grad_norm": grad_norm, "scored": scored}
            if evaluate_fn is not None:
                record.update(evaluate_fn())
            record["seconds"] = time.perf_counter() - start
            state.history.append(record)
            why = divergence(record, initial_loss)
            if why is not None:
                state.diverged = f"training diverged at epoch {epoch} ({why})"
            for callback in callbacks:
                callback.on_epoch_end(state, record)
            if average is not None:
                average.swap()
            if state.stop_training or state.diverged:
                break
    except KeyboardInterrupt:
        if not state.history:
            raise  # nothing to keep: the caller leaves things as they were before training
        interrupted = True
        warnings.warn(
            f"training interrupted after {len(state.history)} epoch(s); keeping the best weights so far",
            RuntimeWarning,
            stacklevel=5,
        )
    finally:
        if average is not None and state.history and not average.swapped:
            average.swap()  # training ends on the average (the raw weights are not needed again)
        for callback in callbacks:
            callback.on_train_end(state)
    model.eval()
    return TrainingResult(history=state.history, interrupted=interrupted, diverged=state.diverged)


def _loss(mean, std, target, weight, kind: str):
    if std is not None:
        return gaussian_nll(mean, std, target, weight)
    return masked_mae(mean, target, weight) if kind == "mae" else masked_mse(mean, target, weight)


def batch_loss(model: nn.Module, batch: dict, kind: str = "mse"):
    """The training loss of a batch (MSE, MAE, or Gaussian NLL with a variance head) and its weight."""
    mean, std = model(batch["values"], batch["dt"], batch["observed"])
    return _loss(mean, std, batch["target"], batch["weight"], kind), float(batch["weight"].sum())


@torch.no_grad()
def evaluate(model: nn.Module, batches, target_scale, gaussian: bool, reduce=None) -> dict:
    """Validation metrics: ``valid_mse`` in the targets' own units (and ``valid_nll``); with
    ``reduce`` (a :class:`~smr_ts.distributed.Collective`), over every rank's batches."""
    model.eval()
    sq, nll, count = 0.0, 0.0, 0.0
    for batch in batches:
        mean, std = model(batch["values"], batch["dt"], batch["observed"])
        w = batch["weight"]
        n = float(w.sum())
        # MSE in the targets' own units, the number users compare.
        scale = torch.as_tensor(target_scale, device=mean.device)
        sq += float((((mean - batch["target"]) * scale) ** 2 * w).sum())
        if std is not None:
            nll += float(gaussian_nll(mean, std, batch["target"], w)) * n
        count += n
    if reduce is not None:
        sq, nll, count = reduce.sum([sq, nll, count])
    out = {"valid_mse": sq / max(count, 1)}
    if gaussian:
        out["valid_nll"] = nll / max(count, 1)
    return out


def forecast_loss(model: nn.Module, batch: dict, kind: str = "mse"):
    """Forecasting loss of a batch of (cut, query) pairs, in each series' scale, and its weight;
    ``kind="quantile"``: the pinball loss at the network's quantile levels."""
    mean, second = model(batch)  # the second output: every quantile level, or the std of a Gaussian head
    target, weight = batch["target"], batch["weight"]
    if mean.dim() > target.dim():  # an ensemble in training: its members' outputs, each member's loss averaged
        target, weight = target.expand_as(mean), weight.expand_as(mean)
    if kind == "quantile":
        levels = second
        quantiles = getattr(model, "module", model).quantiles  # through a DistributedDataParallel wrapper too
        return pinball_loss(levels, target, weight, quantiles), float(batch["weight"].sum())
    std = second
    return _loss(mean, std, target, weight, kind), float(batch["weight"].sum())


@torch.no_grad()
def forecast_evaluate(model: nn.Module, batches, reduce=None) -> dict:
    """Validation forecasts against the last-value forecast on the same (cut, query) pairs.

    ``valid_scaled_mae``: mean absolute error divided by each series' scale (every series counts
    the same, whatever its level; model selection minimises it). ``valid_mse``: in the targets'
    own units. ``valid_last_value_scaled_mae``: the same for carrying the last value forward.
    ``valid_gain_z``: the mean gain over last value per cut-off, in standard errors over cut-offs (a
    cut-off's queries share one future, so their gains are not independent draws). A network
    with quantile levels is judged as a whole: its gain is in the pinball loss (``valid_pinball``,
    scaled) over last value at every level, a forecast without spread. With ``reduce`` (a
    :class:`~smr_ts.distributed.Collective`) the metrics are those of every rank's batches together.
    """
    model.eval()
    quantiles = getattr(model, "quantiles", None)
    sq, gains, count = 0.0, [], 0.0
    absolute = anchor_absolute = pinball_total = 0.0
    for batch in batches:
        mean, levels = model(batch)  # with quantiles, every level (else the std, not read here)
        w = batch["weight"]
        target = batch["target"]
        error = (mean - target).abs()
        sq += float((((mean - target) * batch["scale"]) ** 2 * w).sum())
        absolute += float((error * w).sum())
        anchor_absolute += float((target.abs() * w).sum())  # last value: a correction of 0
        if quantiles is not None:
            loss = pinball(levels, target, quantiles)
            pinball_total += float((loss * w).sum())
            gains.append(_per_cutoff(pinball(torch.zeros_like(levels), target, quantiles) - loss, w, batch["k"]))
        else:
            gains.append(_per_cutoff(target.abs() - error, w, batch["k"]))
        count += float(w.sum())
    gain = torch.cat(gains).cpu() if gains else torch.zeros(0, dtype=torch.float64)
    if reduce is None:
        z = gain_z(gain)
    else:
        sq, absolute, anchor_absolute, pinball_total, count = reduce.sum(
            [sq, absolute, anchor_absolute, pinball_total, count])
        z = pooled_z(reduce.gather(sample_moments(gain)))
    out = {"valid_mse": sq / max(count, 1), "valid_scaled_mae": absolute / max(count, 1),
           "valid_last_value_scaled_mae": anchor_absolute / max(count, 1), "valid_gain_z": z}
    if quantiles is not None:
        out["valid_pinball"] = pinball_total / max(count, 1)
    return out


def _per_cutoff(gain: torch.Tensor, weight: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The mean of ``gain`` (B, P, ...) over the scored values of each cut-off (a window ``b`` and its cut-off
    row ``k[b, p]``), float64, one per cut-off with a scored value."""
    if gain.dim() > weight.dim():  # quantile levels: each level a scored value of its target
        weight = weight.unsqueeze(-1).expand_as(gain)
    weight = weight.reshape(*weight.shape[:2], -1).double()
    gain = gain.reshape(*gain.shape[:2], -1).double()
    key = cutoff_keys(k)
    total = torch.zeros(int(key.max()) + 1 if key.numel() else 0, dtype=torch.float64, device=gain.device)
    count = torch.zeros_like(total)
    total.index_add_(0, key.reshape(-1), (gain * weight).sum(-1).reshape(-1))
    count.index_add_(0, key.reshape(-1), weight.sum(-1).reshape(-1))
    return (total[count > 0] / count[count > 0]).cpu()


def cutoff_keys(k: torch.Tensor) -> torch.Tensor:
    """(B, P) int64: one key per cut-off of a batch (window ``b`` and its cut-off row ``k[b, p]``), from 0 to
    less than ``B * (k.max() + 1)``: the pairs that share a key share one future."""
    return torch.arange(k.shape[0], device=k.device)[:, None] * (int(k.max()) + 1 if k.numel() else 1) + k


def gain_z(gain: torch.Tensor) -> float:
    """The mean of a float64 sample in standard errors (0 with fewer than two values, or no spread)."""
    return pooled_z([sample_moments(gain)])


def sample_moments(x: torch.Tensor) -> list:
    """[n, mean, sum of squared deviations] of a float64 sample (two passes: stable)."""
    if not len(x):
        return [0.0, 0.0, 0.0]
    mean = float(x.mean())
    return [float(len(x)), mean, float(((x - mean) ** 2).sum())]


def pooled_z(moments) -> float:
    """The mean over standard error of samples given by their :func:`sample_moments` (rows), pooled
    (Chan, Golub and LeVeque 1979): the z of ``forecast_evaluate`` over every rank's gains."""
    n_i, mean_i, m2_i = np.asarray(moments, np.float64).T
    n = n_i.sum()
    if n < 2:
        return 0.0
    mean = (n_i * mean_i).sum() / n
    spread = math.sqrt((m2_i.sum() + (n_i * (mean_i - mean) ** 2).sum()) / (n - 1))
    return float(mean / (spread / math.sqrt(n))) if spread > 0 else 0.0
