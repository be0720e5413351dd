"""The documents' training recipes as steps of the one loop (``fit.py``).

Each public function here is one document's recipe: it builds the optimiser (and the
schedule), picks its ``Step`` and trains with ``fit``, then returns plain data — curves
and final metrics — so a recipe can store it as a result row. Every run refuses a
non-finite loss with an error naming the step, instead of training on NaNs (and a
perplexity past float range, likewise). Each also returns the cumulative training
seconds at every curve point (validation excluded), apart from the curves because it is
the one thing a rerun with the same seed does not repeat; the quality matrix turns it
into time-to-target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..regularizers import ar_loss, tar_loss
from .fit import HINT, NonFiniteLoss, Step, clip_global_norm, fit
from .schedule import OneCycle, fastai_adam

__all__ = [
    "NonFiniteLoss",
    "checked_perplexity",
    "classification_accuracy",
    "classification_epoch",
    "clip_global_norm",
    "fit_one_cycle_lm",
    "masked_ce",
    "train_char_lm",
    "train_seq2seq",
]


def checked_perplexity(mean_loss: float, where: str) -> float:
    """exp(mean loss); a loss past exp's float range (about 709.78 nats) is a diverged
    model, refused like a non-finite loss instead of raising OverflowError."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        raise NonFiniteLoss(
            f"perplexity overflows (mean loss {mean_loss:.4g}) at {where}; lower the learning "
            "rate or clip gradients"
        ) from None


# -- AI-For-Beginners: one epoch of classification with a running train accuracy -------
class ClassifyStep(Step):
    """Cross-entropy on (labels, ids) or (labels, ids, lengths) batches; the seed's
    (sum of batch-mean losses / samples, accuracy) and a running-accuracy curve point
    every ``report_every`` batches."""

    def __init__(self, report_every: int = 200, device: str | torch.device = "cpu") -> None:
        self.report_every, self.device = report_every, device
        self.total, self.correct, self.count, self.batches = 0.0, 0, 0, 0
        self.curve: list[tuple[int, float]] = []
        self.curve_seconds: list[float] = []

    def where(self, epoch: int, batch: int, step: int) -> str:
        return f"batch {batch}{HINT}"

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        labels, ids = batch[0].to(self.device), batch[1].to(self.device)
        out = model(ids, batch[2]) if len(batch) > 2 else model(ids)
        self.correct += int((out.argmax(1) == labels).sum())
        self.count += len(labels)
        return F.cross_entropy(out, labels)

    def after_batch(self, value: float, seconds: float) -> None:
        self.total += value
        self.batches += 1
        if self.batches % self.report_every == 0:
            self.curve.append((self.count, self.correct / self.count))
            self.curve_seconds.append(seconds)

    def end_epoch(self) -> dict:
        return {"loss": self.total / self.count, "accuracy": self.correct / self.count}


def classification_epoch(
    model: nn.Module,
    batches: Iterable[Sequence[Tensor]],
    optimizer: torch.optim.Optimizer,
    report_every: int = 200,
    device: str | torch.device = "cpu",
) -> dict:
    """Batches are (labels, ids) or (labels, ids, lengths). Returns the seed's tuple
    (sum of batch-mean losses / samples, accuracy) and the running-accuracy curve."""
    step = ClassifyStep(report_every, device)
    res = fit(model, batches, step, optimizer=optimizer)
    row = res.epochs[0]
    return {
        "loss": row["loss"],
        "accuracy": row["accuracy"],
        "samples": step.count,
        "curve": step.curve,
        "curve_seconds": step.curve_seconds,
        "train_seconds": res.seconds[0],
    }


@torch.no_grad()
def classification_accuracy(
    model: nn.Module, batches: Iterable[Sequence[Tensor]], device: str | torch.device = "cpu"
) -> float:
    model.eval()
    correct = count = 0
    for batch in batches:
        labels, ids = batch[0].to(device), batch[1].to(device)
        out = model(ids, batch[2]) if len(batch) > 2 else model(ids)
        correct += int((out.argmax(1) == labels).sum())
        count += len(labels)
    return correct / max(count, 1)


# -- fastbook: fit_one_cycle on a stateful word LM ------------------------------------
class OneCycleLMStep(Step):
    """fastai's LM loss for a model returning (logits, raw, dropped): cross-entropy plus
    AR on the dropped output and TAR on the raw output (training only); the reported
    loss is the cross-entropy, smoothed as fastai's table shows (EMA 0.98, debiased,
    carried across epochs)."""

    def __init__(self, alpha: float, beta: float, device: str | torch.device) -> None:
        self.alpha, self.beta, self.device = alpha, beta, device
        self.smooth, self.n_seen = 0.0, 0

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        logits, raw, out = model(x)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss = ce
        if self.alpha:
            loss = loss + ar_loss(out, self.alpha)
        if self.beta:
            loss = loss + tar_loss(raw, self.beta, time_dim=1)
        return loss, ce

    def after_batch(self, value: float, seconds: float) -> None:
        self.smooth, self.n_seen = 0.98 * self.smooth + 0.02 * value, self.n_seen + 1

    def end_epoch(self) -> dict:
        return {"train_loss": self.smooth / (1 - 0.98**self.n_seen)}

    def evaluate(self, model: nn.Module, batches) -> dict:
        loss_sum = correct = count = 0.0
        for x, y in batches:
            x, y = x.to(self.device), y.to(self.device)
            logits = model(x)[0].flatten(0, 1)
            n = y.numel()
            loss_sum += F.cross_entropy(logits, y.flatten()).item() * n
            correct += int((logits.argmax(-1) == y.flatten()).sum())
            count += n
        return {"valid_loss": loss_sum / count, "accuracy": correct / count}


