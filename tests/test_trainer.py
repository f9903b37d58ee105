"""Trainer on the tiny corpus: exact resume, checkpoints, validation BLEU, early stopping,
token-normalised accumulation, overfitting 20 pairs."""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path

import pytest
import sacrebleu
import torch

from seq2seq.checkpoint import FORMAT_VERSION, load_bundle, tokenizers_from_bundle
from seq2seq.config import DataConfig, ModelConfig, SearchConfig, TrainConfig, TrainJobConfig
from seq2seq.data import collate
from seq2seq.tokenizer import Tokenizer
from seq2seq.training.job import prepare_job
from seq2seq.training.trainer import Trainer


def tiny_job(corpus: dict[str, Path], model: dict | None = None, **train: object) -> TrainJobConfig:
    """A small, fast, deterministic CPU job on the tiny corpus."""
    m = dict(rnn="gru", embed_dim=32, hidden_size=32, dropout=0.3)
    m.update(model or {})
    t = dict(device="cpu", threads=1, max_tokens=1500, lr=5e-3, warmup_steps=2,
             validate_every=4, validate_minutes=0.0, max_steps=8, log_every=1, keep_last=2,
             schedule="constant", precision="fp32")  # exact comparisons on any CPU
    t.update(train)
    data = DataConfig(vocab_size=200, dev_max_sentences=12,
                      **{k: str(v) for k, v in corpus.items()})
    return TrainJobConfig(model=ModelConfig(**m), data=data, train=TrainConfig(**t),
                          search=SearchConfig(beam_size=1, length_penalty="none", batch_size=64))


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_bundle(path)["model"]


