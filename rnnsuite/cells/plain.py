"""The plain-ops switch: differentiable torch ops only, for the callers that need them.

Inside ``plain_ops()`` every cell and layer computes with ordinary differentiable torch
ops — no oneDNN calls, no custom autograd Functions, no fused inference path, no
hand-written backward — the same maths, slower. functorch transforms (``torch.func``),
``torch.jit.trace``, empty batches, the LSTM's projection and the recomputation that gives
second derivatives (rnnsuite.bptt) need exactly that. The switch is process-wide, set and
restored around one forward call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_PLAIN = False


def plain() -> bool:
    """True inside ``plain_ops()``."""
    return _PLAIN


@contextlib.contextmanager
def plain_ops(on: bool = True) -> Iterator[None]:
    global _PLAIN
    before = _PLAIN
    _PLAIN = before or on
    try:
        yield
    finally:
        _PLAIN = before
