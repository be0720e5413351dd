"""``scripts/cuda-check OUT_DIR [--dry-run] [--steps LIST] ...``: run the steps, pack.

Exit codes: 0 every step ok; 1 a step failed, ran out of time or was skipped; 2 bad
usage, or no CUDA device without --dry-run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import tempfile
import time
from pathlib import Path

from . import bundle, datapack, proc
from .envinfo import NO_CUDA, REPO, source_digest
from .steps import BUDGET_S, NAMES, RECIPES, Plan, Step, limit_for, steps

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
WORK = REPO / ".cuda-work"  # git-ignored; kept between calls on a warm lent machine
# what --inject-fail runs in place of a step (the tests use it)
FAIL_ARGV = (sys.executable, "-c", "raise SystemExit('injected failure (--inject-fail)')")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/cuda-check",
        description="The CUDA half of the bench in one time-boxed command: CUDA tests, the "
        "cuda matrix, two recipes on CUDA and their reports, packed into OUT_DIR/cuda-check/.",
        epilog="Exit codes: 0 all steps ok, 1 a step failed or timed out, 2 bad usage or no GPU.",
    )
    p.add_argument("out_dir", nargs="?", type=Path, metavar="OUT_DIR")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny")
    p.add_argument("--steps", metavar="LIST", help=f"comma list of {','.join(NAMES)}")
    p.add_argument("--budget-s", type=float, metavar="S", help="seconds for all the steps")
    p.add_argument("--run-id", metavar="ID", help="default: cuda-YYYYMMDD (cuda-dry-… dry)")
    p.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where results and reports are made (default: .cuda-work, which a rerun with the "
        "same run id resumes; a new temp dir for --dry-run)",
    )
    p.add_argument(
        "--pack-data",
        type=Path,
        metavar="DIR",
        help="copy the datasets these steps read into DIR (e.g. .cuda-data) and exit",
    )
    p.add_argument("--source-digest", action="store_true", help="print env.json's digest")
    p.add_argument("--inject-fail", metavar="STEP", help=argparse.SUPPRESS)
    return p


def _usage(message: str) -> int:
    print(f"cuda-check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _selected(text: str | None) -> tuple[str, ...]:
    if not text:
        return NAMES
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in NAMES]
    if bad or not names:
        raise ValueError(f"--steps {text!r}: choose from {', '.join(NAMES)}")
    return names


def step_env(plan: Plan) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plan.root), env.get("PYTHONPATH")) if p)
    env["RNNSUITE_NATIVE"] = "0"  # no cell here needs the CPU kernels: never build them
    env.setdefault("MPLBACKEND", "Agg")
    env["RNNSUITE_CACHE"] = str(plan.work / "cache")
    if plan.dry:  # two torch threads on a small busy CPU can run tiny ops 10x slower
        env.setdefault("OMP_NUM_THREADS", "1")
    root = datapack.data_root(env)
    if root:
        env["RNNSUITE_DATA"] = root
    return env


def _say(text: str) -> None:
    print(f"[cuda-check] {text}", flush=True)


def _tail(path: Path, lines: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_step(step: Step, plan: Plan, env: dict, limit: float, inject: str | None) -> dict:
    argv = list(FAIL_ARGV if step.name == inject else step.argv)
    log = plan.log(step.name)
    log.write_text(f"$ {' '.join(argv)}\n")
    out = proc.run(argv, log=log, env={**env, **step.env}, cwd=plan.root, timeout_s=limit)
    note = "" if out.status == "ok" else _tail(log, 1).replace("|", "/")[:160]
    return {
        "step": step.name,
        "status": out.status,
        "rc": out.rc,
        "seconds": round(out.seconds, 2),
        "limit_s": round(limit, 1),
        "argv": argv,
        "env": step.env,
        "note": note,
    }


def _skip(step: Step, why: str) -> dict:
    return {"step": step.name, "status": "skipped", "rc": None, "seconds": 0.0, "note": why}


def run(plan: Plan, out_dir: Path, todo: list[Step], budget_s: float, inject=None) -> int:
    env = step_env(plan)
    plan.log("x").parent.mkdir(parents=True, exist_ok=True)
    kind = "dry run on the CPU" if plan.dry else "CUDA"
    title = f"cuda-check {plan.run_id} ({kind})"
    _say(f"{title}: {len(todo)} steps, budget {budget_s:.0f}s, work dir {plan.work}")
    _say(f"RNNSUITE_DATA={env.get('RNNSUITE_DATA', '(none)')}")
    t0 = time.monotonic()
    records: list[dict] = []
    problems: list[str] = []
    no_cuda = False
    for i, step in enumerate(todo):
        limit = limit_for(todo, i, budget_s - (time.monotonic() - t0), proc.GRACE_S)
        if no_cuda:
            rec = _skip(step, "no CUDA device")
        elif limit < step.floor_s:
            rec = _skip(step, f"no time left ({limit:.0f}s < its {step.floor_s:.0f}s)")
        else:
            _say(f"{i + 1}/{len(todo)} {step.name}: start (limit {limit:.0f}s)")
            rec = _run_step(step, plan, env, limit, inject)
            no_cuda = step.name == "env" and rec["rc"] == NO_CUDA and not plan.dry
        records.append(rec)
        _say(
            f"{i + 1}/{len(todo)} {step.name}: {rec['status']} in {rec['seconds']:.1f}s "
            f"({time.monotonic() - t0:.0f}s elapsed)"
        )
        if rec["status"] in ("failed", "timeout"):
            print(_tail(plan.log(step.name)), flush=True)
        problems = bundle.write(plan, out_dir, records, title)
    for problem in problems:
        _say(f"PACK PROBLEM: {problem}")
    _say(f"done in {time.monotonic() - t0:.0f}s: {out_dir / bundle.FOLDER}")
    if no_cuda:
        return _usage("no CUDA device on this machine; --dry-run rehearses the steps on the CPU")
    return EXIT_OK if all(r["status"] == "ok" for r in records) and not problems else EXIT_FAIL


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.source_digest:
        print(source_digest())
        return EXIT_OK
    if args.pack_data:
        try:
            copied = datapack.pack(args.pack_data, RECIPES)
        except Exception as e:  # a missing or corrupt source file: one message, exit 2
            return _usage(str(e))
        for path in copied:
            print(f"packed {path}")
        return EXIT_OK
    if args.out_dir is None:
        return _usage("give OUT_DIR (or --pack-data DIR); see --help")
    try:
        only = _selected(args.steps)
    except ValueError as e:
        return _usage(str(e))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d")
    run_id = args.run_id or (f"cuda-dry-{stamp}" if args.dry_run else f"cuda-{stamp}")
    work = args.work_dir or (Path(tempfile.mkdtemp(prefix="cuda-check-")) if args.dry_run else WORK)
    work.mkdir(parents=True, exist_ok=True)
    plan = Plan(REPO, work.resolve(), run_id, args.dry_run)
    if plan.dry:
        from .tiny import write as write_tiny

        write_tiny(Path(plan.matrix))
    budget = args.budget_s or BUDGET_S["dry" if plan.dry else "cuda"]
    return run(plan, args.out_dir, steps(plan, only), budget, args.inject_fail)
