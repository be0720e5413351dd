"""Find, verify and (only when asked) download dataset files.

Search order for every file: an explicit ``root`` argument, the directories in
``$RNNSUITE_DATA`` (``os.pathsep``-separated), the user cache (``$RNNSUITE_CACHE`` or
``~/.cache/rnnsuite``), then — only with ``download=True`` or ``RNNSUITE_DOWNLOAD=1`` —
the canonical URL (or ``$RNNSUITE_MIRROR/<dataset>/<file>``), fetched into the cache.
A download goes to a temporary name beside its destination, is checked against the
registry's checksum and only then renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sources
from .atomic import temp_beside
from .sources import FileSpec

ENV_DATA = "RNNSUITE_DATA"
ENV_CACHE = "RNNSUITE_CACHE"
ENV_DOWNLOAD = "RNNSUITE_DOWNLOAD"
ENV_MIRROR = "RNNSUITE_MIRROR"

_CHUNK = 1 << 20
_USER_AGENT = "rnnsuite-data/0.1 (+python urllib)"


class DataError(Exception):
    """Base class of every data problem; each message says how to fix it."""


class DatasetMissing(DataError, FileNotFoundError):
    """A dataset file is nowhere on this machine (and was not downloaded)."""


class ChecksumMismatch(DataError, ValueError):
    """A file's content differs from the registry's; it is refused, never used."""

    def __init__(self, where: str, algo: str, expected: str, actual: str, fix: str) -> None:
        self.where, self.algo, self.expected, self.actual = where, algo, expected, actual
        super().__init__(
            f"checksum mismatch for {where}: expected {algo} {expected}, got {algo} {actual}. {fix}"
        )


class DownloadError(DataError, OSError):
    """The transfer itself failed (HTTP error, connection, truncated body)."""


class MalformedData(DataError, ValueError):
    """A file parses wrongly; the message names the file and line."""

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        self.path, self.line = Path(path), line
        super().__init__(f"{path}, line {line}: {problem}")


class PartialDataWarning(UserWarning):
    """A loader fell back to an incomplete copy of a dataset; results must say so."""


# --------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """``$RNNSUITE_CACHE`` or ``~/.cache/rnnsuite``: downloads and processed tensors."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnsuite"


