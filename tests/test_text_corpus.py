"""Tests for seq2seq.data.text_corpus and ``seq2seq-prepare text``: a small messy corpus in real
files (plain, gzip, TSV) is cleaned, filtered, deduplicated and split, every drop counted."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.data import read_lines
from seq2seq.data.text_corpus import (
    PrepareOptions,
    clean_text,
    filter_reason,
    prepare_text_corpus,
)

# (source, target) lines of a messy corpus; the comment says what must happen to each
MESSY = [
    ("\ufeffHallo  Welt.", "Hello\tworld."),            # BOM, tab, double space: cleaned, kept
    ("Cafe\u0301 ist gut.", "Coffee is good."),           # decomposed é: NFC
    ("", ""),                                             # empty
    ("Nur links.", "   "),                                # one-sided
    ("Doppelt hier.", "Twice here."),                     # kept
    ("Doppelt  hier.", "Twice here."),                    # the same after cleaning: duplicate
    ("Ein sehr langer Satz mit vielen Wörtern.", "Short."),  # 7 vs 1 words: ratio
    ("Null\u200bBreite\x00.", "Zero width."),             # zero-width space and NUL removed
    ("Eins.", "One."), ("Zwei.", "Two."), ("Drei.", "Three."), ("Vier.", "Four."),
    ("Fünf.", "Five."), ("Sechs.", "Six."), ("Sieben.", "Seven."), ("Acht.", "Eight."),
]


def write_messy(tmp: Path, gz: bool = False) -> tuple[Path, Path]:
    """The corpus as two line-aligned files, plus one undecodable source line at the end."""
    ext = ".gz" if gz else ""
    src, tgt = tmp / f"corpus.de{ext}", tmp / f"corpus.en{ext}"
    s = "\n".join(p[0] for p in MESSY).encode() + b"\nkaputt \xff\n"
    t = "\n".join(p[1] for p in MESSY).encode() + b"\nbroken\n"
    for path, data in ((src, s), (tgt, t)):
        path.write_bytes(gzip.compress(data) if gz else data)
    return src, tgt


def test_clean_text_normalises_and_keeps_joiners() -> None:
    assert clean_text("\ufeff a\u00a0 b\u2028c\u200b\u00ad ") == "a b c"
    assert clean_text("Cafe\u0301") == "Caf\u00e9"
    # ZWJ/ZWNJ carry meaning (emoji sequences, Persian): kept
    assert clean_text("\U0001f469\u200d\U0001f52c") == "\U0001f469\u200d\U0001f52c"
    assert clean_text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645").count("\u200c") == 1


@pytest.mark.parametrize(("s", "t", "reason"), [
    ("", "", "empty"), ("a", "", "one_sided"), ("", "b", "one_sided"),
    ("a b c d", "x", "ratio"), ("a b c", "x", None),
    ("w " * 11, "v " * 11, "too_long"), ("a", "b", None),
])
def test_filter_reasons(s: str, t: str, reason: str | None) -> None:
    assert filter_reason(s.strip(), t.strip(), PrepareOptions(max_words=10)) == reason


@pytest.mark.parametrize("gz", [False, True])
def test_messy_corpus_is_cleaned_split_and_every_drop_counted(tmp_path: Path, gz: bool) -> None:
    src, tgt = write_messy(tmp_path, gz)
    out = tmp_path / "out"
    summary = prepare_text_corpus(PrepareOptions(src=str(src), tgt=str(tgt), out_dir=str(out),
                                                 dev_size=2, test_size=2, seed=3))
    assert summary.read == 17 and summary.langs == ("de", "en")
    assert summary.dropped == {"invalid_utf8": 1, "malformed": 0, "empty": 1, "one_sided": 1,
                               "too_short": 0, "too_long": 0, "ratio": 1, "duplicate": 1,
                               "overlap": 0}
    assert summary.kept == {"train": 8, "dev": 2, "test": 2}
    splits = {n: list(zip(read_lines(out / f"{n}.de"), read_lines(out / f"{n}.en"), strict=True))
              for n in ("train", "dev", "test")}
    every = [p for n in splits for p in splits[n]]
    assert len(every) == len(set(every)) == 12  # no pair twice, none lost
    assert {"Hallo Welt.", "Caf\u00e9 ist gut.", "NullBreite.", "Doppelt hier."} <= {
        s for s, _ in every}
    assert ("Hallo Welt.", "Hello world.") in every
    train = splits["train"]
    in_order = list(dict.fromkeys(clean_text(s) for s, _ in MESSY))
    assert [s for s, _ in train] == [s for s in in_order if s in dict(train)]  # input order
    # the same seed gives the same split
    again = prepare_text_corpus(PrepareOptions(src=str(src), tgt=str(tgt),
                                               out_dir=str(tmp_path / "again"), dev_size=2,
                                               test_size=2, seed=3))
    assert read_lines(tmp_path / "again/test.de") == read_lines(out / "test.de")
    assert again.kept == summary.kept
    report = json.loads((out / "summary.json").read_text())
    assert report["dropped"]["duplicate"] == 1 and report["train_command"].startswith(
        "seq2seq-train data=custom data.src_lang=de data.tgt_lang=en data.src_train=")


def test_given_dev_test_files_and_overlap_with_training(tmp_path: Path) -> None:
    src, tgt = write_messy(tmp_path)
    (tmp_path / "dev.de").write_text("Eins.\nNeu.\n")
    (tmp_path / "dev.en").write_text("One.\nNew.\n")
    (tmp_path / "test.de").write_text("Zwei.\n\n")
    (tmp_path / "test.en").write_text("Two (other).\nx\n")
    s = prepare_text_corpus(PrepareOptions(
        src=str(src), tgt=str(tgt), out_dir=str(tmp_path / "o"), src_lang="de", tgt_lang="en",
        dev_src=str(tmp_path / "dev.de"), dev_tgt=str(tmp_path / "dev.en"),
        test_src=str(tmp_path / "test.de"), test_tgt=str(tmp_path / "test.en")))
    assert s.kept == {"train": 10, "dev": 2, "test": 1}  # the one-sided test line is dropped
    assert s.dropped["overlap"] == 2  # "Eins." (dev) and "Zwei." (test) leave training
    train_src = read_lines(tmp_path / "o/train.de")
    assert "Eins." not in train_src and "Zwei." not in train_src and "Drei." in train_src


def test_tsv_input_counts_malformed_lines(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("Eins.\tOne.\nkein tab\nZwei.\tTwo.\tthird\nDrei.\tThree.\nVier.\tFour.\n"
                   "Fünf.\tFive.\n")
    s = prepare_text_corpus(PrepareOptions(tsv=str(tsv), out_dir=str(tmp_path / "o"),
                                           src_lang="de", tgt_lang="en", dev_size=1,
                                           test_size=1))
    assert s.read == 6 and s.dropped["malformed"] == 2
    assert s.kept == {"train": 2, "dev": 1, "test": 1}


def test_bad_options_are_errors_naming_the_problem(tmp_path: Path) -> None:
    src, tgt = write_messy(tmp_path)
    (tmp_path / "short.en").write_text("One.\n")
    with pytest.raises(ValueError, match="differ in length: .*corpus.de has 17 lines"):
        prepare_text_corpus(PrepareOptions(src=str(src), tgt=str(tmp_path / "short.en")))
    with pytest.raises(ValueError, match="give src and tgt"):
        prepare_text_corpus(PrepareOptions(src=str(src)))
    with pytest.raises(ValueError, match="dev_size=20 leaves no training pairs of 12"):
        prepare_text_corpus(PrepareOptions(src=str(src), tgt=str(tgt), dev_size=20,
                                           out_dir=str(tmp_path / "o")))


def test_cli_takes_key_value_options_and_prints_the_train_command(tmp_path: Path) -> None:
    src, tgt = write_messy(tmp_path, gz=True)
    out = tmp_path / "custom"
    res = subprocess.run([sys.executable, "-m", "seq2seq.cli.prepare", "text", f"src={src}",
                          f"tgt={tgt}", f"out_dir={out}", "dev_size=0.2", "--test_size", "1",
                          "gzip=true"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "kept train 9, dev 2, test 1" in res.stdout and "duplicate: 1" in res.stdout
    assert f"data.src_train={out}/train.de.gz" in res.stdout
    assert len(read_lines(out / "dev.en.gz")) == 2
    bad = subprocess.run([sys.executable, "-m", "seq2seq.cli.prepare", "text", f"src={src}"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error: give src and tgt" in bad.stderr
