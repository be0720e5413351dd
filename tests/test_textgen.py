"""TV-script pieces: sampling, generation, ScriptRNN semantics and train_script.

The training tests run on a slice of the real Seinfeld scripts and skip, naming the
file, when it is absent (RNNSUITE_DATA, else <repo>/../shared/data)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import rnnsuite
from rnnsuite.data import Seinfeld, Vocab, load_seinfeld, seinfeld_token_lookup
from rnnsuite.models import ScriptRNN
from rnnsuite.textgen import generate_script, sample_next, tokens_to_text
from rnnsuite.train.loops import NonFiniteLoss
from rnnsuite.train.script import train_script

TOKENS = seinfeld_token_lookup()
SMALL_ITOS = [
    "||newline||",
    "||period||",
    "||comma||",
    "jerry:",
    "hello",
    "george:",
    "||exclamation_mark||",
    "<PAD>",
]


def small_vocab() -> Vocab:
    return Vocab(SMALL_ITOS, pad_token="<PAD>")


def shared_data_dir() -> Path | None:
    env = os.environ.get("RNNSUITE_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.fixture(scope="module")
def seinfeld_slice() -> Seinfeld:
    """The first 20,000 tokens of the real scripts, with the full 21k-word vocabulary."""
    data_dir = shared_data_dir()
    if data_dir is None or not (data_dir / "seinfeld" / "Seinfeld_Scripts.txt").is_file():
        pytest.skip("seinfeld/Seinfeld_Scripts.txt absent: set RNNSUITE_DATA to a directory")
    full = load_seinfeld(data_dir, use_cache=False)
    n = 20_000
    return Seinfeld(full.words[:n], full.vocab, full.int_text[:n], full.token_dict)


# --------------------------------------------------------------------------- sampling


def test_top_k_one_is_the_argmax():
    logits = torch.randn(64, 100, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        got = sample_next(logits, top_k=1, temperature=3.0, generator=gen)
        assert torch.equal(got, logits.argmax(-1))


def test_low_temperature_concentrates_on_the_argmax():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(1)) * 2
    rows = logits.expand(4000, -1)
    best = int(logits.argmax())

    def share_of_argmax(temperature: float) -> float:
        gen = torch.Generator().manual_seed(0)
        ids = sample_next(rows, temperature=temperature, generator=gen)
        return float((ids == best).float().mean())

    assert share_of_argmax(0.02) == 1.0
    assert share_of_argmax(1.0) < 0.8
    assert share_of_argmax(1.0) < share_of_argmax(0.5) < share_of_argmax(0.1)


def test_temperature_one_samples_the_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])
    ids = sample_next(logits.expand(40_000, -1), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=5).double() / len(ids)
    assert torch.allclose(freq, torch.softmax(logits.double(), 0), atol=0.01)


def test_top_k_keeps_exactly_the_k_best():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0, 2.8, 0.0])
    ids = sample_next(logits.expand(3000, -1), top_k=3, generator=torch.Generator().manual_seed(0))
    assert set(ids.tolist()) == {1, 2, 4}
    assert sample_next(logits, top_k=50, generator=torch.Generator()).shape == ()


def test_sampling_repeats_with_the_seed():
    logits = torch.randn(8, 30, generator=torch.Generator().manual_seed(2))
    a = sample_next(logits, top_k=5, generator=torch.Generator().manual_seed(7))
    b = sample_next(logits, top_k=5, generator=torch.Generator().manual_seed(7))
    c = sample_next(logits, top_k=5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("temperature", [0, 0.0, -1.0, math.nan, math.inf, True, "1"])
def test_bad_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature"):
        sample_next(torch.zeros(4), temperature=temperature)


@pytest.mark.parametrize("top_k", [0, -2, 2.5, True])
def test_bad_top_k_is_refused(top_k):
    with pytest.raises(ValueError, match="top_k"):
        sample_next(torch.zeros(4), top_k=top_k)


# --------------------------------------------------------------------------- detokenising


def test_tokens_back_to_punctuation():
    words = (
        "jerry: hello ||comma|| george ||period|| ||newline|| elaine: ||left_parenthesis|| "
        "laughs ||right_parenthesis|| no ||exclamation_mark|| he said ||quotation_mark|| "
        "hi ||quotation_mark|| ||semicolon|| well ||double_hyphen|| ok ||period||"
    )
    assert tokens_to_text(words.split(), TOKENS) == (
        'jerry: hello, george.\nelaine: (laughs) no! he said "hi"; well- ok.'
    )


def test_the_question_mark_quirk_reads_back_as_a_period():
    # the seed maps both '.' and '?' to ||period||; the first listed ('.') must win
    assert tokens_to_text(["what", "||period||"], TOKENS) == "what."


# --------------------------------------------------------------------------- generation


class WindowRecorder(nn.Module):
    """Prefers (last id + 1) mod V, then id 0, and records every window it is shown."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(1))
        self.windows: list[list[int]] = []

    def forward(self, ids, hidden=None):
        self.windows.append(ids[0].tolist())
        logits = torch.full((1, self.vocab_size), -5.0)
        logits[0, 0] = 0.0
        logits[0, (int(ids[0, -1]) + 1) % self.vocab_size] = 5.0
        return logits, hidden


