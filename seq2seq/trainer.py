"""Training loop: token-bucketed batches, accumulation, AMP, validation, checkpoints, resume, DDP.

:class:`Trainer` takes the plain :class:`~seq2seq.config.TrainJobConfig` and a run directory (no
Hydra here) and does everything ``seq2seq-train`` promises:

* sentencepiece models trained from the training split (or taken from the checkpoint on resume);
* teacher-forced, label-smoothed, padding-masked cross entropy over all target positions,
  normalised by the number of target tokens in the *whole* update (all micro-batches of the
  gradient accumulation and all DDP ranks), Adam/AdamW, gradient clipping, an
  :class:`~seq2seq.schedule.LRSchedule`;
* CUDA with bf16/fp16 autocast (+ ``GradScaler`` for fp16) or CPU fp32;
* validation every ``validate_every`` updates and/or ``validate_minutes``: dev loss, perplexity and
  sacreBLEU of greedy/beam output, best-by-BLEU checkpoint, early stopping;
* checkpoints ``<run_dir>/checkpoints/{last.pt,best.pt,step_<N>.pt}`` holding everything needed to
  resume exactly (optimizer, schedule, sampler position, every rank's RNG state, history), so a
  run killed at any moment continues from its last checkpoint without repeating or skipping data;
* ``<run_dir>/metrics.csv`` and ``<run_dir>/curves.png``.

Under ``torchrun`` each rank takes ``batches[rank::world_size]`` of every epoch's batch list; only
rank 0 writes files, validates, and broadcasts the dev scores so every rank stops together.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from seq2seq import distributed as D
from seq2seq.checkpoint import (
    load_bundle,
    make_bundle,
    model_config_from_bundle,
    save_bundle,
    tokenizers_from_bundle,
)
from seq2seq.config import TrainJobConfig
from seq2seq.data import Batch, ParallelDataset, TokenBatchSampler, load_parallel
from seq2seq.loss import label_smoothed_cross_entropy
from seq2seq.model import Seq2Seq
from seq2seq.schedule import LRSchedule
from seq2seq.tokenizer import Tokenizer, train_tokenizers

log = logging.getLogger(__name__)

# one row per log line (train_*) or validation (dev_*); empty cells elsewhere
CSV_FIELDS = ("step", "epoch", "train_loss", "train_nll", "train_ppl", "dev_loss", "dev_nll",
              "dev_ppl", "dev_bleu", "dev_chrf", "lr", "tokens_per_s", "elapsed_min")


@dataclasses.dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        step: updates done.
        epochs: completed epochs plus the fraction of the current one.
        best_bleu: best dev BLEU (None if never validated).
        best_step: update of the best checkpoint.
        last_dev: scores of the last validation.
        stop_reason: ``"max_steps"``, ``"max_epochs"``, ``"max_minutes"`` or ``"early_stopping"``.
        elapsed_s: training wall time, resumed segments included.
        run_dir: output directory.
    """

    step: int
    epochs: float
    best_bleu: float | None
    best_step: int | None
    last_dev: dict[str, float] | None
    stop_reason: str
    elapsed_s: float
    run_dir: Path


