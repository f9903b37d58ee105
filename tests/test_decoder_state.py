"""Tests for seq2seq.model.decoder_state: row selection and per-source sharing."""

from __future__ import annotations

import torch

from seq2seq.config import ModelConfig
from seq2seq.model.decoder import AttentionDecoder
from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.encoder import EncoderOut


def _enc(B: int = 3, S: int = 4, H: int = 5) -> EncoderOut:
    g = torch.Generator().manual_seed(0)
    lens = torch.tensor([4, 2, 1])[:B]
    mask = torch.arange(S)[None] < lens[:, None]  # (B, S)
    memory = torch.randn(B, S, 2 * H, generator=g) * mask[..., None]  # (B, S, 2H)
    hidden = torch.randn(2, B, H, generator=g)  # (2, B, H)
    cell = torch.randn(2, B, H, generator=g)
    return EncoderOut(memory=memory, mask=mask, hidden=hidden, cell=cell)


def _state() -> DecoderState:
    cfg = ModelConfig(embed_dim=5, hidden_size=5, dropout=0.0, rnn="lstm", decoder_layers=2,
                      attention="bahdanau", input_feeding=True)
    dec = AttentionDecoder(cfg, 7, 10).eval()
    with torch.no_grad():
        _, st = dec.step(torch.tensor([2, 2, 2]), dec.init_state(_enc()))
    return st


def test_state_index_select_selects_every_tensor_on_its_batch_dim() -> None:
    st = _state()
    idx = torch.tensor([2, 0, 0])
    r = st.index_select(idx)
    assert isinstance(r, DecoderState)
    assert torch.equal(r.hidden, st.hidden[:, idx]) and torch.equal(r.cell, st.cell[:, idx])
    for name in ("feed", "memory", "keys", "bias", "mask", "attn"):
        assert torch.equal(getattr(r, name), getattr(st, name)[idx]), name


def test_runs_of_one_source_row_keep_the_source_tensors_shared() -> None:
    st = _state()
    beam = st.index_select(torch.arange(3).repeat_interleave(2))  # (6,) two rows per sentence
    assert beam.group == 2 and beam.src_memory.shape[0] == 3
    assert beam.src_memory is st.src_memory  # all source rows kept in order: no copy
    torch.testing.assert_close(beam.memory, st.memory.repeat_interleave(2, dim=0))
    dropped = beam.index_select(torch.tensor([1, 0, 4, 5]))  # sentences 0 and 2, reordered
    assert dropped.group == 2
    torch.testing.assert_close(dropped.src_memory, st.src_memory[[0, 2]])
    torch.testing.assert_close(dropped.hidden, beam.hidden[:, [1, 0, 4, 5]])
    mixed = beam.index_select(torch.tensor([0, 2, 3]))  # unequal runs: one source row per row
    assert mixed.group == 1
    torch.testing.assert_close(mixed.memory, st.memory[[0, 1, 1]])


def test_source_lengths_follow_the_selected_source_rows() -> None:
    st = _state()
    assert st.src_lens == (4, 2, 1)  # from the encoder mask
    beam = st.index_select(torch.arange(3).repeat_interleave(2))
    assert beam.src_lens == (4, 2, 1)
    dropped = beam.index_select(torch.tensor([4, 5, 0, 1]))  # sentence 2, then sentence 0
    assert dropped.src_lens == (1, 4)
    mixed = beam.index_select(torch.tensor([0, 2, 3]))  # one source row per row
    assert mixed.src_lens == (4, 2, 2)
