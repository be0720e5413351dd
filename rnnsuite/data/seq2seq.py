"""Sequence-to-sequence arrays and batches: source, decoder input with ``<bos>``, target,
valid lengths and the ``<pad>`` mask the loss needs.

``build_seq2seq_arrays`` follows d2l 1.0's ``MTFraEng._build_arrays`` exactly: sentences are
padded or trimmed to ``num_steps`` (trimming can cut off ``<eos>``), the target gets
``<bos>`` in front and is then split into decoder input ``[:, :-1]`` and label ``[:, 1:]``,
and each vocabulary is built from the *padded* sentences with ``min_freq=2`` and no reserved
tokens — ``<pad>``, ``<bos>``, ``<eos>`` get in because they are frequent — sorted by code
point with ``<unk>`` (d2l's ``Vocab``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from .collate import pad_sequences
from .vocab import Vocab

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def pad_or_trim(tokens: Sequence[str], num_steps: int, pad: str = PAD) -> list[str]:
    tokens = list(tokens)
    return (
        tokens[:num_steps]
        if len(tokens) > num_steps
        else tokens + [pad] * (num_steps - len(tokens))
    )


def d2l_vocab(sentences: Sequence[Sequence[str]], min_freq: int = 2) -> Vocab:
    """d2l 1.0 ``Vocab(sentences, min_freq)``: code-point order, ``<unk>`` sorted in."""
    return Vocab.build(
        sentences,
        min_freq=min_freq,
        specials=[UNK],
        order="sorted",
        specials_first=False,
        unk_token=UNK,
        pad_token=None,
    )


def _array(
    sentences: Sequence[Sequence[str]],
    num_steps: int,
    vocab: Vocab | None,
    is_tgt: bool,
    min_freq: int,
) -> tuple[Tensor, Vocab, Tensor]:
    padded = [pad_or_trim(s, num_steps) for s in sentences]
    if is_tgt:
        padded = [[BOS, *s] for s in padded]
    if vocab is None:
        vocab = d2l_vocab(padded, min_freq)
    width = num_steps + int(is_tgt)
    array = torch.tensor([vocab.encode(s) for s in padded], dtype=torch.long).reshape(-1, width)
    valid_len = (array != vocab[PAD]).sum(1)  # d2l: counts everything that is not <pad>
    return array, vocab, valid_len


def build_seq2seq_arrays(
    src: Sequence[Sequence[str]],
    tgt: Sequence[Sequence[str]],
    num_steps: int,
    src_vocab: Vocab | None = None,
    tgt_vocab: Vocab | None = None,
    *,
    min_freq: int = 2,
) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor], Vocab, Vocab]:
    """((src, dec_in, src_valid_len, tgt), src_vocab, tgt_vocab), as d2l's _build_arrays."""
    src_array, src_vocab, src_valid_len = _array(src, num_steps, src_vocab, False, min_freq)
    tgt_array, tgt_vocab, _ = _array(tgt, num_steps, tgt_vocab, True, min_freq)
    return (src_array, tgt_array[:, :-1], src_valid_len, tgt_array[:, 1:]), src_vocab, tgt_vocab


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) bool: True for the first ``lengths[b]`` positions of row b."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


@dataclass(frozen=True)
class Seq2SeqBatch:
    """One batch; ``mask`` marks target positions that count in the loss (not ``<pad>``)."""

    src: Tensor  # (B, S)
    dec_in: Tensor  # (B, T): <bos> + target, shifted right
    tgt: Tensor  # (B, T): labels
    src_valid_len: Tensor  # (B,)
    tgt_valid_len: Tensor  # (B,): non-<pad> label positions
    pad_id: int

    @property
    def mask(self) -> Tensor:
        return self.tgt != self.pad_id

    def as_d2l(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The tuple d2l's Seq2Seq consumes: (src, dec_in, src_valid_len, label)."""
        return self.src, self.dec_in, self.src_valid_len, self.tgt

    def to(self, device: torch.device | str) -> Seq2SeqBatch:
        move = lambda t: t.to(device)  # noqa: E731
        return Seq2SeqBatch(
            move(self.src),
            move(self.dec_in),
            move(self.tgt),
            move(self.src_valid_len),
            move(self.tgt_valid_len),
            self.pad_id,
        )


class FixedArraysCollate:
    """Collate rows of fixed-width d2l arrays into a Seq2SeqBatch."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]]) -> Seq2SeqBatch:
        src, dec_in, src_len, tgt = (torch.stack(col) for col in zip(*rows, strict=True))
        return Seq2SeqBatch(src, dec_in, tgt, src_len, (tgt != self.pad_id).sum(1), self.pad_id)


def seq2seq_loader(
    arrays: tuple[Tensor, Tensor, Tensor, Tensor],
    batch_size: int,
    *,
    pad_id: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """DataLoader of Seq2SeqBatch over d2l-style arrays (d2l shuffles only training)."""
    return DataLoader(
        TensorDataset(*arrays),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=FixedArraysCollate(pad_id),
    )


class PairCollate:
    """Dynamic padding for (src_ids, tgt_ids) pairs of any length.

    The source gets ``<eos>`` appended (unless ``src_eos=False``), the decoder input is
    ``<bos>`` + target and the label is target + ``<eos>``; all are padded with ``pad_id``."""

    def __init__(self, pad_id: int, bos_id: int, eos_id: int, *, src_eos: bool = True) -> None:
        self.pad_id, self.bos_id, self.eos_id, self.src_eos = pad_id, bos_id, eos_id, src_eos

    def __call__(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Seq2SeqBatch:
        srcs = [[*map(int, s), *([self.eos_id] if self.src_eos else [])] for s, _ in pairs]
        dec = [[self.bos_id, *map(int, t)] for _, t in pairs]
        lab = [[*map(int, t), self.eos_id] for _, t in pairs]
        return Seq2SeqBatch(
            pad_sequences(srcs, self.pad_id),
            pad_sequences(dec, self.pad_id),
            pad_sequences(lab, self.pad_id),
            torch.tensor([len(s) for s in srcs], dtype=torch.long),
            torch.tensor([len(t) for t in lab], dtype=torch.long),
            self.pad_id,
        )
