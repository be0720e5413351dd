"""Is a scratch implementation equal to its architecture's built-in twin? Measured, not assumed.

``twin_difference(arch, impl)`` builds the architecture's scratch implementation and its
registered built-in twin with the same weights (the twin loads the scratch model's
state_dict: torch's parameter names on both sides), runs both on one fixed seeded batch,
padded and packed (unsorted lengths), and returns the largest absolute differences of
outputs, final states and parameter gradients. ``check_twin`` raises ``ParityError``
when any exceeds the tolerance. The bench runs it for every cell of an architecture
that has a twin (a user's plugin included) before it measures anything.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .packing import pack_padded
from .registry import architecture, build

#: float32 tolerance: the scratch cells and the built-ins differ by summation order only
ATOL, RTOL = 1e-4, 1e-3
_SHAPE = {"T": 7, "B": 3, "I": 6, "H": 5}


class ParityError(AssertionError):
    """A scratch implementation that does not compute what its built-in twin computes."""


def _parts(state) -> tuple[Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)


def _max_diff(a: Tensor, b: Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0


def twin_difference(
    arch: str,
    impl: str = "scratch",
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Largest |scratch − built-in| over outputs, final states and gradients (padded and
    packed input): {"out", "state", "grad"}."""
    spec = architecture(arch)
    if spec.builtin is None or spec.scratch is None:
        raise ValueError(f"{arch!r} has no scratch/built-in pair to compare")
    dims = dict(
        input_size=_SHAPE["I"],
        hidden_size=_SHAPE["H"],
        num_layers=num_layers,
        bidirectional=bidirectional,
        device=device,
    )
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mine = build(arch, impl, **dims)
    twin = build(arch, "builtin", **dims)
    twin.load_state_dict(mine.state_dict())
    x = torch.randn(_SHAPE["T"], _SHAPE["B"], _SHAPE["I"], generator=gen).to(device)
    lengths = torch.tensor([4, _SHAPE["T"], 2])
    worst = {"out": 0.0, "state": 0.0, "grad": 0.0}
    for inp in (x, pack_padded(x, lengths)):
        results = []
        for model in (mine, twin):
            model.zero_grad(set_to_none=True)
            out, state = model(inp)
            data = out.data if hasattr(out, "batch_sizes") else out
            (data.square().sum() + sum(s.sum() for s in _parts(state))).backward()
            grads = {n: p.grad for n, p in model.named_parameters()}
            results.append((data, _parts(state), grads))
        (o1, s1, g1), (o2, s2, g2) = results
        worst["out"] = max(worst["out"], _max_diff(o1, o2))
        worst["state"] = max(
            [worst["state"], *(_max_diff(a, b) for a, b in zip(s1, s2, strict=True))]
        )
        worst["grad"] = max([worst["grad"], *(_max_diff(g1[n], g2[n]) for n in g1)])
    return worst


def check_twin(arch: str, impl: str = "scratch", **kwargs) -> dict[str, float]:
    """twin_difference, raising ParityError beyond ATOL + RTOL (per quantity, against the
    built-in's own magnitude of 1: the batch is unit-scale)."""
    diff = twin_difference(arch, impl, **kwargs)
    bad = {k: v for k, v in diff.items() if not v <= ATOL + RTOL}
    if bad:
        worst = ", ".join(f"{k} {v:.3g}" for k, v in bad.items())
        raise ParityError(
            f"{arch} {impl} differs from its built-in twin "
            f"({architecture(arch).builtin.__name__}): max |difference| {worst} "
            f"(tolerance {ATOL + RTOL:g}); fix the cell's step, or register it without a twin"
        )
    return diff
