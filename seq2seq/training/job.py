"""A training job, checked once where it enters and resolved for the :class:`Trainer`.

The values of a job were checked when its dataclasses were built (ranges and choices,
:mod:`seq2seq.config`). :func:`prepare_job` adds what needs the machine: the data and
sentencepiece files exist, ``train.device`` and ``train.precision`` resolve on this machine,
and a ``train.init_from`` bundle is loaded (once) and its model config merged. The entry point
(``seq2seq-train``) or a library user calls it before anything is read or written; the
:class:`~seq2seq.training.trainer.Trainer` takes the :class:`PreparedJob` and checks nothing
again. Every message names the key, e.g. ``"data.src_dev: file x.de does not exist"``.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from seq2seq.config import TrainJobConfig
from seq2seq.runtime import resolve_device, resolve_precision
from seq2seq.training.init_from import InitSource, load_init


@dataclasses.dataclass(frozen=True)
class PreparedJob:
    """A job ready to train.

    Attributes:
        cfg: the job; with ``train.init_from`` its ``model`` is the bundle's model config.
        device: the resolved ``train.device`` (``cuda`` without an index: the trainer picks
            the local rank's GPU under DDP).
        amp_dtype: the resolved ``train.precision`` (None = float32).
        init: the loaded ``train.init_from`` bundle, or None.
    """

    cfg: TrainJobConfig
    device: torch.device
    amp_dtype: torch.dtype | None
    init: InitSource | None


def check_files(cfg: TrainJobConfig) -> None:
    """The job's files exist, and file options that exclude each other are not combined.

    Raises:
        ValueError: naming the key, e.g. ``"data.src_train is not set: give a file ..."``.
    """
    d, t = cfg.data, cfg.train
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev"):
        path = getattr(d, key)
        if not path:
            raise ValueError(f"data.{key} is not set: give a file, e.g. data.{key}=path/to/file")
        if not os.path.exists(path):
            raise ValueError(f"data.{key}: file {path} does not exist")
    for key in ("spm_src", "spm_tgt"):
        path = getattr(d, key)
        if path and not os.path.isfile(path):
            raise ValueError(f"data.{key}: file {path} does not exist")
        if path and t.init_from:
            raise ValueError(f"data.{key} cannot be combined with train.init_from: a fine-tuned "
                             "model keeps the sentencepiece models of its bundle")
    if t.init_from and not os.path.isfile(t.init_from):
        raise ValueError(f"train.init_from: file {t.init_from} does not exist")


def prepare_job(cfg: TrainJobConfig, model_keys: set[str] | None = None) -> PreparedJob:
    """Check ``cfg``'s files, resolve its device and precision, load its init bundle.

    Args:
        cfg: the job (its dataclasses already checked their values).
        model_keys: with ``train.init_from``: the ``model.*`` keys the user set explicitly
            (``seq2seq-train`` knows them from the command line); the others come from the
            bundle. None: every ``model.*`` value must agree with the bundle (``dropout`` may
            differ).

    Returns:
        The :class:`PreparedJob` a :class:`~seq2seq.training.trainer.Trainer` takes.

    Raises:
        ValueError: the first problem found, naming the key.
    """
    check_files(cfg)
    device = resolve_device(cfg.train.device)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    init = None
    if cfg.train.init_from:
        init = load_init(cfg.train, cfg.model, model_keys)
        cfg = dataclasses.replace(cfg, model=init.model_cfg)
    return PreparedJob(cfg, device, amp_dtype, init)


__all__ = ["PreparedJob", "check_files", "prepare_job"]
