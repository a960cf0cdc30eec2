"""The training loop the estimator owns: two parameter groups, warm-up + cosine, clipping,
model selection on a validation metric with best-weights restore, history, Ctrl-C.

The loop knows nothing about frames: the estimator hands it a function that yields training
batches for an epoch, a function that computes a batch's loss, and one that evaluates.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TrainingSettings", "TrainingResult", "warmup_cosine", "train"]


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int
    lr: float
    ssm_lr: float
    weight_decay: float
    warmup_epochs: float
    grad_clip: float | None
    patience: int | None
    verbose: int = 0


@dataclass
class TrainingResult:
    """``history``: one dict per finished epoch; ``best_epoch``: index into it (None if no epoch finished)."""

    history: list[dict]
    best_epoch: int | None
    interrupted: bool


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up from 0 to 1, then cosine decay to 0 (per step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _optimizers(model: nn.Module, settings: TrainingSettings):
    other, ssm = model.parameter_groups()
    optimizers = [torch.optim.AdamW(other, lr=settings.lr, weight_decay=settings.weight_decay)]
    if ssm:
        # The SSM's own parameters: lower rate, no weight decay (S5 App. F.3; Mamba's A_log and D).
        optimizers.append(torch.optim.Adam(ssm, lr=settings.ssm_lr))
    return optimizers


def _train_epoch(model, batches, batch_loss, optimizers, schedulers, grad_clip) -> tuple[float, float]:
    """One pass over ``batches``: (mean training loss, largest gradient norm before clipping)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, count, peak = 0.0, 0, None
    for batch in batches:
        loss, weight = batch_loss(batch)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        # An infinite max_norm scales by exactly 1: the norm is measured the same way with or without clipping.
        norm = nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
        peak = norm.detach() if peak is None else torch.maximum(peak, norm.detach())  # no sync per step
        for opt, sched in zip(optimizers, schedulers):
            opt.step()
            sched.step()
        total += loss.item() * weight
        count += weight
    return total / max(count, 1), (math.nan if peak is None else float(peak))


def train(
    model: nn.Module,
    settings: TrainingSettings,
    make_batches: Callable[[int], Iterable],
    n_batches: int,
    batch_loss: Callable,
    evaluate: Callable[[], dict] | None,
    selection_metric: str = "valid_mse",
) -> TrainingResult:
    """Train ``model`` in place and restore the weights of its best epoch.

    Parameters
    ----------
    make_batches : callable(epoch) -> iterable of batches
    n_batches : int
        Batches per epoch (for the schedule).
    batch_loss : callable(batch) -> (loss tensor, weight)
    evaluate : callable() -> dict, optional
        Validation metrics after each epoch; must contain ``selection_metric``. Without it the
        training loss selects the best epoch.
    """
    optimizers = _optimizers(model, settings)
    total_steps = settings.epochs * n_batches
    warmup_steps = max(1, round(settings.warmup_epochs * n_batches)) if settings.warmup_epochs > 0 else 0
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warmup_steps, total_steps)) for opt in optimizers]

    history: list[dict] = []
    best_score, best_epoch, best_state = math.inf, None, None
    progress = _progress(settings)
    interrupted = False
    try:
        for epoch in range(settings.epochs):
            start = time.perf_counter()
            train_loss, grad_norm = _train_epoch(
                model, make_batches(epoch), batch_loss, optimizers, schedulers, settings.grad_clip
            )
            record = {"epoch": epoch, "train_loss": train_loss, "grad_norm": grad_norm}
            if evaluate is not None:
                record.update(evaluate())
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            score = record.get(selection_metric, train_loss) if evaluate is not None else train_loss
            if not math.isfinite(score):
                warnings.warn(f"epoch {epoch}: non-finite {selection_metric}; stopping", RuntimeWarning, stacklevel=3)
                break
            if score < best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
            if progress is not None:
                progress.update(1)
                progress.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")})
            if settings.patience is not None and epoch - best_epoch >= settings.patience:
                break
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"training interrupted after {len(history)} epoch(s); keeping the best weights so far",
            RuntimeWarning,
            stacklevel=3,
        )
    finally:
        if progress is not None:
            progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainingResult(history=history, best_epoch=best_epoch, interrupted=interrupted)


def _progress(settings: TrainingSettings):
    if not settings.verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=settings.epochs, desc="fit", unit="epoch", leave=settings.verbose > 1)
