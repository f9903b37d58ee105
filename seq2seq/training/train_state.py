"""TrainState: a training run's state beside the weights, owned by the trainer.

The counters (updates, the data position, the last validation, the training time so far) and
the components whose state a resumed run needs (optimizer, learning-rate schedule, fp16 scaler,
batch sampler, model selection, metrics history, weight average). :meth:`TrainState.state_dict`
is what ``last.pt`` holds as ``train_state`` (plain data, loaded with ``weights_only=True``),
:meth:`TrainState.load_state_dict` puts it back for an exact resume, and
:meth:`TrainState.carry_over` takes what fine-tuning (``train.init_from``) keeps from a bundle.
Every rank's RNG state travels in the same dict (``rng``); restoring it is the trainer's, which
knows its rank and device. Keys written by older versions keep loading:
``best_bleu``/``best_step``/``bad_validations`` are still written and read when ``selection``
is absent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import torch

from seq2seq.config import TrainConfig
from seq2seq.data import TokenBatchSampler
from seq2seq.training.ema import WeightAverage
from seq2seq.training.history import TrainingHistory
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.selection import ModelSelection

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class TrainState:
    """A run's counters, clock and stateful components.

    Attributes:
        optimizer, schedule, sampler, selection, history: the components (``sampler`` is this
            rank's shard).
        scaler: the fp16 ``GradScaler``, or None.
        ema: the weight average (``train.ema_decay``), or None.
        step: updates done.
        position: the sampler's position after the last update (``{"epoch",
            "batches_done"}``); what a checkpoint records, since the sampler itself may have
            been read ahead.
        last_val_step: update of the last validation (0 = none).
        last_dev: scores of the last validation.
        elapsed_before: training seconds of earlier (resumed) segments.
    """

    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    sampler: TokenBatchSampler
    selection: ModelSelection
    history: TrainingHistory
    scaler: torch.amp.GradScaler | None = None
    ema: WeightAverage | None = None
    step: int = 0
    position: dict[str, int] = dataclasses.field(default_factory=dict)
    last_val_step: int = 0
    last_dev: dict[str, float] | None = None
    elapsed_before: float = 0.0
    _started: float = dataclasses.field(default_factory=time.perf_counter, repr=False)

    def __post_init__(self) -> None:
        self.position = self.position or self.sampler.state_dict()

    # ------------------------------------------------------------------ counters
    def start_clock(self) -> None:
        """This segment's training time starts now."""
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Training wall time in seconds, earlier (resumed) segments included."""
        return self.elapsed_before + (time.perf_counter() - self._started)

    def count_update(self) -> None:
        """One more update is done; the sampler's position is recorded."""
        self.step += 1
        self.position = self.sampler.state_dict()

    def epochs_done(self) -> float:
        """Completed epochs plus the fraction of the current one."""
        e, done = self.position["epoch"], self.position["batches_done"]
        total = len(self.sampler.epoch_batches(e)) or 1
        return e + done / total

    def budget_progress(self, t: TrainConfig, seconds: float) -> float:
        """Fraction of the budget done after the next update: the largest of the step, epoch
        and time fractions (those with a budget), projected one update ahead.

        Args:
            t: the budgets (``max_steps``, ``max_epochs``, ``max_minutes``).
            seconds: the training time that will have passed after the next update (the
                ranks' mean clock plus the last update's duration).
        """
        fractions = [0.0]
        if t.max_steps > 0:
            fractions.append((self.step + 1) / t.max_steps)
        if t.max_epochs > 0:
            per_update = self.epochs_done() / self.step if self.step else 0.0
            fractions.append((self.epochs_done() + per_update) / t.max_epochs)
        if t.max_minutes > 0:
            fractions.append(seconds / (t.max_minutes * 60))
        return max(fractions)

    def validated(self, dev: dict[str, float]) -> None:
        """A validation at the current update gave ``dev``."""
        self.last_dev = dev
        self.last_val_step = self.step

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``train_state`` of ``last.pt``.

        Args:
            rngs: every rank's RNG state, rank order (:func:`seq2seq.runtime.rng_state`).
        """
        sel = self.selection
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "epoch": self.position["epoch"],
            "sampler": dict(self.position),
            "rng": rngs,
            "world_size": len(rngs),
            "best_bleu": (sel.best_dev or {}).get("bleu"),
            "best_step": sel.best_step,
            "bad_validations": sel.bad_validations,
            "selection": sel.state_dict(),
            "last_val_step": self.last_val_step,
            "last_dev": self.last_dev,
            "elapsed_s": self.elapsed(),
            "history": self.history.state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, ts: dict[str, Any]) -> None:
        """Resume: put a :meth:`state_dict` back (everything but the RNG states)."""
        self.optimizer.load_state_dict(ts["optimizer"])
        self.schedule.load_state_dict(ts["scheduler"])
        if self.scaler is not None and ts.get("scaler"):
            self.scaler.load_state_dict(ts["scaler"])
        self.sampler.load_state_dict(ts["sampler"])
        self.position = self.sampler.state_dict()
        self.step = int(ts["step"])
        self.selection.load_state_dict(ts.get("selection") or ModelSelection.legacy_state(ts))
        self.last_val_step = int(ts["last_val_step"])
        self.last_dev = ts["last_dev"]
        self.elapsed_before = float(ts["elapsed_s"])
        self.history.restore(ts["history"])
        if self.ema is not None:
            if ts.get("ema"):
                self.ema.load_state_dict(ts["ema"])
            else:
                log.warning("the checkpoint holds no weight average: it starts from this update")

    def carry_over(self, ts: dict[str, Any] | None, t: TrainConfig) -> None:
        """Fine-tuning: take from a bundle's ``ts`` what the ``train.reset_*`` options keep.

        Updates, the sampler, the RNGs, the history and the training time always start afresh;
        :func:`seq2seq.training.init_from.load_init` has checked that ``ts`` exists where a
        ``reset_*=false`` needs it.
        """
        if not t.reset_optimizer:
            self.optimizer.load_state_dict(ts["optimizer"])
            for group in self.optimizer.param_groups:  # the schedule sets the rate
                group["lr"] = self.schedule.lr
        if not t.reset_schedule:
            self.schedule.load_state_dict(ts["scheduler"])
        if not t.reset_best:
            self.selection.load_state_dict(ts.get("selection") or
                                           ModelSelection.legacy_state(ts))
            self.selection.bad_validations = 0
        elif not t.reset_schedule:
            self.schedule.best = None  # plateau decisions start from the new dev set


__all__ = ["TrainState"]