def test_generation_slides_a_left_padded_window():
    vocab = small_vocab()
    pad, prime = vocab.pad_index, vocab["jerry:"]
    model = WindowRecorder(len(vocab))
    text = generate_script(model, vocab, TOKENS, "jerry:", 5, 4, top_k=1, seed=0)
    assert model.windows[:3] == [
        [pad, pad, pad, prime],
        [pad, pad, prime, prime + 1],
        [pad, prime, prime + 1, prime + 2],
    ]
    # after '!' (6) comes the pad id (7): it is masked, so the runner-up, newline (0), is drawn
    assert model.windows[3:] == [[prime, 4, 5, 6], [4, 5, 6, 0]]
    assert text == "jerry: hello george:!\n."


def _tiny_model(seed: int = 0) -> ScriptRNN:
    torch.manual_seed(seed)
    return ScriptRNN(len(SMALL_ITOS), len(SMALL_ITOS), 8, 16, 2, dropout=0.5)


def test_generate_script_is_repeatable_and_readable():
    vocab, model = small_vocab(), _tiny_model()
    model.train()
    a = generate_script(model, vocab, TOKENS, "jerry:", 80, 6, top_k=None, seed=3)
    b = generate_script(model, vocab, TOKENS, "jerry:", 80, 6, top_k=None, seed=3)
    c = generate_script(model, vocab, TOKENS, "jerry:", 80, 6, top_k=None, seed=4)
    assert a == b and a != c
    assert model.training  # the mode is restored
    assert a.startswith("jerry:")
    assert "." in a and "\n" in a
    assert "||" not in a and "<PAD>" not in a


def test_unknown_prime_word_names_the_fix():
    vocab, model = small_vocab(), _tiny_model()
    with pytest.raises(ValueError, match=r"'jerry:'"):
        generate_script(model, vocab, TOKENS, "Jerry", 5, 4)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        generate_script(model, vocab, TOKENS, "newman:", 5, 4)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        generate_script(model, vocab, TOKENS, "<PAD>", 5, 4)


# --------------------------------------------------------------------------- ScriptRNN


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_script_rnn_shapes(arch):
    torch.manual_seed(0)
    model = ScriptRNN(30, 25, 8, 12, 3, arch=arch)
    logits, hidden = model(torch.randint(0, 30, (5, 7)))
    assert logits.shape == (5, 25)
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    assert len(parts) == (2 if arch == "lstm" else 1)
    assert all(p.shape == (3, 5, 12) for p in parts)
    init = model.init_hidden(5)
    assert all(torch.equal(p, torch.zeros(3, 5, 12)) for p in (init if arch == "lstm" else (init,)))


