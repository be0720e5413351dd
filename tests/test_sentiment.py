"""Sentiment RNN: the course's loader rules, its errors, and training on a made-up corpus.

The real reviews are not shipped, so every test writes its own reviews.txt/labels.txt."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from rnnsuite.data.fetch import DatasetMissing, MalformedData
from rnnsuite.data.sentiment import load_reviews, pad_features, split_dataset
from rnnsuite.models import SentimentRNN
from rnnsuite.train.sentiment import train_sentiment


def write(tmp_path: Path, reviews: list[str], labels: list[str]) -> tuple[Path, Path]:
    r, lab = tmp_path / "reviews.txt", tmp_path / "labels.txt"
    r.write_text("".join(line + "\n" for line in reviews), encoding="utf-8")
    lab.write_text("".join(line + "\n" for line in labels), encoding="utf-8")
    return r, lab


def synthetic_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Filler words plus one cue word: great/wonderful => positive, awful/terrible =>
    negative, at a random place in a review of 4-15 words, with punctuation sprinkled in."""
    rng = random.Random(seed)
    filler = ["the", "movie", "was", "a", "film", "plot", "and", "actors", "story", "it", "so"]
    cues = {"positive": ["great", "wonderful"], "negative": ["awful", "terrible"]}
    reviews, labels = [], []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = [rng.choice(filler) for _ in range(rng.randint(3, 14))]
        words.insert(rng.randint(0, len(words)), rng.choice(cues[label]))
        text = " ".join(w + rng.choice(["", "", "", ",", ".", "!"]) for w in words)
        reviews.append(text.capitalize() if rng.random() < 0.3 else text)
        labels.append(label)
    return reviews, labels


# --------------------------------------------------------------------------- loading


def test_loader_encodes_pads_and_truncates_like_the_course(tmp_path):
    reviews = [
        "Great movie!  great.",
        "awful, awful movie",
        "... !!!",  # nothing left after cleaning: dropped with its label
        "the movie was great and the movie was long",
    ]
    paths = write(tmp_path, reviews, ["positive", "negative", "positive", "positive"])
    data = load_reviews(*paths, seq_length=5)
    # by count (movie 4, great 3), ties (awful, the, was: 2) in first-seen order, from 1
    assert data.vocab.itos == ["<pad>", "movie", "great", "awful", "the", "was", "and", "long"]
    assert data.vocab.pad_index == 0
    assert data.features.tolist() == [
        [0, 0, 2, 1, 2],  # left-padded
        [0, 0, 3, 3, 1],
        [4, 1, 5, 2, 6],  # 9 words: the first 5 kept
    ]
    assert data.features.dtype == torch.long
    assert data.labels.tolist() == [1, 0, 1]
    assert data.lengths.tolist() == [3, 3, 9]
    assert data.dropped == 1


def test_pad_features_matches_the_notebook_example():
    assert pad_features([[117, 18, 128]], 10).tolist() == [[0] * 7 + [117, 18, 128]]
    assert pad_features([list(range(1, 13))], 10).tolist() == [list(range(1, 11))]
    assert pad_features([[]], 3).tolist() == [[0, 0, 0]]


def test_a_bad_label_names_file_and_line(tmp_path):
    paths = write(tmp_path, ["good film", "bad film", "meh"], ["positive", "negative", "neutral"])
    with pytest.raises(MalformedData, match=r"labels\.txt, line 3: label 'neutral'") as info:
        load_reviews(*paths)
    assert info.value.line == 3 and info.value.path == paths[1]


def test_a_blank_label_for_a_real_review_is_refused(tmp_path):
    paths = write(tmp_path, ["good film", "bad film"], ["positive", ""])
    with pytest.raises(MalformedData, match="line 2"):
        load_reviews(*paths)


def test_blank_lines_in_both_files_are_dropped(tmp_path):
    paths = write(tmp_path, ["good film", "", "bad film"], ["positive", "", "negative"])
    data = load_reviews(*paths, seq_length=3)
    assert data.labels.tolist() == [1, 0] and data.dropped == 1


def test_line_count_mismatch_is_refused(tmp_path):
    paths = write(tmp_path, ["good film", "bad film", "ok film"], ["positive", "negative"])
    with pytest.raises(MalformedData, match=r"labels\.txt, line 3: .*3 lines .* has 2") as info:
        load_reviews(*paths)
    assert info.value.path == paths[1]


def test_missing_files_say_the_data_is_not_shipped(tmp_path):
    reviews, _ = write(tmp_path, ["good film"], ["positive"])
    with pytest.raises(DatasetMissing, match="not shipped") as info:
        load_reviews(reviews, tmp_path / "nowhere" / "labels.txt")
    message = str(info.value)
    assert "labels.txt" in message and "reviews.txt" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetMissing, match="reviews file"):
        load_reviews(tmp_path / "missing.txt", tmp_path / "labels.txt")


# --------------------------------------------------------------------------- splitting


def test_split_dataset_as_the_course_cuts():
    x, y = torch.arange(50).view(25, 2), torch.arange(25)
    (xt, yt), (xv, yv), (xs, ys) = split_dataset(x, y)
    assert torch.equal(xv, x[20:22])
    assert yt.tolist() == list(range(20))
    assert yv.tolist() == [20, 21] and ys.tolist() == [22, 23, 24]  # int(5 * 0.5) = 2
    assert torch.equal(xt, x[:20]) and torch.equal(xs, x[22:])
    shuffled = split_dataset(x, y, seed=0)
    again = split_dataset(x, y, seed=0)
    assert torch.equal(shuffled[0][1], again[0][1])
    assert not torch.equal(shuffled[0][1], yt)
    assert sorted(torch.cat([part[1] for part in shuffled]).tolist()) == list(range(25))


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.9, 0.1, 0.1), (1.2, -0.1, -0.1)])
def test_split_dataset_refuses_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(torch.zeros(10, 3), torch.zeros(10), fractions)


# --------------------------------------------------------------------------- model + training


def test_sentiment_rnn_gives_one_probability_per_review():
    torch.manual_seed(0)
    model = SentimentRNN(30, embedding_dim=8, hidden_dim=12, n_layers=2).eval()
    x = torch.randint(1, 30, (7, 11))
    probs = model(x)
    assert probs.shape == (7,)
    assert bool(((probs > 0) & (probs < 1)).all())
    with torch.no_grad():  # the last step alone decides
        out, _ = model.rnn(model.embedding(x))
        assert torch.allclose(probs, model.fc(out[:, -1]).sigmoid().squeeze(-1))


SMALL = dict(
    embedding_dim=16,
    hidden_dim=24,
    n_layers=1,
    dropout=0.0,
    output_dropout=0.1,
    lr=0.01,
    epochs=6,
    batch_size=25,
    seed=0,
)


def test_training_on_the_cue_word_corpus(tmp_path):
    reviews, labels = synthetic_corpus(400)
    data = load_reviews(*write(tmp_path, reviews, labels), seq_length=20)
    assert data.features.shape == (400, 20)
    result = train_sentiment(data, **SMALL)
    again = train_sentiment(data, **SMALL)
    assert result.epochs == again.epochs and result.test_accuracy == again.test_accuracy
    assert result.test_accuracy > 0.9, result.epochs
    assert result.epochs[-1]["train_loss"] < result.epochs[0]["train_loss"]
