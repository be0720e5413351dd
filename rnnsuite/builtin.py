"""torch's built-in RNNs under rnnsuite's call convention.

Thin subclasses: parameters, state_dict and kernels are torch's own; they add
``arch``, the keyword ``state=`` and the same argument checks as the scratch
modules, so a runner can treat both implementations alike.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .checks import batch_size_of, check_input, check_state


class _BuiltinMixin:
    arch: str
    state_size: int

    def forward(self, x: Tensor | PackedSequence, state=None):  # type: ignore[override]
        check_input(x, self.input_size, self.batch_first)  # type: ignore[attr-defined]
        if state is not None:
            parts = check_state(
                state,
                num_states=self.state_size,
                layers_x_directions=self.num_layers * (2 if self.bidirectional else 1),  # type: ignore[attr-defined]
                batch=batch_size_of(x, self.batch_first),  # type: ignore[attr-defined]
                hidden_size=self.hidden_size,  # type: ignore[attr-defined]
            )
            state = parts[0] if self.state_size == 1 else parts
        return super().forward(x, state)  # type: ignore[misc]


class BuiltinRNN(_BuiltinMixin, nn.RNN):
    arch = "rnn"
    state_size = 1


class BuiltinLSTM(_BuiltinMixin, nn.LSTM):
    arch = "lstm"
    state_size = 2


class BuiltinGRU(_BuiltinMixin, nn.GRU):
    arch = "gru"
    state_size = 1
