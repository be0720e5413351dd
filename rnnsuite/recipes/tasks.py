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
    "translation": translation,
    "song_acceptor": song_acceptor,
    "remember": remember,
}
