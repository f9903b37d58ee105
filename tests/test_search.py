"""Tests for seq2seq.search: hand-checked scripted cases, a reference search, model properties."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
import torch
from scripted import B_, NEG_INF, A, C, D, ScriptedModel, ScriptedState, Table, V  # noqa: F401

from seq2seq.config import ModelConfig, SearchConfig
from seq2seq.search import beam_search, greedy_search, normalise, search
from seq2seq.search.beam import Finished
from seq2seq.search.history import History
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


def one(sid: int = 1, src_len: int = 3, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-sentence source batch (first token = sentence id), padded to ``width``."""
    width = width or src_len
    src = torch.full((1, width), PAD_ID, dtype=torch.long)
    src[0, :src_len] = sid
    return src, torch.tensor([src_len])


def cfg_(**kw) -> SearchConfig:
    base = dict(beam_size=2, n_best=2, length_penalty="none", min_len=0, max_len_a=0.0,
                max_len_b=10)
    base.update(kw)
    return SearchConfig(**base)


def got(hyps) -> list[tuple[list[int], float]]:
    return [(h.tokens, h.log_prob) for h in hyps]


def check(out, expected: list[tuple[list[int], float, float]]) -> None:
    """One-sentence search result vs ``expected`` = [(tokens, raw log-prob, score)] best-first.

    Tokens must match exactly; log-probs and scores up to float32 rounding.
    """
    assert len(out) == 1
    hyps = out[0]
    assert [h.tokens for h in hyps] == [e[0] for e in expected], got(hyps)
    for h, (_, lp, score) in zip(hyps, expected, strict=True):
        assert h.log_prob == pytest.approx(lp, abs=1e-5)
        assert h.score == pytest.approx(score, abs=1e-5)


log = math.log

# ---------------------------------------------------------------------------- hand-checked cases
BEAM_BEATS_GREEDY = {
    (): {A: .5, B_: .4, EOS_ID: .1},
    (A,): {C: .4, D: .35, EOS_ID: .25},
    (B_,): {C: .9, EOS_ID: .1},
    (A, D): {EOS_ID: .6, C: .4},
}


def test_beam_finds_better_hypothesis_than_greedy() -> None:
    # greedy: a c </s> = .5*.4; beam 2 keeps b (0.4) whose continuation c (.9) wins: .36
    src, n = one()
    check(beam_search(ScriptedModel(BEAM_BEATS_GREEDY), src, n, cfg_()),
          [([B_, C], log(.36), log(.36)), ([A, C], log(.2), log(.2))])
    check(greedy_search(ScriptedModel(BEAM_BEATS_GREEDY), src, n, cfg_()),
          [([A, C], log(.2), log(.2))])


def test_n_best_order_and_finished_set_replacement() -> None:
    # beam 3: the empty hypothesis (.1) is finished at step 0 (rank 3), then pushed out by
    # b c (.36), a c (.2) and a d (.5*.35*.6 = .105), all finished at step 2; a d c (.07) can't beat.
    src, n = one()
    check(beam_search(ScriptedModel(BEAM_BEATS_GREEDY), src, n, cfg_(beam_size=3, n_best=3)),
          [([B_, C], log(.36), log(.36)), ([A, C], log(.2), log(.2)),
           ([A, D], log(.105), log(.105))])


EARLY_EOS = {
    (): {A: .6, EOS_ID: .3, B_: .1},
    (A,): {C: .5, EOS_ID: .4, D: .1},
    (B_,): {EOS_ID: .9, C: .1},
    (A, C): {EOS_ID: .6, D: .4},
}


