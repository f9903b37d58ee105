"""OpenAPI documentation models of the endpoints' bodies and answers (pydantic).

They document; they do not validate: :mod:`serve.validation` checks every request and names the
field in its error.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class TranslateBody(BaseModel):
    """``POST /predict`` body (OpenAPI documentation; validation is :func:`validate_payload`)."""

    text: str | None = Field(None, description="One source sentence (use this or `texts`).")
    texts: list[str] | None = Field(None, description="Several source sentences.")
    beam_size: int | None = Field(None, ge=1, description="Beam width (1 = greedy).")
    n_best: int | None = Field(None, ge=1, description="Hypotheses returned per text (<= beam).")
    max_length: int | None = Field(None, ge=1, description="Maximum output subwords.")
    return_alignment: bool = Field(False, description="Return attention rows and pieces.")
    split_sentences: bool = Field(True, description="Split each text into sentences, translate "
                                  "them and rejoin them with the text's line breaks (false: "
                                  "each text is one sentence).")
    return_scores: bool = Field(False, description="Return log_prob, the target pieces and "
                                "the log-prob of each.")
    target_prefix: str | list[str] | None = Field(
        None, description="Prefix the translation must start with (a list with `texts`); "
                          "each text is then one segment.")


class NBestItem(BaseModel):
    text: str
    score: float | None


class SentenceItem(BaseModel):
    text: str
    score: float | None = None
    n_best: list[NBestItem] | None = None
    alignment: list[list[float]] | None = None
    src_pieces: list[str] | None = None
    tgt_pieces: list[str] | None = None
    truncated_from: int | None = None
    log_prob: float | None = None
    tokens: list[str] | None = None
    token_scores: list[float | None] | None = None


class TranslationItem(BaseModel):
    text: str
    score: float | None = Field(None, description="Length-normalised log-probability.")
    n_best: list[NBestItem] | None = None
    alignment: list[list[float]] | None = Field(
        None, description="(target pieces + EOS) x source rows of attention weights."
    )
    src_pieces: list[str] | None = None
    tgt_pieces: list[str] | None = None
    truncated_from: int | None = Field(
        None, description="Source subwords when over the model's max_input_length (only its "
                          "start was translated).")
    log_prob: float | None = Field(None, description="Summed log-prob (return_scores).")
    tokens: list[str] | None = Field(None, description="Target pieces + EOS (return_scores).")
    token_scores: list[float | None] | None = Field(
        None, description="Log-prob of every target piece (return_scores).")
    sentences: list[SentenceItem] | None = Field(
        None, description="Per-sentence details (n-best, alignment) of a text that was split "
                          "into several sentences.")


class TranslateResponse(BaseModel):
    """``POST /predict`` response."""

    translations: list[TranslationItem]


class ScoreBody(BaseModel):
    """``POST /score`` body (validation is :func:`serve.validation.validate_score_payload`)."""

    source: str | None = Field(None, description="One source sentence (or `sources`).")
    target: str | None = Field(None, description="Its translation to score.")
    sources: list[str] | None = Field(None, description="Several source sentences.")
    targets: list[str] | None = Field(None, description="Their translations (same length).")
    token_scores: bool = Field(False, description="Return the log-prob of every target piece.")


class ScoreItem(BaseModel):
    log_prob: float | None = Field(None, description="Summed log-prob of the target + EOS.")
    score: float | None = Field(None, description="Length-normalised, as search ranks.")
    tokens: list[str] | None = None
    token_scores: list[float | None] | None = None


class ScoreResponse(BaseModel):
    """``POST /score`` response."""

    scores: list[ScoreItem]
