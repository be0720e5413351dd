"""Seinfeld scripts as Udacity's TV-script project prepares them (helper.py + the seed).

``preprocess_and_save_data``: drop the first 81 characters (a notice in the file the helper
was written for; here it cuts into the first line — kept, switchable via ``skip_chars``),
replace punctuation with the seed's ``token_lookup`` tokens, lower-case, whitespace split.
The vocabulary is ``create_lookup_tables(words + ['<PAD>'])``: by count, ties first-seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from . import fetch
from .cache import load_or_build
from .lm_batching import next_word_pairs
from .tokenize import punctuation_to_tokens, seinfeld_token_lookup
from .vocab import Vocab

PAD = "<PAD>"  # helper.SPECIAL_WORDS['PADDING'], added after lower-casing, so upper case
HELPER_SKIP_CHARS = 81
_PROCESSED_FORMAT = 1


@dataclass
class Seinfeld:
    words: list[str]
    vocab: Vocab
    int_text: Tensor
    token_dict: dict[str, str]
    path: Path | None = None

    def batch_data(
        self, sequence_length: int, batch_size: int, shuffle: bool = False
    ) -> DataLoader:
        """The seed's ``batch_data``: (sequence_length ids -> next id) pairs in a DataLoader."""
        features, targets = next_word_pairs(self.int_text, sequence_length, batch_size)
        return DataLoader(TensorDataset(features, targets), batch_size=batch_size, shuffle=shuffle)


def load_seinfeld(
    root: Path | str | None = None,
    *,
    question_mark_quirk: bool = True,
    skip_chars: int = HELPER_SKIP_CHARS,
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
    use_cache: bool | None = None,
) -> Seinfeld:
    path = fetch.locate(
        "seinfeld",
        "Seinfeld_Scripts.txt",
        root=root,
        download=download,
        verify=verify,
        mirror=mirror,
    )
    token_dict = seinfeld_token_lookup(question_mark_quirk)
    key = {
        "format": _PROCESSED_FORMAT,
        "sha256": fetch.file_digest(path),
        "token_dict": token_dict,
        "skip_chars": skip_chars,
    }

    def build() -> dict:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()[skip_chars:]
        words = punctuation_to_tokens(text, token_dict)
        vocab = Vocab.build([[*words, PAD]], order="frequency", pad_token=PAD)
        return {"itos": vocab.itos, "int_text": vocab.encode_tensor(words)}

    payload = load_or_build("seinfeld", key, build, use_cache=use_cache)
    vocab = Vocab(payload["itos"], pad_token=PAD)
    words = vocab.decode(payload["int_text"])
    return Seinfeld(words, vocab, payload["int_text"], token_dict, path)
