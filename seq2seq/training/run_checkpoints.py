"""A training run's checkpoint directory: ``<run_dir>/checkpoints/{last.pt,best.pt,step_<N>.pt}``.

* ``last.pt``: the full bundle (training state included) of the latest save, where a resumed run
  continues from;
* ``step_<N>.pt``: copies of ``last.pt`` at update ``N``; only the newest ``keep_last`` are kept
  (``seq2seq-average`` reads them);
* ``best.pt``: the lean bundle (no training state; what ``seq2seq-evaluate`` and the server load)
  of the best validation so far;
* ``best_step_<N>.pt``: with ``train.keep_best > 1``, lean bundles of the ``keep_best`` best
  validations (``seq2seq-average --best K`` averages them).

Every file is replaced atomically (written beside, then ``os.replace``-d), so a run killed at any
moment leaves complete files behind, and a write that fails (disk full) removes its partial file
and raises :class:`CheckpointWriteError`, leaving the previous files as they were. Only rank 0 writes; :meth:`RunCheckpoints.load_resume` is
collective so every rank agrees on whether a run is resumed.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from seq2seq.checkpoint import load_bundle, save_bundle
from seq2seq.training import distributed as D

log = logging.getLogger(__name__)


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, I/O error); the files before it are intact.

    Args:
        path: the file that was being written.
        err: the underlying error.
    """

    def __init__(self, path: Path, err: OSError) -> None:
        super().__init__(
            f"could not write checkpoint {path}: {err.strerror or err}; nothing partial was left "
            f"behind and the earlier checkpoints in {path.parent} are unchanged")
        self.path = path


class RunCheckpoints:
    """The checkpoint files of one run.

    Args:
        ckpt_dir: the directory (created on the first save).

    Attributes:
        ckpt_dir: the directory.
        last: ``<ckpt_dir>/last.pt``.
        best: ``<ckpt_dir>/best.pt``.
    """

    def __init__(self, ckpt_dir: str | Path) -> None:
        self.ckpt_dir = Path(ckpt_dir)
        self.last = self.ckpt_dir / "last.pt"
        self.best = self.ckpt_dir / "best.pt"

    def load_resume(self, ctx: D.DistContext) -> dict[str, Any] | None:
        """The bundle to resume from: ``last.pt`` when it exists (as rank 0 sees it), else None.

        Collective: every rank must call it.

        Args:
            ctx: distributed context.

        Returns:
            The loaded bundle (tensors on CPU), or None to start a new run.

        Raises:
            ValueError: ``last.pt`` holds no training state.
        """
        if not D.broadcast_object(self.last.exists(), ctx):
            log.info("train.resume=true but %s does not exist: starting a new run", self.last)
            return None
        bundle = load_bundle(self.last)
        if bundle.get("train_state") is None:
            raise ValueError(f"{self.last} holds no training state; cannot resume from it")
        log.info("resuming from %s (step %d)", self.last, bundle["train_state"]["step"])
        return bundle

    def save(self, step: int, bundle: dict[str, Any], keep_last: int) -> None:
        """Write ``last.pt``; copy it to ``step_<step>.pt`` and drop the oldest step files.

        Args:
            step: updates done.
            bundle: the full bundle (with training state).
            keep_last: step files to keep (0 = write none).
        """
        self._write(self.last, bundle)
        if keep_last > 0:
            step_path = self.ckpt_dir / f"step_{step}.pt"
            tmp = step_path.with_name(step_path.name + ".tmp")
            try:
                shutil.copyfile(self.last, tmp)
                os.replace(tmp, step_path)
            except OSError as err:
                tmp.unlink(missing_ok=True)
                raise CheckpointWriteError(step_path, err) from err
            olds = sorted(self.ckpt_dir.glob("step_*.pt"), key=lambda p: int(p.stem[5:]))
            for p in olds[:-keep_last]:
                p.unlink(missing_ok=True)

    def save_best(self, bundle: dict[str, Any]) -> None:
        """Write ``best.pt``.

        Args:
            bundle: the lean bundle (``train_state`` None).
        """
        self._write(self.best, bundle)

    def save_kept_best(self, step: int, bundle: dict[str, Any], keep_steps: list[int]) -> None:
        """Write ``best_step_<step>.pt``; remove the ``best_step_*.pt`` not in ``keep_steps``.

        Args:
            step: updates done (the validation just made).
            bundle: its lean bundle.
            keep_steps: the steps of the best validations to keep (``step`` among them).
        """
        self._write(self.ckpt_dir / f"best_step_{step}.pt", bundle)
        keep = {f"best_step_{s}.pt" for s in keep_steps}
        for p in self.ckpt_dir.glob("best_step_*.pt"):
            if p.name not in keep:
                p.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, bundle: dict[str, Any]) -> None:
        """:func:`~seq2seq.checkpoint.save_bundle`, its I/O errors as :class:`CheckpointWriteError`."""
        try:
            save_bundle(path, bundle)
        except OSError as err:
            raise CheckpointWriteError(path, err) from err
