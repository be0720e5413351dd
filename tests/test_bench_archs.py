"""bench/archs.py: the one table of what the bench knows about an architecture."""

from __future__ import annotations

import pytest

import rnnsuite
from bench import archs, cells, flops, plots, report


def test_every_matrix_architecture_has_a_record():
    assert set(archs.NAMES) == set(archs.TABLE)
    assert archs.NAMES[: len(rnnsuite.ARCHITECTURES)] == tuple(rnnsuite.ARCHITECTURES)
    for name in rnnsuite.ARCHITECTURES:
        record = archs.get(name)
        assert record.recurrent and record.gates >= 1 and record.pointwise >= 1


def test_an_architecture_without_a_record_names_the_file_to_edit():
    with pytest.raises(KeyError, match=r"'mgu' has no bench record.*bench/archs\.py"):
        archs.get("mgu")


def test_readers_take_the_table(monkeypatch):
    assert list(archs.TABLE) == plots.ARCH_ORDER
    assert report.BAR_ARCHS == ("lstm", "gru", "rnn")
    # the cost model is the record's: doubling the pointwise count adds E·H per token
    base = flops.forward_flops("gru", I=8, H=4, layers=1, bidirectional=False, tokens=10)
    richer = archs.Arch("gru", gates=3, pointwise=28)
    monkeypatch.setitem(archs.TABLE, "gru", richer)
    more = flops.forward_flops("gru", I=8, H=4, layers=1, bidirectional=False, tokens=10)
    assert more - base == 14 * 4 * 10


def test_capabilities_come_from_the_record(monkeypatch):
    v = {"arch": "gru", "impl": "scratch", "bidirectional": False, "input": "packed",
         "reg": "none"}  # fmt: skip
    assert cells.capability_problem(v) is None
    monkeypatch.setitem(archs.TABLE, "gru", archs.Arch("gru", gates=3, pointwise=14, packed=False))
    key, reason = cells.capability_problem(v)
    assert key == "input"
    assert "gru does not support input 'packed'" in reason
    assert 'exclude = ["gru and packed"]' in reason
