"""Fused recurrent core: LSTM/GRU/Elman RNN layers with hand-written backward (imports only torch).

``FusedLSTM``/``FusedGRU``/``FusedRNN`` are drop-in replacements for ``torch.nn.LSTM``/``GRU``/
``RNN`` (same parameter names, gate order and state layout) that take ``lengths`` instead of a
PackedSequence.
"""

from .convert import from_torch, state_dict_from_torch, state_dict_to_torch, to_torch
from .dropout import Dropout
from .elman import RNNLayerFunction, rnn_cell_math, rnn_layer
from .gru import GRULayerFunction, gru_layer
from .lstm import LSTMLayerFunction, lstm_layer
from .modules import FusedGRU, FusedLSTM, FusedRNN
from .ragged import Ragged

__all__ = [
    "Dropout",
    "FusedGRU",
    "FusedLSTM",
    "FusedRNN",
    "GRULayerFunction",
    "LSTMLayerFunction",
    "RNNLayerFunction",
    "Ragged",
    "from_torch",
    "gru_layer",
    "lstm_layer",
    "rnn_cell_math",
    "rnn_layer",
    "state_dict_from_torch",
    "state_dict_to_torch",
    "to_torch",
]
