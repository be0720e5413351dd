"""The regression gate: a run of the gate matrix against ``results/baseline/``.

Two kinds of checks, against the committed baseline (``results.jsonl`` of a
gate run, and ``gate.json`` with the calibration):

Deterministic — per cell, must hold exactly or within a stated tolerance:
  * the cell exists and is ``ok`` wherever the baseline's is;
  * FLOPs (forward and training) — exactly equal;
  * bytes saved for backward — exactly equal;
  * losses after the fixed training steps — |a - b| <= 1e-5·|b| + 1e-7 (on the
    baseline's own machine they are bit-identical; the tolerance absorbs BLAS
    kernels that differ across CPUs), and repeating the steps gives identical
    losses.

Timing — never absolute times, only in-run ratios (variants timed interleaved
in the same process): for each (reference, implementation, architecture), the
geometric mean over the gate's cells and both modes of the median per-repeat
ratio, e.g. scratch/built-in for lstm. Its threshold comes from calibration:
``gate --calibrate N`` runs the gate matrix N times and sets, per statistic,
threshold = clamp(4·σ, 5%, 18%) on the log scale, σ being the run-to-run
standard deviation of the statistic's log. A statistic that falls more than
its threshold below the baseline (the calibration runs' median) fails the
gate; one that rises as much is a warning (refresh the baseline). A 25%
slowdown of one implementation moves its ratios by log(1/1.25) = -22%, past
the 18% cap, so it is caught even at the largest threshold allowed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..study.results import (
    MANIFEST_FILE,
    RESULTS_FILE,
    ResultStore,
    atomic_write_bytes,
    atomic_write_text,
    mkdir,
    resolve_run,
)
from . import baseline as baseline_mod
from .baseline import GATE_FILE

LOSS_RTOL = 1e-5
LOSS_ATOL = 1e-7
K_SIGMA = 4.0
THRESHOLD_FLOOR = 0.10
THRESHOLD_CAP = 0.18
# (reference, implementations gated against it). The built-in's own packed/padded
# ratio is torch's business, not this project's, and is not gated.
GATED_RATIOS = (
    ("vs_builtin", ("scratch", "compiled")),
    ("vs_scratch", ("compiled",)),
    ("vs_padded", ("scratch", "compiled")),
)


@dataclass
class Check:
    kind: str  # "deterministic" | "timing"
    key: str
    status: str  # "pass" | "fail" | "warn"
    detail: str


@dataclass
class GateResult:
    checks: list[Check]

    @property
    def passed(self) -> bool:
        """No failed check, and at least one cell compared: a gate on nothing never passes."""
        compared = any(c.kind == "deterministic" for c in self.checks)
        return compared and not any(c.status == "fail" for c in self.checks)

    def summary(self) -> str:
        n = {s: sum(c.status == s for c in self.checks) for s in ("pass", "fail", "warn")}
        lines = []
        for status in ("fail", "warn"):
            for c in self.checks:
                if c.status == status:
                    lines.append(f"{status.upper():4s} [{c.kind}] {c.key}: {c.detail}")
        timing = [c for c in self.checks if c.kind == "timing" and c.status == "pass"]
        for c in timing:
            lines.append(f"pass [timing] {c.key}: {c.detail}")
        det_pass = sum(c.kind == "deterministic" and c.status == "pass" for c in self.checks)
        lines.append(
            f"gate {'PASSED' if self.passed else 'FAILED'}: {n['pass']} checks pass "
            f"({det_pass} deterministic), {n['fail']} fail, {n['warn']} warn"
        )
        return "\n".join(lines)


# -- deterministic ---------------------------------------------------------------------------
def _losses_close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isfinite(x) and abs(x - y) <= LOSS_RTOL * abs(y) + LOSS_ATOL
        for x, y in zip(a, b, strict=True)
    )


def deterministic_checks(
    baseline: list[dict[str, Any]], current: list[dict[str, Any]]
) -> list[Check]:
    cur = {r["cell_id"]: r for r in current}
    checks: list[Check] = []
    for b in baseline:
        cid = b["cell_id"]
        if b.get("status") != "ok":
            continue
        c = cur.get(cid)
        if c is None:
            checks.append(Check("deterministic", cid, "fail", "cell missing from this run"))
            continue
        if c.get("status") != "ok":
            checks.append(
                Check(
                    "deterministic",
                    cid,
                    "fail",
                    f"status {c.get('status')} (baseline ok): {c.get('error') or c.get('reason')}",
                )
            )
            continue
        problems = []
        for mode in ("fwd", "train"):
            fb, fc = b.get("flops", {}).get(mode), c.get("flops", {}).get(mode)
            if fb != fc:
                problems.append(f"{mode} FLOPs {fc} != baseline {fb}")
        sb = b.get("memory", {}).get("saved_bytes")
        sc = c.get("memory", {}).get("saved_bytes")
        if sb != sc:
            problems.append(f"saved bytes {sc} != baseline {sb}")
        lb = b.get("determinism", {}).get("losses")
        lc = c.get("determinism", {}).get("losses")
        exact = lb == lc
        if lb is not None and (lc is None or not _losses_close(lc, lb)):
            problems.append(f"losses {lc} vs baseline {lb} (rtol {LOSS_RTOL:g})")
        if b.get("determinism", {}).get("repeat_identical") and not c.get("determinism", {}).get(
            "repeat_identical"
        ):
            problems.append("repeating the fixed steps no longer gives identical losses")
        if problems:
            checks.append(Check("deterministic", cid, "fail", "; ".join(problems)))
        else:
            checks.append(
                Check(
                    "deterministic",
                    cid,
                    "pass",
                    "FLOPs, saved bytes equal; losses " + ("identical" if exact else "within tol"),
                )
            )
    return checks


# -- timing ratios --------------------------------------------------------------------------
def ratio_stats(records: list[dict[str, Any]]) -> dict[str, float]:
    """Geometric means of median in-run ratios over ok cells and both modes.

    Keys ``ref/impl/arch`` (one architecture) and ``ref/impl/all`` (pooled over
    the architectures: less noisy, and what a slowdown of a whole implementation moves).
    """
    logs: dict[str, list[float]] = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        impl, arch = r["cell"]["impl"], r["cell"]["arch"]
        for ref, impls in GATED_RATIOS:
            if impl not in impls:
                continue
            for mode in ("fwd", "train"):
                v = (r.get("ratios", {}).get(mode) or {}).get(ref)
                if v and v.get("median") and v["median"] > 0:
                    for key in (f"{ref}/{impl}/{arch}", f"{ref}/{impl}/all"):
                        logs.setdefault(key, []).append(math.log(v["median"]))
    # a pooled key over a single architecture adds nothing
    archs: dict[str, set[str]] = {}
    for key in logs:
        ref_impl, arch = key.rsplit("/", 1)
        if arch != "all":
            archs.setdefault(ref_impl, set()).add(arch)
    for ref_impl, names in archs.items():
        if len(names) < 2:
            logs.pop(f"{ref_impl}/all", None)
    return {k: math.exp(sum(v) / len(v)) for k, v in sorted(logs.items())}


def calibrate(stats_per_run: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Baseline value, noise and threshold of each statistic from repeated runs.

    A statistic whose K_SIGMA·σ exceeds THRESHOLD_CAP is too noisy to gate on this
    machine: it is still reported, but beyond its (capped) threshold it only warns.
    """
    keys = sorted(set().union(*stats_per_run)) if stats_per_run else []
    out: dict[str, dict[str, Any]] = {}
    for k in keys:
        vals = [s[k] for s in stats_per_run if k in s]
        logs = np.log(vals)
        sigma = float(np.std(logs, ddof=1)) if len(vals) > 1 else float("nan")
        raw = K_SIGMA * sigma if math.isfinite(sigma) else float("inf")
        out[k] = {
            "baseline": float(np.exp(np.median(logs))),
            "sigma_log": sigma,
            "threshold_log": float(min(THRESHOLD_CAP, max(THRESHOLD_FLOOR, raw))),
            "capped": bool(raw > THRESHOLD_CAP),
            "gating": "warn" if raw > THRESHOLD_CAP else "fail",
            "samples": [float(v) for v in vals],
        }
    return out


