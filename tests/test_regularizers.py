"""AWD-LSTM regularizers: train-only, mask shapes, formulas, WeightDrop on both impls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnsuite
from rnnsuite.regularizers import (
    EmbeddingDropout,
    LockedDropout,
    WeightDrop,
    ar_loss,
    tar_loss,
    tie_weights,
)

T, B, F = 6, 4, 8


@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_dropout_one_mask_per_sequence(batch_first):
    torch.manual_seed(0)
    drop = LockedDropout(0.5, batch_first=batch_first)
    x = torch.rand(B, T, F) + 1 if batch_first else torch.rand(T, B, F) + 1
    y = drop(x)
    ratio = y / x
    time_dim = 1 if batch_first else 0
    # every step of a sequence shares one mask ...
    assert torch.equal(ratio, ratio.narrow(time_dim, 0, 1).expand_as(ratio))
    # ... with values 0 or 1/(1-p), and not the same mask for every sequence
    assert set(ratio.unique().tolist()) <= {0.0, 2.0}
    first = ratio.narrow(time_dim, 0, 1).squeeze(time_dim)
    assert not all(torch.equal(first[0], first[b]) for b in range(1, B))
    drop.eval()
    assert drop(x) is x


def test_locked_dropout_packed_masks_per_sequence():
    torch.manual_seed(0)
    x = torch.rand(T, B, F) + 1
    lengths = [6, 2, 4, 5]
    packed = rnnsuite.pack_padded(x, lengths)
    y = LockedDropout(0.5)(packed)
    ratio, _ = rnnsuite.unpack(
        type(packed)(
            y.data / packed.data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
    )
    for b, n in enumerate(lengths):
        assert torch.equal(ratio[:n, b], ratio[:1, b].expand(n, F))


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    emb = nn.Embedding(50, F)
    drop = EmbeddingDropout(emb, p=0.5)
    ids = torch.arange(50).repeat(2, 1)  # every word twice
    y = drop(ids)
    zero_rows = (y == 0).all(-1)
    assert zero_rows.any() and not zero_rows.all()
    assert torch.equal(zero_rows[0], zero_rows[1]), "a dropped word is dropped everywhere"
    kept = ~zero_rows[0]
    torch.testing.assert_close(y[0][kept], emb.weight[kept] * 2)
    drop.eval()
    torch.testing.assert_close(drop(ids), emb(ids), rtol=0, atol=0)


def test_ar_and_tar_equal_their_formulas():
    h = torch.tensor([[[1.0, -2.0]], [[3.0, 0.0]], [[0.0, 1.0]]])  # (T=3, B=1, F=2)
    # AR: alpha * mean(h^2) = 2 * (1+4+9+0+0+1)/6
    assert ar_loss(h, alpha=2.0).item() == pytest.approx(2 * 15 / 6)
    # TAR: beta * mean((h_t - h_{t-1})^2): diffs (2,2), (-3,1) -> (4+4+9+1)/4
    assert tar_loss(h, beta=1.0).item() == pytest.approx(18 / 4)
    assert tar_loss(h.transpose(0, 1), beta=1.0, time_dim=1).item() == pytest.approx(18 / 4)
    assert tar_loss(h[:1], beta=1.0).item() == 0.0


def test_tie_weights_shares_and_checks_shape():
    emb, dec = nn.Embedding(10, 4), nn.Linear(4, 10)
    tie_weights(dec, emb)
    assert dec.weight is emb.weight
    with pytest.raises(ValueError, match=r"cannot tie"):
        tie_weights(nn.Linear(5, 10), emb)


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_weight_drop_train_only_and_fresh_mask_per_call(impl):
    torch.manual_seed(0)
    rnn = rnnsuite.build("lstm", impl, input_size=3, hidden_size=5, num_layers=2).double()
    wd = WeightDrop(rnn, p=0.5)
    assert wd.weights == ("weight_hh_l0", "weight_hh_l1")
    x = torch.randn(T, B, 3, dtype=torch.float64)
    plain = rnn(x)[0]
    torch.manual_seed(1)
    a = wd(x)[0]
    torch.manual_seed(2)
    b = wd(x)[0]
    assert not torch.allclose(a, plain) and not torch.allclose(a, b)
    a.sum().backward()
    assert rnn.state_dict().keys() == {k.removeprefix("module.") for k in wd.state_dict()}
    grads = rnnsuite.canonical_parameters(rnn)
    assert all(p.grad is not None for p in grads.values())
    wd.eval()
    torch.testing.assert_close(wd(x)[0], plain, rtol=0, atol=0)


def test_weight_drop_same_mask_gives_same_result_on_both_impls():
    """The dropped weight is what both implementations compute with: equal under one seed."""
    torch.manual_seed(0)
    kw = dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True)
    builtin = rnnsuite.build("gru", "builtin", **kw).double()
    scratch = rnnsuite.copy_weights(builtin, rnnsuite.build("gru", "scratch", **kw).double())
    x = torch.randn(T, B, 3, dtype=torch.float64)
    torch.manual_seed(7)
    a = WeightDrop(builtin, 0.3)(x)[0]
    torch.manual_seed(7)
    b = WeightDrop(scratch, 0.3)(x)[0]
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_weight_drop_state_dict_round_trip():
    torch.manual_seed(0)
    wd = WeightDrop(rnnsuite.build("lstm", "builtin", input_size=3, hidden_size=5), p=0.5)
    wd2 = WeightDrop(rnnsuite.build("lstm", "builtin", input_size=3, hidden_size=5), p=0.5)
    wd2.load_state_dict(wd.state_dict())
    wd.eval()
    wd2.eval()
    x = torch.randn(T, B, 3)
    torch.testing.assert_close(wd(x)[0], wd2(x)[0], rtol=0, atol=0)


def test_weight_drop_unknown_weight_names_the_available_ones():
    rnn = rnnsuite.build("lstm", input_size=3, hidden_size=5)
    with pytest.raises(ValueError, match=r"available: weight_ih_l0"):
        WeightDrop(rnn, 0.5, weights=["weight_hh_l3"])


def test_dropout_probability_is_checked():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        LockedDropout(1.5)


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_awd_stack_eval_equals_plain_stack_and_train_differs(impl):
    from rnnsuite.awd import AWDStack

    torch.manual_seed(0)
    awd = AWDStack(
        "lstm",
        impl,
        input_size=3,
        hidden_size=5,
        num_layers=2,
        dropouti=0.3,
        dropouth=0.3,
        dropouto=0.3,
        wdrop=0.5,
    ).double()
    plain = rnnsuite.build("lstm", "builtin", input_size=3, hidden_size=5, num_layers=2).double()
    with torch.no_grad():
        for k, layer in enumerate(awd.layers):
            for name, p in rnnsuite.canonical_parameters(layer).items():
                getattr(plain, name.replace("_l0", f"_l{k}")).copy_(p)
    x = torch.randn(T, B, 3, dtype=torch.float64)
    awd.eval()
    out, states, raw = awd(x)
    torch.testing.assert_close(out, plain(x)[0], rtol=1e-10, atol=1e-10)
    assert out is raw and len(states) == 2
    awd.train()
    out_t, _, raw_t = awd(x)
    assert not torch.allclose(out_t, out) and not torch.allclose(out_t, raw_t)