def test_script_rnn_predicts_from_the_last_step():
    torch.manual_seed(0)
    model = ScriptRNN(40, 40, 8, 16, 2).eval()
    x = torch.randint(0, 40, (4, 9))
    with torch.no_grad():
        logits, _ = model(x)
        out, _ = model.rnn(model.embedding(x))
        every_step = model.fc(out)  # (B, T, V)
        assert torch.allclose(logits, every_step[:, -1], atol=1e-6)
        for t in range(1, 10):  # a truncated input predicts what the full run says at t-1
            assert torch.allclose(model(x[:, :t])[0], every_step[:, t - 1], atol=1e-5)
        assert torch.allclose(model(x, model.init_hidden(4))[0], logits)
        changed = x.clone()
        changed[:, 0] = (x[:, 0] + 1) % 40  # only the first (earliest) word differs
        assert not torch.allclose(model(changed)[0], logits, atol=1e-4)


def test_dropout_sits_between_layers_only():
    torch.manual_seed(0)
    model = ScriptRNN(20, 20, 8, 16, 2, dropout=0.5)
    x = torch.randint(0, 20, (6, 5))
    assert not torch.allclose(model(x)[0], model(x)[0])  # training: dropout is on
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about dropout on a single layer
        single = ScriptRNN(20, 20, 8, 16, 1, dropout=0.5)
    assert single.dropout == 0.0


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
def test_scratch_and_builtin_script_rnn_agree(arch):
    torch.manual_seed(0)
    builtin = ScriptRNN(50, 50, 8, 16, 2, arch=arch, impl="builtin").eval()
    scratch = ScriptRNN(50, 50, 8, 16, 2, arch=arch, impl="scratch").eval()
    scratch.embedding.load_state_dict(builtin.embedding.state_dict())
    scratch.fc.load_state_dict(builtin.fc.state_dict())
    rnnsuite.copy_weights(builtin.rnn, scratch.rnn)
    x = torch.randint(0, 50, (3, 11))
    with torch.no_grad():
        (a, ha), (b, hb) = builtin(x), scratch(x)
    assert torch.allclose(a, b, atol=1e-5)
    for p, q in zip(
        ha if isinstance(ha, tuple) else (ha,), hb if isinstance(hb, tuple) else (hb,), strict=True
    ):
        assert torch.allclose(p, q, atol=1e-5)


# --------------------------------------------------------------------------- training

TRAIN = dict(
    sequence_length=10,
    batch_size=32,
    embedding_dim=16,
    hidden_dim=32,
    n_layers=2,
    dropout=0.5,
    lr=0.01,
    epochs=1,
    arch="lstm",
    impl="builtin",
    max_batches=30,
    log_every=10,
)


def test_train_script_is_deterministic_and_learns(seinfeld_slice):
    rng_before = torch.get_rng_state()
    a = train_script(seinfeld_slice, seed=0, **TRAIN)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched
    torch.manual_seed(12345)  # and the caller's RNG state does not matter
    b = train_script(seinfeld_slice, seed=0, **TRAIN)
    c = train_script(seinfeld_slice, seed=1, **TRAIN)
    assert a.batches == 30 and len(a.losses) == 3 and len(a.epoch_losses) == 1
    assert a.losses == b.losses and a.epoch_losses == b.epoch_losses
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    )
    assert a.losses != c.losses
    # from ~ln(21387) = 10 towards the unigram entropy: a clear drop within 30 batches
    assert a.losses[0] > a.losses[1] > a.losses[2]
    assert a.losses[-1] < a.losses[0] - 1.5


def test_train_script_refuses_a_non_finite_loss():
    vocab = small_vocab()
    ids = torch.randint(0, len(vocab) - 1, (600,), generator=torch.Generator().manual_seed(0))
    data = Seinfeld(vocab.decode(ids), vocab, ids, TOKENS)
    with pytest.raises(NonFiniteLoss, match="lower the learning rate"):
        train_script(data, **{**TRAIN, "lr": math.inf, "max_batches": 10}, seed=0)


def test_train_script_stops_below_a_target(seinfeld_slice):
    full = train_script(seinfeld_slice, seed=0, **TRAIN)
    target = (full.losses[0] + full.losses[1]) / 2  # the second logged loss passes it
    cut = train_script(seinfeld_slice, seed=0, **TRAIN, stop_below=target)
    assert cut.batches == 2 * TRAIN["log_every"] and cut.losses == full.losses[:2]
    assert cut.config["stop_below"] == target
    with pytest.raises(ValueError, match="stop_below"):
        train_script(seinfeld_slice, seed=0, **TRAIN, stop_below=float("nan"))
