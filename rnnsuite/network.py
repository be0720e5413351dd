"""The scratch twins of nn.RNN, nn.LSTM and nn.GRU: torch's modules with rnnsuite's maths.

``rnnsuite.LSTM`` *is* an ``nn.LSTM`` subclass: torch's constructor builds it (signature,
argument checks and their exception types, ``device=``/``dtype=``, ``proj_size``), so
its parameters are torch's own registered ``weight_ih_l0`` ... ``bias_hh_l1_reverse``
(``weight_hr_l0`` with a projection), and ``state_dict``, ``load_state_dict`` (strict, both
ways), parametrizations, ``all_weights``, ``_flat_weights`` and the repr are torch's.
Only ``forward`` is rnnsuite's: torch's input and state checks, then the scratch cells
unrolled by the one layer machinery (rnnsuite.layers). A cell holds no parameters here:
it reads the module's by name when it is asked for them (cells.base.Cell), so whatever
the module holds at call time — a parametrized weight, a ``functional_call`` substitute —
is what is computed with.

The scratch-only architectures (``PeepholeLSTM``, ``ChoGRU``) are ``nn.RNNBase``
subclasses with the same conventions (the peepholes are ``weight_ci_l0`` ...).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .cells import (
    Cell,
    ChoGRUCell,
    ElmanCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    State,
)
from .cells.plain import plain_ops
from .checks import ShapeError, check_input, check_state, check_state_type
from .layers import BidirectionalLayer, Layer

StateArg = Tensor | tuple[Tensor, Tensor] | None


def _functorch_active() -> bool:
    return bool(torch._C._are_functorch_transforms_active())


class ScratchRNNBase(nn.RNNBase):
    """What every scratch twin adds to torch's RNNBase: the cells and their forward."""

    arch: ClassVar[str]
    cell_type: ClassVar[type[Cell]]
    state_size: ClassVar[int] = 1

    def _make_layers(self) -> None:
        D = 2 if self.bidirectional else 1
        width = self.proj_size or self.hidden_size
        layers: list[nn.Module] = []
        for k in range(self.num_layers):
            size_in = self.input_size if k == 0 else width * D
            cells = [self._cell(size_in, f"_l{k}{sfx}") for sfx in ("", "_reverse")[:D]]
            layers.append(BidirectionalLayer(*cells) if D == 2 else Layer(cells[0]))
        # a plain list, not submodules: the parameters are this module's, the cells own none
        self.__dict__["_scratch_layers"] = layers

    def _cell(self, size_in: int, suffix: str) -> Cell:
        return self.cell_type(size_in, self.hidden_size, self.bias, owner=self, suffix=suffix)

    @property
    def layers(self) -> list[nn.Module]:
        """The layer machinery's layers (rnnsuite.layers), one per layer of the stack."""
        return self.__dict__["_scratch_layers"]

    def flatten_parameters(self) -> None:
        """A no-op: the scratch cells read the parameters where they are (no cuDNN buffer)."""

    # -- parameters under torch's names -------------------------------------------
    def cells(self) -> list[tuple[str, Cell]]:
        """(torch-style suffix, cell) for every layer and direction, in torch's order."""
        out: list[tuple[str, Cell]] = []
        for layer in self.layers:
            if isinstance(layer, BidirectionalLayer):
                out.append((layer.forward_layer.cell._suffix, layer.forward_layer.cell))
                out.append((layer.backward_layer.cell._suffix, layer.backward_layer.cell))
            else:
                out.append((layer.cell._suffix, layer.cell))
        return out

    def canonical_parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.named_parameters())

    # -- implementations -----------------------------------------------------------------
    def use_native(self, enabled: bool = True) -> ScratchRNNBase:
        """Switch the native whole-sequence loops on or off for every cell (off: torch ops
        alone, the ``scratch_torch`` implementation); returns the model."""
        for _, cell in self.cells():
            cell.native = bool(enabled)
        return self

    def compile_steps(self) -> ScratchRNNBase:
        """Compile each cell's per-step function with torch.compile, in place (the
        ``compiled`` implementation: rnnsuite.compiled); returns the model."""
        from .compiled import compile_steps

        return compile_steps(self)

    # -- forward ------------------------------------------------------------------------
    def forward(self, input: Tensor | PackedSequence, hx: StateArg = None):
        packed = isinstance(input, PackedSequence)
        if packed:
            x, batch_sizes, sorted_indices, unsorted_indices = input
            batched = True
        else:
            x, batched = self._batched_input(input)
            batch_sizes = sorted_indices = unsorted_indices = None
        hx = self._initial_state(x, batch_sizes, hx, batched, sorted_indices)
        self._check(input, x, hx, batch_sizes)
        data = x.transpose(0, 1) if self.batch_first and not packed else x
        sizes = None if batch_sizes is None else batch_sizes.tolist()
        rows = sizes[0] if sizes else data.shape[1]
        with plain_ops(torch.jit.is_tracing() or _functorch_active() or rows == 0):
            data, final = self._run(data, sizes, hx)
        if packed:
            out = PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)
            final = self._permute(final, unsorted_indices)
        elif not batched:
            out = data.squeeze(1)
            final = tuple(s.squeeze(1) for s in final)
        else:
            out = data.transpose(0, 1) if self.batch_first else data
        return out, (final[0] if self.state_size == 1 else final)

    def _batched_input(self, input: object) -> tuple[Tensor, bool]:
        if not isinstance(input, Tensor):
            raise TypeError(
                f"input must be a torch.Tensor or a PackedSequence, got {type(input).__name__}; "
                "convert it with torch.as_tensor(...) or rnnsuite.pack_padded(...)"
            )
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{self._get_name()}: Expected input to be 2D or 3D, got {input.dim()}D tensor "
                "instead; expected dimensions (T, B, I), (B, T, I) with batch_first=True, or "
                "(T, I) for one unbatched sequence"
            )
        if input.dim() == 3:
            return input, True
        return input.unsqueeze(0 if self.batch_first else 1), False

    def _initial_state(self, x, batch_sizes, hx, batched: bool, sorted_indices) -> State:
        """hx as a tuple of (L·D, B, ·) tensors, zeros where none was given, rows in the
        packed batch's sorted order; torch's checks on its number of dimensions."""
        if hx is None:
            rows = int(batch_sizes[0]) if batch_sizes is not None else x.shape[self._batch_dim]
            shape = (self._layers_x_dirs, rows)
            h = x.new_zeros(*shape, self.proj_size or self.hidden_size)
            return (h,) if self.state_size == 1 else (h, x.new_zeros(*shape, self.hidden_size))
        parts = check_state_type(hx, self.state_size)
        want = 3 if batched else 2
        if any(s.dim() != want for s in parts):
            dims = ", ".join(f"{s.dim()}-D" for s in parts)
            raise RuntimeError(
                f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, the state should "
                f"also be {want}-D but got ({dims}) tensor(s)"
            )
        if not batched:
            parts = tuple(s.unsqueeze(1) for s in parts)
        return self._permute(parts, sorted_indices)

    @property
    def _batch_dim(self) -> int:
        return 0 if self.batch_first else 1

    @staticmethod
    def _permute(parts: State, permutation: Tensor | None) -> State:
        if permutation is None:
            return tuple(parts)
        return tuple(s.index_select(1, permutation) for s in parts)

    def _check(self, input, x: Tensor, hx: State, batch_sizes: Tensor | None) -> None:
        """torch's own checks (its messages; a wrong shape raises a RuntimeError, as torch's
        do, that names the fix), then the one torch leaves to its kernels: a sequence needs
        at least one step."""
        try:
            self.check_forward_args(x, hx[0] if self.state_size == 1 else hx, batch_sizes)
        except RuntimeError as err:
            raise ShapeError(f"{err}{self._hint(input, x, hx)}") from None
        check_input(input, self.input_size, self.batch_first)

    def _hint(self, input, x: Tensor, hx: State) -> str:
        """rnnsuite's own message for a shape torch refused (input first, then state)."""
        try:
            check_input(input, self.input_size, self.batch_first)
            if not self.proj_size:
                batch = x.shape[self._batch_dim] if isinstance(input, Tensor) else hx[0].shape[1]
                check_state(
                    hx[0] if self.state_size == 1 else hx,
                    num_states=self.state_size,
                    layers_x_directions=self._layers_x_dirs,
                    batch=batch,
                    hidden_size=self.hidden_size,
                )
        except ValueError as ours:
            return f"; {ours}"
        return ""

    @property
    def _layers_x_dirs(self) -> int:
        return self.num_layers * (2 if self.bidirectional else 1)

    def _run(self, data: Tensor, sizes: list[int] | None, hx: State) -> tuple[Tensor, State]:
        finals: list[State] = []
        last = self.num_layers - 1
        for k, layer in enumerate(self.layers):
            if isinstance(layer, BidirectionalLayer):
                pair = (tuple(s[2 * k] for s in hx), tuple(s[2 * k + 1] for s in hx))
                data, (sf, sb) = layer(data, sizes, pair)
                finals += [sf, sb]
            else:
                data, sk = layer(data, sizes, tuple(s[k] for s in hx))
                finals.append(sk)
            if self.dropout > 0 and self.training and k < last:
                data = F.dropout(data, self.dropout, training=True)
        final = tuple(torch.stack([f[j] for f in finals]) for j in range(self.state_size))
        return data, final


