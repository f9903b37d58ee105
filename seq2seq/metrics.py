"""Corpus-level sacreBLEU BLEU and chrF with their reproducibility signatures.

Hypotheses and references are detokenized text (what ``Tokenizer.decode`` returns); sacreBLEU
applies its own tokenization (``13a`` by default), so scores are comparable across toolkits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF


def corpus_scores(
    hyps: Sequence[str],
    refs: Sequence[str],
    tokenize: str = "13a",
    lowercase: bool = False,
) -> dict[str, float | str]:
    """Corpus BLEU and chrF of ``hyps`` against one reference per sentence.

    Args:
        hyps: system outputs, one per sentence.
        refs: references, aligned with ``hyps``.
        tokenize: sacreBLEU BLEU tokenizer (``"13a"``, ``"intl"``, ``"none"``, ...).
        lowercase: case-insensitive BLEU.

    Returns:
        ``{"bleu": float, "chrf": float, "bleu_signature": str, "chrf_signature": str}``,
        scores on sacreBLEU's 0-100 scale.

    Raises:
        ValueError: if ``hyps`` and ``refs`` differ in length or are empty.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("cannot score an empty corpus")
    bleu = BLEU(tokenize=tokenize, lowercase=lowercase)
    chrf = CHRF()
    hyps, refs = [str(h) for h in hyps], [str(r) for r in refs]
    return {
        "bleu": float(bleu.corpus_score(hyps, [refs]).score),
        "chrf": float(chrf.corpus_score(hyps, [refs]).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
