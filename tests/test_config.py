"""Tests for seq2seq.config: choices as enums that save as strings, and the module is a leaf."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seq2seq.config import ModelConfig, RNNType, SearchConfig, TrainJobConfig, plain


def test_choices_convert_plain_strings_and_save_as_strings() -> None:
    cfg = ModelConfig(rnn="lstm", attention="luong_dot")
    assert cfg.rnn is RNNType.lstm and cfg.rnn == "lstm" and f"{cfg.rnn}" == "lstm"
    assert plain(cfg)["rnn"] == "lstm" and type(plain(cfg)["rnn"]) is str
    assert type(plain(TrainJobConfig())["search"]["length_penalty"]) is str
    with pytest.raises(ValueError, match=r"^search\.length_penalty must be one of "
                                         r"\['gnmt', 'average', 'none'\], got 'gnm'$"):
        SearchConfig(length_penalty="gnm")


def test_config_imports_no_other_seq2seq_module() -> None:
    """``import seq2seq.config`` is a leaf: a fresh interpreter loads no other seq2seq module."""
    code = ("import sys, seq2seq.config; "
            "print(sorted(m for m in sys.modules if m.startswith('seq2seq')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['seq2seq', 'seq2seq.config']"
