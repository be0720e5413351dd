"""Dataset containers for text classification: raw (label, text) and numericalized.

Both carry ``note``: None for a complete dataset, otherwise a line such as
``"partial: 10,429 of 120,000 rows"`` that every result and report built on them must show.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


class TextClassificationDataset(Dataset):
    """(label, text) pairs; labels are 0-based."""

    def __init__(self, labels: Sequence[int], texts: Sequence[str], note: str | None = None):
        if len(labels) != len(texts):
            raise ValueError(f"{len(labels)} labels but {len(texts)} texts")
        self.labels, self.texts, self.note = list(labels), list(texts), note

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[int, str]:
        return self.labels[i], self.texts[i]


class EncodedClassificationDataset(Dataset):
    """(label, ids) pairs stored as one flat id tensor plus offsets (cheap to cache and load)."""

    def __init__(self, labels: Tensor, ids: Tensor, offsets: Tensor, note: str | None = None):
        if offsets.numel() != labels.numel() + 1:
            raise ValueError("offsets must have one entry more than labels")
        self.labels, self.ids, self.offsets, self.note = labels, ids, offsets, note
        self._bounds = offsets.tolist()

    @classmethod
    def from_lists(
        cls, labels: Sequence[int], id_lists: Sequence[Sequence[int]], note: str | None = None
    ) -> EncodedClassificationDataset:
        lengths = torch.tensor([len(x) for x in id_lists], dtype=torch.long)
        offsets = torch.zeros(len(id_lists) + 1, dtype=torch.long)
        torch.cumsum(lengths, 0, out=offsets[1:])
        total = int(lengths.sum())
        flat = torch.from_numpy(
            np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int64, count=total)
        )
        return cls(torch.tensor(list(labels), dtype=torch.long), flat, offsets, note)

    def __len__(self) -> int:
        return self.labels.numel()

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        if i < 0:
            i += len(self)
        return int(self.labels[i]), self.ids[self._bounds[i] : self._bounds[i + 1]]

    @property
    def lengths(self) -> Tensor:
        """Token count per example (for BucketBatchSampler)."""
        return self.offsets[1:] - self.offsets[:-1]