@pytest.mark.parametrize(("schedule", "ema_decay"), [("constant", 0.0), ("wsd", 0.7)])
def test_resume_after_crash_equals_uninterrupted_run(
    tiny_corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schedule: str,
    ema_decay: float,
) -> None:
    """8 updates straight == 6 updates, crash, resume from the step-4 checkpoint, 4 more.

    Dropout is on and the batches cross an epoch boundary, so the RNG and sampler state must be
    restored exactly for the weights (and their average) to agree.
    """
    job = tiny_job(tiny_corpus, schedule=schedule, cooldown=0.5, ema_decay=ema_decay)
    straight = Trainer(prepare_job(job), tmp_path / "a").fit()
    assert straight.step == 8 and straight.epochs > 1.0  # crossed into the second epoch

    orig = Trainer.train_step

    def crashing(self: Trainer, batches: list, global_tokens: int) -> dict:
        if self.state.step == 6:
            raise RuntimeError("simulated crash")
        return orig(self, batches, global_tokens)

    monkeypatch.setattr(Trainer, "train_step", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(prepare_job(job), tmp_path / "b").fit()
    monkeypatch.setattr(Trainer, "train_step", orig)
    assert load_bundle(tmp_path / "b/checkpoints/last.pt")["train_state"]["step"] == 4

    def no_retrain(*args: object, **kwargs: object) -> None:
        raise AssertionError("resume must reuse the bundle's sentencepiece models")

    monkeypatch.setattr(Tokenizer, "train", no_retrain)
    resumed = Trainer(prepare_job(dataclasses.replace(job, train=dataclasses.replace(job.train, resume=True))),
                      tmp_path / "b").fit()
    assert resumed.step == 8
    a, b = load_bundle(tmp_path / "a/checkpoints/last.pt"), load_bundle(tmp_path / "b/checkpoints/last.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ta, tb = a["train_state"], b["train_state"]
    assert ta["sampler"] == tb["sampler"]
    assert ta["sampler"]["epoch"] >= 1
    for sa, sb in zip(ta["optimizer"]["state"].values(), tb["optimizer"]["state"].values(),
                      strict=True):
        torch.testing.assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"], rtol=0, atol=0)
    assert ta["best_bleu"] == tb["best_bleu"]
    if ema_decay:
        assert ta["ema"]["updates"] == tb["ema"]["updates"] == 8
        for k, v in ta["ema"]["biased"].items():
            assert torch.equal(v, tb["ema"]["biased"][k]), k
    # the metrics file was rewound to the checkpoint: no duplicated or missing train rows
    def table(run: str) -> list[tuple[str, ...]]:  # timing columns left out
        with open(tmp_path / run / "metrics.csv", newline="") as f:
            return [(r["step"], r["epoch"], r["train_loss"], r["dev_loss"], r["dev_bleu"])
                    for r in csv.DictReader(f)]

    assert table("b") == table("a")
    assert [r[0] for r in table("b") if r[2]] == [str(i) for i in range(1, 9)]


def test_checkpoint_bundle_contents_and_layout(tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    job = tiny_job(tiny_corpus, max_steps=12, keep_last=2)
    Trainer(prepare_job(job), tmp_path).fit()
    ck = tmp_path / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["best.pt", "last.pt", "step_12.pt",
                                                    "step_8.pt"]
    raw = torch.load(ck / "last.pt", weights_only=True)  # plain data only
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["model_config"]["hidden_size"] == 32
    assert raw["meta"]["step"] == 12 and raw["meta"]["config"]["train"]["max_steps"] == 12
    assert raw["spm"]["src"].dtype == torch.uint8 and raw["spm"]["src"].numel() > 1000
    src_tok, tgt_tok = tokenizers_from_bundle(raw)
    assert src_tok == Tokenizer((tmp_path / "spm/de.model").read_bytes())
    assert tgt_tok.vocab_size == raw["vocab"]["tgt_size"] == 200
    truecase = raw["truecase"]["src"]  # the training source's word forms (inference/casing.py)
    assert truecase["gott"] == "Gott" and truecase["erde"] == "Erde" and "und" not in truecase
    assert raw["final_mark"] == {"src": "."}  # the tiny corpus's usual final mark
    ts = raw["train_state"]
    assert ts["step"] == 12 and len(ts["rng"]) == 1 and ts["world_size"] == 1
    assert {"optimizer", "scheduler", "sampler", "history", "elapsed_s"} <= set(ts)
    assert load_bundle(ck / "best.pt")["train_state"] is None  # lean bundle for serving
    best = load_bundle(ck / "best.pt")
    assert best["truecase"] == raw["truecase"] and best["final_mark"] == raw["final_mark"]
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "train_loss", "dev_bleu", "tokens_per_s"} <= set(header)


def test_weight_average_is_validated_and_exported_while_last_keeps_the_raw_weights(
        tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    tr = Trainer(prepare_job(tiny_job(tiny_corpus, max_steps=6, validate_every=6, ema_decay=0.6)), tmp_path)
    res = tr.fit()
    last, best = (load_bundle(tmp_path / f"checkpoints/{n}.pt") for n in ("last", "best"))
    ema = last["train_state"]["ema"]
    assert ema["updates"] == 6 and ema["decay"] == 0.6
    correction = 1.0 / (1.0 - 0.6 ** 6)
    differ = 0
    for name, biased in ema["biased"].items():
        assert torch.equal(last["model"][name], tr.model.state_dict()[name]), name  # raw
        torch.testing.assert_close(best["model"][name], biased * correction)  # averaged
        differ += not torch.equal(best["model"][name], last["model"][name])
    assert differ == len(ema["biased"])  # every averaged tensor differs from the raw one
    # validation scored the average: the same scores as the average put into the model
    assert tr.validate()["loss"] == pytest.approx(res.last_dev["loss"])
    tr.model.load_state_dict(best["model"])
    tr.state.ema = None
    assert tr.validate()["loss"] == pytest.approx(res.last_dev["loss"], rel=1e-6)


def test_validation_bleu_is_sacrebleu_of_greedy_output(tiny_corpus: dict[str, Path],
                                                       tmp_path: Path) -> None:
    tr = Trainer(prepare_job(tiny_job(tiny_corpus, max_steps=10, lr=1e-2)), tmp_path)
    res = tr.fit()
    scores = tr.validate()
    assert scores["bleu"] == pytest.approx(res.last_dev["bleu"])  # same model, deterministic
    hyps = [t.text for t in tr.translator().translate(
        [s for s, _ in tr.dev_pairs], dataclasses.replace(tr.cfg.search, beam_size=1))]
    refs = [t for _, t in tr.dev_pairs]
    assert len(hyps) == 12 and any(hyps)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scores["ppl"] == pytest.approx(torch.tensor(scores["nll"]).exp().item())


def test_early_stopping_after_patience(tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    # a rate so small the greedy output never changes: BLEU never beats the first validation
    job = tiny_job(tiny_corpus, lr=1e-9, warmup_steps=0, validate_every=2, max_steps=50,
                   patience=2, keep_last=0)
    res = Trainer(prepare_job(job), tmp_path).fit()
    assert res.stop_reason == "early_stopping"
    assert res.step == 6 and res.best_step == 2  # validations at 2 (best), 4, 6 (2 bad)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def _record_rates(monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], list[float]]:
    """The rate every update ran at and the clock when it ended (read when the schedule is
    stepped, after the update)."""
    from seq2seq.training.schedule import LRSchedule

    rates: list[float] = []
    ends: list[float] = []
    orig = LRSchedule.step

    def step(self: LRSchedule) -> None:
        rates.append(self.optimizer.param_groups[0]["lr"])
        ends.append(time.perf_counter())
        orig(self)

    monkeypatch.setattr(LRSchedule, "step", step)
    return rates, ends


@pytest.mark.parametrize("budget", ["steps", "minutes"])
def test_budget_aware_schedule_reaches_the_floor_on_the_last_update(
        tiny_corpus: dict[str, Path], tmp_path: Path, budget: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """wsd: peak after warmup, then down to min_lr exactly on the last update of a step
    budget; on the last one of a time budget within the longest update's share of the
    cooldown (the time left when the last update starts is at most about one update)."""
    limits = ({"max_steps": 10} if budget == "steps" else
              {"max_steps": 0, "max_minutes": 0.1})  # 6 s: some tens of tiny updates
    tr = Trainer(prepare_job(tiny_job(tiny_corpus, schedule="wsd", cooldown=0.5, warmup_steps=2,
                          min_lr=0.0, validate_every=0, **limits)), tmp_path)
    rates, ends = _record_rates(monkeypatch)
    tr.fit()
    n = len(rates)
    assert n == tr.state.step >= 6
    assert rates[2:] == sorted(rates[2:], reverse=True)  # after warmup: only down
    if budget == "steps":
        assert rates[:3] == pytest.approx([2.5e-3, 5e-3, 5e-3])  # warmup, then the peak held
        assert rates[5:] == pytest.approx([5e-3 * (10 - k) / 5 for k in range(6, 11)])
        assert rates[-1] == 0.0
    else:  # the clock decides: the first updates are slower than the rest
        assert max(rates) >= 2.5e-3  # a peak phase, then the cooldown
        # an update and the loop around it, past the slower first ones
        longest = max(b - a for a, b in zip(ends[2:], ends[3:], strict=False))
        assert longest < 1.0  # else the bound below says little
        # rate = peak * (time left) / (cooldown 0.5 * 6 s); time left <= ~one update (x2: slack)
        assert rates[-1] <= 5e-3 * 2 * longest / (0.5 * 6.0), (rates[-1], longest, n)


def test_accumulated_micro_batches_give_the_full_batch_gradient(
    tiny_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Loss is normalised by the update's total target tokens, not per micro-batch."""
    tr = Trainer(prepare_job(tiny_job(tiny_corpus, model={"dropout": 0.0}, max_steps=1)), tmp_path)
    tr.fit()
    pairs = [tr.train_set[i] for i in range(6)]
    parts = [collate(pairs[:2]), collate(pairs[2:])]  # unequal token counts
    whole = collate(pairs)
    params = dict(tr.model.named_parameters())
    grads = []
    for batches in (parts, [whole]):
        for p in params.values():
            p.grad = None
        total = sum(b.ntokens for b in batches)
        tr.ddp = tr.model
        sd = {k: v.clone() for k, v in tr.model.state_dict().items()}
        opt_sd = tr.optimizer.state_dict()
        captured = {}
        orig_step = tr.optimizer.step

        def capture(*a: object, captured: dict = captured, **k: object) -> None:
            captured.update({n: p.grad.clone() for n, p in params.items()})

        tr.optimizer.step = capture  # type: ignore[method-assign]
        tr.cfg.train.clip_norm = 0.0
        tr.train_step(batches, total)
        tr.optimizer.step = orig_step  # type: ignore[method-assign]
        tr.model.load_state_dict(sd)
        tr.optimizer.load_state_dict(opt_sd)
        grads.append(captured)
    for n in params:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6)


def test_the_trainer_reads_and_writes_nothing_before_fit(tiny_corpus: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """The trainer takes a prepared job (seq2seq.training.job.prepare_job checks it once) and
    builds nothing until ``fit``: constructing it touches no file."""
    run = tmp_path / "run"
    tr = Trainer(prepare_job(tiny_job(tiny_corpus)), run)
    assert tr.device == torch.device("cpu") and tr.amp_dtype is None
    assert not run.exists() and not hasattr(tr, "state")
    res = tr.fit()
    assert res.step == tr.state.step == 8 and (run / "checkpoints/last.pt").is_file()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_mixed_precision_training(tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    job = tiny_job(tiny_corpus, device="cuda", precision="auto", max_steps=20, lr=1e-2,
                   validate_every=10)
    tr = Trainer(prepare_job(job), tmp_path)
    res = tr.fit()
    assert tr.amp_dtype in (torch.bfloat16, torch.float16)
    rows = [r for r in tr.state.history.rows if r.get("train_loss") not in (None, "")]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert res.best_bleu is not None
    assert load_bundle(tmp_path / "checkpoints/last.pt")["model"]["decoder.embedding.weight"].device.type == "cpu"


@pytest.mark.slow
def test_overfits_20_pairs_to_bleu_above_90(tiny_corpus: dict[str, Path], tmp_path: Path) -> None:
    """The trainer can memorise 20 pairs (train = dev) through the full pipeline."""
    from seq2seq.data import load_parallel

    pairs = load_parallel(tiny_corpus["src_train"], tiny_corpus["tgt_train"])[:20]
    for side, k in (("de", 0), ("en", 1)):
        (tmp_path / f"p.{side}").write_text("".join(p[k] + "\n" for p in pairs), encoding="utf-8")
    paths = {f"{s}_{split}": tmp_path / f"p.{'de' if s == 'src' else 'en'}"
             for s in ("src", "tgt") for split in ("train", "dev", "test")}
    job = tiny_job(paths, model={"embed_dim": 64, "hidden_size": 64, "dropout": 0.0},
                   lr=1e-2, warmup_steps=10, max_steps=400, validate_every=100, log_every=50,
                   label_smoothing=0.0, max_tokens=4000, threads=1, patience=0)
    job = dataclasses.replace(job, data=dataclasses.replace(job.data, vocab_size=120,
                                                            dev_max_sentences=0))
    res = Trainer(prepare_job(job), tmp_path / "run").fit()
    assert res.best_bleu > 90.0, res.last_dev


def test_a_failing_checkpoint_write_stops_training_and_keeps_the_last_good_one(
        tiny_corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full at the second save (update 8): a clear error, last/best.pt of update 4 intact."""
    import errno

    import seq2seq.checkpoint as ckpt_mod
    from seq2seq.training.run_checkpoints import CheckpointWriteError

    real_save, calls = torch.save, []

    def full_after_first_save(obj: object, f: object) -> None:
        calls.append(1)
        if len(calls) > 2:  # update 4 writes last.pt and best.pt
            real_save({"x": torch.zeros(10)}, f)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(ckpt_mod.torch, "save", full_after_first_save)
    with pytest.raises(CheckpointWriteError, match="last.pt: No space left on device"):
        Trainer(prepare_job(tiny_job(tiny_corpus)), tmp_path).fit()
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    ck = tmp_path / "checkpoints"
    assert load_bundle(ck / "last.pt")["train_state"]["step"] == 4
    assert load_bundle(ck / "best.pt")["meta"]["step"] == 4
    assert not list(ck.glob("*.tmp"))


def test_best_by_loss_keeps_the_n_best_and_writes_tensorboard(tiny_corpus: dict[str, Path],
                                                               tmp_path: Path) -> None:
    """best_metric=loss picks best.pt by dev loss; keep_best=2 keeps the two best validations'
    weights (seq2seq-average --best averages them); the scalars reach TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seq2seq.cli.average import main as average_main

    job = tiny_job(tiny_corpus, max_steps=12, validate_every=3, best_metric="loss", keep_best=2,
                   keep_last=0)
    tr = Trainer(prepare_job(job), tmp_path)
    res = tr.fit()
    devs = [(int(r["step"]), r["dev_loss"]) for r in tr.state.history.rows if "dev_loss" in r]
    assert [s for s, _ in devs] == [3, 6, 9, 12]
    ranked = sorted(devs, key=lambda d: d[1])
    assert res.best_metric == "loss" and res.best_step == ranked[0][0]
    assert res.best_value == pytest.approx(ranked[0][1], abs=1e-5)
    ck = tmp_path / "checkpoints"
    assert sorted(p.name for p in ck.glob("best_step_*.pt")) == sorted(
        f"best_step_{s}.pt" for s, _ in ranked[:2])
    assert load_bundle(ck / "best.pt")["meta"]["step"] == ranked[0][0]
    for s, _ in ranked[:2]:
        assert load_bundle(ck / f"best_step_{s}.pt")["train_state"] is None
    average_main(["--run-dir", str(tmp_path), "--best"])
    avg = load_bundle(ck / "avg_best2.pt")
    assert sorted(a["step"] for a in avg["meta"]["averaged_from"]) == sorted(
        s for s, _ in ranked[:2])
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("dev/loss")] == [3, 6, 9, 12]
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))
    assert {"train/lr", "train/tokens_per_s", "dev/bleu", "dev/chrf", "dev/ppl"} <= set(
        acc.Tags()["scalars"])
