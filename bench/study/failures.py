"""A failed cell, in the words every runner uses: its record fields and its console line.

The bench (bench.throughput.measure), the quality matrix and the reproduction all record a cell that
raised with the same fields — ``error`` (type and message), ``error_kind`` (``oom``,
``non_finite_loss`` or ``error``) and ``traceback`` — and print one line for it: the
message's first line and, where the message carries one, its ``Fix:`` lines.
"""

from __future__ import annotations

import errno
import sys
import traceback
from typing import Any

ERROR_LIMIT = 4000
REASON_LIMIT = 200
# What allocators say when they fail: c10's DefaultCPUAllocator ("can't allocate memory"),
# CUDA's caching allocator ("CUDA out of memory"), and ENOMEM's strerror.
_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")


class NonFiniteLoss(RuntimeError):
    """A cell's fixed training steps gave an inf/NaN loss."""


def _oom_types() -> tuple[type[BaseException], ...]:
    torch = sys.modules.get("torch")  # never import torch just to classify an error
    found = [MemoryError]
    for owner in (torch, getattr(torch, "cuda", None)):
        t = getattr(owner, "OutOfMemoryError", None)
        if isinstance(t, type):
            found.append(t)
    return tuple(found)


def is_oom(e: BaseException) -> bool:
    """An allocation failure: MemoryError, torch's (CUDA) OutOfMemoryError, ENOMEM, or a
    RuntimeError from an allocator that ran out."""
    if isinstance(e, _oom_types()):
        return True
    if isinstance(e, OSError) and e.errno == errno.ENOMEM:
        return True
    return isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _OOM_TEXT)


def error_kind(e: BaseException) -> str:
    if isinstance(e, NonFiniteLoss | FloatingPointError):  # rnnsuite's NonFiniteLoss too
        return "non_finite_loss"
    return "oom" if is_oom(e) else "error"


def failure_fields(e: BaseException) -> dict[str, Any]:
    """The record fields of a cell that raised ``e``."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return {
        "status": "failed",
        "error": f"{type(e).__name__}: {e}"[:ERROR_LIMIT],
        "error_kind": error_kind(e),
        "traceback": tb[-ERROR_LIMIT:],
    }


def console_reason(error: str) -> str:
    """One line for a failed cell: the error's first line, then its fix where it has one
    (the lines from one starting ``Fix:``), never cut."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    first = lines[0]
    if len(first) > REASON_LIMIT:
        first = first[: REASON_LIMIT - 1] + "…"
    fix = next((i for i, ln in enumerate(lines) if i and ln.lower().startswith("fix:")), None)
    return first if fix is None else f"{first} {' '.join(lines[fix:])}"
