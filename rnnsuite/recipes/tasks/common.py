"""What every task module shares: the result type and the batch cap."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

Result = dict[str, Any]
T = TypeVar("T")


def take(batches: Iterable[T], limit: int | None) -> Iterator[T]:
    """The first ``limit`` batches (all of them when ``limit`` is None)."""
    for i, b in enumerate(batches):
        if limit is not None and i >= limit:
            return
        yield b
