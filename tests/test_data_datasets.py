"""Each dataset on the real files (from RNNSUITE_DATA, else <repo>/../shared/data).

A test skips, naming the file, only when that file is absent."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from rnnsuite.data import (
    BPTTIterator,
    DatasetMissing,
    PartialDataWarning,
    basic_english,
    load_ag_news,
    load_fra_eng,
    load_ptb,
    load_seinfeld,
    load_time_machine,
    pad_with_lengths,
    padify,
)
from rnnsuite.data.fetch import locate_info

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """RNNSUITE_DATA if set, else <repo>/../shared/data when it exists."""
    env = os.environ.get("RNNSUITE_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else None


DATA = shared_data_dir()


@pytest.fixture(scope="module", autouse=True)
def data_env(tmp_path_factory):
    """Point RNNSUITE_DATA at the shared data and the cache at a temporary directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNSUITE_CACHE", str(tmp_path_factory.mktemp("cache")))
        if DATA is not None:
            mp.setenv("RNNSUITE_DATA", str(DATA))
        for var in ("RNNSUITE_DOWNLOAD", "RNNSUITE_MIRROR", "RNNSUITE_NO_CACHE"):
            mp.delenv(var, raising=False)
        yield


def need(*relpaths: str) -> None:
    for rel in relpaths:
        if DATA is None or not (DATA / rel).is_file():
            pytest.skip(f"{rel} absent: set RNNSUITE_DATA to a directory holding it")


# --------------------------------------------------------------------------- AG News


@pytest.fixture(scope="module")
def ag():
    need("ag_news/test.csv")
    if not (DATA / "ag_news" / "train.csv").is_file():
        need("ag_news/train_partial.csv")
        with pytest.warns(PartialDataWarning, match=r"partial: 10,429 of 120,000 rows"):
            return load_ag_news()
    return load_ag_news()


def test_ag_news_counts_labels_and_first_examples(ag):
    assert len(ag.test) == 7_600
    assert Counter(ag.test.labels) == {0: 1_900, 1: 1_900, 2: 1_900, 3: 1_900}
    assert ag.classes == ("World", "Sports", "Business", "Sci/Tech")
    label, text = ag.train[0]
    assert label == 2  # "3" shifted to 0..3
    assert text.startswith(
        "Wall St. Bears Claw Back Into the Black (Reuters) Reuters - Short-sellers,"
    )
    assert ag.test[0] == (
        2,
        "Fears for T N pension after talks Unions representing workers at Turner   Newall say "
        "they are 'disappointed' after talks with stricken parent firm Federal Mogul.",
    )


def test_ag_news_partial_train_is_flagged_everywhere(ag):
    if not ag.partial:
        assert len(ag.train) == 120_000 and ag.note is None
        return
    assert len(ag.train) == 10_429
    assert ag.note == "partial: 10,429 of 120,000 rows"
    assert ag.train.note == ag.test.note == ag.note
    assert ag.paths["train"].name == "train_partial.csv"
    enc = ag.numericalize()
    assert enc.partial and enc.note == ag.note and enc.train.note == ag.note
    assert Counter(ag.train.labels) == {0: 2_630, 1: 2_452, 2: 2_594, 3: 2_753}


def test_ag_news_refuses_partial_when_told(ag):
    if not ag.partial:
        pytest.skip("the full train.csv is present")
    with pytest.raises(DatasetMissing, match=r"ag_news/train\.csv.*\n(.*\n)*.*RNNSUITE_DATA"):
        load_ag_news(allow_partial=False)


def test_ag_news_faithful_numericalization_is_the_seeds(ag):
    enc = ag.numericalize("faithful")
    first = basic_english(ag.train.texts[0])
    assert enc.vocab.itos[:9] == [
        "wall",
        "st",
        ".",
        "bears",
        "claw",
        "back",
        "into",
        "the",
        "black",
    ]
    label, ids = enc.train[0]
    assert label == 2 and enc.vocab.decode(ids) == first
    assert enc.pad_id == 0 and enc.vocab.itos[0] == "wall"  # the seed's pad id is a real word
    # first-seen order over train, every token (min_freq 1)
    seen = dict.fromkeys(t for text in ag.train.texts for t in basic_english(text))
    assert enc.vocab.itos == list(seen)
    # unknown test tokens become id 0, as the seed's encode(unk=0)
    test_tokens = basic_english(ag.test.texts[0])
    expected = [enc.vocab.stoi.get(t, 0) for t in test_tokens]
    assert enc.test[0][1].tolist() == expected
    assert len(enc.train) == len(ag.train) and int(enc.train.lengths.sum()) == enc.train.ids.numel()


