"""Encoder: source embeddings -> stacked bidirectional fused GRU/LSTM/Elman RNN.

Built on the project's fused recurrent core (:mod:`seq2seq.rnn`), which handles variable
lengths without ``PackedSequence``: padded outputs are zero and the final states are taken at
each sentence's own length, so a sentence's encoding does not depend on the rest of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seq2seq.config import ModelConfig, RNNType
from seq2seq.rnn import Dropout, FusedGRU, FusedLSTM, FusedRNN


@dataclass
class EncoderOut:
    """What the decoder needs from the encoder.

    Attributes:
        memory: ``(B, S, 2H)`` top-layer outputs (fwd and bwd concatenated), zero at padding.
        mask: ``(B, S)`` bool, True at real source positions.
        hidden: ``(L*2, B, H)`` final hidden state per layer and direction (PyTorch order:
            layer 0 fwd, layer 0 bwd, layer 1 fwd, ...), taken at each sentence's length.
        cell: ``(L*2, B, H)`` final LSTM cell state, or None for the other cells.
    """

    memory: torch.Tensor
    mask: torch.Tensor
    hidden: torch.Tensor
    cell: torch.Tensor | None = None


def make_rnn(kind: RNNType, input_size: int, hidden_size: int, num_layers: int,
             bidirectional: bool, dropout: float) -> nn.Module:
    """Build a time-major fused GRU/LSTM/Elman RNN.

    Args:
        kind: the cell (a validated :class:`~seq2seq.config.RNNType`).
        input_size, hidden_size, num_layers, bidirectional, dropout: as in ``torch.nn.GRU``.

    Returns:
        The recurrent module; ``forward(x (S, B, I), lengths (B,))``.
    """
    dropout = dropout if num_layers > 1 else 0.0
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=False,
              dropout=dropout)
    if kind.nonlinearity:
        return FusedRNN(input_size, hidden_size, nonlinearity=kind.nonlinearity, **kw)
    fused = FusedGRU if kind == RNNType.gru else FusedLSTM
    return fused(input_size, hidden_size, **kw)


class Encoder(nn.Module):
    """Embeddings -> dropout -> stacked bidirectional recurrent layers.

    Args:
        cfg: model configuration (``rnn``, ``embed_dim``, ``hidden_size``, ``encoder_layers``,
            ``dropout``), validated when it was built.
        vocab_size: source vocabulary size.
        pad_id: padding token id (its embedding is zero and receives no gradient).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int = 0) -> None:
        super().__init__()
        self.kind = cfg.rnn
        self.pad_id = pad_id
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.encoder_layers
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        self.dropout = Dropout(cfg.dropout)
        self.rnn = make_rnn(cfg.rnn, cfg.embed_dim, cfg.hidden_size, cfg.encoder_layers,
                            True, cfg.dropout)

    @property
    def output_size(self) -> int:
        """Size of one memory vector (``2H``)."""
        return 2 * self.hidden_size

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> EncoderOut:
        """Encode a padded batch.

        Args:
            src: ``(B, S)`` long token ids, padded with ``pad_id`` after each sentence.
            src_len: ``(B,)`` long lengths (>= 1).

        Returns:
            :class:`EncoderOut` with memory ``(B, S, 2H)``.
        """
        S = src.shape[1]
        src_len = src_len.to(src.device)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_len.unsqueeze(1)  # (B, S)
        x = self.dropout(self.embedding(src.t()))  # (S, B, E) time-major: no copies in the core
        out, h = self.rnn(x, src_len)  # (S, B, 2H)
        out = out.transpose(0, 1).contiguous()  # (B, S, 2H)
        if self.kind == "lstm":
            h, c = h  # (L*2, B, H) each
        else:
            c = None
        return EncoderOut(memory=out, mask=mask, hidden=h, cell=c)
