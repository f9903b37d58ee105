"""``seq2seq-train`` (Hydra entry point): config schemas and errors, sweeps, kill -9 + resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seq2seq.checkpoint import load_bundle
from seq2seq.cli.train import CONF_DIR, _argv_for_rank, register_configs, to_job_config
from seq2seq.config import ModelConfig, SearchConfig, TrainConfig, TrainJobConfig

ROOT = Path(__file__).resolve().parents[1]


def _tiny_overrides(corpus: dict[str, Path], **extra: object) -> list[str]:
    """Command-line overrides for a fast CPU run on the tiny corpus."""
    args = {f"data.{k}": v for k, v in corpus.items()}
    args.update({
        "data.vocab_size": 200, "data.dev_max_sentences": 12, "model.embed_dim": 32,
        "model.hidden_size": 32, "train.device": "cpu", "train.threads": 1,
        "train.max_tokens": 1500, "train.max_minutes": 0, "train.validate_minutes": 0,
        "train.validate_every": 5, "train.max_steps": 10, "train.log_every": 1,
        "train.warmup_steps": 2, "search": "greedy",
    })
    args.update(extra)
    return [f"{k}={v}" for k, v in args.items()]


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "seq2seq.cli.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------- composition
@pytest.mark.parametrize("choices", [
    ["model=default", "data=bible", "train=default", "search=greedy"],
    ["model=large", "train=gpu", "search=beam"],
])
def test_group_files_compose_against_the_schema(choices: list[str]) -> None:
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=choices)
    job = to_job_config(cfg)
    assert isinstance(job, TrainJobConfig)
    assert OmegaConf.is_struct(cfg)
    if "model=large" in choices:
        assert (job.model.rnn, job.model.hidden_size, job.model.encoder_layers,
                job.model.attention) == ("lstm", 512, 2, "luong_general")
        assert job.train.val_beam_size == 5
    else:
        assert (job.model.rnn, job.model.hidden_size, job.train.threads) == ("gru", 256, 2)
        assert job.train.max_minutes > 0 and job.data.dev_max_sentences == 500
        assert job.search.beam_size == 1
    assert Path(job.data.src_train).is_absolute()


GROUPS = {"model": "ModelConfig", "data": "DataConfig", "train": "TrainConfig",
          "search": "SearchConfig"}


@pytest.mark.parametrize("path", sorted(p.relative_to(CONF_DIR).as_posix()
                                        for p in Path(CONF_DIR).glob("*/*.yaml")))
def test_group_files_hold_only_what_their_preset_changes(path: str) -> None:
    """The dataclasses are the one home of every default: a group file restates none."""
    import seq2seq.config as C

    schema = getattr(C, GROUPS[path.split("/")[0]])
    defaults = C.plain(schema())
    declared = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / path)) or {}
    assert set(declared) <= set(defaults), f"{path}: keys the schema lacks"
    assert {k: v for k, v in declared.items() if v == defaults[k]} == {}, f"{path} restates"


def test_default_cli_config_is_the_dataclass_defaults_plus_the_presets_changes() -> None:
    """``seq2seq-train`` with no arguments == ``TrainJobConfig()`` with the changes that the
    default group files declare (and the data paths made absolute)."""
    import dataclasses

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config")
    job = to_job_config(cfg)
    expected = TrainJobConfig()
    for group, name in (("model", "default"), ("data", "bible"), ("train", "default"),
                        ("search", "beam")):
        declared = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / f"{group}/{name}.yaml"))
        section = dataclasses.replace(getattr(expected, group), **(declared or {}))
        setattr(expected, group, section)
    for key in ("src_train", "tgt_train", "src_dev", "tgt_dev", "src_test", "tgt_test"):
        setattr(expected.data, key, str(ROOT / getattr(expected.data, key)))
    job.train.betas = tuple(job.train.betas)  # OmegaConf holds tuples as lists
    assert job == expected
    assert (job.data.vocab_size, job.train.max_minutes) == (4000, 16.0)  # a change, a default
    # the shipped model, training and search presets are the library's defaults themselves
    assert (job.model, job.train, job.search) == (ModelConfig(), TrainConfig(), SearchConfig())


def test_custom_data_group_matches_its_schema() -> None:
    from seq2seq.config import DataConfig

    custom = OmegaConf.merge(OmegaConf.structured(DataConfig),
                             OmegaConf.load(Path(CONF_DIR) / "data/custom.yaml"))
    assert custom.src_train == "" and custom.tgt_dev == ""  # required, see the next test


def test_custom_data_without_paths_names_the_missing_key(tmp_path: Path) -> None:
    r = _run(["data=custom", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    assert "data.src_train is not set" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run([f"data.src_train={ROOT}/tests/fixtures/tiny.de", "data.tgt_train=nowhere.en",
              f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    assert "data.tgt_train: file" in r.stderr and "nowhere.en does not exist" in r.stderr


def test_non_main_ranks_write_no_hydra_outputs() -> None:
    argv = ["hydra.run.dir=runs/x", "train.max_steps=3"]
    assert _argv_for_rank(argv, 0, "/tmp/s") == argv
    out = _argv_for_rank(argv, 1, "/tmp/s")
    assert "hydra.run.dir=runs/x" not in out and "hydra.run.dir=/tmp/s" in out
    assert "hydra.output_subdir=null" in out and "train.max_steps=3" in out


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("override", "needle"), [
    ("model.hiden_size=64", "hiden_size"),  # unknown key
    ("train.lr=fast", "train.lr"),  # wrong type
    ("train.max_tokns=10", "max_tokns"),
])
def test_config_typos_fail_at_once_naming_the_key(override: str, needle: str,
                                                  tmp_path: Path) -> None:
    t0 = time.perf_counter()
    r = _run([override, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    assert needle in r.stderr
    assert not (tmp_path / "run/checkpoints").exists()
    assert time.perf_counter() - t0 < 60


def test_typo_inside_a_group_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "conf/model").mkdir(parents=True)
    (tmp_path / "conf/model/mine.yaml").write_text("rnn: gru\nhiden_size: 64\n")
    r = _run([f"--config-dir={tmp_path}/conf", "model=mine", f"hydra.run.dir={tmp_path}/run"],
             cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    assert "hiden_size" in r.stderr


def test_bad_value_error_names_the_key(tmp_path: Path) -> None:
    r = _run(["model.attention=luong_cos", f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path,
             timeout=120)
    assert r.returncode != 0
    assert "model.attention" in r.stderr


# ---------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_sweep_gives_one_output_dir_per_job(tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep_args = _tiny_overrides(tiny_corpus, **{"train.max_steps": 3, "model.hidden_size": "16,24"})
    r = _run(["-m", f"hydra.sweep.dir={sweep}", *sweep_args], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    sizes = {}
    for job in ("0", "1"):
        b = load_bundle(sweep / job / "checkpoints/last.pt")
        sizes[job] = b["model_config"]["hidden_size"]
        assert (sweep / job / "metrics.csv").exists() and (sweep / job / ".hydra").is_dir()
    assert sizes == {"0": 16, "1": 24}


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(tiny_corpus: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """SIGKILL a training process after a checkpoint, resume, compare with a straight run."""
    args = _tiny_overrides(tiny_corpus, **{"train.max_steps": 40, "model.dropout": 0.3})
    straight = _run([f"hydra.run.dir={tmp_path}/straight", *args], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]

    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "seq2seq.cli.train", f"hydra.run.dir={run}", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (run / "checkpoints/step_10.pt").exists():
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_bundle(run / "checkpoints/last.pt")["train_state"]["step"]
    assert 10 <= killed_at < 40

    resumed = _run([f"hydra.run.dir={run}", "train.resume=true", *args], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {run}/checkpoints/last.pt (step {killed_at})" in resumed.stdout + resumed.stderr
    a = load_bundle(tmp_path / "straight/checkpoints/last.pt")
    b = load_bundle(run / "checkpoints/last.pt")
    assert b["train_state"]["step"] == 40
    assert a["train_state"]["sampler"] == b["train_state"]["sampler"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    train_steps = [r.split(",")[0] for r in rows if r.split(",")[2]]
    assert train_steps == [str(i) for i in range(1, 41)]  # none repeated, none missing
    assert not list((run / "checkpoints").glob("*.tmp"))
