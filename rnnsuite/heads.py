"""Acceptor and transducer heads (Element-Research's two ways to read an RNN).

An acceptor reads one output per sequence — the last valid step — for
classification; a transducer reads every step, for tagging and language
modelling. Both work on padded tensors and on PackedSequences.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence


def last_step(out: Tensor | PackedSequence, batch_first: bool = False) -> Tensor:
    """Output at each sequence's own last valid step: (B, F)."""
    if isinstance(out, PackedSequence):
        padded, lengths = pad_packed_sequence(out)  # (T, B, F) in the caller's batch order
        rows = torch.arange(padded.shape[1], device=padded.device)
        return padded[(lengths - 1).to(padded.device), rows]
    if out.dim() == 2:  # one unbatched sequence (T, F)
        return out[-1]
    return out[:, -1] if batch_first else out[-1]


class Acceptor(nn.Module):
    """rnn → output at the last valid step → head. Returns (head output, state)."""

    def __init__(self, rnn: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = head

    @property
    def rnnsuite_inner(self) -> nn.Module:
        return self.rnn

    def forward(self, x: Tensor | PackedSequence, state=None):
        out, state = self.rnn(x, state)
        return self.head(last_step(out, getattr(self.rnn, "batch_first", False))), state


class Transducer(nn.Module):
    """rnn → head at every step (PackedSequence in, PackedSequence out)."""

    def __init__(self, rnn: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = head

    @property
    def rnnsuite_inner(self) -> nn.Module:
        return self.rnn

    def forward(self, x: Tensor | PackedSequence, state=None):
        out, state = self.rnn(x, state)
        if isinstance(out, PackedSequence):
            y = self.head(out.data)
            return PackedSequence(
                y, out.batch_sizes, out.sorted_indices, out.unsorted_indices
            ), state
        return self.head(out), state
