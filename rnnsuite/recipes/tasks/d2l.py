"""d2l (seed 004): the Time Machine character LMs (SGD with clipping) and the
English-French encoder-decoders (teacher forcing, BLEU). The Udacity document's attention
translations (Bahdanau, Luong) run the same task with an attention decoder."""

from __future__ import annotations

import torch
from torch import nn

from ... import data as rdata
from ...train.loops import train_char_lm, train_seq2seq
from ...train.metrics import bleu_d2l, corpus_bleu
from .common import Result, take
from .models import task_model


def time_machine(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    tm = rdata.load_time_machine(root, num_steps=train_cfg["num_steps"])
    gen = torch.Generator().manual_seed(seed)
    bs, cap = train_cfg["batch_size"], limits.get("max_batches")

    def train_batches():
        return take(tm.get_dataloader(True, bs, generator=gen), cap)

    def valid_batches():
        return take(tm.get_dataloader(False, bs), cap)

    torch.manual_seed(seed)
    model = task_model(
        "char_lm", model_cfg, vocab_size=len(tm.vocab), window=train_cfg["num_steps"]
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


def _translations(model: nn.Module, mt, num_steps: int, device: str) -> dict:
    """Greedy translations of d2l's four seed sentences (sentence BLEU, k=2) and of the
    validation pairs (sacrebleu corpus BLEU)."""
    tgt_v = mt.tgt_vocab

    def translate(src, src_len) -> list[str]:
        model.eval()
        rows = model.greedy(
            src.to(device), src_len.to(device), tgt_v["<bos>"], tgt_v["<eos>"], num_steps
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
    return {"examples": examples, "v_preds": v_preds, "v_refs": v_refs}


def translation(
    model_cfg: dict, train_cfg: dict, *, seed: int, device: str, limits: dict, root=None
) -> Result:
    mt = rdata.load_fra_eng(
        root,
        num_train=limits.get("num_train", train_cfg["num_train"]),
        num_val=limits.get("num_val", train_cfg["num_val"]),
        num_steps=train_cfg["num_steps"],
    )
    gen = torch.Generator().manual_seed(seed)
    cap = limits.get("max_batches")

    def batches(train: bool):
        def it():
            loader = mt.get_dataloader(
                train, train_cfg["batch_size"], generator=gen if train else None
            )
            for b in take(loader, cap):
                yield b.as_d2l()

        return it

    torch.manual_seed(seed)
    model = task_model(
        "seq2seq",
        model_cfg,
        src_vocab_size=len(mt.src_vocab),
        tgt_vocab_size=len(mt.tgt_vocab),
    )
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
    t = _translations(model, mt, train_cfg["num_steps"], device)
    examples, v_preds, v_refs = t["examples"], t["v_preds"], t["v_refs"]
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
