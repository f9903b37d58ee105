"""Tests for seq2seq.training.run_checkpoints: last/best/step_<N> files, rotation, the resume point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import FORMAT_VERSION, load_bundle
from seq2seq.training.distributed import DistContext
from seq2seq.training.run_checkpoints import CheckpointWriteError, RunCheckpoints


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


def _assert_intact(ck: RunCheckpoints, step: int) -> None:
    """last.pt and best.pt still hold ``step`` and load; no partial file is left behind."""
    assert load_bundle(ck.last)["train_state"]["step"] == step
    assert load_bundle(ck.best)["meta"]["step"] == step
    assert not list(ck.ckpt_dir.glob("*.tmp"))


def test_a_failing_write_raises_a_clear_error_and_keeps_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the middle of torch.save: the error names the file, nothing else changes."""
    import errno

    import seq2seq.checkpoint as ckpt_mod

    ck = RunCheckpoints(tmp_path / "checkpoints")
    ck.save(2, _bundle(2), keep_last=2)
    ck.save_best(_bundle(2, train_state=False))
    real_save = torch.save

    def disk_full(obj: object, f: object) -> None:
        real_save({"half": torch.zeros(1000)}, f)  # some bytes reach the file first
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", disk_full)
    for write in (lambda: ck.save(4, _bundle(4), keep_last=2),
                  lambda: ck.save_best(_bundle(4, train_state=False))):
        with pytest.raises(CheckpointWriteError, match=r"could not write checkpoint .*\.pt: No "
                           r"space left on device; nothing partial was left behind"):
            write()
        _assert_intact(ck, 2)


def test_a_full_filesystem_loses_nothing(tmp_path: Path) -> None:
    """The same on a real 1 MiB tmpfs (where this machine lets a test mount one)."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        ck = RunCheckpoints(mnt / "checkpoints")
        ck.save(2, _bundle(2), keep_last=0)
        ck.save_best(_bundle(2, train_state=False))
        big = _bundle(4)
        big["model"]["w"] = torch.zeros(400_000)  # 1.6 MB: cannot fit
        with pytest.raises(CheckpointWriteError, match="No space left on device"):
            ck.save(4, big, keep_last=0)
        _assert_intact(ck, 2)
        half = _bundle(6)
        half["model"]["w"] = torch.zeros(150_000)  # 600 kB: last.pt fits, its step copy does not
        with pytest.raises(CheckpointWriteError, match=r"step_6\.pt: No space left"):
            ck.save(6, half, keep_last=2)
        assert load_bundle(ck.last)["train_state"]["step"] == 6  # the new last.pt is whole
        assert not list(ck.ckpt_dir.glob("*.tmp")) and not (ck.ckpt_dir / "step_6.pt").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
