"""Udacity's Sentiment RNN: many-to-one over left-padded reviews, sigmoid of the last step.

Reviews are padded on the *left* (``pad_features``), so the last step is always real
text and the prediction is read there. The course applies dropout (0.3) and the Linear
to every step, then keeps the last sigmoid; projecting the last step only is the same.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..registry import build


class SentimentRNN(nn.Module):
    """Embedding → stacked RNN → dropout → Linear → sigmoid, read at the last step."""

    def __init__(
        self,
        vocab_size: int,
        output_size: int = 1,
        *,
        embedding_dim: int = 400,
        hidden_dim: int = 256,
        n_layers: int = 2,
        dropout: float = 0.5,
        output_dropout: float = 0.3,
        arch: str = "lstm",
        impl: str = "builtin",
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = build(
            arch,
            impl,
            input_size=embedding_dim,
            hidden_size=hidden_dim,
            num_layers=n_layers,
            batch_first=True,
            dropout=float(dropout) if n_layers > 1 else 0.0,  # between layers only
        )
        self.drop = nn.Dropout(output_dropout)
        self.fc = nn.Linear(hidden_dim, output_size)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) → probabilities (B,) (or (B, output_size) when output_size > 1)."""
        out, _ = self.rnn(self.embedding(ids.long()))  # state starts at zero per batch
        probs = self.fc(self.drop(out[:, -1])).sigmoid()
        return probs.squeeze(-1) if self.output_size == 1 else probs
