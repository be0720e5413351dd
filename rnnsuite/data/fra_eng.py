"""English-French pairs exactly as d2l 1.0's ``MTFraEng`` prepares them, quirks included.

Preprocess: U+202F and U+00A0 become spaces, lower-case, and a space goes before each
``, . ! ?`` whose preceding character (in the text before lower-casing) is not a space.
Tokenize: per line, split on tab; lines without exactly two columns are skipped; each side
is split on ' ' (empty tokens dropped) and ``<eos>`` appended. Arrays and vocabularies: see
``seq2seq.build_seq2seq_arrays``.

d2l's quirks reproduced by default (``d2l_quirks=True``):

* ``_tokenize`` stops at ``i > max_examples`` with ``max_examples = num_train + num_val``,
  so it reads one line more than asked: the defaults give 641 pairs and d2l's validation
  slice ``[num_train:]`` holds 129 of them, not 128. ``d2l_quirks=False`` reads exactly
  ``num_train + num_val`` lines.
* Vocabularies come from the padded sentences of the whole (train + validation) slice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from . import fetch
from .seq2seq import PAD, build_seq2seq_arrays, seq2seq_loader
from .vocab import Vocab

_PUNCT_AFTER_NON_SPACE = re.compile(r"(?<=[^ ])([,.!?])")
TOTAL_PAIRS = 167_130


def d2l_mt_preprocess(text: str) -> str:
    """d2l's ``_preprocess``, vectorised (the character loop when lower() changes length)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    lowered = text.lower()
    if len(lowered) == len(text):
        # Position i of ``lowered`` lines up with position i of ``text``, and a character is
        # ' ' before lower-casing iff it is after, so the look-behind sees d2l's prev_char.
        return _PUNCT_AFTER_NON_SPACE.sub(r" \1", lowered)
    out = [
        " " + ch if i > 0 and ch in ",.!?" and text[i - 1] != " " else ch
        for i, ch in enumerate(lowered)
    ]
    return "".join(out)


def d2l_mt_tokenize(
    text: str, max_examples: int | None = None, *, d2l_quirks: bool = True
) -> tuple[list[list[str]], list[list[str]]]:
    """d2l's ``_tokenize``: (source token lists, target token lists), ``<eos>`` appended."""
    src: list[list[str]] = []
    tgt: list[list[str]] = []
    for i, line in enumerate(text.split("\n")):
        if max_examples and (i > max_examples if d2l_quirks else i >= max_examples):
            break
        parts = line.split("\t")
        if len(parts) == 2:
            src.append([t for t in f"{parts[0]} <eos>".split(" ") if t])
            tgt.append([t for t in f"{parts[1]} <eos>".split(" ") if t])
    return src, tgt


def _head_lines(text: str, n_lines: int | None) -> str:
    """The first ``n_lines`` lines of ``text`` (all when None): preprocessing only this prefix
    gives the same lines as preprocessing everything, and is much faster."""
    if not n_lines:
        return text
    end = -1
    for _ in range(n_lines):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end]


@dataclass
class FraEng:
    """d2l's MTFraEng state: ``arrays`` = (src, dec_in, src_valid_len, tgt) for all pairs read."""

    arrays: tuple[Tensor, Tensor, Tensor, Tensor]
    src_vocab: Vocab
    tgt_vocab: Vocab
    num_train: int
    num_val: int
    num_steps: int
    d2l_quirks: bool = True
    path: Path | None = None

    @property
    def max_examples(self) -> int:
        return self.num_train + self.num_val

    def split(self, train: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """d2l's slices: [0, num_train) and [num_train, end) (129 rows with the quirk)."""
        idx = slice(0, self.num_train) if train else slice(self.num_train, None)
        return tuple(a[idx] for a in self.arrays)  # type: ignore[return-value]

    @property
    def tgt_pad(self) -> int:
        return self.tgt_vocab[PAD]

    def get_dataloader(
        self, train: bool, batch_size: int = 128, generator: torch.Generator | None = None
    ) -> DataLoader:
        """Seq2SeqBatch batches (``.as_d2l()`` gives d2l's tuple); shuffled when training."""
        return seq2seq_loader(
            self.split(train), batch_size, pad_id=self.tgt_pad, shuffle=train, generator=generator
        )

    def build(
        self, src_sentences: Sequence[str], tgt_sentences: Sequence[str]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """d2l's ``build``: arrays for new sentence pairs with the existing vocabularies."""
        raw = "\n".join(
            f"{s}\t{t}" for s, t in zip(src_sentences, tgt_sentences, strict=False)
        )  # as d2l
        src, tgt = d2l_mt_tokenize(
            d2l_mt_preprocess(raw), self.max_examples, d2l_quirks=self.d2l_quirks
        )
        arrays, _, _ = build_seq2seq_arrays(
            src, tgt, self.num_steps, self.src_vocab, self.tgt_vocab
        )
        return arrays


def build_fra_eng(
    raw_text: str,
    *,
    num_train: int = 512,
    num_val: int = 128,
    num_steps: int = 9,
    d2l_quirks: bool = True,
    path: Path | None = None,
) -> FraEng:
    max_examples = num_train + num_val
    # d2l's `if max_examples and ...`: a limit of 0 means "no limit".
    n_lines = (max_examples + 1 if d2l_quirks else max_examples) if max_examples else None
    text = d2l_mt_preprocess(_head_lines(raw_text, n_lines))
    src, tgt = d2l_mt_tokenize(text, max_examples, d2l_quirks=d2l_quirks)
    arrays, src_vocab, tgt_vocab = build_seq2seq_arrays(src, tgt, num_steps)
    return FraEng(arrays, src_vocab, tgt_vocab, num_train, num_val, num_steps, d2l_quirks, path)


def load_fra_eng(
    root: Path | str | None = None,
    *,
    num_train: int = 512,
    num_val: int = 128,
    num_steps: int = 9,
    d2l_quirks: bool = True,
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
) -> FraEng:
    """Defaults are d2l's (512/128/9); raise num_train/num_val (up to 167,130 pairs in all)
    for bigger benchmarks."""
    path = fetch.locate(
        "fra_eng", "fra.txt", root=root, download=download, verify=verify, mirror=mirror
    )
    with open(path, encoding="utf-8") as fh:  # text mode, like d2l's open(...).read()
        raw = fh.read()
    return build_fra_eng(
        raw,
        num_train=num_train,
        num_val=num_val,
        num_steps=num_steps,
        d2l_quirks=d2l_quirks,
        path=path,
    )
