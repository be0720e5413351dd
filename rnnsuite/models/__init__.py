"""Task models of the reference documents, each over any registered architecture."""

from .char_lm import CharLM
from .classifier import TextClassifier
from .script_rnn import ScriptRNN
from .sentiment import SentimentRNN
from .seq2seq import AttentionDecoder, Seq2Seq, Seq2SeqDecoder, Seq2SeqEncoder
from .transformer import (
    PositionalEncoding,
    TransformerCharLM,
    TransformerClassifier,
    TransformerLM,
)
from .word2vec import NegativeSamplingLoss, SkipGramNeg, nearest_neighbours
from .word_lm import WordLM

__all__ = [
    "AttentionDecoder",
    "CharLM",
    "NegativeSamplingLoss",
    "PositionalEncoding",
    "ScriptRNN",
    "SentimentRNN",
    "Seq2Seq",
    "Seq2SeqDecoder",
    "Seq2SeqEncoder",
    "SkipGramNeg",
    "TextClassifier",
    "TransformerCharLM",
    "TransformerClassifier",
    "TransformerLM",
    "WordLM",
    "nearest_neighbours",
]
