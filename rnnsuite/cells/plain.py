"""The plain-ops switch: differentiable torch ops only, for the callers that need them.

Inside ``plain_ops()`` every cell and layer computes with ordinary differentiable torch
ops — no oneDNN calls, no custom autograd Functions, no fused inference path, no
hand-written backward — the same maths, slower. functorch transforms (``torch.func``),
``torch.jit.trace``, empty batches, the LSTM's projection and the recomputation that gives
second derivatives (rnnsuite.bptt) need exactly that. The switch is per thread (as
functorch's transforms are), set and restored around one forward call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class _Switch(threading.local):
    on = False


_SWITCH = _Switch()


def plain() -> bool:
    """True inside ``plain_ops()`` (on this thread)."""
    return _SWITCH.on


@contextlib.contextmanager
def plain_ops(on: bool = True) -> Iterator[None]:
    """Plain ops while inside when `on` (nested: stays on once an outer call turned it on)."""
    before = _SWITCH.on
    _SWITCH.on = before or on
    try:
        yield
    finally:
        _SWITCH.on = before
