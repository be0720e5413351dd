"""AWDStack: the regularizers composed the way AWD-LSTM composes them.

Single-layer recurrent modules (any architecture, any implementation) with
locked dropout on the input (dropouti), between layers (dropouth) and on the
output (dropouto), and DropConnect on every hidden-to-hidden weight (wdrop).
The last layer may have its own size so the decoder can be tied to the
embedding. Returns the raw last-layer output too, which TAR needs.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .registry import build
from .regularizers import LockedDropout, WeightDrop

LayerState = Tensor | tuple[Tensor, Tensor]


class AWDStack(nn.Module):
    def __init__(
        self,
        arch: str,
        impl: str = "scratch",
        *,
        input_size: int,
        hidden_size: int,
        num_layers: int = 3,
        output_size: int | None = None,
        dropouti: float = 0.0,
        dropouth: float = 0.0,
        dropouto: float = 0.0,
        wdrop: float = 0.0,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        out_size = hidden_size if output_size is None else output_size
        sizes = [input_size] + [hidden_size] * (num_layers - 1) + [out_size]
        layers: list[nn.Module] = []
        for k in range(num_layers):
            rnn = build(
                arch, impl, input_size=sizes[k], hidden_size=sizes[k + 1], batch_first=batch_first
            )
            layers.append(WeightDrop(rnn, wdrop) if wdrop > 0 else rnn)
        self.layers = nn.ModuleList(layers)
        self.input_drop = LockedDropout(dropouti, batch_first)
        self.hidden_drop = LockedDropout(dropouth, batch_first)
        self.output_drop = LockedDropout(dropouto, batch_first)

    def forward(
        self, x: Tensor | PackedSequence, states: list[LayerState] | None = None
    ) -> tuple[Tensor | PackedSequence, list[LayerState], Tensor | PackedSequence]:
        """Returns (dropped output, per-layer final states, raw last-layer output)."""
        if states is not None and len(states) != len(self.layers):
            raise ValueError(f"states must hold one state per layer ({len(self.layers)})")
        h = self.input_drop(x)
        finals: list[LayerState] = []
        for k, layer in enumerate(self.layers):
            h, state = layer(h, None if states is None else states[k])
            finals.append(state)
            if k < len(self.layers) - 1:
                h = self.hidden_drop(h)
        return self.output_drop(h), finals, h
