"""Text pipeline pieces on generated data: tokenizers, Vocab, collation, LM and seq2seq batching."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnsuite.data import (
    BPTTIterator,
    BucketBatchSampler,
    ClassificationCollate,
    PairCollate,
    Seq2SeqBatch,
    Vocab,
    basic_english,
    basic_english_many,
    batchify,
    build_seq2seq_arrays,
    d2l_char_tokens,
    d2l_mt_preprocess,
    d2l_mt_tokenize,
    detach_state,
    fastai_lm_sequences,
    group_chunks,
    load_human_numbers,
    next_word_pairs,
    number_to_words,
    pad_with_lengths,
    padify,
    seinfeld_token_lookup,
    seq2seq_loader,
    sequence_mask,
    stream_batches,
    windowed_sequences,
    write_human_numbers,
)
from rnnsuite.data.fra_eng import build_fra_eng
from rnnsuite.data.tokenize import punctuation_to_tokens

# --------------------------------------------------------------------------- tokenizers


def test_basic_english_matches_torchtext_docstring_example():
    # torchtext's get_tokenizer docstring states this output.
    assert basic_english("You can now install TorchText using pip!") == [
        "you", "can", "now", "install", "torchtext", "using", "pip", "!",
    ]  # fmt: skip


def test_basic_english_on_the_first_ag_news_row():
    text = (
        "Wall St. Bears Claw Back Into the Black (Reuters) Reuters - Short-sellers, "
        "Wall Street's dwindling\\band of ultra-cynics, are seeing green again."
    )
    assert basic_english(text) == [
        "wall", "st", ".", "bears", "claw", "back", "into", "the", "black", "(", "reuters",
        ")", "reuters", "-", "short-sellers", ",", "wall", "street", "'", "s",
        "dwindling\\band", "of", "ultra-cynics", ",", "are", "seeing", "green", "again", ".",
    ]  # fmt: skip


def test_basic_english_drops_semicolon_colon_and_double_quote():
    # torchtext replaces ';' and ':' by a space (they vanish) and deletes '"'.
    assert basic_english('He said: "Stop; now!"<br />OK (fine).') == [
        "he", "said", "stop", "now", "!", "ok", "(", "fine", ")", ".",
    ]  # fmt: skip
    assert basic_english("Don't\tgo?\n") == ["don", "'", "t", "go", "?"]


@pytest.mark.parametrize(
    "text",
    [
        '<"br />x',  # deleting '"' creates a <br /> that torchtext then removes
        "<br '/> and <br ./> and <br /><br />",
        "A.B,C(D)E!F?G;H:I'J\"K",
        "tabs\tand\u00a0nbsp\u2003em space\x1cfile sep",
        "ΣΑΣ ΟΔΟΣ.",  # final sigma is context sensitive in lower()
        "",
        "   ",
    ],
)
def test_basic_english_many_equals_the_regex_reference(text):
    texts = [text, "Plain text.", text.upper()]
    assert basic_english_many(texts) == [basic_english(t) for t in texts]


def test_basic_english_many_falls_back_when_a_text_holds_the_separator():
    texts = ["a\x00b. c", "d"]
    assert basic_english_many(texts) == [basic_english(t) for t in texts]


def test_seinfeld_token_lookup_keeps_the_question_mark_quirk_switchable():
    faithful = seinfeld_token_lookup()
    assert faithful["?"] == faithful["."] == "||period||"
    assert len(faithful) == 10 and faithful["\n"] == "||newline||"
    fixed = seinfeld_token_lookup(question_mark_quirk=False)
    assert fixed["?"] == "||question_mark||"
    words = punctuation_to_tokens("Jerry: Why?\nGeorge: (sighs) Fine.", faithful)
    assert words == [
        "jerry:", "why", "||period||", "||newline||", "george:", "||left_parenthesis||",
        "sighs", "||right_parenthesis||", "fine", "||period||",
    ]  # fmt: skip


def test_d2l_char_tokens():
    assert "".join(d2l_char_tokens("The Time-Machine, 1898!\n\nI")) == "the time machine i"


# --------------------------------------------------------------------------- Vocab


def test_vocab_first_seen_with_default_index_like_the_ag_news_seed():
    v = Vocab.build([["b", "a", "b"], ["c"]], default_index=0)
    assert v.itos == ["b", "a", "c"]
    assert v.encode(["a", "zzz", "c"]) == [1, 0, 2]  # unknown -> 0, a real token


def test_vocab_frequency_order_equals_udacity_create_lookup_tables():
    words = ["the", "cat", "saw", "the", "dog", "and", "the", "cat", "ran", "to", "a", "dog"]
    counts = Counter(words)
    udacity = [w for w, _ in sorted(counts.items(), key=lambda x: x[1], reverse=True)]
    assert Vocab.build([words], order="frequency").itos == udacity


def test_vocab_sorted_without_specials_first_equals_d2l_vocab():
    tokens = ["b", "<pad>", "a", "b", "<pad>", "c", "<eos>", "<eos>", "a"]
    counter = Counter(tokens)
    d2l = sorted(set(["<unk>"] + [t for t, f in counter.items() if f >= 2]))
    v = Vocab.build(
        [tokens],
        min_freq=2,
        specials=["<unk>"],
        order="sorted",
        specials_first=False,
        unk_token="<unk>",
    )
    assert v.itos == d2l == ["<eos>", "<pad>", "<unk>", "a", "b"]
    assert v["c"] == v["<unk>"] == 2


def test_vocab_specials_first_min_freq_and_max_size():
    seqs = [["x", "y", "x", "z", "y", "x", "w"]]
    v = Vocab.build(
        seqs,
        specials=["<pad>", "<unk>"],
        order="frequency",
        min_freq=2,
        unk_token="<unk>",
        pad_token="<pad>",
    )
    assert v.itos == ["<pad>", "<unk>", "x", "y"]
    assert (v.pad_index, v.unk_index) == (0, 1)
    capped = Vocab.build(seqs, specials=["<unk>"], order="frequency", max_size=2, unk_token="<unk>")
    assert capped.itos == ["<unk>", "x", "y"]


def test_vocab_without_unknown_handling_raises_with_the_token_named():
    v = Vocab(["a", "b"])
    with pytest.raises(KeyError, match="'c' is not in the vocabulary"):
        v.encode(["a", "c"])


def test_vocab_rejects_inconsistent_definitions():
    with pytest.raises(ValueError, match="duplicate token 'a'"):
        Vocab(["a", "b", "a"])
    with pytest.raises(ValueError, match="unk_token '<unk>' is not in the vocabulary"):
        Vocab(["a"], unk_token="<unk>")
    with pytest.raises(ValueError, match="order must be"):
        Vocab.build([["a"]], order="alphabetical")  # type: ignore[arg-type]


def test_vocab_encode_many_matches_encode():
    v = Vocab.build([["a", "b"]], specials=["<unk>"], unk_token="<unk>")
    seqs = [["a", "q"], [], ["b", "b", "a"]]
    ids, offsets = v.encode_many(seqs)
    assert offsets.tolist() == [0, 2, 2, 5]
    assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(3)] == [
        v.encode(s) for s in seqs
    ]


def test_vocab_json_round_trip_is_exact_and_atomic(tmp_path):
    v = Vocab(["<pad>", "<unk>", "ça", "naïve", "日本"], unk_token="<unk>", pad_token="<pad>")
    path = v.save(tmp_path / "vocab.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.json"]  # no temp file left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["itos"][2] == "ça"
    loaded = Vocab.load(path)
    assert loaded == v and loaded.encode(["日本", "zz"]) == [4, 1] and loaded.pad_index == 0
    faithful = Vocab(["w", "x"], default_index=0)
    assert Vocab.load(faithful.save(tmp_path / "f.json")).encode(["?"]) == [0]
    (tmp_path / "bad.json").write_text('{"itos": ["a"]}')
    with pytest.raises(ValueError, match="not an rnnsuite vocabulary"):
        Vocab.load(tmp_path / "bad.json")


# --------------------------------------------------------------------------- collation


def test_padify_pads_to_the_longest_with_a_configurable_id():
    batch = [(0, [5, 6, 7]), (3, torch.tensor([8])), (1, [])]
    labels, x = padify(batch)
    assert labels.tolist() == [0, 3, 1]
    assert x.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    _, x9 = padify(batch, pad_id=9)
    assert x9.tolist() == [[5, 6, 7], [8, 9, 9], [9, 9, 9]]


def test_pad_with_lengths_packs_and_unpacks_back():
    batch = [(2, [1, 2]), (0, [3, 4, 5, 6]), (1, [7])]
    labels, x, lengths = pad_with_lengths(batch, pad_id=0)
    assert labels.tolist() == [2, 0, 1]
    assert lengths.tolist() == [2, 4, 1] and lengths.dtype == torch.long and x.shape == (3, 4)
    packed = pack_padded_sequence(
        x.unsqueeze(-1).float(), lengths, batch_first=True, enforce_sorted=False
    )
    back, back_len = pad_packed_sequence(packed, batch_first=True)
    assert torch.equal(back.squeeze(-1).long(), x) and torch.equal(back_len, lengths)


def test_classification_collate_encodes_text_and_shifts_raw_labels():
    vocab = Vocab.build([["a", "b"]], default_index=0)
    collate = ClassificationCollate(
        with_lengths=True, encode=lambda s: vocab.encode(basic_english(s)), label_offset=-1
    )
    labels, x, lengths = collate([(1, "A b a"), (4, "B")])
    assert labels.tolist() == [0, 3]
    assert x.tolist() == [[0, 1, 0], [1, 0, 0]] and lengths.tolist() == [3, 1]


def test_bucket_batch_sampler_covers_every_index_once_and_cuts_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=g)
    sampler = BucketBatchSampler(lengths, 16, pool_batches=8, generator=g)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    for b in batches:
        lens = lengths[b].tolist()
        assert lens == sorted(lens, reverse=True)

    def padding(bs: list[list[int]]) -> int:
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in bs)

    random_batches = torch.randperm(1000, generator=g).split(16)
    assert padding(batches) < padding([b.tolist() for b in random_batches]) / 3
    dropped = list(BucketBatchSampler(lengths, 16, drop_last=True, shuffle=False))
    assert len(dropped) == 62 and all(len(b) == 16 for b in dropped)


# --------------------------------------------------------------------------- LM batching


def test_fastai_sequences_and_group_chunks_continue_row_by_row():
    nums = torch.arange(1000)
    seqs = fastai_lm_sequences(nums, 16)
    assert len(seqs) == len(range(0, 1000 - 17, 16))
    assert all(torch.equal(y, x + 1) for x, y in seqs)
    bs = 8
    batches = stream_batches(group_chunks(seqs, bs), bs)
    assert len(batches) == len(seqs) // bs
    for (x0, y0), (x1, _) in itertools.pairwise(batches):
        # row j of batch k+1 starts exactly where row j of batch k stopped
        assert torch.equal(x1[:, 0], y0[:, -1]) and torch.equal(x1[:, 0], x0[:, -1] + 1)


def test_group_chunks_reorders_as_fastai():
    ds = list(range(10))
    assert group_chunks(ds, 3) == [0, 3, 6, 1, 4, 7, 2, 5, 8]  # m = 3, ds[9] dropped


def test_stream_batches_drop_last():
    ds = [(torch.tensor([i]), torch.tensor([i + 1])) for i in range(5)]
    assert len(stream_batches(ds, 2)) == 2
    assert len(stream_batches(ds, 2, drop_last=False)) == 3


def test_windowed_sequences_start_at_every_position():
    corpus = torch.arange(10)
    X, Y = windowed_sequences(corpus, 3)
    assert X.shape == Y.shape == (7, 3)
    assert X[0].tolist() == [0, 1, 2] and Y[0].tolist() == [1, 2, 3] and X[-1].tolist() == [6, 7, 8]
    with pytest.raises(ValueError, match="too short"):
        windowed_sequences(torch.arange(3), 3)


def test_next_word_pairs_equals_udacity_batch_data_loop():
    words = list(range(103))
    seq_len, batch_size = 5, 10
    trimmed = words[: (len(words) // batch_size) * batch_size]
    feats = [trimmed[i : i + seq_len] for i in range(len(trimmed) - seq_len)]
    targs = [trimmed[i + seq_len] for i in range(len(trimmed) - seq_len)]
    f, t = next_word_pairs(words, seq_len, batch_size)
    assert f.tolist() == feats and t.tolist() == targs


def test_bptt_iterator_rows_continue_and_last_window_is_short():
    stream = torch.arange(103)
    it = BPTTIterator(stream, batch_size=4, bptt=7)
    rows = batchify(stream, 4)
    assert rows.shape == (4, 25)
    windows = list(it)
    assert len(windows) == len(it) == 4
    assert [x.shape[1] for x, _ in windows] == [7, 7, 7, 3]
    for (_, y0), (x1, _) in itertools.pairwise(windows):
        assert torch.equal(x1[:, 0], y0[:, -1])
    assert torch.equal(torch.cat([x for x, _ in windows], 1), rows[:, :-1])
    x_t, _ = next(iter(BPTTIterator(stream, 4, 7, batch_first=False)))
    assert x_t.shape == (7, 4)


def test_state_carried_through_bptt_windows_equals_one_full_pass():
    torch.manual_seed(0)
    emb, rnn = nn.Embedding(50, 8), nn.LSTM(8, 12, batch_first=True)
    stream = torch.randint(0, 50, (203,))
    state = None
    outs = []
    with torch.no_grad():
        for x, _ in BPTTIterator(stream, batch_size=4, bptt=9):
            out, state = rnn(emb(x), state)
            state = detach_state(state)
            outs.append(out)
        full, _ = rnn(emb(batchify(stream, 4)[:, :-1]))
    torch.testing.assert_close(torch.cat(outs, 1), full)


def test_detach_state_handles_nested_states():
    h = torch.zeros(2, requires_grad=True) * 2
    out = detach_state(((h, h), [h]))
    assert isinstance(out, tuple) and isinstance(out[1], list)
    assert not out[0][0].requires_grad and not out[1][0].requires_grad


# --------------------------------------------------------------------------- seq2seq


def test_build_seq2seq_arrays_shift_pad_trim_and_valid_lengths():
    src = [["a", "b", "<eos>"], ["a", "c", "d", "e", "<eos>"], ["b", "<eos>"]]
    tgt = [["x", "<eos>"], ["y", "x", "<eos>"], ["x", "y", "z", "w", "<eos>"]]
    (s, dec_in, s_len, label), sv, tv = build_seq2seq_arrays(src, tgt, num_steps=4)
    assert sv.decode(s[1]) == ["a", "<unk>", "<unk>", "<unk>"]  # trimmed: <eos> is cut off
    assert s_len.tolist() == [3, 4, 2]
    assert tv.decode(dec_in[0]) == ["<bos>", "x", "<eos>", "<pad>"]
    assert tv.decode(label[0]) == ["x", "<eos>", "<pad>", "<pad>"]
    assert torch.equal(dec_in[:, 1:], label[:, :-1])
    # d2l: vocabulary of the padded sentences, min_freq 2, sorted, '<unk>' included
    assert tv.itos == ["<bos>", "<eos>", "<pad>", "<unk>", "x", "y"]


def test_seq2seq_loader_and_batch_mask():
    src = [["a", "<eos>"], ["a", "b", "<eos>"], ["b", "<eos>"]] * 2
    tgt = [["x", "<eos>"], ["x", "y", "<eos>"], ["y", "<eos>"]] * 2
    arrays, _, tv = build_seq2seq_arrays(src, tgt, num_steps=4)
    pad = tv["<pad>"]
    batches = list(seq2seq_loader(arrays, 4, pad_id=pad, shuffle=False))
    assert [b.src.shape[0] for b in batches] == [4, 2]
    b = batches[0]
    assert isinstance(b, Seq2SeqBatch) and torch.equal(b.mask, b.tgt != pad)
    assert b.tgt_valid_len.tolist() == [2, 3, 2, 2]
    assert torch.equal(b.as_d2l()[3], b.tgt)
    assert torch.equal(sequence_mask(b.tgt_valid_len, 4), b.mask)


def test_pair_collate_adds_bos_eos_and_masks_padding():
    collate = PairCollate(pad_id=0, bos_id=1, eos_id=2)
    b = collate([([5, 6], [7]), ([5], [8, 9, 7])])
    assert b.src.tolist() == [[5, 6, 2], [5, 2, 0]] and b.src_valid_len.tolist() == [3, 2]
    assert b.dec_in.tolist() == [[1, 7, 0, 0], [1, 8, 9, 7]]
    assert b.tgt.tolist() == [[7, 2, 0, 0], [8, 9, 7, 2]]
    assert b.mask.sum().item() == int(b.tgt_valid_len.sum()) == 6


def _d2l_preprocess_reference(text: str) -> str:
    """d2l 1.0 _preprocess written out as its character loop (the oracle)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    out = []
    for i, char in enumerate(text.lower()):
        out.append(" " + char if i > 0 and char in ",.!?" and text[i - 1] != " " else char)
    return "".join(out)


