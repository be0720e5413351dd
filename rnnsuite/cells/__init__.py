"""Scratch cells, one small file each; see base.Cell for the shared shape."""

from .base import Cell, State, StepFn
from .gru import GRUCell
from .gru_cho import ChoGRUCell
from .lstm import LSTMCell
from .lstm_peephole import PeepholeLSTMCell
from .rnn import ElmanCell

__all__ = [
    "Cell",
    "ChoGRUCell",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "PeepholeLSTMCell",
    "State",
    "StepFn",
]
