"""A training run's checkpointed state: what ``last.pt`` holds beside the weights, what a resume
restores, and what fine-tuning (``train.init_from``) carries over from its bundle.

``train_state`` is plain data (it is saved in the bundle and loaded with ``weights_only=True``):
the optimizer, schedule and (fp16) scaler states, the update count, the sampler position, every
rank's RNG state, model selection (:mod:`seq2seq.training.selection`), the last validation, the
training time so far, the metrics history and the weight average (``train.ema_decay``). Keys
written by older versions keep loading: ``best_bleu``/``best_step``/``bad_validations`` are
still written and read when ``selection`` is absent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from seq2seq.runtime import set_rng_state
from seq2seq.training.selection import ModelSelection

if TYPE_CHECKING:
    from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)


def capture_train_state(tr: Trainer, rngs: list[dict[str, Any]]) -> dict[str, Any]:
    """The state of ``tr`` to save in ``last.pt``.

    Args:
        tr: the trainer (after at least its build).
        rngs: every rank's RNG state, rank order.
    """
    sel = tr.selection
    return {
        "optimizer": tr.optimizer.state_dict(),
        "scheduler": tr.schedule.state_dict(),
        "scaler": tr.scaler.state_dict() if tr.scaler is not None else None,
        "step": tr.step,
        "epoch": tr.data_state["epoch"],
        "sampler": dict(tr.data_state),
        "rng": rngs,
        "world_size": tr.ctx.world_size,
        "best_bleu": (sel.best_dev or {}).get("bleu"),
        "best_step": sel.best_step,
        "bad_validations": sel.bad_validations,
        "selection": sel.state_dict(),
        "last_val_step": tr.last_val_step,
        "last_dev": tr.last_dev,
        "elapsed_s": tr.elapsed(),
        "history": tr.history.state(),
        "ema": tr.ema.state_dict() if tr.ema is not None else None,
    }


def restore_train_state(tr: Trainer, ts: dict[str, Any]) -> None:
    """Resume: put ``ts`` (a :func:`capture_train_state` result) back into ``tr``.

    A checkpoint of another world size reseeds the RNGs (with a warning) instead.
    """
    tr.optimizer.load_state_dict(ts["optimizer"])
    tr.schedule.load_state_dict(ts["scheduler"])
    if tr.scaler is not None and ts.get("scaler"):
        tr.scaler.load_state_dict(ts["scaler"])
    tr.sampler.load_state_dict(ts["sampler"])
    tr.step = int(ts["step"])
    tr.selection.load_state_dict(ts.get("selection") or ModelSelection.legacy_state(ts))
    tr.last_val_step = int(ts["last_val_step"])
    tr.last_dev = ts["last_dev"]
    tr.elapsed_before = float(ts["elapsed_s"])
    tr.history.restore(ts["history"])
    if tr.ema is not None:
        if ts.get("ema"):
            tr.ema.load_state_dict(ts["ema"])
        else:
            log.warning("the checkpoint holds no weight average: it starts from this update")
    rngs = ts["rng"]
    if len(rngs) == tr.ctx.world_size:
        set_rng_state(rngs[tr.ctx.rank], tr.device)
    else:
        log.warning("checkpoint has RNG states of %d ranks, this job has %d: reseeding",
                    len(rngs), tr.ctx.world_size)
        torch.manual_seed(tr.cfg.seed + 1000 * tr.ctx.rank + tr.step)


def carry_over(tr: Trainer, ts: dict[str, Any] | None) -> None:
    """Fine-tuning: take from the init bundle's ``ts`` what the ``train.reset_*`` options keep.

    Updates, the sampler, the RNGs, the history and the training time always start afresh;
    :func:`seq2seq.training.init_from.load_init` has checked that ``ts`` exists where a
    ``reset_*=false`` needs it.
    """
    t = tr.cfg.train
    if not t.reset_optimizer:
        tr.optimizer.load_state_dict(ts["optimizer"])
        for group in tr.optimizer.param_groups:  # the schedule sets the rate
            group["lr"] = tr.schedule.lr
    if not t.reset_schedule:
        tr.schedule.load_state_dict(ts["scheduler"])
    if not t.reset_best:
        tr.selection.load_state_dict(ts.get("selection") or ModelSelection.legacy_state(ts))
        tr.selection.bad_validations = 0
    elif not t.reset_schedule:
        tr.schedule.best = None  # plateau decisions start from the new dev set
