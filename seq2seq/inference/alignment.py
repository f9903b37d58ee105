"""Hard word alignments from attention (Pharaoh format ``i-j``), for ``seq2seq-translate
alignment=true``.

Attention is over subword pieces; alignments are over words. A sentencepiece piece that starts
with ``▁`` (U+2581) begins a new word (a bare ``▁`` too), any other piece continues the current
one, so word ``k`` of the pieces is word ``k`` of the text split at whitespace. Each target piece
is aligned to the source piece it attends to most (the first maximum); the word pairs of all
target pieces, without repeats, sorted by target then source word, are the alignment. The EOS
row is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

WORD_START = "\u2581"


def word_index(pieces: Sequence[str]) -> list[int]:
    """The 0-based word of every piece (see the module docstring)."""
    out, word = [], -1
    for i, p in enumerate(pieces):
        if p.startswith(WORD_START) or i == 0:
            word += 1
        out.append(word)
    return out


def word_alignment(src_pieces: Sequence[str], tgt_pieces: Sequence[str],
                   attention: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """``(source word, target word)`` pairs from attention rows.

    Args:
        src_pieces: source pieces (the columns).
        tgt_pieces: target pieces, optionally followed by ``"</s>"`` (the rows).
        attention: ``(len(tgt_pieces), len(src_pieces))`` weights; an EOS row is ignored.

    Returns:
        Sorted pairs ``(i, j)``: source word ``i`` aligned to target word ``j``.
    """
    pieces = [p for p in tgt_pieces if p != "</s>"]
    if not pieces or not src_pieces:
        return []
    src_word, tgt_word = word_index(src_pieces), word_index(pieces)
    pairs = set()
    for j, row in enumerate(attention[:len(pieces)]):
        best = max(range(len(src_pieces)), key=lambda k: (row[k], -k))  # first maximum
        pairs.add((src_word[best], tgt_word[j]))
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def pharaoh(pairs: Sequence[tuple[int, int]]) -> str:
    """``"0-0 1-2 ..."``."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


__all__ = ["pharaoh", "word_alignment", "word_index"]
