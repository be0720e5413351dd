"""Batch collation for classification: pad to the longest, optionally with lengths and buckets.

The AG News seed's ``padify`` pads with id 0, which is also a real token of its vocabulary
(the first word seen). ``pad_id=0`` with the faithful vocabulary keeps that; the reserved
vocabulary (``numericalize(style="reserved")``) puts ``<pad>`` at 0 instead. Datasets here
already yield labels 0..3, so unlike the seed these functions do not subtract 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

Ids = Sequence[int] | Tensor


def _as_long(ids: Ids) -> Tensor:
    return ids.long() if isinstance(ids, Tensor) else torch.tensor(list(ids), dtype=torch.long)


def pad_sequences(
    seqs: Sequence[Ids], pad_id: int = 0, *, batch_first: bool = True, max_len: int | None = None
) -> Tensor:
    """Right-pad id sequences to the longest (or ``max_len``); (B, T) or (T, B)."""
    tensors = [_as_long(s) for s in seqs]
    longest = max((len(t) for t in tensors), default=0)
    width = longest if max_len is None else max_len
    if width < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest sequence ({longest})")
    out = torch.full((len(tensors), width), pad_id, dtype=torch.long)
    for row, t in zip(out, tensors, strict=True):
        row[: len(t)] = t
    return out if batch_first else out.t().contiguous()


def padify(batch: Sequence[tuple[int, Ids]], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """(labels (B,), ids (B, T)) padded to the batch's longest sequence, as the seed's padify."""
    labels = torch.tensor([int(label) for label, _ in batch], dtype=torch.long)
    return labels, pad_sequences([ids for _, ids in batch], pad_id)


def pad_with_lengths(
    batch: Sequence[tuple[int, Ids]], pad_id: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """(labels, padded ids, lengths) as the seed's ``pad_length``; lengths stay int64 on CPU,
    which ``pack_padded_sequence`` requires."""
    labels, padded = padify(batch, pad_id)
    lengths = torch.tensor([len(ids) for _, ids in batch], dtype=torch.long)
    return labels, padded, lengths


class ClassificationCollate:
    """A picklable collate_fn: optional text encoder, pad id, lengths on/off, label shift.

    ``encode`` turns raw text into ids (for datasets of (label, text));
    ``label_offset=-1`` reproduces the seed feeding raw 1..4 labels."""

    def __init__(
        self,
        pad_id: int = 0,
        *,
        with_lengths: bool = False,
        encode: Callable[[str], Ids] | None = None,
        label_offset: int = 0,
    ) -> None:
        self.pad_id, self.with_lengths = pad_id, with_lengths
        self.encode, self.label_offset = encode, label_offset

    def __call__(self, batch: Sequence[tuple[int, Ids | str]]):
        items = [
            (
                int(label) + self.label_offset,
                self.encode(x) if self.encode is not None else x,  # type: ignore[arg-type]
            )
            for label, x in batch
        ]
        if self.with_lengths:
            return pad_with_lengths(items, self.pad_id)  # type: ignore[arg-type]
        return padify(items, self.pad_id)  # type: ignore[arg-type]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, to cut padding: shuffle, cut into pools of
    ``pool_batches`` batches, sort each pool by length (longest first), split, shuffle batches.

    Every index appears exactly once per epoch (the last batch may be short unless
    ``drop_last``). Pools keep the randomness; without shuffle the order is deterministic."""

    def __init__(
        self,
        lengths: Sequence[int] | Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        pool_batches: int = 50,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError("batch_size and pool_batches must be >= 1")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.batch_size, self.pool = batch_size, batch_size * pool_batches
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        batches: list[list[int]] = []
        for start in range(0, n, self.pool):
            pool = order[start : start + self.pool]
            by_len = pool[torch.argsort(-self.lengths[pool], stable=True)].tolist()
            batches += [
                by_len[i : i + self.batch_size] for i in range(0, len(by_len), self.batch_size)
            ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=self.generator).tolist()
            batches = [batches[i] for i in perm]
        yield from batches
