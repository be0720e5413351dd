"""The Transformer baseline: masking, determinism, learning, and the recipes' loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnnsuite import data as rdata
from rnnsuite.models import (
    PositionalEncoding,
    TransformerCharLM,
    TransformerClassifier,
    TransformerLM,
)
from rnnsuite.train.loops import (
    classification_accuracy,
    classification_epoch,
    fit_one_cycle_lm,
    train_char_lm,
)
from rnnsuite.train.schedule import fastai_adam


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: the numbers below do not depend on the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _padded(seqs: list[torch.Tensor], fill: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(seqs), max(len(s) for s in seqs)), fill, dtype=torch.long)
    for row, s in zip(ids, seqs, strict=True):
        row[: len(s)] = s
    return ids, torch.tensor([len(s) for s in seqs])


# -- causality -----------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_lm_logits_at_t_ignore_tokens_after_t(training):
    torch.manual_seed(0)
    model = TransformerLM(20, 32, 2, num_heads=4, dropout=0.1).train(training)
    ids = torch.randint(0, 20, (3, 12))
    for t in (0, 4, 10):
        changed = ids.clone()
        changed[:, t + 1 :] = (ids[:, t + 1 :] + 1 + torch.randint(0, 18, (3, 11 - t))) % 20
        torch.manual_seed(1)  # the same dropout masks for both calls
        a = model(ids)[0]
        torch.manual_seed(1)
        b = model(changed)[0]
        torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :], atol=1e-3)  # later ones move


def test_lm_eval_matches_with_and_without_grad():
    """Without grad torch takes its fused encoder-layer kernel; the numbers must agree."""
    torch.manual_seed(0)
    model = TransformerLM(20, 32, 2, num_heads=4, dropout=0.3).eval()
    ids = torch.randint(0, 20, (4, 16))
    with_grad = model(ids)[0]
    with torch.no_grad():
        no_grad = model(ids)[0]
    torch.testing.assert_close(with_grad.detach(), no_grad, atol=1e-5, rtol=0)


def test_char_lm_token_by_token_with_state_equals_one_pass():
    torch.manual_seed(0)
    model = TransformerCharLM(15, 32, 2, num_heads=4).eval()
    ids = torch.randint(0, 15, (2, 9))
    with torch.no_grad():
        whole, state = model(ids)
        assert torch.equal(state, ids)
        state, steps = None, []
        for t in range(ids.shape[1]):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=0)


def test_char_lm_state_keeps_only_the_window():
    torch.manual_seed(0)
    model = TransformerCharLM(15, 32, 1, num_heads=4, window=4).eval()
    ids = torch.randint(0, 15, (1, 10))
    with torch.no_grad():
        state = None
        for t in range(ids.shape[1]):
            last, state = model(ids[:, t : t + 1], state)
        assert torch.equal(state, ids[:, -4:])
        torch.testing.assert_close(last[:, -1], model(ids[:, -4:])[0][:, -1], atol=1e-5, rtol=0)


# -- padding ---------------------------------------------------------------------------------
def _classifier(**kw) -> TransformerClassifier:
    torch.manual_seed(0)
    return TransformerClassifier(50, 32, 3, num_heads=4, num_layers=2, **kw).eval()


def test_classifier_ignores_padding_and_batch_mates():
    model = _classifier()
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 50, (n,), generator=gen) for n in (7, 2, 5, 1)]
    ids, lengths = _padded(seqs)
    junk = ids.clone()
    pad = torch.arange(ids.shape[1]) >= lengths[:, None]
    junk[pad] = torch.randint(1, 50, (int(pad.sum()),), generator=gen)
    with torch.no_grad():
        batched = model(ids, lengths)
        with_junk = model(junk, lengths)
        alone = torch.cat([model(s[None]) for s in seqs])
        alone_wider = torch.cat([model(_padded([s, seqs[0]])[0][:1]) for s in seqs])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_junk, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone_wider, alone, atol=1e-5, rtol=0)


def test_classifier_lengths_and_pad_id_masks_agree():
    model = _classifier(pad_id=3)
    gen = torch.Generator().manual_seed(1)
    seqs = [torch.randint(4, 50, (n,), generator=gen) for n in (6, 3, 1)]
    ids, lengths = _padded(seqs, fill=3)
    assert torch.equal(model.padding_mask(ids), model.padding_mask(ids, lengths))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(ids, lengths), atol=1e-6, rtol=0)
        unmasked = _classifier(pad_id=0)(ids)  # nothing is id 0: padding counts as text
    assert not torch.allclose(unmasked, model(ids).detach(), atol=1e-3)


def test_classifier_rejects_empty_sequences_and_bad_lengths():
    model = _classifier()
    ids = torch.tensor([[5, 6, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="no valid position"):
        model(ids)
    with pytest.raises(ValueError, match="no valid position"):
        model(ids, torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="exceeds the padded width 3"):
        model(ids, torch.tensor([2, 4]))
    with pytest.raises(ValueError, match="lengths has shape"):
        model(ids, torch.tensor([2, 1, 1]))


# -- construction --------------------------------------------------------------------------
def test_tie_shares_one_tensor_through_training():
    torch.manual_seed(0)
    model = TransformerLM(30, 32, 1, num_heads=4, tie=True)
    assert model.h_o.weight is model.i_h.weight
    assert (
        sum(p.numel() for p in model.parameters())
        == sum(p.numel() for p in TransformerLM(30, 32, 1, num_heads=4).parameters()) - 30 * 32
    )
    opt = fastai_adam(model, 1e-2)
    logits = model(torch.randint(0, 30, (2, 8)))[0]
    logits.sum().backward()
    opt.step()
    assert model.h_o.weight is model.i_h.weight


@pytest.mark.parametrize("cls", [TransformerClassifier, TransformerLM, TransformerCharLM])
def test_width_must_divide_into_heads(cls):
    with pytest.raises(ValueError, match=r"embedding size 30 must be divisible by num_heads=4"):
        cls(40, 30, num_heads=4)


def test_too_long_sequence_names_max_len():
    model = TransformerLM(10, 16, 1, num_heads=2, max_len=8)
    model(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"9 positions is longer than max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"max_len=8"):
        _classifier(max_len=8)(torch.ones(2, 9, dtype=torch.long))


def test_positional_encoding_is_sinusoidal_and_not_saved():
    pe = PositionalEncoding(6, max_len=5)
    assert "pe" in dict(pe.named_buffers()) and "pe" not in pe.state_dict()
    out = pe(torch.zeros(1, 3, 6))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 1, 0, 1, 0, 1]))
    torch.testing.assert_close(out[0, 2, :2], torch.tensor([math.sin(2), math.cos(2)]))
    assert PositionalEncoding(5, 4)(torch.zeros(1, 4, 5)).shape == (1, 4, 5)  # odd width


# -- determinism and learning --------------------------------------------------------------
def _lm_losses(seed: int) -> list[float]:
    torch.manual_seed(seed)
    model = TransformerLM(12, 32, 2, num_heads=4, dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 12, (4, 10), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(4):
        loss = F.cross_entropy(model(ids[:, :-1])[0].flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_same_seed_same_losses():
    assert _lm_losses(3) == _lm_losses(3)
    assert _lm_losses(3) != _lm_losses(4)


def test_lm_learns_a_pattern_that_needs_two_tokens_of_context():
    """0 1 0 2 0 3 0 4 ...: after a 0 the next token depends on the one before it."""
    pattern = torch.tensor([0, 1, 0, 2, 0, 3, 0, 4])
    stream = pattern.repeat(20)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TransformerLM(5, 32, 2, num_heads=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        starts = torch.randint(0, 8, (16,), generator=gen)
        seq = torch.stack([stream[s : s + 13] for s in starts])
        logits = model(seq[:, :-1])[0]
        loss = F.cross_entropy(logits[:, 2:].flatten(0, 1), seq[:, 3:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    seq = torch.stack([stream[s : s + 13] for s in range(8)])
    with torch.no_grad():
        logits = model(seq[:, :-1])[0]
    assert F.cross_entropy(logits[:, 2:].flatten(0, 1), seq[:, 3:].flatten()) < 0.05
    assert torch.equal(logits[:, 2:].argmax(-1), seq[:, 3:])


def _two_set_batches(n: int, seed: int) -> list[tuple[torch.Tensor, ...]]:
    """AG-News-like batches: (labels, ids padded with 0, lengths); class 0 draws its words
    from 1..10, class 1 from 11..20."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        labels = torch.randint(0, 2, (8,), generator=gen)
        seqs = [
            torch.randint(1, 11, (int(torch.randint(2, 12, (1,), generator=gen)),), generator=gen)
            + 10 * int(y)
            for y in labels
        ]
        ids, lengths = _padded(seqs)
        batches.append((labels, ids, lengths))
    return batches


