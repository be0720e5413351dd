"""Packing helpers that check their arguments (torch's own give opaque errors)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .checks import check_lengths


def pack_padded(
    x: Tensor, lengths: Sequence[int] | Tensor, batch_first: bool = False
) -> PackedSequence:
    """Pack a padded batch with unsorted lengths; lengths stay on the CPU as torch needs."""
    if x.dim() < 2:
        raise ValueError(f"can only pack a (T, B, ...) or (B, T, ...) tensor, got {tuple(x.shape)}")
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    lengths_t = check_lengths(lengths, steps, batch)
    return pack_padded_sequence(x, lengths_t, batch_first=batch_first, enforce_sorted=False)


def unpack(
    packed: PackedSequence, batch_first: bool = False, total_length: int | None = None
) -> tuple[Tensor, Tensor]:
    """Inverse of pack_padded: (padded tensor with zeros, lengths)."""
    return pad_packed_sequence(packed, batch_first=batch_first, total_length=total_length)
