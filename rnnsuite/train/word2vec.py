"""Word2vec (skip-gram, negative sampling) data pipeline and training loop.

The pipeline follows the Udacity word2vec lesson step by step, written afresh:

1. drop rare words (the course keeps words seen more than 5 times: ``min_count=6``) and
   number the rest by frequency;
2. subsample frequent words once, before training, with Mikolov's
   P(drop w) = 1 - sqrt(t / f(w));
3. for each centre word pick a window radius R uniformly in [1, window_size] (nearer
   words are thus used more often) and pair it with the words within R — *inside its own
   batch of ``batch_size`` words*, as the course does, and the last partial batch dropped;
4. contrast each pair with ``n_neg`` noise words from unigram^0.75 and train both
   embedding tables with Adam (lr 0.003).

All randomness comes from one ``random.Random(seed)`` (windows) and one
``torch.Generator`` seeded with ``seed`` (initialisation, subsampling, noise), so a seed
fixes every loss exactly (on one thread).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..data import fetch
from ..data.vocab import Vocab
from ..models.word2vec import NegativeSamplingLoss, SkipGramNeg, nearest_neighbours
from .fit import Step, fit

CORPORA = ("ptb", "time_machine")


# --------------------------------------------------------------------------- corpora


def corpus_tokens(name: str, root: Path | str | None = None) -> list[str]:
    """Word tokens of a corpus, found the way every rnnsuite loader finds its files.

    ``"ptb"``: the training split's words exactly as the file has them (``<unk>``
    included, no ``<eos>`` added: a sentence marker would be the most frequent "word" and
    only sit in windows across sentence ends). ``"time_machine"``: d2l's word tokenisation,
    runs of non-letters become one space, lower-cased, split on whitespace."""
    if name == "ptb":
        path = fetch.locate("ptb", "ptb.train.txt", root=root)
        return path.read_text(encoding="utf-8").split()
    if name == "time_machine":
        path = fetch.locate("time_machine", "timemachine.txt", root=root)
        return re.sub("[^A-Za-z]+", " ", path.read_text(encoding="utf-8")).lower().split()
    raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")


# --------------------------------------------------------------------------- pipeline


def keep_probabilities(counts: Tensor | Sequence[int], threshold: float = 1e-5) -> Tensor:
    """P(keep w) = min(1, sqrt(t / f(w))) with f the relative frequency, per id.

    Words with f <= t are always kept; the clamp only matters there."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    counts = torch.as_tensor(counts, dtype=torch.float64)
    total = counts.sum()
    if counts.dim() != 1 or (counts < 0).any() or not total > 0:
        raise ValueError("counts must be a 1-D non-negative sequence with a positive sum")
    freq = counts / total
    keep = torch.sqrt(threshold / freq.clamp_min(torch.finfo(torch.float64).tiny))
    return keep.clamp(max=1.0)


