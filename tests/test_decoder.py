"""Tests for seq2seq.model.decoder: bridge, tying, incremental steps vs the teacher-forced pass."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.model.decoder import AttentionDecoder
from seq2seq.model.encoder import EncoderOut


def _enc(B: int = 3, S: int = 4, H: int = 5, layers: int = 1, lstm: bool = False) -> EncoderOut:
    g = torch.Generator().manual_seed(0)
    lens = torch.tensor([4, 2, 1])[:B]
    mask = torch.arange(S)[None] < lens[:, None]  # (B, S)
    memory = torch.randn(B, S, 2 * H, generator=g) * mask[..., None]  # (B, S, 2H)
    hidden = torch.randn(2 * layers, B, H, generator=g)  # (2L, B, H)
    cell = torch.randn(2 * layers, B, H, generator=g) if lstm else None
    return EncoderOut(memory=memory, mask=mask, hidden=hidden, cell=cell)


def _cfg(**kw) -> ModelConfig:
    base = dict(embed_dim=5, hidden_size=5, dropout=0.0, attention="bahdanau", input_feeding=True)
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("rnn", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_bridge_is_tanh_linear_of_final_fwd_bwd_states(rnn: str) -> None:
    torch.manual_seed(0)
    dec = AttentionDecoder(_cfg(rnn=rnn, decoder_layers=2, encoder_layers=2), 7, 10)
    enc = _enc(layers=2, lstm=rnn == "lstm")
    st = dec.init_state(enc)
    assert st.hidden.shape == (2, 3, 5)
    for layer in range(2):
        fb = torch.cat([enc.hidden[2 * layer], enc.hidden[2 * layer + 1]], 1)  # (B, 2H)
        torch.testing.assert_close(st.hidden[layer], torch.tanh(dec.bridge_layers[layer](fb)))
        if rnn == "lstm":
            fc = torch.cat([enc.cell[2 * layer], enc.cell[2 * layer + 1]], 1)
            torch.testing.assert_close(st.cell[layer],
                                       torch.tanh(dec.bridge_layers[2 + layer](fc)))
    assert torch.equal(st.feed, torch.zeros(3, 5))
    assert torch.isneginf(st.bias[~enc.mask]).all() and (st.bias[enc.mask] == 0).all()
    assert st.attn is None


def test_deeper_decoder_bridges_from_top_aligned_encoder_layers() -> None:
    dec = AttentionDecoder(_cfg(decoder_layers=2), 7, 10)
    enc = _enc(layers=1)
    st = dec.init_state(enc)
    fb = torch.cat([enc.hidden[0], enc.hidden[1]], 1)
    torch.testing.assert_close(st.hidden[1], torch.tanh(dec.bridge_layers[1](fb)))


@pytest.mark.parametrize("rnn", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_no_bridge_gives_zero_state(rnn: str) -> None:
    dec = AttentionDecoder(_cfg(rnn=rnn, bridge=False, decoder_layers=2), 7, 10)
    assert dec.bridge_layers is None
    st = dec.init_state(_enc(lstm=rnn == "lstm"))
    assert torch.equal(st.hidden, torch.zeros(2, 3, 5))
    if rnn == "lstm":
        assert torch.equal(st.cell, torch.zeros(2, 3, 5))


def test_tied_embeddings_share_storage_and_project_when_sizes_differ() -> None:
    dec = AttentionDecoder(_cfg(tie_embeddings=True), 7, 10)
    assert dec.output.weight is dec.embedding.weight and dec.out_proj is None
    dec2 = AttentionDecoder(_cfg(tie_embeddings=True, embed_dim=3), 7, 10)
    assert dec2.output.weight.data_ptr() == dec2.embedding.weight.data_ptr()
    assert dec2.out_proj is not None and dec2.out_proj.weight.shape == (3, 5)
    dec3 = AttentionDecoder(_cfg(tie_embeddings=False, embed_dim=3), 7, 10)
    assert dec3.output.weight.data_ptr() != dec3.embedding.weight.data_ptr()
    assert dec3.out_proj is None and dec3.output.weight.shape == (7, 5)
    logits = dec2(torch.tensor([[2, 4], [2, 0], [2, 5]]), dec2.init_state(_enc()))
    assert logits.shape == (3, 2, 7)


def test_input_feeding_off_uses_embedding_only_input() -> None:
    dec = AttentionDecoder(_cfg(input_feeding=False), 7, 10)
    assert dec.cells[0].weight_ih.shape == (15, 5)
    dec_on = AttentionDecoder(_cfg(input_feeding=True), 7, 10)
    assert dec_on.cells[0].weight_ih.shape == (15, 10)


def test_steps_with_source_lengths_equal_steps_over_the_padding(monkeypatch) -> None:
    from dataclasses import replace

    from seq2seq.model import attention as attention_mod

    torch.manual_seed(0)
    monkeypatch.setattr(attention_mod, "CHUNK_ELEMENTS", 1)  # one source row per run
    dec = AttentionDecoder(_cfg(), 7, 10).eval()
    with torch.no_grad():
        st = dec.init_state(_enc())
        assert st.src_lens == tuple(_enc().mask.sum(1).tolist())
        plain = replace(st, src_lens=None)
        for tok in (torch.tensor([2, 2, 2]), torch.tensor([5, 0, 6])):
            logp, st = dec.step(tok, st)
            ref, plain = dec.step(tok, plain)
            torch.testing.assert_close(logp, ref)
            torch.testing.assert_close(st.attn, plain.attn)
    assert st.src_lens is not None
    assert dec.init_state(_enc()).src_lens is None  # training: no lengths, no device sync
