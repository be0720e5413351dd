"""The machine's facts, recorded with every result.

Collected once per run (they do not change while it runs) and copied into each
record, so a single line of results.jsonl says where and with what it was
measured: device name, CPU model, core and thread counts, torch/CUDA/cuDNN
versions, Python, platform, git commit and whether the tree was dirty, the
run's start time, any fault or slowdown injected for testing (the
RNNSUITE_BENCH_INJECT_* variables, as set), and the
allocator and threading settings read from the environment (glibc's MALLOC_*
tunables, OMP_*/MKL_*/KMP_*/DNNL_*: each can move a timing by tens of percent —
nn.LSTM's CPU training step, for one, page-faults thousands of times a step under
glibc's default malloc thresholds here), what the bench did to the allocator before timing
(``allocator``: pinned, the user's settings, or the default; bench.throughput.allocator),
and whether the scratch cells ran their native
pointwise kernels (rnnsuite.native) or torch ops alone.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

from ..throughput import allocator
from ..throughput.timing import INJECT_ENV as SLOWDOWN_ENV

REPO = Path(__file__).resolve().parents[2]

_ENV_PREFIXES = (
    "MALLOC_",
    "OMP_",
    "MKL_",
    "KMP_",
    "DNNL_",
    "ONEDNN_",
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
    "RNNSUITE_NATIVE",
)


FAULT_ENV = "RNNSUITE_BENCH_INJECT_FAULT"  # read by bench.throughput.measure
INJECT_ENVS = (FAULT_ENV, SLOWDOWN_ENV)


def injections() -> dict[str, str]:
    """The test-only injection variables that are set: a result measured under one must
    say so (an injected NaN looks exactly like a real one otherwise)."""
    return {k: os.environ[k].strip() for k in INJECT_ENVS if os.environ.get(k, "").strip()}


def runtime_env() -> dict[str, str]:
    """Environment settings that change how fast the same code runs."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def git_state() -> dict[str, object]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return f"Apple MPS ({platform.machine()})"
    return cpu_model()


def collect(device: str, started_at: str, inject: dict[str, float] | None = None) -> dict:
    """Provenance for results measured on ``device`` in a run started at ``started_at``."""
    import numpy
    import torch

    import rnnsuite

    from .. import plugins

    facts = {
        "device": device,
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "numpy_version": numpy.__version__,
        "rnnsuite_version": rnnsuite.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "run_started_at": started_at,
        "injected_slowdown": dict(inject or {}),
        "injections": injections(),
        "runtime_env": runtime_env(),
        "allocator": allocator.describe(),  # what bench.throughput.allocator.pin did
        "native_kernels": {**rnnsuite.native.status(), "cflags": list(rnnsuite.native.cflags())},
        "plugins": plugins.loaded(),  # --plugin / RNNSUITE_PLUGINS: file → architectures
    }
    facts.update(git_state())
    facts["machine_fingerprint"] = machine_fingerprint(facts)
    return facts


def node_facts(device: str = "cpu") -> dict:
    """The facts of the machine this process runs on (a Ray worker's node, say): host, CPU,
    cores, device, torch threads, and their fingerprint."""
    import torch

    facts = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
    }
    facts["machine_fingerprint"] = machine_fingerprint(facts)
    return facts


#: what makes two timing results comparable: the same machine (host, CPU, cores, device)
FINGERPRINT_KEYS = ("hostname", "cpu_model", "cpu_count", "device_name")


def machine_fingerprint(facts: dict) -> str:
    """16 hex digits over FINGERPRINT_KEYS of a provenance: timings with different ones
    come from different machines and are never compared with each other (bench merge)."""
    import hashlib
    import json

    key = json.dumps({k: facts.get(k) for k in FINGERPRINT_KEYS}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]
