"""The C allocator's state, fixed before anything is timed.

glibc's malloc adapts as a process runs: a freed block larger than its mmap threshold
raises that threshold (up to 32 MiB), and the heap's top is given back to the system
whenever more than the trim threshold (twice the mmap threshold) lies free there. A cell's
large per-call buffers therefore page-fault on every call or on none, depending on what the
process freed before it — which earlier cells ran, in what order. Measured here at Human
Numbers' shape (T16-B64-I64-H64, 2 layers, one thread): ``nn.LSTM``'s training step
page-faulted ~1,460 times a call in a fresh process and hardly at all late in a bench run,
the scratch LSTM's ~265, so the same pair read 1.56× in one process and 0.99× in another.
A ratio that depends on the cells before it is not a measurement of the cell.

So every process that times cells pins the allocator first (``pin``): no mmap at all
(``M_MMAP_MAX`` 0, the threshold at glibc's largest, 32 MiB, besides) and a trim threshold
of 1 GiB, so steady-state calls reuse their memory whatever came before, for every
implementation alike (nn.LSTM's buffers at the bars' shape are above any mmap threshold
glibc accepts: only turning mmap off keeps them). What was done travels
in each record's provenance (``allocator``) and the report's Environment table.

Left alone where the user chose: any ``MALLOC_*`` variable, ``GLIBC_TUNABLES`` or
``LD_PRELOAD`` set (their settings are recorded as they are), or
``RNNSUITE_BENCH_ALLOCATOR=default`` to measure glibc's adaptive default. Not glibc (macOS,
musl): left alone and recorded so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

ENV = "RNNSUITE_BENCH_ALLOCATOR"  # "pinned" (the default) or "default"
MODES = ("pinned", "default")

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
#: the largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2), and a trim
#: threshold above any heap this suite makes
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024**3  # mallopt takes an int

_USER_PREFIXES = ("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD")

_state: dict[str, Any] | None = None


class AllocatorError(ValueError):
    """A bad RNNSUITE_BENCH_ALLOCATOR value (bad input: the CLI exits 2)."""


def mode() -> str:
    value = os.environ.get(ENV, "").strip() or "pinned"
    if value not in MODES:
        raise AllocatorError(
            f"{ENV}={value!r} is not one of {', '.join(MODES)}: unset it (the bench pins "
            "glibc's malloc thresholds) or set it to 'default' to measure glibc's own"
        )
    return value


def _user_settings() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(_USER_PREFIXES)}


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None
    except OSError:
        return None


def _unpinned(why: str) -> dict[str, Any]:
    """The state where the bench does not pin: the user's settings, or the default."""
    user = _user_settings()
    return {"mode": "user", "settings": user} if user else {"mode": "default", "why": why}


def _pin_now() -> dict[str, Any]:
    chosen = mode()  # a bad value is an error even where the user's settings win
    if _user_settings():
        return _unpinned("")
    if chosen == "default":
        return _unpinned(f"{ENV}=default")
    libc = _libc()
    if libc is None:
        return _unpinned("not glibc: no mallopt")
    ok = [
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        libc.mallopt(M_MMAP_MAX, 0),
    ]
    if not all(ok):
        return _unpinned(f"mallopt refused ({ok})")
    return {
        "mode": "pinned",
        "mmap_threshold": MMAP_THRESHOLD,
        "trim_threshold": TRIM_THRESHOLD,
        "mmap_max": 0,
    }


def pin() -> dict[str, Any]:
    """Pin the allocator for this process (once; later calls return the same state): a
    dict saying what was done, recorded with every result."""
    global _state
    if _state is None:
        _state = _pin_now()
    return _state


def describe() -> dict[str, Any]:
    """This process's allocator state as a record carries it, changing nothing: what
    ``pin`` did, or (where nothing pinned) the user's settings or the C library's default."""
    return _state if _state is not None else _unpinned("not pinned in this process")


def text(state: dict[str, Any] | None) -> str:
    """The state as the report's Environment table shows it."""
    if not state:
        return (
            "not recorded (a run before the bench pinned its allocator: glibc's adaptive default)"
        )
    if state.get("mode") == "pinned":
        return (
            f"glibc malloc pinned by the bench: no mmap (M_MMAP_MAX 0; threshold "
            f"{state['mmap_threshold'] >> 20} MiB), trim threshold {state['trim_threshold'] >> 30} GiB"
        )
    if state.get("mode") == "user":
        settings = ", ".join(f"{k}={v}" for k, v in state.get("settings", {}).items())
        return f"as the user set it: {settings}"
    return f"the C library's adaptive default ({state.get('why', '')})"
