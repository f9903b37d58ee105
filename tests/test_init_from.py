"""Tests for seq2seq.training.init_from: fine-tuning the tiny Bible model on a second small corpus
(tests/fixtures/domain.{de,en}: templated everyday sentences) through the real trainer, the
``reset_*`` options, the recorded origin, and contradicting model settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_bundle, model_config_from_bundle, tokenizers_from_bundle
from seq2seq.config import DataConfig, ModelConfig, SearchConfig, TrainConfig, TrainJobConfig
from seq2seq.data import ParallelDataset, load_parallel
from seq2seq.model import build_model
from seq2seq.training.dev_eval import dev_scores
from seq2seq.training.init_from import contradictions, merged_model_config
from seq2seq.training.job import prepare_job
from seq2seq.training.trainer import Trainer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The domain corpus: 260 training pairs, 20 dev, 20 test (files)."""
    pairs = load_parallel(FIXTURES / "domain.de", FIXTURES / "domain.en")
    out = tmp_path_factory.mktemp("domain")
    paths = {}
    for name, sl in (("train", slice(40, None)), ("dev", slice(0, 20)), ("test", slice(20, 40))):
        for side, k, lang in (("src", 0, "de"), ("tgt", 1, "en")):
            p = out / f"{name}.{lang}"
            p.write_text("".join(q[k] + "\n" for q in pairs[sl]), encoding="utf-8")
            paths[f"{side}_{name}"] = str(p)
    return paths


def fine_tune_job(domain: dict[str, str], init: Path, **train: object) -> TrainJobConfig:
    bundle = load_bundle(init)
    t = dict(device="cpu", threads=1, max_tokens=800, lr=5e-3, warmup_steps=5,
             validate_every=60, validate_minutes=0.0, max_steps=60, log_every=10, keep_last=1,
             schedule="constant", init_from=str(init), label_smoothing=0.0)
    t.update(train)
    return TrainJobConfig(model=model_config_from_bundle(bundle),
                          data=DataConfig(src_lang="de", tgt_lang="en", **domain),
                          train=TrainConfig(**t),
                          search=SearchConfig(beam_size=1, length_penalty="none"))


def domain_scores(bundle_path: Path, domain: dict[str, str]) -> dict[str, float]:
    """Dev loss and BLEU of a bundle's model on the domain dev set."""
    bundle = load_bundle(bundle_path)
    src_tok, tgt_tok = tokenizers_from_bundle(bundle)
    pairs = load_parallel(domain["src_dev"], domain["tgt_dev"])
    model = build_model(bundle, "cpu")
    return dev_scores(model, ParallelDataset.from_pairs(pairs, src_tok, tgt_tok), pairs,
                      src_tok, tgt_tok, max_tokens=2000, label_smoothing=0.0,
                      search_cfg=SearchConfig(beam_size=1, length_penalty="none"), beam_size=1,
                      device=torch.device("cpu"))


def test_contradicting_model_keys_are_named() -> None:
    bundle = ModelConfig(hidden_size=32, embed_dim=32, dropout=0.1)
    job = ModelConfig(hidden_size=64, embed_dim=32, dropout=0.3, rnn="lstm")
    assert contradictions(bundle, job) == ["model.rnn=lstm (bundle: gru)",
                                           "model.hidden_size=64 (bundle: 32)"]
    assert contradictions(bundle, job, {"dropout", "embed_dim"}) == []
    merged = merged_model_config(bundle, job, {"dropout"})
    assert merged == dataclasses.replace(bundle, dropout=0.3)
    assert merged_model_config(bundle, job, set()) == bundle  # nothing given: all the bundle's
    with pytest.raises(ValueError, match=r"^model.hidden_size=64 \(bundle: 32\) contradicts "
                                         r"train.init_from"):
        merged_model_config(bundle, job, {"hidden_size", "dropout"})


def test_fine_tuning_improves_loss_and_bleu_on_the_new_corpus(
        tiny_bundle: Path, domain: dict[str, str], tmp_path: Path) -> None:
    before = domain_scores(tiny_bundle, domain)
    res = Trainer(prepare_job(fine_tune_job(domain, tiny_bundle)), tmp_path).fit()
    assert res.step == 60  # updates counted from 0 again
    best = tmp_path / "checkpoints/best.pt"
    after = domain_scores(best, domain)
    assert after["loss"] < before["loss"] - 0.5, (before, after)
    assert after["bleu"] > before["bleu"] + 10, (before, after)
    tuned, orig = load_bundle(best), load_bundle(tiny_bundle)
    assert tokenizers_from_bundle(tuned) == tokenizers_from_bundle(orig)  # vocabulary kept
    assert tuned["model_config"] == orig["model_config"]
    assert tuned["meta"]["init_from"] == {"path": str(tiny_bundle.resolve()), "step": 150,
                                          "dev_bleu": 1.5, "created": orig["meta"]["created"],
                                          "init_from": None}
    assert not (tmp_path / "spm").exists()  # no sentencepiece training
    from seq2seq.inference import Translator

    assert Translator.from_checkpoint(best).info()["init_from"] == tuned["meta"]["init_from"]


