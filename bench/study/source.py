"""Reading a study's matrix file, and the error a bad one raises.

Every kind of study (throughput, quality, reproduce) reads its TOML file here, so a
missing file, a TOML syntax error and an empty file are the same message everywhere,
each naming the file: ``<file>: no such matrix file``, ``<file>: not valid TOML: ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]


class StudyError(ValueError):
    """A matrix (or a request against one) that cannot be used; the message names the
    file and, where there is one, the key. The CLI turns it into exit status 2."""


# Makes a kind's own error (a StudyError) from a message that does not yet name the file.
ErrorFor = Callable[[str], StudyError]


def _plain(source: str) -> ErrorFor:
    return lambda message: StudyError(f"{source}: {message}")


def parse_toml(text: str, source: str, error: ErrorFor | None = None) -> dict[str, Any]:
    """The TOML document ``text``; an error naming ``source`` when it does not parse."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise (error or _plain(source))(f"not valid TOML: {e}") from None


def read_toml(
    path: Path | str, source: str | None = None, error: ErrorFor | None = None
) -> dict[str, Any]:
    """The TOML document at ``path`` (messages name ``source``, default the path)."""
    path = Path(path)
    source = str(path) if source is None else source
    error = error or _plain(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("no such matrix file") from None
    return parse_toml(text, source, error)
