"""``python -m rnnsuite.data {list,verify,download}``: where each dataset is, and is it intact.

list      every file of every dataset: where it was found and whether its checksum matched
verify    the same for the named datasets (all by default); exit 1 on a checksum mismatch
          or a missing required file (``--report-only``: print the same, exit 0)
download  fetch datasets into the cache (needs network), verified before they are kept
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import fetch, sources
from .fetch import ChecksumMismatch, DataError


def _row(spec: sources.FileSpec, root: Path | None) -> tuple[str, str, str, bool, bool]:
    """(where, check, note, mismatch, missing) for one file."""
    hit = fetch.find_file(spec, root)
    if hit is None:
        return "missing", "-", spec.note, False, not spec.optional
    origin, path = hit
    try:
        algo = fetch.verify_file(path, spec, origin)
    except ChecksumMismatch as exc:
        return f"{origin}: {path}", f"MISMATCH {exc.algo} {exc.actual}", exc.expected, True, False
    check = f"ok ({algo})" if algo else "no checksum known"
    return f"{origin}: {path}", check, spec.note, False, False


def _ag_news_fallback(root: Path | None) -> str | None:
    if fetch.find_file(sources.dataset("ag_news").file("train.csv"), root) is not None:
        return None
    hit = fetch.find_file(sources.dataset("ag_news").file("train_partial.csv"), root)
    if hit is None:
        return None
    from .ag_news import partial_note, read_ag_news_csv

    try:
        rows = len(read_ag_news_csv(hit[1])[0])
    except DataError as exc:
        return f"train_partial.csv unreadable: {exc}"
    return f"train.csv missing: loaders use train_partial.csv ({partial_note(rows)})"


def _report(names: Sequence[str], root: Path | None, out) -> tuple[int, int]:
    mismatches = missing = 0
    print(f"{fetch.ENV_DATA}={', '.join(map(str, fetch.env_data_dirs())) or '(unset)'}", file=out)
    print(f"cache={fetch.cache_root()}", file=out)
    for name in names:
        ds = sources.dataset(name)
        print(f"\n{name}: {ds.description}", file=out)
        if ds.generated:
            print("  (generated on the fly; nothing to find or verify)", file=out)
            continue
        for spec in ds.files:
            where, check, note, bad, gone = _row(spec, root)
            mismatches += bad
            missing += gone
            flag = "" if not spec.optional else " (optional)"
            line = f"  {spec.filename + flag:<28} {check:<24} {where}"
            if bad:
                line += f"\n  {'':<28} expected {note}"
            print(line, file=out)
        if name == "ag_news" and (fallback := _ag_news_fallback(root)):
            print(f"  note: {fallback}", file=out)
    return mismatches, missing


def main(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m rnnsuite.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show every dataset, where it is, whether it verifies")
    p_verify = sub.add_parser(
        "verify", help="check the checksums; exit 1 on a mismatch or a missing required file"
    )
    p_verify.add_argument("names", nargs="*", help="datasets (default: all)")
    p_verify.add_argument(
        "--report-only", action="store_true", help="print the check, exit 0 whatever it finds"
    )
    # failing on a missing file is the default now; --strict is still accepted
    p_verify.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
    for p in (p_list, p_verify):
        p.add_argument("--root", type=Path, help="a data directory searched before the others")
    p_dl = sub.add_parser("download", help="fetch datasets into the cache (needs network)")
    p_dl.add_argument("names", nargs="+", help="datasets, or 'all'")
    p_dl.add_argument(
        "--mirror", help=f"base URL holding <dataset>/<file> (or ${fetch.ENV_MIRROR})"
    )
    p_dl.add_argument("--force", action="store_true", help="download even if a copy verifies")
    args = parser.parse_args(argv)

    try:
        if args.command in ("list", "verify"):
            names = list(getattr(args, "names", None) or sources.DATASETS)
            for n in names:
                sources.dataset(n)
            mismatches, missing = _report(names, args.root, out)
            if args.command == "list":
                return 0
            print(f"\n{mismatches} mismatch(es), {missing} missing required file(s)", file=out)
            return 0 if args.report_only or not (mismatches or missing) else 1
        names = list(sources.DATASETS) if args.names == ["all"] else args.names
        for n in names:
            ds = sources.dataset(n)
            if ds.generated:
                print(f"{n}: generated, nothing to download", file=out)
                continue
            for found in fetch.download_dataset(n, force=args.force, mirror=args.mirror):
                print(f"{n}/{found.spec.filename}: {found.origin} {found.path}", file=out)
        return 0
    except (DataError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
