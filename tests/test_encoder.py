"""Tests for seq2seq.model.encoder: fused bidirectional encoder, padding, final states."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.model.encoder import Encoder
from seq2seq.rnn import FusedGRU, FusedLSTM, FusedRNN


def _cfg(rnn: str, layers: int = 2) -> ModelConfig:
    return ModelConfig(rnn=rnn, embed_dim=6, hidden_size=5, encoder_layers=layers, dropout=0.0)


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 9], [4, 5, 6, 0, 0], [7, 0, 0, 0, 0]])  # (3, 5)
    return src, torch.tensor([5, 3, 1])


@pytest.mark.parametrize("rnn", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_encoder_uses_fused_core_and_masks_padding(rnn: str) -> None:
    torch.manual_seed(0)
    enc = Encoder(_cfg(rnn), 12).eval()
    assert type(enc.rnn) is {"gru": FusedGRU, "lstm": FusedLSTM}.get(rnn, FusedRNN)
    assert getattr(enc.rnn, "nonlinearity", None) == {"rnn_tanh": "tanh",
                                                      "rnn_relu": "relu"}.get(rnn)
    assert enc.rnn.bidirectional and enc.rnn.num_layers == 2
    src, lens = _batch()
    out = enc(src, lens)
    assert out.memory.shape == (3, 5, 10) and out.memory.is_contiguous()
    assert torch.equal(out.mask, src != 0)
    assert (out.memory[~out.mask] == 0).all()
    assert (out.memory[out.mask].abs().sum(-1) > 0).all()
    assert out.hidden.shape == (4, 3, 5)
    assert (out.cell is None) == (rnn != "lstm")
    if rnn == "lstm":
        assert out.cell.shape == (4, 3, 5)
    # top layer: forward final state = output at the last real step, backward = output at step 0
    for b, n in enumerate(lens.tolist()):
        torch.testing.assert_close(out.hidden[2, b], out.memory[b, n - 1, :5])
        torch.testing.assert_close(out.hidden[3, b], out.memory[b, 0, 5:])


@pytest.mark.parametrize("rnn", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_encoder_is_batch_invariant(rnn: str) -> None:
    torch.manual_seed(0)
    enc = Encoder(_cfg(rnn), 12).eval()
    src, lens = _batch()
    full = enc(src, lens)
    for b, n in enumerate(lens.tolist()):
        alone = enc(src[b : b + 1, :n], lens[b : b + 1])
        torch.testing.assert_close(alone.memory[0], full.memory[b, :n], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(alone.hidden[:, 0], full.hidden[:, b], atol=1e-6, rtol=1e-5)


def test_pad_embedding_is_zero() -> None:
    """(A bad config never reaches the encoder: ModelConfig checks itself, tests/test_config.py.)"""
    enc = Encoder(_cfg("gru"), 12)
    assert torch.equal(enc.embedding.weight[0], torch.zeros(6))
