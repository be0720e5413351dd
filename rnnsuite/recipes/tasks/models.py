"""The one place that picks a task's model from its model config.

``task_model(kind, model_cfg, **dims)``: ``kind`` is what the task trains ("classifier",
"word_lm", "char_lm", "seq2seq", "acceptor"), ``model_cfg`` the recipe's or quality
cell's [model] table, ``dims`` what the data fixes (vocabulary sizes, classes, window).
An architecture whose registry record is not recurrent (``arch = "transformer"``) swaps
the RNN for the Transformer baseline of the same
interface (models/transformer.py), so the quality matrix can run it as one more
architecture. Building draws from the global RNG exactly as the constructor does, so the
caller seeds first.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ...heads import Acceptor
from ...models.char_lm import CharLM
from ...models.classifier import TextClassifier
from ...models.seq2seq import (
    AttentionDecoder,
    Seq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
    xavier_init,
)
from ...models.transformer import TransformerCharLM, TransformerClassifier, TransformerLM
from ...models.word_lm import WordLM
from ...registry import architecture, build

Builder = Callable[..., nn.Module]


def _text_classifier(cfg: dict, *, vocab_size: int, num_classes: int) -> nn.Module:
    return TextClassifier(
        vocab_size,
        cfg["embed_dim"],
        cfg["hidden_size"],
        num_classes,
        arch=cfg["arch"],
        impl=cfg["impl"],
        readout=cfg["readout"],
        packed=bool(cfg.get("packed", False)),
        embed_init=cfg.get("embed_init", "default"),
        num_layers=cfg.get("num_layers", 1),
    )


def _word_lm(cfg: dict, *, vocab_size: int) -> nn.Module:
    return WordLM(
        vocab_size,
        cfg["hidden_size"],
        cfg["num_layers"],
        arch=cfg["arch"],
        impl=cfg["impl"],
        dropout=cfg.get("dropout", 0.0),
        tie=cfg.get("tie", False),
    )


def _char_lm(cfg: dict, *, vocab_size: int, window: int) -> nn.Module:
    return CharLM(  # state from zero in every window: the window does not matter
        vocab_size,
        cfg["hidden_size"],
        cfg.get("num_layers", 1),
        arch=cfg["arch"],
        impl=cfg["impl"],
        init=cfg.get("init", "torch"),
    )


def _seq2seq(cfg: dict, *, src_vocab_size: int, tgt_vocab_size: int) -> nn.Module:
    """d2l's encoder-decoder: a plain or an attention decoder ("additive", ...), Xavier
    initialised as d2l's Seq2Seq does."""
    E, H, L, p = (cfg[k] for k in ("embed_size", "hidden_size", "num_layers", "dropout"))
    rnn = {"arch": cfg.get("arch", "gru"), "impl": cfg.get("impl", "builtin")}
    enc = Seq2SeqEncoder(src_vocab_size, E, H, L, p, **rnn)
    if cfg["decoder"] == "plain":
        dec: nn.Module = Seq2SeqDecoder(tgt_vocab_size, E, H, L, p, **rnn)
    else:
        dec = AttentionDecoder(tgt_vocab_size, E, H, L, p, score=cfg["decoder"], **rnn)
    model = Seq2Seq(enc, dec)
    xavier_init(model)
    return model


def _acceptor(cfg: dict) -> nn.Module:
    """Element-Research's song acceptor: LookupTable → scratch RNN → last step → Linear."""
    rnn = build(cfg["arch"], "scratch", input_size=cfg["embed_dim"], hidden_size=cfg["hidden_size"])
    return nn.ModuleDict(
        {
            "lt": nn.Embedding(cfg["vocab"], cfg["embed_dim"]),
            "acc": Acceptor(rnn, nn.Linear(cfg["hidden_size"], 1)),
        }
    )


def _attention(cfg: dict, **more) -> dict:
    """The Transformer's own settings: heads, feed-forward width, dropout."""
    return {
        "num_heads": cfg.get("num_heads", 4),
        "ff_dim": cfg.get("ff_dim"),
        "dropout": cfg.get("dropout", 0.0),
        **more,
    }


def _transformer_classifier(cfg: dict, *, vocab_size: int, num_classes: int) -> nn.Module:
    kw = _attention(cfg, num_layers=cfg.get("num_layers", 1))
    return TransformerClassifier(vocab_size, cfg["embed_dim"], num_classes, **kw)


def _transformer_lm(cfg: dict, *, vocab_size: int) -> nn.Module:
    kw = _attention(cfg, tie=cfg.get("tie", False))
    return TransformerLM(vocab_size, cfg["hidden_size"], cfg["num_layers"], **kw)


def _transformer_char_lm(cfg: dict, *, vocab_size: int, window: int) -> nn.Module:
    kw = _attention(cfg, window=window)
    return TransformerCharLM(vocab_size, cfg["hidden_size"], cfg.get("num_layers", 1), **kw)


RNN_MODELS: dict[str, Builder] = {
    "classifier": _text_classifier,
    "word_lm": _word_lm,
    "char_lm": _char_lm,
    "seq2seq": _seq2seq,
    "acceptor": _acceptor,
}
TRANSFORMER_MODELS: dict[str, Builder] = {
    "classifier": _transformer_classifier,
    "word_lm": _transformer_lm,
    "char_lm": _transformer_char_lm,
}


def task_model(kind: str, model_cfg: dict, **dims: int) -> nn.Module:
    """The model a task of ``kind`` trains, as ``model_cfg`` describes it: an RNN task
    model around the registered architecture, or, for an architecture whose cost model is
    attention (the Transformer baseline, by its registry record), the attention model of
    the same interface."""
    arch = model_cfg.get("arch")
    if arch is not None and not architecture(arch).recurrent:
        models, what = TRANSFORMER_MODELS, "Transformer"
    else:
        models, what = RNN_MODELS, "RNN"
    if kind not in models:
        raise ValueError(
            f"no {what} model for task kind {kind!r}; known: {', '.join(sorted(models))}"
        )
    return models[kind](model_cfg, **dims)
