"""Tests for seq2seq.config: choices as enums that save as strings, and the module is a leaf."""

from __future__ import annotations

import subprocess
import sys

import pytest

import seq2seq.config as C
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
    assert out == "['seq2seq', 'seq2seq.config', 'seq2seq.config.checked', 'seq2seq.config.choices']"


@pytest.mark.parametrize(("make", "message"), [
    (lambda: C.TrainConfig(optimizer="sgd"),
     "train.optimizer must be one of ['adam', 'adamw'], got 'sgd'"),
    (lambda: C.TrainConfig(lr=0.0), "train.lr must be positive, got 0.0"),
    (lambda: C.TrainConfig(warmup_steps=-1), "train.warmup_steps must be >= 0, got -1"),
    (lambda: C.TrainConfig(lr_decay=1.5), "train.lr_decay must be in (0, 1], got 1.5"),
    (lambda: C.TrainConfig(cooldown=0.0), "train.cooldown must be in (0, 1], got 0.0"),
    (lambda: C.TrainConfig(ema_decay=1.0), "train.ema_decay must be in [0, 1) (0 = off), got 1.0"),
    (lambda: C.TrainConfig(max_steps=0, max_minutes=0.0),
     "set at least one of train.max_steps, train.max_epochs, train.max_minutes"),
    (lambda: C.TrainConfig(accum_steps=0), "train.accum_steps must be >= 1, got 0"),
    (lambda: C.TrainConfig(val_beam_size=0), "train.val_beam_size must be >= 1, got 0"),
    (lambda: C.TrainConfig(keep_best=0), "train.keep_best must be >= 1, got 0"),
    (lambda: C.TrainConfig(label_smoothing=-0.1),
     "train.label_smoothing must be in [0, 1), got -0.1"),
    (lambda: C.TrainConfig(betas=(0.9,)), "train.betas must hold two numbers, got [0.9]"),
    (lambda: C.TrainConfig(best_metric="acc"),
     "train.best_metric must be one of ['bleu', 'chrf', 'loss', 'ppl'], got 'acc'"),
    (lambda: C.ModelConfig(encoder_layers=0), "model.encoder_layers must be >= 1, got 0"),
    (lambda: C.ModelConfig(decoder_layers=0), "model.decoder_layers must be >= 1, got 0"),
    (lambda: C.ModelConfig(rnn="rnn_gelu"), "model.rnn must be one of"),
    (lambda: C.ModelConfig(attention="x"), "model.attention must be one of"),
    (lambda: C.ModelConfig(dropout=1.0), "model.dropout must be in [0, 1), got 1.0"),
    (lambda: C.DataConfig(vocab_size=4), "data.vocab_size must be >= 8, got 4"),
    (lambda: C.DataConfig(drop_final_punct=1.5), "data.drop_final_punct must be in [0, 1], got 1.5"),
    (lambda: C.DataConfig(joint_vocab=True, spm_src="a.model", spm_tgt="b.model"),
     "data.spm_tgt: with data.joint_vocab=true one model (data.spm_src) serves both sides"),
    (lambda: C.SearchConfig(beam_size=0), "search.beam_size must be >= 1, got 0"),
    (lambda: C.SearchConfig(beam_size=2, n_best=3), "search.n_best must be in [1, beam_size=2], "
                                                    "got 3"),
    (lambda: C.SearchConfig(temperature=float("nan")), "search.temperature must be positive"),
    (lambda: C.SearchConfig(top_p=0.0), "search.top_p must be in (0, 1], got 0.0"),
    (lambda: C.SearchConfig(max_len_a=float("inf")),
     "search.max_len_a must be a finite number, got inf"),
    (lambda: C.SearchConfig(beam_size=True), "search.beam_size must be >= 1, got True"),
    (lambda: C.ServeConfig(port=70000), "port must be in [0, 65535], got 70000"),
    (lambda: C.ServeConfig(max_batch_size=0), "max_batch_size must be >= 1, got 0"),
])
def test_every_config_checks_its_values_when_built(make, message: str) -> None:
    """Each input is checked once, where it is built (a command line, a request, code)."""
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value)


def test_sampling_draws_any_number_of_samples_and_defaults_are_valid() -> None:
    assert C.SearchConfig(sampling=True, beam_size=1, n_best=8).n_best == 8
    for schema in (C.ModelConfig, C.DataConfig, C.SearchConfig, C.TrainConfig, C.ServeConfig):
        assert schema() == schema(**C.plain(schema()))  # the defaults pass their own checks
