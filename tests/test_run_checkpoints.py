"""Tests for seq2seq.training.run_checkpoints: last/best/step_<N> files, rotation, the resume point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import FORMAT_VERSION, load_bundle
from seq2seq.training.distributed import DistContext
from seq2seq.training.run_checkpoints import RunCheckpoints


def _bundle(step: int, train_state: bool = True) -> dict:
    """A minimal valid bundle whose weight and train_state record ``step``."""
    return {"format_version": FORMAT_VERSION, "model_config": {},
            "vocab": {"src_size": 4, "tgt_size": 4, "joint": False},
            "model": {"w": torch.full((2,), float(step))},
            "spm": {"src": torch.zeros(1, dtype=torch.uint8),
                    "tgt": torch.zeros(1, dtype=torch.uint8)},
            "train_state": {"step": step} if train_state else None,
            "meta": {"step": step}}


def test_save_keeps_the_newest_step_copies(tmp_path: Path) -> None:
    ck = RunCheckpoints(tmp_path / "checkpoints")
    for step in (2, 4, 10, 12):
        ck.save(step, _bundle(step), keep_last=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.pt", "step_10.pt", "step_12.pt"]  # 10 < 12 numerically, not as text
    assert load_bundle(ck.last)["model"]["w"].tolist() == [12.0, 12.0]
    assert load_bundle(ck.ckpt_dir / "step_10.pt")["train_state"] == {"step": 10}
    assert (ck.ckpt_dir / "step_12.pt").read_bytes() == ck.last.read_bytes()
    ck.save(14, _bundle(14), keep_last=0)  # no step copies: the old ones stay
    assert sorted(p.name for p in ck.ckpt_dir.iterdir()) == names


def test_save_best(tmp_path: Path) -> None:
    ck = RunCheckpoints(tmp_path)
    ck.save_best(_bundle(3, train_state=False))
    assert ck.best == tmp_path / "best.pt"
    best = load_bundle(ck.best)
    assert best["train_state"] is None and best["meta"]["step"] == 3
    assert not ck.last.exists()


def test_load_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ck = RunCheckpoints(tmp_path)
    caplog.set_level("INFO", logger="seq2seq.training.run_checkpoints")
    assert ck.load_resume(DistContext()) is None
    assert f"{tmp_path}/last.pt does not exist: starting a new run" in caplog.text
    ck.save(7, _bundle(7), keep_last=1)
    bundle = ck.load_resume(DistContext())
    assert bundle is not None and bundle["train_state"] == {"step": 7}
    assert f"resuming from {tmp_path}/last.pt (step 7)" in caplog.text
    ck.save(8, _bundle(8, train_state=False), keep_last=1)
    with pytest.raises(ValueError, match=r"last\.pt holds no training state; cannot resume"):
        ck.load_resume(DistContext())