def rethreshold(cfg: dict[str, Any]) -> dict[str, Any]:
    """The baseline's calibration recomputed from its stored samples under the current
    policy (thresholds, gated ratios) — for a policy change without new runs."""
    samples = cfg.get("timing", {})
    n = max((len(v.get("samples", [])) for v in samples.values()), default=0)
    runs = [
        {k: v["samples"][i] for k, v in samples.items() if i < len(v.get("samples", []))}
        for i in range(n)
    ]
    gated = {f"{ref}/{impl}/" for ref, impls in GATED_RATIOS for impl in impls}
    runs = [{k: v for k, v in r.items() if any(k.startswith(g) for g in gated)} for r in runs]
    return {**cfg, "policy": _policy(), "timing": calibrate(runs)}


def _policy() -> dict[str, Any]:
    return {
        "loss_rtol": LOSS_RTOL,
        "loss_atol": LOSS_ATOL,
        "flops": "exact",
        "saved_bytes": "exact",
        "timing": "in-run ratios only; fail if log(stat/baseline) < -threshold",
        "gated_ratios": {ref: list(impls) for ref, impls in GATED_RATIOS},
        "k_sigma": K_SIGMA,
        "threshold_floor_log": THRESHOLD_FLOOR,
        "threshold_cap_log": THRESHOLD_CAP,
    }


