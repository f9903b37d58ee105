"""Training loop: token-bucketed batches, accumulation, AMP, validation, checkpoints, resume, DDP.

:class:`Trainer` takes the plain :class:`~seq2seq.config.TrainJobConfig` and a run directory (no
Hydra here) and does everything ``seq2seq-train`` promises, with the parts in their own modules:

* sentencepiece models trained from the training split, or taken from the checkpoint on resume
  (:mod:`seq2seq.training.job_data`);
* updates of label-smoothed cross entropy normalised by the target tokens of the *whole*
  update (:mod:`seq2seq.training.update`), Adam/AdamW, an
  :class:`~seq2seq.training.schedule.LRSchedule`;
* CUDA with bf16/fp16 autocast (+ ``GradScaler`` for fp16) or CPU fp32 (:mod:`seq2seq.runtime`);
* validation every ``validate_every`` updates and/or ``validate_minutes``: dev loss, perplexity and
  sacreBLEU of greedy/beam output (:mod:`seq2seq.training.dev_eval`); the best checkpoint(s) by
  ``train.best_metric`` and early stopping (:mod:`seq2seq.training.selection`);
* fine-tuning from a trained bundle, ``train.init_from`` (:mod:`seq2seq.training.init_from`);
* checkpoints ``checkpoints/{last,best,step_<N>}.pt`` (:mod:`seq2seq.training.run_checkpoints`) holding
  everything needed to resume exactly (optimizer, schedule, sampler position, every rank's RNG
  state, history), so a run killed at any moment continues without repeating or skipping data;
* ``<run_dir>/metrics.csv``, ``<run_dir>/curves.png`` and TensorBoard scalars in
  ``<run_dir>/tensorboard`` (:mod:`seq2seq.training.history`);
* SIGTERM or SIGINT (a scheduler's preemption notice, Ctrl-C): every rank stops at the same
  update boundary, ``last.pt`` is written and :meth:`Trainer.fit` returns with stop reason
  ``"preempted"`` (:mod:`seq2seq.training.preemption`); a checkpoint that cannot be written
  stops training with :class:`~seq2seq.training.run_checkpoints.CheckpointWriteError`, the
  earlier files intact.

Under ``torchrun`` each rank takes ``batches[rank::world_size]`` of every epoch's batch list; only
rank 0 writes files, validates, and broadcasts the dev scores so every rank stops together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from seq2seq.checkpoint import make_bundle, model_config_from_bundle, tokenizers_from_bundle
from seq2seq.config import TrainJobConfig, plain
from seq2seq.data import Batch, TokenBatchSampler
from seq2seq.inference import Translator
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.runtime import precision_reason, resolve_device, resolve_precision, rng_state
from seq2seq.training import distributed as D
from seq2seq.training.dev_eval import dev_scores
from seq2seq.training.ema import WeightAverage
from seq2seq.training.history import TrainingHistory
from seq2seq.training.init_from import load_init
from seq2seq.training.job_check import check_train_job
from seq2seq.training.job_data import encode_datasets, load_pairs, train_job_tokenizers
from seq2seq.training.preemption import StopSignals
from seq2seq.training.run_checkpoints import RunCheckpoints
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.selection import ModelSelection
from seq2seq.training.train_state import capture_train_state, carry_over, restore_train_state
from seq2seq.training.update import Updater

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        step: updates done.
        epochs: completed epochs plus the fraction of the current one.
        best_bleu: dev BLEU of the best checkpoint (None if never validated).
        best_step: update of the best checkpoint.
        best_metric: the metric that chose it (``train.best_metric``).
        best_value: its value there.
        last_dev: scores of the last validation.
        stop_reason: ``"max_steps"``, ``"max_epochs"``, ``"max_minutes"``, ``"early_stopping"``
            or ``"preempted"`` (SIGTERM/SIGINT: ``last.pt`` written, resume with
            ``train.resume=true``).
        elapsed_s: training wall time, resumed segments included.
        run_dir: output directory.
    """

    step: int
    epochs: float
    best_bleu: float | None
    best_step: int | None
    best_metric: str
    best_value: float | None
    last_dev: dict[str, float] | None
    stop_reason: str
    elapsed_s: float
    run_dir: Path


