"""Argument checks shared by the scratch and built-in modules.

Both implementations validate a call the same way, so a mistake gets the same
message naming the fix whichever implementation the user picked — instead of
a shape error from deep inside a matrix multiply.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence


class ShapeError(RuntimeError, ValueError):
    """A wrong input or state shape: a RuntimeError, the type torch's RNNs raise (code that
    catches theirs catches ours), and a ValueError, the type rnnsuite has always raised."""


def check_input(x: object, input_size: int, batch_first: bool = False) -> None:
    """x must be a (T, B, I)/(B, T, I)/(T, I) tensor or a PackedSequence of width I, with at
    least one time step (an empty batch is fine, as it is for torch)."""
    if isinstance(x, PackedSequence):
        if x.data.dim() != 2 or x.data.shape[-1] != input_size:
            raise ShapeError(
                f"PackedSequence data has shape {tuple(x.data.shape)}, expected (N, {input_size}): "
                f"pack a (T, B, {input_size}) tensor, or build the module with "
                f"input_size={x.data.shape[-1]}"
            )
        return
    if not isinstance(x, Tensor):
        raise TypeError(
            f"input must be a torch.Tensor or a PackedSequence, got {type(x).__name__}; "
            "convert it with torch.as_tensor(...) or rnnsuite.pack_padded(...)"
        )
    if x.dim() not in (2, 3):
        raise ValueError(
            f"input has {x.dim()} dimensions {tuple(x.shape)}; expected (T, B, I), (B, T, I) "
            "with batch_first=True, or (T, I) for one unbatched sequence"
        )
    if x.shape[-1] != input_size:
        raise ShapeError(
            f"input feature size is {x.shape[-1]} but the module was built with "
            f"input_size={input_size}; rebuild it with input_size={x.shape[-1]} or fix the input"
        )
    if x.shape[1 if batch_first and x.dim() == 3 else 0] == 0:
        raise ShapeError(
            "Expected sequence length to be larger than 0 in RNN: input "
            f"{tuple(x.shape)} has no time steps; a sequence needs at least one"
        )


def batch_size_of(x: Tensor | PackedSequence, batch_first: bool) -> int | None:
    """Batch size of the call, or None for one unbatched (T, I) sequence."""
    if isinstance(x, PackedSequence):
        return int(x.batch_sizes[0])
    if x.dim() == 2:
        return None
    return x.shape[0] if batch_first else x.shape[1]


def check_state(
    state: object,
    *,
    num_states: int,
    layers_x_directions: int,
    batch: int | None,
    hidden_size: int,
) -> tuple[Tensor, ...]:
    """Return the state as a tuple of tensors after checking its type and shapes."""
    expected = (
        (layers_x_directions, hidden_size)
        if batch is None
        else (layers_x_directions, batch, hidden_size)
    )
    names = ("h", "c")[:num_states]
    parts = check_state_type(state, num_states, expected)
    for name, s in zip(names, parts, strict=True):
        if tuple(s.shape) != expected:
            raise ShapeError(
                f"state {name} has shape {tuple(s.shape)}, expected {expected} = "
                "(num_layers * num_directions, batch, hidden_size)"
            )
    return parts


def check_state_type(
    state: object, num_states: int, expected: object = "(num_layers * num_directions, batch, H)"
) -> tuple[Tensor, ...]:
    """The state as a tuple of tensors: one tensor h, or a pair (h, c) for LSTM kinds."""
    if num_states == 1:
        if not isinstance(state, Tensor):
            raise TypeError(
                f"state must be one tensor h of shape {expected}, got {type(state).__name__}"
            )
        return (state,)
    if (
        not isinstance(state, (tuple, list))
        or len(state) != 2
        or not all(isinstance(s, Tensor) for s in state)
    ):
        raise TypeError(
            f"state of an LSTM must be a tuple (h, c) of two tensors of shape {expected}, "
            f"got {type(state).__name__}"
        )
    return tuple(state)


def check_lengths(lengths: Sequence[int] | Tensor, steps: int, batch: int) -> Tensor:
    """Lengths for packing: one per sequence, each in 1..T. Returns them on the CPU."""
    lengths_t = torch.as_tensor(lengths).to("cpu")
    if lengths_t.dim() != 1 or lengths_t.numel() != batch:
        raise ValueError(
            f"lengths must be a 1-D list with one entry per sequence ({batch}), "
            f"got shape {tuple(lengths_t.shape)}"
        )
    if lengths_t.is_floating_point():
        raise TypeError("lengths must be integers (a list of ints or an int64 tensor)")
    if int(lengths_t.min()) < 1 or int(lengths_t.max()) > steps:
        raise ValueError(
            f"lengths must lie in 1..T={steps} (the padded length); got min "
            f"{int(lengths_t.min())}, max {int(lengths_t.max())}: pad the batch to the "
            "longest sequence or fix the lengths"
        )
    return lengths_t.to(torch.int64)