@pytest.mark.parametrize(
    "text",
    [
        "Go.\tVa !\nHi.\tSalut\u202f!\n",
        "Wait...\tAttends\xa0!\n!Start\t,comma\n",
        "A. B ,C!?\t?\n\n",
        "İstanbul, ok.\tİ.\n",  # lower() lengthens 'İ': the loop path must be used
    ],
)
def test_d2l_mt_preprocess_equals_the_character_loop(text):
    assert d2l_mt_preprocess(text) == _d2l_preprocess_reference(text)


def test_d2l_mt_tokenize_reads_one_line_more_than_asked():
    text = "".join(f"w{i} .\tm{i} !\n" for i in range(10))
    src, tgt = d2l_mt_tokenize(text, 4)
    assert len(src) == 5 and src[0] == ["w0", ".", "<eos>"] and tgt[4] == ["m4", "!", "<eos>"]
    assert len(d2l_mt_tokenize(text, 4, d2l_quirks=False)[0]) == 4
    assert len(d2l_mt_tokenize(text + "bad line\n", None)[0]) == 10  # no tab: skipped


def test_build_fra_eng_on_a_tiny_corpus_keeps_d2l_slices():
    raw = "".join(f"Go{i % 3}.\tVa{i % 2}\u202f!\n" for i in range(20))
    data = build_fra_eng(raw, num_train=6, num_val=3, num_steps=5)
    assert data.arrays[0].shape == (10, 5)  # 6 + 3 + 1 rows
    assert data.split(True)[0].shape[0] == 6 and data.split(False)[0].shape[0] == 4
    assert data.src_vocab.decode(data.arrays[0][0]) == ["go0", ".", "<eos>", "<pad>", "<pad>"]
    exact = build_fra_eng(raw, num_train=6, num_val=3, num_steps=5, d2l_quirks=False)
    assert exact.split(False)[0].shape[0] == 3


