"""Tests for seq2seq.search.constrained: hand-worked constrained searches on a scripted decoder,
a property test that met constraints are in the output, batch invariance, routing in search()."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import B_, A, C, D, ScriptedModel, V

from seq2seq.config import SearchConfig
from seq2seq.search import search
from seq2seq.search.constrained import ConstraintTable, constrained_search, fitting
from seq2seq.tokenizer import EOS_ID

E = EOS_ID
TABLE = {
    (): {A: 0.6, C: 0.3, D: 0.1},
    (A,): {B_: 0.7, C: 0.2, E: 0.1},
    (A, B_): {E: 0.8, C: 0.2},
    (A, C): {E: 0.9, B_: 0.1},
    (C,): {A: 0.5, E: 0.5},
    (C, A): {E: 1.0},
    (A, B_, C): {E: 1.0},
}
NONE = dict(length_penalty="none", max_len_a=0.0, max_len_b=3, min_len=0)


def src_of(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(r) for r in rows])
    src = torch.zeros(len(rows), int(lens.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        src[i, :len(r)] = torch.tensor(r)
    return src, lens


def advance(cons: list[tuple[int, ...]], met: int, prog: tuple[int, int] | None,
            tok: int) -> tuple[int, tuple[int, int] | None, int]:
    """One hypothesis' ``(met, (constraint, pos) or None, count)`` after ``tok``."""
    table = ConstraintTable.of([cons], torch.device("cpu"))
    st = table.start((1,), torch.device("cpu"))
    st.met[0] = met
    if prog is not None:
        st.prog[0], st.pos[0] = prog
    nxt = table.advance(torch.zeros(1, dtype=torch.long), st, torch.tensor([[tok]]))
    p = int(nxt.prog[0, 0])
    return int(nxt.met[0, 0]), (p, int(nxt.pos[0, 0])) if p >= 0 else None, int(nxt.count[0, 0])


def test_constraint_state_transitions() -> None:
    cons = [(A, C), (D,)]
    assert advance(cons, 0, None, A) == (0, (0, 1), 1)  # starts constraint 0
    assert advance(cons, 0, (0, 1), C) == (1, None, 2)  # completes it
    assert advance(cons, 0, (0, 1), B_) == (0, None, 0)  # abandons it
    assert advance(cons, 0, (0, 1), D) == (2, None, 1)  # abandons 0, meets 1
    assert advance(cons, 0, (0, 1), A) == (0, (0, 1), 1)  # abandons 0 and starts it again
    assert advance(cons, 1, None, A) == (1, None, 2)  # 0 is met: A starts nothing
    assert advance([(A, B_), (A, C)], 0, None, A) == (0, (0, 1), 1)  # the lowest-numbered
    assert advance([(A, B_), (A,)], 0, None, A) == (0, (0, 1), 1)
    assert advance([(A, B_), (A,)], 1, None, A) == (3, None, 3)  # 0 met: A meets 1
    assert fitting([(A,), (B_, C), (D, D, D)], 3) == ([(A,), (B_, C)], [2])


def test_wanted_tokens_are_the_next_of_the_one_in_progress_else_unmet_firsts() -> None:
    table = ConstraintTable.of([[(A, C), (D,)]], torch.device("cpu"))
    st = table.start((3,), torch.device("cpu"))
    st.met[1] = 2  # D met
    st.prog[2], st.pos[2] = 0, 1  # in the middle of A C
    assert table.wanted(torch.zeros(3, dtype=torch.long), st).tolist() == [
        [A, D], [A, -1], [C, -1]]


def test_beam_2_by_hand() -> None:
    """Unconstrained the best is A B (.336); with C required: t=0 banks {A}, {C}; t=1 C ends
    (.15), live A B (.42, bank 0) and C A (.15, bank 1; A C .12 loses bank 1); t=2 C A ends
    (.15) and the only live one, A B C (.084), cannot beat the finished."""
    src, lens = src_of([[1]])
    cfg = SearchConfig(beam_size=2, n_best=2, **NONE)
    assert search(ScriptedModel(TABLE), src, lens, cfg)[0][0].tokens == [A, B_]
    out = constrained_search(ScriptedModel(TABLE), src, lens, cfg, [[[C]]])[0]
    assert [h.tokens for h in out] == [[C], [C, A]]
    assert [h.log_prob for h in out] == pytest.approx([math.log(0.15)] * 2)
    assert [h.constraints_met for h in out] == [[True], [True]]


