"""Training the Sentiment RNN (Udacity's loop: BCELoss, Adam, clipping), deterministically.

The course carries a detached hidden state from batch to batch; batches here are
shuffled reviews, unrelated to each other, so every batch starts from zero instead.
All randomness (weights, shuffling, dropout) comes from a forked RNG seeded with
``seed``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from ..data.sentiment import Reviews, split_dataset
from ..models.sentiment import SentimentRNN
from .fit import fit
from .script import CourseStep, adam


@dataclass
class SentimentResult:
    model: SentimentRNN
    test_accuracy: float
    test_loss: float
    epochs: list[dict] = field(default_factory=list)  # train_loss, valid_loss, valid_accuracy
    seconds: float = 0.0


def _loader(x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator | None):
    dataset = TensorDataset(x, y)
    base = RandomSampler(dataset, generator=generator) if generator is not None else range(len(x))
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, batch_size=None, sampler=sampler)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 256) -> tuple[float, float]:
    """(mean BCE loss, accuracy at threshold 0.5) over (x, y); eval mode, no dropout."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for xb, yb in _loader(x, y, batch_size, None):
        probs = model(xb)
        target = yb.to(probs.dtype)
        loss_sum += F.binary_cross_entropy(probs, target, reduction="sum").item()
        correct += int(((probs > 0.5).long() == yb).sum())
    n = max(len(y), 1)
    return loss_sum / n, correct / n


class SentimentStep(CourseStep):
    """BCE on the sigmoid output; the epoch's sample-weighted train loss, validation
    loss and accuracy on the (features, labels) pair fit passes as its validation data."""

    def __init__(self, lr: float, clip: float | None) -> None:
        super().__init__(lr, clip, "cpu")

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.total, self.n, self.size = 0.0, 0, 0

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        xb, yb = batch
        probs = model(xb)
        self.size = len(yb)
        return F.binary_cross_entropy(probs, yb.to(probs.dtype))

    def after_batch(self, value: float, seconds: float) -> None:
        self.total, self.n = self.total + value * self.size, self.n + self.size

    def end_epoch(self) -> dict:
        return {"train_loss": self.total / self.n}

    def evaluate(self, model: nn.Module, batches: tuple[Tensor, Tensor]) -> dict:
        loss, accuracy = evaluate(model, *batches)
        return {"valid_loss": loss, "valid_accuracy": accuracy}


def train_sentiment(
    data: Reviews,
    *,
    embedding_dim: int = 400,
    hidden_dim: int = 256,
    n_layers: int = 2,
    dropout: float = 0.5,
    output_dropout: float = 0.3,
    lr: float = 0.001,
    epochs: int = 4,
    batch_size: int = 50,
    clip: float | None = 5.0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int | None = None,
    seed: int = 0,
    arch: str = "lstm",
    impl: str = "builtin",
) -> SentimentResult:
    """Split (course order unless ``split_seed``), train, validate per epoch, test once.

    Defaults are the course's (embedding 400, hidden 256, 2 layers, lr 0.001, 4 epochs,
    batch 50, clip 5). Raises NonFiniteLoss on an inf/NaN loss."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = split_dataset(
        data.features, data.labels, fractions, seed=split_seed
    )
    if len(x_tr) == 0:
        raise ValueError("the training split is empty; use more reviews or a larger fraction")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SentimentRNN(
            len(data.vocab),
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            dropout=dropout,
            output_dropout=output_dropout,
            arch=arch,
            impl=impl,
        )
        loader = _loader(x_tr, y_tr, batch_size, torch.Generator().manual_seed(seed))
        start = time.perf_counter()
        res = fit(
            model,
            loader,
            SentimentStep(lr, clip),
            optimizer=adam(model, lr),
            epochs=epochs,
            valid=(x_va, y_va) if len(y_va) else None,
            clip=clip or None,
            clipper=nn.utils.clip_grad_norm_,
        )
        test_loss, test_acc = evaluate(model, x_te, y_te) if len(y_te) else (math.nan, math.nan)
        seconds = time.perf_counter() - start
    return SentimentResult(model, test_acc, test_loss, res.epochs, seconds)
