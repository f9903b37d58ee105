"""Tests for seq2seq.training.job: prepare_job checks a job's files once, resolves its device and
precision, and loads its init bundle once, naming the key in every error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seq2seq.config import DataConfig, TrainConfig, TrainJobConfig
from seq2seq.training.job import PreparedJob, check_files, prepare_job


@pytest.fixture
def job(tmp_path: Path) -> TrainJobConfig:
    """A valid job whose four data files exist."""
    paths = {}
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev"):
        paths[key] = str(tmp_path / key)
        Path(paths[key]).write_text("x\n", encoding="utf-8")
    return TrainJobConfig(data=DataConfig(**paths), train=TrainConfig(max_steps=10, device="cpu",
                                                                      precision="fp32"))


def _with(job: TrainJobConfig, section: str, **changes: object) -> TrainJobConfig:
    return dataclasses.replace(job, **{section: dataclasses.replace(getattr(job, section),
                                                                    **changes)})


def test_a_valid_job_is_prepared(job: TrainJobConfig) -> None:
    prepared = prepare_job(job)
    assert prepared == PreparedJob(job, torch.device("cpu"), None, None)


def test_missing_files_are_named(job: TrainJobConfig, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.de")
    with pytest.raises(ValueError, match=r"data\.src_train: file .*nope\.de does not exist"):
        prepare_job(_with(job, "data", src_train=missing))
    with pytest.raises(ValueError, match=r"^data\.src_dev is not set: give a file, e\.g\. "
                                         r"data\.src_dev=path/to/file$"):
        check_files(_with(job, "data", src_dev=""))


def test_device_and_precision_are_resolved_here(job: TrainJobConfig) -> None:
    with pytest.raises(ValueError, match=r"train\.device must be 'auto', 'cpu' or 'cuda', "
                                         r"got 'tpu'"):
        prepare_job(_with(job, "train", device="tpu"))
    with pytest.raises(ValueError, match=r"train\.precision=fp16 needs CUDA"):
        prepare_job(_with(job, "train", precision="fp16"))
    assert prepare_job(_with(job, "train", precision="bf16")).amp_dtype == torch.bfloat16


def test_own_sentencepiece_models_and_fine_tuning_are_checked(job: TrainJobConfig,
                                                              tmp_path: Path) -> None:
    model = tmp_path / "x.model"
    model.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"data\.spm_src: file .*nope\.model does not exist"):
        check_files(_with(job, "data", spm_src=str(tmp_path / "nope.model")))
    with pytest.raises(ValueError, match=r"train\.init_from: file .*nope\.pt does not exist"):
        check_files(_with(job, "train", init_from=str(tmp_path / "nope.pt")))
    tuned = _with(job, "train", init_from=str(model))
    with pytest.raises(ValueError, match=r"data\.spm_src cannot be combined with "
                                         r"train\.init_from"):
        check_files(_with(tuned, "data", spm_src=str(model)))
    assert check_files(tuned) is None
    with pytest.raises(ValueError, match=r"^train\.init_from: .*x\.model"):  # not a bundle
        prepare_job(tuned)


def test_the_init_bundle_is_loaded_once_with_its_model_config(job: TrainJobConfig,
                                                              tiny_bundle: Path) -> None:
    from seq2seq.checkpoint import load_bundle, model_config_from_bundle

    bundle_cfg = model_config_from_bundle(load_bundle(tiny_bundle))
    tuned = _with(_with(job, "train", init_from=str(tiny_bundle)), "model",
                  **dataclasses.asdict(bundle_cfg) | {"dropout": 0.3})
    prepared = prepare_job(tuned)
    assert prepared.cfg.model == dataclasses.replace(bundle_cfg, dropout=0.3)
    assert prepared.init is not None and prepared.init.origin["step"] == 150
    # the command line gives only some keys: the others come from the bundle
    cli = prepare_job(_with(job, "train", init_from=str(tiny_bundle)), model_keys={"dropout"})
    assert cli.cfg.model == dataclasses.replace(bundle_cfg, dropout=job.model.dropout)
    with pytest.raises(ValueError, match=r"model\.hidden_size=512 \(bundle: 32\) contradicts"):
        prepare_job(_with(_with(job, "train", init_from=str(tiny_bundle)), "model",
                          hidden_size=512), model_keys={"hidden_size"})
