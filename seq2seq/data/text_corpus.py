"""Preparing a user's own parallel corpus (``seq2seq-prepare text``) for ``data=custom``.

Input: two line-aligned files (``.gz`` too) or one TSV file (source TAB target). Every pair is

1. **decoded** as UTF-8 (a line that is not is dropped: ``invalid_utf8``);
2. **cleaned**: Unicode NFC; control and zero-width characters (NUL, BOM, U+200B, ...)
   removed; every run of whitespace (tabs, no-break spaces, line separators) one space;
   leading and trailing space stripped;
3. **filtered**, each drop counted by its reason: ``malformed`` (a TSV line without exactly two
   fields), ``empty`` (both sides empty), ``one_sided`` (one side empty), ``too_short`` /
   ``too_long`` (a side outside ``[min_words, max_words]`` whitespace words), ``ratio`` (the
   longer side has more than ``max_ratio`` times the words of the shorter; 0 = off, for scripts
   written without spaces), ``duplicate`` (the same cleaned pair seen before; the first stays),
   ``overlap`` (a training pair whose source is also in dev or test);
4. **split**: dev and test are held out by a seeded shuffle (``dev_size``/``test_size`` pairs,
   or a fraction below 1), or taken from given files (cleaned the same way, but neither
   length-filtered nor deduplicated, since they are what is evaluated); training pairs whose
   source occurs in dev or test are dropped, so no test sentence was seen in training.

Output: ``<out_dir>/{train,dev,test}.{src_lang,tgt_lang}`` (``.gz`` with ``gzip=True``), a
``summary.json`` of what was kept and dropped and why, and the ``seq2seq-train`` command that
trains on them. Training order stays the input order (the trainer shuffles).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seq2seq.data.corpus import write_lines

# control characters other than whitespace, and invisible format characters (zero-width space,
# soft hyphen, bidi marks and embeddings, word joiner, BOM); ZWJ/ZWNJ stay: Persian, Indic
# scripts and emoji sequences need them
_INVISIBLE = re.compile(r"[\u0000-\u0008\u000e-\u001f\u007f-\u0084\u0086-\u009f\u00ad"
                        r"\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_SPACES = re.compile(r"\s+")
DROP_REASONS = ("invalid_utf8", "malformed", "empty", "one_sided", "too_short", "too_long",
                "ratio", "duplicate", "overlap")


def clean_text(text: str) -> str:
    """NFC, invisible characters removed, whitespace runs folded to one space, stripped."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


@dataclass
class PrepareOptions:
    """Options of :func:`prepare_text_corpus` (the flags of ``seq2seq-prepare text``).

    Attributes:
        src, tgt: line-aligned source and target files (or ``tsv``).
        tsv: one file of ``source<TAB>target`` lines instead of ``src``/``tgt``.
        out_dir: where the splits go.
        src_lang, tgt_lang: language codes, the files' extensions (default: taken from the
            input names, ``corpus.fr.gz`` -> ``fr``; else ``src``/``tgt``).
        dev_size, test_size: pairs held out (an int), or a fraction of the pairs below 1
            (default: 5% of the pairs, at most 1000); a given ``dev_src``/``dev_tgt``
            (``test_src``/``test_tgt``) replaces the hold-out.
        min_words, max_words: per-side length bounds in whitespace words (0 = no maximum).
        max_ratio: longest over shortest side in words (0 = off).
        dedup: drop repeated pairs.
        seed: seed of the dev/test hold-out.
        gzip: write ``.gz`` files.
    """

    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None
    out_dir: str = "data/custom"
    src_lang: str | None = None
    tgt_lang: str | None = None
    dev_size: float | None = None
    test_size: float | None = None
    dev_src: str | None = None
    dev_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None
    min_words: int = 1
    max_words: int = 250
    max_ratio: float = 3.0
    dedup: bool = True
    seed: int = 1234
    gzip: bool = False