class _LSTMKind(ScratchRNNBase):
    """The state is (h, c): torch's LSTM checks and permutation serve."""

    state_size = 2
    check_forward_args = nn.LSTM.check_forward_args
    get_expected_cell_size = nn.LSTM.get_expected_cell_size


class RNN(ScratchRNNBase, nn.RNN):
    """Scratch twin of nn.RNN (Elman, tanh or relu)."""

    arch = "rnn"
    cell_type = ElmanCell

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._make_layers()

    def _cell(self, size_in: int, suffix: str) -> Cell:
        return ElmanCell(
            size_in, self.hidden_size, self.bias, self.nonlinearity, owner=self, suffix=suffix
        )


class LSTM(_LSTMKind, nn.LSTM):
    """Scratch twin of nn.LSTM, ``proj_size`` included."""

    arch = "lstm"
    cell_type = LSTMCell

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._make_layers()

    def _cell(self, size_in: int, suffix: str) -> Cell:
        return LSTMCell(
            size_in,
            self.hidden_size,
            self.bias,
            proj_size=self.proj_size,
            owner=self,
            suffix=suffix,
        )


class GRU(ScratchRNNBase, nn.GRU):
    """Scratch twin of nn.GRU (torch's candidate r ⊙ (W_hn h + b_hn))."""

    arch = "gru"
    cell_type = GRUCell

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._make_layers()


