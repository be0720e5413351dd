"""Training the TV-script model (Udacity's project loop, made deterministic).

Adam + cross-entropy on (sequence_length words → next word) pairs, gradient clipping
at global norm ``clip``. The hidden state starts at zero for *every* batch: the pairs
are shuffled, so row j of one batch does not continue row j of the previous one and a
carried (detached) state — what the course's loop does — would only feed the model
context from an unrelated place in the script.

Everything random (initial weights, shuffling, dropout) is drawn inside a forked RNG
seeded with ``seed``, so one seed gives identical losses and the caller's global RNG
state is left untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from ..data.lm_batching import next_word_pairs
from ..data.seinfeld import Seinfeld
from ..models.script_rnn import ScriptRNN
from .fit import Step, fit


@dataclass
class ScriptResult:
    model: ScriptRNN
    losses: list[float]  # mean training loss of each full interval of log_every batches
    epoch_losses: list[float]  # mean training loss of each epoch (batches actually run)
    seconds: float  # wall time of the training loop (model built, data batched before)
    batches: int  # optimiser steps taken
    log_every: int = 100
    cpu_seconds: float = 0.0  # process CPU time of the loop: robust to a busy machine
    config: dict = field(default_factory=dict)

    @property
    def seconds_per_batch(self) -> float:
        return self.seconds / max(self.batches, 1)

    @property
    def cpu_seconds_per_batch(self) -> float:
        return self.cpu_seconds / max(self.batches, 1)


def adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: the same update, but on one CPU thread the default
    for-each Adam over the 21k-word embedding and output layer costs about a fifth of a
    training step, the fused one a few percent."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def script_loader(
    data: Seinfeld, sequence_length: int, batch_size: int, generator: torch.Generator
) -> DataLoader:
    """``Seinfeld.batch_data`` pairs, shuffled by ``generator``. Batches are gathered by
    one tensor index each (a BatchSampler as the sampler) instead of stacking
    ``batch_size`` single items, which costs more than a small model's step."""
    features, targets = next_word_pairs(data.int_text, sequence_length, batch_size)
    if len(features) == 0:
        raise ValueError(
            f"{len(data.int_text)} tokens give no (sequence_length={sequence_length}) pairs "
            f"in whole batches of {batch_size}; use more text or smaller settings"
        )
    sampler = BatchSampler(
        RandomSampler(features, generator=generator), batch_size=batch_size, drop_last=False
    )
    return DataLoader(TensorDataset(features, targets), batch_size=None, sampler=sampler)


class CourseStep(Step):
    """The Udacity projects' loop conventions: the non-finite message names the epoch, the
    batch, the learning rate and the clipping."""

    def __init__(self, lr: float, clip: float | None, device: str | torch.device) -> None:
        self.lr, self.clip, self.device = lr, clip, device

    def where(self, epoch: int, batch: int, step: int) -> str:
        return (
            f"epoch {epoch}, batch {batch}; lower the learning rate (lr={self.lr}) or clip "
            f"gradients (clip={self.clip})"
        )


class ScriptStep(CourseStep):
    """Cross-entropy of the next word, zero state per batch; the mean of every
    ``log_every`` batches is logged, and a logged mean below ``stop_below`` stops."""

    def __init__(
        self,
        lr: float,
        clip: float | None,
        log_every: int,
        stop_below: float | None,
        device: str | torch.device,
    ) -> None:
        super().__init__(lr, clip, device)
        self.log_every, self.stop_below = log_every, stop_below
        self.losses: list[float] = []
        self.window_sum, self.window_n = 0.0, 0

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.epoch_sum, self.epoch_n = 0.0, 0

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        logits, _ = model(x)  # hidden=None: zero state for every batch
        return F.cross_entropy(logits, y)

    def after_batch(self, value: float, seconds: float) -> bool:
        self.epoch_sum, self.epoch_n = self.epoch_sum + value, self.epoch_n + 1
        self.window_sum, self.window_n = self.window_sum + value, self.window_n + 1
        if self.window_n < self.log_every:
            return False
        self.losses.append(self.window_sum / self.window_n)
        self.window_sum, self.window_n = 0.0, 0
        return self.stop_below is not None and self.losses[-1] < self.stop_below

    def end_epoch(self) -> dict:
        return {"loss": self.epoch_sum / max(self.epoch_n, 1)}


def _check_budget(log_every: int, stop_below: float | None, max_batches: int | None) -> None:
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if stop_below is not None and not math.isfinite(stop_below):
        raise ValueError(f"stop_below must be a finite number or None, got {stop_below}")
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")


def train_script(
    data: Seinfeld,
    *,
    sequence_length: int = 10,
    batch_size: int = 128,
    embedding_dim: int = 200,
    hidden_dim: int = 256,
    n_layers: int = 2,
    dropout: float = 0.5,
    lr: float = 0.001,
    epochs: int = 1,
    seed: int = 0,
    arch: str = "lstm",
    impl: str = "builtin",
    max_batches: int | None = None,
    clip: float | None = 5.0,
    log_every: int = 100,
    stop_below: float | None = None,
    device: str | torch.device = "cpu",
) -> ScriptResult:
    """Train a ScriptRNN for ``epochs`` passes (or until ``max_batches`` steps in all).

    ``stop_below`` ends training as soon as a logged loss (the mean of ``log_every``
    batches, what the course prints) falls below it: the project's pass mark is "training
    loss below 3.5", and running on after reaching it only spends CPU-hours. ``device``:
    where the model lives; the batches are built on the CPU and moved there one by one.
    Raises NonFiniteLoss, naming the epoch and batch, if the loss becomes inf/NaN."""
    _check_budget(log_every, stop_below, max_batches)
    config = dict(
        sequence_length=sequence_length,
        batch_size=batch_size,
        embedding_dim=embedding_dim,
        hidden_dim=hidden_dim,
        n_layers=n_layers,
        dropout=dropout,
        lr=lr,
        epochs=epochs,
        seed=seed,
        arch=arch,
        impl=impl,
        max_batches=max_batches,
        clip=clip,
        stop_below=stop_below,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vocab_size = len(data.vocab)
        model = ScriptRNN(
            vocab_size,
            vocab_size,
            embedding_dim,
            hidden_dim,
            n_layers,
            dropout,
            arch=arch,
            impl=impl,
        ).to(device)
        loader = script_loader(
            data, sequence_length, batch_size, torch.Generator().manual_seed(seed)
        )
        step = ScriptStep(lr, clip, log_every, stop_below, device)
        res = fit(
            model,
            loader,
            step,
            optimizer=adam(model, lr),
            epochs=epochs,
            clip=clip or None,
            clipper=nn.utils.clip_grad_norm_,
            max_steps=max_batches,
        )
    epoch_losses = [row["loss"] for row in res.epochs]
    seconds = res.seconds[-1] if res.seconds else 0.0
    return ScriptResult(
        model, step.losses, epoch_losses, seconds, res.steps, log_every, res.cpu_seconds, config
    )