def resolve_device(name: str) -> torch.device:
    """``train.device`` -> device (``auto`` = CUDA when present)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"train.device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """``train.precision`` -> autocast dtype (None = fp32)."""
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    table = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in table:
        raise ValueError(f"train.precision must be auto|fp32|bf16|fp16, got {name!r}")
    if name == "fp16" and device.type != "cuda":
        raise ValueError("train.precision=fp16 needs CUDA; use bf16 or fp32 on CPU")
    return table[name]


def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as plain data."""
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "python": [py[0], list(py[1]), py[2]],
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def check_config(cfg: TrainJobConfig) -> None:
    """Fail fast (before any data is read) with a ``ValueError`` naming a bad setting."""
    from seq2seq.attention import ATTENTION_TYPES
    from seq2seq.encoder import RNN_TYPES
    from seq2seq.search import check_config as check_search
    from seq2seq.tokenizer import MODEL_TYPES

    m, d, t = cfg.model, cfg.data, cfg.train
    if m.rnn not in RNN_TYPES:
        raise ValueError(f"model.rnn must be one of {RNN_TYPES}, got {m.rnn!r}")
    if m.attention not in ATTENTION_TYPES:
        raise ValueError(f"model.attention must be one of {ATTENTION_TYPES}, got {m.attention!r}")
    if not 0.0 <= m.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if d.spm_model_type not in MODEL_TYPES:
        raise ValueError(f"data.spm_model_type must be one of {MODEL_TYPES}, "
                         f"got {d.spm_model_type!r}")
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev"):
        path = getattr(d, key)
        if not path:
            raise ValueError(f"data.{key} is not set: give a file, e.g. data.{key}=path/to/file")
        if not os.path.exists(path):
            raise ValueError(f"data.{key}: file {path} does not exist")
    if d.vocab_size < 8:
        raise ValueError(f"data.vocab_size must be >= 8, got {d.vocab_size}")
    if t.accum_steps < 1:
        raise ValueError(f"train.accum_steps must be >= 1, got {t.accum_steps}")
    if t.max_tokens < 1:
        raise ValueError(f"train.max_tokens must be >= 1, got {t.max_tokens}")
    if t.optimizer not in ("adam", "adamw"):
        raise ValueError(f"train.optimizer must be 'adam' or 'adamw', got {t.optimizer!r}")
    if len(t.betas) != 2:
        raise ValueError(f"train.betas must hold two numbers, got {list(t.betas)}")
    if not 0.0 <= t.label_smoothing < 1.0:
        raise ValueError(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
    if t.val_beam_size < 1:
        raise ValueError(f"train.val_beam_size must be >= 1, got {t.val_beam_size}")
    if t.max_steps <= 0 and t.max_epochs <= 0 and t.max_minutes <= 0:
        raise ValueError("set at least one of train.max_steps, train.max_epochs, "
                         "train.max_minutes (all are 0 = unlimited)")
    LRSchedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), t.schedule, t.lr,
               t.warmup_steps, t.lr_decay, t.lr_patience, t.min_lr)  # validates train.schedule...
    check_search(dataclasses.replace(cfg.search, beam_size=t.val_beam_size, n_best=1))


