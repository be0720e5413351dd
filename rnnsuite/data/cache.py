"""Cache of numericalized tensors, keyed by the content hash of the inputs and the recipe.

Tokenizing AG News once takes seconds; every later load reads one ``torch.save`` file.
The key covers the source files' checksums and every option that changes the output, so a
stale entry is never read: it simply stops being looked up.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .atomic import temp_beside
from .fetch import cache_root

ENV_NO_CACHE = "RNNSUITE_NO_CACHE"


def processed_dir() -> Path:
    return cache_root() / "processed"


def content_key(parts: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able description of the inputs."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def processed_path(name: str, parts: dict[str, Any]) -> Path:
    return processed_dir() / f"{name}-{content_key(parts)}.pt"


def _enabled(use_cache: bool | None) -> bool:
    if use_cache is not None:
        return use_cache
    return os.environ.get(ENV_NO_CACHE, "").strip().lower() not in {"1", "true", "yes", "on"}


def load_or_build(
    name: str,
    parts: dict[str, Any],
    build: Callable[[], dict[str, Any]],
    *,
    use_cache: bool | None = None,
) -> dict[str, Any]:
    """Return the cached payload for (name, parts), or build it and save it atomically.

    A payload is a dict of tensors, ints, strings and lists of them (``weights_only`` safe).
    A cache file that cannot be read is rebuilt rather than trusted."""
    if not _enabled(use_cache):
        return build()
    path = processed_path(name, parts)
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(payload, dict) and payload.get("__key__") == parts:
                payload.pop("__key__")
                return payload
        except Exception:  # a truncated or foreign file: rebuild below
            pass
    payload = build()
    try:
        with temp_beside(path) as tmp:
            torch.save({**payload, "__key__": parts}, tmp)
            os.replace(tmp, path)
    except OSError:  # a read-only cache must not stop the load
        pass
    return payload