def env_data_dirs() -> list[Path]:
    """The directories named by ``$RNNSUITE_DATA`` (empty when unset)."""
    raw = os.environ.get(ENV_DATA, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def downloads_allowed(download: bool | None = None) -> bool:
    """An explicit argument wins; otherwise ``RNNSUITE_DOWNLOAD`` in {1, true, yes}."""
    if download is not None:
        return bool(download)
    return os.environ.get(ENV_DOWNLOAD, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_path(spec: FileSpec) -> Path:
    return cache_root() / spec.dataset / spec.filename


def candidate_paths(spec: FileSpec, root: Path | str | None = None) -> list[tuple[str, Path]]:
    """(origin, path) pairs in search order; ``root`` may be a data root or the dataset dir."""
    out: list[tuple[str, Path]] = []
    if root is not None:
        root = Path(root).expanduser()
        out += [
            ("explicit", root / spec.dataset / spec.filename),
            ("explicit", root / spec.filename),
        ]
    out += [(ENV_DATA, d / spec.dataset / spec.filename) for d in env_data_dirs()]
    out.append(("cache", cache_path(spec)))
    return out


def find_file(spec: FileSpec, root: Path | str | None = None) -> tuple[str, Path] | None:
    """The first existing candidate, without verifying it."""
    for origin, path in candidate_paths(spec, root):
        if path.is_file():
            return origin, path
    return None


# --------------------------------------------------------------------------- checksums

_DIGESTS: dict[tuple[str, str], tuple[int, int, str]] = {}


def file_digest(path: Path | str, algo: str = "sha256") -> str:
    """Hex digest of a file, remembered per (path, size, mtime) so reloads do not rehash."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), algo)
    hit = _DIGESTS.get(key)
    if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2]
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    _DIGESTS[key] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def _fix_for(spec: FileSpec, path: Path, origin: str) -> str:
    if origin == "cache":
        return (
            f"Delete {path} and fetch it again with `python -m rnnsuite.data download "
            f"{spec.dataset}` (needs network)."
        )
    return (
        "Replace it with the original file (see the dataset's SOURCES.md), or move it away so "
        "the next location in the search order is used."
    )


def verify_file(path: Path | str, spec: FileSpec, origin: str = "explicit") -> str | None:
    """Raise ChecksumMismatch unless ``path`` matches ``spec``; return the algorithm used.

    Returns None when the registry knows no checksum for the file."""
    path = Path(path)
    check = spec.check
    if check is None:
        return None
    algo, expected = check
    actual = file_digest(path, algo)
    if actual != expected.lower():
        raise ChecksumMismatch(str(path), algo, expected, actual, _fix_for(spec, path, origin))
    return algo


# --------------------------------------------------------------------------- locate


@dataclass(frozen=True)
class Found:
    """Where a file was found and whether its checksum was confirmed."""

    spec: FileSpec
    path: Path
    origin: str  # "explicit", "RNNSUITE_DATA", "cache", "downloaded", "extracted"
    verified: str | None  # checksum algorithm confirmed, None when not checked / unknown


def download_url(spec: FileSpec, mirror: str | None = None) -> str | None:
    """The URL a download would use: ``mirror`` / ``$RNNSUITE_MIRROR`` first, else canonical.

    Only files with a canonical URL are downloadable; a mirror just replaces the host."""
    if spec.url is None:
        return None
    base = mirror if mirror is not None else os.environ.get(ENV_MIRROR)
    if base:
        return f"{base.rstrip('/')}/{spec.dataset}/{spec.filename}"
    return spec.url


def missing_message(spec: FileSpec, root: Path | str | None = None) -> str:
    """One message: the file expected, where it was looked for, and the commands that fix it."""
    lines = [f"dataset {spec.dataset!r}: file {spec.relpath} was not found."]
    lines.append("Looked in:")
    if root is not None:
        lines.append(f"  - {Path(root) / spec.dataset / spec.filename} (explicit path argument)")
        lines.append(f"  - {Path(root) / spec.filename} (explicit path argument)")
    dirs = env_data_dirs()
    if dirs:
        lines += [f"  - {d / spec.relpath} (${ENV_DATA})" for d in dirs]
    else:
        lines.append(f"  - ${ENV_DATA} is not set")
    lines.append(f"  - {cache_path(spec)} (user cache; ${ENV_CACHE} moves it)")
    if spec.archive:
        archive = sources.dataset(spec.dataset).file(spec.archive)
        lines.append(f"  - and the archive {archive.relpath} that contains it, in the same places")
    lines.append(
        f"Fix: set {ENV_DATA} to a directory that holds {spec.relpath}"
        + (f" (or {spec.dataset}/{spec.archive})" if spec.archive else "")
        + ","
    )
    if spec.url or spec.archive:
        lines.append(
            f"or download it (needs network): python -m rnnsuite.data download {spec.dataset}"
        )
        lines.append(f"(from Python: download=True, or set {ENV_DOWNLOAD}=1).")
    else:
        lines.append("it has no public download URL; copy it onto this machine.")
    return "\n".join(lines)


def locate_info(
    dataset: str,
    filename: str,
    *,
    root: Path | str | None = None,
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
) -> Found:
    """Find (or fetch) one file and verify it; see the module docstring for the order."""
    spec = sources.dataset(dataset).file(filename)
    hit = find_file(spec, root)
    if hit is not None:
        origin, path = hit
        algo = verify_file(path, spec, origin) if verify else None
        return Found(spec, path, origin, algo)
    if spec.archive is not None:
        try:
            archive = locate_info(
                dataset, spec.archive, root=root, download=download, verify=verify, mirror=mirror
            )
        except DatasetMissing:
            raise DatasetMissing(missing_message(spec, root)) from None
        path = extract_member(archive.path, spec)
        return Found(spec, path, "extracted", spec.check[0] if spec.check else None)
    url = download_url(spec, mirror)
    if downloads_allowed(download) and url:
        path = download_file(url, cache_path(spec), spec)
        return Found(spec, path, "downloaded", spec.check[0] if spec.check else None)
    raise DatasetMissing(missing_message(spec, root))


def locate(
    dataset: str,
    filename: str,
    *,
    root: Path | str | None = None,
    download: bool | None = None,
    verify: bool = True,
    mirror: str | None = None,
) -> Path:
    """Path of a verified dataset file; raises DatasetMissing or ChecksumMismatch."""
    return locate_info(
        dataset, filename, root=root, download=download, verify=verify, mirror=mirror
    ).path


# --------------------------------------------------------------------------- transfer


def _check_stream(hashers: dict[str, Any], spec: FileSpec | None, where: str) -> None:
    if spec is None or spec.check is None:
        return
    algo, expected = spec.check
    actual = hashers[algo].hexdigest()
    if actual != expected.lower():
        raise ChecksumMismatch(
            where,
            algo,
            expected,
            actual,
            "The file was not saved. Check the URL or mirror; if the source really changed, "
            "the registry in rnnsuite/data/sources.py must be updated deliberately.",
        )


def download_file(
    url: str, dest: Path | str, spec: FileSpec | None = None, *, timeout: float = 60.0
) -> Path:
    """Fetch ``url`` to ``dest`` via a temporary file; verify against ``spec`` before renaming."""
    dest = Path(dest)
    hashers = {algo: hashlib.new(algo) for algo in sources.CHECK_ORDER}
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with temp_beside(dest) as tmp:
        received = 0
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp, open(tmp, "wb") as out:
                announced = resp.headers.get("Content-Length")
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    for h in hashers.values():
                        h.update(chunk)
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"download of {url} failed: HTTP {exc.code} {exc.reason}. Nothing was saved; "
                f"retry later, or set {ENV_MIRROR} to a mirror holding <dataset>/<file>."
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise DownloadError(
                f"download of {url} failed after {received:,} bytes: {exc}. Nothing was saved; "
                f"check the network (this machine may have none) and retry."
            ) from None
        if announced is not None and announced.isdigit() and received != int(announced):
            raise DownloadError(
                f"download of {url} was truncated: got {received:,} of {int(announced):,} bytes. "
                f"Nothing was saved; retry."
            )
        _check_stream(hashers, spec, url)
        os.replace(tmp, dest)
    return dest


def extract_member(archive: Path, spec: FileSpec) -> Path:
    """Copy ``spec.member`` out of a zip into the cache, verified, via a temporary name."""
    assert spec.member is not None
    dest = cache_path(spec)
    hashers = {algo: hashlib.new(algo) for algo in sources.CHECK_ORDER}
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(spec.member) as src, temp_beside(dest) as tmp:
            with open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
            _check_stream(hashers, spec, f"{archive}:{spec.member}")
            os.replace(tmp, dest)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(
            f"cannot read {spec.member} from {archive}: {exc}. Replace the archive with the "
            f"original (python -m rnnsuite.data download {spec.dataset})."
        ) from None
    return dest


def download_dataset(
    name: str, *, force: bool = False, mirror: str | None = None, timeout: float = 60.0
) -> list[Found]:
    """Fetch every downloadable file of ``name`` into the cache (skipping verified copies)."""
    ds = sources.dataset(name)
    done: list[Found] = []
    for spec in ds.files:
        url = download_url(spec, mirror)
        if url is None:
            continue
        hit = find_file(spec)
        if hit is not None and not force:
            done.append(Found(spec, hit[1], hit[0], verify_file(hit[1], spec, hit[0])))
            continue
        path = download_file(url, cache_path(spec), spec, timeout=timeout)
        done.append(Found(spec, path, "downloaded", spec.check[0] if spec.check else None))
    for spec in ds.files:
        if spec.archive is not None and find_file(spec) is None:
            archive = next((f for f in done if f.spec.filename == spec.archive), None)
            if archive is not None:
                path = extract_member(archive.path, spec)
                done.append(Found(spec, path, "extracted", spec.check[0] if spec.check else None))
    return done
