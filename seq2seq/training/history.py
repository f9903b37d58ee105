"""Training history: ``<run_dir>/metrics.csv``, the ``curves.png`` drawn from it, TensorBoard.

One row per log line (``train_*`` columns) or validation (``dev_*`` columns), empty cells
elsewhere. Every rank keeps the rows in memory (they go into the checkpoint, so a resumed run
rewrites the file to exactly the checkpointed rows: nothing duplicated, nothing missing); only
the writing rank (rank 0) touches the files.

The same values go to TensorBoard as scalars (``train/loss``, ``train/ppl``, ``train/lr``,
``train/tokens_per_s``, ``dev/loss``, ``dev/ppl``, ``dev/bleu``, ``dev/chrf``, ...) in
``<run_dir>/tensorboard`` (``tensorboard --logdir runs``). The writer is
``torch.utils.tensorboard``, which ships with torch and needs the ``tensorboard`` package, not
TensorFlow; that package is also the viewer, so one dependency gives both. A resumed run
purges the events after its checkpoint's step, so the curves show no doubled stretch.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CSV_FIELDS = ("step", "epoch", "train_loss", "train_nll", "train_ppl", "dev_loss", "dev_nll",
              "dev_ppl", "dev_bleu", "dev_chrf", "lr", "tokens_per_s", "elapsed_min")
# CSV column -> TensorBoard tag (step and elapsed time are the x axes)
TB_TAGS = {"epoch": "train/epoch", "train_loss": "train/loss", "train_nll": "train/nll",
           "train_ppl": "train/ppl", "lr": "train/lr", "tokens_per_s": "train/tokens_per_s",
           "dev_loss": "dev/loss", "dev_nll": "dev/nll", "dev_ppl": "dev/ppl",
           "dev_bleu": "dev/bleu", "dev_chrf": "dev/chrf"}


class TrainingHistory:
    """Metrics rows of one run, mirrored to ``metrics.csv`` (appended) when ``write``.

    Args:
        run_dir: the run's output directory.
        write: whether this process writes ``metrics.csv`` and ``curves.png`` (rank 0 only).
        tensorboard: also write the rows as TensorBoard scalars (when ``write``).

    Attributes:
        rows: every row so far, oldest first (dicts keyed by :data:`CSV_FIELDS`).
        csv_path: ``<run_dir>/metrics.csv``.
        curves_path: ``<run_dir>/curves.png``.
        tb_dir: ``<run_dir>/tensorboard``.
    """

    def __init__(self, run_dir: str | Path, write: bool = True, tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.curves_path = self.run_dir / "curves.png"
        self.tb_dir = self.run_dir / "tensorboard"
        self.write = write
        self.tensorboard = tensorboard and write
        self.rows: list[dict[str, Any]] = []
        self._tb: Any = None  # SummaryWriter, opened on the first row

    def append(self, row: dict[str, Any]) -> None:
        """Add a row; append it to ``metrics.csv`` (header first when the file is new).

        Args:
            row: values by column name; absent columns are written as empty cells.
        """
        self.rows.append(row)
        if not self.write:
            return
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        if self.tensorboard:
            self._scalars(row)

    def _open_tb(self, purge_step: int | None = None) -> None:
        """Open the TensorBoard writer; events at ``purge_step`` and later are hidden."""
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(self.tb_dir), purge_step=purge_step)

    def _scalars(self, row: dict[str, Any]) -> None:
        """Write ``row``'s values as TensorBoard scalars at its step."""
        if self._tb is None:
            self._open_tb()
        for key, tag in TB_TAGS.items():
            value = row.get(key)
            if value is not None and value != "":
                self._tb.add_scalar(tag, float(value), int(row["step"]))
        if "dev_loss" in row:  # validations are rare: make them visible at once
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer (a later row opens a new one)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def log_train(self, step: int, epoch: float, loss: float, nll: float, lr: float,
                  tokens_per_s: float, elapsed_s: float) -> None:
        """Append a training row (rounded; perplexity from ``nll``, capped at ``exp(50)``).

        Args:
            step: updates done.
            epoch: epochs done (fractional).
            loss: label-smoothed loss per target token since the last train row.
            nll: negative log-likelihood per target token since the last train row.
            lr: current learning rate.
            tokens_per_s: target tokens per second since the last train row.
            elapsed_s: training wall time.
        """
        self.append({
            "step": step, "epoch": round(epoch, 4),
            "train_loss": round(loss, 5), "train_nll": round(nll, 5),
            "train_ppl": round(math.exp(min(nll, 50.0)), 3),
            "lr": lr,
            "tokens_per_s": round(tokens_per_s, 1),
            "elapsed_min": round(elapsed_s / 60, 3)})

    def log_dev(self, step: int, epoch: float, dev: dict[str, float], lr: float,
                elapsed_s: float) -> None:
        """Append a validation row (rounded).

        Args:
            step: updates done.
            epoch: epochs done (fractional).
            dev: ``{"loss", "nll", "ppl", "bleu", "chrf"}`` of the validation.
            lr: learning rate after the schedule saw the validation.
            elapsed_s: training wall time.
        """
        self.append({"step": step, "epoch": round(epoch, 4),
                     "dev_loss": round(dev["loss"], 5), "dev_nll": round(dev["nll"], 5),
                     "dev_ppl": round(dev["ppl"], 3), "dev_bleu": round(dev["bleu"], 3),
                     "dev_chrf": round(dev["chrf"], 3), "lr": lr,
                     "elapsed_min": round(elapsed_s / 60, 3)})

    def state(self) -> list[dict[str, Any]]:
        """Copies of the rows, for a checkpoint."""
        return [dict(r) for r in self.rows]

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Replace the rows with a checkpoint's and rewrite ``metrics.csv`` to hold exactly them.

        Args:
            rows: a :meth:`state` result.
        """
        self.rows = [dict(r) for r in rows]
        if not self.write:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            for row in self.rows:
                w.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        if self.tensorboard and self.rows:
            # hide what the interrupted segment logged after the checkpoint
            self.close()
            self._open_tb(purge_step=int(self.rows[-1]["step"]) + 1)

    def plot(self) -> None:
        """Redraw ``curves.png``; a failure is logged as a warning, never raised."""
        if not self.write:
            return
        try:
            from seq2seq.plots import plot_training_curves

            plot_training_curves(self.rows, self.curves_path)
        except Exception as err:  # a plot must never kill a training run
            log.warning("could not write curves.png: %s", err)