def test_early_eos_is_kept_and_not_extended() -> None:
    # step 0: </s> (.3) ranks 2nd -> finished; step 1: a </s> (.24) finished, live a c (.3) may
    # still win; step 2: a c </s> (.18) < .24, live a c d (.12) cannot beat .24 -> stop.
    src, n = one()
    model = ScriptedModel(EARLY_EOS)
    check(beam_search(model, src, n, cfg_()), [([], log(.3), log(.3)), ([A], log(.24), log(.24))])
    # the first step runs one row per sentence (all slots hold the same BOS prefix), then
    # 2 steps of (1 sentence x beam 2), then stop
    assert model.rows == [1, 2, 2]
    # min_len=1 masks </s> at step 0: a </s> (.24) and a c </s> (.18) win
    check(beam_search(ScriptedModel(EARLY_EOS), src, n, cfg_(min_len=1)),
          [([A], log(.24), log(.24)), ([A, C], log(.18), log(.18))])


LENGTH = {
    (): {EOS_ID: .4, A: .35, B_: .25},
    (A,): {C: .9, EOS_ID: .1},
    (B_,): {EOS_ID: .8, C: .2},
    (A, C): {EOS_ID: .95, D: .05},
}


@pytest.mark.parametrize("penalty, alpha, expected", [
    # raw: the empty output (.4) beats a c (.35*.9*.95 = .29925)
    ("none", 1.0, [([], log(.4), log(.4)), ([A, C], log(.29925), log(.29925))]),
    # average over L = tokens + 1: a c -> log(.29925)/3 beats b -> log(.2)/2
    ("average", 1.0, [([A, C], log(.29925), log(.29925) / 3), ([B_], log(.2), log(.2) / 2)]),
    # GNMT ((5+L)/6)^1: a c -> log(.29925)/(8/6) narrowly beats the empty output log(.4)/1
    ("gnmt", 1.0, [([A, C], log(.29925), log(.29925) / (8 / 6)), ([], log(.4), log(.4))]),
])
def test_length_penalty_changes_the_winner(penalty: str, alpha: float, expected: list) -> None:
    src, n = one()
    check(beam_search(ScriptedModel(LENGTH), src, n, cfg_(length_penalty=penalty, alpha=alpha)),
          expected)


