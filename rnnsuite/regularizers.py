"""The AWD-LSTM regularizers (Merity et al. 2017) as small composable pieces.

Each dropout is active only in training and the identity in eval:
- EmbeddingDropout drops whole words: rows of the embedding matrix.
- LockedDropout samples one mask per sequence and reuses it at every step
  (variational dropout), for inputs, between layers and on outputs.
- WeightDrop applies DropConnect to hidden-to-hidden weights. It never
  renames or replaces parameters (awd-lstm-lm's trick breaks on current torch,
  pytorch/pytorch#32346); it calls the wrapped module with dropped weights
  through torch.func.functional_call, so it works for scratch and built-in
  modules alike and state_dict keys stay the wrapped module's own.
AR and TAR are loss terms; tie_weights shares the embedding with the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence

from .weights import canonical_parameters


def _check_p(p: float) -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
    return float(p)


class EmbeddingDropout(nn.Module):
    """Drop whole rows of an embedding's weight (a dropped word is zero everywhere)."""

    def __init__(self, embedding: nn.Embedding, p: float = 0.1) -> None:
        super().__init__()
        self.embedding = embedding
        self.p = _check_p(p)

    def row_mask(self) -> Tensor:
        w = self.embedding.weight
        return w.new_empty(w.shape[0], 1).bernoulli_(1 - self.p) / (1 - self.p)

    def forward(self, ids: Tensor) -> Tensor:
        emb = self.embedding
        weight = emb.weight * self.row_mask() if self.training and self.p > 0 else emb.weight
        return F.embedding(
            ids,
            weight,
            emb.padding_idx,
            emb.max_norm,
            emb.norm_type,
            emb.scale_grad_by_freq,
            emb.sparse,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LockedDropout(nn.Module):
    """One dropout mask per sequence, shared by all its time steps."""

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.batch_first = batch_first

    def forward(self, x: Tensor | PackedSequence) -> Tensor | PackedSequence:
        if not self.training or self.p == 0:
            return x
        keep = 1 - self.p
        if isinstance(x, PackedSequence):
            batch = int(x.batch_sizes[0])
            mask = x.data.new_empty(batch, x.data.shape[-1]).bernoulli_(keep) / keep
            row = torch.cat([torch.arange(int(b)) for b in x.batch_sizes]).to(x.data.device)
            return PackedSequence(
                x.data * mask[row], x.batch_sizes, x.sorted_indices, x.unsorted_indices
            )
        if x.dim() != 3:
            raise ValueError(f"LockedDropout expects (T, B, F) or (B, T, F), got {tuple(x.shape)}")
        shape = (x.shape[0], 1, x.shape[2]) if self.batch_first else (1, x.shape[1], x.shape[2])
        return x * (x.new_empty(shape).bernoulli_(keep) / keep)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"


class WeightDrop(nn.Module):
    """DropConnect on named weights of a wrapped module (default: every weight_hh).

    `weights` use torch's names (``weight_hh_l0``, ``weight_hh_l1_reverse``) for
    both implementations; a fresh mask is drawn for every forward call.
    """

    def __init__(self, module: nn.Module, p: float = 0.5, weights: Sequence[str] | None = None):
        super().__init__()
        self.module = module
        self.p = _check_p(p)
        canon = canonical_parameters(module)
        names = (
            list(weights)
            if weights is not None
            else [n for n in canon if n.startswith("weight_hh")]
        )
        missing = [n for n in names if n not in canon]
        if missing or not names:
            raise ValueError(
                f"WeightDrop: no weight(s) {missing or names} in this module; "
                f"available: {', '.join(canon)}"
            )
        path_of = {id(p): path for path, p in module.named_parameters()}
        self.weights = tuple(names)
        self._paths = tuple(path_of[id(canon[n])] for n in names)

    @property
    def rnnsuite_inner(self) -> nn.Module:
        return self.module

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("module"), name)  # batch_first, hidden_size...

    def forward(self, *args, **kwargs):
        if not self.training or self.p == 0:
            return self.module(*args, **kwargs)
        params = dict(self.module.named_parameters())
        dropped = {path: F.dropout(params[path], self.p, training=True) for path in self._paths}
        return functional_call(self.module, dropped, args, kwargs)

    def extra_repr(self) -> str:
        return f"p={self.p}, weights={list(self.weights)}"


def ar_loss(output: Tensor, alpha: float) -> Tensor:
    """Activation regularization: alpha · mean(output²) (on the dropped-out output)."""
    return alpha * output.float().pow(2).mean()


def tar_loss(raw_output: Tensor, beta: float, time_dim: int = 0) -> Tensor:
    """Temporal AR: beta · mean((h_t - h_{t-1})²) over time (on the raw output)."""
    steps = raw_output.shape[time_dim]
    if steps < 2:
        return raw_output.new_zeros(())
    diff = raw_output.narrow(time_dim, 1, steps - 1) - raw_output.narrow(time_dim, 0, steps - 1)
    return beta * diff.float().pow(2).mean()


def tie_weights(decoder: nn.Linear, embedding: nn.Embedding) -> None:
    """Share one matrix between the input embedding and the output layer."""
    if decoder.weight.shape != embedding.weight.shape:
        raise ValueError(
            f"cannot tie: decoder weight {tuple(decoder.weight.shape)} vs embedding "
            f"{tuple(embedding.weight.shape)}; the decoder's input size must equal the "
            "embedding size (add a projection or change hidden_size)"
        )
    decoder.weight = embedding.weight
