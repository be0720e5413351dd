"""fastai's one-cycle policy, as fit_one_cycle uses it, and the Adam it drives.

lr: cosine from lr_max/div up to lr_max over the first pct_start of all batches,
then cosine down to lr_max/div_final. Adam's beta1 ("momentum") runs the
opposite way, 0.95 → 0.85 → 0.95. The position is batches done / total, so
the first batch trains at lr_max/div exactly as fastai's ParamScheduler does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def cos_anneal(start: float, end: float, pos: float) -> float:
    """fastai SchedCos: start at pos 0, end at pos 1, cosine in between."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def one_cycle(
    step: int,
    total: int,
    lr_max: float,
    div: float = 25.0,
    div_final: float = 1e5,
    pct_start: float = 0.25,
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
) -> tuple[float, float]:
    """(lr, beta1) for batch `step` (0-based) of `total` batches."""
    if total < 1 or not 0 <= step <= total:
        raise ValueError(f"step {step} outside 0..total={total}")
    pos = step / total
    if pos < pct_start:
        p = pos / pct_start
        return cos_anneal(lr_max / div, lr_max, p), cos_anneal(moms[0], moms[1], p)
    p = (pos - pct_start) / (1 - pct_start)
    return cos_anneal(lr_max, lr_max / div_final, p), cos_anneal(moms[1], moms[2], p)


def fastai_adam(
    model: nn.Module,
    lr: float,
    wd: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-5,
) -> torch.optim.AdamW:
    """fastai's Adam: decoupled weight decay (AdamW), eps 1e-5, beta2 0.99, and no
    weight decay on biases (fastai's wd_bn_bias=False)."""
    decay, no_decay = _split_bias(model.named_parameters())
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps)


def _split_bias(named: Iterable[tuple[str, nn.Parameter]]) -> tuple[list, list]:
    decay, no_decay, seen = [], [], set()
    for name, p in named:
        if id(p) in seen or not p.requires_grad:
            continue  # tied weights appear twice
        seen.add(id(p))
        (no_decay if name.rsplit(".", 1)[-1].startswith("bias") else decay).append(p)
    return decay, no_decay


class OneCycle:
    """Sets lr and beta1 of every param group before each batch."""

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, lr_max: float, **kw) -> None:
        self.optimizer, self.total, self.lr_max, self.kw = optimizer, total, lr_max, kw
        self.step_count = 0

    def before_batch(self) -> tuple[float, float]:
        lr, mom = one_cycle(self.step_count, self.total, self.lr_max, **self.kw)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
            g["betas"] = (mom, g["betas"][1])
        self.step_count += 1
        return lr, mom
