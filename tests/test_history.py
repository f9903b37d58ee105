"""Tests for seq2seq.training.history: metrics.csv rows (append, rounding, rewrite on resume) and curves.png."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from seq2seq.plots import PNG_MAGIC
from seq2seq.training.history import CSV_FIELDS, TrainingHistory

DEV = {"loss": 3.1234567, "nll": 2.9876543, "ppl": 19.841234, "bleu": 12.34567, "chrf": 40.00049}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_FIELDS
        return list(reader)


def _log_three(h: TrainingHistory) -> None:
    h.log_train(1, 0.123456, loss=4.5678912, nll=4.1234567, lr=1e-3, tokens_per_s=1234.56,
                elapsed_s=90.0)
    h.log_train(2, 0.25, loss=4.0, nll=60.0, lr=2e-3, tokens_per_s=1000.04, elapsed_s=120.0)
    h.log_dev(2, 0.25, DEV, lr=2e-3, elapsed_s=121.5)


def test_rows_are_rounded_and_appended_to_the_csv(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path)
    _log_three(h)
    rows = _read(tmp_path / "metrics.csv")
    assert rows == [
        {"step": "1", "epoch": "0.1235", "train_loss": "4.56789", "train_nll": "4.12346",
         "train_ppl": "61.772", "dev_loss": "", "dev_nll": "", "dev_ppl": "", "dev_bleu": "",
         "dev_chrf": "", "lr": "0.001", "tokens_per_s": "1234.6", "elapsed_min": "1.5"},
        {"step": "2", "epoch": "0.25", "train_loss": "4.0", "train_nll": "60.0",
         "train_ppl": "5.184705528587072e+21", "dev_loss": "", "dev_nll": "", "dev_ppl": "",
         "dev_bleu": "", "dev_chrf": "", "lr": "0.002", "tokens_per_s": "1000.0",
         "elapsed_min": "2.0"},
        {"step": "2", "epoch": "0.25", "train_loss": "", "train_nll": "", "train_ppl": "",
         "dev_loss": "3.12346", "dev_nll": "2.98765", "dev_ppl": "19.841", "dev_bleu": "12.346",
         "dev_chrf": "40.0", "lr": "0.002", "tokens_per_s": "", "elapsed_min": "2.025"},
    ]
    assert h.rows[0]["train_ppl"] == 61.772  # the rows in memory hold the same numbers
    assert h.state() == h.rows and h.state()[0] is not h.rows[0]  # copies for the checkpoint


def test_restore_rewrites_the_csv_to_exactly_the_checkpointed_rows(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path)
    _log_three(h)
    saved = h.state()[:2]  # a checkpoint taken after the two train rows
    h.append({"step": 3, "train_loss": 9.0})  # rows the crashed run wrote after it
    resumed = TrainingHistory(tmp_path / "new")  # run dir created by restore
    resumed.restore(saved)
    h.restore(saved)
    for path in (tmp_path / "metrics.csv", tmp_path / "new" / "metrics.csv"):
        rows = _read(path)
        assert [(r["step"], r["train_loss"], r["dev_bleu"]) for r in rows] == [
            ("1", "4.56789", ""), ("2", "4.0", "")]
    h.append({"step": 3, "train_loss": 3.5})  # appends after the rewritten rows, one header
    assert [r["step"] for r in _read(tmp_path / "metrics.csv")] == ["1", "2", "3"]
    assert len(h.rows) == 3


def test_a_non_writing_rank_keeps_rows_but_writes_nothing(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path / "run", write=False)
    _log_three(h)
    h.restore(h.state()[:1])
    h.plot()
    assert [r["step"] for r in h.rows] == [1]
    assert not (tmp_path / "run").exists()


def test_plot_writes_curves_png(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path)
    _log_three(h)
    h.plot()
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_failure_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = TrainingHistory(tmp_path)  # no rows: nothing to plot
    with caplog.at_level(logging.WARNING, logger="seq2seq.training.history"):
        h.plot()
    assert "could not write curves.png" in caplog.text
    assert not (tmp_path / "curves.png").exists()


def tb_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files of ``tb_dir``, read back by tensorboard
    (purged steps left out, as TensorBoard shows them)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    got = {tag: [(e.step, float(f"{e.value:.6g}")) for e in acc.Scalars(tag)]  # float32
           for tag in acc.Tags()["scalars"]}
    return {tag: values for tag, values in got.items() if values}


def test_tensorboard_event_file_holds_the_scalars(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path, tensorboard=True)
    _log_three(h)
    h.close()
    got = tb_scalars(tmp_path / "tensorboard")
    assert got["train/loss"] == [(1, 4.56789), (2, 4.0)]
    assert got["train/tokens_per_s"] == [(1, 1234.6), (2, 1000.0)]
    assert got["train/lr"] == [(1, 0.001), (2, 0.002), (2, 0.002)]  # dev rows log the lr too
    assert got["dev/bleu"] == [(2, 12.346)] and got["dev/chrf"] == [(2, 40.0)]
    assert got["dev/loss"] == [(2, 3.12346)] and got["dev/ppl"] == [(2, 19.841)]
    (tmp_path / "no_tb").mkdir()
    off = TrainingHistory(tmp_path / "no_tb")
    _log_three(off)
    assert not (tmp_path / "no_tb" / "tensorboard").exists()


def test_tensorboard_after_resume_shows_no_doubled_steps(tmp_path: Path) -> None:
    h = TrainingHistory(tmp_path, tensorboard=True)
    _log_three(h)
    saved = h.state()[:1]  # checkpoint after step 1; the run went on to step 2, then died
    h.close()
    resumed = TrainingHistory(tmp_path, tensorboard=True)
    resumed.restore(saved)
    resumed.log_train(2, 0.25, loss=3.0, nll=2.0, lr=2e-3, tokens_per_s=900.0, elapsed_s=100.0)
    resumed.close()
    got = tb_scalars(tmp_path / "tensorboard")
    assert got["train/loss"] == [(1, 4.56789), (2, 3.0)]
    assert "dev/bleu" not in got  # the dead segment's validation at step 2 is purged
