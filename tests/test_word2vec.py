"""Word2vec skip-gram with negative sampling: pipeline pieces, loss, training, transfer."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pytest
import torch

from rnnsuite.data import DatasetMissing, Vocab
from rnnsuite.models.word2vec import NegativeSamplingLoss, SkipGramNeg, nearest_neighbours
from rnnsuite.train.word2vec import (
    corpus_tokens,
    embedding_from_word2vec,
    get_target,
    keep_probabilities,
    noise_distribution,
    skipgram_batches,
    subsample,
    train_word2vec,
)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- subsampling


def constructed_corpus() -> list[int]:
    """10,000 tokens: id 0 ×6400 (f=0.64), id 1 ×100 (f=0.01), id 2 ×4 (f=4e-4, = t below),
    ids 3..3498 once each (f=1e-4 < t), shuffled with a fixed seed."""
    words = [0] * 6400 + [1] * 100 + [2] * 4 + list(range(3, 3499))
    random.Random(0).shuffle(words)
    assert len(words) == 10_000
    return words


T = 4e-4


def test_keep_probability_is_mikolov_formula() -> None:
    words = constructed_corpus()
    keep = keep_probabilities(torch.bincount(torch.tensor(words)), T)
    # P(keep) = sqrt(t / f): sqrt(4e-4 / 0.64) = 0.025, sqrt(4e-4 / 0.01) = 0.2
    assert keep[0].item() == pytest.approx(0.025, rel=1e-12)
    assert keep[1].item() == pytest.approx(0.2, rel=1e-12)
    assert keep[2].item() == pytest.approx(1.0, rel=1e-12)  # f == t: never dropped
    assert torch.all(keep[3:] == 1.0)  # f < t: clamped to 1, never dropped


def test_subsample_drops_frequent_words_and_keeps_rare_ones() -> None:
    words = constructed_corpus()
    kept = subsample(words, T, torch.Generator().manual_seed(1))
    counts = torch.bincount(torch.tensor(kept), minlength=3499)
    # every word with f <= t survives, each occurrence of it
    assert counts[2].item() == 4
    assert torch.all(counts[3:] == 1)
    # binomial(6400, 0.025): mean 160, sd 12.5; binomial(100, 0.2): mean 20, sd 4
    assert 110 <= counts[0].item() <= 210
    assert 6 <= counts[1].item() <= 34
    # the frequent word loses a larger share than the mid-frequency one
    assert counts[0].item() / 6400 < counts[1].item() / 100
    # order of the survivors is the corpus order
    positions = [i for i, w in enumerate(words) if w >= 3]
    assert [w for w in kept if w >= 3] == [words[i] for i in positions]


def test_subsample_is_deterministic_given_the_generator() -> None:
    words = constructed_corpus()
    a = subsample(words, T, torch.Generator().manual_seed(5))
    b = subsample(words, T, torch.Generator().manual_seed(5))
    c = subsample(words, T, torch.Generator().manual_seed(6))
    assert a == b
    assert a != c


# --------------------------------------------------------------------------- windows, batches


def test_get_target_window_bounds_and_excludes_centre() -> None:
    words = list(range(20))  # distinct values, so a target names its position
    rng = random.Random(0)
    window = 4
    radii = set()
    for _ in range(200):
        targets = get_target(words, 10, window, rng)
        assert 10 not in targets
        radius = len(targets) // 2
        assert targets == list(range(10 - radius, 10)) + list(range(11, 11 + radius))
        radii.add(radius)
    assert radii == {1, 2, 3, 4}  # R in [1, window], each value reached
    for _ in range(50):  # clipped at both ends of the list
        left = get_target(words, 0, window, rng)
        assert left == list(range(1, 1 + len(left))) and 1 <= len(left) <= window
        right = get_target(words, 19, window, rng)
        assert right == list(range(19 - len(right), 19)) and 1 <= len(right) <= window


def test_skipgram_batches_pairs_stay_inside_their_batch() -> None:
    words = list(range(23))
    batches = list(skipgram_batches(words, 5, 2, random.Random(0)))
    assert len(batches) == 4  # 23 // 5; the partial batch of 3 is dropped
    for b, (inputs, targets) in enumerate(batches):
        assert len(inputs) == len(targets) > 0
        lo, hi = 5 * b, 5 * b + 5
        for x, y in zip(inputs, targets, strict=True):
            assert lo <= x < hi and lo <= y < hi and x != y and abs(x - y) <= 2
    kept_all = list(skipgram_batches(words, 5, 2, random.Random(0), drop_last=False))
    assert len(kept_all) == 5


# --------------------------------------------------------------------------- noise, model, loss


def test_noise_distribution_is_unigram_to_three_quarters() -> None:
    dist = noise_distribution([1, 16, 81, 0])
    expected = torch.tensor([1.0, 8.0, 27.0, 0.0]) / 36.0  # 16^0.75 = 8, 81^0.75 = 27
    torch.testing.assert_close(dist, expected)
    with pytest.raises(ValueError, match="positive sum"):
        noise_distribution([0, 0])


def test_forward_noise_samples_from_the_noise_distribution() -> None:
    dist = torch.zeros(6)
    dist[3] = 1.0
    model = SkipGramNeg(6, 4, dist, generator=torch.Generator().manual_seed(0))
    noise = model.forward_noise(7, 5, generator=torch.Generator().manual_seed(0))
    assert noise.shape == (7, 5, 4)
    torch.testing.assert_close(noise, model.out_embed.weight[3].expand(7, 5, 4))
    w = model.in_embed.weight
    assert w.min() >= -1 and w.max() <= 1 and w.abs().max() > 0.5  # uniform(-1, 1)


def test_loss_matches_hand_computation() -> None:
    v = torch.tensor([[1.0, 0.0], [0.5, -1.0]])  # centre vectors v_c
    u = torch.tensor([[2.0, 1.0], [0.0, 1.0]])  # true context vectors u_o
    noise = torch.tensor([[[1.0, 1.0], [-1.0, 0.0]], [[2.0, 0.0], [0.0, -2.0]]])  # u_k

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    # example 0: u_o·v = 2; noise dots 1, -1.  example 1: u_o·v = -1; noise dots 1, 2
    ex0 = log_sigmoid(2.0) + log_sigmoid(-1.0) + log_sigmoid(1.0)
    ex1 = log_sigmoid(-1.0) + log_sigmoid(-1.0) + log_sigmoid(-2.0)
    expected = -(ex0 + ex1) / 2
    loss = NegativeSamplingLoss()(v, u, noise)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_loss_stays_finite_for_extreme_scores() -> None:
    v = torch.tensor([[100.0]])
    loss = NegativeSamplingLoss()(v, -v, v.view(1, 1, 1))  # scores -1e4 and +1e4
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(2e4)


def test_gradients_reach_both_embedding_tables() -> None:
    model = SkipGramNeg(10, 3, noise_distribution(torch.ones(10)), generator=torch.Generator())
    inputs, targets = torch.tensor([1, 2, 2]), torch.tensor([4, 5, 6])
    loss = NegativeSamplingLoss()(
        model.forward_input(inputs),
        model.forward_output(targets),
        model.forward_noise(3, 4, generator=torch.Generator().manual_seed(0)),
    )
    loss.backward()
    g_in, g_out = model.in_embed.weight.grad, model.out_embed.weight.grad
    used = torch.zeros(10, dtype=torch.bool)
    used[inputs] = True
    assert torch.all(g_in[used].abs().sum(1) > 0)
    assert torch.all(g_in[~used] == 0)  # only centre words get input-side gradients
    assert torch.all(g_out[targets].abs().sum(1) > 0)


def test_nearest_neighbours_by_cosine_excludes_the_word() -> None:
    w = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, -0.5]])
    ids, sims = nearest_neighbours(w, [0, 2], 2)
    assert ids.tolist() == [[1, 2], [1, 0]]
    assert sims[0, 0].item() == pytest.approx(10 / math.sqrt(101))
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(w, [0], 4)


# --------------------------------------------------------------------------- training


def two_topic_corpus(seed: int = 0, chunks: int = 300, length: int = 8) -> list[str]:
    """Runs of 8 words, each run from one of two disjoint 8-word vocabularies."""
    rng = random.Random(seed)
    topics = [[f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]]
    words: list[str] = []
    for _ in range(chunks):
        topic = topics[rng.randrange(2)]
        words += [rng.choice(topic) for _ in range(length)]
    return words


TINY = {"embed_dim": 16, "batch_size": 128, "window_size": 3, "n_neg": 5, "min_count": 1}


def test_same_seed_gives_identical_losses() -> None:
    words = two_topic_corpus()
    runs = [
        train_word2vec(words, **TINY, epochs=1, lr=0.01, seed=s, threshold=None, max_steps=6)
        for s in (3, 3, 4)
    ]
    assert runs[0].steps == 6 and len(runs[0].losses) == 6
    assert runs[0].losses == runs[1].losses
    torch.testing.assert_close(runs[0].embeddings, runs[1].embeddings, rtol=0, atol=0)
    assert runs[0].losses != runs[2].losses


def test_same_seed_identical_with_subsampling() -> None:
    words = two_topic_corpus(chunks=600)
    kw = {**TINY, "epochs": 2, "lr": 0.01, "seed": 0, "threshold": 0.02, "max_steps": 8}
    a = train_word2vec(words, **kw, resample_each_epoch=True)
    b = train_word2vec(words, **kw, resample_each_epoch=True)
    assert a.train_words < len(words)  # the threshold did drop words
    assert a.losses == b.losses


def topic_mismatches(result, k: int = 3) -> int:
    ids, _ = nearest_neighbours(result.embeddings, list(range(len(result.vocab))), k)
    itos = result.vocab.itos
    return sum(itos[i][0] != itos[j][0] for i in range(len(itos)) for j in ids[i].tolist())


def test_neighbours_come_from_the_same_topic() -> None:
    words = two_topic_corpus()
    trained = train_word2vec(words, **TINY, epochs=10, lr=0.05, seed=0, threshold=None)
    assert trained.epoch_losses[-1] < trained.epoch_losses[0] - 0.5
    assert topic_mismatches(trained) == 0
    # the check has teeth: after a single step the neighbours are still mixed
    untrained = train_word2vec(
        words, **TINY, epochs=1, lr=0.05, seed=0, threshold=None, max_steps=1
    )
    assert topic_mismatches(untrained) > 5
    top = trained.neighbours("a0", k=3)
    assert all(word.startswith("a") for word, _ in top)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 0}, "window_size must be >= 1"),
        ({"n_neg": 0}, "n_neg must be >= 1"),
        ({"embed_dim": 0}, "embed_dim must be >= 1"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"threshold": 0.0}, "threshold must be > 0"),
        ({"min_count": 1000}, "fewer than 2 words"),
        ({"batch_size": 100_000}, "fewer than batch_size"),
    ],
)
def test_bad_settings_raise_value_error(kwargs: dict, message: str) -> None:
    settings = {**TINY, "threshold": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_word2vec(two_topic_corpus(chunks=20), **settings)


def test_empty_corpus_and_bad_pieces_raise_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        train_word2vec([])
    with pytest.raises(ValueError, match="empty"):
        subsample([], 1e-3)
    with pytest.raises(ValueError, match="window_size"):
        get_target([1, 2, 3], 1, 0, random.Random(0))
    with pytest.raises(ValueError, match="window_size"):
        next(skipgram_batches([1, 2, 3], 2, 0, random.Random(0)))
    with pytest.raises(ValueError, match="noise_dist"):
        SkipGramNeg(5, 2, torch.ones(4))


# --------------------------------------------------------------------------- transfer, corpora


def test_embedding_from_word2vec_copies_rows_and_reports_coverage() -> None:
    w2v_vocab = Vocab(["a", "b", "c"])
    vectors = torch.arange(6.0).view(3, 2)
    target = Vocab(["<pad>", "c", "x", "a"], unk_token="<pad>")
    weight, coverage = embedding_from_word2vec(
        w2v_vocab, vectors, target, 2, torch.Generator().manual_seed(0)
    )
    assert weight.shape == (4, 2)
    assert coverage == 0.5
    torch.testing.assert_close(weight[1], vectors[2])
    torch.testing.assert_close(weight[3], vectors[0])
    expected_random = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(weight[[0, 2]], expected_random[[0, 2]])
    with pytest.raises(ValueError, match="embed_dim"):
        embedding_from_word2vec(w2v_vocab, vectors, target, 3)


def data_root() -> Path | None:
    env = os.environ.get("RNNSUITE_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.mark.parametrize("name", ["ptb", "time_machine"])
def test_corpus_tokens(name: str) -> None:
    root = data_root()
    try:
        tokens = corpus_tokens(name, root=root)
    except DatasetMissing:
        pytest.skip(f"{name} absent: set RNNSUITE_DATA to a directory holding it")
    if name == "ptb":
        assert len(tokens) == 887_521  # 929,589 training tokens minus 42,068 <eos>
        assert "<unk>" in tokens and "<eos>" not in tokens
    else:
        assert all(t.isalpha() and t.islower() for t in tokens)
        assert tokens[:3] == ["the", "time", "machine"]


def test_unknown_corpus_name() -> None:
    with pytest.raises(ValueError, match="unknown corpus"):
        corpus_tokens("wikitext")