def subsample(
    int_words: Sequence[int] | Tensor,
    threshold: float = 1e-5,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Drop each occurrence of word w with probability 1 - sqrt(t / f(w)).

    Frequent words ("the", "of") carry little information per occurrence and dominate
    the pairs; dropping them speeds training and improves rarer words' vectors. The
    frequencies are those of ``int_words`` itself."""
    ids = torch.as_tensor(int_words, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        raise ValueError("cannot subsample an empty corpus")
    if ids.min() < 0:
        raise ValueError("word ids must be non-negative")
    keep = keep_probabilities(torch.bincount(ids), threshold)
    draws = torch.rand(ids.numel(), generator=generator, dtype=torch.float64)
    return ids[draws < keep[ids]].tolist()


def get_target(words: Sequence[int], idx: int, window_size: int, rng: random.Random) -> list[int]:
    """Context words of ``words[idx]``: those within a random radius R in [1, window_size].

    Sampling R gives a word at distance d weight (window_size - d + 1) / window_size, so
    close words, which say more about the centre, are used more often."""
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    if not 0 <= idx < len(words):
        raise IndexError(f"idx {idx} outside 0..{len(words) - 1}")
    radius = rng.randint(1, window_size)
    start = max(0, idx - radius)
    return list(words[start:idx]) + list(words[idx + 1 : idx + radius + 1])


def skipgram_batches(
    words: Sequence[int],
    batch_size: int,
    window_size: int = 5,
    rng: random.Random | None = None,
    *,
    drop_last: bool = True,
) -> Iterator[tuple[list[int], list[int]]]:
    """(inputs, targets) pair lists, one per run of ``batch_size`` consecutive words.

    Windows stop at the batch edge and the last partial batch is dropped, as in the
    course, so the pairs of a batch depend only on its own words."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (a lone word has no context), got {batch_size}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    rng = rng if rng is not None else random.Random()
    n = (len(words) // batch_size) * batch_size if drop_last else len(words)
    for start in range(0, n, batch_size):
        batch = list(words[start : start + batch_size])
        inputs: list[int] = []
        targets: list[int] = []
        for i, centre in enumerate(batch):
            context = get_target(batch, i, window_size, rng)
            targets.extend(context)
            inputs.extend([centre] * len(context))
        if inputs:
            yield inputs, targets


def noise_distribution(counts: Tensor | Sequence[int]) -> Tensor:
    """Unigram counts raised to 3/4, normalised: Mikolov's noise distribution.

    The power flattens the unigram distribution so rare words are drawn as negatives more
    often than their frequency alone would give."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0 or (counts < 0).any() or not counts.sum() > 0:
        raise ValueError("counts must be a 1-D non-negative sequence with a positive sum")
    powered = counts**0.75
    return (powered / powered.sum()).float()


# --------------------------------------------------------------------------- training


@dataclass
class Word2VecResult:
    """What a run produced: vocabulary, centre-word vectors, losses, timing."""

    vocab: Vocab
    embeddings: Tensor  # in_embed weight, (len(vocab), embed_dim)
    losses: list[float]  # one per optimiser step
    epoch_losses: list[float]  # mean of the step losses of each epoch
    seconds: float  # the training loop alone (vocabulary building excluded)
    steps: int
    train_words: int  # corpus length after subsampling (first epoch)
    settings: dict = field(default_factory=dict)

    def neighbours(self, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` words closest to ``word`` by cosine similarity."""
        if word not in self.vocab.stoi:
            raise KeyError(f"{word!r} is not in the word2vec vocabulary")
        ids, sims = nearest_neighbours(self.embeddings, [self.vocab.stoi[word]], k)
        return [
            (self.vocab.itos[i], round(s, 4))
            for i, s in zip(ids[0].tolist(), sims[0].tolist(), strict=True)
        ]


class SkipGramStep(Step):
    """The negative-sampling loss of a (centre words, context words) batch against
    ``n_neg`` noise words per pair; keeps every step's loss and each epoch's mean."""

    def __init__(
        self, n_neg: int, generator: torch.Generator, epochs: int, print_every: int | None
    ) -> None:
        self.n_neg, self.generator = n_neg, generator
        self.epochs, self.print_every = epochs, print_every
        self.criterion = NegativeSamplingLoss()
        self.losses: list[float] = []

    def where(self, epoch: int, batch: int, step: int) -> str:
        return f"epoch {epoch + 1}, step {step}"

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.epoch_sum, self.epoch_steps = 0.0, 0

    def loss(self, model: SkipGramNeg, batch: tuple[list[int], list[int]]) -> Tensor:
        inputs, targets = batch
        input_vectors = model.forward_input(torch.tensor(inputs))
        output_vectors = model.forward_output(torch.tensor(targets))
        noise_vectors = model.forward_noise(len(inputs), self.n_neg, generator=self.generator)
        return self.criterion(input_vectors, output_vectors, noise_vectors)

    def after_batch(self, value: float, seconds: float) -> None:
        self.losses.append(value)
        self.epoch_sum += value
        self.epoch_steps += 1
        if self.print_every and len(self.losses) % self.print_every == 0:
            print(f"epoch {self.epoch + 1}/{self.epochs} step {len(self.losses)} loss {value:.4f}")

    def end_epoch(self) -> dict:
        return {"loss": self.epoch_sum / self.epoch_steps} if self.epoch_steps else {}


def _check_settings(settings: dict, tokens: Sequence[str]) -> None:
    s = settings
    checks = (
        (s["embed_dim"] >= 1, f"embed_dim must be >= 1, got {s['embed_dim']}"),
        (s["epochs"] >= 1, f"epochs must be >= 1, got {s['epochs']}"),
        (s["batch_size"] >= 2, f"batch_size must be >= 2, got {s['batch_size']}"),
        (s["window_size"] >= 1, f"window_size must be >= 1, got {s['window_size']}"),
        (s["n_neg"] >= 1, f"n_neg must be >= 1, got {s['n_neg']}"),
        (s["lr"] > 0, f"lr must be > 0, got {s['lr']}"),
        (s["min_count"] >= 1, f"min_count must be >= 1, got {s['min_count']}"),
        (
            s["threshold"] is None or s["threshold"] > 0,
            f"threshold must be > 0 or None, got {s['threshold']}",
        ),
        (
            s["max_steps"] is None or s["max_steps"] >= 1,
            f"max_steps must be >= 1 or None, got {s['max_steps']}",
        ),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    if len(tokens) == 0:
        raise ValueError("the corpus is empty")


def _numbered(tokens: Sequence[str], min_count: int) -> tuple[Vocab, list[int]]:
    """The frequency-ordered vocabulary of words seen ``min_count`` times, and the corpus
    as ids of it (rarer words dropped)."""
    vocab = Vocab.build([tokens], min_freq=min_count, order="frequency")
    if len(vocab) < 2:
        raise ValueError(
            f"fewer than 2 words occur at least min_count={min_count} times; "
            "word2vec needs a vocabulary to contrast words with"
        )
    stoi = vocab.stoi
    return vocab, [stoi[t] for t in tokens if t in stoi]


def train_word2vec(
    tokens: Sequence[str],
    *,
    embed_dim: int = 300,
    epochs: int = 5,
    batch_size: int = 512,
    window_size: int = 5,
    n_neg: int = 5,
    lr: float = 0.003,
    seed: int = 0,
    threshold: float | None = 1e-5,
    min_count: int = 6,
    max_steps: int | None = None,
    resample_each_epoch: bool = False,
    print_every: int | None = None,
) -> Word2VecResult:
    """Train SkipGramNeg on a token list; defaults are the course's settings.

    ``min_count``: keep words seen at least this often (course: > 5, i.e. 6).
    ``threshold=None`` turns subsampling off (useful on tiny corpora, where every word is
    "frequent"). ``resample_each_epoch`` draws a fresh subsample every epoch instead of
    the course's single one. ``max_steps`` stops after that many optimiser steps."""
    settings = {
        "embed_dim": embed_dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "window_size": window_size,
        "n_neg": n_neg,
        "lr": lr,
        "seed": seed,
        "threshold": threshold,
        "min_count": min_count,
        "max_steps": max_steps,
        "resample_each_epoch": resample_each_epoch,
    }
    _check_settings(settings, tokens)
    vocab, int_words = _numbered(tokens, min_count)
    counts = torch.bincount(torch.tensor(int_words), minlength=len(vocab))

    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    model = SkipGramNeg(len(vocab), embed_dim, noise_distribution(counts), generator=gen)

    def draw() -> list[int]:
        return subsample(int_words, threshold, gen) if threshold is not None else int_words

    train_words = draw()
    if len(train_words) < batch_size:
        raise ValueError(
            f"only {len(train_words)} words remain after min_count/subsampling, fewer than "
            f"batch_size={batch_size}: lower batch_size or threshold, or use a larger corpus"
        )
    n_train_words = len(train_words)

    def batches(epoch: int) -> Iterator[tuple[list[int], list[int]]]:
        nonlocal train_words
        if epoch > 0 and resample_each_epoch:
            train_words = draw()
        return skipgram_batches(train_words, batch_size, window_size, rng)

    step = SkipGramStep(n_neg, gen, epochs, print_every)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    res = fit(model, batches, step, optimizer=optimizer, epochs=epochs, max_steps=max_steps)
    return Word2VecResult(
        vocab=vocab,
        embeddings=model.in_embed.weight.detach().clone(),
        losses=step.losses,
        epoch_losses=[row["loss"] for row in res.epochs if "loss" in row],
        seconds=res.seconds[-1],
        steps=len(step.losses),
        train_words=n_train_words,
        settings=settings,
    )


# --------------------------------------------------------------------------- transfer


def embedding_from_word2vec(
    w2v_vocab: Vocab,
    vectors: Tensor,
    target_vocab: Vocab,
    embed_dim: int,
    generator: torch.Generator | None = None,
    *,
    std: float = 1.0,
) -> tuple[Tensor, float]:
    """An embedding matrix for ``target_vocab`` seeded with word2vec vectors.

    Rows of tokens that ``w2v_vocab`` contains (exact string match, so case must agree)
    are copied; the others are N(0, std²), ``nn.Embedding``'s own initialisation, so an
    uncovered word starts exactly as it would without word2vec. Returns the
    (len(target_vocab), embed_dim) tensor and the fraction of target rows copied."""
    if vectors.dim() != 2 or vectors.shape[0] != len(w2v_vocab):
        raise ValueError(
            f"vectors must be (len(w2v_vocab)={len(w2v_vocab)}, dim), got {tuple(vectors.shape)}"
        )
    if vectors.shape[1] != embed_dim:
        raise ValueError(f"embed_dim={embed_dim} but the word2vec vectors have {vectors.shape[1]}")
    if len(target_vocab) == 0:
        raise ValueError("target_vocab is empty")
    weight = torch.randn(len(target_vocab), embed_dim, generator=generator) * std
    pairs = [
        (i, w2v_vocab.stoi[tok]) for i, tok in enumerate(target_vocab.itos) if tok in w2v_vocab.stoi
    ]
    if pairs:
        rows, src = (torch.tensor(x) for x in zip(*pairs, strict=True))
        weight[rows] = vectors.detach().to(weight.dtype).cpu()[src]
    return weight, len(pairs) / len(target_vocab)
