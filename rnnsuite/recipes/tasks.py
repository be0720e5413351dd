"""One function per kind of task; each runs a recipe's settings and returns plain data.

A result is {"metrics": {...}, "curves": {...}, "samples": {...}, "notes": [...]}: final
numbers, learning curves as lists of points, generated text, and anything the reader must
know (e.g. that AG News train was partial). `limits` shrink a run for tests and smoke runs:
max_batches (per epoch), epochs, num_train/num_val, test_batches (AG News's test pass).
A result may also carry "timing": cumulative training seconds at each curve point, kept
out of "curves" because a rerun with the same seed repeats everything but the clock.

``arch = "transformer"`` in a model config swaps the RNN for the Transformer baseline
of the same interface (models/transformer.py), so the quality matrix can run it as one
more architecture.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .. import data as rdata
from ..heads import Acceptor
from ..models import (
    AttentionDecoder,
    CharLM,
    Seq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
    TextClassifier,
    WordLM,
)
from ..models.transformer import TransformerCharLM, TransformerClassifier, TransformerLM
from ..registry import build
from ..stateful import Stateful
from ..train.loops import (
    checked_perplexity,
    classification_accuracy,
    classification_epoch,
    fit_one_cycle_lm,
    train_char_lm,
    train_seq2seq,
)
from ..train.metrics import bleu_d2l, corpus_bleu

Result = dict[str, Any]


def _take(batches, limit: int | None):
    for i, b in enumerate(batches):
        if limit is not None and i >= limit:
            return
        yield b


def ag_news(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rdata.PartialDataWarning)  # carried as a note instead
        ag = rdata.load_ag_news(root)
    enc = ag.numericalize("faithful")
    torch.manual_seed(seed)
    packed = bool(model_cfg.get("packed", False))
    if model_cfg["arch"] == "transformer":
        model: nn.Module = TransformerClassifier(
            len(enc.vocab),
            model_cfg["embed_dim"],
            4,
            num_heads=model_cfg.get("num_heads", 4),
            ff_dim=model_cfg.get("ff_dim"),
            num_layers=model_cfg.get("num_layers", 1),
            dropout=model_cfg.get("dropout", 0.0),
        )
        packed = True  # the lengths build its padding mask; nothing is packed
    else:
        model = TextClassifier(
            len(enc.vocab),
            model_cfg["embed_dim"],
            model_cfg["hidden_size"],
            4,
            arch=model_cfg["arch"],
            impl=model_cfg["impl"],
            readout=model_cfg["readout"],
            packed=packed,
            embed_init=model_cfg.get("embed_init", "default"),
            num_layers=model_cfg.get("num_layers", 1),
        )
    model.to(device)
    collate = rdata.pad_with_lengths if packed else rdata.padify
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        enc.train, train_cfg["batch_size"], shuffle=True, collate_fn=collate, generator=gen
    )
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg["lr"])
    out = classification_epoch(
        model, _take(loader, limits.get("max_batches")), opt, train_cfg["report_every"], device
    )
    test_loader = DataLoader(enc.test, 256, collate_fn=collate)
    test_cap = limits.get("test_batches", limits.get("max_batches"))
    test_acc = classification_accuracy(model, _take(test_loader, test_cap), device)
    notes = [ag.note] if ag.note else []
    return {
        "metrics": {
            "epoch_loss": out["loss"],
            "epoch_accuracy": out["accuracy"],
            "samples": out["samples"],
            "test_accuracy": test_acc,
            "vocab_size": len(enc.vocab),
        },
        "curves": {"running_accuracy": out["curve"]},
        "timing": {"running_accuracy": out["curve_seconds"], "train": out["train_seconds"]},
        "notes": notes,
        "partial_data": ag.partial,
    }


def human_numbers(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    hn = rdata.load_human_numbers()
    train_ds, valid_ds = hn.lm_datasets(train_cfg["sl"], train_cfg["bs"])
    train = rdata.stream_batches(train_ds, train_cfg["bs"])
    valid = rdata.stream_batches(valid_ds, train_cfg["bs"])
    if limits.get("max_batches"):
        train, valid = train[: limits["max_batches"]], valid[: limits["max_batches"]]
    torch.manual_seed(seed)
    if model_cfg["arch"] == "transformer":
        model: nn.Module = TransformerLM(
            len(hn.vocab),
            model_cfg["hidden_size"],
            model_cfg["num_layers"],
            num_heads=model_cfg.get("num_heads", 4),
            ff_dim=model_cfg.get("ff_dim"),
            dropout=model_cfg.get("dropout", 0.0),
            tie=model_cfg.get("tie", False),
        )
    else:
        model = WordLM(
            len(hn.vocab),
            model_cfg["hidden_size"],
            model_cfg["num_layers"],
            arch=model_cfg["arch"],
            impl=model_cfg["impl"],
            dropout=model_cfg.get("dropout", 0.0),
            tie=model_cfg.get("tie", False),
        )
    out = fit_one_cycle_lm(
        model.to(device),
        train,
        valid,
        limits.get("epochs", train_cfg["epochs"]),
        train_cfg["lr"],
        wd=train_cfg["wd"],
        alpha=train_cfg.get("alpha", 0.0),
        beta=train_cfg.get("beta", 0.0),
        device=device,
    )
    return {
        "metrics": {
            "valid_loss": out["valid_loss"],
            "accuracy": out["accuracy"],
            "best_accuracy": out["best_accuracy"],
        },
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
    }


def ptb(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """A word LM on Penn Treebank with fit_one_cycle: state carried across truncated-BPTT
    windows (the Transformer sees one window at a time); validation perplexity."""
    data = rdata.load_ptb(root)
    bs, bptt = train_cfg["bs"], train_cfg["bptt"]
    train = list(_take(rdata.BPTTIterator(data.train, bs, bptt), limits.get("max_batches")))
    valid = list(_take(rdata.BPTTIterator(data.valid, bs, bptt), limits.get("valid_batches")))
    torch.manual_seed(seed)
    V, H, L = len(data.vocab), model_cfg["hidden_size"], model_cfg["num_layers"]
    if model_cfg["arch"] == "transformer":
        model: nn.Module = TransformerLM(
            V,
            H,
            L,
            num_heads=model_cfg.get("num_heads", 4),
            ff_dim=model_cfg.get("ff_dim"),
            dropout=model_cfg.get("dropout", 0.0),
            tie=model_cfg.get("tie", False),
        )
    else:
        model = WordLM(
            V,
            H,
            L,
            arch=model_cfg["arch"],
            impl=model_cfg["impl"],
            dropout=model_cfg.get("dropout", 0.0),
            tie=model_cfg.get("tie", False),
        )
    out = fit_one_cycle_lm(
        model.to(device),
        train,
        valid,
        limits.get("epochs", train_cfg["epochs"]),
        train_cfg["lr"],
        wd=train_cfg["wd"],
        alpha=train_cfg.get("alpha", 0.0),
        beta=train_cfg.get("beta", 0.0),
        device=device,
    )
    for row in out["epochs"]:
        row["valid_ppl"] = checked_perplexity(row["valid_loss"], f"epoch {row.get('epoch')}")
    return {
        "metrics": {
            "valid_loss": out["valid_loss"],
            "valid_ppl": checked_perplexity(out["valid_loss"], "validation"),
            "accuracy": out["accuracy"],
            "train_batches": len(train),
        },
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
    }


def time_machine(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    tm = rdata.load_time_machine(root, num_steps=train_cfg["num_steps"])
    gen = torch.Generator().manual_seed(seed)
    bs, cap = train_cfg["batch_size"], limits.get("max_batches")

    def train_batches():
        return _take(tm.get_dataloader(True, bs, generator=gen), cap)

    def valid_batches():
        return _take(tm.get_dataloader(False, bs), cap)

    torch.manual_seed(seed)
    if model_cfg["arch"] == "transformer":
        model: nn.Module = TransformerCharLM(
            len(tm.vocab),
            model_cfg["hidden_size"],
            model_cfg.get("num_layers", 1),
            num_heads=model_cfg.get("num_heads", 4),
            ff_dim=model_cfg.get("ff_dim"),
            dropout=model_cfg.get("dropout", 0.0),
            window=train_cfg["num_steps"],
        )
    else:
        model = CharLM(
            len(tm.vocab),
            model_cfg["hidden_size"],
            model_cfg.get("num_layers", 1),
            arch=model_cfg["arch"],
            impl=model_cfg["impl"],
            init=model_cfg.get("init", "torch"),
        )
    model.to(device)
    out = train_char_lm(
        model,
        train_batches,
        valid_batches,
        limits.get("epochs", train_cfg["epochs"]),
        train_cfg["lr"],
        train_cfg["clip"],
        device,
    )
    prefix = "time traveller"
    ids = model.predict(tm.vocab.encode(list(prefix)), 50)
    text = "".join(tm.vocab.decode(ids))
    return {
        "metrics": {"train_ppl": out["train_ppl"], "valid_ppl": out["valid_ppl"]},
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
        "samples": {"continuation": text},
    }


SEED_SENTENCES = (
    ["go .", "i lost .", "he's calm .", "i'm home ."],
    ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."],
)


def translation(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    mt = rdata.load_fra_eng(
        root,
        num_train=limits.get("num_train", train_cfg["num_train"]),
        num_val=limits.get("num_val", train_cfg["num_val"]),
        num_steps=train_cfg["num_steps"],
    )
    src_v, tgt_v = mt.src_vocab, mt.tgt_vocab
    gen = torch.Generator().manual_seed(seed)
    cap = limits.get("max_batches")

    def batches(train: bool):
        def it():
            loader = mt.get_dataloader(
                train, train_cfg["batch_size"], generator=gen if train else None
            )
            for b in _take(loader, cap):
                yield b.as_d2l()

        return it

    torch.manual_seed(seed)
    E, H, L, p = (model_cfg[k] for k in ("embed_size", "hidden_size", "num_layers", "dropout"))
    rnn = {"arch": model_cfg.get("arch", "gru"), "impl": model_cfg.get("impl", "builtin")}
    enc = Seq2SeqEncoder(len(src_v), E, H, L, p, **rnn)
    if model_cfg["decoder"] == "plain":
        dec: nn.Module = Seq2SeqDecoder(len(tgt_v), E, H, L, p, **rnn)
    else:
        dec = AttentionDecoder(len(tgt_v), E, H, L, p, score=model_cfg["decoder"], **rnn)
    model = Seq2Seq(enc, dec)
    from ..models.seq2seq import xavier_init

    xavier_init(model)
    model.to(device)
    out = train_seq2seq(
        model,
        batches(True),
        batches(False),
        limits.get("epochs", train_cfg["epochs"]),
        train_cfg["lr"],
        mt.tgt_pad,
        train_cfg["clip"],
        device,
    )

    def translate(src, src_len) -> list[str]:
        model.eval()
        rows = model.greedy(
            src.to(device),
            src_len.to(device),
            tgt_v["<bos>"],
            tgt_v["<eos>"],
            train_cfg["num_steps"],
        )
        return [" ".join(tgt_v.decode(r)) for r in rows]

    engs, fras = SEED_SENTENCES
    src, _, src_len, _ = mt.build(engs, fras)
    preds = translate(src, src_len)
    examples = [
        {"source": e, "reference": f, "prediction": pr, "bleu": bleu_d2l(pr, f, k=2)}
        for e, f, pr in zip(engs, fras, preds, strict=True)
    ]
    v_src, _, v_len, v_tgt = mt.split(False)
    v_preds = translate(v_src, v_len)
    eos, pad = tgt_v["<eos>"], tgt_v["<pad>"]
    v_refs = [
        " ".join(tgt_v.decode([t for t in row if t not in (eos, pad)])) for row in v_tgt.tolist()
    ]
    return {
        "metrics": {
            "train_loss": out["train_loss"],
            "valid_loss": out["valid_loss"],
            "bleu_examples_mean": sum(e["bleu"] for e in examples) / len(examples),
            "corpus_bleu": corpus_bleu(v_preds, v_refs),
            "valid_pairs": len(v_refs),
        },
        "curves": {"epochs": out["epochs"]},
        "timing": {"epochs": out["epoch_seconds"]},
        "samples": {
            "examples": examples,
            "valid_first": list(zip(v_refs[:5], v_preds[:5], strict=True)),
        },
    }


# -- Element-Research toy: song 5-grams (Lua ids minus one; "just" = 12 as Lua's table keeps) --
SONGS = torch.tensor([[6, 0, 11, 14, 1], [10, 3, 7, 13, 9], [15, 5, 4, 2, 12]])
MASTERPIECE = torch.tensor([[1.0], [1.0], [0.0]])


def _song_model(cfg: dict) -> nn.Module:
    rnn = build(cfg["arch"], "scratch", input_size=cfg["embed_dim"], hidden_size=cfg["hidden_size"])
    return nn.ModuleDict(
        {
            "lt": nn.Embedding(cfg["vocab"], cfg["embed_dim"]),
            "acc": Acceptor(rnn, nn.Linear(cfg["hidden_size"], 1)),
        }
    )


def song_acceptor(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    torch.manual_seed(seed)
    m = _song_model(model_cfg).double().to(device)
    x, y = SONGS.T.to(device), MASTERPIECE.double().to(device)  # (time, batch) as the tutorial
    opt = torch.optim.SGD(m.parameters(), lr=train_cfg["lr"])
    curve = []
    for step in range(limits.get("epochs", train_cfg["steps"])):
        pred = torch.sigmoid(m["acc"](m["lt"](x))[0])
        loss = F.binary_cross_entropy(pred, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append((step, loss.item()))
    pred = torch.sigmoid(m["acc"](m["lt"](x))[0]).detach()
    return {
        "metrics": {
            "final_bce": curve[-1][1],
            "all_correct": bool(((pred > 0.5).double() == y).all()),
        },
        "curves": {"bce": curve},
        "samples": {"predictions": pred.flatten().tolist()},
    }


def remember(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """The tutorial's four remember/forget observations, measured."""
    torch.manual_seed(seed)
    lt = nn.Embedding(model_cfg["vocab"], model_cfg["embed_dim"]).double().to(device)
    seq = Stateful(
        build(
            model_cfg["arch"],
            "scratch",
            input_size=model_cfg["embed_dim"],
            hidden_size=model_cfg["hidden_size"],
        )
        .double()
        .to(device)
    )
    x = lt(SONGS.T.to(device)).detach()

    def last() -> torch.Tensor:
        return seq(x)[0][-1].detach()

    seq.remember("both")
    first, second = last(), last()
    seq.forget()
    after_forget = last()
    seq.remember("neither")
    n1, n2 = last(), last()
    checks = {
        "both_second_call_differs": not torch.allclose(first, second),
        "forget_restores_first_output": torch.equal(after_forget, first),
        "neither_repeats_first_output": torch.equal(n1, first) and torch.equal(n2, first),
    }
    return {
        "metrics": {**checks, "all_hold": all(checks.values())},
        "samples": {"first": first.tolist(), "second": second.tolist()},
    }