def test_classifier_separates_two_token_sets_with_classification_epoch():
    torch.manual_seed(0)
    model = TransformerClassifier(21, 32, 2, num_heads=4, num_layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = _two_set_batches(40, seed=0)
    out = classification_epoch(model, train, opt, report_every=10)
    assert set(out) >= {"loss", "accuracy", "samples", "curve"} and out["samples"] == 320
    out = classification_epoch(model, [b[:2] for b in train], opt)  # (labels, ids) batches
    assert out["accuracy"] > 0.9
    test = _two_set_batches(10, seed=1)
    assert classification_accuracy(model, test) == 1.0
    assert classification_accuracy(model, [b[:2] for b in test]) == 1.0


# -- the recipes' loops --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_kw", "train_kw", "margin"),
    [
        ({}, {"wd": 0.01}, 0.5),  # hn_lmmodel6's settings
        ({"dropout": 0.1, "tie": True}, {"wd": 0.1, "alpha": 2.0, "beta": 1.0}, 0.25),  # 7's
    ],
    ids=["lmmodel6", "lmmodel7"],
)
def test_lm_trains_with_fit_one_cycle_lm_on_human_numbers(model_kw, train_kw, margin):
    hn = rdata.load_human_numbers()
    train_ds, valid_ds = hn.lm_datasets(16, 64)
    train = rdata.stream_batches(train_ds, 64)[:8]
    valid = rdata.stream_batches(valid_ds, 64)[:2]
    torch.manual_seed(0)
    model = TransformerLM(len(hn.vocab), 32, 2, num_heads=4, **model_kw)
    out = fit_one_cycle_lm(model, train, valid, 3, 1e-2, **train_kw)
    assert [r["epoch"] for r in out["epochs"]] == [0, 1, 2]
    assert all(math.isfinite(r["train_loss"]) for r in out["epochs"])
    assert out["valid_loss"] < math.log(len(hn.vocab)) - margin  # below uniform guessing
    assert 0.0 < out["accuracy"] <= 1.0


def test_char_lm_trains_with_train_char_lm_and_predicts():
    stream = torch.tensor([0, 1, 2, 3, 4, 5] * 30)
    x, y = rdata.windowed_sequences(stream, 8)

    def batches():
        return [(x[i : i + 32], y[i : i + 32]) for i in range(0, len(x), 32)]

    torch.manual_seed(0)
    model = TransformerCharLM(6, 32, 1, num_heads=4, window=8)
    out = train_char_lm(model, batches, batches, 3, lr=0.5, clip=1.0)
    assert out["valid_ppl"] < out["epochs"][0]["train_ppl"]
    model.eval()
    assert model.predict([0, 1, 2], 9) == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
