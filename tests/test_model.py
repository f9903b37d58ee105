"""Tests for seq2seq.model.seq2seq: teacher forcing vs the decoder protocol, invariance, learning."""

from __future__ import annotations

import itertools

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.model.loss import label_smoothed_cross_entropy
from seq2seq.model.seq2seq import Seq2Seq

VARIANTS = list(itertools.product(["gru", "lstm", "rnn_tanh", "rnn_relu"],
                                  ["bahdanau", "luong_dot", "luong_general"]))


def _cfg(rnn: str = "gru", attention: str = "bahdanau", **kw) -> ModelConfig:
    base = dict(rnn=rnn, attention=attention, embed_dim=8, hidden_size=6, encoder_layers=2,
                decoder_layers=2, dropout=0.3, input_feeding=True)
    base.update(kw)
    return ModelConfig(**base)


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 9, 10], [4, 5, 6, 0, 0, 0], [7, 8, 0, 0, 0, 0]])
    src_len = torch.tensor([6, 3, 2])
    tgt_in = torch.tensor([[2, 5, 6, 7, 8], [2, 9, 0, 0, 0], [2, 4, 5, 6, 0]])
    return src, src_len, tgt_in


@pytest.mark.parametrize("feeding", [True, False])
@pytest.mark.parametrize("rnn,attention", VARIANTS)
def test_step_matches_teacher_forced_forward(rnn: str, attention: str, feeding: bool) -> None:
    """Both teacher-forced passes (the per-step loop with input feeding, the fused RNN stack
    over all positions without) compute what the incremental steps compute."""
    torch.manual_seed(0)
    model = Seq2Seq(_cfg(rnn, attention, input_feeding=feeding), 20, 15).eval()
    src, src_len, tgt_in = _batch()
    with torch.no_grad():
        ref = torch.log_softmax(model(src, src_len, tgt_in), -1)  # (B, T, V)
        state = model.init_state(model.encode(src, src_len))
        for t in range(tgt_in.shape[1]):
            logp, state = model.step(tgt_in[:, t], state)
            torch.testing.assert_close(logp, ref[:, t], atol=1e-5, rtol=1e-5)
            assert state.attn.shape == (3, 6)
            assert (state.attn[~state.mask] == 0).all()
            torch.testing.assert_close(state.attn.sum(-1), torch.ones(3))