TASKS = {
    "ag_news": ag_news,
    "human_numbers": human_numbers,
    "time_machine": time_machine,
    "ptb": ptb,
    "translation": translation,
    "song_acceptor": song_acceptor,
    "remember": remember,
}


# -- Udacity nanodegree (seed 003): word2vec, word2vec-initialised AG News, TV scripts ------
W2V_KEYS = ("epochs", "batch_size", "window_size", "n_neg", "lr", "threshold", "min_count")


def _w2v_settings(cfg: dict, limits: dict) -> dict:
    """train_word2vec keyword arguments from a recipe table; `limits` cap epochs and steps
    (max_batches = optimiser steps) so a test runs a handful of steps on the real corpus."""
    kw = {k: cfg[k] for k in W2V_KEYS if k in cfg}
    kw["resample_each_epoch"] = bool(cfg.get("resample_each_epoch", False))
    if "epochs" in limits:
        kw["epochs"] = limits["epochs"]
    if limits.get("max_batches"):
        kw["max_steps"] = limits["max_batches"]
    return kw


def word2vec(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """Skip-gram with negative sampling on a corpus; the neighbours of the recipe's probe
    words are the lesson's own check that the vectors mean something. CPU only: the loop
    is tiny-batch Python and gains nothing from a GPU."""
    from ..train.word2vec import corpus_tokens, train_word2vec

    tokens = corpus_tokens(train_cfg["corpus"], root)
    w2v = train_word2vec(
        tokens, embed_dim=model_cfg["embed_dim"], seed=seed, **_w2v_settings(train_cfg, limits)
    )
    k = int(train_cfg.get("k", 5))
    probes = list(train_cfg.get("probes", []))
    missing = [p for p in probes if p not in w2v.vocab.stoi]
    neighbours = {p: w2v.neighbours(p, k) for p in probes if p not in missing}
    notes = [f"probe words not in the vocabulary: {', '.join(missing)}"] if missing else []
    if device != "cpu":
        notes.append("word2vec trains on the CPU whatever the device")
    return {
        "metrics": {
            "final_loss": w2v.epoch_losses[-1],
            "first_epoch_loss": w2v.epoch_losses[0],
            "vocab_size": len(w2v.vocab),
            "train_words": w2v.train_words,
            "steps": w2v.steps,
        },
        "curves": {"epoch_loss": list(enumerate(w2v.epoch_losses, 1))},
        "timing": {"train": w2v.seconds},
        "samples": {"neighbours": neighbours},
        "notes": notes,
    }


_W2V_CACHE_FORMAT = 1


def _cached_word2vec(cfg: dict, embed_dim: int, seed: int, limits: dict, root) -> dict:
    """Word2vec vectors for the AG News transfer, trained once per (corpus, settings, seed)
    and kept in the user cache: the random- and word2vec-initialised runs of a seed differ
    only in the classifier, so a rerun need not pay ~35 s of PTB training again."""
    from ..data import fetch
    from ..data.cache import load_or_build
    from ..train.word2vec import corpus_tokens, train_word2vec

    corpus = cfg.get("corpus", "ptb")
    kw = _w2v_settings(cfg, limits)
    filename = {"ptb": "ptb.train.txt", "time_machine": "timemachine.txt"}[corpus]
    path = fetch.locate(corpus, filename, root=root)
    key = {
        "format": _W2V_CACHE_FORMAT,
        "corpus": corpus,
        "sha256": fetch.file_digest(path),
        "embed_dim": embed_dim,
        "seed": seed,
        **kw,
    }

    def build() -> dict:
        w2v = train_word2vec(corpus_tokens(corpus, root), embed_dim=embed_dim, seed=seed, **kw)
        return {
            "itos": w2v.vocab.itos,
            "vectors": w2v.embeddings,
            "epoch_losses": w2v.epoch_losses,
            "seconds": w2v.seconds,
            "steps": w2v.steps,
        }

    return load_or_build("word2vec", key, build)


def agnews_w2v(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """AI-For-Beginners' AG News classifier (the ag_news task's construction: one epoch,
    Adam, batch 16) with its embedding either left random or seeded from word2vec vectors
    trained on PTB (WSJ news, AG News's domain). Both arms of a seed build the same model
    from the same RNG state and see the same batches: only the embedding rows differ."""
    import warnings

    from ..data.vocab import Vocab
    from ..train.word2vec import embedding_from_word2vec

    init = model_cfg.get("embed_init", "random")
    if init not in ("random", "word2vec"):
        raise ValueError(f"embed_init must be 'random' or 'word2vec', got {init!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rdata.PartialDataWarning)  # carried as a note instead
        ag = rdata.load_ag_news(root)
    enc = ag.numericalize("faithful")
    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    if init == "word2vec":
        w2v = _cached_word2vec(train_cfg["w2v"], model_cfg["embed_dim"], seed, limits, root)
        weight, coverage = embedding_from_word2vec(
            Vocab(w2v["itos"]),
            w2v["vectors"],
            enc.vocab,
            model_cfg["embed_dim"],
            torch.Generator().manual_seed(seed),
        )
        covered = torch.zeros(len(enc.vocab), dtype=torch.bool)
        known = set(w2v["itos"])
        covered[[i for i, t in enumerate(enc.vocab.itos) if t in known]] = True
        metrics.update(
            w2v_vocab_coverage=coverage,
            w2v_token_coverage=float(covered[enc.train.ids].float().mean()),
            w2v_final_loss=w2v["epoch_losses"][-1],
            w2v_vocab_size=len(w2v["itos"]),
        )
        curves["w2v_epoch_loss"] = list(enumerate(w2v["epoch_losses"], 1))
        timing["w2v_train"] = w2v["seconds"]
    torch.manual_seed(seed)
    packed = bool(model_cfg.get("packed", False))
    model = TextClassifier(
        len(enc.vocab),
        model_cfg["embed_dim"],
        model_cfg["hidden_size"],
        4,
        arch=model_cfg["arch"],
        impl=model_cfg["impl"],
        readout=model_cfg["readout"],
        packed=packed,
        num_layers=model_cfg.get("num_layers", 1),
    )
    if init == "word2vec":
        with torch.no_grad():
            model.embedding.weight.copy_(weight)
    model.to(device)
    collate = rdata.pad_with_lengths if packed else rdata.padify
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        enc.train, train_cfg["batch_size"], shuffle=True, collate_fn=collate, generator=gen
    )
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg["lr"])
    out = classification_epoch(
        model, _take(loader, limits.get("max_batches")), opt, train_cfg["report_every"], device
    )
    test_loader = DataLoader(enc.test, 256, collate_fn=collate)
    test_cap = limits.get("test_batches", limits.get("max_batches"))
    test_acc = classification_accuracy(model, _take(test_loader, test_cap), device)
    metrics = {
        "test_accuracy": test_acc,
        "epoch_accuracy": out["accuracy"],
        "epoch_loss": out["loss"],
        "samples": out["samples"],
        **metrics,
    }
    return {
        "metrics": metrics,
        "curves": {"running_accuracy": out["curve"], **curves},
        "timing": {
            "running_accuracy": out["curve_seconds"],
            "train": out["train_seconds"],
            **timing,
        },
        "notes": [ag.note] if ag.note else [],
        "partial_data": ag.partial,
    }


def tv_script(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """Udacity's TV-script project on the Seinfeld scripts: train for the recipe's budget
    (max_batches, or epochs until a logged loss passes `stop_below`), judge the final
    logged loss against the course's pass mark, and generate a script primed with a
    speaker — the project's own deliverable."""
    from ..textgen import generate_script
    from ..train.script import train_script

    data = rdata.load_seinfeld(root)
    max_batches = limits.get("max_batches", train_cfg.get("max_batches"))
    log_every = int(train_cfg.get("log_every", 100))
    if max_batches:
        log_every = min(log_every, max_batches)  # a capped run still logs one point
    seq_len = int(train_cfg["sequence_length"])
    res = train_script(
        data,
        sequence_length=seq_len,
        batch_size=train_cfg["batch_size"],
        embedding_dim=model_cfg["embedding_dim"],
        hidden_dim=model_cfg["hidden_dim"],
        n_layers=model_cfg["n_layers"],
        dropout=model_cfg.get("dropout", 0.5),
        lr=train_cfg["lr"],
        epochs=limits.get("epochs", train_cfg["epochs"]),
        seed=seed,
        arch=model_cfg.get("arch", "lstm"),
        impl=model_cfg.get("impl", "builtin"),
        max_batches=max_batches,
        clip=train_cfg.get("clip", 5.0),
        log_every=log_every,
        stop_below=train_cfg.get("stop_below"),
        device=device,
    )
    final = res.losses[-1] if res.losses else res.epoch_losses[-1]
    pass_mark = float(train_cfg.get("pass_mark", 3.5))
    script = generate_script(
        res.model,
        data.vocab,
        data.token_dict,
        train_cfg.get("prime", "jerry:"),
        int(train_cfg.get("gen_length", 120)),
        seq_len,
        temperature=float(train_cfg.get("temperature", 1.0)),
        top_k=train_cfg.get("top_k", 5),
        seed=seed,
    )
    return {
        "metrics": {
            "final_loss": final,
            "batches": res.batches,
            "epochs_run": len(res.epoch_losses),
            "pass_mark": pass_mark,
            "passed": final < pass_mark,
        },
        "curves": {"loss": [((i + 1) * log_every, v) for i, v in enumerate(res.losses)]},
        "timing": {"train": res.seconds, "cpu": res.cpu_seconds},
        "samples": {"script": script},
    }


TASKS.update(word2vec=word2vec, agnews_w2v=agnews_w2v, tv_script=tv_script)
