"""The study protocol that throughput (``bench run``), quality and reproduce share:
load a matrix → plan cells → execute → record → report. Here: the matrix-file reader and
the error a bad matrix raises."""

from .source import StudyError, read_toml

__all__ = ["StudyError", "read_toml"]