class Trainer:
    """Trains a :class:`~seq2seq.model.seq2seq.Seq2Seq` as configured.

    Args:
        cfg: the job config (dataclasses; paths relative to the current directory).
        run_dir: output directory (Hydra's ``hydra.run.dir`` from the entry point).
        ctx: distributed context (defaults to the launcher's environment; call
            :func:`seq2seq.training.distributed.init_distributed` first under ``torchrun``).
    """

    def __init__(self, cfg: TrainJobConfig, run_dir: str | Path,
                 ctx: D.DistContext | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ctx = ctx or D.DistContext()
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cuda" and self.ctx.enabled:
            self.device = torch.device("cuda", self.ctx.local_rank)
        self.amp_dtype = resolve_precision(cfg.train.precision, self.device)
        self.checkpoints = RunCheckpoints(self.run_dir / "checkpoints")
        self.history = TrainingHistory(self.run_dir, write=self.ctx.is_main,
                                       tensorboard=cfg.train.tensorboard)
        self.step = 0
        self.selection = ModelSelection(cfg.train.best_metric, cfg.train.keep_best)
        self.init_origin: dict[str, Any] | None = None
        self.last_val_step = 0
        self.last_dev: dict[str, float] | None = None
        self.elapsed_before = 0.0
        check_train_job(cfg)

    # ------------------------------------------------------------------ setup
    def _setup_threads(self) -> None:
        if self.device.type == "cpu":
            n = self.cfg.train.threads or (os.cpu_count() or 1)
            torch.set_num_threads(max(1, n))

    def _build(self) -> None:
        """Tokenizers, datasets, model, optimizer, schedule, sampler; restore state on resume."""
        cfg, t = self.cfg, self.cfg.train
        self.train_pairs, self.dev_pairs = load_pairs(cfg.data)
        bundle = self.checkpoints.load_resume(self.ctx) if t.resume else None
        init = load_init(t, cfg.model) if t.init_from and bundle is None else None
        if bundle is not None:
            self.src_tok, self.tgt_tok = tokenizers_from_bundle(bundle)
            self.init_origin = (bundle.get("meta") or {}).get("init_from")
        elif init is not None:
            self.src_tok, self.tgt_tok = tokenizers_from_bundle(init.bundle)
            self.init_origin = init.origin
            if self.ctx.is_main:
                log.info("fine-tuning from %s (step %d); its sentencepiece models and model "
                         "config are kept", init.path, init.origin["step"])
        else:
            self.src_tok, self.tgt_tok = train_job_tokenizers(
                self.train_pairs, cfg.data, cfg.seed, self.run_dir / "spm", self.ctx)
        self.model_cfg = (model_config_from_bundle(bundle) if bundle else
                          init.model_cfg if init else cfg.model)
        if bundle and self.model_cfg != cfg.model:
            log.warning("resuming with the checkpoint's model config %s (ignoring model.*)",
                        self.model_cfg)
        self.train_set, self.dev_set = encode_datasets(
            self.train_pairs, self.dev_pairs, self.src_tok, self.tgt_tok, cfg.data,
            verbose=self.ctx.is_main)

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = Seq2Seq(self.model_cfg, self.src_tok.vocab_size, self.tgt_tok.vocab_size)
        if bundle or init:
            self.model.load_state_dict((bundle or init.bundle)["model"])
        self.model.to(self.device)
        opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.model.parameters(), lr=t.lr, betas=tuple(t.betas),
                                 weight_decay=t.weight_decay)
        self.ema = WeightAverage(self.model, t.ema_decay) if t.ema_decay > 0 else None
        self.schedule = LRSchedule(self.optimizer, t.schedule, t.lr, t.warmup_steps, t.lr_decay,
                                   t.lr_patience, t.min_lr, t.cooldown)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        sampler = TokenBatchSampler(self.train_set.sizes, t.max_tokens, seed=cfg.seed)
        self.sampler = sampler.shard(self.ctx.rank, self.ctx.world_size)
        # different dropout masks per rank; the same init everywhere (seeded above)
        torch.manual_seed(cfg.seed + 1000 * self.ctx.rank + 1)
        if bundle:
            restore_train_state(self, bundle["train_state"])
        elif init:
            carry_over(self, init.bundle.get("train_state"))
        self.data_state = self.sampler.state_dict()
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp: torch.nn.Module = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model
        self.updater = Updater(self.ddp, self.model, self.optimizer, self.schedule, self.scaler,
                               self.device, self.amp_dtype, self.ctx.world_size, self.ctx.enabled,
                               t.label_smoothing, t.clip_norm)

    def _bundle(self, train_state: dict[str, Any] | None, dev_bleu: float | None) -> dict:
        config = plain(self.cfg)
        config.pop("defaults", None)
        meta = {"src_lang": self.cfg.data.src_lang, "tgt_lang": self.cfg.data.tgt_lang,
                "step": self.step, "dev_bleu": dev_bleu, "config": config}
        if self.init_origin is not None:
            meta["init_from"] = self.init_origin
        return make_bundle(self.model, self.model_cfg, self.src_tok, self.tgt_tok, meta,
                           train_state)

    def _save(self, improved: bool, kept: bool = False) -> None:
        """Write last.pt (+ step_<N>.pt, + best.pt when improved, + best_step_<N>.pt when among
        the ``keep_best`` best); collective over ranks."""
        rngs = D.all_gather_object(rng_state(self.device), self.ctx)
        if not self.ctx.is_main:
            return
        bleu = self.last_dev["bleu"] if self.last_dev else None
        self.checkpoints.save(self.step, self._bundle(capture_train_state(self, rngs), bleu),
                              self.cfg.train.keep_last)
        if improved or kept:
            # written inside the block: the bundle's tensors share storage with the model
            with self.averaged():
                lean = self._bundle(None, bleu)
                if improved:
                    self.checkpoints.save_best(lean)
                if kept and self.cfg.train.keep_best > 1:
                    self.checkpoints.save_kept_best(self.step, lean, self.selection.kept_steps)

    # ------------------------------------------------------------------ validation
    def averaged(self) -> contextlib.AbstractContextManager:
        """Within the block the model holds the weight average (``train.ema_decay``), if any."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def validate(self) -> dict[str, float]:
        """Dev scores of the current model (this process): :func:`seq2seq.training.dev_eval.dev_scores`
        with the weight average when ``train.ema_decay`` is set.

        Returns:
            ``{"loss", "nll", "ppl", "bleu", "chrf"}``.
        """
        t = self.cfg.train
        with self.averaged():
            return dev_scores(self.model, self.dev_set, self.dev_pairs, self.src_tok,
                              self.tgt_tok, max_tokens=t.max_tokens,
                              label_smoothing=t.label_smoothing,
                              search_cfg=self.cfg.search, beam_size=t.val_beam_size,
                              device=self.device, amp_dtype=self.amp_dtype)

    def translator(self) -> Translator:
        """A :class:`~seq2seq.inference.Translator` around the current model (this process)."""
        return Translator(self.model, self.src_tok, self.tgt_tok, device=self.device,
                          amp_dtype=self.amp_dtype)

    # ------------------------------------------------------------------ training
    def _stream(self) -> Iterator[list[int]]:
        """This rank's batches, epoch after epoch (the sampler tracks the position)."""
        while True:
            n = 0
            for idx in self.sampler:
                n += 1
                yield idx
            if n == 0 and len(self.sampler) == 0:
                raise ValueError("the training set yields no batches for this world size")

    def elapsed(self) -> float:
        """Training wall time in seconds, earlier (resumed) segments included."""
        return self.elapsed_before + (time.perf_counter() - self._t_start)

    def epochs_done(self) -> float:
        """Completed epochs plus the fraction of the current one."""
        e, done = self.data_state["epoch"], self.data_state["batches_done"]
        total = len(self.sampler.epoch_batches(e)) or 1
        return e + done / total

    def budget_progress(self, seconds: float) -> float:
        """Fraction of the budget done after the next update: the largest of the step, epoch
        and time fractions (those with a budget), projected one update ahead.

        Args:
            seconds: the training time that will have passed after the next update (the
                ranks' mean clock plus the last update's duration).
        """
        t = self.cfg.train
        fractions = [0.0]
        if t.max_steps > 0:
            fractions.append((self.step + 1) / t.max_steps)
        if t.max_epochs > 0:
            per_update = self.epochs_done() / self.step if self.step else 0.0
            fractions.append((self.epochs_done() + per_update) / t.max_epochs)
        if t.max_minutes > 0:
            fractions.append(seconds / (t.max_minutes * 60))
        return max(fractions)

    def train_step(self, batches: list[Batch], global_tokens: int) -> dict[str, torch.Tensor]:
        """One update (:class:`~seq2seq.training.update.Updater`); counts it."""
        stats = self.updater(batches, global_tokens, self.step)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return stats

    def _stop_reason(self) -> str | None:
        t = self.cfg.train
        if t.max_steps > 0 and self.step >= t.max_steps:
            return "max_steps"
        if t.max_epochs > 0 and self.epochs_done() >= t.max_epochs:
            return "max_epochs"
        if t.patience > 0 and self.selection.bad_validations >= t.patience:
            return "early_stopping"
        return None

    def _validate_and_save(self) -> None:
        """Rank 0 validates; every rank gets the scores, updates its state, saves (collective)."""
        dev = self.validate() if self.ctx.is_main else None
        dev = D.broadcast_object(dev, self.ctx)
        self.last_dev = dev
        self.last_val_step = self.step
        self._last_val_time = time.perf_counter()
        improved, kept = self.selection.report(self.step, dev)
        decayed = self.schedule.report(self.selection.signal(dev))
        self.history.log_dev(self.step, self.epochs_done(), dev, self.schedule.lr, self.elapsed())
        if self.ctx.is_main:
            sel = self.selection
            log.info("dev @ %d: loss %.3f ppl %.2f BLEU %.2f chrF %.2f%s%s", self.step,
                     dev["loss"], dev["ppl"], dev["bleu"], dev["chrf"],
                     f" (best {sel.metric})" if improved else
                     f" (best {sel.metric} {sel.best_value:.4g} @ {sel.best_step})",
                     f"; lr -> {self.schedule.lr:.2e}" if decayed else "")
        self._save(improved, kept)
        self.history.plot()

    def fit(self) -> TrainResult:
        """Run (or resume) training until a stop condition; validate and checkpoint at the end.

        Returns:
            :class:`TrainResult`.
        """
        t = self.cfg.train
        self._setup_threads()
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._build()
        if self.ctx.is_main:
            log.info("device %s, precision %s", self.device,
                     precision_reason(t.precision, self.device))
        self._t_start = time.perf_counter()
        self._last_val_time = self._t_start
        stream = self._stream()
        acc = {"loss": 0.0, "nll": 0.0, "ntokens": 0.0}
        t_log = time.perf_counter()
        tty = sys.stderr.isatty()
        bar = tqdm(total=t.max_steps or None, initial=self.step, desc="train", unit="upd",
                   disable=not self.ctx.is_main, dynamic_ncols=True,
                   mininterval=0.5 if tty else 30.0)
        self.model.train()
        reason = None
        update_s = 0.0  # the last update's duration: the time budget's projection
        with logging_redirect_tqdm(), StopSignals() as stop:
            while True:
                time_up = t.max_minutes > 0 and self.elapsed() >= t.max_minutes * 60
                reason = self._stop_reason()
                if reason:
                    break
                val_due = (t.validate_minutes > 0 and
                           time.perf_counter() - self._last_val_time >= t.validate_minutes * 60)
                idx = [next(stream) for _ in range(t.accum_steps)]
                batches = [self.train_set.batch(i).to(self.device) for i in idx]
                # agree on the update's token count and on time-based decisions (rank clocks differ)
                sync = torch.tensor([sum(b.ntokens for b in batches), float(time_up),
                                     float(val_due), float(stop.requested), self.elapsed(),
                                     update_s], dtype=torch.float64)
                if self.ctx.enabled and self.device.type == "cuda":
                    sync = sync.to(self.device)
                D.all_reduce_sum(sync, self.ctx)
                n = max(1, self.ctx.world_size)  # every rank: the mean clock, the same progress
                self.schedule.set_progress(self.budget_progress(float(sync[4] + sync[5]) / n))
                if sync[3] > 0:  # SIGTERM/SIGINT on any rank: all stop before this update
                    reason = "preempted"
                    break
                if sync[1] > 0:
                    reason = "max_minutes"
                    break
                t_update = time.perf_counter()
                stats = self.train_step(batches, int(sync[0]))
                update_s = time.perf_counter() - t_update
                self.data_state = self.sampler.state_dict()
                for k in acc:
                    acc[k] += float(stats[k])
                bar.update(1)
                if self.step % max(1, t.log_every) == 0:
                    tot = torch.tensor([acc["loss"], acc["nll"], acc["ntokens"]],
                                       dtype=torch.float64)
                    if self.ctx.enabled and self.device.type == "cuda":
                        tot = tot.to(self.device)
                    D.all_reduce_sum(tot, self.ctx)
                    now = time.perf_counter()
                    loss, nll = float(tot[0] / tot[2]), float(tot[1] / tot[2])
                    tps = float(tot[2]) / max(now - t_log, 1e-9)
                    self.history.log_train(self.step, self.epochs_done(), loss, nll,
                                           self.schedule.lr, tps, self.elapsed())
                    bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(nll, 50)):.1f}",
                                    lr=f"{self.schedule.lr:.1e}", tok_s=f"{tps:.0f}",
                                    ep=f"{self.epochs_done():.2f}", refresh=False)
                    acc = dict.fromkeys(acc, 0.0)
                    t_log = now
                if (t.validate_every > 0 and self.step % t.validate_every == 0) or sync[2] > 0:
                    self._validate_and_save()
            if reason == "preempted":  # no validation: the grace period is short
                self._save(improved=False)
            elif self.step > 0 and self.last_val_step != self.step:
                self._validate_and_save()
        bar.close()
        self.history.close()
        sel = self.selection
        best_bleu = (sel.best_dev or {}).get("bleu")
        if self.ctx.is_main:
            log.info("stopped (%s) at update %d, %.2f epochs, %.1f min; best dev %s %s @ %s",
                     reason, self.step, self.epochs_done(), self.elapsed() / 60, sel.metric,
                     f"{sel.best_value:.4g}" if sel.best_value is not None else "-",
                     sel.best_step)
        D.barrier(self.ctx)
        return TrainResult(step=self.step, epochs=self.epochs_done(), best_bleu=best_bleu,
                           best_step=sel.best_step, best_metric=str(sel.metric),
                           best_value=sel.best_value, last_dev=self.last_dev,
                           stop_reason=reason or "", elapsed_s=self.elapsed(),
                           run_dir=self.run_dir)
