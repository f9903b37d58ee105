"""Tests for seq2seq.training.selection: the best validations by BLEU/chrF (higher) and
loss/perplexity (lower), ties, the kept list, patience counting and state round trips."""

from __future__ import annotations

import pytest

from seq2seq.training.selection import ModelSelection


def dev(bleu: float, loss: float) -> dict[str, float]:
    return {"bleu": bleu, "chrf": bleu * 2, "loss": loss, "nll": loss, "ppl": 2.0 ** loss}


SCORES = [dev(10, 5.0), dev(12, 4.0), dev(11, 3.0), dev(12, 3.5), dev(15, 3.2)]


@pytest.mark.parametrize(("metric", "improved", "kept", "best", "bad"), [
    # bleu: 10 (new), 12 (new), 11 (2nd), 12 (tie: not new, behind the earlier 12), 15 (new)
    ("bleu", [True, True, False, False, True], [True, True, True, True, True], [5, 2, 4], 0),
    ("chrf", [True, True, False, False, True], [True, True, True, True, True], [5, 2, 4], 0),
    # loss: 5 (new), 4 (new), 3 (new), 3.5 (2nd), 3.2 (2nd)
    ("loss", [True, True, True, False, False], [True, True, True, True, True], [3, 5, 4], 2),
    ("ppl", [True, True, True, False, False], [True, True, True, True, True], [3, 5, 4], 2),
])
def test_best_by_metric(metric: str, improved: list[bool], kept: list[bool], best: list[int],
                        bad: int) -> None:
    sel = ModelSelection(metric, keep=3)
    got = [sel.report(step, d) for step, d in enumerate(SCORES, start=1)]
    assert [g[0] for g in got] == improved and [g[1] for g in got] == kept
    assert sel.kept_steps == best and sel.bad_validations == bad
    assert sel.best_dev == SCORES[best[0] - 1] and sel.best_step == best[0]
    assert sel.best_value == SCORES[best[0] - 1][metric]


def test_a_validation_outside_the_kept_list_is_not_kept() -> None:
    sel = ModelSelection("bleu", keep=2)
    assert [sel.report(s, dev(b, 0)) for s, b in enumerate([5, 9, 7, 6, 8], 1)] == [
        (True, True), (True, True), (False, True), (False, False), (False, True)]
    assert sel.kept_steps == [2, 5] and sel.bad_validations == 3


def test_signal_is_higher_is_better_for_the_schedule() -> None:
    assert ModelSelection("bleu").signal(dev(12, 3)) == 12
    assert ModelSelection("loss").signal(dev(12, 3)) == -3


def test_state_round_trip_and_another_metric_starts_afresh() -> None:
    sel = ModelSelection("loss", keep=2)
    for step, d in enumerate(SCORES, 1):
        sel.report(step, d)
    again = ModelSelection("loss", keep=2)
    again.load_state_dict(sel.state_dict())
    assert again.state_dict() == sel.state_dict()
    assert again.report(6, dev(0, 3.1)) == sel.report(6, dev(0, 3.1)) == (False, True)
    other = ModelSelection("bleu", keep=2)
    other.load_state_dict(sel.state_dict())
    assert other.best == [] and other.bad_validations == 0


def test_legacy_train_state_is_a_bleu_ranking() -> None:
    ts = {"best_bleu": 12.5, "best_step": 40, "bad_validations": 1, "last_val_step": 60,
          "last_dev": dev(11, 3)}
    sel = ModelSelection("bleu")
    sel.load_state_dict(ModelSelection.legacy_state(ts))
    assert sel.best_step == 40 and sel.best_value == 12.5 and sel.bad_validations == 1
    assert sel.report(80, dev(12.0, 2)) == (False, False)
    assert ModelSelection.legacy_state({"best_bleu": None, "best_step": None})["best"] == []