# --------------------------------------------------------------------------- Human Numbers


def test_number_to_words_as_fastai_wrote_them():
    assert number_to_words(1) == "one"
    assert number_to_words(123) == "one hundred twenty three"
    assert number_to_words(8001) == "eight thousand one"
    assert number_to_words(7999) == "seven thousand nine hundred ninety nine"
    assert number_to_words(1010) == "one thousand ten"
    with pytest.raises(ValueError):
        number_to_words(10_000)


def test_human_numbers_counts_of_the_book():
    hn = load_human_numbers()
    assert len(hn.lines) == 9_998 and hn.lines[0] == "one \n"
    assert len(hn.tokens) == 63_095
    assert len(hn.vocab) == 30
    assert hn.vocab.itos[:4] == ["one", ".", "two", "three"]
    assert hn.nums[:10].tolist() == [0, 1, 2, 1, 3, 1, 4, 1, 5, 1]
    assert "and" not in hn.vocab
    assert hn.text.startswith("one . two . three") and hn.text.endswith(
        "nine thousand nine hundred ninety nine"
    )
    train, valid = hn.lm_datasets(sl=16, bs=64)
    assert (len(train), len(valid)) == (3136, 768)  # 3,943 sequences, cut at 3,154


def test_write_human_numbers_files(tmp_path):
    train, valid = write_human_numbers(tmp_path)
    t, v = train.read_text().splitlines(keepends=True), valid.read_text().splitlines(keepends=True)
    assert (len(t), len(v)) == (7_999, 1_999)
    assert (
        t[0] == "one \n" and v[0] == "eight thousand one \n" and v[-1].startswith("nine thousand")
    )
    assert not re.search(r"\band\b", train.read_text() + valid.read_text())