@pytest.mark.parametrize("tie,embed", [(True, 8), (True, 6), (False, 8)])
def test_step_parity_with_tying_and_no_input_feeding(tie: bool, embed: int) -> None:
    torch.manual_seed(0)
    cfg = _cfg(tie_embeddings=tie, embed_dim=embed, input_feeding=embed == 6, bridge=False)
    model = Seq2Seq(cfg, 20, 15).eval()
    src, src_len, tgt_in = _batch()
    with torch.no_grad():
        ref = torch.log_softmax(model(src, src_len, tgt_in), -1)
        state = model.init_state(model.encode(src, src_len))
        for t in range(tgt_in.shape[1]):
            logp, state = model.step(tgt_in[:, t], state)
            torch.testing.assert_close(logp, ref[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_reorder_state_repeat_and_shrink(rnn: str) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(_cfg(rnn), 20, 15).eval()
    src, src_len, tgt_in = _batch()
    with torch.no_grad():
        state = model.init_state(model.encode(src, src_len))
        _, state = model.step(tgt_in[:, 0], state)
        # beam expansion: every row repeated 3 times
        index = torch.arange(3).repeat_interleave(3)  # (9,)
        big = model.reorder_state(state, index)
        assert big.hidden.shape == (2, 9, 6) and big.memory.shape == (9, 6, 12)
        assert big.keys.shape[0] == 9 and big.mask.shape == (9, 6) and big.attn.shape == (9, 6)
        logp_big, big = model.step(tgt_in[:, 1].repeat_interleave(3), big)
        logp, state = model.step(tgt_in[:, 1], state)
        torch.testing.assert_close(logp_big, logp.repeat_interleave(3, 0), atol=1e-6, rtol=1e-5)
        # shrinking and reordering: keep rows 2 and 0 only
        small = model.reorder_state(state, torch.tensor([2, 0]))
        logp_small, small = model.step(tgt_in[[2, 0], 2], small)
        logp_all, _ = model.step(tgt_in[:, 2], state)
        torch.testing.assert_close(logp_small, logp_all[[2, 0]], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(small.attn, _.attn[[2, 0]], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("rnn,attention", [("gru", "bahdanau"), ("lstm", "luong_general")])
def test_outputs_do_not_depend_on_batch_composition_or_padding(rnn: str, attention: str) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(_cfg(rnn, attention), 20, 15).eval()
    src, src_len, tgt_in = _batch()
    tgt_len = (tgt_in != 0).sum(1)
    with torch.no_grad():
        full = model(src, src_len, tgt_in)
        for b in range(3):
            s, t = int(src_len[b]), int(tgt_len[b])
            alone = model(src[b : b + 1, :s], src_len[b : b + 1], tgt_in[b : b + 1, :t])
            torch.testing.assert_close(alone[0], full[b, :t], atol=1e-5, rtol=1e-5)
        # extra padding columns change nothing either
        padded = model(torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], 1), src_len,
                       torch.cat([tgt_in, torch.zeros(3, 2, dtype=torch.long)], 1))
        torch.testing.assert_close(padded[:, :5], full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn,attention", VARIANTS)
def test_gradient_reaches_every_parameter(rnn: str, attention: str) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(_cfg(rnn, attention, tie_embeddings=False), 20, 15).train()
    src, src_len, tgt_in = _batch()
    logits = model(src, src_len, tgt_in)
    tgt_out = torch.where(tgt_in != 0, (tgt_in + 1) % 15, 0)
    label_smoothed_cross_entropy(logits, tgt_out, 0.1).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        rows = p.grad if p.dim() < 2 else p.grad[1:] if "embedding" in name else p.grad
        assert rows.abs().sum() > 0, name
    # padding rows of the embeddings never get gradient
    assert (model.encoder.embedding.weight.grad[0] == 0).all()
    assert (model.decoder.embedding.weight.grad[0] == 0).all()


def test_tied_model_shares_storage() -> None:
    model = Seq2Seq(_cfg(tie_embeddings=True), 20, 15)
    assert model.decoder.output.weight.data_ptr() == model.decoder.embedding.weight.data_ptr()
    names = [n for n, _ in model.named_parameters()]
    assert "decoder.output.weight" not in names  # a single shared parameter


def _greedy(model: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor, T: int) -> torch.Tensor:
    state = model.init_state(model.encode(src, src_len))
    prev = torch.full((src.shape[0],), 2, dtype=torch.long)
    out = []
    for _ in range(T):
        logp, state = model.step(prev, state)
        prev = logp.argmax(-1)
        out.append(prev)
    return torch.stack(out, 1)  # (B, T)


@pytest.mark.parametrize("rnn,attention,task", [("gru", "bahdanau", "reverse"),
                                                ("lstm", "luong_general", "copy"),
                                                ("gru", "luong_dot", "copy")])
def test_tiny_model_overfits_copy_and_reverse(rnn: str, attention: str, task: str) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    V, N = 12, 20
    lens = torch.randint(3, 7, (N,), generator=g)
    S = int(lens.max())
    src = torch.zeros(N, S, dtype=torch.long)
    tgt_out = torch.zeros(N, S + 1, dtype=torch.long)
    for i, n in enumerate(lens.tolist()):
        x = torch.randint(4, V, (n,), generator=g)
        src[i, :n] = x
        y = x.flip(0) if task == "reverse" else x
        tgt_out[i, :n] = y
        tgt_out[i, n] = 3  # EOS
    tgt_in = torch.cat([torch.full((N, 1), 2), tgt_out[:, :-1]], 1)  # (N, S+1)
    tgt_in[tgt_in == 3] = 0
    cfg = ModelConfig(rnn=rnn, attention=attention, embed_dim=32, hidden_size=32,
                      encoder_layers=1, decoder_layers=1, dropout=0.0, input_feeding=True)
    model = Seq2Seq(cfg, V, V)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        out = label_smoothed_cross_entropy(model(src, lens, tgt_in), tgt_out, 0.0)
        opt.zero_grad()
        (out.loss / out.ntokens).backward()
        opt.step()
        if out.loss.item() / out.ntokens < 0.01:
            break
    model.eval()
    with torch.no_grad():
        pred = _greedy(model, src, lens, S + 1)
    mask = tgt_out != 0
    assert torch.equal(pred[mask], tgt_out[mask])


@pytest.mark.parametrize("rnn,attention,feeding",
                         [("gru", "bahdanau", True), ("lstm", "luong_dot", True)]
                         + [(r, a, False) for r, a in VARIANTS])
def test_training_pass_gradients_equal_unrolled_step_gradients(rnn: str, attention: str,
                                                               feeding: bool) -> None:
    """The hoisted teacher-forced pass (custom backwards; without input feeding the fused
    core's BPTT and the grouped attention) == autograd through ``step``, in fp64."""
    torch.manual_seed(0)
    model = Seq2Seq(_cfg(rnn, attention, dropout=0.0, input_feeding=feeding), 20, 15).double()
    src, src_len, tgt_in = _batch()
    tgt_out = torch.where(tgt_in != 0, (tgt_in + 1) % 15, 0)
    loss = model(src, src_len, tgt_in, tgt_out, 0.1).loss  # the training pass, fp64 through
    fast = torch.autograd.grad(loss, list(model.parameters()))
    state = model.init_state(model.encode(src, src_len))
    steps = []
    for t in range(tgt_in.shape[1]):
        logp, state = model.step(tgt_in[:, t], state)
        steps.append(logp)
    loss2 = label_smoothed_cross_entropy(torch.stack(steps, 1), tgt_out, 0.1).loss
    torch.testing.assert_close(loss.float(), loss2)  # step's log-probs are float32
    slow = torch.autograd.grad(loss2, list(model.parameters()))
    for (name, _), a, b in zip(model.named_parameters(), fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)


@pytest.mark.parametrize("feeding", [True, False])
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general"])
def test_bf16_autocast_training_and_step(attention: str, feeding: bool) -> None:
    """Mixed precision (as on CUDA) runs through the custom backwards with fp32 gradients."""
    torch.manual_seed(0)
    model = Seq2Seq(_cfg("gru", attention, dropout=0.0, input_feeding=feeding), 20, 15)
    src, src_len, tgt_in = _batch()
    tgt_out = torch.where(tgt_in != 0, (tgt_in + 1) % 15, 0)
    with torch.no_grad():
        ref = model(src, src_len, tgt_in)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, src_len, tgt_in)
        loss = label_smoothed_cross_entropy(logits, tgt_out, 0.1).loss
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), ref, atol=0.1, rtol=0.05)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logp, state = model.step(tgt_in[:, 0], model.init_state(model.encode(src, src_len)))
    assert logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3))


