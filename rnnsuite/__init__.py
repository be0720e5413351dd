"""rnnsuite: recurrent architectures from scratch and built-in, proven equal.

model = rnnsuite.build("lstm", "scratch", input_size=32, hidden_size=64)
out, (h, c) = model(x)              # x: (T, B, I), (B, T, I) or a PackedSequence

rnnsuite.LSTM(32, 64, num_layers=2)  # the same scratch twin, as a drop-in for nn.LSTM
"""

from . import bptt
from .cells.plain import plain_ops
from .heads import Acceptor, Transducer, last_step
from .models.transformer import CausalTransformer
from .network import GRU, LSTM, RNN, ChoGRU, PeepholeLSTM, ScratchRNN
from .packing import pack_padded, unpack
from .registry import (
    ARCHITECTURES,
    IMPLEMENTATIONS,
    REGISTRY,
    SCRATCH_IMPLEMENTATIONS,
    Architecture,
    architecture,
    architectures,
    build,
    implementations_of,
    register,
    unregister,
)
from .stateful import REMEMBER_MODES, Stateful
from .weights import canonical_parameters, copy_weights

__all__ = [
    "ARCHITECTURES",
    "GRU",
    "IMPLEMENTATIONS",
    "LSTM",
    "REGISTRY",
    "REMEMBER_MODES",
    "RNN",
    "SCRATCH_IMPLEMENTATIONS",
    "Acceptor",
    "Architecture",
    "CausalTransformer",
    "ChoGRU",
    "PeepholeLSTM",
    "ScratchRNN",
    "Stateful",
    "Transducer",
    "architecture",
    "architectures",
    "bptt",
    "build",
    "canonical_parameters",
    "copy_weights",
    "implementations_of",
    "last_step",
    "pack_padded",
    "plain_ops",
    "register",
    "unpack",
    "unregister",
]
__version__ = "0.1.0"
