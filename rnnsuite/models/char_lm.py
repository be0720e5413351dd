"""d2l's character language model: one-hot input → RNN → Linear, state from zero.

init "d2l" reproduces d2l's scratch models (every weight N(0, 0.01²), biases 0,
one output layer drawn the same way); "torch" keeps torch's defaults as d2l's
concise models do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import build


class CharLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 32,
        num_layers: int = 1,
        *,
        arch: str = "lstm",
        impl: str = "builtin",
        init: str = "torch",
        sigma: float = 0.01,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = build(
            arch, impl, input_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers
        )
        self.out = nn.Linear(hidden_size, vocab_size)
        if init == "d2l":
            with torch.no_grad():
                for name, p in self.named_parameters():
                    if "bias" in name:
                        p.zero_()
                    else:
                        p.normal_(0.0, sigma)
        elif init != "torch":
            raise ValueError(f"init must be 'torch' or 'd2l', got {init!r}")

    def forward(self, ids: Tensor, state=None) -> tuple[Tensor, object]:
        """ids (B, T) → logits (B, T, V) and the final state."""
        x = F.one_hot(ids.T, self.vocab_size).to(self.out.weight.dtype)
        out, state = self.rnn(x, state)
        return self.out(out).transpose(0, 1), state

    @torch.no_grad()
    def predict(self, prefix: list[int], num_preds: int) -> list[int]:
        """Warm the state on the prefix, then greedy decoding (d2l's predict)."""
        state, outputs = None, [prefix[0]]
        for i in range(1, len(prefix) + num_preds):
            logits, state = self(
                torch.tensor([[outputs[-1]]], device=self.out.weight.device), state
            )
            outputs.append(prefix[i] if i < len(prefix) else int(logits[0, -1].argmax()))
        return outputs
