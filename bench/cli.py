"""``python -m bench run | report | compare | gate | list`` — the bench's command line.

Exit codes: 0 success; 1 failed cells, a failed gate or a failed write (disk full,
no permission); 2 bad usage or bad input (unknown matrix, invalid matrix file, bad -k,
unknown run id, a damaged baseline, a run another process is writing); 130 on Ctrl-C
(SIGINT), 143 on SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# What `reproduce --limit` may shrink (the keys rnnsuite.recipes.tasks reads from `limits`).
LIMIT_KEYS = ("epochs", "max_batches", "valid_batches", "test_batches", "num_train", "num_val")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 as well; keep the usage
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--matrix",
        default="quick",
        metavar="NAME|PATH",
        help="matrix name in bench/matrices/ (quick, standard, full, gate) or a .toml path "
        "(default: quick)",
    )
    p.add_argument(
        "-k",
        dest="k",
        metavar="EXPR",
        help="select cells, e.g. 'lstm and packed and layers=2' or 'not compiled'",
    )
    p.add_argument(
        "--device",
        metavar="LIST",
        help="replace the matrix's device axis: comma list of auto,cpu,cuda,mps",
    )
    p.add_argument("--seeds", metavar="LIST", help="replace the matrix's seeds: 0,1,2 or 0-4")
    _add_shard(p)


def _add_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where cells run: here one after another (default), or as Ray tasks "
        '(pip install "rnnsuite[ray]"; timing groups get a whole node each)',
    )
    p.add_argument(
        "--ray-address",
        default="local",
        metavar="auto|local|HOST:PORT",
        help="with --executor ray: a cluster to join, or 'local' to start one here",
    )


def _add_shard(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="only shard I of N (from 1): whole timing groups, balanced by the planner's "
        "estimate; put the shard runs together with `bench merge`",
    )


def _with_plugin(add_parser):
    def add(*args, **kwargs) -> argparse.ArgumentParser:
        p = add_parser(*args, **kwargs)
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="import this module or .py file first: it registers your own architectures "
            "(repeatable; also RNNSUITE_PLUGINS=a,b; see examples/custom_cell.py)",
        )
        return p

    return add


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench",
        description="rnnsuite's benchmark: run matrices of cells, report, compare, gate.",
        epilog="Exit codes: 0 success, 1 failed cells, gate failure or failed write, "
        "2 bad usage or input, 130/143 interrupted by SIGINT/SIGTERM.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser = _with_plugin(sub.add_parser)  # every command takes --plugin

    p = sub.add_parser(
        "run",
        help="measure a matrix's cells and append results to results/<run-id>/",
        description="Measure the cells of a matrix. Results are appended cell by cell to "
        "results/<run-id>/results.jsonl; rerunning with the same --run-id resumes.",
    )
    _add_selection(p)
    p.add_argument("--run-id", metavar="ID", help="results/<ID>/ (default: <matrix>-<time>)")
    p.add_argument("--results-dir", default="results", metavar="DIR", help="default: results")
    p.add_argument(
        "--retry-failed", action="store_true", help="measure failed cells again on resume"
    )
    p.add_argument(
        "--no-timing",
        action="store_true",
        help="deterministic quantities only (losses, FLOPs, saved bytes); no timing",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch.set_num_threads(N)")
    p.add_argument("--list", action="store_true", help="print the selected cells and exit")
    p.add_argument("--report", action="store_true", help="write the report when done")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    _add_executor(p)

    p = sub.add_parser(
        "report",
        help="write reports/<run-id>/README.md with tables and plots",
        description="Write a Markdown report (tables and PNG plots) of a run. RUN_ID may be "
        "'latest' or a path to a run directory.",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--out", metavar="DIR", help="default: reports/<run-id>")

    p = sub.add_parser(
        "compare",
        help="print cell-by-cell changes between two runs",
        description="Cell-by-cell changes from run A to run B: throughput, ratios, "
        "deterministic quantities, status.",
    )
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument(
        "--threshold", type=float, default=0.10, help="mark changes above this (default 0.10)"
    )

    p = sub.add_parser(
        "gate",
        help="regression gate: run the gate matrix and compare with results/baseline/",
        description="Run the gate matrix (or take --against RUN) and compare it with the "
        "committed baseline: deterministic quantities must match within stated tolerances; "
        "timing is gated only through in-run ratios, with thresholds calibrated from "
        "measured run-to-run noise. --calibrate N writes a new baseline from N runs.",
    )
    p.add_argument("--baseline", default="results/baseline", metavar="DIR")
    p.add_argument("--matrix", default=None, metavar="NAME|PATH", help="default: the baseline's")
    p.add_argument("--against", metavar="RUN", help="gate an existing run instead of running")
    p.add_argument("--run-id", metavar="ID", help="run id for the gate's own run")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument(
        "--deterministic-only",
        action="store_true",
        help="no timing: check losses, FLOPs and saved bytes only (what CI runs)",
    )
    p.add_argument(
        "--calibrate", type=int, metavar="N", help="run N times and write a new baseline"
    )
    p.add_argument(
        "--rethreshold",
        action="store_true",
        help="recompute the baseline's thresholds from its stored calibration samples",
    )
    p.add_argument(
        "--write-inventory",
        action="store_true",
        help="add inventory.json (cell ids, SHA-256 of results.jsonl) to an intact baseline "
        "written before inventories; --calibrate writes one itself",
    )
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser(
        "reproduce",
        help="re-run the documents' recipes and write reports/reproduction/",
        description="Run the recipes of bench/matrices/reproduce.toml (every training recipe "
        "of the reference documents) for each seed, append results to results/<run-id>/ "
        "(resumable), and write the reproduction report: reference vs ours with computed "
        "verdicts, curves and generated text.",
    )
    p.add_argument("-k", dest="k", metavar="EXPR", help="e.g. 'fastbook', 'recipe=hn_lmmodel7'")
    p.add_argument(
        "--matrix",
        default=None,
        metavar="PATH",
        help="a recipe matrix TOML file or a name in bench/matrices/ (default: reproduce; "
        "reproduce-full holds the long runs, e.g. the TV-script pass mark)",
    )
    p.add_argument("--seeds", metavar="LIST", help="replace the matrix's seeds: 0,1,2 or 0-4")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--run-id", default="reproduction", metavar="ID")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--out", default="reports/reproduction", metavar="DIR")
    p.add_argument("--threads", type=int, metavar="N", help="default: the matrix's (1)")
    p.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    p.add_argument(
        "--beside",
        metavar="RUN_ID",
        help="show this run's run times beside another run's (the same recipes under "
        "another executor, say) in the run-time table",
    )
    _add_shard(p)
    _add_executor(p)
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="KEY=N",
        help="shrink every recipe for a smoke run (repeatable): "
        + ", ".join(f"{k}=N" for k in LIMIT_KEYS),
    )

    p = sub.add_parser(
        "quality",
        help="train the quality matrix's cells and write reports/quality/",
        description="Train every cell of a quality matrix (default bench/matrices/quality.toml: "
        "architecture × implementation × layers × regularization × input on Human Numbers, "
        "Penn Treebank, Time Machine, AG News and English–French) for its fixed budget, append results to "
        "results/<run-id>/ (resumable), and write the quality report: metric and "
        "time-to-target per cell, scratch vs built-in, plots.",
    )
    p.add_argument("-k", dest="k", metavar="EXPR", help="e.g. 'human_numbers and reg=awd'")
    p.add_argument("--matrix", default=None, metavar="PATH", help="a quality matrix TOML file")
    p.add_argument("--seeds", metavar="LIST", help="replace the matrix's seeds: 0,1,2 or 0-4")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--run-id", default="quality", metavar="ID")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--out", default=None, metavar="DIR", help="default: reports/<run-id>")
    p.add_argument("--threads", type=int, metavar="N", help="default: the matrix's (1)")
    p.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    p.add_argument("--list", action="store_true", help="list the selected cells and exit")
    _add_shard(p)
    _add_executor(p)

    p = sub.add_parser(
        "merge",
        help="put shard runs (or runs of one matrix) together into a new run",
        description="Combine runs of one matrix into a new run: refuses a cell recorded "
        "twice and timing results from different machines (unless --side-by-side), and "
        "reports cells missing from every run (exit 1).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--into", required=True, metavar="RUN", help="the new run id")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="keep timing results of different machines in one run, labelled by machine",
    )

    p = sub.add_parser("list", help="list matrices, or the cells of one", description="List.")
    _add_selection(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from .study import StudyError
    from .study.interrupt import Interrupted
    from .study.results import ResultsError, WriteError
    from .throughput.runner import UsageError

    try:
        from .plugins import load_all

        load_all(args.plugin)
        return _dispatch(args)
    except (StudyError, UsageError, ResultsError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as e:  # disk full, no permission: what was written before is kept
        print(f"bench: error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except Interrupted as e:  # quality and reproduce have said what is saved
        return e.exit_code


def _selection(args) -> dict:
    from .throughput.cells import parse_devices, parse_seeds
    from .throughput.runner import UsageError

    try:
        devices = parse_devices(args.device) if args.device else None
        seeds = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    return {"k": args.k, "devices": devices, "seeds": seeds}


def _shard(args):
    from .study import shard

    return shard.parse(args.shard) if getattr(args, "shard", None) else None


def _dispatch(args) -> int:
    if args.command in ("list",) or (args.command == "run" and args.list):
        from .throughput.estimate import cell_seconds
        from .throughput.runner import plan

        m, cells = plan(args.matrix, **_selection(args), shard=_shard(args))
        for c in cells:
            print(c.id)
        est = sum(cell_seconds(c) for c in cells)
        print(f"estimated {est / 60:.0f} min on the 2-core reference machine", file=sys.stderr)
        print(f"{len(cells)} cells in matrix {m.name}", file=sys.stderr)
        return EXIT_OK

    if args.command == "run":
        from .throughput.runner import run

        if args.threads is not None and args.threads < 1:
            from .throughput.runner import UsageError

            raise UsageError("--threads must be at least 1")
        s = run(
            args.matrix,
            **_selection(args),
            run_id=args.run_id,
            results_dir=args.results_dir,
            retry_failed=args.retry_failed,
            timing=False if args.no_timing else None,
            threads=args.threads,
            quiet=args.quiet,
            shard=_shard(args),
            executor=args.executor,
            ray_address=args.ray_address,
        )
        if args.report and not s.interrupted:
            from .report import write_report

            print(f"report: {write_report(s.run_id, results_dir=args.results_dir)}")
        return s.exit_code

    if args.command == "reproduce":
        return _reproduce(args)

    if args.command == "merge":
        return _merge(args)

    if args.command == "quality":
        return _quality(args)

    if args.command == "report":
        from .report import write_report

        out = write_report(args.run_id, results_dir=args.results_dir, out_dir=args.out)
        print(f"report written: {out}")
        return EXIT_OK

    if args.command == "compare":
        from .throughput.compare import compare_runs

        print(compare_runs(args.run_a, args.run_b, args.results_dir, threshold=args.threshold))
        return EXIT_OK

    if args.command == "gate":
        from .gate.gate import gate_main
        from .study.results import check_run_id

        if args.run_id is not None:  # an empty id is an error, not the default
            check_run_id(args.run_id)
        return gate_main(
            baseline=Path(args.baseline),
            matrix=args.matrix,
            against=args.against,
            run_id=args.run_id,
            results_dir=Path(args.results_dir),
            deterministic_only=args.deterministic_only,
            calibrate=args.calibrate,
            quiet=args.quiet,
            rethreshold_only=args.rethreshold,
            write_inventory=args.write_inventory,
        )
    raise AssertionError(args.command)  # pragma: no cover


def parse_limits(items: list[str]) -> dict[str, int]:
    """``["epochs=1", "max_batches=2"]`` → ``{"epochs": 1, "max_batches": 2}``; UsageError
    naming the accepted keys on anything else."""
    from .throughput.runner import UsageError

    out: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in LIMIT_KEYS or not value.isdigit() or int(value) < 1:
            raise UsageError(
                f"--limit {item!r}: expected KEY=N with N >= 1 and KEY one of "
                f"{', '.join(LIMIT_KEYS)}"
            )
        out[key] = int(value)
    return out


def _check_device(device: str) -> None:
    from .throughput.runner import UsageError

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"--device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device on this machine")


def _training(args, seeds: list[int] | None, matrix: Path) -> dict:
    """The options quality and reproduce runs share (bench.study.execute.TrainingRun's)."""
    return {
        "results_dir": Path(args.results_dir),
        "k": args.k,
        "seeds": seeds,
        "device": args.device,
        "matrix_path": matrix,
        "threads": args.threads,
        "shard": _shard(args),
        "executor": args.executor,
        "ray_address": args.ray_address,
    }


def _reproduce(args) -> int:
    from .reproduce import study as reproduce
    from .study.kexpr import KExprError
    from .study.results import check_run_id
    from .throughput.cells import parse_seeds
    from .throughput.runner import UsageError

    check_run_id(args.run_id)
    failed = 0
    if not args.report_only:
        try:
            matrix = reproduce.resolve_matrix(args.matrix)
            m = reproduce.load_matrix(matrix)
            seeds = parse_seeds(args.seeds) if args.seeds else None
        except ValueError as e:
            raise UsageError(str(e)) from None
        try:
            cells = reproduce.plan(list(m["recipes"]), seeds or m["seeds"], args.device, args.k)
        except KExprError as e:
            raise UsageError(f"-k: {e}") from None
        if not cells:
            raise UsageError(f"-k {args.k!r} selects no cell of the recipe matrix {matrix}")
        _check_device(args.device)
        limits = parse_limits(args.limit) or None
        _, failed = reproduce.run(args.run_id, limits=limits, **_training(args, seeds, matrix))
    try:
        out = reproduce.report(
            args.run_id, results_dir=Path(args.results_dir), out_dir=Path(args.out),
            beside=args.beside,
        )  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"reproduction report: {out}")
    return EXIT_FAIL if failed else EXIT_OK