def fit_one_cycle_lm(
    model: nn.Module,
    train: Sequence[tuple[Tensor, Tensor]],
    valid: Sequence[tuple[Tensor, Tensor]],
    epochs: int,
    lr_max: float,
    wd: float = 0.01,
    alpha: float = 0.0,
    beta: float = 0.0,
    device: str | torch.device = "cpu",
) -> dict:
    """fastai's fit_one_cycle for a model returning (logits, raw, dropped): state reset
    at the start of each epoch's train and valid passes, AR on the dropped output and
    TAR on the raw output in training only. Rows: (train_loss, valid_loss, accuracy),
    train_loss being fastai's smoothed loss (EMA 0.98, debiased) as its table shows."""
    opt = fastai_adam(model, lr_max, wd=wd)
    res = fit(
        model,
        train,
        OneCycleLMStep(alpha, beta, device),
        optimizer=opt,
        epochs=epochs,
        valid=valid,
        schedule=OneCycle(opt, epochs * len(train), lr_max),
        stateful=True,
    )
    best = max(r["accuracy"] for r in res.epochs)
    return res.summary("valid_loss", "accuracy", best_accuracy=best)


# -- d2l: SGD with clipping on a character LM ---------------------------------------------
class CharLMStep(Step):
    """Cross-entropy of next-character logits, state from zero in every batch; per-epoch
    train and validation perplexity (token-weighted)."""

    def __init__(self, device: str | torch.device) -> None:
        self.device = device

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.tot, self.n, self.tokens = 0.0, 0.0, 0

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        logits, _ = model(x)
        self.tokens = y.numel()
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    def after_batch(self, value: float, seconds: float) -> None:
        self.tot, self.n = self.tot + value * self.tokens, self.n + self.tokens

    def end_epoch(self) -> dict:
        where = f"epoch {self.epoch} (training)"
        return {"train_ppl": checked_perplexity(self.tot / self.n, where)}

    def evaluate(self, model: nn.Module, batches) -> dict:
        tot = n = 0.0
        for x, y in batches:
            x, y = x.to(self.device), y.to(self.device)
            logits, _ = model(x)
            tot += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            n += y.numel()
        return {"valid_ppl": checked_perplexity(tot / n, f"epoch {self.epoch} (validation)")}


def train_char_lm(
    model: nn.Module,
    train_batches,
    valid_batches,
    epochs: int,
    lr: float,
    clip: float = 1.0,
    device: str | torch.device = "cpu",
) -> dict:
    """d2l's Trainer for RNN LMs: plain SGD, global-norm clipping, state from zero in
    every batch; per-epoch train and validation perplexity. ``train_batches`` and
    ``valid_batches`` are called once per epoch for that epoch's batches."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    res = _fit_fresh(
        model, train_batches, valid_batches, CharLMStep(device), optimizer, epochs, clip
    )
    return res.summary("train_ppl", "valid_ppl")


def _fit_fresh(model, train_batches, valid_batches, step, optimizer, epochs: int, clip: float):
    """fit with fresh batches each epoch (train_batches() and valid_batches() called once
    per epoch) and global-norm clipping: d2l's loops."""
    return fit(
        model,
        lambda _epoch: train_batches(),
        step,
        optimizer=optimizer,
        epochs=epochs,
        valid=lambda _epoch: valid_batches(),
        clip=clip,
    )


# -- d2l: encoder-decoder with teacher forcing and a masked loss -------------------------
def masked_ce(logits: Tensor, target: Tensor, pad: int) -> Tensor:
    """Mean cross-entropy over non-<pad> target tokens (d2l's Seq2Seq.loss)."""
    loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    mask = (target.flatten() != pad).to(loss.dtype)
    return (loss * mask).sum() / mask.sum()


class Seq2SeqStep(Step):
    """Teacher forcing with the masked loss on (src, tgt_in, src_valid_len, tgt) batches;
    train and validation loss as means of batch means."""

    def __init__(self, pad: int, device: str | torch.device) -> None:
        self.pad, self.device = pad, device

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.tot, self.n = 0.0, 0.0

    def _masked(self, model: nn.Module, batch) -> Tensor:
        src, tgt_in, src_len, tgt = (t.to(self.device) for t in batch)
        return masked_ce(model(src, tgt_in, src_len), tgt, self.pad)

    def loss(self, model: nn.Module, batch) -> Tensor:
        return self._masked(model, batch)

    def after_batch(self, value: float, seconds: float) -> None:
        self.tot, self.n = self.tot + value, self.n + 1

    def end_epoch(self) -> dict:
        return {"train_loss": self.tot / self.n}

    def evaluate(self, model: nn.Module, batches) -> dict:
        v = [self._masked(model, b).item() for b in batches]
        return {"valid_loss": sum(v) / len(v)}


def train_seq2seq(
    model: nn.Module,
    train_batches,
    valid_batches,
    epochs: int,
    lr: float,
    pad: int,
    clip: float = 1.0,
    device: str | torch.device = "cpu",
) -> dict:
    """Adam, teacher forcing, masked loss, clipping at global norm `clip`.
    Batches are (src, tgt_in, src_valid_len, tgt); ``train_batches`` and
    ``valid_batches`` are called once per epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    step = Seq2SeqStep(pad, device)
    res = _fit_fresh(model, train_batches, valid_batches, step, optimizer, epochs, clip)
    return res.summary("train_loss", "valid_loss")
