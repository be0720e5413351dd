"""Udacity's PyTorch nanodegree (seed 003): word2vec, word2vec-initialised AG News and
the TV-script project. (Its attention translations run d2l.translation.)"""

from __future__ import annotations

from typing import Any

import torch

from .ai4b import classify_and_test, load_encoded
from .common import Result
from .models import task_model

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
    from ...train.word2vec import corpus_tokens, train_word2vec

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
    from ...data import fetch
    from ...data.cache import load_or_build
    from ...train.word2vec import corpus_tokens, train_word2vec

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


def _w2v_embedding(train_cfg: dict, model_cfg: dict, enc, *, seed: int, limits: dict, root):
    """The AG News embedding seeded from (cached) word2vec vectors, and what to report
    about them: coverage of the vocabulary and of the training tokens, the w2v loss."""
    from ...data.vocab import Vocab
    from ...train.word2vec import embedding_from_word2vec

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
    metrics = {
        "w2v_vocab_coverage": coverage,
        "w2v_token_coverage": float(covered[enc.train.ids].float().mean()),
        "w2v_final_loss": w2v["epoch_losses"][-1],
        "w2v_vocab_size": len(w2v["itos"]),
    }
    curves = {"w2v_epoch_loss": list(enumerate(w2v["epoch_losses"], 1))}
    return weight, metrics, curves, {"w2v_train": w2v["seconds"]}


def agnews_w2v(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    """AI-For-Beginners' AG News classifier (the ag_news task's construction: one epoch,
    Adam, batch 16) with its embedding either left random or seeded from word2vec vectors
    trained on PTB (WSJ news, AG News's domain). Both arms of a seed build the same model
    from the same RNG state and see the same batches: only the embedding rows differ."""
    init = model_cfg.get("embed_init", "random")
    if init not in ("random", "word2vec"):
        raise ValueError(f"embed_init must be 'random' or 'word2vec', got {init!r}")
    ag, enc = load_encoded(root)
    metrics: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    if init == "word2vec":
        weight, metrics, curves, timing = _w2v_embedding(
            train_cfg, model_cfg, enc, seed=seed, limits=limits, root=root
        )
    torch.manual_seed(seed)
    cfg = {**model_cfg, "embed_init": "default"}  # the classifier's own N(0, 1) init
    model = task_model("classifier", cfg, vocab_size=len(enc.vocab), num_classes=4)
    if init == "word2vec":
        with torch.no_grad():
            model.embedding.weight.copy_(weight)
    out, test_acc = classify_and_test(
        model, enc, train_cfg, seed=seed, device=device, limits=limits
    )
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
    from ... import data as rdata
    from ...textgen import generate_script
    from ...train.script import train_script

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
