"""DDP helpers and a real ``torchrun --nproc_per_node=2`` training run (gloo, CPU)."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from seq2seq.checkpoint import load_bundle
from seq2seq.training import distributed as D


def test_single_process_helpers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = D.init_distributed("cpu")
    assert ctx == D.DistContext(0, 1, 0) and ctx.is_main and not ctx.enabled
    t = torch.tensor([3.0])
    assert D.all_reduce_sum(t, ctx).item() == 3.0
    assert D.broadcast_object({"a": 1}, ctx) == {"a": 1}
    assert D.all_gather_object(7, ctx) == [7]
    D.barrier(ctx)
    D.destroy()


def test_env_context_reads_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = D.env_context()
    assert (ctx.rank, ctx.world_size, ctx.local_rank) == (3, 4, 1)
    assert ctx.enabled and not ctx.is_main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = D.init_distributed("cpu")
    try:
        summed = D.all_reduce_sum(torch.tensor([float(rank + 1)]), ctx).item()
        got = D.broadcast_object({"bleu": 12.5} if rank == 0 else None, ctx)
        gathered = D.all_gather_object(f"r{rank}", ctx)
        D.barrier(ctx)
        torch.save({"sum": summed, "bcast": got, "gather": gathered}, f"{out}/{rank}.pt")
    finally:
        D.destroy()


def test_collectives_across_two_gloo_processes(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        r = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        assert r == {"sum": 3.0, "bcast": {"bleu": 12.5}, "gather": ["r0", "r1"]}


# the real entry point under torchrun; each rank dumps its final weights (test-only wrapper)
_LAUNCHER = """
import os, sys, torch
import seq2seq.training.trainer as T
_fit = T.Trainer.fit
def fit(self):
    res = _fit(self)
    sd = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
    sd["_step"] = torch.tensor(self.state.step)
    sd["_lr"] = torch.tensor(self.optimizer.param_groups[0]["lr"], dtype=torch.float64)
    torch.save(sd, os.path.join(os.environ["DUMP_DIR"], f"rank{self.ctx.rank}.pt"))
    return res
T.Trainer.fit = fit
from seq2seq.cli.train import main
main()
"""


def _tiny_ddp_overrides(tiny_corpus: dict[str, Path], **train: object) -> dict[str, object]:
    common: dict[str, object] = {f"data.{k}": v for k, v in tiny_corpus.items()}
    common.update({
        "data.vocab_size": 200, "data.dev_max_sentences": 12, "model.embed_dim": 32,
        "model.hidden_size": 32, "model.dropout": 0.0, "model.rnn": "gru", "train.device": "cpu",
        "train.threads": 1, "train.max_tokens": 500, "train.lr": 5e-3, "train.warmup_steps": 2,
        "train.validate_minutes": 0, "train.log_every": 1, "train.keep_last": 2,
        "search": "greedy", "search.length_penalty": "none",
    })
    common.update({f"train.{k}": v for k, v in train.items()})
    return common


def _torchrun(tmp_path: Path, overrides: dict[str, object]
              ) -> tuple[Path, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Train with two gloo ranks under torchrun; the run dir and each rank's final weights
    (with ``_step`` and ``_lr``: the update count and the optimizer's last rate)."""
    script = tmp_path / "launch.py"
    script.write_text(_LAUNCHER)
    dump, scratch, run = tmp_path / "dump", tmp_path / "scratch", tmp_path / "runs/ddp"
    dump.mkdir()
    scratch.mkdir()
    env = dict(os.environ, DUMP_DIR=str(dump), TMPDIR=str(scratch), OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), f"hydra.run.dir={run}", *[f"{k}={v}" for k, v in overrides.items()]]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    w0 = torch.load(dump / "rank0.pt", weights_only=True)
    w1 = torch.load(dump / "rank1.pt", weights_only=True)
    return run, w0, w1


@pytest.mark.slow
def test_torchrun_ranks_agree_on_the_rate_of_a_time_budget(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """wsd on a 6 s budget: the progress comes from the ranks' mean clock, so both ranks set
    the same rate at every update (any difference would leave different weights), stop at the
    same update and end near min_lr."""
    run, w0, w1 = _torchrun(tmp_path, _tiny_ddp_overrides(
        tiny_corpus, schedule="wsd", cooldown=0.5, min_lr=0.0, max_steps=0, max_minutes=0.1,
        validate_every=0))
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    n = int(w0["_step"])
    assert n >= 6
    assert float(w0["_lr"]) <= 5e-3 * 4 / n  # a few updates' share of a cooldown of n / 2
    with open(run / "metrics.csv", newline="") as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f) if row["train_loss"]]
    assert len(rates) == n and max(rates) == pytest.approx(5e-3)  # a peak phase, then down
    assert rates[2:] == sorted(rates[2:], reverse=True)


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process_with_accumulation(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    from hydra import compose, initialize_config_dir

    from seq2seq.cli.train import CONF_DIR, register_configs, to_job_config
    from seq2seq.training.job import prepare_job
    from seq2seq.training.trainer import Trainer

    steps = 6
    common = _tiny_ddp_overrides(tiny_corpus, schedule="constant", max_steps=steps,
                                 max_minutes=0, validate_every=3)
    run, w0, w1 = _torchrun(tmp_path, common)

    # both ranks finished with identical weights
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    assert int(w0.pop("_step")) == steps and float(w0.pop("_lr")) == pytest.approx(5e-3)
    # exactly one run directory with one checkpoint dir; rank 1's scratch dir is gone
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]
    assert list((tmp_path / "scratch").glob("seq2seq-rank*")) == []
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.pt", "last.pt", "step_3.pt", "step_6.pt"]
    bundle = load_bundle(run / "checkpoints/last.pt")
    assert bundle["train_state"]["world_size"] == 2 and len(bundle["train_state"]["rng"]) == 2
    # 2 ranks x 6 updates = 12 batches of epoch 0's list (one process would truncate nothing)
    assert bundle["train_state"]["sampler"] == {"epoch": 0, "batches_done": 2 * steps}
    for k in w0:
        torch.testing.assert_close(bundle["model"][k], w0[k], rtol=0, atol=0)
    with open(run / "metrics.csv", newline="") as f:
        losses = [float(row["train_loss"]) for row in csv.DictReader(f) if row["train_loss"]]
    assert len(losses) == steps and losses[-1] < losses[0]

    # one process, accumulating the same 2 consecutive batches per update
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config",
                      overrides=[f"{k}={v}" for k, v in common.items()] + ["train.accum_steps=2"])
    single = Trainer(prepare_job(to_job_config(cfg)), tmp_path / "single")
    single.fit()
    ref = single.model.state_dict()
    for k in w0:
        torch.testing.assert_close(w0[k], ref[k], rtol=1e-4, atol=1e-5)
