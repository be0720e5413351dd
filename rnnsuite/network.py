"""ScratchRNN: cells stacked into layers, with torch's call convention.

It mirrors nn.RNN/nn.LSTM/nn.GRU: same constructor arguments, ``out, state =
net(x, state)``, state shaped (layers*directions, B, H) — ``(h, c)`` for LSTM
kinds — padded or packed input, batch_first, dropout between layers in
training. Parameters live in the cells; ``canonical_parameters`` names them as
torch does (``weight_hh_l1_reverse``), which is what copy_weights matches on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .cells import Cell, State
from .checks import batch_size_of, check_input, check_state
from .layers import BidirectionalLayer, Layer

StateArg = Tensor | tuple[Tensor, Tensor] | None


class ScratchRNN(nn.Module):
    """A stack of scratch layers over one cell type, uni- or bidirectional."""

    def __init__(
        self,
        arch: str,
        cell_type: type[Cell],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        **cell_options: object,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.state_size = cell_type.state_size
        self.cell_options = dict(cell_options)
        layers: list[nn.Module] = []
        for k in range(num_layers):
            size_in = input_size if k == 0 else hidden_size * self.num_directions

            def make(size_in: int = size_in) -> Cell:
                return cell_type(size_in, hidden_size, bias, **cell_options)

            layers.append(BidirectionalLayer(make(), make()) if bidirectional else Layer(make()))
        self.layers = nn.ModuleList(layers)

    # -- parameters under torch's names -------------------------------------------
    def cells(self) -> list[tuple[str, Cell]]:
        """(torch-style suffix, cell) for every layer and direction, in torch's order."""
        out: list[tuple[str, Cell]] = []
        for k, layer in enumerate(self.layers):
            if isinstance(layer, BidirectionalLayer):
                out.append((f"_l{k}", layer.forward_layer.cell))
                out.append((f"_l{k}_reverse", layer.backward_layer.cell))
            else:
                out.append((f"_l{k}", layer.cell))
        return out

    def canonical_parameters(self) -> dict[str, nn.Parameter]:
        return {
            name + suffix: p
            for suffix, cell in self.cells()
            for name, p in cell.named_parameters(recurse=False)
        }

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: Tensor | PackedSequence, state: StateArg = None):
        check_input(x, self.input_size)
        batch = batch_size_of(x, self.batch_first)
        unbatched = batch is None
        packed = isinstance(x, PackedSequence)
        batch_sizes: list[int] | None = None
        if packed:
            data, batch_sizes = x.data, x.batch_sizes.tolist()
        else:
            data = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        rows = 1 if unbatched else batch

        if state is None:
            zeros = data.new_zeros(self.num_layers * self.num_directions, rows, self.hidden_size)
            parts: tuple[Tensor, ...] = (zeros,) * self.state_size
        else:
            parts = check_state(
                state,
                num_states=self.state_size,
                layers_x_directions=self.num_layers * self.num_directions,
                batch=batch,
                hidden_size=self.hidden_size,
            )
            if unbatched:
                parts = tuple(s.unsqueeze(1) for s in parts)
            elif packed and x.sorted_indices is not None:
                parts = tuple(s.index_select(1, x.sorted_indices) for s in parts)

        finals: list[State] = []
        for k, layer in enumerate(self.layers):
            if self.bidirectional:
                layer_states = (
                    tuple(s[2 * k] for s in parts),
                    tuple(s[2 * k + 1] for s in parts),
                )
                data, (sf, sb) = layer(data, batch_sizes, layer_states)
                finals += [sf, sb]
            else:
                data, sk = layer(data, batch_sizes, tuple(s[k] for s in parts))
                finals.append(sk)
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                data = F.dropout(data, self.dropout, training=True)

        final = tuple(torch.stack([f[j] for f in finals]) for j in range(self.state_size))
        if packed:
            out: Tensor | PackedSequence = PackedSequence(
                data, x.batch_sizes, x.sorted_indices, x.unsorted_indices
            )
            if x.unsorted_indices is not None:
                final = tuple(s.index_select(1, x.unsorted_indices) for s in final)
        elif unbatched:
            out = data.squeeze(1)
            final = tuple(s.squeeze(1) for s in final)
        else:
            out = data.transpose(0, 1) if self.batch_first else data
        return out, (final[0] if self.state_size == 1 else final)

    def extra_repr(self) -> str:
        s = f"arch={self.arch!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self.bias:
            s += ", bias=False"
        return s
