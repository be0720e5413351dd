"""Matrix files: parsing, every bad-input case, the shipped profiles, -k selection."""

from __future__ import annotations

import textwrap

import pytest

import rnnsuite
from bench.study.kexpr import KExprError, parse
from bench.throughput import matrix as matrix_mod
from bench.throughput.cells import Cell, expand, groups, parse_devices, parse_seeds, select
from bench.throughput.matrix import MatrixError, loads

GOOD = """
name = "t"
seeds = [0, 1]
[fixed]
size = "tiny"
repeats = 3
[sizes]
mine = { T = 5, B = 2, I = 3, H = 4 }
[[blocks]]
name = "a"
axes = { arch = ["lstm", "lstm_peephole"], impl = ["scratch", "builtin"], input = ["padded", "packed"] }
[[blocks]]
name = "b"
axes = { layers = [1, 2], size = ["mine", "T7-B3-I2-H2"] }
fixed = { bidirectional = true, reg = "awd", repeats = 5 }
exclude = ["layers=2 and size=mine"]
"""


def test_good_matrix_parses_and_expands():
    m = loads(GOOD, source="t.toml")
    assert m.name == "t" and m.seeds == (0, 1)
    cells = expand(m, check_devices=False)
    a = [c for c in cells if c.block == "a"]
    # lstm: 2 impls × 2 inputs; lstm_peephole has no built-in: 1 impl × 2 inputs; × 2 seeds
    assert len(a) == (4 + 2) * 2
    assert not any(c.arch == "lstm_peephole" and c.impl == "builtin" for c in a)
    b = [c for c in cells if c.block == "b"]
    assert len(b) == 3 * 2  # 2 layers × 2 sizes minus the excluded one, × 2 seeds
    assert {(c.T, c.B, c.I, c.H) for c in b} == {(5, 2, 3, 4), (7, 3, 2, 2)}
    assert all(c.bidirectional and c.reg == "awd" for c in b)
    assert all(c.settings["repeats"] == 5 for c in b)
    assert all(c.settings["repeats"] == 3 for c in a)
    assert len({c.id for c in cells}) == len(cells)


def test_cell_ids_are_stable_and_exclude_settings():
    m = loads(GOOD, source="t.toml")
    ids1 = [c.id for c in expand(m, check_devices=False)]
    ids2 = [c.id for c in expand(m, check_devices=False)]
    assert ids1 == ids2
    c = expand(m, check_devices=False)[0]
    assert "repeats" not in c.id and c.id.startswith("lstm/scratch/cpu/padded/L1/")
    assert Cell.from_config(c.config()).id == c.id


def test_groups_pair_impls_and_inputs():
    m = loads(GOOD, source="t.toml")
    gs = groups(c for c in expand(m, check_devices=False) if c.block == "a")
    lstm = [g for g in gs if g[0].arch == "lstm"]
    assert len(lstm) == len(gs) == 2  # one per seed: the peephole LSTM (a variant) joins it
    assert sorted(f"{c.arch} {c.variant}" for c in lstm[0]) == sorted(
        ["lstm scratch/padded", "lstm scratch/packed", "lstm builtin/padded",
         "lstm builtin/packed", "lstm_peephole scratch/padded", "lstm_peephole scratch/packed"]
    )  # fmt: skip
    assert {c.seed for c in lstm[0]} == {0}


def test_block_seeds_override_matrix_seeds():
    m = loads(GOOD.replace('name = "a"', 'name = "a"\nseeds = [7]'), source="t.toml")
    assert {c.seed for c in expand(m, check_devices=False) if c.block == "a"} == {7}
    assert {c.seed for c in expand(m, seeds=[3], check_devices=False)} == {3}


def test_top_level_axes_without_blocks():
    m = loads('[axes]\narch = ["gru", "rnn"]\n[fixed]\nsize = "tiny"\n', source="x.toml")
    cells = expand(m, check_devices=False)
    assert [c.arch for c in cells] == ["gru", "rnn"] and m.name == "x"


