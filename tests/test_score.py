"""Tests for ``seq2seq-score`` (seq2seq.cli.score): files and TSV on stdin, JSON lines with
per-token scores, consistency with translation scores, errors naming the line."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from seq2seq.cli.score import ScoreConfig, score_stream
from seq2seq.config import SearchConfig
from seq2seq.data import read_lines
from seq2seq.inference.translator import Translator


@pytest.fixture(scope="module")
def lines(tiny_corpus) -> list[str]:
    return read_lines(tiny_corpus["src_dev"])[:6]


def _run(cfg: ScoreConfig, stdin: str = "") -> list[str]:
    out = io.StringIO()
    score_stream(cfg, io.StringIO(stdin), out)
    return out.getvalue().splitlines()


def test_files_and_tsv_give_the_translator_scores(tiny_bundle, tiny_corpus, lines, tmp_path):
    refs = read_lines(tiny_corpus["tgt_dev"])[:6]
    (tmp_path / "s.de").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    (tmp_path / "t.en").write_text("".join(x + "\n" for x in refs), encoding="utf-8")
    cfg = ScoreConfig(checkpoint=str(tiny_bundle), src=str(tmp_path / "s.de"),
                      tgt=str(tmp_path / "t.en"), progress=False, chunk_size=4)
    got = _run(cfg)
    tr = Translator.from_checkpoint(tiny_bundle)
    # the same chunks of 4 as the command: float32 sums over other batch shapes differ in the
    # 7th digit, which can cross a 4th-decimal rounding boundary
    chunked = [e for s in range(0, len(lines), 4)
               for e in tr.score(lines[s:s + 4], refs[s:s + 4], SearchConfig())]
    assert got == [f"{e.log_prob:.4f}\t{e.score:.4f}" for e in chunked]
    expect = tr.score(lines, refs, SearchConfig())
    tsv = "".join(f"{s}\t{t}\n" for s, t in zip(lines, refs, strict=True))
    rows = [json.loads(r) for r in _run(ScoreConfig(checkpoint=str(tiny_bundle), progress=False,
                                                    token_scores=True), tsv)]
    assert [r["log_prob"] for r in rows] == pytest.approx([e.log_prob for e in expect], abs=1e-6)
    assert all(r["tokens"][-1] == "</s>" and len(r["tokens"]) == len(r["token_scores"])
               for r in rows)


def test_scoring_greedy_output_gives_its_score(tiny_bundle, lines):
    tr = Translator.from_checkpoint(tiny_bundle)
    cfg = SearchConfig(beam_size=1, length_penalty="average")
    out = tr.translate(lines, cfg)
    tsv = "".join(f"{s}\t{t.text}\n" for s, t in zip(lines, out, strict=True))
    got = _run(ScoreConfig(checkpoint=str(tiny_bundle), progress=False, search=cfg), tsv)
    checked = 0
    for row, t in zip(got, out, strict=True):
        if tr.tgt_tok.encode(t.text) == t.tokens:  # the text re-encodes to the searched pieces
            # two code paths (search step by step, teacher-forced scoring) agree to float32
            # noise, which can cross a rounding boundary of the 4 printed decimals
            log_prob, score = (float(v) for v in row.split("\t"))
            assert log_prob == pytest.approx(t.log_prob, abs=6e-5)
            assert score == pytest.approx(t.score, abs=6e-5)
            checked += 1
    assert checked >= len(lines) // 2


def test_bad_input_names_the_line(tiny_bundle):
    with pytest.raises(ValueError, match="input line 2 has 1 tab-separated fields"):
        _run(ScoreConfig(checkpoint=str(tiny_bundle), progress=False), "a\tb\nc\n")
    with pytest.raises(ValueError, match="pairs 1-2: source 2 has no subword pieces"):
        _run(ScoreConfig(checkpoint=str(tiny_bundle), progress=False), "Amen.\tAmen.\n\u200b\tx\n")
    with pytest.raises(ValueError, match="give both src= and tgt="):
        _run(ScoreConfig(checkpoint=str(tiny_bundle), src="x"))


@pytest.mark.slow
def test_console_script_with_an_ensemble(tiny_bundle, lines, tmp_path):
    cmd = [sys.executable, "-m", "seq2seq.cli.score", f"checkpoint=[{tiny_bundle},{tiny_bundle}]",
           "progress=false"]
    r = subprocess.run(cmd, input=f"{lines[0]}\tIn the beginning.\n", capture_output=True,
                       text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    single = Translator.from_checkpoint(tiny_bundle).score([lines[0]], ["In the beginning."])[0]
    assert r.stdout == f"{single.log_prob:.4f}\t{single.score:.4f}\n"
    bad = subprocess.run([*cmd, "tokenscores=true"], input="", capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert bad.returncode != 0 and "Key 'tokenscores' not in 'ScoreConfig'" in bad.stderr