def test_ag_news_numericalization_is_cached_by_content(ag, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path))
    first = ag.numericalize()
    entries = list((tmp_path / "processed").glob("ag_news-*.pt"))
    assert len(entries) == 1
    mtime = entries[0].stat().st_mtime_ns
    second = ag.numericalize()
    assert entries[0].stat().st_mtime_ns == mtime  # read, not rewritten
    assert second.vocab == first.vocab and torch.equal(second.train.ids, first.train.ids)
    ag.numericalize("reserved")
    assert len(list((tmp_path / "processed").glob("ag_news-*.pt"))) == 2


def test_ag_news_reserved_vocabulary_and_collation(ag):
    enc = ag.numericalize("reserved")
    assert enc.vocab.itos[:3] == ["<pad>", "<unk>", "wall"] and enc.vocab.pad_index == 0
    assert enc.vocab["never-seen-token"] == 1
    loader = DataLoader(enc.train, batch_size=16, shuffle=False, collate_fn=pad_with_lengths)
    labels, x, lengths = next(iter(loader))
    assert x.shape == (16, int(lengths.max())) and labels.shape == (16,)
    for row, n in zip(x, lengths, strict=True):
        assert (row[n:] == 0).all() and (row[:n] != 0).all()
    faithful = DataLoader(ag.numericalize().train, batch_size=4, collate_fn=padify)
    _, xf = next(iter(faithful))
    assert xf[:, 0].tolist() == [enc.train[i][1][0].item() - 2 for i in range(4)]


# --------------------------------------------------------------------------- Time Machine


def test_time_machine_as_d2l():
    need("time_machine/timemachine.txt")
    tm = load_time_machine()
    assert tm.raw_text.startswith("The Time Machine, by H. G. Wells [1898]")
    assert "".join(tm.tokens[:60]) == "the time machine by h g wells i the time traveller for so it"
    assert len(tm.vocab) == 28
    assert tm.vocab.itos[:3] == [" ", "<unk>", "a"] and tm.vocab.itos[-1] == "z"
    assert len(tm.corpus) == 173_428
    assert tm.corpus[:10].tolist() == [21, 9, 6, 0, 21, 10, 14, 6, 0, 14]  # d2l's printout
    assert tm.X.shape == (173_428 - 32, 32) and torch.equal(tm.X[1:, -1], tm.Y[:-1, -1])
    assert len(tm.get_dataloader(True)) == 10  # TimeMachine(batch_size=1024, num_steps=32)
    xv, _ = tm.split(False)
    assert len(xv) == 5_000 and torch.equal(xv[0], tm.X[10_000])


# --------------------------------------------------------------------------- English-French


def _d2l_reference(raw: str, num_train: int, num_val: int, num_steps: int):
    """d2l 1.0 MTFraEng written out plainly (char loop, Counter, sorted set): the oracle."""
    text = raw.replace("\u202f", " ").replace("\xa0", " ")
    text = "".join(
        " " + c if i > 0 and c in ",.!?" and text[i - 1] != " " else c
        for i, c in enumerate(text.lower())
    )
    max_examples = num_train + num_val
    src, tgt = [], []
    for i, line in enumerate(text.split("\n")):
        if max_examples and i > max_examples:
            break
        parts = line.split("\t")
        if len(parts) == 2:
            src.append([t for t in f"{parts[0]} <eos>".split(" ") if t])
            tgt.append([t for t in f"{parts[1]} <eos>".split(" ") if t])

    def build(sentences, is_tgt):
        sentences = [
            s[:num_steps] if len(s) > num_steps else s + ["<pad>"] * (num_steps - len(s))
            for s in sentences
        ]
        if is_tgt:
            sentences = [["<bos>", *s] for s in sentences]
        counter = Counter(t for s in sentences for t in s)
        itos = sorted(set(["<unk>"] + [t for t, f in counter.items() if f >= 2]))
        stoi = {t: i for i, t in enumerate(itos)}
        array = torch.tensor([[stoi.get(t, stoi["<unk>"]) for t in s] for s in sentences])
        return array, itos, (array != stoi["<pad>"]).sum(1)

    s_arr, s_itos, s_len = build(src, False)
    t_arr, t_itos, _ = build(tgt, True)
    return (s_arr, t_arr[:, :-1], s_len, t_arr[:, 1:]), s_itos, t_itos