@pytest.mark.parametrize("rnn,attention", [("gru", "bahdanau"), ("lstm", "luong_general"),
                                           ("rnn_tanh", "luong_dot")])
def test_decoder_without_input_feeding_passes_gradcheck(rnn: str, attention: str) -> None:
    """fp64 gradcheck of the teacher-forced decoder without input feeding at tiny sizes: the
    encoder memory, the initial states and every decoder parameter are inputs."""
    from dataclasses import replace

    from seq2seq.model.decoder import AttentionDecoder
    from seq2seq.model.encoder import EncoderOut

    torch.manual_seed(0)
    cfg = ModelConfig(rnn=rnn, attention=attention, embed_dim=3, hidden_size=3,
                      decoder_layers=2, dropout=0.0, input_feeding=False, bridge=False)
    dec = AttentionDecoder(cfg, 5, 4).double()
    mask = torch.tensor([[True, True, True], [True, False, False]])
    tgt_in = torch.tensor([[2, 3, 4], [2, 1, 3]])  # no pad id: its embedding gets no gradient
    names = [n for n, _ in dec.named_parameters()]

    def fn(memory, h0, c0, *params):
        enc = EncoderOut(memory=memory, mask=mask, hidden=h0)
        state = dec.init_state(enc)
        state = replace(state, hidden=h0, cell=c0 if rnn == "lstm" else None)
        return torch.func.functional_call(dec, dict(zip(names, params, strict=True)),
                                          (tgt_in, state))

    memory = (torch.randn(2, 3, 4, dtype=torch.float64) * mask[..., None]).requires_grad_()
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in dec.parameters()]
    assert torch.autograd.gradcheck(fn, (memory, h0, c0, *params))


@pytest.mark.parametrize("feeding,tie,embed", [(True, False, 8), (False, False, 8),
                                               (False, True, 6), (True, True, 8)])
def test_loss_pass_equals_the_loss_of_the_logits(feeding: bool, tie: bool, embed: int) -> None:
    """``model(..., tgt_out)`` (output layer at real rows only, fused with the loss) gives the
    loss and the gradients of every parameter that the (B, T, V) logits give."""
    torch.manual_seed(0)
    cfg = _cfg(input_feeding=feeding, tie_embeddings=tie, embed_dim=embed, dropout=0.0)
    model = Seq2Seq(cfg, 20, 15)
    src, src_len, tgt_in = _batch()
    tgt_out = torch.tensor([[5, 6, 7, 8, 3], [9, 3, 0, 0, 0], [4, 5, 6, 3, 0]])
    out = model(src, src_len, tgt_in, tgt_out, 0.1)
    ref = label_smoothed_cross_entropy(model(src, src_len, tgt_in), tgt_out, 0.1)
    torch.testing.assert_close(out.loss, ref.loss)
    torch.testing.assert_close(out.nll, ref.nll)
    assert out.ntokens == ref.ntokens == 11
    params = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad(out.loss, params)
    want = torch.autograd.grad(ref.loss, params)
    for (name, _), a, e in zip(model.named_parameters(), got, want, strict=True):
        torch.testing.assert_close(a, e, msg=name)