def test_reset_options_and_resume_of_a_fine_tuned_run(tiny_corpus: dict[str, Path],
                                                      domain: dict[str, str],
                                                      tmp_path: Path) -> None:
    base_job = TrainJobConfig(
        model=ModelConfig(embed_dim=16, hidden_size=16),
        data=DataConfig(src_lang="de", tgt_lang="en", vocab_size=150,
                        **{k: str(v) for k, v in tiny_corpus.items()}),
        train=TrainConfig(device="cpu", threads=1, max_tokens=800, warmup_steps=5, max_steps=6,
                          validate_every=3, validate_minutes=0.0),
        search=SearchConfig(beam_size=1, length_penalty="none"))
    Trainer(prepare_job(base_job), tmp_path / "base").fit()
    last = tmp_path / "base/checkpoints/last.pt"
    ts = load_bundle(last)["train_state"]

    def tune(run: str, **train: object) -> Trainer:
        job = fine_tune_job(domain, last, max_steps=2, validate_every=0, **train)
        tr = Trainer(prepare_job(job), tmp_path / run)
        tr.fit()
        return tr

    kept = tune("keep", reset_optimizer=False, reset_schedule=False, reset_best=False)
    adam = next(iter(kept.optimizer.state_dict()["state"].values()))
    assert int(adam["step"]) == int(next(iter(ts["optimizer"]["state"].values()))["step"]) + 2
    assert kept.state.schedule.step_count == ts["scheduler"]["step_count"] + 2
    assert kept.state.selection.best_step is not None  # the base run's ranking carried over
    fresh = tune("fresh")
    assert int(next(iter(fresh.optimizer.state_dict()["state"].values()))["step"]) == 2
    assert fresh.state.schedule.step_count == 2
    with pytest.raises(ValueError, match="train.reset_optimizer=false needs a bundle with "
                                         "training state .*/best.pt has none"):
        prepare_job(fine_tune_job(domain, tmp_path / "base/checkpoints/best.pt",
                                  reset_optimizer=False))
    # resuming a fine-tuned run keeps its origin (and resume wins over init_from)
    job = fine_tune_job(domain, last, max_steps=4, validate_every=0, resume=True)
    Trainer(prepare_job(job), tmp_path / "fresh").fit()
    resumed = load_bundle(tmp_path / "fresh/checkpoints/last.pt")
    assert resumed["train_state"]["step"] == 4
    assert resumed["meta"]["init_from"]["path"] == str(last.resolve())


def test_a_contradicting_model_override_fails_naming_the_key(tiny_bundle: Path,
                                                             domain: dict[str, str],
                                                             tmp_path: Path) -> None:
    job = fine_tune_job(domain, tiny_bundle)
    job.model = dataclasses.replace(job.model, hidden_size=64)
    with pytest.raises(ValueError, match=r"model.hidden_size=64 \(bundle: 32\) contradicts"):
        prepare_job(job)
    # the command line: the bundle's model config unless a key is given explicitly
    args = [f"data.{k}={v}" for k, v in domain.items()] + [
        f"train.init_from={tiny_bundle}", "train.device=cpu", "train.max_steps=1",
        "train.max_minutes=0", "train.validate_minutes=0", f"hydra.run.dir={tmp_path}/cli"]
    run = [sys.executable, "-m", "seq2seq.cli.train"]
    bad = subprocess.run(run + args + ["model.hidden_size=64"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert bad.returncode == 1
    assert ("config error: model.hidden_size=64 (bundle: 32) contradicts train.init_from"
            in bad.stderr)
    ok = subprocess.run(run + args + ["model.dropout=0.0"], capture_output=True, text=True,
                        timeout=300, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    tuned = load_bundle(tmp_path / "cli/checkpoints/last.pt")
    assert tuned["model_config"]["hidden_size"] == 32 and tuned["model_config"]["dropout"] == 0.0
