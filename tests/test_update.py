"""Tests for seq2seq.training.update: token-normalised accumulation, clipping, skipped steps."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.data import collate
from seq2seq.model import Seq2Seq
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.update import Updater

CPU = torch.device("cpu")


def _pairs(n: int, seed: int) -> list[tuple[list[int], list[int]]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(4, 30, (int(torch.randint(2, 7, (1,), generator=g)),),
                           generator=g).tolist(),
             torch.randint(4, 30, (int(torch.randint(1, 6, (1,), generator=g)),),
                           generator=g).tolist()) for _ in range(n)]


def _updater(model: Seq2Seq, clip: float = 0.0) -> Updater:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    return Updater(ddp=model, model=model, optimizer=opt, schedule=LRSchedule(opt, "constant", 0.5),
                   scaler=None, device=CPU, amp_dtype=None, world_size=1, distributed=False,
                   label_smoothing=0.1, clip_norm=clip)


def test_two_micro_batches_equal_one_batch_of_both() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(embed_dim=8, hidden_size=8, dropout=0.0), 30, 30)
    twin = copy.deepcopy(model)
    a, b = _pairs(3, 1), _pairs(4, 2)
    ba, bb, both = collate(a), collate(b), collate(a + b)
    total = ba.ntokens + bb.ntokens
    s1 = _updater(model)([ba, bb], total, 0)
    s2 = _updater(twin)([both], total, 0)
    assert float(s1["ntokens"]) == float(s2["ntokens"]) == total
    torch.testing.assert_close(s1["loss"], s2["loss"], rtol=1e-5, atol=1e-5)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_clipping_bounds_the_step_and_a_non_finite_norm_skips_it(caplog) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(embed_dim=8, hidden_size=8, dropout=0.0), 30, 30)
    before = [p.detach().clone() for p in model.parameters()]
    batch = collate(_pairs(4, 3))
    stats = _updater(model, clip=1e-3)([batch], batch.ntokens, 0)
    assert float(stats["gnorm"]) > 1e-3  # the raw norm is reported, the step is clipped
    moved = torch.sqrt(sum(((p - q) ** 2).sum() for p, q in zip(model.parameters(), before,
                                                                strict=True)))
    assert float(moved) == pytest.approx(0.5 * 1e-3, rel=1e-3)  # lr x clipped norm
    before = [p.detach().clone() for p in model.parameters()]
    up = _updater(model)
    with torch.no_grad():
        model.decoder.output.bias.fill_(float("inf"))
    with caplog.at_level(logging.WARNING, logger="seq2seq.training.update"):
        up([batch], batch.ntokens, 41)
    assert "non-finite gradient norm at update 42: update skipped" in caplog.text
    for p, q in zip(model.parameters(), before, strict=True):
        if p is not model.decoder.output.bias:
            assert torch.equal(p, q)
