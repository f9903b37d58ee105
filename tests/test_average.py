"""Tests for seq2seq.inference.average: exact means, a usable bundle, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_bundle, save_bundle
from seq2seq.cli.average import main
from seq2seq.config import SearchConfig
from seq2seq.inference.average import average_checkpoints, step_checkpoints
from seq2seq.inference.translator import Translator


def _variant(base: dict, seed: int, step: int) -> dict:
    """``base`` with randomly perturbed float weights and a different step."""
    g = torch.Generator().manual_seed(seed)
    model = {k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in base["model"].items()}
    return {**base, "model": model, "train_state": {"step": step},
            "meta": {**base["meta"], "step": step}}


@pytest.fixture()
def run_dir(tiny_bundle, tmp_path) -> Path:
    base = load_bundle(tiny_bundle)
    ckpts = tmp_path / "run" / "checkpoints"
    for i, step in enumerate((50, 100, 150, 1000)):  # 1000 sorts before 150 as text
        save_bundle(ckpts / f"step_{step}.pt", _variant(base, i, step))
    save_bundle(ckpts / "last.pt", _variant(base, 9, 1000))
    return tmp_path / "run"


def test_step_checkpoints_sorted_by_number(run_dir):
    assert [p.name for p in step_checkpoints(run_dir)] == [
        "step_50.pt", "step_100.pt", "step_150.pt", "step_1000.pt"]
    with pytest.raises(FileNotFoundError, match="no step_"):
        step_checkpoints(run_dir / "nothing")


def test_average_is_the_exact_mean(run_dir):
    paths = step_checkpoints(run_dir)[-3:]
    inputs = [load_bundle(p)["model"] for p in paths]
    avg = average_checkpoints(paths)
    for k, v in avg["model"].items():
        expected = torch.stack([m[k].double() for m in inputs]).mean(0).to(v.dtype)
        assert v.dtype == inputs[0][k].dtype
        torch.testing.assert_close(v, expected, rtol=0, atol=1e-7)
    some = next(k for k, v in avg["model"].items() if v.is_floating_point())
    assert not torch.equal(avg["model"][some], inputs[-1][some])
    assert avg["train_state"] is None and avg["meta"]["dev_bleu"] is None
    assert [s["step"] for s in avg["meta"]["averaged_from"]] == [100, 150, 1000]
    assert avg["meta"]["step"] == 1000


def test_cli_run_dir_output_translates(run_dir):
    main(["--run-dir", str(run_dir), "--last", "2"])
    out = run_dir / "checkpoints" / "avg_last2.pt"
    bundle = load_bundle(out)
    assert [Path(s["path"]).name for s in bundle["meta"]["averaged_from"]] == [
        "step_150.pt", "step_1000.pt"]
    tr = Translator.from_bundle(bundle)
    res = tr.translate(["Und Gott sprach:"], SearchConfig(beam_size=2, max_len_b=5))
    assert len(res) == 1 and isinstance(res[0].text, str) and res[0].tokens
    assert tr.info()["averaged_from"] == bundle["meta"]["averaged_from"]


def test_mismatched_architectures(tiny_bundle, tmp_path):
    base = load_bundle(tiny_bundle)
    other = {**base, "model_config": {**base["model_config"], "hidden_size": 48}}
    save_bundle(tmp_path / "a.pt", base)
    save_bundle(tmp_path / "b.pt", other)
    with pytest.raises(ValueError, match=r"b\.pt with .*a\.pt: model_config differs in \['hidden_size'\]"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    shape = dict(base["model"])
    k = next(iter(shape))
    shape[k] = torch.zeros(3)
    save_bundle(tmp_path / "c.pt", {**base, "model": shape})
    with pytest.raises(ValueError, match=f"parameter {k}"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "c.pt"])


def test_cli_errors(tiny_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--run-dir", str(tmp_path)])
    assert exc.value.code == 2 and "no step_<N>.pt checkpoints" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tiny_bundle)])  # no -o
    with pytest.raises(SystemExit):
        main([str(tiny_bundle), "-o", str(tiny_bundle)])
