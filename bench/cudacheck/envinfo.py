"""``python -m bench.cudacheck.envinfo OUT.json [--require-cuda]``: the device's facts.

The bench's provenance (bench.study.provenance.collect) plus what a GPU result needs beside it:
the GPU's model, memory, compute capability and SM count, the driver (nvidia-smi, else
/proc), cuDNN and its flags, TF32 settings, triton, a C compiler (torch.compile needs one),
and a digest of the sources (a lent machine's copy has no .git: compare with
``scripts/cuda-check --source-digest`` at home). Exit 3 with --require-cuda and no GPU.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("bench", "rnnsuite", "scripts", "tests")
SOURCE_SUFFIXES = {".py", ".toml", ".cpp", ""}
NO_CUDA = 3


def source_digest(root: Path = REPO) -> str:
    """sha256 over the relative paths and bytes of the code (not results or reports)."""
    h = hashlib.sha256()
    files = [root / "pyproject.toml"]
    for d in SOURCE_DIRS:
        files += [p for p in (root / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for p in sorted(f for f in files if f.is_file() and f.suffix in SOURCE_SUFFIXES):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _run(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def driver() -> dict[str, Any]:
    smi = _run(
        "nvidia-smi",
        "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
        "--format=csv,noheader",
    )
    proc = Path("/proc/driver/nvidia/version")
    return {
        "nvidia_smi": smi.splitlines() if smi else None,
        "proc_driver_version": proc.read_text().strip() if proc.is_file() else None,
    }


def _gpu(torch) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    cudnn = torch.backends.cudnn
    return {
        "gpu_name": props.name,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_bytes": int(props.total_memory),
        "compute_capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "cuda_driver_api": getattr(torch._C, "_cuda_getDriverVersion", lambda: None)(),
        "cudnn_enabled": bool(cudnn.enabled),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_deterministic": bool(cudnn.deterministic),
        "cudnn_allow_tf32": bool(cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        **driver(),
    }


def _triton() -> str | None:
    try:
        import triton
    except Exception:  # absent or broken: torch.compile on CUDA then fails, and says so
        return None
    return getattr(triton, "__version__", "unknown")


def collect() -> dict[str, Any]:
    import torch

    from ..study.provenance import collect as provenance

    cuda = torch.cuda.is_available()
    facts: dict[str, Any] = {
        "cuda_available": cuda,
        "provenance": provenance("cuda" if cuda else "cpu", ""),
        "triton_version": _triton(),
        "c_compiler": shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"),
        "source_digest": source_digest(),
        "python_executable": sys.executable,
    }
    if cuda:
        facts.update(_gpu(torch))
    return facts


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: python -m bench.cudacheck.envinfo OUT.json [--require-cuda]", file=sys.stderr)
        return 2
    facts = collect()
    Path(argv[0]).write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    name = facts.get("gpu_name") or "no CUDA device"
    print(f"env: {name}; torch {facts['provenance']['torch_version']}")
    if "--require-cuda" in argv and not facts["cuda_available"]:
        print("env: no CUDA device on this machine", file=sys.stderr)
        return NO_CUDA
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
