"""Element-Research rnn tutorial (seed 002): the song acceptor and remember/forget.

The toy songs are 5-grams of word ids (Lua ids minus one; "just" = 12 as Lua's table
keeps); the first two are masterpieces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import build
from ...stateful import Stateful
from ...train.fit import Step, fit
from .common import Result
from .models import task_model

SONGS = torch.tensor([[6, 0, 11, 14, 1], [10, 3, 7, 13, 9], [15, 5, 4, 2, 12]])
MASTERPIECE = torch.tensor([[1.0], [1.0], [0.0]])


class AcceptorStep(Step):
    """BCE of the acceptor's sigmoid on the whole toy set: one batch, one step per epoch;
    the curve is (step, loss)."""

    def __init__(self) -> None:
        self.curve: list[tuple[int, float]] = []

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        pred = torch.sigmoid(model["acc"](model["lt"](x))[0])
        return F.binary_cross_entropy(pred, y)

    def after_batch(self, value: float, seconds: float) -> None:
        self.curve.append((len(self.curve), value))


def song_acceptor(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    torch.manual_seed(seed)
    m = task_model("acceptor", model_cfg).double().to(device)
    x, y = SONGS.T.to(device), MASTERPIECE.double().to(device)  # (time, batch) as the tutorial
    step = AcceptorStep()
    fit(
        m,
        [(x, y)],
        step,
        optimizer=torch.optim.SGD(m.parameters(), lr=train_cfg["lr"]),
        epochs=limits.get("epochs", train_cfg["steps"]),
    )
    curve = step.curve
    pred = torch.sigmoid(m["acc"](m["lt"](x))[0]).detach()
    return {
        "metrics": {
            "final_bce": curve[-1][1],
            "all_correct": bool(((pred > 0.5).double() == y).all()),
        },
        "curves": {"bce": curve},
        "samples": {"predictions": pred.flatten().tolist()},
    }


def remember(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """The tutorial's four remember/forget observations, measured (nothing is trained)."""
    torch.manual_seed(seed)
    lt = nn.Embedding(model_cfg["vocab"], model_cfg["embed_dim"]).double().to(device)
    seq = Stateful(
        build(
            model_cfg["arch"],
            "scratch",
            input_size=model_cfg["embed_dim"],
            hidden_size=model_cfg["hidden_size"],
        )
        .double()
        .to(device)
    )
    x = lt(SONGS.T.to(device)).detach()

    def last() -> torch.Tensor:
        return seq(x)[0][-1].detach()

    seq.remember("both")
    first, second = last(), last()
    seq.forget()
    after_forget = last()
    seq.remember("neither")
    n1, n2 = last(), last()
    checks = {
        "both_second_call_differs": not torch.allclose(first, second),
        "forget_restores_first_output": torch.equal(after_forget, first),
        "neither_repeats_first_output": torch.equal(n1, first) and torch.equal(n2, first),
    }
    return {
        "metrics": {**checks, "all_hold": all(checks.values())},
        "samples": {"first": first.tolist(), "second": second.tolist()},
    }
