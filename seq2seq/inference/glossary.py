"""Glossaries: source terms that must come out as given target terms.

A glossary maps source terms to target terms (``{"Gott": "the Almighty"}``; a TSV file
``source<TAB>target`` per line). When a source term occurs in a sentence -- as whole words,
after the normalisation the source tokenizer applies (sentencepiece's NFKC and whitespace
rules), case-sensitive -- its target term becomes a hard constraint of the search
(:mod:`seq2seq.search.constrained`): the translation must contain its subword pieces, so the
term appears verbatim. Terms are matched longest first and do not overlap; a target term
required twice is required once. What was required and whether it appears in the output is
reported per sentence (:class:`TermCheck`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TermCheck:
    """One required term of one sentence.

    Attributes:
        source: the glossary's source term (as found).
        target: the term the translation must contain.
        met: whether the translation contains it verbatim.
        reason: why it is not met (``"length"``: it does not fit the output length limit),
            else "".
    """

    source: str
    target: str
    met: bool
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "target": self.target, "met": self.met}
        if self.reason:
            out["reason"] = self.reason
        return out


class Glossary:
    """Source terms -> target terms.

    Args:
        entries: ``(source, target)`` pairs or a mapping; a later entry for the same source
            term replaces an earlier one.

    Raises:
        ValueError: an empty term, or one with a tab or a line break.
    """

    def __init__(self, entries: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        table: dict[str, str] = {}
        for src, tgt in pairs:
            for side, term in (("source", src), ("target", tgt)):
                if not isinstance(term, str) or not term.strip():
                    raise ValueError(f"glossary: empty {side} term in {(src, tgt)!r}")
                if any(c in term for c in "\t\r\n"):
                    raise ValueError(f"glossary: the {side} term {term!r} holds a tab or a line "
                                     "break")
            table[src.strip()] = tgt.strip()
        self.entries = table

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Glossary) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        """The entries, sorted: equal glossaries have equal keys (caches)."""
        return tuple(sorted(self.entries.items()))

    def extended(self, more: Mapping[str, str] | Glossary | None) -> Glossary:
        """This glossary with ``more`` added (its entries win for the same source term)."""
        if not more:
            return self
        extra = more.entries if isinstance(more, Glossary) else more
        return Glossary([*self.entries.items(), *extra.items()])

    @classmethod
    def read_tsv(cls, path: str | os.PathLike) -> Glossary:
        """A ``source<TAB>target`` file (UTF-8; blank lines and ``#`` comments skipped).

        Raises:
            ValueError: the file cannot be read, or a line without exactly one tab (the
                message names the file and the line).
        """
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ValueError(f"glossary={path}: cannot read the file ({err.strerror})") from None
        pairs = []
        for n, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 2:
                raise ValueError(f"glossary={path}, line {n}: expected source<TAB>target, got "
                                 f"{len(cols)} tab-separated fields")
            pairs.append((cols[0], cols[1]))
        try:
            return cls(pairs)
        except ValueError as err:
            raise ValueError(f"glossary={path}: {err}") from None

    def matches(self, text: str, normalize: Callable[[str], str] = lambda s: s
                ) -> list[tuple[str, str]]:
        """The ``(source, target)`` entries whose source term occurs in ``text`` as whole words
        (both normalised by ``normalize``), longest source first, not overlapping, each target
        once, in order of appearance in ``text``."""
        if not self.entries:
            return []
        norm = normalize(text)
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, str, str]] = []
        for src in sorted(self.entries, key=lambda s: (-len(s), s)):
            term = normalize(src)
            if not term:
                continue
            for m in re.finditer(rf"(?<!\w){re.escape(term)}(?!\w)", norm):
                if all(m.end() <= a or m.start() >= b for a, b in taken):
                    taken.append(m.span())
                    found.append((m.start(), src, self.entries[src]))
        out, seen = [], set()
        for _, src, tgt in sorted(found):
            if tgt not in seen:
                seen.add(tgt)
                out.append((src, tgt))
        return out

    def required(self, text: str, normalize: Callable[[str], str],
                 encode: Callable[[str], list[int]]) -> list[tuple[str, str, list[int]]]:
        """The terms ``text`` requires: ``(source, target, target ids)`` per :meth:`matches`
        entry (``normalize``: the source tokenizer's), its target term ``encode``-d into the
        target pieces the search must place (an entry that encodes to nothing is left out)."""
        found = self.matches(text, normalize) if text.strip() else []
        return [(s, t, ids) for s, t in found if (ids := encode(t))]


__all__ = ["Glossary", "TermCheck"]
