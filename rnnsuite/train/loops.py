"""The training loops the recipes share, one per kind of task.

Each returns plain data — curves and final metrics — so a recipe can store it
as a result row. Every loop refuses a non-finite loss with an error naming the
step, instead of training on NaNs (and a perplexity past float range, likewise). Each also returns the cumulative training
seconds at every curve point (validation excluded), apart from the curves
because it is the one thing a rerun with the same seed does not repeat; the
quality matrix turns it into time-to-target.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..regularizers import ar_loss, tar_loss
from .schedule import OneCycle, fastai_adam


class NonFiniteLoss(FloatingPointError):
    """Training produced inf/NaN: lower the learning rate or enable gradient clipping."""


def _check_finite(loss: Tensor, where: str) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLoss(
            f"non-finite loss ({loss.item()}) at {where}; lower the learning rate or clip gradients"
        )


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


def clip_global_norm(params: Iterable[nn.Parameter], max_norm: float) -> float:
    """d2l's clipping: scale all gradients so their joint L2 norm is at most max_norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
    return float(norm)


# -- AI-For-Beginners: one epoch of classification with a running train accuracy -------
def classification_epoch(
    model: nn.Module,
    batches: Iterable[Sequence[Tensor]],
    optimizer: torch.optim.Optimizer,
    report_every: int = 200,
    device: str | torch.device = "cpu",
) -> dict:
    """Batches are (labels, ids) or (labels, ids, lengths). Returns the seed's tuple
    (sum of batch-mean losses / samples, accuracy) and the running-accuracy curve."""
    model.train()
    total_loss, correct, count, curve, seconds = 0.0, 0, 0, [], []
    t0 = time.perf_counter()
    for i, batch in enumerate(batches, 1):
        labels, ids = batch[0].to(device), batch[1].to(device)
        lengths = batch[2] if len(batch) > 2 else None
        optimizer.zero_grad()
        out = model(ids, lengths) if lengths is not None else model(ids)
        loss = F.cross_entropy(out, labels)
        _check_finite(loss, f"batch {i}")
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        correct += int((out.argmax(1) == labels).sum())
        count += len(labels)
        if i % report_every == 0:
            curve.append((count, correct / count))
            seconds.append(time.perf_counter() - t0)
    return {
        "loss": total_loss / count,
        "accuracy": correct / count,
        "samples": count,
        "curve": curve,
        "curve_seconds": seconds,
        "train_seconds": time.perf_counter() - t0,
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
    sched = OneCycle(opt, epochs * len(train), lr_max)
    rows, smooth, n_seen, seconds, train_s = [], 0.0, 0, [], 0.0
    for epoch in range(epochs):
        model.train()
        model.reset()
        t0 = time.perf_counter()
        for x, y in train:
            x, y = x.to(device), y.to(device)
            sched.before_batch()
            logits, raw, out = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            _check_finite(loss, f"epoch {epoch}")
            smooth, n_seen = 0.98 * smooth + 0.02 * loss.item(), n_seen + 1
            if alpha:
                loss = loss + ar_loss(out, alpha)
            if beta:
                loss = loss + tar_loss(raw, beta, time_dim=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s += time.perf_counter() - t0
        seconds.append(train_s)
        v_loss, v_acc = _lm_validate(model, valid, device)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": smooth / (1 - 0.98**n_seen),
                "valid_loss": v_loss,
                "accuracy": v_acc,
            }
        )
    return {
        "epochs": rows,
        "epoch_seconds": seconds,
        "valid_loss": rows[-1]["valid_loss"],
        "accuracy": rows[-1]["accuracy"],
        "best_accuracy": max(r["accuracy"] for r in rows),
    }


@torch.no_grad()
def _lm_validate(model: nn.Module, valid, device) -> tuple[float, float]:
    model.eval()
    model.reset()
    loss_sum = correct = count = 0.0
    for x, y in valid:
        x, y = x.to(device), y.to(device)
        logits = model(x)[0].flatten(0, 1)
        n = y.numel()
        loss_sum += F.cross_entropy(logits, y.flatten()).item() * n
        correct += int((logits.argmax(-1) == y.flatten()).sum())
        count += n
    return loss_sum / count, correct / count


# -- d2l: SGD with clipping on a character LM ---------------------------------------------
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
    every batch; per-epoch train and validation perplexity."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    rows, seconds, train_s = [], [], 0.0
    for epoch in range(epochs):
        model.train()
        tot = n = 0.0
        t0 = time.perf_counter()
        for x, y in train_batches():
            x, y = x.to(device), y.to(device)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            _check_finite(loss, f"epoch {epoch}")
            opt.zero_grad()
            loss.backward()
            clip_global_norm(model.parameters(), clip)
            opt.step()
            tot, n = tot + loss.item() * y.numel(), n + y.numel()
        train_s += time.perf_counter() - t0
        seconds.append(train_s)
        rows.append(
            {
                "epoch": epoch,
                "train_ppl": checked_perplexity(tot / n, f"epoch {epoch} (training)"),
                "valid_ppl": checked_perplexity(
                    _char_loss(model, valid_batches(), device), f"epoch {epoch} (validation)"
                ),
            }
        )
    return {
        "epochs": rows,
        "epoch_seconds": seconds,
        "train_ppl": rows[-1]["train_ppl"],
        "valid_ppl": rows[-1]["valid_ppl"],
    }


@torch.no_grad()
def _char_loss(model: nn.Module, batches, device) -> float:
    model.eval()
    tot = n = 0.0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        tot += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        n += y.numel()
    return tot / n


# -- d2l: encoder-decoder with teacher forcing and a masked loss -------------------------
def masked_ce(logits: Tensor, target: Tensor, pad: int) -> Tensor:
    """Mean cross-entropy over non-<pad> target tokens (d2l's Seq2Seq.loss)."""
    loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    mask = (target.flatten() != pad).to(loss.dtype)
    return (loss * mask).sum() / mask.sum()


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
    Batches are (src, tgt_in, src_valid_len, tgt)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rows, seconds, train_s = [], [], 0.0
    for epoch in range(epochs):
        model.train()
        tot = n = 0.0
        t0 = time.perf_counter()
        for src, tgt_in, src_len, tgt in train_batches():
            src, tgt_in, tgt = src.to(device), tgt_in.to(device), tgt.to(device)
            loss = masked_ce(model(src, tgt_in, src_len.to(device)), tgt, pad)
            _check_finite(loss, f"epoch {epoch}")
            opt.zero_grad()
            loss.backward()
            clip_global_norm(model.parameters(), clip)
            opt.step()
            tot, n = tot + loss.item(), n + 1
        train_s += time.perf_counter() - t0
        seconds.append(train_s)
        model.eval()
        with torch.no_grad():
            v = [
                masked_ce(
                    model(s.to(device), ti.to(device), sl.to(device)), t.to(device), pad
                ).item()
                for s, ti, sl, t in valid_batches()
            ]
        rows.append({"epoch": epoch, "train_loss": tot / n, "valid_loss": sum(v) / len(v)})
    return {
        "epochs": rows,
        "epoch_seconds": seconds,
        "train_loss": rows[-1]["train_loss"],
        "valid_loss": rows[-1]["valid_loss"],
    }
