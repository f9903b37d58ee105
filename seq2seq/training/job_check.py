"""A training job's settings, checked before any data is read: files and numeric ranges.

The choices (``model.rnn``, ``train.schedule``, ...) are already enums when a job gets here
(:class:`seq2seq.config.Choice`); every message names the key, e.g.
``"train.lr must be positive, got 0.0"``.
"""

from __future__ import annotations

import os

from seq2seq.config import SearchConfig, TrainJobConfig, plain
from seq2seq.search.scoring import check_search_config


def check_train_job(cfg: TrainJobConfig) -> None:
    """Fail fast (before any data is read) with a ``ValueError`` naming a bad setting.

    Choices (``model.rnn``, ``train.schedule``, ...) are already enums here (see
    :class:`Choice`); this checks files and numeric ranges.

    Args:
        cfg: the job; its data files must exist.

    Raises:
        ValueError: the first bad setting found, e.g. ``"train.lr must be positive ..."``.
    """
    m, d, t = cfg.model, cfg.data, cfg.train
    for key in ("encoder_layers", "decoder_layers", "hidden_size", "embed_dim"):
        if getattr(m, key) < 1:
            raise ValueError(f"model.{key} must be >= 1, got {getattr(m, key)}")
    if not 0.0 <= m.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {m.dropout}")
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev"):
        path = getattr(d, key)
        if not path:
            raise ValueError(f"data.{key} is not set: give a file, e.g. data.{key}=path/to/file")
        if not os.path.exists(path):
            raise ValueError(f"data.{key}: file {path} does not exist")
    if d.vocab_size < 8:
        raise ValueError(f"data.vocab_size must be >= 8, got {d.vocab_size}")
    for key in ("spm_src", "spm_tgt"):
        path = getattr(d, key)
        if path and not os.path.isfile(path):
            raise ValueError(f"data.{key}: file {path} does not exist")
        if path and t.init_from:
            raise ValueError(f"data.{key} cannot be combined with train.init_from: a fine-tuned "
                             "model keeps the sentencepiece models of its bundle")
    if d.joint_vocab and d.spm_tgt and d.spm_tgt != d.spm_src:
        raise ValueError("data.spm_tgt: with data.joint_vocab=true one model (data.spm_src) "
                         "serves both sides")
    if t.init_from and not os.path.isfile(t.init_from):
        raise ValueError(f"train.init_from: file {t.init_from} does not exist")
    if t.keep_best < 1:
        raise ValueError(f"train.keep_best must be >= 1, got {t.keep_best}")
    if t.accum_steps < 1:
        raise ValueError(f"train.accum_steps must be >= 1, got {t.accum_steps}")
    if t.max_tokens < 1:
        raise ValueError(f"train.max_tokens must be >= 1, got {t.max_tokens}")
    if len(t.betas) != 2:
        raise ValueError(f"train.betas must hold two numbers, got {list(t.betas)}")
    if not 0.0 <= t.label_smoothing < 1.0:
        raise ValueError(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
    if t.val_beam_size < 1:
        raise ValueError(f"train.val_beam_size must be >= 1, got {t.val_beam_size}")
    if t.lr <= 0:
        raise ValueError(f"train.lr must be positive, got {t.lr}")
    if t.warmup_steps < 0:
        raise ValueError(f"train.warmup_steps must be >= 0, got {t.warmup_steps}")
    if not 0.0 < t.lr_decay <= 1.0:
        raise ValueError(f"train.lr_decay must be in (0, 1], got {t.lr_decay}")
    if not 0.0 < t.cooldown <= 1.0:
        raise ValueError(f"train.cooldown must be in (0, 1], got {t.cooldown}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ValueError(f"train.ema_decay must be in [0, 1) (0 = off), got {t.ema_decay}")
    if t.max_steps <= 0 and t.max_epochs <= 0 and t.max_minutes <= 0:
        raise ValueError("set at least one of train.max_steps, train.max_epochs, "
                         "train.max_minutes (all are 0 = unlimited)")
    check_search_config(SearchConfig(**{**plain(cfg.search), "beam_size": t.val_beam_size,
                                        "n_best": 1}))
