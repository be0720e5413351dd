"""Native kernels for the scratch cells: each layer-direction's whole time loop in one call.

Why: a scratch cell's step in torch ops is one matrix multiply and then 8 to 20 small
elementwise calls, each ~2.5 µs of dispatch plus the interpreter's loop, which at the
documents' shapes (B = 16..128, H = 32..256) costs more than the arithmetic, while
``nn.LSTM``'s own loop is C++. ``sequence.cpp`` runs the LSTM's, GRU's and Elman RNN's
manual step over every time step, forward and the hand-written backward, padded and packed,
each step one microkernel GEMM and one fused, vectorised pass over the gates
(``sequence.py`` calls it; ``rnnsuite.bptt`` and the layers decide when). Same maths, to
rounding: the parity tests compare it with the torch-ops steps and with the built-ins.

The extension is compiled on first use with torch's C++ extension builder (a C++ compiler
and ninja; cached under ``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``).
``RNNSUITE_NATIVE`` chooses:

* ``auto`` (default) — use the kernels when they build; if not, warn once and keep the torch
  ops;
* ``0`` — never (the pure-PyTorch scratch cells);
* ``1`` — required: a build failure is an error that says what is missing.

``status()`` says which path is in use; the bench records it with every result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

SOURCES = (Path(__file__).with_name("sequence.cpp"),)
#: -ffast-math at compile time only (lets the row loops vectorise; sequence.cpp has its own
#: exp); it is not on the link line, so the library does not switch the process to
#: flush-to-zero
BASE_CFLAGS = ("-O3", "-ffast-math", "-fopenmp")
#: instruction sets by torch's own reading of the CPU (never -march=native: a build cached in
#: a home directory shared by different machines must not use what one of them lacks)
ISA_CFLAGS = {
    "AVX512": ("-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw"),
    "AVX2": ("-mavx2", "-mfma"),
}
LDFLAGS = ("-fopenmp",)  # libgomp.so.1 resolves to the copy torch has already loaded
MODES = ("auto", "0", "1")

_lock = threading.Lock()
_module: ModuleType | None = None
_error: str | None = None
_tried = False
_enabled = True  # switched off by torch_ops()


def mode() -> str:
    value = os.environ.get("RNNSUITE_NATIVE", "auto").strip().lower() or "auto"
    value = {"on": "1", "off": "0", "true": "1", "false": "0"}.get(value, value)
    if value not in MODES:
        raise ValueError(
            f"RNNSUITE_NATIVE={os.environ['RNNSUITE_NATIVE']!r} is not one of auto, 0, 1; "
            "unset it (auto) or set RNNSUITE_NATIVE=0 for the pure-PyTorch cells"
        )
    return value


def cflags() -> tuple[str, ...]:
    """The compile flags: the base set plus the instruction sets torch found on this CPU."""
    return BASE_CFLAGS + ISA_CFLAGS.get(torch.backends.cpu.get_cpu_capability(), ())


def _name() -> str:
    """The extension's name, from its source and flags: a change builds a new one."""
    key = (
        b"".join(p.read_bytes() for p in SOURCES)
        + " ".join(cflags()).encode()
        + torch.__version__.encode()
    )
    return f"rnnsuite_sequence_{hashlib.sha256(key).hexdigest()[:12]}"


def build_directory() -> Path:
    """Where torch builds and caches the extension (under ``TORCH_EXTENSIONS_DIR`` if set)."""
    from torch.utils import cpp_extension

    return Path(cpp_extension._get_build_directory(_name(), False))


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    directory = build_directory()
    with _one_builder(directory):
        return cpp_extension.load(
            name=_name(),
            sources=[str(p) for p in SOURCES],
            extra_cflags=list(cflags()),
            extra_ldflags=list(LDFLAGS),
            build_directory=str(directory),
            verbose=False,
        )


@contextlib.contextmanager
def _one_builder(directory: Path) -> Iterator[None]:
    """One process at a time builds, and a build stopped midway cannot stall the next.

    torch marks a build with a ``lock`` file and waits, silently and forever, while one is
    there; a build killed midway leaves it behind. So a process holds an OS lock on
    ``rnnsuite.lock`` (released by the kernel however the process ends) while it builds: whoever
    gets it knows that no live build owns torch's ``lock``, and removes a leftover one, saying
    so; whoever does not waits for the live build."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's own lock alone
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "rnnsuite.lock", "a") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            warnings.warn(
                f"rnnsuite: waiting for another process that is building the native kernels "
                f"in {directory}",
                RuntimeWarning,
                stacklevel=3,
            )
            fcntl.flock(held, fcntl.LOCK_EX)
        stale = directory / "lock"
        if stale.exists():
            stale.unlink(missing_ok=True)
            warnings.warn(
                f"rnnsuite: removed {stale}, left by a native-kernel build that was stopped "
                "midway (no process holds it); building again",
                RuntimeWarning,
                stacklevel=3,
            )
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def load() -> ModuleType | None:
    """The compiled extension (built on the first call), or None where it cannot be had:
    RNNSUITE_NATIVE=0, or a failed build under auto (warned once)."""
    global _module, _error, _tried
    m = mode()
    if m == "0":
        return None
    if not _tried:
        with _lock:
            if not _tried:
                try:
                    _module = _build()
                except Exception as exc:  # a missing compiler or ninja, a build error
                    last = (str(exc).strip().splitlines() or [""])[-1]
                    _error = f"{type(exc).__name__}: {last}"
                _tried = True
                if _module is None and m == "auto":
                    warnings.warn(
                        "rnnsuite: the native kernels did not build "
                        f"({_error}); the scratch cells keep their torch ops, which are slower. "
                        "Install a C++ compiler and ninja (pip install ninja), or set "
                        "RNNSUITE_NATIVE=0 to choose the torch ops and silence this.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
    if _module is None and m == "1":
        raise RuntimeError(
            f"RNNSUITE_NATIVE=1 but the native kernels did not build ({_error}); "
            "install a C++ compiler and ninja (pip install ninja), or unset RNNSUITE_NATIVE"
        )
    return _module


def kernels_for(*tensors: torch.Tensor) -> ModuleType | None:
    """The kernels when they apply to these tensors (float32 on the CPU, not while Dynamo
    traces, not switched off), else None: the caller then takes its torch ops."""
    if not _enabled or torch.compiler.is_compiling():
        return None
    if not all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors):
        return None
    return load()


@contextlib.contextmanager
def torch_ops() -> Iterator[None]:
    """Run every scratch cell on its torch ops inside this block, whatever its own
    ``native`` flag (the tests compare the two paths this way; the bench's
    ``scratch_torch`` sets the flag per cell instead, so both can be timed side by side)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def status() -> dict[str, Any]:
    """For provenance: the mode, whether the kernels are in use, and why not."""
    m = mode()
    active = False
    if m != "0":
        try:
            active = load() is not None
        except RuntimeError:
            active = False
    return {"mode": m, "active": active, "error": _error, "source": _name()}
