"""Scratch-only cells against a hand-unrolled step written out here, gate by gate."""

from __future__ import annotations

import pytest
import torch

import rnnsuite

T, B, I, H = 5, 3, 4, 6


def _gates(w, n):
    return w.chunk(n, 0)


def peephole_reference(cell, x, h, c):
    """Element-Research nn.LSTM: i, f see c_{t-1}; o sees c_t; diagonal peepholes."""
    Wi, Wf, Wg, Wo = _gates(cell.weight_ih, 4)
    Ui, Uf, Ug, Uo = _gates(cell.weight_hh, 4)
    bi, bf, bg, bo = _gates(cell.bias_ih + cell.bias_hh, 4)
    outs = []
    for t in range(x.shape[0]):
        xt = x[t]
        i = torch.sigmoid(xt @ Wi.T + h @ Ui.T + bi + cell.weight_ci * c)
        f = torch.sigmoid(xt @ Wf.T + h @ Uf.T + bf + cell.weight_cf * c)
        g = torch.tanh(xt @ Wg.T + h @ Ug.T + bg)
        c = f * c + i * g
        o = torch.sigmoid(xt @ Wo.T + h @ Uo.T + bo + cell.weight_co * c)
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def cho_gru_reference(cell, x, h):
    """Cho et al. 2014 / d2l GRUScratch: candidate tanh(W x + U (r ⊙ h) + b)."""
    Wr, Wz, Wn = _gates(cell.weight_ih, 3)
    Ur, Uz, Un = _gates(cell.weight_hh, 3)
    bir, biz, bin_ = _gates(cell.bias_ih, 3)
    bhr, bhz, bhn = _gates(cell.bias_hh, 3)
    outs = []
    for t in range(x.shape[0]):
        xt = x[t]
        r = torch.sigmoid(xt @ Wr.T + bir + h @ Ur.T + bhr)
        z = torch.sigmoid(xt @ Wz.T + biz + h @ Uz.T + bhz)
        n = torch.tanh(xt @ Wn.T + bin_ + (r * h) @ Un.T + bhn)
        h = (1 - z) * n + z * h
        outs.append(h)
    return torch.stack(outs), h


def _model(arch):
    torch.manual_seed(0)
    m = rnnsuite.build(arch, "scratch", input_size=I, hidden_size=H).double()
    with torch.no_grad():  # make the peephole terms matter: default init is small
        for p in m.parameters():
            p.mul_(3)
    return m


def test_peephole_lstm_matches_hand_unrolled_reference():
    m = _model("lstm_peephole")
    cell = m.layers[0].cell
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    out, (h, c) = m(x, (h0, c0))
    ref_out, ref_h, ref_c = peephole_reference(cell, x, h0[0], c0[0])
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h[0], ref_h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c[0], ref_c, rtol=1e-12, atol=1e-12)


def test_peepholes_change_the_output():
    """Zeroing the peephole weights gives a plain LSTM (equal to nn.LSTM); non-zero ones differ."""
    m = _model("lstm_peephole")
    x = torch.randn(T, B, I, dtype=torch.float64)
    with_peep, _ = m(x)
    cell = m.layers[0].cell
    with torch.no_grad():
        for w in (cell.weight_ci, cell.weight_cf, cell.weight_co):
            w.zero_()
    without, _ = m(x)
    plain = torch.nn.LSTM(I, H).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(plain, name + "_l0").copy_(getattr(cell, name))
    torch.testing.assert_close(without, plain(x)[0], rtol=1e-12, atol=1e-12)
    assert (with_peep - without).abs().max() > 1e-3


def test_cho_gru_matches_hand_unrolled_reference():
    m = _model("gru_cho")
    cell = m.layers[0].cell
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64)
    out, h = m(x, h0)
    ref_out, ref_h = cho_gru_reference(cell, x, h0[0])
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h[0], ref_h, rtol=1e-12, atol=1e-12)


def test_cho_gru_differs_from_torch_gru_with_same_weights():
    """Same parameter shapes, different candidate: the two GRUs must not agree."""
    cho = _model("gru_cho")
    torch_gru = torch.nn.GRU(I, H).double()
    cell = cho.layers[0].cell
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(torch_gru, name + "_l0").copy_(getattr(cell, name))
    x = torch.randn(T, B, I, dtype=torch.float64)
    assert (cho(x)[0] - torch_gru(x)[0]).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"'gru_cho'.*'gru'"):
        rnnsuite.copy_weights(cho, rnnsuite.build("gru", "builtin", input_size=I, hidden_size=H))


@pytest.mark.parametrize("arch", ["lstm_peephole", "gru_cho"])
def test_single_cell_call_equals_one_step_of_the_layer(arch):
    m = _model(arch)
    cell = m.layers[0].cell
    x = torch.randn(1, B, I, dtype=torch.float64)
    out, _ = m(x)
    state = cell(x[0])
    torch.testing.assert_close(state[0], out[0], rtol=1e-12, atol=1e-12)
