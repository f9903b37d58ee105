"""Training loop: token-bucketed batches, accumulation, AMP, validation, checkpoints, resume, DDP.

:class:`Trainer` takes a :class:`~seq2seq.training.job.PreparedJob` (the plain
:class:`~seq2seq.config.TrainJobConfig`, checked, with its device, precision and init bundle
resolved by :func:`~seq2seq.training.job.prepare_job`) and a run directory (no Hydra here) and
does everything ``seq2seq-train`` promises, with the parts in their own modules::

    Trainer(prepare_job(TrainJobConfig(...)), "runs/x").fit()

* the run's counters, clock and stateful components in one
  :class:`~seq2seq.training.train_state.TrainState` (what ``last.pt`` holds beside the weights);
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
from seq2seq.config import plain
from seq2seq.data import Batch, TokenBatchSampler
from seq2seq.inference import Translator
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.runtime import precision_reason, rng_state, set_rng_state
from seq2seq.training import distributed as D
from seq2seq.training.dev_eval import dev_scores
from seq2seq.training.ema import WeightAverage
from seq2seq.training.history import TrainingHistory
from seq2seq.training.job import PreparedJob
from seq2seq.training.job_data import (
    encode_datasets,
    load_pairs,
    source_style,
    train_job_tokenizers,
)
from seq2seq.training.preemption import StopSignals
from seq2seq.training.run_checkpoints import RunCheckpoints
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.selection import ModelSelection
from seq2seq.training.train_state import TrainState
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
        job: the prepared job (:func:`~seq2seq.training.job.prepare_job`; paths relative to
            the current directory).
        run_dir: output directory (Hydra's ``hydra.run.dir`` from the entry point).
        ctx: distributed context (defaults to the launcher's environment; call
            :func:`seq2seq.training.distributed.init_distributed` first under ``torchrun``).

    Attributes:
        state: the run's :class:`~seq2seq.training.train_state.TrainState` (after
            :meth:`fit` has built it).
    """

    def __init__(self, job: PreparedJob, run_dir: str | Path,
                 ctx: D.DistContext | None = None) -> None:
        self.job = job
        self.cfg = job.cfg
        self.run_dir = Path(run_dir)
        self.ctx = ctx or D.DistContext()
        self.device = job.device
        if self.device.type == "cuda" and self.ctx.enabled:
            self.device = torch.device("cuda", self.ctx.local_rank)
        self.amp_dtype = job.amp_dtype
        self.checkpoints = RunCheckpoints(self.run_dir / "checkpoints")
        self.init_origin: dict[str, Any] | None = None

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
        init = self.job.init if bundle is None else None
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
        self.source_style = source_style(self.train_pairs) if self.ctx.is_main else {}
        self.model_cfg = (model_config_from_bundle(bundle) if bundle else
                          init.model_cfg if init else cfg.model)
        if bundle and self.model_cfg != cfg.model:
            log.warning("resuming with the checkpoint's model config %s (ignoring model.*)",
                        self.model_cfg)
        self.train_set, self.dev_set = encode_datasets(
            self.train_pairs, self.dev_pairs, self.src_tok, self.tgt_tok, cfg.data, cfg.seed,
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
        sampler = TokenBatchSampler(self.train_set.sizes, t.max_tokens, seed=cfg.seed)
        self.state = TrainState(
            optimizer=self.optimizer,
            schedule=LRSchedule(self.optimizer, t.schedule, t.lr, t.warmup_steps, t.lr_decay,
                                t.lr_patience, t.min_lr, t.cooldown),
            sampler=sampler.shard(self.ctx.rank, self.ctx.world_size),
            selection=ModelSelection(t.best_metric, t.keep_best),
            history=TrainingHistory(self.run_dir, write=self.ctx.is_main,
                                    tensorboard=t.tensorboard),
            scaler=torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None,
            ema=WeightAverage(self.model, t.ema_decay) if t.ema_decay > 0 else None)
        # different dropout masks per rank; the same init everywhere (seeded above)
        torch.manual_seed(cfg.seed + 1000 * self.ctx.rank + 1)
        if bundle:
            self.state.load_state_dict(bundle["train_state"])
            self._restore_rng(bundle["train_state"]["rng"])
        elif init:
            self.state.carry_over(init.bundle.get("train_state"), t)
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp: torch.nn.Module = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model
        self.updater = Updater(
            ddp=self.ddp, model=self.model, optimizer=self.optimizer,
            schedule=self.state.schedule, scaler=self.state.scaler, device=self.device,
            amp_dtype=self.amp_dtype, world_size=self.ctx.world_size,
            distributed=self.ctx.enabled, label_smoothing=t.label_smoothing,
            clip_norm=t.clip_norm)

    def _restore_rng(self, rngs: list[dict[str, Any]]) -> None:
        """This rank's RNG states from a checkpoint; one of another world size reseeds."""
        if len(rngs) == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank], self.device)
        else:
            log.warning("checkpoint has RNG states of %d ranks, this job has %d: reseeding",
                        len(rngs), self.ctx.world_size)
            torch.manual_seed(self.cfg.seed + 1000 * self.ctx.rank + self.state.step)

    def _bundle(self, train_state: dict[str, Any] | None, dev_bleu: float | None) -> dict:
        config = plain(self.cfg)
        config.pop("defaults", None)
        meta = {"src_lang": self.cfg.data.src_lang, "tgt_lang": self.cfg.data.tgt_lang,
                "step": self.state.step, "dev_bleu": dev_bleu, "config": config}
        if self.init_origin is not None:
            meta["init_from"] = self.init_origin
        return make_bundle(self.model, self.model_cfg, self.src_tok, self.tgt_tok, meta,
                           train_state, **self.source_style)

    def _save(self, improved: bool, kept: bool = False) -> None:
        """Write last.pt (+ step_<N>.pt, + best.pt when improved, + best_step_<N>.pt when among
        the ``keep_best`` best); collective over ranks."""
        rngs = D.all_gather_object(rng_state(self.device), self.ctx)
        if not self.ctx.is_main:
            return
        st = self.state
        bleu = st.last_dev["bleu"] if st.last_dev else None
        self.checkpoints.save(st.step, self._bundle(st.state_dict(rngs), bleu),
                              self.cfg.train.keep_last)
        if improved or kept:
            # written inside the block: the bundle's tensors share storage with the model
            with self.averaged():
                lean = self._bundle(None, bleu)
                if improved:
                    self.checkpoints.save_best(lean)
                if kept and self.cfg.train.keep_best > 1:
                    self.checkpoints.save_kept_best(st.step, lean, st.selection.kept_steps)

    # ------------------------------------------------------------------ validation
    def averaged(self) -> contextlib.AbstractContextManager:
        """Within the block the model holds the weight average (``train.ema_decay``), if any."""
        ema = self.state.ema
        return ema.applied() if ema is not None else contextlib.nullcontext()

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
        sampler = self.state.sampler
        while True:
            n = 0
            for idx in sampler:
                n += 1
                yield idx
            if n == 0 and len(sampler) == 0:
                raise ValueError("the training set yields no batches for this world size")

    def train_step(self, batches: list[Batch], global_tokens: int) -> dict[str, torch.Tensor]:
        """One update (:class:`~seq2seq.training.update.Updater`); counts it."""
        st = self.state
        stats = self.updater(batches, global_tokens, st.step)
        if st.ema is not None:
            st.ema.update()
        st.count_update()
        return stats

    def _stop_reason(self) -> str | None:
        t, st = self.cfg.train, self.state
        if t.max_steps > 0 and st.step >= t.max_steps:
            return "max_steps"
        if t.max_epochs > 0 and st.epochs_done() >= t.max_epochs:
            return "max_epochs"
        if t.patience > 0 and st.selection.bad_validations >= t.patience:
            return "early_stopping"
        return None

    def _validate_and_save(self) -> None:
        """Rank 0 validates; every rank gets the scores, updates its state, saves (collective)."""
        st = self.state
        dev = self.validate() if self.ctx.is_main else None
        dev = D.broadcast_object(dev, self.ctx)
        st.validated(dev)
        self._last_val_time = time.perf_counter()
        improved, kept = st.selection.report(st.step, dev)
        decayed = st.schedule.report(st.selection.signal(dev))
        st.history.log_dev(st.step, st.epochs_done(), dev, st.schedule.lr, st.elapsed())
        if self.ctx.is_main:
            sel = st.selection
            log.info("dev @ %d: loss %.3f ppl %.2f BLEU %.2f chrF %.2f%s%s", st.step,
                     dev["loss"], dev["ppl"], dev["bleu"], dev["chrf"],
                     f" (best {sel.metric})" if improved else
                     f" (best {sel.metric} {sel.best_value:.4g} @ {sel.best_step})",
                     f"; lr -> {st.schedule.lr:.2e}" if decayed else "")
        self._save(improved, kept)
        st.history.plot()

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
        st = self.state
        if self.ctx.is_main:
            log.info("device %s, precision %s", self.device,
                     precision_reason(t.precision, self.device))
        st.start_clock()
        self._last_val_time = time.perf_counter()
        bar = tqdm(total=t.max_steps or None, initial=st.step, desc="train", unit="upd",
                   disable=not self.ctx.is_main, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0)
        self.model.train()
        with logging_redirect_tqdm(), StopSignals() as stop:
            reason = self._loop(stop, bar)
            if reason == "preempted":  # no validation: the grace period is short
                self._save(improved=False)
            elif st.step > 0 and st.last_val_step != st.step:
                self._validate_and_save()
        bar.close()
        st.history.close()
        sel = st.selection
        if self.ctx.is_main:
            log.info("stopped (%s) at update %d, %.2f epochs, %.1f min; best dev %s %s @ %s",
                     reason, st.step, st.epochs_done(), st.elapsed() / 60, sel.metric,
                     f"{sel.best_value:.4g}" if sel.best_value is not None else "-",
                     sel.best_step)
        D.barrier(self.ctx)
        return TrainResult(step=st.step, epochs=st.epochs_done(),
                           best_bleu=(sel.best_dev or {}).get("bleu"), best_step=sel.best_step,
                           best_metric=str(sel.metric), best_value=sel.best_value,
                           last_dev=st.last_dev, stop_reason=reason, elapsed_s=st.elapsed(),
                           run_dir=self.run_dir)

    def _loop(self, stop: StopSignals, bar: tqdm) -> str:
        """Update until a stop condition; return its reason."""
        t, st = self.cfg.train, self.state
        stream = self._stream()
        self._meter = {"loss": 0.0, "nll": 0.0, "ntokens": 0.0, "since": time.perf_counter()}
        update_s = 0.0  # the last update's duration: the time budget's projection
        progress = 0.0  # never back: a short update after a long one must not raise the rate
        while True:
            time_up = t.max_minutes > 0 and st.elapsed() >= t.max_minutes * 60
            reason = self._stop_reason()
            if reason:
                return reason
            val_due = (t.validate_minutes > 0 and
                       time.perf_counter() - self._last_val_time >= t.validate_minutes * 60)
            idx = [next(stream) for _ in range(t.accum_steps)]
            batches = [self.train_set.batch(i).to(self.device) for i in idx]
            # agree on the update's token count and on time-based decisions (rank clocks differ)
            sync = self._all_sum([sum(b.ntokens for b in batches), float(time_up), float(val_due),
                                  float(stop.requested), st.elapsed(), update_s])
            n = max(1, self.ctx.world_size)  # every rank: the mean clock, the same progress
            progress = max(progress, st.budget_progress(t, float(sync[4] + sync[5]) / n))
            st.schedule.set_progress(progress)
            if sync[3] > 0:  # SIGTERM/SIGINT on any rank: all stop before this update
                return "preempted"
            if sync[1] > 0:
                return "max_minutes"
            t_update = time.perf_counter()
            stats = self.train_step(batches, int(sync[0]))
            update_s = time.perf_counter() - t_update
            for k in ("loss", "nll", "ntokens"):
                self._meter[k] += float(stats[k])
            bar.update(1)
            if st.step % max(1, t.log_every) == 0:
                self._log_train(bar)
            if (t.validate_every > 0 and st.step % t.validate_every == 0) or sync[2] > 0:
                self._validate_and_save()

    def _all_sum(self, values: list[float]) -> torch.Tensor:
        """``values`` summed over the ranks (float64; the values themselves without DDP)."""
        out = torch.tensor(values, dtype=torch.float64)
        if self.ctx.enabled and self.device.type == "cuda":
            out = out.to(self.device)
        D.all_reduce_sum(out, self.ctx)
        return out

    def _log_train(self, bar: tqdm) -> None:
        """Training loss, perplexity and tokens/s since the last log line (all ranks)."""
        st, m = self.state, self._meter
        tot = self._all_sum([m["loss"], m["nll"], m["ntokens"]])
        now = time.perf_counter()
        loss, nll = float(tot[0] / tot[2]), float(tot[1] / tot[2])
        tps = float(tot[2]) / max(now - m["since"], 1e-9)
        st.history.log_train(st.step, st.epochs_done(), loss, nll, st.schedule.lr, tps,
                             st.elapsed())
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(nll, 50)):.1f}",
                        lr=f"{st.schedule.lr:.1e}", tok_s=f"{tps:.0f}",
                        ep=f"{st.epochs_done():.2f}", refresh=False)
        self._meter = {"loss": 0.0, "nll": 0.0, "ntokens": 0.0, "since": now}
