"""Translation: one translated (or scored) sentence, as the Translator returns it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from seq2seq.inference.glossary import TermCheck

EOS_PIECE = "</s>"  # the last of Translation.tgt_pieces: the row of the EOS step


@dataclass
class Translation:
    """One translated (or scored) sentence.

    Attributes:
        text: best hypothesis, detokenized (for :meth:`Translator.score`: the given target).
        score: its length-normalised score (the ranking score of search).
        tokens: its target piece ids (no BOS/EOS).
        n_best: ``(text, score)`` for the ``cfg.n_best`` best hypotheses, best first.
        alignment: attention rows of the best hypothesis as nested lists of shape
            ``(len(tokens) + 1, len(src_pieces))`` (the last row is the EOS step), or None when
            alignments were not requested.
        src_pieces: source subword pieces (columns of ``alignment``).
        tgt_pieces: target pieces of the best hypothesis followed by ``"</s>"`` (rows).
        truncated_from: the source's length in subwords when it was longer than the
            translator's ``max_input_length`` and only its first pieces were translated; else
            None.
        log_prob: the raw summed log-prob of the best hypothesis (EOS included).
        token_scores: log-prob of each target piece and of the EOS (``tgt_pieces`` order),
            with ``return_scores`` (always for :meth:`Translator.score`), else None.
        constraints: with a glossary, the terms this sentence required and whether each is in
            ``text`` (:class:`~seq2seq.inference.glossary.TermCheck`); None without a glossary
            term in the sentence.
    """

    text: str
    score: float
    tokens: list[int]
    n_best: list[tuple[str, float]] = field(default_factory=list)
    alignment: list[list[float]] | None = None
    src_pieces: list[str] = field(default_factory=list)
    tgt_pieces: list[str] = field(default_factory=list)
    truncated_from: int | None = None
    log_prob: float = 0.0
    token_scores: list[float] | None = None
    constraints: list[TermCheck] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (tuples become lists)."""
        d = asdict(self)
        d["n_best"] = [[t, s] for t, s in self.n_best]
        if self.constraints is not None:
            d["constraints"] = [c.to_dict() for c in self.constraints]
        return d


__all__ = ["EOS_PIECE", "Translation"]
