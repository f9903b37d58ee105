"""``seq2seq-train``: the Hydra entry point of training (Hydra lives only in entry points).

The dataclasses of :mod:`seq2seq.config` are registered in Hydra's ConfigStore as the schema of
``conf/config.yaml`` and its groups (``model/``, ``data/``, ``train/``, ``search/``), so a
misspelled key or a wrong type stops the run at once with an error naming the key::

    seq2seq-train                                     # default preset on the shipped corpus
    seq2seq-train model=large train=gpu               # classic GPU setup
    seq2seq-train hydra.run.dir=runs/a train.resume=true    # continue an interrupted run
    seq2seq-train -m model.hidden_size=128,256        # sweep, one output dir per job
    seq2seq-train data=custom ... train.init_from=best.pt   # fine-tune a trained model
    torchrun --nproc_per_node=2 -m seq2seq.cli.train hydra.run.dir=runs/ddp   # DDP

Under ``torchrun`` only rank 0 writes Hydra's outputs (``.hydra/``, the log file) and the run
directory; the other ranks compose the same config without output files and receive rank 0's
run directory.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from seq2seq.cli import conf
from seq2seq.config import ModelConfig, TrainJobConfig
from seq2seq.training import distributed as D
from seq2seq.training.job import prepare_job
from seq2seq.training.run_checkpoints import CheckpointWriteError
from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)

# conf/ beside the package (the repository root); Hydra's --config-dir adds others
CONF_DIR = str(conf.CONF_DIR)
_PATH_KEYS = ("src_train", "tgt_train", "src_dev", "tgt_dev", "src_test", "tgt_test", "spm_src",
              "spm_tgt")


def register_configs() -> None:
    """Register :class:`TrainJobConfig` as the Hydra schema ``train_job_schema``, the first
    default of ``conf/config.yaml``: every group file merges into it, so its dataclass defaults
    are the defaults and a group file holds only what its preset changes."""
    ConfigStore.instance().store(name="train_job_schema", node=TrainJobConfig)


def to_job_config(cfg: DictConfig) -> TrainJobConfig:
    """Hydra's composed config -> :class:`TrainJobConfig` with absolute data paths."""
    job = OmegaConf.to_object(cfg)
    assert isinstance(job, TrainJobConfig)
    for key in _PATH_KEYS:
        value = getattr(job.data, key)
        if value:
            setattr(job.data, key, to_absolute_path(value))
    if job.train.init_from:
        job.train.init_from = to_absolute_path(job.train.init_from)
    return job


def given_model_keys(overrides: list[str]) -> set[str]:
    """The ``model.*`` keys set on the command line (``model=<preset>`` sets them all).

    Args:
        overrides: Hydra's task overrides (``["model.hidden_size=512", "train.lr=1e-3"]``).
    """
    keys: set[str] = set()
    for o in overrides:
        key = o.lstrip("+~").split("=", 1)[0]
        if key == "model":
            keys |= {f.name for f in fields(ModelConfig)}
        elif key.startswith("model."):
            keys.add(key.removeprefix("model."))
    return keys


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _run(cfg: DictConfig) -> float | None:
    """Train one job; returns the best dev BLEU (the objective for Hydra sweepers)."""
    try:
        job = prepare_job(to_job_config(cfg), given_model_keys(HydraConfig.get().overrides.task))
    except ValueError as err:  # a bad setting: one line naming the key, no traceback
        raise SystemExit(f"seq2seq-train: config error: {err}") from None
    ctx = D.init_distributed(job.device.type)
    try:
        run_dir = D.broadcast_object(HydraConfig.get().runtime.output_dir, ctx)
        if ctx.is_main:
            log.info("run dir: %s%s", run_dir,
                     f" ({ctx.world_size} DDP ranks)" if ctx.enabled else "")
        try:
            result = Trainer(job, run_dir, ctx).fit()
        except CheckpointWriteError as err:  # disk full etc.: one clear line, exit 1
            raise SystemExit(f"seq2seq-train: error: {err}") from None
    finally:
        D.destroy()
    if result.stop_reason == "preempted" and ctx.is_main:
        log.warning("stopped by a signal at update %d; %s/checkpoints/last.pt holds the run. "
                    "Resume with: seq2seq-train hydra.run.dir=%s train.resume=true "
                    "(and the same other options)", result.step, run_dir, run_dir)
    return result.best_bleu


def _argv_for_rank(argv: list[str], rank: int, scratch: str) -> list[str]:
    """Command-line overrides that keep ranks other than 0 from writing Hydra outputs."""
    if rank == 0:
        return argv
    keep = [a for a in argv if not a.lstrip("+").startswith("hydra.run.dir=")]
    return keep + [f"hydra.run.dir={scratch}", "hydra.output_subdir=null",
                   "hydra/job_logging=stdout"]


def main() -> None:
    """Console script ``seq2seq-train`` (also ``python -m seq2seq.cli.train``, under torchrun too)."""
    register_configs()
    ctx = D.env_context()
    scratch = None
    if ctx.enabled:
        if any(a in ("-m", "--multirun") for a in sys.argv[1:]):
            sys.exit("seq2seq-train: --multirun cannot be combined with torchrun")
        if not ctx.is_main:
            scratch = tempfile.mkdtemp(prefix=f"seq2seq-rank{ctx.rank}-")
            sys.argv = [sys.argv[0], *_argv_for_rank(sys.argv[1:], ctx.rank, scratch)]
    try:
        _run()
    finally:
        if scratch is not None:
            shutil.rmtree(Path(scratch), ignore_errors=True)


if __name__ == "__main__":
    main()