def test_beam_1_is_widened_so_that_every_bank_keeps_a_hypothesis() -> None:
    """One constraint token: two banks, so beam 1 searches as beam 2 (and returns one)."""
    src, lens = src_of([[1]])
    one = constrained_search(ScriptedModel(TABLE), src, lens, SearchConfig(beam_size=1, **NONE),
                             [[[C]]])[0]
    two = constrained_search(ScriptedModel(TABLE), src, lens, SearchConfig(beam_size=2, **NONE),
                             [[[C]]])[0]
    assert [h.tokens for h in one] == [[C]] == [h.tokens for h in two[:1]]


def test_the_deadline_prunes_hypotheses_that_could_no_longer_place_a_constraint() -> None:
    """D is possible only first (.1): t=0 banks {A}, {D}; t=1 D ends (.1), A B and A C have
    no room left for D by the limit 3 at t=2 and are dropped: D is the answer."""
    src, lens = src_of([[1]])
    (h,) = constrained_search(ScriptedModel(TABLE), src, lens, SearchConfig(beam_size=2, **NONE),
                              [[[D]]])[0][:1]
    assert h.tokens == [D] and h.log_prob == pytest.approx(math.log(0.1))
    assert h.constraints_met == [True]


def test_a_constraint_that_does_not_fit_is_reported_unmet() -> None:
    src, lens = src_of([[1]])
    cfg = SearchConfig(beam_size=2, **{**NONE, "max_len_b": 2})
    (h,) = constrained_search(ScriptedModel(TABLE), src, lens, cfg, [[[C], [D, D, D]]])[0][:1]
    assert h.constraints_met == [True, False] and C in h.tokens


def test_alignment_and_token_scores_follow_the_hypothesis() -> None:
    src, lens = src_of([[1, 9, 9]])
    cfg = SearchConfig(beam_size=1, return_alignment=True, return_scores=True, **NONE)
    (h,) = constrained_search(ScriptedModel(TABLE), src, lens, cfg, [[[C]]])[0]
    assert h.alignment.shape == (len(h.tokens) + 1, 3)
    assert h.alignment.argmax(1).tolist() == [t % 3 for t in range(len(h.tokens) + 1)]
    assert sum(h.token_log_probs) == pytest.approx(h.log_prob)


def random_table(seed: int):
    """A random but fixed next-token distribution for every prefix (small vocabulary)."""
    def table(sid: int, prefix: tuple[int, ...]) -> dict[int, float]:
        g = torch.Generator().manual_seed(hash((seed, sid, prefix)) % 2**31)
        p = torch.rand(V - 3, generator=g) ** 3  # tokens 3 (EOS) .. V-1
        p = p / p.sum()
        return {3 + k: float(p[k]) for k in range(V - 3)}
    return table


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 10**6), beam=st.integers(1, 4),
       cons=st.lists(st.lists(st.integers(4, V - 1), min_size=1, max_size=3), min_size=1,
                     max_size=3))
def test_every_met_constraint_is_in_the_output(seed: int, beam: int,
                                               cons: list[list[int]]) -> None:
    src, lens = src_of([[seed % 7 + 1, 2, 2, 2]])
    cfg = SearchConfig(beam_size=beam, n_best=beam, length_penalty="gnmt", max_len_a=1.0,
                       max_len_b=6, min_len=0)
    hyps = constrained_search(ScriptedModel(random_table(seed)), src, lens, cfg, [cons])[0]
    fits = sum(len(c) for c in cons) <= 10
    for h in hyps:
        for c, met in zip(cons, h.constraints_met, strict=True):
            inside = any(h.tokens[i:i + len(c)] == c for i in range(len(h.tokens)))
            assert met == inside
        if fits:
            assert all(h.constraints_met)


def test_batch_invariance_and_sentences_without_constraints_unchanged() -> None:
    tables = random_table(7)
    src, lens = src_of([[1, 2], [2, 2, 2, 2], [3], [4, 2, 2]])
    cfg = SearchConfig(beam_size=3, n_best=2, max_len_a=1.0, max_len_b=4, min_len=0)
    cons = [[[5, 6]], [], [[7], [4]], []]
    together = search(ScriptedModel(tables), src, lens, cfg, constraints=cons)
    for i in range(4):
        alone = search(ScriptedModel(tables), src[i:i + 1, :int(lens[i])], lens[i:i + 1], cfg,
                       constraints=[cons[i]])
        assert [h.tokens for h in alone[0]] == [h.tokens for h in together[i]]
        assert [h.score for h in alone[0]] == pytest.approx([h.score for h in together[i]])
    plain = search(ScriptedModel(tables), src, lens, cfg)
    for i in (1, 3):
        assert [(h.tokens, h.score) for h in together[i]] == [(h.tokens, h.score)
                                                              for h in plain[i]]
        assert together[i][0].constraints_met is None
    with pytest.raises(ValueError, match="not search.sampling=true"):
        search(ScriptedModel(tables), src, lens, SearchConfig(sampling=True, beam_size=1),
               constraints=cons)
