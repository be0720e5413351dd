"""Memory beyond saved bytes: peak RSS growth on CPU, peak allocated memory on CUDA.

Saved-for-backward bytes (the deterministic figure) are counted in
workload.Workload.saved_bytes. Here are the machine's own numbers, which vary
with the allocator: on CPU the growth of the process's peak resident set over
one training step — free heap pages are first handed back to the system
(glibc's malloc_trim; otherwise a step would reuse pages an earlier step left
resident and show no growth at all) and the peak is reset through
/proc/self/clear_refs (Linux), so the figure is this step's own; where that is
not possible the result says ``rss_method: unavailable`` — and on CUDA the peak
of torch.cuda.max_memory_allocated over the step above what was allocated before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable
from pathlib import Path

from rnnsuite import bptt

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def rss_growth(fn: Callable[[], object]) -> dict[str, object]:
    """Peak RSS growth (bytes) while ``fn`` runs, measured with VmHWM reset. The manual
    BPTT's kept buffers are freed first, so the step pays for them as a first call would."""
    bptt.release_workspace()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    try:
        _CLEAR.write_text("5")
    except OSError:
        fn()
        return {"rss_growth_bytes": None, "rss_method": "unavailable"}
    before = _status_kib("VmRSS")
    fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return {"rss_growth_bytes": None, "rss_method": "unavailable"}
    method = "VmHWM-reset" + ("+malloc_trim" if trim is not None else "")
    return {"rss_growth_bytes": max(0, peak - before) * 1024, "rss_method": method}


def cuda_peak(fn: Callable[[], object], device: str) -> dict[str, object]:
    import torch

    bptt.release_workspace()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return {"cuda_peak_bytes": int(torch.cuda.max_memory_allocated(device) - base)}
