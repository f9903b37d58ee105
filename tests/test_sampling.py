"""Tests for seq2seq.search.sampling with a scripted decoder: seeded and batch-invariant,
top-k/top-p truncation, and empirical frequencies that match the tempered distribution."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from scripted import B_, A, C, D, ScriptedModel

from seq2seq.config import SearchConfig
from seq2seq.search import search
from seq2seq.search.sampling import sample_tokens, uniforms
from seq2seq.tokenizer import EOS_ID

FIRST = {A: .5, B_: .3, C: .15, EOS_ID: .05}


def table(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
    if not prefix:
        return FIRST
    if len(prefix) < 3:
        return {A: .4, C: .3, D: .2, EOS_ID: .1}
    return {EOS_ID: 1.0}


def cfg(**kw) -> SearchConfig:
    base = dict(sampling=True, n_best=4, length_penalty="none", min_len=0, max_len_a=0.0,
                max_len_b=10, seed=7)
    base.update(kw)
    return SearchConfig(**base)


def src_of(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in ids)
    src = torch.zeros(len(ids), width, dtype=torch.long)
    for i, r in enumerate(ids):
        src[i, :len(r)] = torch.tensor(r)
    return src, torch.tensor([len(r) for r in ids])


def draws(out) -> list[list[tuple[int, ...]]]:
    return [[tuple(h.tokens) for h in hyps] for hyps in out]


def test_same_seed_same_samples_and_batch_invariance() -> None:
    src, lens = src_of([[1, 1, 1], [2, 2], [3]])
    a = search(ScriptedModel(table), src, lens, cfg())
    b = search(ScriptedModel(table), src, lens, cfg())
    assert draws(a) == draws(b) and [len(h) for h in a] == [4, 4, 4]
    other = search(ScriptedModel(table), src, lens, cfg(seed=8))
    assert draws(other) != draws(a)
    for i in range(3):  # alone, unpadded, or in another batch order: the same samples
        alone = search(ScriptedModel(table), src[i:i + 1, :int(lens[i])], lens[i:i + 1], cfg())
        assert draws(alone)[0] == draws(a)[i]
    flipped = search(ScriptedModel(table), src.flip(0), lens.flip(0), cfg())
    assert draws(flipped)[::-1] == draws(a)
    for hyps in a:  # scores: the model's own log-probs, best first
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            probs = [FIRST] + [table(1, (0,) * k) for k in range(1, len(h.tokens) + 1)]
            toks = [*h.tokens, EOS_ID]
            assert h.log_prob == pytest.approx(
                sum(math.log(p[t]) for p, t in zip(probs, toks, strict=True)), abs=1e-5)


def first_tokens(n: int, **kw) -> Counter:
    src, lens = src_of([[1, 1]])
    out = search(ScriptedModel(lambda sid, p: FIRST if not p else {EOS_ID: 1.0}), src, lens,
                 cfg(n_best=n, **kw))
    return Counter(h.tokens[0] if h.tokens else EOS_ID for h in out[0])


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_frequencies_match_the_tempered_distribution(temperature: float) -> None:
    n = 4000
    counts = first_tokens(n, temperature=temperature)
    weights = {t: p ** (1 / temperature) for t, p in FIRST.items()}
    total = sum(weights.values())
    for tok, w in weights.items():
        q = w / total
        sigma = math.sqrt(q * (1 - q) / n)
        assert abs(counts[tok] / n - q) < 4 * sigma + 1e-3, (tok, counts, q)


def test_top_k_and_top_p_truncate() -> None:
    counts = first_tokens(2000, top_k=2)
    assert set(counts) == {A, B_}  # never outside the 2 best
    assert counts[A] / 2000 == pytest.approx(.5 / .8, abs=0.05)
    counts = first_tokens(2000, top_p=0.7)  # A (.5) and B_ (.3, crosses 0.7) stay
    assert set(counts) == {A, B_}
    counts = first_tokens(2000, top_p=0.5)  # A alone reaches 0.5
    assert set(counts) == {A}


def test_sample_tokens_inverse_cdf_and_uniforms() -> None:
    logp = torch.log(torch.tensor([[.1, .2, .7], [.5, .5, 0.0]]))
    c = SearchConfig(sampling=True)
    for u, expect in ((0.0, [0, 0]), (0.15, [1, 0]), (0.31, [2, 0]), (0.999, [2, 1])):
        assert sample_tokens(logp, torch.tensor([u, u], dtype=torch.float64), c).tolist() == \
            expect
    keys = torch.arange(5000, dtype=torch.long)
    u = uniforms(3, keys, torch.zeros_like(keys), 0)
    assert torch.equal(u, uniforms(3, keys, torch.zeros_like(keys), 0))
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.02 and abs(float(u.var()) - 1 / 12) < 0.005
    assert not torch.equal(u, uniforms(3, keys, torch.ones_like(keys), 0))


def test_bad_sampling_options_name_the_key_when_the_config_is_built() -> None:
    for kw, msg in (({"temperature": 0.0}, r"^search\.temperature must be positive, got 0\.0$"),
                    ({"top_p": 0.0}, r"^search\.top_p must be in \(0, 1\], got 0\.0$"),
                    ({"top_k": -1}, r"^search\.top_k must be >= 0, got -1$")):
        with pytest.raises(ValueError, match=msg):
            SearchConfig(sampling=True, beam_size=1, **kw)
