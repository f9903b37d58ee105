"""Tests for seq2seq.model.attention: masking, normalisation and hand-computed scores."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.model.attention import (
    BahdanauAttention,
    LuongAttention,
    build_attention,
    mask_bias,
)


def _inputs(N: int = 3, S: int = 5, Hq: int = 4, M: int = 6):
    g = torch.Generator().manual_seed(0)
    query = torch.randn(N, Hq, generator=g)  # (N, Hq)
    memory = torch.randn(N, S, M, generator=g)  # (N, S, M)
    lengths = torch.tensor([5, 3, 1])[:N]
    mask = torch.arange(S)[None] < lengths[:, None]  # (N, S)
    return query, memory, mask


def test_mask_bias_values() -> None:
    mask = torch.tensor([[True, True, False], [True, False, False]])
    bias = mask_bias(mask)
    assert bias.dtype == torch.float32
    assert torch.equal(bias[mask], torch.zeros(3))
    assert torch.isneginf(bias[~mask]).all()


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
def test_padding_gets_exactly_zero_weight_and_rows_sum_to_one(kind: str) -> None:
    torch.manual_seed(0)
    query, memory, mask = _inputs()
    att = build_attention(kind, 4, 6)
    keys = att.precompute_keys(memory)
    # large scores elsewhere must not leak any weight into padding
    context, w = att(query * 10, keys, memory, mask_bias(mask))
    assert w.shape == (3, 5) and context.shape == (3, 6)
    assert (w[~mask] == 0).all()
    assert (w[mask] > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    assert torch.equal(w[2], torch.tensor([1.0, 0, 0, 0, 0]))
    # context is the weighted sum of the memory
    torch.testing.assert_close(context, torch.einsum("ns,nsm->nm", w, memory))


def test_bahdanau_scores_match_hand_computation() -> None:
    torch.manual_seed(1)
    query, memory, mask = _inputs()
    att = BahdanauAttention(4, 6, 3)
    keys = att.precompute_keys(memory)
    scores = att.scores(query, keys)  # (N, S)
    Wq, bq = att.query_proj.weight, att.query_proj.bias
    Wk, v = att.key_proj.weight, att.v.weight[0]
    expected = torch.empty(3, 5)
    for n in range(3):
        for s in range(5):
            hid = [
                torch.tanh(sum(Wq[a, j] * query[n, j] for j in range(4)) + bq[a]
                           + sum(Wk[a, j] * memory[n, s, j] for j in range(6)))
                for a in range(3)
            ]
            expected[n, s] = sum(v[a] * hid[a] for a in range(3))
    torch.testing.assert_close(scores, expected)
    _, w = att(query, keys, memory, mask_bias(mask))
    e = expected.masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(w, torch.softmax(e, -1))


def test_luong_general_scores_match_hand_computation() -> None:
    torch.manual_seed(2)
    query, memory, _ = _inputs()
    att = LuongAttention(4, 6, "general")
    W = att.key_proj.weight  # (Hq, M)
    scores = att.scores(query, att.precompute_keys(memory))
    expected = torch.empty(3, 5)
    for n in range(3):
        for s in range(5):
            expected[n, s] = sum(query[n, i] * W[i, j] * memory[n, s, j]
                                 for i in range(4) for j in range(6))
    torch.testing.assert_close(scores, expected)


def test_luong_dot_is_plain_dot_product_when_sizes_match() -> None:
    query, memory, _ = _inputs(M=4)
    att = LuongAttention(4, 4, "dot")
    assert att.key_proj is None and len(list(att.parameters())) == 0
    keys = att.precompute_keys(memory)
    assert keys is memory
    expected = torch.tensor([[float(query[n] @ memory[n, s]) for s in range(5)]
                             for n in range(3)])
    torch.testing.assert_close(att.scores(query, keys), expected)


def test_luong_dot_projects_keys_when_sizes_differ() -> None:
    query, memory, _ = _inputs()
    att = LuongAttention(4, 6, "dot")
    assert att.key_proj is not None and att.key_proj.weight.shape == (4, 6)
    keys = att.precompute_keys(memory)
    torch.testing.assert_close(att.scores(query, keys),
                               torch.einsum("nh,nsm,hm->ns", query, memory, att.key_proj.weight))


def test_unknown_attention_raises() -> None:
    with pytest.raises(ValueError, match=r"model\.attention must be one of \['bahdanau', "):
        ModelConfig(attention="concat")
    with pytest.raises(ValueError, match="AttentionType"):
        build_attention("concat", 4, 4)
    with pytest.raises(ValueError, match="dot"):
        LuongAttention(4, 4, "mlp")


def test_additive_score_backward_passes_gradcheck() -> None:
    from seq2seq.model.attention import _AdditiveScore

    g = torch.Generator().manual_seed(3)
    q = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_AdditiveScore.apply, (q, keys, v))


def test_deferred_context_gradients_equal_plain_bmm() -> None:
    from seq2seq.model.attention import DeferredContext

    g = torch.Generator().manual_seed(4)
    memory = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ws = [torch.softmax(torch.randn(3, 5, generator=g, dtype=torch.float64), -1)
          .requires_grad_() for _ in range(4)]

    def grads(deferred: bool) -> list[torch.Tensor]:
        m = memory * 2.0
        fn = DeferredContext(m) if deferred else None
        total = 0.0
        for t, w in enumerate(ws[:-1]):
            c = fn(w) if deferred else torch.bmm(w.unsqueeze(1), m).squeeze(1)
            total = total + torch.sin(c * (t + 1)).sum()
        if deferred:
            fn(ws[-1])  # a step whose context gets no gradient
        return list(torch.autograd.grad(total, [memory, *ws[:-1]]))

    for a, b in zip(grads(True), grads(False), strict=True):
        torch.testing.assert_close(a, b)


def test_length_chunks_split_rows_and_trim_to_each_runs_longest_source(monkeypatch) -> None:
    from seq2seq.model import attention as attention_mod
    from seq2seq.model.attention import length_chunks

    monkeypatch.setattr(attention_mod, "CHUNK_ELEMENTS", 2 * 5 * 6 * 4)  # two rows of 5x6x4
    # 5 rows, longest 6: two rows per run -> 3 runs, balanced to 2, 2, 1
    assert length_chunks([6, 5, 4, 4, 2], group=5, width=4) == [(0, 2, 6), (2, 4, 4), (4, 5, 2)]
    # unsorted rows: each run still trims to its own longest
    assert length_chunks([2, 6, 3, 1], group=5, width=4) == [(0, 2, 6), (2, 4, 3)]
    # all rows fit in one run and none is shorter than the batch: nothing to gain
    monkeypatch.setattr(attention_mod, "CHUNK_ELEMENTS", 1 << 20)
    assert length_chunks([6, 6, 6], group=5, width=4) is None
    assert length_chunks([6, 3, 6], group=5, width=4) == [(0, 3, 6)]
    assert length_chunks([], group=5, width=4) is None


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
@pytest.mark.parametrize("group", [1, 3])
def test_attention_trimmed_to_lengths_equals_the_padded_computation(
        kind: str, group: int, monkeypatch) -> None:
    from seq2seq.model import attention as attention_mod

    g = torch.Generator().manual_seed(5)
    lengths = [3, 7, 2, 5, 1]
    B, S, M = len(lengths), 9, 6  # two positions of padding beyond the longest source
    memory = torch.randn(B, S, M, generator=g)  # (B, S, M)
    mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]  # (B, S)
    memory = memory * mask[..., None]
    query = torch.randn(B * group, 4, generator=g)  # (N, Hq)
    att = build_attention(kind, 4, M)
    keys = att.precompute_keys(memory)
    bias = mask_bias(mask)
    monkeypatch.setattr(attention_mod, "CHUNK_ELEMENTS", 2 * group * S * att.energy_width)
    with torch.no_grad():
        ref_c, ref_w = att(query, keys, memory, bias, group=group)
        c, w = att(query, keys, memory, bias, group=group, lengths=lengths)
    torch.testing.assert_close(c, ref_c)
    torch.testing.assert_close(w, ref_w)
    rows_mask = mask.repeat_interleave(group, dim=0)  # (N, S)
    assert (w[~rows_mask] == 0).all() and (w[rows_mask] > 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(B * group))
    # with autograd on, lengths are ignored and gradients flow as before
    q = query.clone().requires_grad_()
    c_grad, _ = att(q, keys, memory, bias, group=group, lengths=lengths)
    c_grad.sum().backward()
    torch.testing.assert_close(c_grad.detach(), ref_c)
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_grouped_additive_score_passes_gradcheck_and_equals_repeated_rows() -> None:
    """``g`` queries per keys row (a teacher-forced target without input feeding) == the
    keys repeated ``g`` times, values and gradients."""
    from seq2seq.model.attention import _AdditiveScore

    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)  # (B, g, A)
    keys = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_AdditiveScore.apply, (q, keys, v))
    grouped = _AdditiveScore.apply(q, keys, v)  # (B, g, S)
    flat = _AdditiveScore.apply(q.reshape(6, 4), keys.repeat_interleave(3, 0), v)  # (B*g, S)
    torch.testing.assert_close(grouped.reshape(6, 5), flat, rtol=0, atol=1e-12)
    w = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    ga = torch.autograd.grad((grouped * w).sum(), (q, keys, v))
    gb = torch.autograd.grad((flat * w.reshape(6, 5)).sum(), (q, keys, v))
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
