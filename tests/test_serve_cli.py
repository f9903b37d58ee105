"""Tests for seq2seq.cli.serve, the command line of ``seq2seq-serve`` (the server itself is
tested in test_serve.py): a missing or wrong checkpoint and a bad key are one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seq2seq.cli.serve", *args],
                          capture_output=True, text=True, timeout=120)


def test_missing_checkpoint_names_the_key() -> None:
    out = _serve()
    assert out.returncode != 0
    assert "seq2seq-serve: give the bundle to serve, e.g. checkpoint=" in out.stderr


def test_absent_file_and_unknown_key_are_named(tmp_path: Path, tiny_bundle: Path) -> None:
    missing = tmp_path / "nope.pt"
    out = _serve(f"checkpoint={missing}")
    assert out.returncode != 0
    assert f"seq2seq-serve: checkpoint {missing} does not exist" in out.stderr
    out = _serve(f"checkpoint={tiny_bundle}", "max_queu=3")
    assert out.returncode != 0 and "max_queu" in out.stderr
