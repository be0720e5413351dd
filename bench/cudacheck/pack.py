"""What comes back from the lent machine: a few files in ``OUT_DIR/cuda-check/``.

The device tool returns at most 8 files, each under 16 MiB, at most two folders below
OUT_DIR, named with letters, digits and ``._-`` only. So everything else goes into one
tar.gz (its PNGs dropped, and the summary saying so, should it outgrow the limit), and
every file is written under a temporary name and renamed: a run killed while packing
still leaves the previous pack whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from pathlib import Path

MAX_FILES = 8
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 2  # folders below OUT_DIR
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
TARBALL = "cuda-check.tar.gz"
LOG_HEAD, LOG_TAIL = 64 * 1024, 900 * 1024  # per step log, in log.txt


def check_limits(out_dir: Path) -> list[str]:
    """Every way ``out_dir`` breaks the device tool's limits (empty: it all comes back)."""
    problems = []
    files = [p for p in sorted(out_dir.rglob("*")) if not p.is_dir()]
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files, more than {MAX_FILES}")
    for p in files:
        rel = p.relative_to(out_dir)
        if p.is_symlink() or not p.is_file():
            problems.append(f"{rel}: not a plain file")
        elif p.stat().st_size >= MAX_BYTES:
            problems.append(f"{rel}: {p.stat().st_size} bytes, not under 16 MiB")
        if len(rel.parts) - 1 > MAX_DEPTH:
            problems.append(f"{rel}: more than {MAX_DEPTH} folders deep")
        bad = [part for part in rel.parts if not NAME.match(part)]
        if bad:
            problems.append(f"{rel}: a name outside letters, digits and ._-")
    return problems


def _replace(tmp: Path, final: Path) -> Path:
    os.replace(tmp, final)
    return final


def write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    return _replace(tmp, path)


def copy(src: Path, dest: Path) -> Path | None:
    if not src.is_file():
        return None
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    return _replace(tmp, dest)


def _clip(data: bytes) -> bytes:
    if len(data) <= LOG_HEAD + LOG_TAIL:
        return data
    cut = len(data) - LOG_HEAD - LOG_TAIL
    return data[:LOG_HEAD] + f"\n[... {cut} bytes cut ...]\n".encode() + data[-LOG_TAIL:]


def write_log(dest: Path, logs: list[tuple[str, Path]]) -> Path:
    """Every step's log, one after another, each cut to its head and tail when long."""
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as out:
        for name, path in logs:
            out.write(f"\n===== {name} =====\n".encode())
            out.write(_clip(path.read_bytes()) if path.is_file() else b"(no output)\n")
    return _replace(tmp, dest)


def write_tar(dest: Path, members: list[tuple[Path, str]]) -> tuple[Path, bool]:
    """(path, whether PNGs were dropped) of a tar.gz of ``(source, name in archive)``."""
    for skip_png in (False, True):
        tmp = dest.with_name(dest.name + ".part")
        with tarfile.open(tmp, "w:gz") as tar:
            for src, arcname in members:
                if src.exists():
                    tar.add(src, arcname, filter=_no_png if skip_png else None)
        if tmp.stat().st_size < MAX_BYTES - 1024 * 1024:
            return _replace(tmp, dest), skip_png
    return _replace(tmp, dest), True


def _no_png(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if info.name.endswith(".png") else info


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
