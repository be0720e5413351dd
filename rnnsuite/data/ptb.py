"""Penn Treebank (Mikolov's splits), word level: each line's words then ``<eos>``.

The training split has 9,999 word types including ``<unk>``, 10,000 with ``<eos>``; valid
and test add none. ``order="first-seen"`` numbers words as PyTorch's word_language_model
example does; ``order="frequency"`` puts frequent words first (ties in first-seen order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from . import fetch
from .cache import load_or_build
from .vocab import Order, Vocab

SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"
_PROCESSED_FORMAT = 1


def ptb_tokens(text: str) -> list[str]:
    """Words of every line followed by ``<eos>`` (a final newline does not add a line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[str] = []
    for line in lines:
        out += line.split()
        out.append(EOS)
    return out


@dataclass
class PTB:
    vocab: Vocab
    train: Tensor
    valid: Tensor
    test: Tensor
    paths: dict[str, Path] = field(default_factory=dict)


def load_ptb(
    root: Path | str | None = None,
    *,
    order: Order = "first-seen",
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
    use_cache: bool | None = None,
) -> PTB:
    """Token-id streams for the three splits and the 10,000-word training vocabulary."""
    paths = {
        split: fetch.locate(
            "ptb", f"ptb.{split}.txt", root=root, download=download, verify=verify, mirror=mirror
        )
        for split in SPLITS
    }
    key = {
        "format": _PROCESSED_FORMAT,
        "order": order,
        **{f"{s}_sha256": fetch.file_digest(p) for s, p in paths.items()},
    }

    def build() -> dict:
        tokens = {s: ptb_tokens(p.read_text(encoding="utf-8")) for s, p in paths.items()}
        vocab = Vocab.build([tokens["train"]], order=order, unk_token=UNK)
        return {
            "itos": vocab.itos,
            **{s: torch.tensor(vocab.encode(t), dtype=torch.long) for s, t in tokens.items()},
        }

    payload = load_or_build("ptb", key, build, use_cache=use_cache)
    vocab = Vocab(payload["itos"], unk_token=UNK)
    return PTB(vocab, payload["train"], payload["valid"], payload["test"], paths)
