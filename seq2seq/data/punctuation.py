"""Final punctuation dropped from a seeded fraction of training pairs.

A corpus whose sentences all end in a punctuation mark (the Bible verses do) teaches the decoder
to emit end-of-sentence only after one, so an input without it ("Das ist gut") runs on until the
length limit. Dropping the final marks on both sides of some training pairs teaches it to end
there too. A pair qualifies when both sides end in a sentence mark (:data:`SENTENCE_MARKS`, after
trailing whitespace); the whole final run of marks goes ("Wirklich?!" -> "Wirklich"), closing
quotes and brackets stop the run, so ``He said, "Go."`` does not qualify and no quote is left
unbalanced. The choice is a pure function of the pairs, the fraction and the seed.

At translation time a source that ends in a letter or digit (:func:`ends_open`) is translated
with the training source's usual final mark (:func:`final_mark`) appended, and its translation
loses its final marks (:mod:`seq2seq.inference.source_form`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence

# Marks that end a sentence or clause: Latin, CJK full-width, Arabic, Devanagari, Greek question
# mark, ellipsis.
SENTENCE_MARKS = frozenset(".!?;:,…。！？；：，、؟؛،।;")


def strip_final_punct(text: str) -> str:
    """``text`` without trailing whitespace and its final run of :data:`SENTENCE_MARKS` (and the
    whitespace before that run); ``text`` unchanged when it does not end in one."""
    end = len(text.rstrip())
    start = end
    while start > 0 and text[start - 1] in SENTENCE_MARKS:
        start -= 1
    if start == end:
        return text
    return text[:start].rstrip()


def ends_open(text: str) -> bool:
    """Whether ``text`` ends (after trailing whitespace) in a letter or digit: no final mark,
    closing quote, bracket or symbol.

    >>> ends_open("Gott ist Liebe"), ends_open("Kapitel 3 "), ends_open("Gott ist Liebe.")
    (True, True, False)
    >>> ends_open('Er sprach: "Geh"'), ends_open("Ja :-)"), ends_open("")
    (False, False, False)
    """
    body = text.rstrip()
    return bool(body) and body[-1].isalnum()


def final_mark(sentences: Iterable[str], min_share: float = 0.5) -> str | None:
    """The training source's usual final mark: the most frequent last character among the
    ``sentences`` that end in one of :data:`SENTENCE_MARKS` (ties: the one seen first).

    Args:
        sentences: the training source sentences.
        min_share: the fraction of the (non-blank) sentences that must end in a mark.

    Returns:
        The mark, or None when fewer than ``min_share`` of the sentences end in one (a corpus
        without final marks: appending one would show the model something it never saw).

    >>> final_mark(["Ja.", "Nein!", "Gut.", "Wer?"]), final_mark(["Ja", "Nein", "Gut."])
    ('.', None)
    """
    ends: Counter[str] = Counter()
    total = 0
    for sentence in sentences:
        body = sentence.rstrip()
        if body:
            total += 1
            if body[-1] in SENTENCE_MARKS:
                ends[body[-1]] += 1
    if not ends or sum(ends.values()) < min_share * total:
        return None
    return ends.most_common(1)[0][0]


def strip_pair(src: str, tgt: str) -> tuple[str, str] | None:
    """Both sides through :func:`strip_final_punct` when both end in a sentence mark (a side
    may come out empty: a line of marks only); None otherwise."""
    s, t = strip_final_punct(src), strip_final_punct(tgt)
    return (s, t) if s != src and t != tgt else None


def drop_final_punct(pairs: Sequence[tuple[str, str]], fraction: float,
                     seed: int) -> tuple[list[tuple[str, str]], int]:
    """Drop the final marks of both sides in a seeded ``fraction`` of the qualifying pairs.

    Args:
        pairs: ``(source, target)`` training sentences.
        fraction: in ``[0, 1]``; each qualifying pair is changed with this probability.
        seed: the run's seed (the draw is ``random.Random(f"{seed}:drop_final_punct")``, one
            draw per qualifying pair in order).

    Returns:
        ``(pairs, n_changed)``: a new list, same length and order. A pair whose side would become
        empty (a line of marks only) is left as it is.
    """
    if fraction <= 0.0:
        return list(pairs), 0
    rng = random.Random(f"{seed}:drop_final_punct")
    out, changed = [], 0
    for pair in pairs:
        stripped = strip_pair(*pair)
        if stripped is not None and rng.random() < fraction and all(stripped):
            out.append(stripped)
            changed += 1
        else:
            out.append(pair)
    return out, changed
