"""The one training loop: ``fit(model, data, step, ...)``, in d2l's Trainer shape.

Every recipe and quality task trains through ``fit``; what differs between them is a
``Step``: the loss of one batch, the epoch's training metrics, and (optionally) the
evaluation of the validation data. ``fit`` owns everything else, in this order per batch::

    schedule.before_batch()          # fastai's one-cycle sets lr and momentum first
    loss = step.loss(model, batch)   # forward (dropout draws happen here)
    non-finite check                 # NonFiniteLoss naming where, instead of training on NaN
    optimizer.zero_grad(); loss.backward(); clip; optimizer.step()
    step.after_batch(value, seconds) # bookkeeping; True stops training

and per epoch: ``model.train()``, ``model.reset()`` when ``stateful`` (state carried
across the epoch's batches, fresh at each pass: fastai's ModelResetter), the training
pass, ``step.end_epoch()``, then the validation pass in eval mode without gradients.
It returns one metrics row per epoch and the cumulative training seconds (validation
excluded), kept apart from the rows because a rerun with the same seed repeats
everything but the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

#: what the default non-finite message advises
HINT = "; lower the learning rate or clip gradients"


class NonFiniteLoss(FloatingPointError):
    """Training produced inf/NaN: lower the learning rate or enable gradient clipping."""


def clip_global_norm(params: Iterable[nn.Parameter], max_norm: float) -> float:
    """d2l's clipping: scale all gradients so their joint L2 norm is at most max_norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
    return float(norm)


class Step:
    """The per-task part of training. Subclasses define ``loss``; the rest is optional.

    ``loss(model, batch)`` returns the tensor to minimise, or a pair (minimised,
    reported) when what is checked and logged differs (e.g. the loss without AR/TAR).
    A step keeps its own running sums, so use a fresh step for each ``fit``."""

    epoch = 0

    def where(self, epoch: int, batch: int, step: int) -> str:
        """The end of the non-finite message: the place and the advice (batch and step
        are 1-based: the batch of the epoch, the optimiser step of the run)."""
        return f"epoch {epoch}{HINT}"

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def loss(self, model: nn.Module, batch: Any) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError

    def after_batch(self, value: float, seconds: float) -> bool | None:
        """``value``: the reported loss of the batch just stepped; ``seconds``: training
        seconds so far. Return True to stop training after this batch."""
        return None

    def end_epoch(self) -> dict:
        """The epoch's training metrics (its row in the result)."""
        return {}

    def evaluate(self, model: nn.Module, batches: Any) -> dict:
        """Validation metrics for the epoch's row; fit calls it in eval mode, no grad."""
        return {}


@dataclass
class FitResult:
    epochs: list[dict] = field(default_factory=list)  # one row per epoch run: "epoch", ...
    seconds: list[float] = field(default_factory=list)  # cumulative training s per epoch
    steps: int = 0  # optimiser steps taken
    cpu_seconds: float = 0.0  # process CPU time of the training passes

    def summary(self, *last: str, **extra: Any) -> dict:
        """The loops' result: every epoch row, the cumulative seconds, the last row's
        ``last`` metrics, and ``extra`` as given."""
        return {
            "epochs": self.epochs,
            "epoch_seconds": self.seconds,
            **{k: self.epochs[-1][k] for k in last},
            **extra,
        }


Batches = Iterable[Any] | Callable[[int], Iterable[Any]]


def _batches(data: Batches, epoch: int) -> Iterable[Any]:
    """A list or DataLoader is iterated afresh each epoch; a callable is called with the
    epoch and returns that epoch's batches (so it may reshuffle or resample)."""
    return data(epoch) if callable(data) else data


def fit(
    model: nn.Module,
    data: Batches,
    step: Step,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    valid: Batches | None = None,
    schedule: Any = None,
    clip: float | None = None,
    clipper: Callable[[Iterable[nn.Parameter], float], Any] = clip_global_norm,
    max_steps: int | None = None,
    stateful: bool = False,
) -> FitResult:
    """Train ``model`` on ``data`` for ``epochs`` with ``step`` defining loss and metrics.

    ``valid``: evaluated by ``step.evaluate`` after every epoch. ``schedule``: an object
    whose ``before_batch()`` runs before each forward pass (``schedule.OneCycle``).
    ``clip``: clip gradients with ``clipper(parameters, clip)`` (default d2l's global-norm
    clipping; pass ``nn.utils.clip_grad_norm_`` for PyTorch's). ``max_steps``: stop after
    that many optimiser steps in all. ``stateful``: call ``model.reset()`` before every
    training and validation pass, the state being carried between a pass's batches.
    Raises NonFiniteLoss, with ``step.where``'s place, on an inf/NaN loss."""
    result, train_s = FitResult(), 0.0
    for epoch in range(epochs):
        model.train()
        if stateful:
            model.reset()
        step.begin_epoch(epoch)
        t0, c0 = time.perf_counter(), time.process_time()
        stop = False
        for i, batch in enumerate(_batches(data, epoch), 1):
            if schedule is not None:
                schedule.before_batch()
            out = step.loss(model, batch)
            loss, reported = out if isinstance(out, tuple) else (out, out)
            value = reported.item()
            if not math.isfinite(value):
                where = step.where(epoch, i, result.steps + 1)
                raise NonFiniteLoss(f"non-finite loss ({value}) at {where}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                clipper(model.parameters(), clip)
            optimizer.step()
            result.steps += 1
            stop = bool(step.after_batch(value, train_s + time.perf_counter() - t0))
            if stop or (max_steps is not None and result.steps >= max_steps):
                stop = True
                break
        train_s += time.perf_counter() - t0
        result.cpu_seconds += time.process_time() - c0
        result.seconds.append(train_s)
        row = {"epoch": epoch, **step.end_epoch()}
        if valid is not None:
            model.eval()
            if stateful:
                model.reset()
            with torch.no_grad():
                row.update(step.evaluate(model, _batches(valid, epoch)))
        result.epochs.append(row)
        if stop:
            break
    return result
