"""The Environment table of the throughput report: provenance of every cell that ran,
each value once."""

from __future__ import annotations

from typing import Any

from ..throughput import allocator

#: (label, provenance key), in the table's order
KEYS = (
    ("device", "device"),
    ("device name", "device_name"),
    ("CPU model", "cpu_model"),
    ("CPU count", "cpu_count"),
    ("torch threads", "torch_threads"),
    ("torch", "torch_version"),
    ("CUDA", "cuda_version"),
    ("Python", "python"),
    ("platform", "platform"),
    ("git commit", "git_commit"),
    ("git dirty", "git_dirty"),
    ("run started", "run_started_at"),
    ("load average (1 min) at group start", "load_avg"),
    ("injected slowdown", "injected_slowdown"),
    ("injection variables set (testing only)", "injections"),
    ("allocator", "allocator"),
    ("allocator / threading environment", "runtime_env"),
    ("native kernels (scratch)", "native_kernels"),
)


#: what the native extension did, by its build's name (the record's ``source``): runs before
#: the whole-sequence loops (f4336ae) built the per-step LSTM pointwise kernels
_NATIVE_SCOPE = (
    ("rnnsuite_pointwise", "per-step pointwise kernels: the scratch LSTM's gate arithmetic"),
    ("rnnsuite_sequence", "whole-sequence loops: every scratch cell's time loop"),
)


def _native_text(status: dict[str, Any]) -> str:
    if status.get("active"):
        source = str(status.get("source", ""))
        scope = next((t for p, t in _NATIVE_SCOPE if source.startswith(p)), f"build {source}")
        return (
            f"in use (RNNSUITE_NATIVE={status.get('mode')}, "
            f"{' '.join(status.get('cflags', []))}): {scope}"
        )
    why = f": {status['error']}" if status.get("error") else ""
    return f"not in use (RNNSUITE_NATIVE={status.get('mode')}{why}): torch ops alone"


def _injections_text(env: dict[str, str]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in env.items()) if env else "none"


def _load_text(provs: list[dict[str, Any]]) -> str | None:
    loads = [p["load_avg"][0] for p in provs if p.get("load_avg")]
    if not loads:
        return None
    return (
        f"min {min(loads):.2f}, median {sorted(loads)[len(loads) // 2]:.2f}, "
        f"max {max(loads):.2f} (on {provs[0].get('cpu_count')} CPUs)"
    )


def _distinct(provs: list[dict[str, Any]], k: str) -> list[str]:
    """Each value of one provenance key once, in the order the cells have them."""
    if k == "injections":
        return list(dict.fromkeys(_injections_text(p[k]) for p in provs if k in p))
    if k == "allocator":  # records from before the bench pinned it have none
        return list(dict.fromkeys(allocator.text(p[k]) for p in provs if k in p))
    if k == "native_kernels":
        return list(dict.fromkeys(_native_text(p[k]) for p in provs if p.get(k)))
    return list(dict.fromkeys(str(p.get(k)) for p in provs if k in p))


def _environment(records: list[dict[str, Any]]) -> list[list[str]]:
    """The (label, value) rows of the Environment table."""
    rows = []
    provs = [r.get("provenance", {}) for r in records if r.get("status") != "skipped"]
    for label, k in KEYS:
        if k == "load_avg":
            text = _load_text(provs)
            if text:
                rows.append([label, text])
            continue
        vals = _distinct(provs, k)
        if vals:
            rows.append([label, "; ".join(vals)])
    return rows
