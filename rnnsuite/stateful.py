"""Carry state across calls, as Element-Research's ``Sequencer:remember()``.

For truncated back-propagation through time: each call starts from the final
state of the previous call, detached so gradients stop at the call boundary.
``remember(mode)`` says when state is carried: "both" (train and eval),
"train", "eval", or "neither"; otherwise ``forget()`` runs before the call.
Switching between train() and eval() also forgets, so state never leaks from
training into evaluation (fastai's ModelReseter does the same per epoch).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .checks import batch_size_of

REMEMBER_MODES = ("both", "train", "eval", "neither")


def _detach(state: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(s.detach() for s in state)


class Stateful(nn.Module):
    """Wrap an rnnsuite recurrent module so its state persists between calls."""

    def __init__(self, rnn: nn.Module, remember: str = "both") -> None:
        super().__init__()
        self.rnn = rnn
        self.state: Tensor | tuple[Tensor, ...] | None = None
        self.mode = "both"
        self.remember(remember)

    @property
    def rnnsuite_inner(self) -> nn.Module:
        return self.rnn

    def remember(self, mode: str = "both") -> Stateful:
        if mode not in REMEMBER_MODES:
            raise ValueError(f"remember({mode!r}): mode must be one of {', '.join(REMEMBER_MODES)}")
        self.mode = mode
        return self

    def forget(self) -> Stateful:
        self.state = None
        return self

    def remembers(self) -> bool:
        """Whether the next call starts from the carried state (depends on train/eval)."""
        return self.mode == "both" or self.mode == ("train" if self.training else "eval")

    def train(self, mode: bool = True) -> Stateful:
        if mode != self.training:
            self.forget()
        return super().train(mode)

    def forward(self, x: Tensor | PackedSequence):
        if not self.remembers():
            self.forget()
        state = self.state
        if state is not None:
            held = (state if isinstance(state, Tensor) else state[0]).shape[-2]
            batch = batch_size_of(x, getattr(self.rnn, "batch_first", False))
            if batch is not None and batch != held:
                raise ValueError(
                    f"carried state is for batch {held} but this call has batch {batch}: "
                    "call forget() before changing the batch size (or drop the last short batch)"
                )
        out, new_state = self.rnn(x, state)
        self.state = _detach(new_state)
        return out, new_state
