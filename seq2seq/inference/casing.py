"""Sources typed in one case: truecased before translation, capitals given back in capitals.

A model trained on cased text translates cased text. Typed all in lowercase (``gott ist liebe``,
a chat message, a search query) or all in capitals (a heading, a warning sign), the same words
are other subwords: the model answers with nonsense, or loops letter by letter in capitals
(benchmarks/README.md, "Input in one case"). So such a source is **truecased** first: each word
takes its most frequent form in the training source text (:class:`TrueCaser`, learnt by the
trainer and kept in the bundle, as Moses' truecaser does it: sentence-initial words are not
counted), and its first letter is capitalised. A source in capitals gets its translation back
in capitals, as the user wrote it; a lowercase one gets the model's cased translation.
:class:`~seq2seq.inference.translator.Translator` applies this with ``search.recase_input`` (on
by default). A bundle without a table only lowercases capitals.

A single word in capitals (``NATO``, ``USA``) is left alone: too often an acronym.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

WORD = re.compile(r"\w+")
MIN_CAPS_WORDS = 2  # words of two or more cased letters that make a source "in capitals"


class TrueCaser:
    """Lowercase word -> its most frequent form in a training text (only the words whose form
    is not the lowercase one are kept).

    Args:
        table: ``{lowercase word: form}``, e.g. ``{"gott": "Gott"}``.
    """

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)

    @classmethod
    def learn(cls, sentences: Iterable[str]) -> TrueCaser:
        """Count each word's forms over ``sentences``, skipping a sentence's first word (its
        capital says nothing) unless it is the only one; ties go to the form seen first."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for sentence in sentences:
            words = WORD.findall(sentence)
            for w in words[1:] if len(words) > 1 else words:
                counts[w.lower()][w] += 1
        return cls({low: form for low, c in counts.items()
                    if (form := c.most_common(1)[0][0]) != low})

    def __call__(self, text: str) -> str:
        """``text`` with every word in its learnt form (lowercase when it has none) and the
        first letter capitalised."""
        out = WORD.sub(lambda m: self.table.get(low := m.group().lower(), low), text)
        first = next((i for i, ch in enumerate(out) if ch.isalpha()), None)
        return out if first is None else out[:first] + out[first].upper() + out[first + 1:]

    def __len__(self) -> int:
        return len(self.table)


def all_caps(text: str) -> bool:
    """Whether ``text`` is written in capitals: no lowercase letter, and at least
    :data:`MIN_CAPS_WORDS` words with two or more cased letters (digits, punctuation and
    uncased scripts do not count).

    >>> all_caps("GOTT IST LIEBE."), all_caps("Gott ist Liebe."), all_caps("DIE NATO")
    (True, False, True)
    >>> all_caps("NATO"), all_caps("A B C"), all_caps("3 + 4 = 7")
    (False, False, False)
    """
    if any(ch.islower() for ch in text):
        return False
    return sum(sum(ch.isupper() for ch in word) >= 2 for word in text.split()) >= MIN_CAPS_WORDS


def all_lower(text: str) -> bool:
    """Whether ``text`` has a lowercase letter and no capital.

    >>> all_lower("gott ist liebe"), all_lower("Gott ist Liebe"), all_lower("3 + 4")
    (True, False, False)
    """
    return any(ch.islower() for ch in text) and not any(ch.isupper() for ch in text)


def recase_source(text: str, truecaser: TrueCaser | None) -> tuple[str, bool]:
    """What to translate for ``text``, and whether to give the translation back in capitals.

    Capitals (:func:`all_caps`): truecased (lowercased without a ``truecaser``), answered in
    capitals. Lowercase only (:func:`all_lower`) with a ``truecaser``: truecased. Anything
    else: as it is.

    >>> tc = TrueCaser({"gott": "Gott", "liebe": "Liebe"})
    >>> recase_source("GOTT IST LIEBE.", tc), recase_source("gott ist liebe", tc)
    (('Gott ist Liebe.', True), ('Gott ist Liebe', False))
    >>> recase_source("GOTT IST LIEBE.", None), recase_source("gott ist liebe", None)
    (('gott ist liebe.', True), ('gott ist liebe', False))
    """
    if all_caps(text):
        return (truecaser(text) if truecaser is not None else text.lower()), True
    if truecaser is not None and all_lower(text):
        return truecaser(text), False
    return text, False
