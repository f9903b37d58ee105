"""LRSchedule: warmup, inverse-sqrt decay, plateau halving, floor, state round trip."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.training.schedule import LRSchedule


def _opt(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _run(sched: LRSchedule, n: int) -> list[float]:
    """Rates used by updates 1..n (read from the optimizer before each update)."""
    out = []
    for _ in range(n):
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.step()
    return out


def test_linear_warmup_then_constant() -> None:
    s = LRSchedule(_opt(), "constant", lr=1e-3, warmup_steps=4)
    assert _run(s, 6) == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_inverse_sqrt_and_noam_peak_at_warmup() -> None:
    for kind in ("inverse_sqrt", "noam"):
        s = LRSchedule(_opt(), kind, lr=2e-3, warmup_steps=4)
        lrs = _run(s, 16)
        assert lrs[3] == pytest.approx(2e-3)  # peak at the last warmup update
        assert lrs[15] == pytest.approx(2e-3 * math.sqrt(4 / 16))
        assert max(lrs) == pytest.approx(2e-3)


def test_plateau_halves_after_patience_and_respects_floor() -> None:
    s = LRSchedule(_opt(), "plateau", lr=1e-3, warmup_steps=2, lr_decay=0.5, lr_patience=2,
                   min_lr=3e-4)
    _run(s, 3)
    assert s.lr == pytest.approx(1e-3)
    assert s.report(10.0) is False  # first value is the best so far
    assert s.report(9.0) is False  # 1 bad validation < patience 2
    assert s.report(10.0) is True  # equal is not better: 2 bad -> halve
    assert s.lr == pytest.approx(5e-4)
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert s.report(11.0) is False  # improvement resets the counter
    s.report(1.0)
    assert s.report(1.0) is True
    assert s.lr == pytest.approx(3e-4)  # 2.5e-4 is floored at min_lr
    s.report(1.0)
    assert s.report(1.0) is False  # already at the floor: no further decay
    assert s.lr == pytest.approx(3e-4)


def test_plateau_ignores_validations_during_warmup() -> None:
    s = LRSchedule(_opt(), "plateau", lr=1e-3, warmup_steps=100, lr_patience=1)
    _run(s, 10)
    s.report(5.0)
    assert s.report(1.0) is False
    assert s.scale == 1.0
    assert s.best == 5.0


def test_other_schedules_never_decay_on_plateau() -> None:
    s = LRSchedule(_opt(), "constant", lr=1e-3, lr_patience=1)
    s.report(2.0)
    assert s.report(1.0) is False
    assert s.lr == pytest.approx(1e-3)


def test_state_dict_round_trip_restores_rate() -> None:
    a = LRSchedule(_opt(), "plateau", lr=1e-3, warmup_steps=2, lr_patience=1)
    _run(a, 5)
    a.report(3.0)
    a.report(2.0)
    b = LRSchedule(_opt(), "plateau", lr=1e-3, warmup_steps=2, lr_patience=1)
    b.load_state_dict(a.state_dict())
    assert b.lr == pytest.approx(5e-4)
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert _run(a, 3) == _run(b, 3)


def _run_budget(sched: LRSchedule, n: int) -> list[float]:
    """Rates of updates 1..n of an n-update budget, set as the trainer sets them (the progress
    after the coming update, then the update)."""
    out = []
    for k in range(n):
        sched.set_progress((k + 1) / n)
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.step()
    return out


def test_wsd_holds_the_peak_then_cools_down_to_the_floor_on_the_last_update() -> None:
    s = LRSchedule(_opt(), "wsd", lr=1e-3, warmup_steps=5, min_lr=1e-5, cooldown=0.2)
    lrs = _run_budget(s, 50)
    assert lrs[:5] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])
    assert lrs[4:40] == pytest.approx([1e-3] * 36)  # updates 5..40: 80% of the budget
    # update 40 + j of 50 runs at floor + (peak - floor) (1 - (40 + j) / 50) / 0.2
    assert lrs[40:] == pytest.approx([1e-5 + (1e-3 - 1e-5) * (10 - j) / 10 for j in range(1, 11)])
    assert lrs[-1] == pytest.approx(1e-5)


def test_cosine_follows_the_budget_to_the_floor() -> None:
    s = LRSchedule(_opt(), "cosine", lr=2e-3, warmup_steps=0, min_lr=0.0)
    lrs = _run_budget(s, 20)
    assert lrs == pytest.approx([1e-3 * (1 + math.cos(math.pi * (k + 1) / 20)) for k in range(20)])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs == sorted(lrs, reverse=True)


def test_budget_progress_survives_the_state_round_trip_and_others_ignore_it() -> None:
    s = LRSchedule(_opt(), "wsd", lr=1.0, warmup_steps=0, cooldown=0.5)
    s.set_progress(0.75)
    t = LRSchedule(_opt(), "wsd", lr=1.0, warmup_steps=0, cooldown=0.5)
    t.load_state_dict(s.state_dict())
    assert t.lr == s.lr == pytest.approx(0.5)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    c = LRSchedule(_opt(), "constant", lr=1.0)
    c.set_progress(1.0)
    assert c.lr == 1.0
