"""A small synthetic throughput run (records as bench/runner.py writes them) that reaches
every section and finding of the bench report: bar-shape and documents'-shape cells,
packed and padded, scratch_torch, compiled, a scratch-only variant, the transformer
baseline, failed and skipped cells. Numbers are drawn from a seeded generator."""

from __future__ import annotations

import random
from typing import Any

BAR = (64, 64, 256, 256)
DOC = (50, 16, 64, 32)  # doc_agnews, one layer


def _prov(threads: int, rng: random.Random, injected: dict | None = None) -> dict[str, Any]:
    return {
        "cpu_count": 2,
        "cpu_model": "Synthetic CPU",
        "cuda_version": None,
        "device": "cpu",
        "device_name": "Synthetic CPU",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": False,
        "injected_slowdown": injected or {},
        "injections": {"RNNSUITE_BENCH_INJECT_FAULT": "x"} if injected else {},
        "load_avg": [round(rng.uniform(0.5, 1.5), 3), 0.7, 0.8],
        "native_kernels": {
            "active": True,
            "cflags": ["-O3"],
            "error": None,
            "mode": "auto",
            "source": "rnnsuite_sequence_0",
        },
        "platform": "Linux-synthetic",
        "python": "3.11.7",
        "run_started_at": "2026-01-01T00:00:00+00:00",
        "runtime_env": {},
        "torch_threads": threads,
        "torch_version": "2.13.0+cpu",
    }


def _ratio(rng: random.Random, lo: float, hi: float) -> dict[str, float]:
    m = rng.uniform(lo, hi)
    return {"median": m, "q1": m * 0.97, "q3": m * 1.04, "n": 5}


def _record(arch, impl, inp, size, *, layers=1, threads=1, rng, **extra) -> dict[str, Any]:
    T, B, I, H = size
    cell = {
        "arch": arch, "impl": impl, "device": "cpu", "input": inp, "layers": layers,
        "bidirectional": False, "reg": "none", "size": f"T{T}-B{B}-I{I}-H{H}", "T": T, "B": B,
        "I": I, "H": H, "lengths": "agnews", "optimizer": "none", "seed": 0,
        "threads": threads, "block": "synthetic",
    }  # fmt: skip
    kind = "tf" if arch == "transformer" else arch
    group = f"{kind}/cpu/L{layers}/none/T{T}-B{B}-I{I}-H{H}/agnews/none/s0/t{threads}"
    pad = rng.uniform(0.3, 0.6)  # agnews lengths: packed and padded cells alike
    ratios: dict[str, dict[str, Any]] = {"fwd": {}, "train": {}}
    if impl != "builtin" and arch != "transformer":
        for mode in ratios:
            ratios[mode]["vs_builtin"] = _ratio(rng, 0.7, 2.2)
    if impl == "compiled":
        for mode in ratios:
            ratios[mode]["vs_scratch"] = _ratio(rng, 0.6, 1.2)
    if inp == "packed":
        for mode in ratios:
            ratios[mode]["vs_padded"] = _ratio(rng, 0.4, 2.0)
    tokens = T * B * (1 - pad)
    rec = {
        "schema": 1,
        "cell_id": f"{arch}/{impl}/cpu/{inp}/L{layers}/none/T{T}-B{B}-I{I}-H{H}/agnews/t{threads}",
        "group": group,
        "cell": cell,
        "status": "ok",
        "timing": {
            mode: {
                "median_s": rng.uniform(0.01, 0.1),
                "iqr_rel": rng.uniform(0.01, 0.2),
                "tokens_per_s": rng.uniform(2e4, 9e5),
                "harness_overhead_frac": rng.uniform(1e-5, 5e-4),
            }
            for mode in ("fwd", "train")
        },
        "flops": {"fwd_fraction": rng.uniform(0.2, 0.95), "train_fraction": rng.uniform(0.2, 0.95)},
        "ratios": ratios,
        "memory": {
            "saved_bytes": int(rng.uniform(1e6, 4e7)),
            "saved_tensors": rng.randint(4, 40),
            "rss_growth_bytes": int(rng.uniform(1e6, 8e7)),
        },
        "workload": {"padding_fraction": pad, "tokens_valid": int(tokens), "source": "synthetic"},
        "first_call": {"fwd_s": rng.uniform(0.01, 0.2), "train_s": rng.uniform(0.02, 0.4)},
        "determinism": {"repeat_identical": True},
        "provenance": _prov(threads, rng),
    }
    if impl == "compiled":
        rec["compile"] = {"compile_s": rng.uniform(2, 20), "graphs": 2}
    for k, v in extra.items():
        rec[k] = v
    return rec


def records() -> list[dict[str, Any]]:
    rng = random.Random(16)
    out = []
    for arch in ("lstm", "gru", "rnn"):
        impls = ["scratch", "builtin"] + (["scratch_torch"] if arch == "lstm" else [])
        impls += ["compiled"] if arch == "gru" else []
        for threads in (1, 2) if arch == "lstm" else (1,):
            for inp in ("padded", "packed"):
                for impl in impls:
                    out.append(_record(arch, impl, inp, BAR, threads=threads, rng=rng))
    for arch in ("lstm", "gru"):
        for inp in ("padded", "packed"):
            for impl in ("scratch", "builtin"):
                out.append(_record(arch, impl, inp, DOC, rng=rng))
    out.append(_record("lstm_peephole", "scratch", "padded", BAR, rng=rng))
    out.append(_record("transformer", "builtin", "padded", BAR, rng=rng))
    out[1]["determinism"] = {"repeat_identical": False}
    out[2]["timing"]["cut_by_budget"] = True
    out[3]["provenance"] = _prov(1, rng, injected={"scratch": 1.25})
    failed = _record("rnn", "scratch", "padded", (8, 4, 16, 16), rng=rng)
    failed.update(status="failed", error="DefaultCPUAllocator: can't allocate | 1 TB\nmore",
                  error_kind="oom")  # fmt: skip
    nonfinite = _record("gru", "scratch", "padded", (8, 4, 16, 16), rng=rng)
    nonfinite.update(status="failed", error="loss is nan", error_kind="non_finite_loss")
    skipped = {"cell_id": "rnn/compiled/cpu/padded/skip", "cell": failed["cell"],
               "status": "skipped", "reason": "compiled needs a C compiler"}  # fmt: skip
    return [*out, failed, nonfinite, skipped]


MANIFEST = {
    "matrix": {"name": "synthetic", "description": "every section of the report"},
    "cell_ids": [f"id{i}" for i in range(60)],
}