@pytest.fixture(scope="module")
def fra_head() -> str:
    need("fra_eng/fra.txt")
    with open(DATA / "fra_eng" / "fra.txt", encoding="utf-8") as fh:
        # d2l's processing is causal, so a 3,000-line prefix gives the same first lines
        return "\n".join(fh.read().split("\n")[:3000])


@pytest.mark.parametrize(("num_train", "num_val", "num_steps"), [(512, 128, 9), (1500, 400, 12)])
def test_fra_eng_arrays_and_vocabularies_equal_d2l(fra_head, num_train, num_val, num_steps):
    data = load_fra_eng(num_train=num_train, num_val=num_val, num_steps=num_steps)
    arrays, s_itos, t_itos = _d2l_reference(fra_head, num_train, num_val, num_steps)
    assert data.src_vocab.itos == s_itos and data.tgt_vocab.itos == t_itos
    for ours, theirs in zip(data.arrays, arrays, strict=True):
        assert torch.equal(ours, theirs)
    assert data.arrays[0].shape == (num_train + num_val + 1, num_steps)  # d2l's extra line


def test_fra_eng_first_pairs_and_d2l_slices():
    need("fra_eng/fra.txt")
    data = load_fra_eng()
    src, dec_in, src_len, tgt = data.arrays
    assert data.src_vocab.decode(src[0]) == ["go", ".", "<eos>"] + ["<pad>"] * 6
    assert data.tgt_vocab.decode(dec_in[0]) == ["<bos>", "va", "!", "<eos>"] + ["<pad>"] * 5
    assert data.tgt_vocab.decode(tgt[2])[:3] == ["cours", "!", "<eos>"]  # U+202F became a space
    assert src_len[:3].tolist() == [3, 3, 3]
    assert data.split(True)[0].shape[0] == 512 and data.split(False)[0].shape[0] == 129
    assert len(data.src_vocab) == 194 and len(data.tgt_vocab) == 214
    batch = next(iter(data.get_dataloader(False, batch_size=128)))
    assert batch.src.shape == (128, 9) and torch.equal(batch.mask, batch.tgt != data.tgt_pad)


def test_fra_eng_build_reproduces_the_seed_bleu_sentences():
    need("fra_eng/fra.txt")
    data = load_fra_eng()
    engs = ["go .", "i lost .", "he's calm .", "i'm home ."]
    fras = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]
    src, _, _, tgt = data.build(engs, fras)
    assert src.shape == (4, 9)
    for row, fra in zip(tgt, fras, strict=True):
        words = data.tgt_vocab.decode(row)
        assert words[: words.index("<eos>")] == fra.split(" ")  # all in the 512+129 vocabulary


def test_fra_eng_from_the_zip_alone(tmp_path, monkeypatch):
    need("fra_eng/fra-eng.zip")
    (tmp_path / "only_zip" / "fra_eng").mkdir(parents=True)
    (tmp_path / "only_zip" / "fra_eng" / "fra-eng.zip").symlink_to(DATA / "fra_eng" / "fra-eng.zip")
    monkeypatch.setenv("RNNSUITE_DATA", str(tmp_path / "only_zip"))
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))
    found = locate_info("fra_eng", "fra.txt")
    assert found.origin == "extracted" and found.verified == "sha256"
    assert found.path == tmp_path / "cache" / "fra_eng" / "fra.txt"
    assert found.path.stat().st_size == 11_669_748
    from_zip = load_fra_eng()
    assert locate_info("fra_eng", "fra.txt").origin == "cache"
    direct = load_fra_eng(root=DATA)
    for a, b in zip(from_zip.arrays, direct.arrays, strict=True):
        assert torch.equal(a, b)


