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
    assert out.returncode == 2
    assert out.stderr.strip() == ("seq2seq-serve: error: give the bundle to serve "
                                  "(checkpoint=PATH, or a list: an ensemble) or a models file "
                                  "(models=FILE), not both")


def test_absent_file_and_unknown_key_are_named(tmp_path: Path, tiny_bundle: Path) -> None:
    missing = tmp_path / "nope.pt"
    out = _serve(f"checkpoint={missing}")
    assert out.returncode != 0
    assert out.stderr.strip().endswith(f"seq2seq-serve: error: checkpoint {missing} does not "
                                       "exist")
    out = _serve(f"checkpoint={tiny_bundle}", "max_queu=3")
    assert out.returncode != 0 and "max_queu" in out.stderr


def test_a_bad_models_file_names_the_entry_and_the_key(tmp_path: Path, tiny_bundle: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(f"- id: de-en\n  checkpoint: {tiny_bundle}\n  serach: {{beam_size: 2}}\n",
                      encoding="utf-8")
    out = _serve(f"models={models}")
    assert out.returncode != 0
    assert f"seq2seq-serve: error: models={models}: models[0].serach: Extra inputs are not " \
           "permitted" in out.stderr
    models.write_text(f"- id: de-en\n  checkpoint: {tiny_bundle}\n  search: {{beam_size: 0}}\n",
                      encoding="utf-8")
    out = _serve(f"models={models}")
    assert "models[0].search: search.beam_size must be >= 1, got 0" in out.stderr
    out = _serve(f"models={models}", f"checkpoint={tiny_bundle}")
    assert "not both" in out.stderr
