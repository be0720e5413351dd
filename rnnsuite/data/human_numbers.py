"""fastai's HUMAN_NUMBERS, regenerated (nothing to download).

fastai's train.txt holds 1..7,999 and valid.txt 8,001..9,999, one number a line written in
words without "and" ("one hundred twenty three \\n"). fastbook strips the lines, joins them
with " . " and splits on spaces: 9,998 lines, 63,095 tokens, 30 words in first-seen order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .atomic import atomic_write_bytes
from .lm_batching import fastai_lm_sequences, group_chunks
from .vocab import Vocab

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

TRAIN_RANGE = range(1, 8_000)
VALID_RANGE = range(8_001, 10_000)


def number_to_words(n: int) -> str:
    """1..9,999 in words as fastai wrote them: "eight thousand one hundred five"."""
    if not 1 <= n <= 9_999:
        raise ValueError(f"human numbers cover 1..9999, got {n}")
    words: list[str] = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        words += [_ONES[thousands], "thousand"]
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, rest = divmod(rest, 10)
        words.append(_TENS[tens])
    if rest:
        words.append(_ONES[rest])
    return " ".join(words)


def human_numbers_lines() -> tuple[list[str], list[str]]:
    """The lines of fastai's train.txt and valid.txt, each "<words> \\n"."""
    return (
        [f"{number_to_words(n)} \n" for n in TRAIN_RANGE],
        [f"{number_to_words(n)} \n" for n in VALID_RANGE],
    )


def write_human_numbers(directory: Path | str) -> tuple[Path, Path]:
    """Write train.txt and valid.txt as fastai ships them (for tools that want files)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train, valid = human_numbers_lines()
    return (
        atomic_write_bytes(directory / "train.txt", "".join(train).encode()),
        atomic_write_bytes(directory / "valid.txt", "".join(valid).encode()),
    )


@dataclass
class HumanNumbers:
    """fastbook ch. 12's ``lines``, ``text``, ``tokens``, ``vocab`` and ``nums``."""

    lines: list[str]
    text: str
    tokens: list[str]
    vocab: Vocab
    nums: Tensor

    def lm_datasets(
        self, sl: int = 16, bs: int = 64, train_frac: float = 0.8
    ) -> tuple[list[tuple[Tensor, Tensor]], list[tuple[Tensor, Tensor]]]:
        """fastbook's ``group_chunks(seqs[:cut], bs), group_chunks(seqs[cut:], bs)``.

        Read in order in batches of ``bs`` with drop_last (``stream_batches``) they give the
        book's DataLoaders."""
        seqs = fastai_lm_sequences(self.nums, sl)
        cut = int(len(seqs) * train_frac)
        return group_chunks(seqs[:cut], bs), group_chunks(seqs[cut:], bs)


def load_human_numbers() -> HumanNumbers:
    train, valid = human_numbers_lines()
    lines = train + valid
    text = " . ".join(line.strip() for line in lines)
    tokens = text.split(" ")
    vocab = Vocab.build([tokens], order="first-seen")
    nums = torch.tensor(vocab.encode(tokens), dtype=torch.long)
    return HumanNumbers(lines, text, tokens, vocab, nums)