BAD = [
    ('bogus = 1\n[axes]\narch = ["lstm"]', "bogus", "unknown top-level key"),
    ('[axes]\narchs = ["lstm"]', "axes.archs", "unknown axis"),
    ('[axes]\narch = ["lstmx"]', "axes.arch[0]", "unknown value 'lstmx'"),
    ('[axes]\nimpl = ["fast"]', "axes.impl[0]", "unknown value"),
    ('[axes]\ndevice = ["tpu"]', "axes.device[0]", "unknown value"),
    ('[axes]\ninput = ["ragged"]', "axes.input[0]", "unknown value"),
    ('[axes]\nreg = ["dropout"]', "axes.reg[0]", "unknown value"),
    ('[axes]\nlengths = ["zipf"]', "axes.lengths[0]", "unknown value"),
    ('[axes]\noptimizer = ["lbfgs"]', "axes.optimizer[0]", "unknown value"),
    ("[axes]\nlayers = [0]", "axes.layers[0]", "integer in 1..16"),
    ('[axes]\nlayers = ["2"]', "axes.layers[0]", "integer"),
    ('[axes]\nbidirectional = ["yes"]', "axes.bidirectional[0]", "true or false"),
    ("[axes]\narch = []", "axes.arch", "empty axis"),
    ('[axes]\narch = "lstm"', "axes.arch", "list of values"),
    ('[axes]\narch = ["lstm", "lstm"]', "axes.arch", "repeats a value"),
    ("[axes]\nrepeats = [3]", "axes.repeats", "measurement setting"),
    ('[axes]\nsize = ["huge"]', "axes.size[0]", "unknown size 'huge'"),
    ('[axes]\nsize = ["T0-B1-I1-H1"]', "axes.size[0]", "T must be an integer"),
    ('[axes]\nsize = ["T64-B64"]', "axes.size[0]", "unknown size"),
    ('[sizes]\nx = { T = 1, B = 2, I = 3 }\n[axes]\narch = ["lstm"]', "sizes.x", "missing ['H']"),
    ('[sizes]\nx = { T = 1, B = -2, I = 3, H = 4 }\n[axes]\narch=["lstm"]', "sizes.x", "B must"),
    ('[sizes]\nx = 5\n[axes]\narch = ["lstm"]', "sizes.x", "must be a table"),
    ('[fixed]\nsize = "nope"\n[axes]\narch = ["lstm"]', "fixed.size", "unknown size"),
    ('[fixed]\nrepeats = 0\n[axes]\narch = ["lstm"]', "fixed.repeats", "integer in 1.."),
    ('[fixed]\nwarmup = -1\n[axes]\narch = ["lstm"]', "fixed.warmup", "integer"),
    ('[fixed]\ntiming = 1\n[axes]\narch = ["lstm"]', "fixed.timing", "true or false"),
    ('[fixed]\nspeed = 1\n[axes]\narch = ["lstm"]', "fixed.speed", "unknown key"),
    ('[fixed]\narch = ["lstm"]\n[axes]\nimpl = ["scratch"]', "fixed.arch", "single value"),
    ('[fixed]\narch = "gru"\n[axes]\narch = ["lstm"]', "axes.arch", "both an axis and a fixed"),
    ('seeds = []\n[axes]\narch = ["lstm"]', "seeds", "non-empty list"),
    ('seeds = [-1]\n[axes]\narch = ["lstm"]', "seeds", "non-negative"),
    ('seeds = [1, 1]\n[axes]\narch = ["lstm"]', "seeds", "repeats a seed"),
    ('name = "a b"\n[axes]\narch = ["lstm"]', "name", "simple name"),
    ('[axes]\narch = ["lstm_peephole"]\nimpl = ["builtin"]', "axes", "empty product"),
    ('exclude = ["lstm"]\n[axes]\narch = ["lstm"]', "axes", "empty product"),
    ('exclude = ["layers=="]\n[axes]\narch = ["lstm"]', "exclude[0]", "cannot read"),
    ('exclude = ["speed=3"]\n[axes]\narch = ["lstm"]', "exclude[0]", "unknown field 'speed'"),
    ("blocks = []", "blocks", "non-empty array"),
    ('[[blocks]]\naxis = { arch = ["lstm"] }', "blocks[0].axis", "unknown block key"),
    (
        '[[blocks]]\nname = "x"\naxes = { arch = ["lstm"] }\n[[blocks]]\nname = "x"\n'
        'axes = { arch = ["gru"] }',
        "blocks",
        "unique",
    ),
    (
        '[[blocks]]\naxes = { arch = ["lstm"] }\nfixed = { arch = "gru" }',
        "blocks[0].axes.arch",
        "both an axis and a fixed",
    ),
    (
        '[[blocks]]\naxes = { arch = ["lstm"] }\n[[blocks]]\naxes = { impl = ["builtin"], '
        'arch = ["gru_cho"] }',
        "blocks[1]",
        "empty product",
    ),
    ('[axes]\narch = ["lstm"]\n[[blocks]]\naxes = { arch = ["gru"] }', "axes", "not both"),
    ("[axes\n", "", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "key", "message"), BAD, ids=[b[1] or "toml" for b in BAD])
def test_bad_matrix_names_file_and_key(text, key, message):
    with pytest.raises(MatrixError) as exc:
        loads(textwrap.dedent(text), source="bad.toml")
    text_ = str(exc.value)
    assert text_.startswith("bad.toml: "), text_
    assert exc.value.key == key, text_
    assert message in text_, text_


