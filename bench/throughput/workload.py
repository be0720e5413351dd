"""One cell made runnable: model, inputs, and the two callables that get timed.

``Workload(cell)`` builds the recurrent module in the cell's implementation,
wraps it with the cell's regularizer, makes a seeded batch (padded tensor, or
a PackedSequence of the same batch with the cell's lengths, unsorted), and
offers

* ``forward()``  — inference: eval mode, no_grad, one call of the model;
* ``train()``    — one training step: zero grads, forward in train mode, loss
  (masked MSE to a fixed random target, plus AR/TAR where the regularizer
  says so), backward, and the optimizer step when the cell names one.

Everything the timed callables touch is built beforehand, so they hold only
the work being measured. Regularizers (AWD-LSTM's, from rnnsuite.regularizers):
``weight_drop`` (DropConnect p=0.5 on every weight_hh), ``locked_dropout``
(variational dropout 0.3 on the input, 0.4 on the output), ``embedding_dropout``
(token ids → Embedding(1000, I) with whole-word dropout 0.1), ``ar_tar``
(AR α=2 on the output, TAR β=1 on the raw output), ``awd`` (all of them, and
dropout 0.25 between layers).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

import rnnsuite
from rnnsuite.regularizers import EmbeddingDropout, LockedDropout, WeightDrop, ar_loss, tar_loss

from . import lengths as lengths_mod
from .cells import Cell
from .impls import build_rnn

VOCAB = 1000


class Net(nn.Module):
    """embedding? → locked dropout? → rnn (weight-dropped?) → locked dropout?"""

    def __init__(self, rnn: nn.Module, reg: str, input_size: int) -> None:
        super().__init__()
        uses = _uses(reg)
        self.rnn = WeightDrop(rnn, 0.5) if "weight_drop" in uses else rnn
        self.embed: EmbeddingDropout | None = None
        if "embedding_dropout" in uses:
            self.embed = EmbeddingDropout(nn.Embedding(VOCAB, input_size), 0.1)
        locked = "locked_dropout" in uses
        self.drop_in = LockedDropout(0.3) if locked else None
        self.drop_out = LockedDropout(0.4) if locked else None

    def forward(self, inp: Tensor | PackedSequence, lengths: Tensor | None):
        x = self.embed(inp) if self.embed is not None else inp
        if self.drop_in is not None:
            x = self.drop_in(x)
        if lengths is not None and not isinstance(x, PackedSequence):
            x = rnnsuite.pack_padded(x, lengths)
        raw, _ = self.rnn(x)
        out = self.drop_out(raw) if self.drop_out is not None else raw
        return out, raw


def _uses(reg: str) -> set[str]:
    if reg == "awd":
        return {"weight_drop", "locked_dropout", "embedding_dropout", "ar_tar"}
    return {reg} - {"none"}


def _data(x: Tensor | PackedSequence) -> Tensor:
    return x.data if isinstance(x, PackedSequence) else x


class Workload:
    """A cell's model, batch, and timed callables (see the module docstring)."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        dev = torch.device(cell.device)
        self.device = dev
        dirs = 2 if cell.bidirectional else 1
        self.lengths, self.length_info = lengths_mod.draw(cell.lengths, cell.T, cell.B, cell.seed)
        uses = _uses(cell.reg)
        rnn = build_rnn(
            cell.arch,
            cell.impl,
            input_size=cell.I,
            hidden_size=cell.H,
            num_layers=cell.layers,
            bidirectional=cell.bidirectional,
            seed=cell.seed,
            dropout=0.25 if cell.reg == "awd" and cell.layers > 1 else 0.0,
        )
        torch.manual_seed(cell.seed + 1)
        self.net = Net(rnn, cell.reg, cell.I).to(dev)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.refresh_modules()
        self._no_grad = torch.no_grad()  # one context object, entered per call

        g = torch.Generator().manual_seed(cell.seed + 2)
        T, B = cell.T, cell.B
        lengths_t = torch.tensor(self.lengths, dtype=torch.int64)
        if "embedding_dropout" in uses:
            x: Tensor = torch.randint(0, VOCAB, (T, B), generator=g)
        else:
            x = torch.randn(T, B, cell.I, generator=g)
        target = torch.randn(T, B, cell.H * dirs, generator=g)
        mask = (torch.arange(T).unsqueeze(1) < lengths_t.unsqueeze(0)).unsqueeze(-1)
        self.packed = cell.input == "packed"
        if self.packed:
            # Pack outside the timed call when the input is already features; with an
            # embedding the features only exist inside the call, so packing happens there.
            if "embedding_dropout" in uses:
                self.inp: Tensor | PackedSequence = x.to(dev)
                self.call_lengths: Tensor | None = lengths_t
            else:
                self.inp = rnnsuite.pack_padded(x, lengths_t).to(dev)
                self.call_lengths = None
            self.target = rnnsuite.pack_padded(target, lengths_t).data.to(dev)
            self.mask = None
        else:
            self.inp = x.to(dev)
            self.call_lengths = None
            self.target = target.to(dev)
            self.mask = mask.to(target.dtype).to(dev)
        self.n_valid = int(lengths_t.sum()) * cell.H * dirs
        self.ar_tar = "ar_tar" in uses
        self.optimizer = self._make_optimizer(cell.optimizer)
        self._initial = copy.deepcopy(self.net.state_dict())

    # -- the work ----------------------------------------------------------------------------
    def _make_optimizer(self, name: str) -> torch.optim.Optimizer | None:
        if name == "sgd":
            return torch.optim.SGD(self.params, lr=0.1)
        if name == "adam":
            return torch.optim.Adam(self.params, lr=1e-3)
        return None

    def loss(self, out, raw) -> Tensor:
        if self.packed:
            o = _data(out)
            loss = (o - self.target).pow(2).sum() / self.n_valid
        else:
            loss = ((out - self.target).pow(2) * self.mask).sum() / self.n_valid
        if self.ar_tar:
            loss = loss + ar_loss(_data(out), 2.0)
            raw_t = pad_packed_sequence(raw)[0] if isinstance(raw, PackedSequence) else raw
            loss = loss + tar_loss(raw_t, 1.0)
        return loss

    def refresh_modules(self) -> None:
        """Read the model's module tree for the mode switch again (after changing it)."""
        self._modules = list(self.net.modules())
        # a ScriptModule keeps its flag in C++; a module with its own train() wants it run
        self._direct = all(
            type(m).train is nn.Module.train and not isinstance(m, torch.jit.ScriptModule)
            for m in self._modules
        )

    def _set_mode(self, training: bool) -> None:
        """net.train(training): where no module has its own train(), by setting each
        module's flag straight from a list (measured here 4.7 µs a call for net.eval() on a
        one-layer model, a 3.6% harness share of a 0.13 ms forward; the list, under 1)."""
        if not self._direct:
            self.net.train(training)
            return
        for m in self._modules:
            m.__dict__["training"] = training

    def forward(self) -> None:
        self._set_mode(False)
        with self._no_grad:
            self.net(self.inp, self.call_lengths)

    def train(self, optimizer: torch.optim.Optimizer | None = None) -> Tensor:
        self._set_mode(True)
        for p in self.params:
            p.grad = None
        out, raw = self.net(self.inp, self.call_lengths)
        loss = self.loss(out, raw)
        loss.backward()
        opt = optimizer if optimizer is not None else self.optimizer
        if opt is not None:
            opt.step()
        return loss.detach()

    def harness_only(self, mode: str) -> None:
        """What the timed callable of ``mode`` does besides the model's work (mode switch,
        clearing grads): timed separately, it is the harness's share of a call."""
        if mode == "train":
            self._set_mode(True)
            for p in self.params:
                p.grad = None
        else:
            self._set_mode(False)
            with self._no_grad:
                pass

    # -- deterministic quantities -----------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial weights, a fresh optimizer, and the cell's RNG state."""
        self.net.load_state_dict(self._initial)
        self.optimizer = self._make_optimizer(self.cell.optimizer)
        torch.manual_seed(self.cell.seed + 3)

    def losses(self, steps: int) -> list[float]:
        """Losses of ``steps`` training steps from the initial weights (SGD if no optimizer)."""
        self.reset()
        opt = self.optimizer or torch.optim.SGD(self.params, lr=0.1)
        out = [float(self.train(opt)) for _ in range(steps)]
        self.reset()
        return out

    def saved_bytes(self) -> dict[str, int]:
        """Bytes of activations autograd saves for backward in one training forward.

        Counted with saved_tensors_hooks over unique storages, leaving out the
        parameters and the input batch (they exist whether or not backward runs).
        Deterministic: it depends on shapes and the code path only.
        """
        exclude = {p.untyped_storage().data_ptr() for p in self.net.parameters()}
        for t in (self.inp, self.target):
            exclude.add(_data(t).untyped_storage().data_ptr())
        storages: dict[int, int] = {}
        count = 0

        def pack(t: Tensor) -> Tensor:
            nonlocal count
            count += 1
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in exclude:
                storages[ptr] = max(storages.get(ptr, 0), st.nbytes())
            # Not ``t`` itself: a saved output that holds its own grad_fn would make a
            # reference cycle autograd never frees (a leak per call).
            return t.detach()

        self.net.train()
        torch.manual_seed(self.cell.seed + 3)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out, raw = self.net(self.inp, self.call_lengths)
            loss = self.loss(out, raw)
        del loss, out, raw
        return {"saved_bytes": int(sum(storages.values())), "saved_tensors": count}
