"""One function per kind of task, one module per source document; each runs a recipe's
settings and returns plain data.

A result is {"metrics": {...}, "curves": {...}, "samples": {...}, "notes": [...]}: final
numbers, learning curves as lists of points, generated text, and anything the reader must
know (e.g. that AG News train was partial). `limits` shrink a run for tests and smoke runs:
max_batches (per epoch), epochs, num_train/num_val, test_batches (AG News's test pass).
A result may also carry "timing": cumulative training seconds at each curve point, kept
out of "curves" because a rerun with the same seed repeats everything but the clock.

Every task that trains does so through ``rnnsuite.train.fit.fit``; the model comes from
``models.task_model``, where ``arch = "transformer"`` swaps the RNN for the Transformer
baseline of the same interface, so the quality matrix can run it as one more architecture.

Modules: ai4b (AI-For-Beginners, seed 000: ag_news), fastbook (seed 001: human_numbers,
ptb), element (Element-Research, seed 002: song_acceptor, remember), udacity (seed 003:
word2vec, agnews_w2v, tv_script), d2l (seed 004: time_machine, translation).
"""

from __future__ import annotations

from .ai4b import ag_news
from .common import Result
from .d2l import SEED_SENTENCES, time_machine, translation
from .element import MASTERPIECE, SONGS, remember, song_acceptor
from .fastbook import human_numbers, ptb
from .models import task_model
from .udacity import W2V_KEYS, agnews_w2v, tv_script, word2vec

TASKS = {
    "ag_news": ag_news,
    "human_numbers": human_numbers,
    "time_machine": time_machine,
    "ptb": ptb,
    "translation": translation,
    "song_acceptor": song_acceptor,
    "remember": remember,
    "word2vec": word2vec,
    "agnews_w2v": agnews_w2v,
    "tv_script": tv_script,
}

__all__ = [
    "MASTERPIECE",
    "SEED_SENTENCES",
    "SONGS",
    "TASKS",
    "W2V_KEYS",
    "Result",
    "ag_news",
    "agnews_w2v",
    "human_numbers",
    "ptb",
    "remember",
    "song_acceptor",
    "task_model",
    "time_machine",
    "translation",
    "tv_script",
    "word2vec",
]
