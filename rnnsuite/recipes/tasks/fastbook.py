"""fastbook (seed 001): word LMs trained with fit_one_cycle — Human Numbers (LMModel5-7)
and, in the quality matrix, Penn Treebank with truncated-BPTT windows."""

from __future__ import annotations

import torch

from ... import data as rdata
from ...train.loops import checked_perplexity, fit_one_cycle_lm
from .common import Result, take
from .models import task_model


def _one_cycle(
    model_cfg: dict, train_cfg: dict, vocab_size: int, train, valid, *, seed, device, limits
) -> dict:
    """Seed, build the word LM, fit_one_cycle with the recipe's settings."""
    torch.manual_seed(seed)
    model = task_model("word_lm", model_cfg, vocab_size=vocab_size)
    return fit_one_cycle_lm(
        model.to(device),
        train,
        valid,
        limits.get("epochs", train_cfg["epochs"]),
        train_cfg["lr"],
        wd=train_cfg["wd"],
        alpha=train_cfg.get("alpha", 0.0),
        beta=train_cfg.get("beta", 0.0),
        device=device,
    )


def human_numbers(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    hn = rdata.load_human_numbers()
    train_ds, valid_ds = hn.lm_datasets(train_cfg["sl"], train_cfg["bs"])
    train = rdata.stream_batches(train_ds, train_cfg["bs"])
    valid = rdata.stream_batches(valid_ds, train_cfg["bs"])
    if limits.get("max_batches"):
        train, valid = train[: limits["max_batches"]], valid[: limits["max_batches"]]
    out = _one_cycle(
        model_cfg, train_cfg, len(hn.vocab), train, valid, seed=seed, device=device, limits=limits
    )
    return {
        "metrics": {
            "valid_loss": out["valid_loss"],
            "accuracy": out["accuracy"],
            "best_accuracy": out["best_accuracy"],
        },
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
    }


def ptb(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """A word LM on Penn Treebank with fit_one_cycle: state carried across truncated-BPTT
    windows (the Transformer sees one window at a time); validation perplexity."""
    data = rdata.load_ptb(root)
    bs, bptt = train_cfg["bs"], train_cfg["bptt"]
    train = list(take(rdata.BPTTIterator(data.train, bs, bptt), limits.get("max_batches")))
    valid = list(take(rdata.BPTTIterator(data.valid, bs, bptt), limits.get("valid_batches")))
    out = _one_cycle(
        model_cfg, train_cfg, len(data.vocab), train, valid, seed=seed, device=device, limits=limits
    )
    for row in out["epochs"]:
        row["valid_ppl"] = checked_perplexity(row["valid_loss"], f"epoch {row.get('epoch')}")
    return {
        "metrics": {
            "valid_loss": out["valid_loss"],
            "valid_ppl": checked_perplexity(out["valid_loss"], "validation"),
            "accuracy": out["accuracy"],
            "train_batches": len(train),
        },
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
    }
