"""A scripted decoder for search tests: the decoder protocol over hand-written probability
tables (shared by test_search, test_sampling, test_forced and test_ensemble)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from seq2seq.tokenizer import BOS_ID, EOS_ID

A, B_, C, D = 4, 5, 6, 7  # scripted target tokens
V = 10
NEG_INF = float("-inf")

Table = Callable[[int, tuple[int, ...]], dict[int, float]]


@dataclass
class ScriptedState:
    """State rows: sentence id (= first source token), source length, prefix, attention."""

    sid: torch.Tensor  # (N,)
    src_len: torch.Tensor  # (N,)
    prefix: torch.Tensor  # (N, t)
    width: int  # padded source length S
    attn: torch.Tensor | None = None  # (N, S)


class ScriptedModel:
    """Decoder protocol whose step returns hand-written probability tables.

    ``table(sid, prefix) -> {token: prob}`` (unlisted tokens have probability 0). The attention
    of a step is one-hot at source position ``len(prefix) % src_len``. ``rows`` records the
    number of rows of every ``step`` call.
    """

    def __init__(self, table: Table | dict[tuple[int, ...], dict[int, float]]) -> None:
        self.table = table if callable(table) else (lambda sid, p: table.get(p, {EOS_ID: 1.0}))
        self.rows: list[int] = []

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> ScriptedState:
        return ScriptedState(src[:, 0].clone(), src_len.clone(),
                             torch.zeros(src.shape[0], 0, dtype=torch.long), src.shape[1])

    def init_state(self, enc: ScriptedState) -> ScriptedState:
        return enc

    def step(self, prev: torch.Tensor, state: ScriptedState) -> tuple[torch.Tensor, ScriptedState]:
        self.rows.append(prev.numel())
        prefix = state.prefix if bool((prev == BOS_ID).all()) and state.prefix.shape[1] == 0 \
            else torch.cat([state.prefix, prev[:, None]], 1)
        logp = torch.full((prev.numel(), V), NEG_INF)
        attn = torch.zeros(prev.numel(), state.width)
        for r in range(prev.numel()):
            p = tuple(prefix[r].tolist())
            for tok, prob in self.table(int(state.sid[r]), p).items():
                if prob > 0:
                    logp[r, tok] = math.log(prob)
            attn[r, len(p) % int(state.src_len[r])] = 1.0
        return logp, ScriptedState(state.sid, state.src_len, prefix, state.width, attn)

    def reorder_state(self, state: ScriptedState, index: torch.Tensor) -> ScriptedState:
        return ScriptedState(state.sid[index], state.src_len[index], state.prefix[index],
                             state.width, None if state.attn is None else state.attn[index])
