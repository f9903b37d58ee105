"""Learning-rate schedules stepped once per optimizer update.

Every schedule starts with a linear warmup from ``lr / warmup_steps`` to the peak ``lr`` over
``warmup_steps`` updates, then:

* ``"constant"``: stays at ``lr``;
* ``"inverse_sqrt"`` / ``"noam"``: decays as ``lr * sqrt(warmup_steps / step)`` (the Transformer
  "Noam" shape with its peak normalised to ``lr``; the two names are aliases);
* ``"plateau"``: stays at ``lr * scale``, where ``scale`` is multiplied by ``lr_decay`` whenever
  the validation metric (higher is better, e.g. BLEU) has not improved for ``lr_patience``
  validations in a row (validations during warmup do not count); the rate never drops below
  ``min_lr``;
* budget-aware, following the fraction ``p`` of the run's budget that will be done after the
  next update (:meth:`LRSchedule.set_progress`; the trainer takes the largest of the
  ``max_steps``, ``max_epochs`` and ``max_minutes`` fractions): ``"wsd"`` (warmup, stable,
  decay) holds the peak until ``p = 1 - cooldown``, then decays linearly to ``min_lr`` at
  ``p = 1``; ``"cosine"`` follows ``min_lr + (lr - min_lr) (1 + cos(pi p)) / 2``. A short run
  keeps its peak rate for most of its updates and still ends annealed, on its last update.

The schedule's state is a plain dict (``state_dict``/``load_state_dict``) so it fits the
checkpoint bundle.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from seq2seq.config import Schedule


class LRSchedule:
    """Per-update learning rate with warmup, decay and plateau halving.

    Args:
        optimizer: the optimizer whose param groups get the rate.
        kind: the :class:`~seq2seq.config.Schedule`.
        lr: peak learning rate.
        warmup_steps: linear warmup length in updates (0 = none).
        lr_decay: plateau multiplier in ``(0, 1]``.
        lr_patience: validations without improvement before a plateau decay.
        min_lr: floor of the decayed rate (warmup may start lower).
        cooldown: ``"wsd"``: the final fraction of the budget over which the rate decays.

    The ranges were checked once, when the :class:`~seq2seq.config.TrainConfig` was built.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: Schedule = Schedule.plateau,
        lr: float = 1e-3,
        warmup_steps: int = 0,
        lr_decay: float = 0.5,
        lr_patience: int = 2,
        min_lr: float = 0.0,
        cooldown: float = 0.2,
    ) -> None:
        self.optimizer = optimizer
        self.kind = Schedule(kind)
        self.base_lr = lr
        self.warmup_steps = warmup_steps
        self.lr_decay = lr_decay
        self.lr_patience = max(1, lr_patience)
        self.min_lr = min_lr
        self.cooldown = cooldown
        self.progress = 0.0  # budget fraction done after the next update (budget-aware kinds)
        self.step_count = 0  # updates done
        self.scale = 1.0  # plateau multiplier
        self.best: float | None = None
        self.bad_validations = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        """Learning rate of update number ``step`` (1-based).

        Args:
            step: update index.

        Returns:
            The rate.
        """
        step = max(1, step)
        warm = min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.kind in ("inverse_sqrt", "noam"):
            if self.warmup_steps > 0 and step > self.warmup_steps:
                return self.base_lr * math.sqrt(self.warmup_steps / step)
            return self.base_lr * warm
        if self.kind == "plateau":
            if warm < 1.0:
                return self.base_lr * warm
            return max(self.min_lr, self.base_lr * self.scale)
        if self.kind.needs_budget:
            return (self.min_lr + (self.base_lr - self.min_lr) * self.decay()) * warm
        return self.base_lr * warm  # constant

    def decay(self) -> float:
        """Budget-aware share of the peak above ``min_lr``, from 1 down to 0 at the end."""
        p = min(1.0, max(0.0, self.progress))
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return min(1.0, (1.0 - p) / self.cooldown)  # wsd

    def set_progress(self, progress: float) -> None:
        """Set the budget fraction that will be done after the next update and re-apply the
        rate (budget-aware kinds; others ignore it).

        Args:
            progress: in ``[0, 1]``; 1 (or more) makes the next update run at ``min_lr``.
        """
        self.progress = float(progress)
        self._apply()

    @property
    def lr(self) -> float:
        """Rate the next update will use."""
        return self.lr_at(self.step_count + 1)

    def _apply(self) -> None:
        lr = self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Record one finished update and set the rate of the next one."""
        self.step_count += 1
        self._apply()

    def report(self, metric: float) -> bool:
        """Feed a validation metric (higher is better); may decay a plateau schedule.

        Args:
            metric: e.g. dev BLEU.

        Returns:
            True when the rate was decayed.
        """
        if self.best is None or metric > self.best:
            self.best = metric
            self.bad_validations = 0
            return False
        if self.step_count < self.warmup_steps:
            return False  # no plateau decisions while still warming up
        self.bad_validations += 1
        if self.kind != "plateau" or self.bad_validations < self.lr_patience:
            return False
        self.bad_validations = 0
        if self.base_lr * self.scale <= self.min_lr:
            return False
        self.scale *= self.lr_decay
        self._apply()
        return True

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (for the checkpoint bundle)."""
        return {
            "kind": self.kind.value,
            "step_count": self.step_count,
            "scale": self.scale,
            "best": self.best,
            "bad_validations": self.bad_validations,
            "progress": self.progress,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output and re-apply the rate."""
        self.step_count = int(state["step_count"])
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_validations = int(state["bad_validations"])
        self.progress = float(state.get("progress", 0.0))  # absent in older bundles
        self._apply()
