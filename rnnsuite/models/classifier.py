"""Embedding → RNN → readout → Linear: AI-For-Beginners' three AG News classifiers.

readout "mean" averages every step, padding included (RNNClassifier); "last"
takes the top layer's final h (LSTMClassifier) — on a padded batch that is the
state after the padding, on a packed batch (LSTMPackClassifier) each
sequence's own last step, which is why packing changes the accuracy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..packing import pack_padded
from ..registry import build


class TextClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_size: int = 32,
        num_classes: int = 4,
        *,
        arch: str = "rnn",
        impl: str = "builtin",
        readout: str = "mean",
        packed: bool = False,
        embed_init: str = "default",
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        if readout not in ("mean", "last"):
            raise ValueError(f"readout must be 'mean' or 'last', got {readout!r}")
        if embed_init not in ("default", "randn-0.5"):
            raise ValueError(f"embed_init must be 'default' or 'randn-0.5', got {embed_init!r}")
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        if embed_init == "randn-0.5":  # the seed's LSTM classifiers: N(0,1) - 0.5
            with torch.no_grad():
                self.embedding.weight.copy_(torch.randn_like(self.embedding.weight) - 0.5)
        self.rnn = build(
            arch,
            impl,
            input_size=embed_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
        )
        self.fc = nn.Linear(hidden_size, num_classes)
        self.readout, self.packed = readout, packed

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = self.embedding(ids)
        if self.packed:
            if lengths is None:
                raise ValueError("a packed classifier needs the lengths of the batch")
            out, state = self.rnn(pack_padded(x, lengths, batch_first=True))
        else:
            out, state = self.rnn(x)
        if self.readout == "mean":
            if self.packed:
                raise ValueError(
                    "readout='mean' is the seed's padded model; use 'last' with packing"
                )
            return self.fc(out.mean(dim=1))
        h = state[0] if isinstance(state, tuple) else state
        return self.fc(h[-1])
