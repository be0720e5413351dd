"""The Time Machine at character level, as d2l 1.0's ``TimeMachine`` builds it.

Runs of non-letters become one space, lower-case, one token per character; the vocabulary
is d2l's ``Vocab`` (code-point order with ``<unk>``): ' ', '<unk>', 'a'..'z' = 28 tokens.
Every position starts a window of ``num_steps + 1`` characters; the first ``num_train``
windows train (shuffled), the next ``num_val`` validate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from . import fetch
from .lm_batching import windowed_sequences
from .tokenize import d2l_char_tokens
from .vocab import Vocab


@dataclass
class TimeMachine:
    raw_text: str
    tokens: list[str]
    vocab: Vocab
    corpus: Tensor
    X: Tensor
    Y: Tensor
    num_steps: int
    num_train: int
    num_val: int
    path: Path | None = None

    def split(self, train: bool) -> tuple[Tensor, Tensor]:
        """d2l's index ranges: [0, num_train) and [num_train, num_train + num_val)."""
        idx = (
            slice(0, self.num_train)
            if train
            else slice(self.num_train, self.num_train + self.num_val)
        )
        return self.X[idx], self.Y[idx]

    def get_dataloader(
        self, train: bool, batch_size: int = 1024, generator: torch.Generator | None = None
    ) -> DataLoader:
        """As d2l: shuffled for training, in order for validation, last batch kept."""
        return DataLoader(
            TensorDataset(*self.split(train)), batch_size, shuffle=train, generator=generator
        )


def d2l_char_vocab(tokens: list[str]) -> Vocab:
    return Vocab.build(
        [tokens],
        min_freq=0,
        specials=["<unk>"],
        order="sorted",
        specials_first=False,
        unk_token="<unk>",
    )


def build_time_machine(
    raw_text: str,
    num_steps: int = 32,
    num_train: int = 10_000,
    num_val: int = 5_000,
    vocab: Vocab | None = None,
    path: Path | None = None,
) -> TimeMachine:
    tokens = d2l_char_tokens(raw_text)
    vocab = vocab if vocab is not None else d2l_char_vocab(tokens)
    corpus = torch.tensor(vocab.encode(tokens), dtype=torch.long)
    X, Y = windowed_sequences(corpus, num_steps)
    return TimeMachine(raw_text, tokens, vocab, corpus, X, Y, num_steps, num_train, num_val, path)


def load_time_machine(
    root: Path | str | None = None,
    *,
    num_steps: int = 32,
    num_train: int = 10_000,
    num_val: int = 5_000,
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
) -> TimeMachine:
    path = fetch.locate(
        "time_machine",
        "timemachine.txt",
        root=root,
        download=download,
        verify=verify,
        mirror=mirror,
    )
    raw = path.read_text(encoding="utf-8")
    return build_time_machine(raw, num_steps, num_train, num_val, path=path)