def timing_checks(calibration: dict[str, dict[str, Any]], stats: dict[str, float]) -> list[Check]:
    checks = []
    for key, cal in calibration.items():
        gating = cal.get("gating", "fail")
        if key not in stats:
            checks.append(Check("timing", key, gating, "ratio missing from this run"))
            continue
        d = math.log(stats[key] / cal["baseline"])
        thr = cal["threshold_log"]
        text = (
            f"{stats[key]:.3f} vs baseline {cal['baseline']:.3f} ({math.exp(d) - 1:+.1%}; "
            f"allowed -{1 - math.exp(-thr):.1%}, σ={cal['sigma_log']:.3f}"
            + (", too noisy to gate: warns only" if gating == "warn" else "")
            + ")"
        )
        if d < -thr:
            checks.append(Check("timing", key, gating, "slower: " + text))
        elif d > thr:
            checks.append(Check("timing", key, "warn", "faster, refresh the baseline: " + text))
        else:
            checks.append(Check("timing", key, "pass", text))
    return checks


def evaluate(
    baseline: list[dict[str, Any]],
    calibration: dict[str, dict[str, Any]] | None,
    current: list[dict[str, Any]],
    *,
    deterministic_only: bool = False,
) -> GateResult:
    checks = deterministic_checks(baseline, current)
    if not checks:
        checks.append(Check("deterministic", "baseline", "fail", "the baseline has no ok cell"))
    if deterministic_only:
        return GateResult(checks)
    if calibration:
        checks += timing_checks(calibration, ratio_stats(current))
    else:
        checks.append(
            Check("timing", "calibration", "fail", "no timing thresholds (gate.json) to check")
        )
    return GateResult(checks)


