"""The registry record is the only place that knows an architecture; the bench reads it."""

from __future__ import annotations

import dataclasses

import pytest

import rnnsuite
from bench import archs, report
from bench.report import plots
from bench.throughput import cells, flops


def test_every_matrix_architecture_has_a_record():
    assert archs.names() == rnnsuite.architectures()
    assert archs.names()[: len(rnnsuite.ARCHITECTURES)] == tuple(rnnsuite.ARCHITECTURES)
    assert archs.baselines() == ("transformer",)
    for name in rnnsuite.ARCHITECTURES:
        record = archs.get(name)
        assert record.recurrent and record.gates >= 1 and record.pointwise >= 1
        assert record.gates == record.cell.gates


def test_an_unknown_architecture_names_the_way_to_register_one():
    with pytest.raises(ValueError, match=r"unknown architecture 'mgu'.*rnnsuite\.register"):
        archs.get("mgu")


def _swap(monkeypatch, name: str, **changes) -> None:
    record = dataclasses.replace(rnnsuite.architecture(name), **changes)
    monkeypatch.setitem(rnnsuite.registry._REGISTRY, name, record)


def test_readers_take_the_registry(monkeypatch):
    assert plots.arch_order() == list(rnnsuite.architectures())
    assert report.BAR_ARCHS == ("lstm", "gru", "rnn") == archs.bar_archs()
    assert archs.variants() == {"lstm_peephole": "lstm", "gru_cho": "gru"}
    # the cost model is the record's: doubling the pointwise count adds E·H per token
    base = flops.forward_flops("gru", I=8, H=4, layers=1, bidirectional=False, tokens=10)
    _swap(monkeypatch, "gru", pointwise=28)
    more = flops.forward_flops("gru", I=8, H=4, layers=1, bidirectional=False, tokens=10)
    assert more - base == 14 * 4 * 10
    _swap(monkeypatch, "gru", marker="*")
    assert archs.markers()["gru"] == "*"


def test_capabilities_come_from_the_record(monkeypatch):
    v = {"arch": "gru", "impl": "scratch", "bidirectional": False, "input": "packed",
         "reg": "none"}  # fmt: skip
    assert cells.capability_problem(v) is None
    _swap(monkeypatch, "gru", packed=False)
    key, reason = cells.capability_problem(v)
    assert key == "input"
    assert "gru does not support input 'packed'" in reason
    assert 'exclude = ["gru and packed"]' in reason


def test_the_baseline_is_registered_like_the_rnns():
    t = rnnsuite.architecture("transformer")
    assert not t.recurrent and t.implementations == ("builtin",) and t.state_size == 0
    assert not t.packed and not t.bidirectional and not t.weight_hh
    v = {"arch": "transformer", "impl": "scratch", "bidirectional": False, "input": "padded",
         "reg": "none"}  # fmt: skip
    key, reason = cells.capability_problem(v)
    assert key == "impl" and "only the built-in" in reason