def always_a(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
    return {A: .9, EOS_ID: .1}


def test_max_length_cut_off_forces_eos_with_its_log_prob() -> None:
    # max_len = floor(1 * src_len 2 + 1) = 3 from the TRUE source length (padding to 7 ignored);
    # with averaging the longest allowed hypothesis wins: a a a </s> = .9^3 * .1 over L = 4
    src, n = one(src_len=2, width=7)
    cfg = cfg_(length_penalty="average", max_len_a=1.0, max_len_b=1)
    lp3, lp2 = log(.9 ** 3 * .1), log(.9 ** 2 * .1)
    check(beam_search(ScriptedModel(always_a), src, n, cfg),
          [([A, A, A], lp3, lp3 / 4), ([A, A], lp2, lp2 / 3)])
    check(greedy_search(ScriptedModel(always_a), src, n, cfg), [([A, A, A], lp3, lp3 / 4)])
    # max_len 0: only </s> is possible
    check(greedy_search(ScriptedModel(always_a), src, n, replace(cfg, max_len_a=0.0, max_len_b=0)),
          [([], log(.1), log(.1))])


def alternating(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
    if not prefix:
        return {A: .6, B_: .4}
    return {B_: .7, A: .2, EOS_ID: .1} if prefix[-1] == A else {A: .7, EOS_ID: .3}


def test_no_repeat_ngram_blocking() -> None:
    src, n = one()
    cfg = cfg_(beam_size=1, n_best=1, max_len_b=5)
    # without blocking: a b a b a, then </s> forced at max length 5
    lp = log(.6 * .7 ** 4 * .1)
    check(search(ScriptedModel(alternating), src, n, cfg), [([A, B_, A, B_, A], lp, lp)])
    # bigram blocking: after a b a, "b" would repeat (a, b); then "a" would repeat (a, a)
    lp = log(.6 * .7 * .7 * .2 * .1)
    check(search(ScriptedModel(alternating), src, n, replace(cfg, no_repeat_ngram_size=2)),
          [([A, B_, A, A], lp, lp)])
    # unigram blocking: a b, then both are used up -> </s> (.3)
    check(search(ScriptedModel(alternating), src, n, replace(cfg, no_repeat_ngram_size=1)),
          [([A, B_], log(.6 * .7 * .3), log(.6 * .7 * .3))])
    # beam 2 without blocking prefers b a b a b </s> (.4 * .7^4 * .3); with trigram blocking the
    # 5th token of b a b a b / a b a b a repeats a trigram: a b a b </s> (.6 * .7^3 * .3) wins
    cfg = replace(cfg, beam_size=2)
    lp = log(.4 * .7 ** 4 * .3)
    check(search(ScriptedModel(alternating), src, n, cfg), [([B_, A, B_, A, B_], lp, lp)])
    check(search(ScriptedModel(alternating), src, n, replace(cfg, no_repeat_ngram_size=3)),
          [([A, B_, A, B_], log(.6 * .7 ** 3 * .3), log(.6 * .7 ** 3 * .3))])


def test_ties_break_to_lower_index() -> None:
    tie = {(): {B_: .4, A: .4, EOS_ID: .2}, (A,): {EOS_ID: 1.0}, (B_,): {EOS_ID: 1.0}}
    src, n = one()
    assert greedy_search(ScriptedModel(tie), src, n, cfg_())[0][0].tokens == [A]
    assert [h.tokens for h in beam_search(ScriptedModel(tie), src, n, cfg_())[0]] == [[A], [B_]]
    # </s> (id 3) ties with a (id 4): the lower id wins in greedy and beam 1
    eos_tie = {(): {A: .5, EOS_ID: .5}}
    for fn in (greedy_search, beam_search):
        assert fn(ScriptedModel(eos_tie), src, n, cfg_(beam_size=1, n_best=1))[0][0].tokens == []


def test_alignment_rows_are_trimmed_to_the_real_source() -> None:
    src, n = one(src_len=2, width=6)
    cfg = cfg_(return_alignment=True, length_penalty="average", max_len_a=1.0, max_len_b=1)
    for fn in (greedy_search, beam_search):
        hyp = fn(ScriptedModel(always_a), src, n, cfg)[0][0]
        assert hyp.tokens == [A, A, A]
        # one-hot at position step % src_len, one row per token plus the </s> step
        assert torch.equal(hyp.alignment, torch.tensor([[1., 0.], [0., 1.], [1., 0.], [0., 1.]]))


def test_finished_sentences_leave_the_batch() -> None:
    table = {1: {(): {EOS_ID: 1.0}}, 2: {(): {A: 1.0}, (A,): {A: 1.0}, (A, A): {EOS_ID: 1.0}}}
    model = ScriptedModel(lambda sid, p: table[sid].get(p, {}))
    src = torch.tensor([[1, 1, 1], [2, 2, 0]])
    out = greedy_search(model, src, torch.tensor([3, 2]), cfg_())
    assert [h[0].tokens for h in out] == [[], [A, A]]
    assert model.rows == [2, 1, 1]
    model.rows.clear()
    out = beam_search(model, src, torch.tensor([3, 2]), cfg_(n_best=1))
    assert [h[0].tokens for h in out] == [[], [A, A]]
    # step 0 runs one row per sentence; sentence 1 is done after it (nothing else is possible)
    assert model.rows == [2, 2, 2]


def test_bad_config_names_the_key() -> None:
    src, n = one()
    for kw, key in [(dict(beam_size=0), "beam_size"), (dict(n_best=3), "n_best"),
                    (dict(length_penalty="gnm"), "length_penalty"), (dict(min_len=-1), "min_len")]:
        with pytest.raises(ValueError, match=key):
            search(ScriptedModel(BEAM_BEATS_GREEDY), src, n, cfg_(**kw))


# ---------------------------------------------------------------------------- reference search
def reference(table: Table, sid: int, src_len: int, cfg: SearchConfig) -> list[tuple[list[int], float]]:
    """Plain per-hypothesis beam search written straight from the module docstring."""
    max_len = max(0, math.floor(cfg.max_len_a * src_len + cfg.max_len_b))
    min_len, K, n = min(cfg.min_len, max_len), cfg.beam_size, cfg.no_repeat_ngram_size
    f32 = torch.float32
    live: list[tuple[list[int], torch.Tensor]] = [([], torch.tensor(0.0, dtype=f32))]
    finished: list[tuple[float, list[int], float]] = []
    for t in range(max_len + 1):
        cands = []
        for slot, (toks, cum) in enumerate(live):
            probs = table(sid, tuple(toks))
            for tok in range(V):
                p = probs.get(tok, 0.0)
                blocked = (tok == EOS_ID and t < min_len) or (tok != EOS_ID and t >= max_len)
                if n and tok != EOS_ID and t >= n:
                    gram = toks[t - n + 1:] + [tok]  # the n-gram this token would complete
                    blocked |= any(toks[j:j + n] == gram for j in range(t - n + 1))
                if p > 0 and not blocked:
                    cands.append((cum + torch.tensor(math.log(p), dtype=f32), slot * V + tok, toks, tok))
        cands.sort(key=lambda c: (-float(c[0]), c[1]))
        top = cands[:2 * K]
        ranked = {c[1] // V for c in top[:K] if c[3] == EOS_ID}  # parent slots
        for slot in range(len(live)):  # + EOS as the parent's own first-best token
            own = [c for c in cands if c[1] // V == slot]
            if own and min(own, key=lambda c: (-float(c[0]), c[3]))[3] == EOS_ID:
                ranked.add(slot)
        for c in sorted(cands, key=lambda c: c[1]):  # in parent slot order
            if c[3] == EOS_ID and c[1] // V in ranked:
                finished.append((float(normalise(c[0], t + 1, cfg)), c[2], float(c[0])))
        finished = sorted(finished, key=lambda f: -f[0])[:K]
        live = [(c[2] + [c[3]], c[0]) for c in top if c[3] != EOS_ID][:K]
        if not live or (len(finished) == K
                        and float(normalise(live[0][1], t + 1, cfg)) <= finished[-1][0]):
            break
    return [(f[1], f[0]) for f in finished[:cfg.n_best]]


def random_table(seed: int) -> Table:
    def table(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
        rng = random.Random(hash((seed, sid, prefix)))
        w = [rng.random() ** 2 for _ in range(V)]
        w[PAD_ID] = w[BOS_ID] = 0.0
        w[EOS_ID] *= 0.5 + len(prefix) / 3
        s = sum(w)
        return {i: x / s for i, x in enumerate(w) if x > 0}
    return table


@pytest.mark.parametrize("seed", range(6))
def test_batched_search_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(seed)
    lens = [rng.randint(1, 6) for _ in range(5)]
    src = torch.zeros(5, 8, dtype=torch.long)
    for i, n in enumerate(lens):
        src[i, :n] = i + 1
    src_len = torch.tensor(lens)
    for cfg in [cfg_(beam_size=3, n_best=3, max_len_a=1.0, max_len_b=1),
                cfg_(beam_size=4, n_best=2, length_penalty="gnmt", alpha=0.7, min_len=2,
                     max_len_a=0.5, max_len_b=3),
                cfg_(beam_size=2, n_best=2, length_penalty="average", no_repeat_ngram_size=2,
                     max_len_b=6),
                cfg_(beam_size=1, n_best=1, length_penalty="gnmt", min_len=1, max_len_b=4)]:
        out = beam_search(ScriptedModel(table), src, src_len, cfg)
        for i in range(5):
            ref = reference(table, i + 1, lens[i], cfg)
            assert [h.tokens for h in out[i]] == [r[0] for r in ref], (cfg, i)
            assert [h.score for h in out[i]] == pytest.approx([r[1] for r in ref], abs=1e-6)


# ---------------------------------------------------------------------------- real model
@pytest.fixture(scope="module")
def model_and_batch():
    """A small random Seq2Seq with </s> made likely enough to end at different lengths."""
    from seq2seq.model.seq2seq import Seq2Seq

    torch.manual_seed(0)
    cfg = ModelConfig(rnn="gru", embed_dim=24, hidden_size=24, dropout=0.0, attention="bahdanau",
                      input_feeding=True)
    model = Seq2Seq(cfg, 40, 30).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] += 2.5
    g = torch.Generator().manual_seed(1)
    lens = [7, 3, 9, 1, 5, 2]
    src = torch.zeros(len(lens), 9, dtype=torch.long)
    for i, n in enumerate(lens):
        src[i, :n] = torch.randint(4, 40, (n,), generator=g)
    return model, src, torch.tensor(lens)


MODEL_CFGS = [
    SearchConfig(beam_size=5, n_best=3, length_penalty="gnmt", return_alignment=True,
                 max_len_a=1.0, max_len_b=5),
    SearchConfig(beam_size=4, n_best=2, length_penalty="average", no_repeat_ngram_size=2,
                 max_len_a=1.0, max_len_b=5),
    SearchConfig(beam_size=3, n_best=3, length_penalty="none", min_len=2, max_len_b=8),
    SearchConfig(beam_size=1, n_best=1, length_penalty="gnmt", return_alignment=True),
]


def same(a: list, b: list) -> None:
    """Identical tokens, scores and alignments up to float tolerance."""
    assert [[h.tokens for h in x] for x in a] == [[h.tokens for h in x] for x in b]
    for x, y in zip(a, b, strict=True):
        assert [h.score for h in x] == pytest.approx([h.score for h in y], abs=1e-5)
        for h, k in zip(x, y, strict=True):
            if h.alignment is not None:
                assert torch.allclose(h.alignment, k.alignment, atol=1e-5)


@pytest.mark.parametrize("cfg", MODEL_CFGS, ids=lambda c: f"beam{c.beam_size}-{c.length_penalty}")
def test_batch_invariance(model_and_batch, cfg: SearchConfig) -> None:
    model, src, src_len = model_and_batch
    full = search(model, src, src_len, cfg)
    lengths = {len(h[0].tokens) for h in full}
    assert len(lengths) >= 3, f"hypotheses should end at different lengths, got {lengths}"
    alone = [search(model, src[i:i + 1, :int(n)], src_len[i:i + 1], cfg)[0]
             for i, n in enumerate(src_len)]
    same(full, alone)
    perm = torch.randperm(len(src_len), generator=torch.Generator().manual_seed(3))
    shuffled = search(model, src[perm], src_len[perm], cfg)
    same([full[i] for i in perm.tolist()], shuffled)
    padded = search(model, torch.cat([src, torch.zeros(len(src_len), 5, dtype=torch.long)], 1),
                    src_len, cfg)
    same(full, padded)
    split = search(model, src[:2], src_len[:2], cfg) + search(model, src[2:], src_len[2:], cfg)
    same(full, split)
    if cfg.return_alignment:
        for i, hyps in enumerate(full):
            for h in hyps:
                assert h.alignment.shape == (len(h.tokens) + 1, int(src_len[i]))
                assert torch.allclose(h.alignment.sum(1), torch.ones(len(h.tokens) + 1), atol=1e-5)


@pytest.mark.parametrize("cfg", MODEL_CFGS[::3], ids=lambda c: f"beam{c.beam_size}")
def test_length_trimmed_attention_runs_change_nothing(model_and_batch, cfg: SearchConfig,
                                                      monkeypatch) -> None:
    from seq2seq.model import attention as attention_mod

    model, src, src_len = model_and_batch
    monkeypatch.setattr(attention_mod, "length_chunks", lambda *a: None)  # padded everywhere
    plain = search(model, src, src_len, cfg)
    monkeypatch.undo()
    # two sentences per run: the longest-first order puts lengths (9, 7), (5, 3), (2, 1) together
    width = cfg.beam_size * int(src_len.max()) * model.decoder.attention.energy_width
    monkeypatch.setattr(attention_mod, "CHUNK_ELEMENTS", 2 * width)
    runs = attention_mod.length_chunks(sorted(src_len.tolist(), reverse=True), cfg.beam_size,
                                       model.decoder.attention.energy_width)
    assert runs == [(0, 2, 9), (2, 4, 5), (4, 6, 2)]
    calls = []
    chunked = attention_mod._Attention._chunked

    def spy(self, *args):
        calls.append(args[-1])
        return chunked(self, *args)

    monkeypatch.setattr(attention_mod._Attention, "_chunked", spy)
    trimmed = search(model, src, src_len, cfg)
    assert runs in calls  # the steps ran in trimmed runs of two sentences
    same(plain, trimmed)
    alone = [search(model, src[i:i + 1, :int(n)], src_len[i:i + 1], cfg)[0]
             for i, n in enumerate(src_len)]
    same(trimmed, alone)


@pytest.mark.parametrize("penalty", ["gnmt", "average", "none"])
def test_beam_one_is_exactly_greedy(model_and_batch, penalty: str) -> None:
    model, src, src_len = model_and_batch
    cfg = SearchConfig(beam_size=1, n_best=1, length_penalty=penalty, return_alignment=True,
                       min_len=1, no_repeat_ngram_size=3)
    greedy = greedy_search(model, src, src_len, cfg)
    beam1 = beam_search(model, src, src_len, cfg)
    for g, b in zip(greedy, beam1, strict=True):
        assert (g[0].tokens, g[0].score, g[0].log_prob) == (b[0].tokens, b[0].score, b[0].log_prob)
        assert torch.equal(g[0].alignment, b[0].alignment)


@pytest.mark.slow
def test_beam_scores_at_least_greedy_on_trained_model(tiny_bundle, tiny_corpus) -> None:
    """Beam 5 vs greedy on the briefly trained tiny model (dev + test sentences).

    No beam search guarantees a better score on every sentence (pruning can drop the greedy
    prefix), so this asserts it on nearly all of them and on average.
    """
    from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
    from seq2seq.data import pad_sequences, read_lines
    from seq2seq.model import build_model

    bundle = load_bundle(tiny_bundle)
    model = build_model(bundle, "cpu")
    src_tok, _ = tokenizers_from_bundle(bundle)
    lines = read_lines(tiny_corpus["src_dev"]) + read_lines(tiny_corpus["src_test"])
    src, src_len = pad_sequences([src_tok.encode(x)[:30] for x in lines])
    for penalty in ("gnmt", "none"):
        cfg = SearchConfig(beam_size=1, length_penalty=penalty, max_len_a=1.0, max_len_b=10)
        greedy = [h[0].score for h in search(model, src, src_len, cfg)]
        assert greedy == [h[0].score for h in beam_search(model, src, src_len, cfg)]
        beam = [h[0].score for h in search(model, src, src_len, replace(cfg, beam_size=5))]
        at_least = sum(b >= g - 1e-6 for b, g in zip(beam, greedy, strict=True))
        assert at_least >= 0.9 * len(lines), (penalty, at_least, len(lines))
        assert sum(beam) > sum(greedy) + 0.1 * len(lines)


def test_search_restores_training_mode(model_and_batch) -> None:
    model, src, src_len = model_and_batch
    model.train()
    try:
        out = search(model, src[:2], src_len[:2], SearchConfig(beam_size=2, max_len_b=3))
        assert model.training
        # dropout is 0, so the eval-mode result must equal the one taken while "training"
        model.eval()
        same(out, search(model, src[:2], src_len[:2], SearchConfig(beam_size=2, max_len_b=3)))
    finally:
        model.eval()


# ---------------------------------------------------------------------------- target prefixes
PREFIX_TABLE = {
    (): {A: .6, B_: .3, EOS_ID: .1},
    (A,): {C: .7, EOS_ID: .3},
    (B_,): {D: .5, C: .3, EOS_ID: .2},
    (B_, D): {A: .6, EOS_ID: .4},
    (B_, D, A): {EOS_ID: 1.0},
    (B_, C): {EOS_ID: .9, A: .1},
    (A, C): {EOS_ID: 1.0},
}


@pytest.mark.parametrize("beam", [1, 2, 3])
def test_prefix_is_forced_then_search_continues(beam: int) -> None:
    """Prefix (B_,): its own log-prob counts, the unlikely branch is taken, the beam widens
    after it; a prefix longer than the maximum length extends it."""
    src, n = one()
    out = search(ScriptedModel(PREFIX_TABLE), src, n, cfg_(beam_size=beam, n_best=1),
                 prefixes=[[B_]])
    # after B_ (.3): B_ D A </s> = .3*.5*.6 = .09 beats B_ </s> (.06) and B_ C </s> (.081)
    check(out, [([B_, D, A], log(.3 * .5 * .6 * 1.0), log(.3 * .5 * .6))])
    long = search(ScriptedModel(PREFIX_TABLE), src, n,
                  cfg_(beam_size=beam, n_best=1, max_len_b=1), prefixes=[[B_, D, A]])
    check(long, [([B_, D, A], log(.09), log(.09))])


def test_prefixes_of_different_lengths_in_one_batch_are_batch_invariant() -> None:
    def table(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
        return PREFIX_TABLE.get(prefix, {EOS_ID: 1.0})

    src = torch.tensor([[1, 1, 1], [2, 2, 0], [3, 0, 0]])
    lens = torch.tensor([3, 2, 1])
    prefixes = [[B_, C], [], [A]]
    for cfg in (cfg_(beam_size=1, n_best=1), cfg_(beam_size=3, n_best=2)):
        batch = search(ScriptedModel(table), src, lens, cfg, prefixes)
        for i in range(3):
            alone = search(ScriptedModel(table), src[i:i + 1, :int(lens[i])], lens[i:i + 1], cfg,
                           [prefixes[i]])
            assert got(batch[i]) == got(alone[0])
            assert all(h.tokens[:len(prefixes[i])] == prefixes[i] for h in batch[i])
    assert [h.tokens for h in batch[1]] == [[A, C], [A]]  # no prefix: plain beam search


@pytest.mark.parametrize("beam", [1, 3])
def test_per_token_scores_sum_to_the_log_prob(beam: int) -> None:
    src, n = one()
    out = search(ScriptedModel(PREFIX_TABLE), src, n,
                 cfg_(beam_size=beam, n_best=1, return_scores=True))
    (h,) = out[0]
    assert h.tokens == [A, C]
    assert h.token_log_probs == pytest.approx([log(.6), log(.7), log(1.0)], abs=1e-6)
    assert sum(h.token_log_probs) == pytest.approx(h.log_prob, abs=1e-6)
    plain = search(ScriptedModel(PREFIX_TABLE), src, n, cfg_(beam_size=beam, n_best=1))
    assert plain[0][0].token_log_probs is None and got(plain[0]) == got(out[0])


def test_finished_keeps_the_k_best_of_any_number_offered_with_their_tags() -> None:
    """Two slots; three hypotheses offered at t=1 (one not new), then one at t=2 that ties
    the worst kept: the earlier stays. Tags follow their hypotheses."""
    cfg = SearchConfig(length_penalty="none", beam_size=2)
    fin = Finished.empty(1, 2, 4, 3, torch.device("cpu"), cfg, tagged=True)
    hist = History.empty((1, 3), 4, 3, torch.device("cpu"), align=False, scores=False)
    hist.tokens[0, :, 0] = torch.tensor([5, 6, 7])
    fin = fin.offer(torch.tensor([[True, False, True]]), torch.tensor([[-2.0, -0.1, -1.0]]), 1,
                    hist, cfg, torch.tensor([[1, 2, 3]]))
    assert fin.score.tolist() == [[-1.0, -2.0]] and fin.tag.tolist() == [[3, 1]]
    assert fin.hist.tokens[0, :, 0].tolist() == [7, 5] and fin.length.tolist() == [[1, 1]]
    one = History.empty((1, 1), 4, 3, torch.device("cpu"), align=False, scores=False)
    fin = fin.offer(torch.tensor([[True]]), torch.tensor([[-2.0]]), 2, one, cfg,
                    torch.tensor([[9]]))
    assert fin.tag.tolist() == [[3, 1]] and fin.length.tolist() == [[1, 1]]
