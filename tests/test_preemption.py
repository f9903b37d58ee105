"""SIGTERM/SIGINT during training: a checkpoint at the next update boundary, exit 0, and a resume
that continues bit for bit; in one process, through ``seq2seq-train`` and under ``torchrun``."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train_cli import _tiny_overrides
from test_trainer import tiny_job

from seq2seq.checkpoint import load_bundle
from seq2seq.training.job import prepare_job
from seq2seq.training.preemption import StopSignals
from seq2seq.training.trainer import Trainer


def test_stop_signals_set_a_flag_and_restore_the_handlers() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with StopSignals() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM changes nothing
        assert stop.received == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second SIGINT interrupts at once
            os.kill(os.getpid(), signal.SIGINT)
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_sigterm_checkpoints_at_the_update_boundary_and_resume_is_exact(
    tiny_corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 updates straight == SIGTERM during update 3, checkpoint at 3, resume to 8."""
    job = tiny_job(tiny_corpus)
    Trainer(prepare_job(job), tmp_path / "a").fit()

    orig = Trainer.train_step

    def signalled(self: Trainer, batches: list, global_tokens: int) -> dict:
        out = orig(self, batches, global_tokens)
        if self.state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the run
        return out

    monkeypatch.setattr(Trainer, "train_step", signalled)
    res = Trainer(prepare_job(job), tmp_path / "b").fit()
    monkeypatch.setattr(Trainer, "train_step", orig)
    assert (res.stop_reason, res.step) == ("preempted", 3)
    assert load_bundle(tmp_path / "b/checkpoints/last.pt")["train_state"]["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    resumed = Trainer(prepare_job(dataclasses.replace(job, train=dataclasses.replace(job.train, resume=True))),
                      tmp_path / "b").fit()
    assert (resumed.stop_reason, resumed.step) == ("max_steps", 8)
    a = load_bundle(tmp_path / "a/checkpoints/last.pt")
    b = load_bundle(tmp_path / "b/checkpoints/last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["train_state"]["sampler"] == b["train_state"]["sampler"]
    assert a["train_state"]["best_bleu"] == b["train_state"]["best_bleu"]
    rows = (tmp_path / "b/metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows if r.split(",")[2]] == [str(i) for i in range(1, 9)]


def _wait_for_rows(metrics: Path, proc: subprocess.Popen, n: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > n):
        assert proc.poll() is None, "training ended before the signal"
        assert time.time() < deadline, "no training rows appeared"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_seq2seq_train_exits_0_on_a_signal_and_says_how_to_resume(
    tiny_corpus: dict[str, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    args = _tiny_overrides(tiny_corpus, **{"train.max_steps": 400, "train.validate_every": 0})
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "seq2seq.cli.train", f"hydra.run.dir={run}",
                             *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_rows(run / "metrics.csv", proc, 2)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    step = load_bundle(run / "checkpoints/last.pt")["train_state"]["step"]
    assert 2 <= step < 400
    assert f"{sig.name} received" in out
    assert f"Resume with: seq2seq-train hydra.run.dir={run} train.resume=true" in out
    assert not list((run / "checkpoints").glob("*.tmp"))
    more = _tiny_overrides(tiny_corpus, **{"train.max_steps": step + 2,
                                           "train.validate_every": 0})
    resumed = subprocess.run([sys.executable, "-m", "seq2seq.cli.train", f"hydra.run.dir={run}",
                              "train.resume=true", *more], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_bundle(run / "checkpoints/last.pt")["train_state"]["step"] == step + 2


@pytest.mark.slow
def test_sigterm_under_torchrun_stops_every_rank_at_the_same_update(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """SIGTERM to the process group: both ranks agree on the update, rank 0 writes last.pt."""
    args = _tiny_overrides(tiny_corpus, **{"train.max_steps": 400, "train.validate_every": 0})
    run = tmp_path / "ddp"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "seq2seq.cli.train", f"hydra.run.dir={run}", *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_rows(run / "metrics.csv", proc, 2, timeout=300)
        os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler does: the whole process group
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # torchrun itself exits 1 after forwarding a signal (its SignalException); the ranks' part:
    assert out.count("SIGTERM received: stopping after this update") == 2, out[-3000:]
    ts = load_bundle(run / "checkpoints/last.pt")["train_state"]
    assert ts["world_size"] == 2 and len(ts["rng"]) == 2 and ts["step"] >= 2
    assert f"stopped by a signal at update {ts['step']};" in out  # rank 0 wrote that update
    assert "ChildFailedError" not in out and not list((run / "checkpoints").glob("*.tmp"))