def test_unknown_matrix_name_and_missing_path(tmp_path):
    with pytest.raises(MatrixError, match=r"choose one of .*quick"):
        matrix_mod.load("nosuchmatrix")
    with pytest.raises(MatrixError, match="no such matrix file"):
        matrix_mod.load(str(tmp_path / "missing.toml"))
    p = tmp_path / "ok.toml"
    p.write_text('[axes]\narch = ["rnn"]\n')
    assert matrix_mod.load(str(p)).name == "ok"


@pytest.mark.parametrize("name", ["quick", "standard", "full", "gate"])
def test_shipped_matrices_validate(name):
    m = matrix_mod.load(name)
    assert expand(m, check_devices=False)


def test_quick_covers_what_the_issue_asks():
    cells = expand(matrix_mod.load("quick"), check_devices=False)
    have = {(c.arch, c.impl) for c in cells}
    for arch in rnnsuite.ARCHITECTURES:
        for impl in rnnsuite.implementations_of(arch):
            assert (arch, impl) in have, (arch, impl)
            assert {c.input for c in cells if c.arch == arch and c.impl == impl} == {
                "padded",
                "packed",
            }
    assert {c.layers for c in cells} >= {1, 2}
    assert any(c.bidirectional for c in cells)
    regs = {c.reg for c in cells}
    assert regs >= set(matrix_mod.REGULARIZERS)
    sizes = {(c.T, c.B, c.I, c.H) for c in cells}
    assert (64, 64, 256, 256) in sizes and (100, 64, 512, 512) in sizes  # bars, fastrnns
    assert {c.lengths for c in cells} >= {"full", "uniform", "agnews"}
    assert all(c.device == "cpu" for c in cells)  # auto → present devices (cpu at least)


def test_full_has_deepbench_shapes():
    specs = {c.size for c in expand(matrix_mod.load("full"), check_devices=False)}
    assert any(s.startswith("deepbench_") for s in specs)


def test_device_expansion_and_override(monkeypatch):
    m = loads('[axes]\ndevice = ["auto", "cuda"]\n[fixed]\nsize = "tiny"\n', source="d.toml")
    monkeypatch.setattr("bench.throughput.cells.present_devices", lambda: ["cpu"])
    assert [c.device for c in expand(m)] == ["cpu", "cuda"]  # cuda is kept: runner skips it
    assert [c.device for c in expand(m, devices=["mps"])] == ["mps"]
    monkeypatch.setattr("bench.throughput.cells.present_devices", lambda: ["cpu", "cuda"])
    assert [c.device for c in expand(m, devices=["auto"])] == ["cpu", "cuda"]


# -- -k selection ------------------------------------------------------------------------------
@pytest.fixture
def cells():
    return expand(loads(GOOD, source="t.toml"), check_devices=False)


@pytest.mark.parametrize(
    ("expr", "check"),
    [
        ("lstm", lambda c: c.arch == "lstm"),  # exact word: not lstm_peephole
        ("lstm_peephole", lambda c: c.arch == "lstm_peephole"),
        ("lstm and packed", lambda c: c.arch == "lstm" and c.input == "packed"),
        ("lstm and packed and layers=1", lambda c: c.arch == "lstm" and c.input == "packed"),
        ("layers=2", lambda c: c.layers == 2),
        ("not builtin", lambda c: c.impl != "builtin"),
        ("impl!=scratch", lambda c: c.impl != "scratch"),
        (
            "(builtin or packed) and seed=1",
            lambda c: (c.impl == "builtin" or c.input == "packed") and c.seed == 1,
        ),
        ("bidirectional", lambda c: c.bidirectional),
        ("unidirectional and L1", lambda c: not c.bidirectional and c.layers == 1),
        ("bidirectional=true", lambda c: c.bidirectional),
        ("T=7", lambda c: c.T == 7),
        ("awd or a", lambda c: True),
    ],
)
def test_select(cells, expr, check):
    got = select(cells, expr)
    assert got == [c for c in cells if check(c)]
    assert got


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("lstm and", "ends too early"),
        ("(lstm", "missing"),
        ("lstm)", "unexpected"),
        ("speed=3", "unknown field"),
        ("lstm && gru", "cannot read"),
        ("", "empty"),
    ],
)
def test_bad_selection(expr, match):
    with pytest.raises(KExprError, match=match):
        parse(expr, matrix_mod.FIELDS)


def test_seed_and_device_parsing():
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    assert parse_seeds("0-3,2") == [0, 1, 2, 3]
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
    assert parse_devices("cpu,cuda") == ["cpu", "cuda"]
    with pytest.raises(ValueError):
        parse_devices("tpu")
