"""Documents with markup: ``format="html"`` (:mod:`seq2seq.inference.html`) and
``format="markdown"`` (:mod:`seq2seq.inference.markdown`) beside plain ``"text"``.

Each document's segments are translated as documents of plain text (sentence split, one
batched search, alignments on) and the markup is written back around the translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from seq2seq.config import SearchConfig
from seq2seq.inference.documents import DocumentTranslation

FORMATS = ("text", "html", "markdown")


def translate_markup(translate_documents: Callable[..., list[DocumentTranslation]],
                     texts: Sequence[str], fmt: str, cfg: SearchConfig,
                     **kwargs: Any) -> list[DocumentTranslation]:
    """Translate HTML or Markdown documents.

    Args:
        translate_documents: :meth:`~seq2seq.inference.translator.Translator.translate_documents`
            for plain text.
        texts: the documents.
        fmt: ``"html"`` or ``"markdown"``.
        cfg: search options (alignments are turned on: the markup needs them).
        **kwargs: passed to ``translate_documents`` (``glossary``).

    Returns:
        Per document its :class:`~seq2seq.inference.documents.DocumentTranslation`: the
        translated markup as ``text``, every translated sentence in ``sentences``.

    Raises:
        ValueError: an unknown format.
    """
    from seq2seq.inference.html import translate_html
    from seq2seq.inference.markdown import translate_markdown

    writers = {"html": translate_html, "markdown": translate_markdown}
    if fmt not in writers:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    aligned = replace(cfg, return_alignment=True)
    return [_one(text, writers[fmt], translate_documents, aligned, kwargs) for text in texts]


def _one(text: str, writer: Callable, translate_documents: Callable, cfg: SearchConfig,
         kwargs: dict[str, Any]) -> DocumentTranslation:
    sentences: list = []

    def segments(parts: list[str]) -> list[tuple[str, list[tuple[int, int]]]]:
        docs = translate_documents(parts, cfg, **kwargs)
        sentences.extend(s for d in docs for s in d.sentences)
        return [(d.text, d.word_pairs()) for d in docs]

    rendered = writer(text, segments)
    score = sum(s.score for s in sentences) / len(sentences) if sentences else 0.0
    return DocumentTranslation(rendered, sentences, score)


__all__ = ["FORMATS", "translate_markup"]