# -- baseline on disk -----------------------------------------------------------------------
def load_baseline(
    directory: Path, *, need_timing: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records and gate.json of the verified baseline ({} without gate.json when
    ``need_timing`` is false); BaselineError (exit 2) names any damaged part."""
    records, cfg = baseline_mod.load(directory, need_timing=need_timing)
    return records, cfg or {}


def write_baseline(
    directory: Path,
    source_runs: list[ResultStore],
    stats_per_run: list[dict[str, float]],
    matrix: str,
) -> Path:
    mkdir(directory)
    first = source_runs[0]
    with ResultStore(directory).writer():
        atomic_write_bytes(directory / RESULTS_FILE, first.results_path.read_bytes())
        if first.manifest_path.is_file():
            atomic_write_bytes(directory / MANIFEST_FILE, first.manifest_path.read_bytes())
        cfg = {
            "matrix": matrix,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "calibration_runs": [s.run_id for s in source_runs],
            "policy": _policy(),
            "timing": calibrate(stats_per_run),
        }
        path = directory / GATE_FILE
        atomic_write_text(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        baseline_mod.write_inventory(directory)  # last: the baseline is whole from here on
    return path


def _print_calibration(cfg: dict[str, Any]) -> None:
    for k, v in cfg["timing"].items():
        print(
            f"  {k}: {v['baseline']:.3f}, σ_log {v['sigma_log']:.3f}, threshold "
            f"-{1 - math.exp(-v['threshold_log']):.1%}"
            + ("  (too noisy: warns only)" if v["gating"] == "warn" else "")
        )


def _calibrate_main(
    baseline: Path, matrix: str | None, n: int, results_dir: Path, quiet: bool, stamp: str
) -> int:
    from ..throughput.runner import UsageError, run

    if n < 2:
        raise UsageError("--calibrate needs at least 2 runs to measure noise")
    name = matrix or "gate"
    stores, stats = [], []
    for i in range(n):
        s = run(name, run_id=f"gate-cal-{stamp}-{i}", results_dir=results_dir, quiet=quiet)
        if s.interrupted:
            return s.exit_code
        if s.failed:
            print(f"calibration run {s.run_id} has failed cells: {s.failed_ids}")
            return 1
        store = ResultStore(s.directory)
        stores.append(store)
        stats.append(ratio_stats(store.latest()))
    # The deterministic quantities must agree across the calibration runs themselves.
    ref = stores[0].latest()
    for store in stores[1:]:
        bad = [c for c in deterministic_checks(ref, store.latest()) if c.status == "fail"]
        if bad:
            print("calibration runs disagree on deterministic quantities:")
            for c in bad:
                print(f"  {c.key}: {c.detail}")
            return 1
    path = write_baseline(baseline, stores, stats, name)
    print(f"baseline written to {baseline}/ from {n} runs:")
    _print_calibration(json.loads(path.read_text()))
    return 0


def _maintain(baseline: Path, *, rethreshold_only: bool) -> int:
    """--rethreshold or --write-inventory: rewrite part of the baseline, holding its lock."""
    with ResultStore(baseline).writer():
        if not rethreshold_only:
            path = baseline_mod.add_inventory(baseline)
            cells = json.loads(path.read_text())["cells"]
            print(f"{path}: the baseline's {cells} cells and the SHA-256 of its results")
            return 0
        _, cfg = load_baseline(baseline)
        cfg = rethreshold(cfg)
        atomic_write_text(baseline / GATE_FILE, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    print(f"thresholds of {baseline}/ recomputed from the stored calibration samples:")
    _print_calibration(cfg)
    return 0


def gate_main(
    *,
    baseline: Path,
    matrix: str | None,
    against: str | None,
    run_id: str | None,
    results_dir: Path,
    deterministic_only: bool,
    calibrate: int | None,
    quiet: bool,
    rethreshold_only: bool = False,
    write_inventory: bool = False,
) -> int:
    from ..throughput.runner import run

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if calibrate is not None:
        return _calibrate_main(baseline, matrix, calibrate, results_dir, quiet, stamp)
    if rethreshold_only or write_inventory:
        return _maintain(baseline, rethreshold_only=rethreshold_only)

    # the whole baseline is checked before minutes are spent running the gate matrix
    base_records, cfg = load_baseline(baseline, need_timing=not deterministic_only)
    if not cfg:
        print(f"{baseline / GATE_FILE} absent: timing not checked (--deterministic-only)")
    if against:
        current = resolve_run(results_dir, against).latest()
    else:
        name = matrix or cfg.get("matrix") or "gate"
        s = run(
            name,
            run_id=run_id or f"gate-{stamp}",
            results_dir=results_dir,
            timing=False if deterministic_only else None,
            quiet=quiet,
        )
        if s.interrupted:
            return s.exit_code
        current = ResultStore(s.directory).latest()
    result = evaluate(
        base_records, cfg.get("timing"), current, deterministic_only=deterministic_only
    )
    print(result.summary())
    return 0 if result.passed else 1
