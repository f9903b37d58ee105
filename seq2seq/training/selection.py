"""Model selection: which validations are the best, by the chosen dev metric.

``train.best_metric`` (:class:`~seq2seq.config.BestMetric`) names the dev score that decides
everything "best" in a run: ``best.pt``, the ``keep_best`` list of ``best_step_<S>.pt`` files,
early stopping (``patience`` counts validations without a new best) and the plateau schedule.
BLEU and chrF are better when higher, loss and perplexity when lower. A tie never counts as an
improvement, so among equal scores the earliest validation stays first.
"""

from __future__ import annotations

import bisect
from typing import Any

from seq2seq.config import BestMetric


class ModelSelection:
    """The best validations of a run so far.

    Args:
        metric: the dev metric (``"bleu"``, ``"chrf"``, ``"loss"``, ``"ppl"``).
        keep: how many of the best validations to keep (``train.keep_best``, >= 1).

    Attributes:
        best: up to ``keep`` entries ``{"step", "value", "dev"}``, best first.
        bad_validations: validations since the last new best.
    """

    def __init__(self, metric: BestMetric | str = BestMetric.bleu, keep: int = 1) -> None:
        self.metric = BestMetric(metric)
        self.keep = max(1, int(keep))
        self.best: list[dict[str, Any]] = []
        self.bad_validations = 0

    def _key(self, value: float) -> float:
        """Sort key: smaller is better."""
        return -value if self.metric.higher_is_better else value

    def signal(self, dev: dict[str, float]) -> float:
        """The metric with "higher is better" orientation (for the plateau schedule)."""
        return -self._key(float(dev[self.metric.value]))

    def report(self, step: int, dev: dict[str, float]) -> tuple[bool, bool]:
        """Record a validation.

        Args:
            step: updates done.
            dev: its scores (``{"loss", "nll", "ppl", "bleu", "chrf"}``).

        Returns:
            ``(improved, kept)``: a new best (``best.pt`` is due), and whether it is among the
            ``keep`` best (its ``best_step_<step>.pt`` is due).
        """
        value = float(dev[self.metric.value])
        improved = not self.best or self._key(value) < self._key(self.best[0]["value"])
        keys = [self._key(b["value"]) for b in self.best]
        at = bisect.bisect_right(keys, self._key(value))  # after equals: earlier ones win ties
        self.best.insert(at, {"step": int(step), "value": value, "dev": dict(dev)})
        del self.best[self.keep:]
        self.bad_validations = 0 if improved else self.bad_validations + 1
        return improved, at < self.keep

    @property
    def best_step(self) -> int | None:
        """Update of the best validation (None before the first)."""
        return self.best[0]["step"] if self.best else None

    @property
    def best_value(self) -> float | None:
        """The best metric value (None before the first validation)."""
        return self.best[0]["value"] if self.best else None

    @property
    def best_dev(self) -> dict[str, float] | None:
        """All dev scores of the best validation."""
        return dict(self.best[0]["dev"]) if self.best else None

    @property
    def kept_steps(self) -> list[int]:
        """Steps of the kept validations, best first."""
        return [b["step"] for b in self.best]

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (for the checkpoint bundle)."""
        return {"metric": self.metric.value, "keep": self.keep,
                "best": [{**b, "dev": dict(b["dev"])} for b in self.best],
                "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        A state recorded for another metric is not comparable: the ranking then starts afresh
        (the counter of bad validations too).
        """
        if state.get("metric") != self.metric.value:
            self.best, self.bad_validations = [], 0
            return
        self.best = [{**b, "dev": dict(b["dev"])} for b in state["best"]][: self.keep]
        self.bad_validations = int(state["bad_validations"])

    @classmethod
    def legacy_state(cls, train_state: dict[str, Any]) -> dict[str, Any]:
        """The state of a checkpoint written before model selection had a metric (BLEU only)."""
        best = []
        if train_state.get("best_bleu") is not None:
            dev = dict(train_state.get("last_dev") or {})
            if train_state.get("last_val_step") != train_state.get("best_step"):
                dev = {"bleu": float(train_state["best_bleu"])}
            best = [{"step": int(train_state["best_step"]),
                     "value": float(train_state["best_bleu"]), "dev": dev}]
        return {"metric": "bleu", "best": best,
                "bad_validations": int(train_state.get("bad_validations", 0))}


__all__ = ["ModelSelection"]
