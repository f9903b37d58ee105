"""Tests for seq2seq.cli.evaluate on the real tiny bundle and tiny dev/test splits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from seq2seq.cli.conf import compose_command
from seq2seq.cli.evaluate import EvaluateConfig, evaluate, split_files
from seq2seq.config import SearchConfig
from seq2seq.data import read_lines
from seq2seq.inference.translator import Translator
from seq2seq.metrics import corpus_scores

FAST = SearchConfig(beam_size=2, max_len_a=1.0, max_len_b=5)


def _cfg(**kw) -> EvaluateConfig:
    """Structured config composed exactly as the CLI does (conf/evaluate.yaml + overrides)."""
    return compose_command("evaluate", EvaluateConfig, [f"{k}={v}" for k, v in kw.items()])


@pytest.fixture()
def ckpt(tiny_bundle, tmp_path) -> Path:
    dst = tmp_path / "run" / "best.pt"
    dst.parent.mkdir()
    shutil.copyfile(tiny_bundle, dst)
    return dst


def test_scores_match_metrics_on_written_hypotheses(ckpt, tiny_corpus):
    cfg = _cfg(checkpoint=ckpt, split="dev", progress=False, **{"search.beam_size": 2,
                                                                "search.max_len_b": 5})
    assert cfg.search.beam_size == 2 and cfg.search.length_penalty == "gnmt"
    rec = evaluate(cfg)
    hyp_path, json_path = ckpt.parent / "best.dev.hyp", ckpt.parent / "best.dev.json"
    assert rec["hypotheses"] == str(hyp_path) and rec["scores"] == str(json_path)
    saved = json.loads(json_path.read_text())
    assert saved["precision"] == "fp32 (precision=fp32)"  # the default of every entry point
    hyps = read_lines(hyp_path)
    refs = read_lines(tiny_corpus["tgt_dev"])
    expected = corpus_scores(hyps, refs)
    assert saved["bleu"] == expected["bleu"] and saved["chrf"] == expected["chrf"]
    assert saved["bleu_signature"] == expected["bleu_signature"]
    assert saved["chrf_signature"].startswith("nrefs:1")
    assert saved["n_sentences"] == len(hyps) == len(refs) == 12
    assert saved["step"] == 150 and saved["split"] == "dev"
    assert saved["src"] == str(tiny_corpus["src_dev"])
    assert saved["sentences_per_second"] == pytest.approx(12 / saved["seconds"], rel=0.05)
    assert saved["search"]["beam_size"] == 2
    # the hypotheses are what the Translator gives for the same search options
    tr = Translator.from_checkpoint(ckpt)
    assert hyps == [t.text for t in tr.translate(read_lines(tiny_corpus["src_dev"]), cfg.search)]


def test_src_ref_override_and_output_dir(ckpt, tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(tiny_corpus["src_test"], tmp_path / "x.de")
    shutil.copyfile(tiny_corpus["tgt_test"], tmp_path / "x.en")
    rec = evaluate(EvaluateConfig(checkpoint=str(ckpt), src="x.de", ref="x.en", output_dir="ev",
                                  search=replace(FAST, beam_size=1), progress=False))
    assert rec["split"] is None and rec["src"] == str(tmp_path / "x.de")
    assert Path(rec["hypotheses"]) == tmp_path / "ev" / "best.x.de.hyp"
    assert len(read_lines(rec["hypotheses"])) == 12


def test_bad_options(ckpt, tiny_bundle):
    with pytest.raises(ValueError, match="split must be one of"):
        split_files(EvaluateConfig(checkpoint="x", split="train"), {})
    with pytest.raises(ValueError, match="give both src= and ref="):
        split_files(EvaluateConfig(checkpoint="x", src="a.de"), {})
    with pytest.raises(ValueError, match="no data.src_test"):
        split_files(EvaluateConfig(checkpoint="x"), {"config": {}})
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        evaluate(EvaluateConfig(checkpoint=str(ckpt.parent / "nope.pt")))


def test_misspelled_key_fails_naming_it():
    with pytest.raises(ConfigCompositionException, match="serch"):
        _cfg(checkpoint="x.pt", **{"serch.beam_size": 3})
    with pytest.raises(ConfigCompositionException, match="beam_size"):
        _cfg(checkpoint="x.pt", **{"search.beam_size": "many"})
    assert _cfg(checkpoint="x.pt", search="greedy").search.beam_size == 1


@pytest.mark.slow
def test_cli_from_another_cwd(tiny_bundle, tmp_path):
    """The console script runs from any directory and writes nothing but its outputs."""
    cmd = [sys.executable, "-m", "seq2seq.cli.evaluate", f"checkpoint={tiny_bundle}", "split=test",
           "search=greedy", "search.max_len_b=5", "output_dir=out", "progress=false"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "BLEU = " in r.stdout and "chrF = " in r.stdout and "12 sentences" in r.stdout
    saved = json.loads((tmp_path / "out" / "best.test.json").read_text())
    assert f"BLEU = {saved['bleu']:.2f}  ({saved['bleu_signature']})" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    bad = subprocess.run([*cmd[:3], "splt=dev"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "Key 'splt' not in 'EvaluateConfig'" in bad.stderr


def test_a_list_of_checkpoints_is_evaluated_as_an_ensemble(ckpt, tiny_corpus):
    second = ckpt.parent / "copy.pt"
    shutil.copyfile(ckpt, second)
    cfg = _cfg(checkpoint=f"[{ckpt},{second}]", split="dev", progress=False,
               **{"search.beam_size": 2, "search.max_len_b": 5})
    assert cfg.checkpoint == [str(ckpt), str(second)]
    rec = evaluate(cfg)
    assert rec["checkpoint"] == [str(ckpt), str(second)]
    assert Path(rec["hypotheses"]) == ckpt.parent / "ensemble2.dev.hyp"
    single = evaluate(_cfg(checkpoint=ckpt, split="dev", progress=False,
                           **{"search.beam_size": 2, "search.max_len_b": 5}))
    assert read_lines(rec["hypotheses"]) == read_lines(single["hypotheses"])  # one model twice
    with pytest.raises(ValueError, match="checkpoint must be a bundle path or a list of them"):
        evaluate(_cfg(checkpoint="[]", split="dev"))


def test_a_glossary_is_met_and_counted(ckpt, tiny_corpus, tmp_path):
    terms = tmp_path / "terms.tsv"
    terms.write_text("Gott\tthe Almighty\nErde\tthe world\n", encoding="utf-8")
    rec = evaluate(_cfg(checkpoint=ckpt, split="dev", progress=False, glossary=terms,
                        **{"search.beam_size": 2, "search.max_len_b": 8}))
    g = rec["glossary"]
    assert g["terms"] == 2 and g["required"] >= 1 and g["met"] == g["required"]
    hyps = read_lines(rec["hypotheses"])
    src = read_lines(tiny_corpus["src_dev"])
    assert all("the Almighty" in h for s, h in zip(src, hyps, strict=True) if "Gott" in s.split())
