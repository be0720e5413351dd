"""Bring your own architecture: import a user's module before any matrix is read.

A plugin is a Python module (``mypkg.cells``) or file (``path/to/my_cell.py``) that
registers architectures with ``rnnsuite.register(...)`` when imported (see
examples/custom_cell.py). ``--plugin MODULE_OR_FILE`` (repeatable) on any bench command,
and ``RNNSUITE_PLUGINS`` (comma-separated, for nox sessions and CI) load them; their
architectures then run in every matrix that names them, are parity-checked against a
declared built-in twin, and appear in every report, with no edit under bench/ or
rnnsuite/.

Each architecture a plugin registers is remembered with the plugin's source and its
SHA-256 (``source_of``): records carry it, so a result is traceable to the code that made
it and a resumed run never reuses a cell measured with other plugin code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rnnsuite

from .study import StudyError

ENV = "RNNSUITE_PLUGINS"

_LOADED: dict[str, list[str]] = {}  # plugin key → architectures it registered
_SOURCES: dict[str, dict[str, Any]] = {}  # architecture → {"plugin", "sha256"}


class PluginError(StudyError):
    """A plugin that cannot be found or imported, or that registers nothing."""


def specs_from_env(environ: dict[str, str] | None = None) -> list[str]:
    raw = (os.environ if environ is None else environ).get(ENV, "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def load_all(specs: Iterable[str] = ()) -> list[str]:
    """Load the plugins named by ``specs`` and by RNNSUITE_PLUGINS (each once a process);
    return the architectures they registered."""
    names: list[str] = []
    for spec in [*specs_from_env(), *specs]:
        names += load(spec)
    return names


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def load(spec: str) -> list[str]:
    """Import one plugin (a module name or a .py file) and return what it registered."""
    path = Path(spec).expanduser().resolve() if _is_file(spec) else None
    key = str(path) if path else spec
    if key in _LOADED:
        return _LOADED[key]
    before = dict(rnnsuite.REGISTRY)
    if path is not None:
        module = _import_file(spec, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        module = _import_module(spec)
        file = getattr(module, "__file__", None)
        digest = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else None
    # what it registered, or redefined (register(..., replace=True))
    added = [n for n, a in rnnsuite.REGISTRY.items() if before.get(n) is not a]
    if not added:
        raise PluginError(
            f"plugin {spec!r} registered no architecture: call rnnsuite.register("
            "rnnsuite.Architecture(...)) at import time, as examples/custom_cell.py does"
        )
    for name in added:
        _SOURCES[name] = {"plugin": key, "module": module.__name__, "sha256": digest}
    _LOADED[key] = added
    return added


def _import_file(spec: str, path: Path):
    if not path.is_file():
        raise PluginError(
            f"plugin file {spec!r} not found: give a path to a .py file that calls "
            "rnnsuite.register (or an importable module name)"
        )
    name = "rnnsuite_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise PluginError(f"plugin {spec!r} failed to import: {type(e).__name__}: {e}") from e
    return module


def _import_module(spec: str):
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name and spec.startswith(e.name):
            raise PluginError(
                f"plugin module {spec!r} not found: put it on PYTHONPATH, or give its .py "
                "file's path"
            ) from None
        raise PluginError(f"plugin {spec!r} failed to import: {e}") from e
    except Exception as e:
        raise PluginError(f"plugin {spec!r} failed to import: {type(e).__name__}: {e}") from e


def source_of(arch: str) -> dict[str, Any] | None:
    """Where a plugin architecture came from ({"plugin", "module", "sha256"}); None for
    the shipped ones."""
    return _SOURCES.get(arch)


def loaded() -> dict[str, list[str]]:
    """Every plugin loaded in this process and the architectures each registered."""
    return {k: list(v) for k, v in _LOADED.items()}


def _arch_of_record(rec: dict[str, Any]) -> str | None:
    cell = rec.get("cell") or {}
    return cell.get("arch") or (cell.get("combo") or {}).get("arch")


def stamp(rec: dict[str, Any], arch: str | None) -> dict[str, Any]:
    """Add ``arch_source`` (plugin, module, sha256) to a record of a plugin architecture."""
    src = source_of(arch) if arch else None
    if src is not None:
        rec["arch_source"] = dict(src)
    return rec


def is_current(rec: dict[str, Any]) -> bool:
    """False for a record of a plugin architecture made by other plugin code than the
    one loaded now (or with no stamp): a resumed run measures that cell again."""
    arch = _arch_of_record(rec)
    src = source_of(arch) if arch else None
    return src is None or (rec.get("arch_source") or {}).get("sha256") == src["sha256"]
