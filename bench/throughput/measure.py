"""Measure one group of cells: plain functions from cells to result records.

A group is the cells that differ only in implementation and input kind (see
cells.Cell.group_key). For each cell: build its workload; make the first calls
(timed apart — for ``compiled`` this is where compilation happens, so compile
time never leaks into steady-state numbers); run the fixed training steps
twice from the same weights and seed to record the losses and whether they
repeat exactly; count saved-for-backward bytes and peak RSS growth (or CUDA
peak). Then all the group's variants — and a plain matrix multiply of the
cell's shapes, for attainable FLOP/s — are timed interleaved, forward-only and
training step, and each record gets medians, spread, tokens/s, FLOP fraction,
and its per-repeat-pair ratios against the built-in, the scratch model and
its own padded twin.

A cell that raises (build error, compile failure, OOM) or whose loss is not
finite is recorded as failed, with the error and its kind (``oom`` for an
allocation failure, ``non_finite_loss``, else ``error``: see bench.study.failures),
and the others go on.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch

from rnnsuite.parity import check_twin

from .. import archs, plugins
from ..study import kexpr
from ..study.failures import NonFiniteLoss, failure_fields
from ..study.provenance import FAULT_ENV, now_iso
from ..study.results import SCHEMA
from . import flops as flops_mod
from . import memory
from .axes import DEFAULT_BLOCK_MS
from .cells import Cell, select
from .impls import compiled_graph_count
from .matrix import FIELDS
from .timing import Timer, Variant, interleave, pair_ratio, summary

MODES = ("fwd", "train")
PARITY_IMPLS = ("scratch", "scratch_torch")


class InjectedFault(RuntimeError):
    pass


def fault_from_env() -> tuple[str, str] | None:
    """RNNSUITE_BENCH_INJECT_FAULT='EXPR' (raise), 'nan:EXPR' (non-finite loss) or
    'exit:EXPR' (the process dies mid-cell, os._exit: for executor tests; each attempt is
    a line in $RNNSUITE_BENCH_FAULT_LOG when set), as (kind, expression); a malformed
    expression raises ValueError naming the variable."""
    text = os.environ.get(FAULT_ENV, "").strip()
    if not text:
        return None
    kind, expr = "raise", text
    for prefix in ("nan", "exit"):
        if text.startswith(prefix + ":"):
            kind, expr = prefix, text[len(prefix) + 1 :]
    try:
        kexpr.parse(expr, FIELDS)
    except kexpr.KExprError as e:
        raise ValueError(
            f"{FAULT_ENV}={text!r}: {e}; expected a -k expression, or 'nan:' and one"
        ) from None
    return kind, expr


def _die(cell: Cell) -> None:
    log = os.environ.get("RNNSUITE_BENCH_FAULT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{cell.id} {os.getpid()}\n")
    os._exit(70)


def _fault_for(cell: Cell) -> str | None:
    fault = fault_from_env()
    return fault[0] if fault and select([cell], fault[1]) else None


def _fail(rec: dict[str, Any], phase: str, e: BaseException) -> None:
    rec.update(failure_fields(e))
    rec["error_phase"] = phase
    if rec["cell"]["device"].startswith("cuda"):
        torch.cuda.empty_cache()


def base_record(cell: Cell, run_id: str, provenance: dict[str, Any]) -> dict[str, Any]:
    return plugins.stamp(
        {
            "schema": SCHEMA,
            "kind": "throughput",
            "run_id": run_id,
            "cell_id": cell.id,
            "group": cell.group_key,
            "status": "ok",
            "cell": cell.config(),
            "settings": dict(cell.settings),
            "provenance": dict(provenance),
            "started_at": now_iso(),
        },
        cell.arch,
    )


def skipped_record(
    cell: Cell, run_id: str, provenance: dict[str, Any], reason: str
) -> dict[str, Any]:
    rec = base_record(cell, run_id, provenance)
    rec.update(status="skipped", reason=reason, finished_at=now_iso(), elapsed_s=0.0)
    return rec


_PARITY: dict[tuple, dict[str, float] | BaseException] = {}


def _parity(cell: Cell) -> dict[str, float] | None:
    """The scratch implementation against its architecture's built-in twin (a plugin's
    too), once a process per (arch, impl, layers, direction, device): rnnsuite.parity's
    max differences; a ParityError fails every such cell. None where there is no twin,
    and for ``compiled`` (the same step function, compiled: tests/ hold it to scratch)."""
    spec = archs.get(cell.arch)
    if spec.builtin is None or spec.scratch is None or cell.impl not in PARITY_IMPLS:
        return None
    key = (cell.arch, cell.impl, cell.layers, cell.bidirectional, cell.device)
    if key not in _PARITY:
        try:
            _PARITY[key] = check_twin(
                cell.arch, cell.impl, num_layers=cell.layers,
                bidirectional=cell.bidirectional, device=cell.device,
            )  # fmt: skip
        except Exception as e:
            _PARITY[key] = e
    got = _PARITY[key]
    if isinstance(got, BaseException):
        raise got
    return dict(got)


def _prepare(cell: Cell, rec: dict[str, Any]):
    """Build, first calls, determinism and memory for one cell; returns the workload."""
    from .workload import Workload

    phase = "build"
    try:
        fault = _fault_for(cell)
        if fault == "raise":
            raise InjectedFault(f"injected fault ({FAULT_ENV})")
        if fault == "exit":
            _die(cell)
        w = Workload(cell)
        phase = "parity"
        parity = _parity(cell)
        if parity is not None:
            rec["parity"] = parity
        phase = "build"
        tokens_computed = (
            w.length_info["tokens_valid"] if cell.input == "packed" else cell.T * cell.B
        )
        f_fwd = flops_mod.cell_forward_flops(cell, tokens_computed)
        rec["workload"] = {**w.length_info, "tokens_computed": tokens_computed}
        rec["flops"] = {"fwd": f_fwd, "train": flops_mod.train_flops(f_fwd)}

        phase = "first_call"
        t0 = time.perf_counter()
        w.forward()
        first_fwd = time.perf_counter() - t0
        t0 = time.perf_counter()
        w.train()
        first_train = time.perf_counter() - t0
        rec["first_call"] = {"fwd_s": first_fwd, "train_s": first_train}

        phase = "determinism"
        steps = int(cell.settings.get("det_steps", 3))
        a = w.losses(steps)
        b = w.losses(steps)
        if fault == "nan":
            a = [float("nan")] * steps
        if not all(math.isfinite(v) for v in a + b):
            injected = f" (injected by {FAULT_ENV})" if fault == "nan" else ""
            raise NonFiniteLoss(f"non-finite loss in {steps} fixed training steps: {a}{injected}")
        rec["determinism"] = {
            "steps": steps,
            "losses": a,
            "losses_hex": [v.hex() for v in a],
            "repeat_identical": a == b,
            "max_repeat_diff": max(abs(x - y) for x, y in zip(a, b, strict=True)),
        }

        phase = "memory"
        mem: dict[str, Any] = {}
        try:
            mem.update(w.saved_bytes())
        except Exception as e:  # a counting problem must not lose the cell's timing
            mem["saved_bytes"] = None
            mem["saved_bytes_error"] = f"{type(e).__name__}: {e}"[:500]
        if cell.device.startswith("cuda"):
            mem.update(memory.cuda_peak(w.train, cell.device))
        else:
            mem.update(memory.rss_growth(w.train))
        rec["memory"] = mem
        if cell.impl == "compiled":
            rec["compile"] = {"graphs": compiled_graph_count(w.net.rnn)}
        return w
    except Exception as e:
        _fail(rec, phase, e)
        return None


def measure_group(
    cells: list[Cell],
    *,
    run_id: str,
    provenance: dict[str, Any],
    timer: Timer,
    harness_overhead_s: float,
) -> list[dict[str, Any]]:
    """Result records for every cell of one group (same order as ``cells``)."""
    t_start = time.perf_counter()
    threads = cells[0].threads
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _measure_group(cells, run_id, provenance, timer, harness_overhead_s, t_start)
    finally:
        torch.set_num_threads(saved_threads)


def _measure_group(cells, run_id, provenance, timer, harness_overhead_s, t_start):
    provenance = {
        **provenance,
        "torch_threads": torch.get_num_threads(),
        # how busy the machine was when the group started (1, 5, 15 min); others share it
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    recs = {c.id: base_record(c, run_id, provenance) for c in cells}
    work = {}
    for c in cells:
        w = _prepare(c, recs[c.id])
        if w is not None:
            work[c.id] = w
    settings = cells[0].settings
    if work and settings.get("timing", True):
        first = cells[0]
        probes = flops_mod.matmul_probes(
            first.arch, T=first.T, B=first.B, I=first.I, H=first.H, device=first.device
        )
        variants = [
            Variant(c.id, c.impl, {"fwd": work[c.id].forward, "train": work[c.id].train})
            for c in cells
            if c.id in work
        ]
        mm = {
            name: Variant(f"matmul_{name}", "matmul", {"fwd": fn})
            for name, (fn, _) in probes.items()
        }
        repeats = int(settings.get("repeats", 7))
        block_s = int(settings.get("block_ms", DEFAULT_BLOCK_MS)) / 1000
        timed = interleave(
            [*variants, *mm.values()],
            modes=MODES,
            warmup=int(settings.get("warmup", 2)),
            repeats=repeats,
            timer=timer,
            budget_s=float(settings.get("budget_s", 0) or 0),
            block_s=block_s,
        )
        rates = {
            name: probes[name][1] / summary(v.times["fwd"])["median_s"] for name, v in mm.items()
        }
        attainable = max(rates.values())
        by_id = {v.name: v for v in variants}
        for c in cells:
            v = by_id.get(c.id)
            if v is None:
                continue
            rec = recs[c.id]
            if v.error is not None:
                _fail(rec, "timing", v.error)
                continue
            tokens = rec["workload"]["tokens_valid"]
            timing: dict[str, Any] = {
                "timer_overhead_s": harness_overhead_s,
                "repeats_planned": repeats,
                "repeats_timed": timed,
                "cut_by_budget": timed < repeats,
                "block_s": block_s,
            }
            w = work[c.id]
            for mode in MODES:
                s = summary(v.times[mode])
                s["tokens_per_s"] = tokens / s["median_s"]
                s["times_s"] = v.times[mode]
                s["calls_per_sample"] = v.calls_per_sample[mode]
                # the timer itself plus the callable's own non-model work, timed alone
                own = [timer(lambda w=w, mode=mode: w.harness_only(mode)) for _ in range(50)]
                s["harness_overhead_s"] = float(sorted(own)[len(own) // 2])
                s["harness_overhead_frac"] = s["harness_overhead_s"] / s["median_s"]
                timing[mode] = s
            rec["timing"] = timing
            rec["flops"]["attainable_flops_per_s"] = attainable
            for name, rate in rates.items():
                rec["flops"][f"matmul_{name}_flops_per_s"] = rate
            for mode in MODES:
                achieved = rec["flops"][mode] / timing[mode]["median_s"]
                rec["flops"][f"{mode}_flops_per_s"] = achieved
                rec["flops"][f"{mode}_fraction"] = achieved / attainable
            if c.impl == "compiled":
                steady = timing["fwd"]["median_s"] + timing["train"]["median_s"]
                first_calls = rec["first_call"]["fwd_s"] + rec["first_call"]["train_s"]
                rec["compile"]["compile_s"] = max(0.0, first_calls - steady)
            rec["ratios"] = _ratios(c, cells, by_id)
    elapsed = time.perf_counter() - t_start
    for rec in recs.values():
        rec["finished_at"] = now_iso()
        rec["group_elapsed_s"] = elapsed
    return [recs[c.id] for c in cells]


def _ratios(cell: Cell, cells: list[Cell], by_id: dict[str, Variant]) -> dict[str, Any]:
    """Per-repeat-pair throughput ratios of ``cell`` against its references in the group:
    each of its own architecture, and for a variant (lstm_peephole) ``vs_base``, the base
    architecture's cell of the same implementation and input."""

    def find(impl: str, inp: str, arch: str = cell.arch) -> Variant | None:
        for c in cells:
            if c.arch == arch and c.impl == impl and c.input == inp and c.id != cell.id:
                v = by_id.get(c.id)
                if v is not None and v.error is None:
                    return v
        return None

    me = by_id[cell.id]
    refs = {
        "vs_builtin": find("builtin", cell.input),
        "vs_scratch": find("scratch", cell.input),
        "vs_padded": find(cell.impl, "padded") if cell.input == "packed" else None,
        "vs_base": find(cell.impl, cell.input, cell.base_arch)
        if cell.base_arch != cell.arch
        else None,
    }
    out: dict[str, Any] = {}
    for mode in MODES:
        out[mode] = {
            name: pair_ratio(ref.times[mode], me.times[mode])
            for name, ref in refs.items()
            if ref is not None
        }
    return out
