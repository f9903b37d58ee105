"""Training history: the rows of ``<run_dir>/metrics.csv`` and the ``curves.png`` drawn from them.

One row per log line (``train_*`` columns) or validation (``dev_*`` columns), empty cells
elsewhere. Every rank keeps the rows in memory (they go into the checkpoint, so a resumed run
rewrites the file to exactly the checkpointed rows: nothing duplicated, nothing missing); only
the writing rank (rank 0) touches the files.
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


class TrainingHistory:
    """Metrics rows of one run, mirrored to ``metrics.csv`` (appended) when ``write``.

    Args:
        run_dir: the run's output directory.
        write: whether this process writes ``metrics.csv`` and ``curves.png`` (rank 0 only).

    Attributes:
        rows: every row so far, oldest first (dicts keyed by :data:`CSV_FIELDS`).
        csv_path: ``<run_dir>/metrics.csv``.
        curves_path: ``<run_dir>/curves.png``.
    """

    def __init__(self, run_dir: str | Path, write: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.curves_path = self.run_dir / "curves.png"
        self.write = write
        self.rows: list[dict[str, Any]] = []

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

    def plot(self) -> None:
        """Redraw ``curves.png``; a failure is logged as a warning, never raised."""
        if not self.write:
            return
        try:
            from seq2seq.plots import plot_training_curves

            plot_training_curves(self.rows, self.curves_path)
        except Exception as err:  # a plot must never kill a training run
            log.warning("could not write curves.png: %s", err)
