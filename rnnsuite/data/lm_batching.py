"""Language-model batching in the three layouts the documents use.

* fastai (Human Numbers): non-overlapping ``sl``-token sequences, then ``group_chunks`` so
  row j of batch k+1 continues row j of batch k — the hidden state can be carried over.
* d2l (Time Machine): a window of ``num_steps + 1`` tokens starting at *every* position,
  shuffled; the state starts at zero for every batch.
* Udacity (Seinfeld): ``sequence_length`` words -> the next word.
* Truncated BPTT over a token stream (PTB): the stream is cut into ``batch_size`` rows and
  read ``bptt`` steps at a time; ``detach_state`` cuts the graph between windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def as_long_tensor(tokens: Sequence[int] | Tensor) -> Tensor:
    if isinstance(tokens, Tensor):
        return tokens.long().reshape(-1)
    return torch.tensor(list(tokens), dtype=torch.long)


def fastai_lm_sequences(nums: Sequence[int] | Tensor, sl: int) -> list[tuple[Tensor, Tensor]]:
    """fastbook's ``seqs``: (x, y) with y shifted by one, starting every ``sl`` tokens.

    Same bounds as the book (``range(0, len(nums) - sl - 1, sl)``)."""
    nums = as_long_tensor(nums)
    return [(nums[i : i + sl], nums[i + 1 : i + sl + 1]) for i in range(0, len(nums) - sl - 1, sl)]


def group_chunks(ds: Sequence[T], bs: int) -> list[T]:
    """fastai's reordering: item ``i*bs + j`` of the result is ``ds[i + m*j]``, m = len//bs.

    Read in batches of ``bs`` without shuffling, row j of each batch then continues row j of
    the previous one. The ``len(ds) % bs`` trailing items are dropped, as in fastai."""
    if bs < 1:
        raise ValueError(f"bs must be >= 1, got {bs}")
    m = len(ds) // bs
    return [ds[i + m * j] for i in range(m) for j in range(bs)]


def stream_batches(
    ds: Sequence[tuple[Tensor, Tensor]], bs: int, drop_last: bool = True
) -> list[tuple[Tensor, Tensor]]:
    """Stack consecutive items into (x, y) batches: a DataLoader with shuffle=False."""
    stop = len(ds) - len(ds) % bs if drop_last else len(ds)
    out = []
    for start in range(0, stop, bs):
        items = ds[start : start + bs]
        out.append((torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])))
    return out


def windowed_sequences(corpus: Sequence[int] | Tensor, num_steps: int) -> tuple[Tensor, Tensor]:
    """d2l 1.0 TimeMachine: X[i] = corpus[i : i+num_steps], Y[i] = X[i] shifted by one,
    for every i in range(len(corpus) - num_steps)."""
    corpus = as_long_tensor(corpus)
    if len(corpus) <= num_steps:
        raise ValueError(f"corpus of {len(corpus)} tokens is too short for num_steps={num_steps}")
    windows = corpus.unfold(0, num_steps + 1, 1)  # (len - num_steps, num_steps + 1), a view
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def next_word_pairs(
    words: Sequence[int] | Tensor, sequence_length: int, batch_size: int
) -> tuple[Tensor, Tensor]:
    """Udacity ``batch_data``: trim to whole batches, then (sequence_length words -> next word)
    for every start ``idx in range(len(words) - sequence_length)``."""
    words = as_long_tensor(words)
    words = words[: (len(words) // batch_size) * batch_size]
    n = len(words) - sequence_length
    if n <= 0:
        return torch.empty(0, sequence_length, dtype=torch.long), torch.empty(0, dtype=torch.long)
    features = words.unfold(0, sequence_length, 1)[:n].contiguous()
    targets = words[sequence_length : sequence_length + n].clone()
    return features, targets


def batchify(stream: Sequence[int] | Tensor, batch_size: int) -> Tensor:
    """Cut a token stream into ``batch_size`` contiguous rows (B, N); the tail is dropped."""
    stream = as_long_tensor(stream)
    n = len(stream) // batch_size
    if n < 2:
        raise ValueError(f"a stream of {len(stream)} tokens is too short for {batch_size} rows")
    return stream[: n * batch_size].view(batch_size, n)


class BPTTIterator:
    """Truncated-BPTT windows over a stream: (x, y) of shape (B, bptt) (or (bptt, B)).

    Row j of window k+1 starts where row j of window k ended, so a stateful model can carry
    its (detached) state across windows; the last window may be shorter."""

    def __init__(
        self,
        stream: Sequence[int] | Tensor,
        batch_size: int,
        bptt: int,
        *,
        batch_first: bool = True,
    ) -> None:
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        self.rows = batchify(stream, batch_size)
        self.bptt, self.batch_first = bptt, batch_first

    def __len__(self) -> int:
        return -(-(self.rows.shape[1] - 1) // self.bptt)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.rows.shape[1]
        for i in range(0, n - 1, self.bptt):
            steps = min(self.bptt, n - 1 - i)
            x, y = self.rows[:, i : i + steps], self.rows[:, i + 1 : i + 1 + steps]
            yield (x, y) if self.batch_first else (x.t().contiguous(), y.t().contiguous())


def detach_state(state: Any) -> Any:
    """Detach a hidden state (tensor, or nested tuples/lists of tensors) between windows."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a namedtuple
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state
