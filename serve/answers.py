"""The answers of ``POST /predict`` and ``POST /score`` (pydantic models for the OpenAPI schema;
the request bodies are in :mod:`serve.schemas`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class NBestItem(BaseModel):
    text: str
    score: float | None


class ConstraintItem(BaseModel):
    source: str = Field(description="The glossary's source term found in the text.")
    target: str = Field(description="The term the translation had to contain.")
    met: bool = Field(description="Whether the translation contains it verbatim.")
    reason: str | None = Field(None, description="Why not: 'length' (it did not fit the "
                               "output length limit), 'detokenized differently'.")


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
    constraints: list[ConstraintItem] | None = None
    alternatives: list[str] | None = None


class TranslationItem(SentenceItem):
    """One translated text (a document of one or several sentences)."""

    sentences: list[SentenceItem] | None = Field(
        None, description="Per-sentence details (n-best, alignment) of a text that was split "
                          "into several sentences.")


class TranslateResponse(BaseModel):
    """``POST /predict`` response."""

    translations: list[TranslationItem]


class ScoreItem(BaseModel):
    log_prob: float | None = Field(None, description="Summed log-prob of the target + EOS.")
    score: float | None = Field(None, description="Length-normalised, as search ranks.")
    tokens: list[str] | None = None
    token_scores: list[float | None] | None = None


class ScoreResponse(BaseModel):
    """``POST /score`` response."""

    scores: list[ScoreItem]
