"""Fused recurrent core: LSTM/GRU layers with hand-written backward (imports only torch).

``FusedLSTM``/``FusedGRU`` are drop-in replacements for ``torch.nn.LSTM``/``GRU`` (same
parameter names, gate order and state layout) that take ``lengths`` instead of a PackedSequence.
"""

from .convert import from_torch, state_dict_from_torch, state_dict_to_torch, to_torch
from .gru import GRULayerFunction, gru_layer
from .lstm import LSTMLayerFunction, lstm_layer
from .modules import FusedGRU, FusedLSTM
from .ragged import Ragged

__all__ = [
    "FusedGRU",
    "FusedLSTM",
    "GRULayerFunction",
    "LSTMLayerFunction",
    "Ragged",
    "from_torch",
    "gru_layer",
    "lstm_layer",
    "state_dict_from_torch",
    "state_dict_to_torch",
    "to_torch",
]