def test_fra_eng_larger_subset_for_benchmarks():
    need("fra_eng/fra.txt")
    data = load_fra_eng(num_train=20_000, num_val=2_000, num_steps=12, d2l_quirks=False)
    assert data.arrays[0].shape == (22_000, 12)
    assert data.split(False)[0].shape[0] == 2_000
    assert len(data.src_vocab) > 1_000


# --------------------------------------------------------------------------- PTB


@pytest.fixture(scope="module")
def ptb():
    need("ptb/ptb.train.txt", "ptb/ptb.valid.txt", "ptb/ptb.test.txt")
    return load_ptb()


def test_ptb_vocabulary_and_token_counts(ptb):
    assert len(ptb.vocab) == 10_000
    assert (len(ptb.train), len(ptb.valid), len(ptb.test)) == (929_589, 73_760, 82_430)
    assert ptb.vocab.decode(ptb.train[:3]) == ["aer", "banknote", "berlitz"]
    eos = ptb.vocab["<eos>"]
    assert int((ptb.train == eos).sum()) == 42_068 and int((ptb.valid == eos).sum()) == 3_370
    # valid and test hold no word outside the training vocabulary: <unk> only where the text says so
    raw_unk = (DATA / "ptb" / "ptb.valid.txt").read_text().split().count("<unk>")
    assert int((ptb.valid == ptb.vocab["<unk>"]).sum()) == raw_unk


def test_ptb_frequency_order_and_bptt(ptb):
    by_freq = load_ptb(order="frequency")
    counts = torch.bincount(by_freq.train, minlength=len(by_freq.vocab))
    assert (counts[:-1] >= counts[1:]).all() and by_freq.vocab.itos[0] == "the"
    windows = list(BPTTIterator(ptb.valid, batch_size=20, bptt=35))
    assert windows[0][0].shape == (20, 35)
    assert torch.equal(windows[1][0][:, 0], windows[0][1][:, -1])


# --------------------------------------------------------------------------- Seinfeld


@pytest.fixture(scope="module")
def seinfeld():
    need("seinfeld/Seinfeld_Scripts.txt")
    return load_seinfeld()


def test_seinfeld_as_the_udacity_helper(seinfeld):
    raw = (DATA / "seinfeld" / "Seinfeld_Scripts.txt").read_text(encoding="utf-8")
    assert raw.startswith("jerry: do you know what this is all about?")
    # helper.py drops the first 81 characters, which here cut into the first line
    assert seinfeld.words[:7] == [
        "this",
        "is",
        "out",
        "||period||",
        "||period||",
        "||period||",
        "and",
    ]
    assert "||question_mark||" not in seinfeld.vocab
    counts = torch.bincount(seinfeld.int_text, minlength=len(seinfeld.vocab))
    assert (counts[:-2] >= counts[1:-1]).all()  # frequency order (the last is <PAD>)
    assert seinfeld.vocab.itos[0] == "||newline||" and seinfeld.vocab.itos[-1] == "<PAD>"
    assert seinfeld.vocab.decode(seinfeld.int_text[:50]) == seinfeld.words[:50]
    features, targets = next(iter(seinfeld.batch_data(sequence_length=10, batch_size=32)))
    assert features.shape == (32, 10) and torch.equal(features[1, :-1], features[0, 1:])
    assert torch.equal(targets[:-1], features[1:, -1])


def test_seinfeld_question_mark_quirk_can_be_switched_off(seinfeld):
    fixed = load_seinfeld(question_mark_quirk=False)
    questions = fixed.vocab["||question_mark||"]
    n_q = int((fixed.int_text == questions).sum())
    assert n_q > 1_000
    period_faithful = int((seinfeld.int_text == seinfeld.vocab["||period||"]).sum())
    period_fixed = int((fixed.int_text == fixed.vocab["||period||"]).sum())
    assert period_faithful == period_fixed + n_q
