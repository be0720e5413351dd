"""AI-For-Beginners (seed 000): AG News classifiers, one epoch of Adam, then the test set."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader

from ... import data as rdata
from ...train.loops import classification_accuracy, classification_epoch
from .common import Result, take
from .models import task_model


def load_encoded(root=None):
    """AG News and its faithful numericalisation; a partial train file is carried as a
    note (ag.note) rather than warned about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rdata.PartialDataWarning)  # carried as a note instead
        ag = rdata.load_ag_news(root)
    return ag, ag.numericalize("faithful")


def classify_and_test(
    model: nn.Module, enc, train_cfg: dict, *, seed: int, device: str, limits: dict
) -> tuple[dict, float]:
    """The seed's train_epoch (shuffled batches from a generator seeded with ``seed``)
    and the test accuracy. Batches always carry the lengths: a packed RNN packs with
    them, the Transformer masks its padding with them, a padded RNN ignores them."""
    model.to(device)
    collate = rdata.pad_with_lengths
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        enc.train, train_cfg["batch_size"], shuffle=True, collate_fn=collate, generator=gen
    )
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg["lr"])
    out = classification_epoch(
        model, take(loader, limits.get("max_batches")), opt, train_cfg["report_every"], device
    )
    test_loader = DataLoader(enc.test, 256, collate_fn=collate)
    test_cap = limits.get("test_batches", limits.get("max_batches"))
    return out, classification_accuracy(model, take(test_loader, test_cap), device)


def ag_news(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    ag, enc = load_encoded(root)
    torch.manual_seed(seed)
    model = task_model("classifier", model_cfg, vocab_size=len(enc.vocab), num_classes=4)
    out, test_acc = classify_and_test(
        model, enc, train_cfg, seed=seed, device=device, limits=limits
    )
    return {
        "metrics": {
            "epoch_loss": out["loss"],
            "epoch_accuracy": out["accuracy"],
            "samples": out["samples"],
            "test_accuracy": test_acc,
            "vocab_size": len(enc.vocab),
        },
        "curves": {"running_accuracy": out["curve"]},
        "timing": {"running_accuracy": out["curve_seconds"], "train": out["train_seconds"]},
        "notes": [ag.note] if ag.note else [],
        "partial_data": ag.partial,
    }
