"""A vocabulary that can reproduce each document's ordering exactly.

* ``order="first-seen"``: torchtext ``vocab(Counter)`` (AI-For-Beginners) and fastai's
  ``L(tokens).unique()`` (Human Numbers).
* ``order="frequency"``: count descending, ties in first-seen order — Udacity's
  ``create_lookup_tables`` (a stable ``sorted(..., reverse=True)`` over a Counter).
* ``order="sorted"``: code-point order. With ``specials_first=False`` this is d2l 1.0's
  ``sorted(set(['<unk>'] + reserved_tokens + kept))``, specials sorted in with the rest.

Unknown tokens map to ``unk_token`` when there is one, else to ``default_index`` (the
AG News seed maps them to 0, a real token), else raise ``KeyError``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .atomic import atomic_write_bytes

Order = Literal["first-seen", "frequency", "sorted"]
_FORMAT = "rnnsuite.vocab"


class Vocab:
    """Token <-> index mapping with explicit unknown-token handling."""

    def __init__(
        self,
        itos: Iterable[str],
        *,
        unk_token: str | None = None,
        default_index: int | None = None,
        pad_token: str | None = None,
    ) -> None:
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {}
        for i, tok in enumerate(self.itos):
            if tok in self.stoi:
                raise ValueError(f"duplicate token {tok!r} at indices {self.stoi[tok]} and {i}")
            self.stoi[tok] = i
        for role, tok in (("unk_token", unk_token), ("pad_token", pad_token)):
            if tok is not None and tok not in self.stoi:
                raise ValueError(f"{role} {tok!r} is not in the vocabulary")
        if default_index is not None and not 0 <= default_index < len(self.itos):
            raise ValueError(f"default_index {default_index} is outside 0..{len(self.itos) - 1}")
        if (
            unk_token is not None
            and default_index is not None
            and default_index != self.stoi[unk_token]
        ):
            raise ValueError("give unk_token or default_index, not two different ones")
        self.unk_token = unk_token
        self.pad_token = pad_token
        self.default_index = self.stoi[unk_token] if unk_token is not None else default_index

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        sequences: Iterable[Iterable[str]],
        *,
        min_freq: int = 1,
        specials: Sequence[str] = (),
        order: Order = "first-seen",
        specials_first: bool = True,
        max_size: int | None = None,
        unk_token: str | None = None,
        default_index: int | None = None,
        pad_token: str | None = None,
    ) -> Vocab:
        """Count tokens and keep those with count >= ``min_freq``, in the chosen order.

        ``max_size`` caps the non-special tokens (after ordering). Specials always stay."""
        counter: Counter[str] = Counter(itertools.chain.from_iterable(sequences))
        if order not in ("first-seen", "frequency", "sorted"):
            raise ValueError(f"order must be 'first-seen', 'frequency' or 'sorted', got {order!r}")
        kept = [tok for tok, n in counter.items() if n >= min_freq]  # first-seen order
        if order == "frequency":
            kept.sort(key=lambda tok: counter[tok], reverse=True)  # stable: ties first-seen
        elif order == "sorted":
            kept.sort()
        special_set = set(specials)
        if max_size is not None:
            kept = [t for t in kept if t not in special_set][:max_size]
        if specials_first:
            itos = list(dict.fromkeys(specials)) + [t for t in kept if t not in special_set]
        elif order == "sorted":
            itos = sorted(special_set | set(kept))
        else:
            kept_set = set(kept)
            itos = kept + [s for s in dict.fromkeys(specials) if s not in kept_set]
        return cls(itos, unk_token=unk_token, default_index=default_index, pad_token=pad_token)

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __iter__(self):
        return iter(self.itos)

    def __getitem__(self, token: str) -> int:
        return self.lookup(token)

    def lookup(self, token: str) -> int:
        idx = self.stoi.get(token)
        if idx is not None:
            return idx
        if self.default_index is None:
            raise KeyError(
                f"token {token!r} is not in the vocabulary and it has no unk_token/default_index"
            )
        return self.default_index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        if self.default_index is None:
            return [self.lookup(t) for t in tokens]
        return list(map(self.stoi.get, tokens, itertools.repeat(self.default_index)))

    def encode_many(self, sequences: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat ids, offsets) for many sequences at once: sequence i is
        ``ids[offsets[i]:offsets[i + 1]]``. One C-level pass, for corpus-sized inputs."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = itertools.chain.from_iterable(sequences)
        if self.default_index is None:
            ids_iter = map(self.lookup, flat)
        else:
            ids_iter = map(self.stoi.get, flat, itertools.repeat(self.default_index))
        ids = np.fromiter(ids_iter, dtype=np.int64, count=int(offsets[-1]))
        return torch.from_numpy(ids), torch.from_numpy(offsets)

    def encode_tensor(self, tokens: Iterable[str]) -> torch.Tensor:
        return torch.tensor(self.encode(tokens), dtype=torch.long)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self.itos[int(i)] for i in ids]

    @property
    def unk_index(self) -> int | None:
        return self.default_index

    @property
    def pad_index(self) -> int | None:
        return None if self.pad_token is None else self.stoi[self.pad_token]

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "version": 1,
            "itos": self.itos,
            "unk_token": self.unk_token,
            "default_index": None if self.unk_token is not None else self.default_index,
            "pad_token": self.pad_token,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not an rnnsuite vocabulary (format={data.get('format')!r})")
        return cls(
            data["itos"],
            unk_token=data.get("unk_token"),
            default_index=data.get("default_index"),
            pad_token=data.get("pad_token"),
        )

    def save(self, path: Path | str) -> Path:
        """Write JSON atomically (UTF-8, tokens kept verbatim)."""
        blob = json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")
        return atomic_write_bytes(Path(path), blob)

    @classmethod
    def load(cls, path: Path | str) -> Vocab:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((tuple(self.itos), self.unk_token, self.default_index, self.pad_token))

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.itos[:5])
        more = ", ..." if len(self.itos) > 5 else ""
        return (
            f"Vocab({len(self)} tokens: [{head}{more}], unk={self.unk_token or self.default_index})"
        )