@dataclass
class PrepareSummary:
    """What :func:`prepare_text_corpus` did.

    Attributes:
        read: input pairs (lines) read.
        kept: pairs per split written.
        dropped: dropped pairs by reason (:data:`DROP_REASONS`).
        files: the written files by key (``src_train``, ``tgt_train``, ``src_dev``, ...).
        langs: ``(src_lang, tgt_lang)``.
    """

    read: int = 0
    kept: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    langs: tuple[str, str] = ("src", "tgt")

    def train_command(self) -> str:
        """The ``seq2seq-train`` command line that trains on these files."""
        s, t = self.langs
        keys = " ".join(f"data.{k}={v}" for k, v in self.files.items())
        return f"seq2seq-train data=custom data.src_lang={s} data.tgt_lang={t} {keys}"

    def report(self) -> str:
        """Human-readable summary: kept per split, dropped per reason."""
        lines = [f"read {self.read} pairs; kept " +
                 ", ".join(f"{k} {v}" for k, v in self.kept.items())]
        drops = [f"  {reason}: {n}" for reason, n in self.dropped.items() if n]
        lines.append("dropped " + (f"{sum(self.dropped.values())}:" if drops else "nothing"))
        return "\n".join(lines + drops)


def _raw_lines(path: str | Path) -> Iterator[bytes]:
    """The lines of a file as bytes, without terminators (gzip by name)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\r\n")


def _decode(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _lang_of(path: str | None, default: str) -> str:
    """``corpus.fr.gz`` -> ``fr``; ``default`` when the name has no short language suffix."""
    if not path:
        return default
    parts = Path(path).name.split(".")
    if parts[-1] == "gz":
        parts = parts[:-1]
    ext = parts[-1] if len(parts) > 1 else ""
    return ext if re.fullmatch(r"[A-Za-z]{2,3}(?:[_-][A-Za-z]{2,4})?", ext) else default


def read_pairs(opts: PrepareOptions, drops: Counter) -> list[tuple[str, str]]:
    """The cleaned pairs of the input (undecodable and malformed lines counted in ``drops``).

    Raises:
        ValueError: neither or both of ``src``/``tgt`` and ``tsv``, or files of different
            lengths.
    """
    if opts.tsv and (opts.src or opts.tgt):
        raise ValueError("give either src and tgt, or tsv, not both")
    pairs: list[tuple[str, str]] = []
    if opts.tsv:
        for raw in _raw_lines(opts.tsv):
            line = _decode(raw)
            if line is None:
                drops["invalid_utf8"] += 1
                continue
            cols = line.split("\t")
            if len(cols) != 2:
                drops["malformed"] += 1
                continue
            pairs.append((clean_text(cols[0]), clean_text(cols[1])))
        return pairs
    if not (opts.src and opts.tgt):
        raise ValueError("give src and tgt (line-aligned files), or tsv")
    return _aligned(opts.src, opts.tgt, drops)


def _aligned(src: str, tgt: str, drops: Counter) -> list[tuple[str, str]]:
    """Cleaned pairs of two line-aligned files."""
    a, b = list(_raw_lines(src)), list(_raw_lines(tgt))
    if len(a) != len(b):
        raise ValueError(f"parallel files differ in length: {src} has {len(a)} lines, "
                         f"{tgt} has {len(b)} lines")
    pairs = []
    for x, y in zip(a, b, strict=True):
        s, t = _decode(x), _decode(y)
        if s is None or t is None:
            drops["invalid_utf8"] += 1
            continue
        pairs.append((clean_text(s), clean_text(t)))
    return pairs


def filter_reason(s: str, t: str, opts: PrepareOptions) -> str | None:
    """Why the cleaned pair ``(s, t)`` is dropped (see :data:`DROP_REASONS`), or None."""
    if not s and not t:
        return "empty"
    if not s or not t:
        return "one_sided"
    ns, nt = len(s.split()), len(t.split())
    if min(ns, nt) < opts.min_words:
        return "too_short"
    if opts.max_words > 0 and max(ns, nt) > opts.max_words:
        return "too_long"
    if opts.max_ratio > 0 and max(ns, nt) > opts.max_ratio * min(ns, nt):
        return "ratio"
    return None


def _held_out_count(size: float | None, n: int) -> int:
    """Pairs to hold out of ``n``: ``size`` pairs, a fraction ``size < 1``, or the default."""
    if size is None:
        return min(1000, max(1, round(0.05 * n)))
    return int(size * n) if 0 < size < 1 else int(size)


def prepare_text_corpus(opts: PrepareOptions) -> PrepareSummary:
    """Clean, filter, split and write a parallel corpus (see the module docstring).

    Returns:
        The :class:`PrepareSummary` (also written to ``<out_dir>/summary.json``).

    Raises:
        ValueError: bad inputs or options (the message says which), or nothing left to train on.
    """
    drops: Counter = Counter()
    pairs = read_pairs(opts, drops)
    summary = PrepareSummary(read=len(pairs) + drops["invalid_utf8"] + drops["malformed"])
    seen: set[tuple[str, str]] = set()
    kept: list[tuple[str, str]] = []
    for s, t in pairs:
        reason = filter_reason(s, t, opts)
        if reason is None and opts.dedup:
            reason = "duplicate" if (s, t) in seen else None
            seen.add((s, t))
        if reason:
            drops[reason] += 1
        else:
            kept.append((s, t))
    splits: dict[str, list[tuple[str, str]]] = {}
    order = list(range(len(kept)))
    random.Random(opts.seed).shuffle(order)
    held: set[int] = set()
    for name, size, given in (("dev", opts.dev_size, (opts.dev_src, opts.dev_tgt)),
                              ("test", opts.test_size, (opts.test_src, opts.test_tgt))):
        if any(given):
            if not all(given):
                raise ValueError(f"give both {name}_src and {name}_tgt")
            splits[name] = [p for p in _aligned(*given, drops) if p[0] and p[1]]
            continue
        n = _held_out_count(size, len(kept))
        if n < 0 or n >= len(kept) - len(held):
            raise ValueError(f"{name}_size={size} leaves no training pairs of {len(kept)}")
        take = [i for i in order if i not in held][:n]
        held.update(take)
        splits[name] = [kept[i] for i in sorted(take)]  # corpus order
    eval_src = {s for name in ("dev", "test") for s, _ in splits[name]}
    train = []
    for i, (s, t) in enumerate(kept):
        if i in held:
            continue
        if s in eval_src:
            drops["overlap"] += 1
            continue
        train.append((s, t))
    if not train:
        raise ValueError("no training pairs left after cleaning and filtering")
    splits = {"train": train, **splits}
    langs = (opts.src_lang or _lang_of(opts.src or opts.tsv, "src"),
             opts.tgt_lang or _lang_of(opts.tgt, "tgt"))
    if langs[0] == langs[1]:
        langs = (f"{langs[0]}_src", f"{langs[1]}_tgt")
    out = Path(opts.out_dir)
    ext = ".gz" if opts.gzip else ""
    for name, items in splits.items():
        for side, lang, k in (("src", langs[0], 0), ("tgt", langs[1], 1)):
            path = out / f"{name}.{lang}{ext}"
            write_lines(path, [p[k] for p in items])
            summary.files[f"{side}_{name}"] = str(path)
    summary.kept = {name: len(items) for name, items in splits.items()}
    summary.dropped = {r: drops[r] for r in DROP_REASONS}
    summary.langs = langs
    (out / "summary.json").write_text(json.dumps(
        {**asdict(summary), "options": asdict(opts), "train_command": summary.train_command()},
        indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


__all__ = ["DROP_REASONS", "PrepareOptions", "PrepareSummary", "clean_text", "filter_reason",
           "prepare_text_corpus", "read_pairs"]
