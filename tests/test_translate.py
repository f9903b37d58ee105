"""Tests for seq2seq.cli.translate (the ``seq2seq-translate`` command) on the real tiny bundle."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace

import matplotlib.image as mpimg
import pytest

from seq2seq.cli.translate import TranslateConfig, search_config, translate_stream
from seq2seq.config import SearchConfig
from seq2seq.data import read_lines
from seq2seq.inference.translator import Translator
from seq2seq.plots import PNG_MAGIC

FAST_SEARCH = SearchConfig(beam_size=2, max_len_a=1.0, max_len_b=5)
FAST = dict(search=FAST_SEARCH, progress=False, split_sentences=False)


@pytest.fixture(scope="module")
def lines(tiny_corpus) -> list[str]:
    return read_lines(tiny_corpus["src_test"])[:5]


def _run(cfg: TranslateConfig, text: str) -> list[str]:
    out = io.StringIO()
    n = translate_stream(cfg, io.StringIO(text), out)
    result = out.getvalue().split("\n")
    assert result[-1] == ""
    assert n == text.count("\n")
    return result[:-1]


def test_one_best_lines_match_translator(tiny_bundle, lines):
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), **FAST)
    got = _run(cfg, "\n".join([lines[0], "", *lines[1:]]) + "\n")
    expected = Translator.from_checkpoint(tiny_bundle).translate(lines, search_config(cfg))
    assert got == [expected[0].text, "", *[t.text for t in expected[1:]]]


def test_lines_without_subword_pieces_give_empty_lines(tiny_bundle, lines):
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), scores=True, **FAST)
    got = _run(cfg, "\u200b\u200b\n" + lines[0] + "\n\u200c\n")
    assert got[0] == got[2] == "\t0.0000" and got[1].split("\t")[0] != ""


def test_chunking_does_not_change_output(tiny_bundle, lines):
    text = "\n".join(lines) + "\n"
    whole = _run(TranslateConfig(checkpoint=str(tiny_bundle), chunk_size=0, **FAST), text)
    small = _run(TranslateConfig(checkpoint=str(tiny_bundle), chunk_size=2, **FAST), text)
    assert whole == small and len(whole) == 5


def test_scores_column(tiny_bundle, lines):
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), scores=True, **FAST)
    got = _run(cfg, lines[0] + "\n")
    best = Translator.from_checkpoint(tiny_bundle).translate(lines[:1], search_config(cfg))[0]
    assert got == [f"{best.text}\t{best.score:.4f}"]


def test_search_config_turns_alignments_on_for_plots_and_word_alignments():
    search = SearchConfig(beam_size=7, alpha=0.6)
    cfg = TranslateConfig(checkpoint="x", search=search, plot_attention="a.png")
    assert search_config(cfg) == SearchConfig(beam_size=7, alpha=0.6, return_alignment=True)
    assert search_config(TranslateConfig(checkpoint="x", search=search, alignment=True)) == \
        SearchConfig(beam_size=7, alpha=0.6, return_alignment=True)
    assert search_config(TranslateConfig(checkpoint="x", search=search)) is search


@pytest.mark.slow
def test_cli_stdin_nbest_and_plot(tiny_bundle, lines, tmp_path):
    """Real subprocess: stdin in, n-best TSV out, one attention PNG per sentence."""
    cmd = [sys.executable, "-m", "seq2seq.cli.translate", f"checkpoint={tiny_bundle}",
           "search.beam_size=3", "search.n_best=2", "search.max_len_b=5", "search.max_len_a=1.0",
           "plot_attention=attn.png"]
    r = subprocess.run(cmd, input="\n".join(lines[:3]) + "\n", cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [int(row[0]) for row in rows] == [0, 0, 1, 1, 2, 2]
    cfg = SearchConfig(beam_size=3, n_best=2, max_len_b=5, max_len_a=1.0)
    expected = Translator.from_checkpoint(tiny_bundle).translate(lines[:3], cfg)
    assert [row[1] for row in rows] == [text for t in expected for text, _ in t.n_best]
    assert [float(row[2]) for row in rows] == pytest.approx(
        [s for t in expected for _, s in t.n_best], abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attn_1.png", "attn_2.png",
                                                          "attn_3.png"]
    for name in ("attn_1.png", "attn_3.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == PNG_MAGIC and mpimg.imread(png).shape[0] > 100
    bad = subprocess.run([*cmd[:4], "beem=3"], input="", cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and "Key 'beem' not in 'TranslateConfig'" in bad.stderr
    # a value out of range: one line naming the key, exit status 2, nothing translated
    bad = subprocess.run([*cmd[:4], "search.beam_size=2", "search.n_best=3"], input="x\n",
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.strip() == ("seq2seq-translate: error: search.n_best must be in "
                                  "[1, beam_size=2], got 3")


def test_a_5000_word_line_is_cut_and_named(tiny_bundle, lines, caplog):
    """One huge line without a sentence end: cut at max_input_length, warned about, fast."""
    import time

    huge = " ".join(["Und Gott sprach"] * 1700)  # 5,100 words
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), max_input_length=50, **FAST)
    start = time.perf_counter()
    with caplog.at_level("WARNING"):
        got = _run(cfg, lines[0] + "\n" + huge + "\n")
    assert time.perf_counter() - start < 60
    assert len(got) == 2 and got[1]
    assert "input 2 has" in caplog.text and "translating its first 50" in caplog.text


def test_lines_are_split_into_sentences_and_rebuilt(tiny_bundle):
    """Two sentences on a line, a blank line, a third line: every sentence is translated and
    the output has the same lines (the lost-second-sentence bug of the demo page)."""
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), **{**FAST, "split_sentences": True})
    got = _run(cfg, "Und Gott sprach. Im Anfang war das Wort.\n\nAmen.\n")
    tr = Translator.from_checkpoint(tiny_bundle)
    one = [t.text for t in tr.translate(["Und Gott sprach.", "Im Anfang war das Wort.", "Amen."],
                                        search_config(cfg))]
    assert got == [f"{one[0]} {one[1]}", "", one[2]]


def test_alignments_in_pharaoh_format_over_words(tiny_bundle, lines):
    from seq2seq.inference.alignment import word_alignment

    cfg = TranslateConfig(checkpoint=str(tiny_bundle), alignment=True, **FAST)
    got = _run(cfg, "\n".join(lines[:3]) + "\n")
    ref = Translator.from_checkpoint(tiny_bundle).translate(lines[:3], search_config(cfg))
    assert len(got) == 3
    for row, src, tr in zip(got, lines[:3], ref, strict=True):
        text, align = row.split("\t")
        assert text == tr.text
        pairs = [tuple(map(int, p.split("-"))) for p in align.split()]
        assert pairs == word_alignment(tr.src_pieces, tr.tgt_pieces, tr.alignment)
        assert all(0 <= i < len(src.split()) and 0 <= j < len(text.split()) for i, j in pairs)
        assert {j for _, j in pairs} == set(range(len(text.split())))  # every target word


def test_json_lines_with_per_token_scores_and_prefixes(tiny_bundle, lines, tmp_path):
    import json

    prefixes = tmp_path / "prefixes.en"
    prefixes.write_text("And God\n\nBehold\n", encoding="utf-8")
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), target_prefix=str(prefixes),
                          **{**FAST, "search": replace(FAST_SEARCH, return_scores=True)})
    rows = [json.loads(r) for r in _run(cfg, "\n".join(lines[:3]) + "\n")]
    assert [r["text"].startswith(p) for r, p in zip(rows, ["And God", "", "Behold"],
                                                    strict=True)] == [True] * 3
    for r in rows:
        assert r["tokens"][-1] == "</s>" and len(r["token_scores"]) == len(r["tokens"])
        assert sum(r["token_scores"]) == pytest.approx(r["log_prob"], abs=1e-4)
    short = tmp_path / "short.en"
    short.write_text("And\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 1 lines, fewer than the input"):
        _run(TranslateConfig(checkpoint=str(tiny_bundle), target_prefix=str(short), **FAST),
             "\n".join(lines[:3]) + "\n")


def test_ensemble_and_pdf_of_every_sentence(tiny_bundle, lines, tmp_path):
    pdf = tmp_path / "attn.pdf"
    cfg = TranslateConfig(checkpoint=[str(tiny_bundle), str(tiny_bundle)],
                          plot_attention=str(pdf), **{**FAST, "split_sentences": True})
    got = _run(cfg, "Und Gott sprach. Im Anfang war das Wort.\nAmen.\n")
    single = _run(TranslateConfig(checkpoint=str(tiny_bundle), **{**FAST, "split_sentences": True}),
                  "Und Gott sprach. Im Anfang war das Wort.\nAmen.\n")
    assert got == single  # an ensemble of one model twice is that model
    import re

    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) == 3  # three sentences, three pages


def test_glossary_and_markup_formats(tiny_bundle, lines, tmp_path, capsys):
    terms = tmp_path / "terms.tsv"
    terms.write_text("Gott\tthe Almighty\n", encoding="utf-8")
    cfg = TranslateConfig(checkpoint=str(tiny_bundle), glossary=str(terms), **FAST)
    got = _run(cfg, "Und Gott sprach.\nAmen.\n")
    plain = _run(TranslateConfig(checkpoint=str(tiny_bundle), **FAST), "Und Gott sprach.\nAmen.\n")
    assert "the Almighty" in got[0] and got[1] == plain[1]
    out = io.StringIO()
    n = translate_stream(TranslateConfig(checkpoint=str(tiny_bundle), format="html", **FAST),
                         io.StringIO("<p>Und <b>Gott</b> sprach.</p>\n<pre>Gott</pre>\n"), out)
    html = out.getvalue()
    assert n == 1 and html.count("<b>") == 1 and html.endswith("<pre>Gott</pre>\n")
    out = io.StringIO()
    translate_stream(TranslateConfig(checkpoint=str(tiny_bundle), format="markdown", **FAST),
                     io.StringIO("# Und *Gott* sprach\n\n`code`\n"), out)
    assert out.getvalue().startswith("# ") and "`code`" in out.getvalue()
