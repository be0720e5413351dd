"""fastbook's word-level LMs (LMModel5/6/7) over any architecture and implementation.

Embedding → stacked RNN carried across batches (state detached: truncated BPTT)
→ optional dropout → Linear, optionally tied to the embedding. forward returns
(logits, raw RNN output, dropped output) so AR and TAR can be added to the loss.
reset() is fastai's ModelReseter; switching train/eval also resets.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..registry import build
from ..regularizers import tie_weights
from ..stateful import Stateful


class WordLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        *,
        arch: str = "rnn",
        impl: str = "builtin",
        dropout: float = 0.0,
        tie: bool = False,
    ) -> None:
        super().__init__()
        self.i_h = nn.Embedding(vocab_size, hidden_size)
        self.rnn = Stateful(
            build(
                arch,
                impl,
                input_size=hidden_size,
                hidden_size=hidden_size,
                num_layers=num_layers,
                batch_first=True,
            ),
            remember="both",
        )
        self.drop = nn.Dropout(dropout)
        self.h_o = nn.Linear(hidden_size, vocab_size)
        if tie:
            tie_weights(self.h_o, self.i_h)

    def reset(self) -> None:
        self.rnn.forget()

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raw, _ = self.rnn(self.i_h(ids))
        out = self.drop(raw)
        return self.h_o(out), raw, out
