"""Udacity's TV-script model: Embedding → stacked RNN → Linear on the last step only.

The course's network maps ``sequence_length`` word ids to the *next* word, so only the
final step's output is read. The course runs the Linear over every step and then keeps
the last row; this module projects the last step only — the same logits, without
paying ``sequence_length`` times for the vocabulary-sized matmul.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import architecture, build

Hidden = Tensor | tuple[Tensor, Tensor]


class ScriptRNN(nn.Module):
    """Next-word model of the TV-script project over any registered architecture."""

    def __init__(
        self,
        vocab_size: int,
        output_size: int,
        embedding_dim: int,
        hidden_dim: int,
        n_layers: int,
        dropout: float = 0.5,
        *,
        arch: str = "lstm",
        impl: str = "builtin",
    ) -> None:
        super().__init__()
        self.vocab_size, self.output_size = vocab_size, output_size
        self.embedding_dim, self.hidden_dim, self.n_layers = embedding_dim, hidden_dim, n_layers
        self.arch, self.impl = arch, impl
        self.state_size = architecture(arch).cell.state_size
        # Dropout acts *between* stacked layers only (torch's convention, which the scratch
        # stack mirrors); with one layer there is nowhere to put it, and torch warns.
        self.dropout = float(dropout) if n_layers > 1 else 0.0
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = build(
            arch,
            impl,
            input_size=embedding_dim,
            hidden_size=hidden_dim,
            num_layers=n_layers,
            batch_first=True,
            dropout=self.dropout,
        )
        self.fc = nn.Linear(hidden_dim, output_size)

    def forward(self, ids: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """ids (B, T) → (logits (B, output_size) for the word after step T, final state)."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be (batch, time), got shape {tuple(ids.shape)}")
        out, hidden = self.rnn(self.embedding(ids.long()), hidden)
        return self.fc(out[:, -1]), hidden

    def init_hidden(self, batch_size: int) -> Hidden:
        """Zero state, (h, c) for LSTM kinds: what the course passes at the start of a batch."""
        weight = self.fc.weight
        zeros = weight.new_zeros(self.n_layers, batch_size, self.hidden_dim)
        return (zeros, torch.zeros_like(zeros)) if self.state_size == 2 else zeros