def _quality(args) -> int:
    from .quality import study as quality
    from .study.kexpr import KExprError
    from .throughput.cells import parse_seeds
    from .throughput.runner import UsageError

    matrix = Path(args.matrix) if args.matrix else quality.MATRIX
    try:
        m = quality.load_matrix(matrix)
        seeds = parse_seeds(args.seeds) if args.seeds else None
    except (quality.QualityError, ValueError) as e:
        raise UsageError(str(e)) from None
    try:
        cells = quality.plan(m, args.device, args.k, seeds)
    except KExprError as e:
        raise UsageError(f"-k: {e}") from None
    if args.list:
        for c in cells:
            print(c["cell_id"])
        print(f"{len(cells)} cells in the quality matrix", file=sys.stderr)
        return EXIT_OK
    failed = 0
    if not args.report_only:
        _check_device(args.device)
        if not cells:
            raise UsageError(f"-k {args.k!r} selects no cell of the quality matrix")
        if args.threads is not None and args.threads < 1:
            raise UsageError("--threads must be at least 1")
        _, failed = quality.run(args.run_id, **_training(args, seeds, matrix))
    try:
        out = quality.report(
            args.run_id,
            results_dir=Path(args.results_dir),
            out_dir=Path(args.out) if args.out else None,
            matrix_path=matrix,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"quality report: {out}")
    return EXIT_FAIL if failed else EXIT_OK


def _merge(args) -> int:
    from .study.merge import merge

    out = merge(
        args.runs, args.into, results_dir=Path(args.results_dir), side_by_side=args.side_by_side
    )
    print(f"merged {out.cells} cells from {len(args.runs)} runs into {out.into}")
    if len(out.machines) > 1:
        print(f"side by side, by machine: {', '.join(out.machines)}")
    if out.missing:
        shown = ", ".join(out.missing[:5]) + (" …" if len(out.missing) > 5 else "")
        print(f"bench: {len(out.missing)} cells are in no run: {shown}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
