"""Task models of the reference documents, each over any registered architecture."""

from .char_lm import CharLM
from .classifier import TextClassifier
from .seq2seq import AttentionDecoder, Seq2Seq, Seq2SeqDecoder, Seq2SeqEncoder
from .word_lm import WordLM

__all__ = [
    "AttentionDecoder",
    "CharLM",
    "Seq2Seq",
    "Seq2SeqDecoder",
    "Seq2SeqEncoder",
    "TextClassifier",
    "WordLM",
]