class Trainer:
    """Trains a :class:`~seq2seq.model.Seq2Seq` as configured.

    Args:
        cfg: the job config (dataclasses; paths relative to the current directory).
        run_dir: output directory (Hydra's ``hydra.run.dir`` from the entry point).
        ctx: distributed context (defaults to the launcher's environment; call
            :func:`seq2seq.distributed.init_distributed` first under ``torchrun``).
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
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.csv_path = self.run_dir / "metrics.csv"
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.best_bleu: float | None = None
        self.best_step: int | None = None
        self.bad_validations = 0
        self.last_val_step = 0
        self.last_dev: dict[str, float] | None = None
        self.elapsed_before = 0.0
        check_config(cfg)

    # ------------------------------------------------------------------ setup
    def _setup_threads(self) -> None:
        if self.device.type == "cpu":
            n = self.cfg.train.threads or (os.cpu_count() or 1)
            torch.set_num_threads(max(1, n))

    def _tokenizers(self, bundle: dict[str, Any] | None) -> tuple[Tokenizer, Tokenizer]:
        """From the resume bundle, else trained on the training split (on rank 0, broadcast)."""
        if bundle is not None:
            return tokenizers_from_bundle(bundle)
        d = self.cfg.data
        protos = None
        if self.ctx.is_main:
            t0 = time.perf_counter()
            pairs = self.train_pairs
            src, tgt = train_tokenizers(
                [p[0] for p in pairs], [p[1] for p in pairs], d.vocab_size,
                model_type=d.spm_model_type, joint=d.joint_vocab, seed=self.cfg.seed,
                hard_vocab_limit=False,
            )
            for side, tok in (("src", src), ("tgt", tgt)):
                if tok.vocab_size < d.vocab_size:
                    log.warning("%s sentencepiece vocabulary has %d pieces, fewer than "
                                "data.vocab_size=%d (small corpus)", side, tok.vocab_size,
                                d.vocab_size)
            log.info("trained sentencepiece (%s, %d/%d pieces) in %.1fs", d.spm_model_type,
                     src.vocab_size, tgt.vocab_size, time.perf_counter() - t0)
            protos = (src.to_bytes(), tgt.to_bytes())
            spm_dir = self.run_dir / "spm"
            spm_dir.mkdir(parents=True, exist_ok=True)
            (spm_dir / f"{d.src_lang}.model").write_bytes(protos[0])
            (spm_dir / f"{d.tgt_lang}.model").write_bytes(protos[1])
        protos = D.broadcast_object(protos, self.ctx)
        src = Tokenizer(protos[0])
        return (src, src) if d.joint_vocab else (src, Tokenizer(protos[1]))

    def _load_data(self) -> None:
        d = self.cfg.data
        self.train_pairs = load_parallel(d.src_train, d.tgt_train)
        dev_pairs = load_parallel(d.src_dev, d.tgt_dev)
        if d.dev_max_sentences > 0:
            dev_pairs = dev_pairs[: d.dev_max_sentences]
        self.dev_pairs = dev_pairs

    def _build(self) -> None:
        """Tokenizers, datasets, model, optimizer, schedule, sampler; restore state on resume."""
        cfg, t = self.cfg, self.cfg.train
        self._load_data()
        last = self.ckpt_dir / "last.pt"
        bundle = None
        if t.resume:
            exists = D.broadcast_object(last.exists(), self.ctx)
            if exists:
                bundle = load_bundle(last)
                if bundle.get("train_state") is None:
                    raise ValueError(f"{last} holds no training state; cannot resume from it")
                log.info("resuming from %s (step %d)", last, bundle["train_state"]["step"])
            else:
                log.info("train.resume=true but %s does not exist: starting a new run", last)
        self.src_tok, self.tgt_tok = self._tokenizers(bundle)
        self.model_cfg = model_config_from_bundle(bundle) if bundle else cfg.model
        if bundle and self.model_cfg != cfg.model:
            log.warning("resuming with the checkpoint's model config %s (ignoring model.*)",
                        self.model_cfg)
        self.train_set = ParallelDataset.from_pairs(
            self.train_pairs, self.src_tok, self.tgt_tok, cfg.data.max_src_len,
            cfg.data.max_tgt_len)
        if len(self.train_set) == 0:
            raise ValueError(f"no training pairs left after filtering {cfg.data.src_train}")
        self.dev_set = ParallelDataset.from_pairs(self.dev_pairs, self.src_tok, self.tgt_tok)
        if self.ctx.is_main:
            log.info("train: %d pairs (%d dropped), dev: %d pairs, vocab %d/%d",
                     len(self.train_set), self.train_set.n_dropped, len(self.dev_pairs),
                     self.src_tok.vocab_size, self.tgt_tok.vocab_size)

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = Seq2Seq(self.model_cfg, self.src_tok.vocab_size, self.tgt_tok.vocab_size)
        if bundle:
            self.model.load_state_dict(bundle["model"])
        self.model.to(self.device)
        opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.model.parameters(), lr=t.lr, betas=tuple(t.betas),
                                 weight_decay=t.weight_decay)
        self.schedule = LRSchedule(self.optimizer, t.schedule, t.lr, t.warmup_steps, t.lr_decay,
                                   t.lr_patience, t.min_lr)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        sampler = TokenBatchSampler(self.train_set.sizes, t.max_tokens, seed=cfg.seed)
        self.sampler = sampler.shard(self.ctx.rank, self.ctx.world_size)
        # different dropout masks per rank; the same init everywhere (seeded above)
        torch.manual_seed(cfg.seed + 1000 * self.ctx.rank + 1)
        if bundle:
            self._restore(bundle["train_state"])
        self.data_state = self.sampler.state_dict()
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp: torch.nn.Module = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model

    def _restore(self, ts: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(ts["optimizer"])
        self.schedule.load_state_dict(ts["scheduler"])
        if self.scaler is not None and ts.get("scaler"):
            self.scaler.load_state_dict(ts["scaler"])
        self.sampler.load_state_dict(ts["sampler"])
        self.step = int(ts["step"])
        self.best_bleu = ts["best_bleu"]
        self.best_step = ts["best_step"]
        self.bad_validations = int(ts["bad_validations"])
        self.last_val_step = int(ts["last_val_step"])
        self.last_dev = ts["last_dev"]
        self.elapsed_before = float(ts["elapsed_s"])
        self.history = [dict(r) for r in ts["history"]]
        rngs = ts["rng"]
        if len(rngs) == self.ctx.world_size:
            _set_rng_state(rngs[self.ctx.rank], self.device)
        else:
            log.warning("checkpoint has RNG states of %d ranks, this job has %d: reseeding",
                        len(rngs), self.ctx.world_size)
            torch.manual_seed(self.cfg.seed + 1000 * self.ctx.rank + self.step)
        if self.ctx.is_main:
            self._rewrite_csv()

    # ------------------------------------------------------------------ files (rank 0)
    def _rewrite_csv(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            for row in self.history:
                w.writerow({k: row.get(k, "") for k in CSV_FIELDS})

    def _append_row(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if not self.ctx.is_main:
            return
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in CSV_FIELDS})

    def _plot(self) -> None:
        try:
            from seq2seq.plots import plot_training_curves

            plot_training_curves(self.history, self.run_dir / "curves.png")
        except Exception as err:  # a plot must never kill a training run
            log.warning("could not write curves.png: %s", err)

    def _train_state(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "epoch": self.data_state["epoch"],
            "sampler": dict(self.data_state),
            "rng": rngs,
            "world_size": self.ctx.world_size,
            "best_bleu": self.best_bleu,
            "best_step": self.best_step,
            "bad_validations": self.bad_validations,
            "last_val_step": self.last_val_step,
            "last_dev": self.last_dev,
            "elapsed_s": self.elapsed(),
            "history": [dict(r) for r in self.history],
        }

    def _bundle(self, train_state: dict[str, Any] | None, dev_bleu: float | None) -> dict:
        config = dataclasses.asdict(self.cfg)
        config.pop("defaults", None)
        meta = {"src_lang": self.cfg.data.src_lang, "tgt_lang": self.cfg.data.tgt_lang,
                "step": self.step, "dev_bleu": dev_bleu, "config": config}
        return make_bundle(self.model, self.model_cfg, self.src_tok, self.tgt_tok, meta,
                           train_state)

    def _save(self, improved: bool) -> None:
        """Write last.pt (+ step_<N>.pt, + best.pt when improved); collective over ranks."""
        rngs = D.all_gather_object(_rng_state(self.device), self.ctx)
        if not self.ctx.is_main:
            return
        bleu = self.last_dev["bleu"] if self.last_dev else None
        last = self.ckpt_dir / "last.pt"
        save_bundle(last, self._bundle(self._train_state(rngs), bleu))
        if self.cfg.train.keep_last > 0:
            step_path = self.ckpt_dir / f"step_{self.step}.pt"
            shutil.copyfile(last, step_path.with_name(step_path.name + ".tmp"))
            os.replace(step_path.with_name(step_path.name + ".tmp"), step_path)
            olds = sorted(self.ckpt_dir.glob("step_*.pt"), key=lambda p: int(p.stem[5:]))
            for p in olds[: -self.cfg.train.keep_last]:
                p.unlink(missing_ok=True)
        if improved:
            save_bundle(self.ckpt_dir / "best.pt", self._bundle(None, bleu))

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Dev loss/perplexity (teacher forcing) and BLEU/chrF of search output (this process).

        Returns:
            ``{"loss", "nll", "ppl", "bleu", "chrf"}``.
        """
        from seq2seq.metrics import corpus_scores

        model = self.model
        was_training = model.training
        model.eval()
        try:
            loss_sum = nll_sum = 0.0
            ntok = 0
            sampler = TokenBatchSampler(self.dev_set.sizes, self.cfg.train.max_tokens,
                                        shuffle=False)
            for idx in sampler:
                b = self.dev_set.batch(idx).to(self.device)
                with self._autocast():
                    logits = model(b.src, b.src_len, b.tgt_in)  # (B, T, V)
                out = label_smoothed_cross_entropy(logits, b.tgt_out,
                                                   self.cfg.train.label_smoothing)
                loss_sum += float(out.loss)
                nll_sum += float(out.nll)
                ntok += out.ntokens
            scfg = dataclasses.replace(self.cfg.search, beam_size=self.cfg.train.val_beam_size,
                                       n_best=1, return_alignment=False)
            hyps = self.translate_ids([self.src_tok.encode(p[0]) for p in self.dev_pairs], scfg)
            refs = [p[1] for p in self.dev_pairs]
            scores = corpus_scores(hyps, refs)
        finally:
            model.train(was_training)
        nll = nll_sum / max(ntok, 1)
        return {"loss": loss_sum / max(ntok, 1), "nll": nll, "ppl": math.exp(min(nll, 50.0)),
                "bleu": float(scores["bleu"]), "chrf": float(scores["chrf"])}

    def translate_ids(self, srcs: list[list[int]], scfg: Any) -> list[str]:
        """Detokenized best hypotheses for source id lists (sorted by length for batching).

        Args:
            srcs: source ids without special tokens (empty ones give ``""``).
            scfg: :class:`~seq2seq.config.SearchConfig`.

        Returns:
            One string per source, in input order.
        """
        from seq2seq.data import pad_sequences
        from seq2seq.search import search

        out = [""] * len(srcs)
        order = sorted((i for i in range(len(srcs)) if srcs[i]), key=lambda i: len(srcs[i]))
        bs = max(1, scfg.batch_size)
        for start in range(0, len(order), bs):
            chunk = order[start : start + bs]
            src, src_len = pad_sequences([srcs[i] for i in chunk])  # (B, S), (B,)
            with self._autocast():
                hyps = search(self.model, src.to(self.device), src_len.to(self.device), scfg)
            for i, h in zip(chunk, hyps, strict=True):
                out[i] = self.tgt_tok.decode(h[0].tokens)
        return out

    # ------------------------------------------------------------------ training
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

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

    def train_step(self, batches: list[Batch], global_tokens: int) -> dict[str, torch.Tensor]:
        """One update from this rank's micro-batches (accumulated), loss / global tokens.

        Args:
            batches: this rank's ``accum_steps`` micro-batches, on the device.
            global_tokens: target tokens of the update summed over micro-batches and ranks.

        Returns:
            Detached sums ``{"loss", "nll", "ntokens"}`` of this rank and the gradient norm.
        """
        t = self.cfg.train
        scale = self.ctx.world_size / max(global_tokens, 1)  # DDP averages over ranks
        loss_sum = torch.zeros((), device=self.device)
        nll_sum = torch.zeros((), device=self.device)
        ntok = 0
        for i, b in enumerate(batches):
            sync = i == len(batches) - 1
            no_sync = (self.ddp.no_sync() if self.ctx.enabled and not sync
                       else contextlib.nullcontext())
            with no_sync:
                with self._autocast():
                    logits = self.ddp(b.src, b.src_len, b.tgt_in)  # (B, T, V)
                out = label_smoothed_cross_entropy(logits, b.tgt_out, t.label_smoothing)
                loss = out.loss * scale
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            loss_sum += out.loss.detach()
            nll_sum += out.nll
            ntok += out.ntokens
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = self.model.parameters()
        if t.clip_norm > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(params, t.clip_norm)
        else:
            gnorm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif torch.isfinite(gnorm):
            self.optimizer.step()
        else:
            log.warning("non-finite gradient norm at update %d: update skipped", self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.step += 1
        return {"loss": loss_sum, "nll": nll_sum, "ntokens": torch.tensor(float(ntok)),
                "gnorm": gnorm.detach()}

    def _stop_reason(self) -> str | None:
        t = self.cfg.train
        if t.max_steps > 0 and self.step >= t.max_steps:
            return "max_steps"
        if t.max_epochs > 0 and self.epochs_done() >= t.max_epochs:
            return "max_epochs"
        if t.patience > 0 and self.bad_validations >= t.patience:
            return "early_stopping"
        return None

    def _validate_and_save(self) -> None:
        """Rank 0 validates; every rank gets the scores, updates its state, saves (collective)."""
        dev = self.validate() if self.ctx.is_main else None
        dev = D.broadcast_object(dev, self.ctx)
        self.last_dev = dev
        self.last_val_step = self.step
        self._last_val_time = time.perf_counter()
        improved = self.best_bleu is None or dev["bleu"] > self.best_bleu
        if improved:
            self.best_bleu, self.best_step = dev["bleu"], self.step
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        decayed = self.schedule.report(dev["bleu"])
        row = {"step": self.step, "epoch": round(self.epochs_done(), 4),
               "dev_loss": round(dev["loss"], 5), "dev_nll": round(dev["nll"], 5),
               "dev_ppl": round(dev["ppl"], 3), "dev_bleu": round(dev["bleu"], 3),
               "dev_chrf": round(dev["chrf"], 3), "lr": self.schedule.lr,
               "elapsed_min": round(self.elapsed() / 60, 3)}
        self._append_row(row)
        if self.ctx.is_main:
            log.info("dev @ %d: loss %.3f ppl %.2f BLEU %.2f chrF %.2f%s%s", self.step,
                     dev["loss"], dev["ppl"], dev["bleu"], dev["chrf"],
                     " (best)" if improved else f" (best {self.best_bleu:.2f} @ {self.best_step})",
                     f"; lr -> {self.schedule.lr:.2e}" if decayed else "")
        self._save(improved)
        if self.ctx.is_main:
            self._plot()

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
        with logging_redirect_tqdm():
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
                                     float(val_due)], dtype=torch.float64)
                if self.ctx.enabled and self.device.type == "cuda":
                    sync = sync.to(self.device)
                D.all_reduce_sum(sync, self.ctx)
                if sync[1] > 0:
                    reason = "max_minutes"
                    break
                stats = self.train_step(batches, int(sync[0]))
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
                    self._append_row({
                        "step": self.step, "epoch": round(self.epochs_done(), 4),
                        "train_loss": round(loss, 5), "train_nll": round(nll, 5),
                        "train_ppl": round(math.exp(min(nll, 50.0)), 3),
                        "lr": self.schedule.lr,
                        "tokens_per_s": round(tps, 1),
                        "elapsed_min": round(self.elapsed() / 60, 3)})
                    bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(nll, 50)):.1f}",
                                    lr=f"{self.schedule.lr:.1e}", tok_s=f"{tps:.0f}",
                                    ep=f"{self.epochs_done():.2f}", refresh=False)
                    acc = dict.fromkeys(acc, 0.0)
                    t_log = now
                if (t.validate_every > 0 and self.step % t.validate_every == 0) or sync[2] > 0:
                    self._validate_and_save()
            if self.step > 0 and self.last_val_step != self.step:
                self._validate_and_save()
        bar.close()
        if self.ctx.is_main:
            log.info("stopped (%s) at update %d, %.2f epochs, %.1f min; best dev BLEU %s @ %s",
                     reason, self.step, self.epochs_done(), self.elapsed() / 60,
                     f"{self.best_bleu:.2f}" if self.best_bleu is not None else "-",
                     self.best_step)
        D.barrier(self.ctx)
        return TrainResult(step=self.step, epochs=self.epochs_done(), best_bleu=self.best_bleu,
                           best_step=self.best_step, last_dev=self.last_dev,
                           stop_reason=reason or "", elapsed_s=self.elapsed(),
                           run_dir=self.run_dir)