def _scratch_only_init(module: ScratchRNNBase, mode: str, args, kwargs) -> None:
    nn.RNNBase.__init__(module, mode, *args, **kwargs)
    if module.proj_size:
        raise ValueError(f"proj_size argument is only supported for LSTM, not {module.arch}")


class PeepholeLSTM(_LSTMKind):
    """LSTM with diagonal peepholes (scratch only); peepholes ``weight_ci_l0`` ..."""

    arch = "lstm_peephole"
    cell_type = PeepholeLSTMCell
    _peepholes_ready = False  # RNNBase.__init__'s own reset_parameters() draws nothing

    def __init__(self, *args, **kwargs) -> None:
        _scratch_only_init(self, "LSTM", args, kwargs)
        factory = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype")}
        for names in self._all_weights:
            suffix = names[0].removeprefix("weight_ih")
            extra = [p + suffix for p in PeepholeLSTMCell.peephole_names]
            for name in extra:
                setattr(self, name, nn.Parameter(torch.empty(self.hidden_size, **factory)))
            names.extend(extra)
            self._flat_weights_names.extend(extra)
        self._init_flat_weights()
        self._peepholes_ready = True
        self.reset_parameters()
        self._make_layers()

    def reset_parameters(self) -> None:
        """U(±1/√H) in the order the cells drew before the twins existed, so that a seed
        gives the weights the committed runs were made with: per layer-direction (forward
        before reverse), the matrices and biases, then all of them again with the peepholes."""
        if not self._peepholes_ready:
            return
        bound = 1.0 / self.hidden_size**0.5 if self.hidden_size > 0 else 0.0
        for names in self._all_weights:
            peep = tuple(
                p + names[0].removeprefix("weight_ih") for p in self.cell_type.peephole_names
            )
            base = [n for n in names if n not in peep]
            for name in [*base, *names]:
                nn.init.uniform_(getattr(self, name), -bound, bound)


class ChoGRU(ScratchRNNBase):
    """GRU with Cho et al.'s candidate W_hn (r ⊙ h) (scratch only)."""

    arch = "gru_cho"
    cell_type = ChoGRUCell

    def __init__(self, *args, **kwargs) -> None:
        _scratch_only_init(self, "GRU", args, kwargs)
        self._make_layers()


class ScratchRNN(ScratchRNNBase):
    """The network of any scratch cell with torch's four parameters a layer-direction
    (``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), ``bias_ih``, ``bias_hh``; G is the
    cell's ``gates``): what ``rnnsuite.register`` builds for a cell it is given alone, so
    a user's own cell gets torch's constructor, checks, parameter names, state_dict and
    the layer machinery without a line of its own. The state is (h,) or, with a cell
    whose ``state_size`` is 2, (h, c), as nn.LSTM's.

    Subclass it with ``arch`` and ``cell_type`` (``register`` does this for you)."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("proj_size"):
            raise ValueError(f"proj_size argument is only supported for LSTM, not {self.arch}")
        # torch's checks and bookkeeping, then the parameters at the cell's gate count
        nn.RNNBase.__init__(self, "RNN_TANH", *args, **kwargs)
        self.mode = self.arch
        factory = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype")}
        rows = self.cell_type.gates * self.hidden_size
        for name in self._flat_weights_names:
            old = getattr(self, name)
            shape = (rows, *old.shape[1:])
            setattr(self, name, nn.Parameter(torch.empty(shape, **factory)))
        self._init_flat_weights()
        self.reset_parameters()
        self._make_layers()

    def check_forward_args(self, input, hidden, batch_sizes) -> None:
        self.check_input(input, batch_sizes)
        expected = self.get_expected_hidden_size(input, batch_sizes)
        parts = hidden if isinstance(hidden, tuple) else (hidden,)
        for part in parts:
            self.check_hidden_size(part, expected)
