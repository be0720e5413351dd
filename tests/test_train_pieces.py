"""Schedules, metrics and task models used by the recipes."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from rnnsuite.models import (
    AttentionDecoder,
    CharLM,
    Seq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
    TextClassifier,
    WordLM,
)
from rnnsuite.train.metrics import bleu_d2l, corpus_bleu
from rnnsuite.train.schedule import OneCycle, fastai_adam, one_cycle

D2L_EXAMPLES = [  # REFERENCE.md §5: source, reference, the seed's prediction, its BLEU
    ("go .", "va !", "va !", 1.000),
    ("i lost .", "j'ai perdu .", "j'ai perdu .", 1.000),
    ("he's calm .", "il est calme .", "sois calme .", 0.492),
    ("i'm home .", "je suis chez moi .", "je suis chez moi .", 1.000),
]


@pytest.mark.parametrize(("src", "ref", "pred", "bleu"), D2L_EXAMPLES)
def test_d2l_bleu_on_the_seed_examples(src, ref, pred, bleu):
    assert round(bleu_d2l(pred, ref, k=2), 3) == bleu


def _reference_corpus_bleu(preds, refs, max_n=4):
    """Papineni et al. corpus BLEU written out: clipped counts summed over the corpus."""
    matches, totals = [0] * max_n, [0] * max_n
    pred_len = ref_len = 0
    for p, r in zip(preds, refs, strict=True):
        p, r = p.split(), r.split()
        pred_len, ref_len = pred_len + len(p), ref_len + len(r)
        for n in range(1, max_n + 1):
            pc = Counter(tuple(p[i : i + n]) for i in range(len(p) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in pc.items())
            totals[n - 1] += max(len(p) - n + 1, 0)
    bp = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return (
        100
        * bp
        * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n)
    )


def test_corpus_bleu_is_sacrebleu_and_matches_the_written_out_formula():
    preds = [
        "the cat sat on the mat .",
        "il est calme et tranquille .",
        "je suis chez moi ce soir .",
    ]
    refs = [
        "the cat sat on a mat .",
        "il est très calme et tranquille .",
        "je suis chez moi ce soir .",
    ]
    assert corpus_bleu(preds, refs) == pytest.approx(_reference_corpus_bleu(preds, refs), abs=1e-9)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    # perfect sentences agree between the two BLEUs (1.0 and 100)
    assert bleu_d2l(refs[2], refs[2]) == 1.0
    with pytest.raises(ValueError, match="predictions for"):
        corpus_bleu(preds, refs[:2])


def test_one_cycle_values_at_known_steps():
    lr, total = 1e-2, 1000
    assert one_cycle(0, total, lr) == pytest.approx((lr / 25, 0.95))
    assert one_cycle(250, total, lr) == pytest.approx((lr, 0.85))
    mid_lr, mid_mom = one_cycle(125, total, lr)  # half-way up the cosine
    assert mid_lr == pytest.approx((lr / 25 + lr) / 2) and mid_mom == pytest.approx(0.90)
    end_lr, end_mom = one_cycle(total, total, lr)
    assert end_lr == pytest.approx(lr / 1e5) and end_mom == pytest.approx(0.95)
    assert one_cycle(625, total, lr)[0] == pytest.approx((lr + lr / 1e5) / 2)
    with pytest.raises(ValueError):
        one_cycle(1001, total, lr)


def test_one_cycle_drives_adam_and_bias_has_no_weight_decay():
    model = torch.nn.Linear(3, 2)
    opt = fastai_adam(model, lr=1e-3, wd=0.1)
    by_id = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert by_id[id(model.weight)] == 0.1 and by_id[id(model.bias)] == 0.0
    assert opt.defaults["eps"] == 1e-5 and opt.defaults["betas"] == (0.9, 0.99)
    sched = OneCycle(opt, total=4, lr_max=1e-2)
    lr, mom = sched.before_batch()
    assert opt.param_groups[0]["lr"] == lr == pytest.approx(4e-4)
    assert opt.param_groups[1]["betas"] == (mom, 0.99)


def test_tied_word_lm_carries_state_and_shares_weights():
    torch.manual_seed(0)
    lm = WordLM(30, 16, 2, arch="lstm", impl="scratch", dropout=0.4, tie=True)
    assert lm.h_o.weight is lm.i_h.weight
    ids = torch.randint(0, 30, (4, 8))
    lm.eval()
    a, raw, out = lm(ids)
    b, _, _ = lm(ids)
    assert a.shape == (4, 8, 30) and raw.shape == out.shape == (4, 8, 16)
    assert not torch.allclose(a, b), "state must carry across batches"
    lm.reset()
    torch.testing.assert_close(lm(ids)[0], a)


@pytest.mark.parametrize(("readout", "packed"), [("mean", False), ("last", False), ("last", True)])
def test_classifier_readouts(readout, packed):
    torch.manual_seed(0)
    clf = TextClassifier(
        50,
        8,
        6,
        4,
        arch="lstm",
        impl="builtin",
        readout=readout,
        packed=packed,
        embed_init="randn-0.5",
    )
    ids = torch.randint(1, 50, (3, 7))
    lengths = torch.tensor([7, 2, 5])
    assert clf(ids, lengths).shape == (3, 4)
    if packed:  # a packed classifier ignores what lies past each length
        ids2 = ids.clone()
        ids2[1, 2:] = 0
        torch.testing.assert_close(clf(ids, lengths), clf(ids2, lengths))


def test_char_lm_d2l_init_and_greedy_prediction_is_deterministic():
    torch.manual_seed(0)
    lm = CharLM(28, 32, arch="gru_cho", impl="scratch", init="d2l")
    w = lm.rnn.layers[0].cell.weight_hh
    assert w.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.count_nonzero(lm.rnn.layers[0].cell.bias_ih) == 0
    a, b = lm.predict([3, 4, 5], 10), lm.predict([3, 4, 5], 10)
    assert a == b and len(a) == 13 and a[:3] == [3, 4, 5]


@pytest.mark.parametrize("decoder", ["plain", "additive", "multiplicative"])
def test_seq2seq_shapes_masking_and_greedy(decoder):
    torch.manual_seed(0)
    enc = Seq2SeqEncoder(20, 8, 12, 2, 0.2)
    if decoder == "plain":
        dec = Seq2SeqDecoder(22, 8, 12, 2, 0.2)
    else:
        dec = AttentionDecoder(22, 8, 12, 2, 0.2, score=decoder)
    model = Seq2Seq(enc, dec).eval()
    src, tgt = torch.randint(0, 20, (3, 9)), torch.randint(0, 22, (3, 9))
    valid = torch.tensor([9, 4, 2])
    assert model(src, tgt, valid).shape == (3, 9, 22)
    if decoder != "plain":
        weights = torch.stack(dec.attention_weights, 1)  # (B, T_out, S)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 9))
        assert weights[1, :, 4:].max() < 1e-6 and weights[2, :, 2:].max() < 1e-6
    out = model.greedy(src, valid, bos=1, eos=2, num_steps=6)
    assert len(out) == 3 and all(2 not in row and len(row) <= 6 for row in out)


def test_ar_tar_wiring_in_the_fastai_loop(monkeypatch):
    """AR sees the dropped-out output, TAR the raw output (time on dim 1), training only."""
    from rnnsuite.train import loops

    calls = []
    real_ar, real_tar = loops.ar_loss, loops.tar_loss

    def spy_ar(out, alpha):
        calls.append(("ar", out, alpha))
        return real_ar(out, alpha)

    def spy_tar(raw, beta, time_dim=0):
        calls.append(("tar", raw, beta, time_dim))
        return real_tar(raw, beta, time_dim)

    monkeypatch.setattr(loops, "ar_loss", spy_ar)
    monkeypatch.setattr(loops, "tar_loss", spy_tar)
    torch.manual_seed(0)
    lm = WordLM(12, 8, 2, arch="lstm", impl="builtin", dropout=0.5, tie=True)
    outputs = []
    lm.register_forward_hook(lambda m, i, o: outputs.append((m.training, o)))
    x = torch.randint(0, 12, (2, 4, 5))
    batches = [(x[0], x[1]), (x[1], x[0])]
    loops.fit_one_cycle_lm(lm, batches, batches[:1], epochs=1, lr_max=1e-2, alpha=2.0, beta=1.0)
    train_outs = [o for training, o in outputs if training]
    assert len(calls) == 4 and len(train_outs) == 2  # two training batches, none in validation
    for k, (_, raw, dropped) in enumerate(train_outs):
        ar, tar = calls[2 * k], calls[2 * k + 1]
        assert ar[0] == "ar" and ar[1] is dropped and ar[2] == 2.0
        assert tar[0] == "tar" and tar[1] is raw and tar[2] == 1.0 and tar[3] == 1
