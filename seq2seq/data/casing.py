"""A seeded fraction of training pairs lowercased or uppercased on both sides.

A cased corpus teaches a model to translate cased text only: typed in lowercase (``gott ist
liebe``, a chat message, a search query) or in capitals (a heading), the same words come out as
nonsense. Recasing some training pairs on both sides teaches the model to translate such input
and to answer in the same case, as Marian's ``--all-caps-every`` and OpenNMT-py's ``uppercase``
transform do for capitals. Case mapping is Python's (Unicode default: ``"Fuß".upper() ==
"FUSS"``). The choice is a pure function of the pairs, the fractions and the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def recase(pairs: Sequence[tuple[str, str]], lower: float, upper: float,
           seed: int) -> tuple[list[tuple[str, str]], int, int]:
    """Lowercase both sides of a seeded ``lower`` fraction of the pairs, uppercase another ``upper``.

    Args:
        pairs: ``(source, target)`` training sentences.
        lower: in ``[0, 1]``, the probability that a pair is lowercased.
        upper: in ``[0, 1 - lower]``, the probability that a pair is uppercased.
        seed: the run's seed: the draw is ``random.Random(f"{seed}:recase")``, one ``random()``
            ``r`` per pair in order; ``r < lower`` lowercases, ``lower <= r < lower + upper``
            uppercases.

    Returns:
        ``(pairs, n_lower, n_upper)``: a new list, same length and order, and how many pairs
        each case mapping changed (a pair already in that case counts as unchanged).
    """
    if lower <= 0.0 and upper <= 0.0:
        return list(pairs), 0, 0
    rng = random.Random(f"{seed}:recase")
    out, n_lower, n_upper = [], 0, 0
    for src, tgt in pairs:
        r = rng.random()
        if r < lower:
            new = (src.lower(), tgt.lower())
            n_lower += new != (src, tgt)
        elif r < lower + upper:
            new = (src.upper(), tgt.upper())
            n_upper += new != (src, tgt)
        else:
            new = (src, tgt)
        out.append(new)
    return out, n_lower, n_upper
