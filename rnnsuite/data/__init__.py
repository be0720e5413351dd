"""Datasets and text pipelines of the reference documents — offline first, checksummed.

Files are searched in: an explicit ``root`` argument, ``$RNNSUITE_DATA``, the user cache
(``$RNNSUITE_CACHE`` or ``~/.cache/rnnsuite``), and only with ``download=True`` or
``RNNSUITE_DOWNLOAD=1`` the canonical URL. ``python -m rnnsuite.data list`` shows the state.

    ag = load_ag_news()                   # warns + ag.note when only the partial train is here
    enc = ag.numericalize("faithful")     # seed's vocab; cached by content hash
    loader = DataLoader(enc.train, 16, shuffle=True, collate_fn=padify)
"""

from .ag_news import AGNews, EncodedAGNews, load_ag_news, read_ag_news_csv
from .cache import load_or_build
from .classification import EncodedClassificationDataset, TextClassificationDataset
from .collate import (
    BucketBatchSampler,
    ClassificationCollate,
    pad_sequences,
    pad_with_lengths,
    padify,
)
from .fetch import (
    ChecksumMismatch,
    DataError,
    DatasetMissing,
    DownloadError,
    MalformedData,
    PartialDataWarning,
    cache_root,
    download_dataset,
    download_file,
    locate,
    verify_file,
)
from .fra_eng import FraEng, d2l_mt_preprocess, d2l_mt_tokenize, load_fra_eng
from .human_numbers import HumanNumbers, load_human_numbers, number_to_words, write_human_numbers
from .lm_batching import (
    BPTTIterator,
    batchify,
    detach_state,
    fastai_lm_sequences,
    group_chunks,
    next_word_pairs,
    stream_batches,
    windowed_sequences,
)
from .ptb import PTB, load_ptb
from .seinfeld import Seinfeld, load_seinfeld
from .seq2seq import PairCollate, Seq2SeqBatch, build_seq2seq_arrays, seq2seq_loader, sequence_mask
from .sources import DATASETS, DatasetSpec, FileSpec
from .time_machine import TimeMachine, load_time_machine
from .tokenize import basic_english, basic_english_many, d2l_char_tokens, seinfeld_token_lookup
from .vocab import Vocab

__all__ = [
    "DATASETS",
    "PTB",
    "AGNews",
    "BPTTIterator",
    "BucketBatchSampler",
    "ChecksumMismatch",
    "ClassificationCollate",
    "DataError",
    "DatasetMissing",
    "DatasetSpec",
    "DownloadError",
    "EncodedAGNews",
    "EncodedClassificationDataset",
    "FileSpec",
    "FraEng",
    "HumanNumbers",
    "MalformedData",
    "PairCollate",
    "PartialDataWarning",
    "Seinfeld",
    "Seq2SeqBatch",
    "TextClassificationDataset",
    "TimeMachine",
    "Vocab",
    "basic_english",
    "basic_english_many",
    "batchify",
    "build_seq2seq_arrays",
    "cache_root",
    "d2l_char_tokens",
    "d2l_mt_preprocess",
    "d2l_mt_tokenize",
    "detach_state",
    "download_dataset",
    "download_file",
    "fastai_lm_sequences",
    "group_chunks",
    "load_ag_news",
    "load_fra_eng",
    "load_human_numbers",
    "load_or_build",
    "load_ptb",
    "load_seinfeld",
    "load_time_machine",
    "locate",
    "next_word_pairs",
    "number_to_words",
    "pad_sequences",
    "pad_with_lengths",
    "padify",
    "read_ag_news_csv",
    "seinfeld_token_lookup",
    "seq2seq_loader",
    "sequence_mask",
    "stream_batches",
    "verify_file",
    "windowed_sequences",
    "write_human_numbers",
]
