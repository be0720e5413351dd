"""Metrics the documents report: accuracy, perplexity and BLEU (d2l's and sacrebleu's)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu_d2l(prediction: str, reference: str, k: int = 2) -> float:
    """d2l's sentence BLEU: brevity penalty exp(min(0, 1 - len_ref/len_pred)) times
    the product over n = 1..k of p_n ** (1/2**n), with clipped n-gram matches."""
    pred, ref = prediction.split(" "), reference.split(" ")
    if not pred or pred == [""]:
        return 0.0
    score = math.exp(min(0.0, 1 - len(ref) / len(pred)))
    for n in range(1, min(k, len(pred)) + 1):
        ref_counts = ngrams(ref, n)
        pred_counts = ngrams(pred, n)
        matches = sum(min(c, ref_counts[g]) for g, c in pred_counts.items())
        score *= (matches / (len(pred) - n + 1)) ** (0.5**n)
    return score


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (0–100) on already-tokenised text (tokenize='none')."""
    import sacrebleu

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    return float(
        sacrebleu.corpus_bleu(
            list(predictions), [list(references)], tokenize="none", force=True
        ).score
    )


def perplexity(mean_loss: float) -> float:
    return math.exp(mean_loss)
