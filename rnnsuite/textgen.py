"""Sampling text from a next-word model, and turning punctuation tokens back into text.

The TV-script project generates by sampling, not arg-max: greedy decoding of a
word model falls into loops ("jerry: i don't know. i don't know. ..."). Here the
randomness comes from one seeded ``torch.Generator``, so a script is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from .data.vocab import Vocab

# Punctuation that hugs the word before it ("hello," / "no!") and what opens onto the next.
_CLOSING = frozenset(".,;!?)-")
_OPENING = frozenset("(")


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one id per row of ``logits`` (…, V): softmax(logits / temperature), restricted
    to the ``top_k`` most likely ids when given. Returns a long tensor of shape (…).

    A low temperature sharpens the distribution towards the arg-max, a high one flattens
    it; ``top_k=1`` *is* the arg-max. Pass a seeded ``generator`` for repeatable draws."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"temperature must be > 0 (use top_k=1 for arg-max decoding), got {temperature!r}"
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must be (..., vocab) with vocab >= 1, got {tuple(logits.shape)}")
    scaled = logits.detach().double() / temperature  # double: tiny temperatures stay finite
    if top_k is not None and top_k < scaled.shape[-1]:
        keep = scaled.topk(top_k, dim=-1).indices
        masked = torch.full_like(scaled, -math.inf)
        scaled = masked.scatter(-1, keep, scaled.gather(-1, keep))
    probs = torch.softmax(scaled, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    ids = torch.multinomial(flat, 1, generator=generator)
    return ids.reshape(probs.shape[:-1])


def inverse_token_dict(token_dict: Mapping[str, str]) -> dict[str, str]:
    """token → punctuation. Where two symbols share a token (the seed maps both ``.`` and
    ``?`` to ``||period||``) the first one listed wins, so ``||period||`` reads as ``.``."""
    inverse: dict[str, str] = {}
    for symbol, token in token_dict.items():
        inverse.setdefault(token.lower(), symbol)
    return inverse


def tokens_to_text(tokens: Iterable[str], token_dict: Mapping[str, str]) -> str:
    """Join words, turning punctuation tokens back into symbols with natural spacing:
    ``.,;!?)-`` attach to the word before, ``(`` to the word after, a newline token starts
    a new line, and double quotes alternate between opening and closing."""
    inverse = inverse_token_dict(token_dict)
    parts: list[str] = []
    glue_next = True  # no space before the next piece (start of text / line / after "(")
    quote_open = False
    for token in tokens:
        piece = inverse.get(token, token)
        if piece == "\n":
            parts.append("\n")
            glue_next = True
            continue
        if piece == '"':
            space = not glue_next and not quote_open
            parts.append((" " if space else "") + '"')
            quote_open = not quote_open
            glue_next = quote_open
            continue
        if piece in _CLOSING and token != piece:
            parts.append(piece)
            glue_next = False
            continue
        parts.append(piece if glue_next else " " + piece)
        glue_next = piece in _OPENING and token != piece
    return "".join(parts)


def _prime_error(prime_word: str, vocab: Vocab) -> ValueError:
    hints = [w for w in (prime_word.lower(), prime_word.lower() + ":") if w in vocab]
    fix = (
        f"did you mean {' or '.join(repr(h) for h in hints)}?"
        if hints
        else "pick a word of the vocabulary (it is lower-case; speakers end in ':', e.g. 'jerry:')"
    )
    return ValueError(f"prime word {prime_word!r} is not in the vocabulary: {fix}")


@torch.no_grad()
def generate_script(
    model: nn.Module,
    vocab: Vocab,
    token_dict: Mapping[str, str],
    prime_word: str,
    length: int,
    sequence_length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = 5,
    seed: int = 0,
) -> str:
    """Prime with one word, then sample ``length`` more, each from a window of the last
    ``sequence_length`` ids (left-padded with the pad id at first, as the course does) fed
    from a zero state. The pad id itself is never drawn. Returns punctuated text.

    ``model(ids)`` must return ``(logits (1, V), state)`` like ``ScriptRNN``. The model is
    put in eval mode (no dropout) for the run and restored afterwards."""
    if length < 0 or sequence_length < 1:
        raise ValueError(
            f"need length >= 0 and sequence_length >= 1, got {length} and {sequence_length}"
        )
    pad = vocab.pad_index
    if pad is None:
        raise ValueError("the vocabulary has no pad token; build it with pad_token='<PAD>'")
    if prime_word not in vocab or prime_word == vocab.pad_token:
        raise _prime_error(prime_word, vocab)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    window = torch.full((1, sequence_length), pad, dtype=torch.long)
    window[0, -1] = vocab.stoi[prime_word]
    ids = [vocab.stoi[prime_word]]
    was_training = model.training
    model.eval()
    try:
        for _ in range(length):
            logits, _ = model(window.to(device))
            logits = logits[0].float().cpu()
            logits[pad] = -math.inf  # <PAD> is never a target; it must not be generated
            nxt = int(
                sample_next(logits, temperature=temperature, top_k=top_k, generator=generator)
            )
            ids.append(nxt)
            window = torch.roll(window, -1, dims=1)
            window[0, -1] = nxt
    finally:
        model.train(was_training)
    return tokens_to_text(vocab.decode(ids), token_dict)
