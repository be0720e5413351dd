"""The study protocol that throughput (``bench run``), quality and reproduce share:
load a matrix → plan cells → execute → record → report. Here: the matrix-file reader and
the error a bad matrix raises (source.py), the selection language of ``-k`` (kexpr.py),
the one execute → record loop (execute.py), the results store and its record schema
(results.py, schema.py), provenance, failure fields and interrupt handling."""

from .source import StudyError, read_toml

__all__ = ["StudyError", "read_toml"]
