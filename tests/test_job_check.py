"""Tests for seq2seq.training.job_check: check_train_job rejects bad settings naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from seq2seq.config import DataConfig, TrainConfig, TrainJobConfig
from seq2seq.training.job_check import check_train_job


@pytest.fixture
def job(tmp_path: Path) -> TrainJobConfig:
    """A valid job whose four data files exist."""
    paths = {}
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev"):
        paths[key] = str(tmp_path / key)
        Path(paths[key]).write_text("x\n", encoding="utf-8")
    return TrainJobConfig(data=DataConfig(**paths), train=TrainConfig(max_steps=10))


def _with(job: TrainJobConfig, section: str, **changes: object) -> TrainJobConfig:
    return dataclasses.replace(job, **{section: dataclasses.replace(getattr(job, section),
                                                                    **changes)})


def test_a_valid_job_passes(job: TrainJobConfig) -> None:
    assert check_train_job(job) is None


@pytest.mark.parametrize(("section", "changes", "message"), [
    ("train", {"optimizer": "sgd"}, "train.optimizer must be one of ['adam', 'adamw'], got 'sgd'"),
    ("train", {"lr": 0.0}, "train.lr must be positive, got 0.0"),
    ("train", {"warmup_steps": -1}, "train.warmup_steps must be >= 0, got -1"),
    ("train", {"lr_decay": 1.5}, "train.lr_decay must be in (0, 1], got 1.5"),
    ("model", {"encoder_layers": 0}, "model.encoder_layers must be >= 1, got 0"),
    ("model", {"attention": "x"}, "model.attention must be one of"),
    ("train", {"max_steps": 0, "max_minutes": 0.0}, "set at least one of train.max_steps, train.max_epochs, "
                                "train.max_minutes"),
    ("model", {"dropout": 1.0}, "model.dropout must be in [0, 1), got 1.0"),
    ("data", {"vocab_size": 4}, "data.vocab_size must be >= 8, got 4"),
    ("data", {"src_dev": ""}, "data.src_dev is not set: give a file, e.g. data.src_dev=path/to/file"),
    ("train", {"accum_steps": 0}, "train.accum_steps must be >= 1, got 0"),
    ("train", {"val_beam_size": 0}, "train.val_beam_size must be >= 1, got 0"),
    ("train", {"label_smoothing": -0.1}, "train.label_smoothing must be in [0, 1), got -0.1"),
    ("train", {"betas": (0.9,)}, "train.betas must hold two numbers, got [0.9]"),
])
def test_bad_settings_name_the_key(job: TrainJobConfig, section: str, changes: dict,
                                   message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_train_job(_with(job, section, **changes))
    assert message in str(err.value)


def test_missing_data_file_is_named(job: TrainJobConfig, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.de")
    with pytest.raises(ValueError, match=r"data\.src_train: file .*nope\.de does not exist"):
        check_train_job(_with(job, "data", src_train=missing))


def test_schedule_and_search_settings_are_checked(job: TrainJobConfig) -> None:
    with pytest.raises(ValueError, match=r"train\.schedule must be one of .*, got 'linear'"):
        check_train_job(_with(job, "train", schedule="linear"))
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"train\.cooldown must be in \(0, 1\], got {bad}"):
            check_train_job(_with(job, "train", cooldown=bad))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=rf"train\.ema_decay must be in \[0, 1\) \(0 = off\), "
                                             rf"got {bad}"):
            check_train_job(_with(job, "train", ema_decay=bad))
    assert check_train_job(_with(job, "train", ema_decay=0.999)) is None
    with pytest.raises(ValueError, match=r"search\.length_penalty"):
        check_train_job(_with(job, "search", length_penalty="x"))
    # the search is checked with the validation beam (train.val_beam_size), n_best 1
    assert check_train_job(_with(job, "search", beam_size=0, n_best=7)) is None


def test_own_sentencepiece_models_and_fine_tuning_are_checked(job: TrainJobConfig,
                                                              tmp_path: Path) -> None:
    model = tmp_path / "x.model"
    model.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"data\.spm_src: file .*nope\.model does not exist"):
        check_train_job(_with(job, "data", spm_src=str(tmp_path / "nope.model")))
    with pytest.raises(ValueError, match=r"data\.spm_tgt: with data\.joint_vocab=true one model"):
        check_train_job(_with(job, "data", joint_vocab=True, spm_src=str(model),
                              spm_tgt=str(tmp_path / "src_train")))
    with pytest.raises(ValueError, match=r"train\.init_from: file .*nope\.pt does not exist"):
        check_train_job(_with(job, "train", init_from=str(tmp_path / "nope.pt")))
    tuned = _with(job, "train", init_from=str(model))
    with pytest.raises(ValueError, match=r"data\.spm_src cannot be combined with "
                                         r"train\.init_from"):
        check_train_job(_with(tuned, "data", spm_src=str(model)))
    assert check_train_job(tuned) is None
    with pytest.raises(ValueError, match=r"train\.keep_best must be >= 1, got 0"):
        check_train_job(_with(job, "train", keep_best=0))
    with pytest.raises(ValueError, match=r"train\.best_metric must be one of "
                                         r"\['bleu', 'chrf', 'loss', 'ppl'\], got 'acc'"):
        check_train_job(_with(job, "train", best_metric="acc"))
