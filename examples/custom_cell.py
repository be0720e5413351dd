"""Bring your own architecture: a minimal gated unit (Zhou et al., 2016) as an rnnsuite plugin.

    f  = σ(W_f x + U_f h + b_f)              one forget gate ...
    h̃  = tanh(W_h x + U_h (f ⊙ h) + b_h)     ... that also resets the candidate
    h' = (1 − f) ⊙ h + f ⊙ h̃

Parameters are laid out as torch lays out its RNNs' (``weight_ih`` (2H, I) with the f rows
first, ``weight_hh`` (2H, H), ``bias_ih``, ``bias_hh``); both biases enter the input
projection (``folded_bias``), so a step is two small products and the gate arithmetic.
The cell is all there is: ``rnnsuite.register`` gives it a network with torch's
constructor, parameter names and checks (``rnnsuite.ScratchRNN``), and the bench runs it in
every implementation a scratch cell has (scratch, scratch_torch, compiled).

Use it without editing rnnsuite/ or bench/:

    python -m bench run --plugin examples/custom_cell.py --matrix my.toml   # arch = "mgu"
    python -m bench quality --plugin examples/custom_cell.py --matrix my-quality.toml
    RNNSUITE_PLUGINS=examples/custom_cell.py nox -s bench

or in Python: ``import custom_cell; rnnsuite.build("mgu", input_size=8, hidden_size=16)``.
"""

from __future__ import annotations

import torch

import rnnsuite
from rnnsuite.cells import Cell


class MGUCell(Cell):
    """One layer-direction of the minimal gated unit."""

    gates = 2  # f and the candidate: weight_ih is (2H, I)

    def step_fn(self, weight_hh: torch.Tensor | None = None):
        w = self.recurrent_weight() if weight_hh is None else weight_hh
        H = self.hidden_size
        w_f, w_h = w[:H].t(), w[H:].t()

        def step(xp: torch.Tensor, state):
            (h,) = state
            f = torch.sigmoid(xp[..., :H] + h @ w_f)
            candidate = torch.tanh(xp[..., H:] + (f * h) @ w_h)
            return (h + f * (candidate - h),)

        return step


MGU = rnnsuite.register(
    rnnsuite.Architecture(
        "mgu",
        MGUCell,  # a cell alone: register builds its network (rnnsuite.ScratchRNN)
        None,  # no torch built-in twin (give one here and the bench parity-checks it)
        "Minimal gated unit (Zhou et al. 2016): one gate, f, for forget and reset",
        pointwise=11,  # a token's elementwise FLOPs per hidden unit: 2 adds, σ, f⊙h, tanh, 3 for the update, ...
        marker="P",
    ),
    replace=True,  # importing it twice (a test, a notebook) redefines it
)
