"""Whole documents: split into sentences, translate them together, rejoin with the same layout.

The model was trained on single sentences (verses); given two sentences on one line it tends to
garble or drop one. A document is therefore split into sentences with ``sentencex`` (Wikimedia's
maintained, dependency-free segmenter for ~250 languages; it knows abbreviations such as
"Dr." and ordinal dates such as "3. Mai", which a regular expression on ". " gets wrong), all
sentences of all documents are translated in one batched search, and each document is put back
together exactly: every line break (so paragraph breaks, i.e. blank lines) and the whitespace
around and between sentences are kept; only the sentences themselves are replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sentencex import segment

from seq2seq.config import SearchConfig


@dataclass
class Layout:
    """A document cut into sentences and the text around them.

    Attributes:
        parts: alternating ``[gap, sentence, gap, sentence, ..., gap]``: the gaps (whitespace,
            line breaks) are kept verbatim, the sentences are what gets translated.
    """

    parts: list[str] = field(default_factory=list)

    @property
    def sentences(self) -> list[str]:
        """The sentences, in order."""
        return self.parts[1::2]

    def rejoin(self, translations: Sequence[str]) -> str:
        """The document with its sentences replaced by ``translations`` (same layout)."""
        if len(translations) != len(self.sentences):
            raise ValueError(f"{len(translations)} translations for {len(self.sentences)} "
                             "sentences")
        out = list(self.parts)
        out[1::2] = translations
        return "".join(out)


def split_document(text: str, lang: str) -> Layout:
    """Cut ``text`` into sentences per line (a sentence never spans a line break).

    Args:
        text: the document (any line endings; blank lines are paragraph breaks).
        lang: ISO code of its language (``sentencex`` falls back sensibly for unknown ones).

    Returns:
        The :class:`Layout`; ``"".join(layout.parts) == text``.
    """
    parts = [""]
    for i, line in enumerate(text.split("\n")):
        if i:
            parts[-1] += "\n"
        body = line.strip()
        if not body:
            parts[-1] += line
            continue
        lead = line[: len(line) - len(line.lstrip())]
        parts[-1] += lead
        try:
            segs = list(segment(lang, body))
        except UnicodeEncodeError:  # a lone surrogate: no splitting for this line
            segs = [body]
        if "".join(segs) != body:  # the segmenter changed characters: keep the line whole
            segs = [body]
        for seg in segs:
            sent = seg.strip()
            if not sent:
                parts[-1] += seg
                continue
            start = seg.index(sent)
            parts[-1] += seg[:start]
            parts += [sent, seg[start + len(sent):]]
        parts[-1] += line[len(lead) + len(body):]
    return Layout(parts)


@dataclass
class DocumentTranslation:
    """One translated document.

    Attributes:
        text: the translation, with the source's line breaks and whitespace.
        sentences: the per-sentence :class:`~seq2seq.inference.translator.Translation` s.
        score: mean length-normalised score of the sentences (0.0 without sentences).
        layout: the source's layout (None when the text was not split).
    """

    text: str
    sentences: list = field(default_factory=list)
    score: float = 0.0
    layout: Layout | None = None

    def word_pairs(self) -> list[tuple[int, int]]:
        """``(source word, target word)`` alignment pairs over the whitespace words of the whole
        source document and of :attr:`text` (each sentence's attention alignment, shifted by
        the words before it; needs ``return_alignment`` search)."""
        from seq2seq.inference.alignment import word_alignment

        if self.layout is None:
            return []
        pairs: list[tuple[int, int]] = []
        src_off = tgt_off = 0
        for k, part in enumerate(self.layout.parts):
            if k % 2 == 0:  # a gap: whitespace only
                continue
            tr = self.sentences[k // 2]
            n_src, n_tgt = len(part.split()), len(tr.text.split())
            # the pieces may hold words the text lost (a final mark given back without,
            # source_form.py): they align to nothing
            pairs += [(src_off + i, tgt_off + j) for i, j in
                      word_alignment(tr.src_pieces, tr.tgt_pieces, tr.alignment or [])
                      if i < n_src and j < n_tgt]
            src_off += n_src
            tgt_off += n_tgt
        return pairs

    def alternatives(self, n: int) -> list[str]:
        """Up to ``n`` other translations of the document: for ``k = 2, 3, ...`` every
        sentence's ``k``-th best hypothesis (its last one where it has fewer), rejoined with the
        layout; distinct, and never the translation itself (needs ``n_best > 1`` search)."""
        out: list[str] = []
        depth = max((len(s.n_best) for s in self.sentences), default=0)
        for k in range(1, depth):
            if len(out) >= n or self.layout is None:
                break
            text = self.layout.rejoin([s.n_best[min(k, len(s.n_best) - 1)][0]
                                       for s in self.sentences])
            if text != self.text and text not in out:
                out.append(text)
        return out


def translate_documents(translate: Callable[..., list], texts: Sequence[str], lang: str,
                        cfg: SearchConfig, first_index: int = 0,
                        **kwargs: object) -> list[DocumentTranslation]:
    """Split every text, translate all sentences in one call, rejoin each text.

    Args:
        translate: :meth:`~seq2seq.inference.translator.Translator.translate`.
        texts: the documents.
        lang: their language, for the segmenter.
        cfg: search options (``n_best`` and alignments apply per sentence).
        first_index: number of ``texts[0]`` in warnings (e.g. its line number in a file): a
            sentence is named ``"input <n>, sentence <k>"``.
        **kwargs: passed to ``translate`` (``progress`` counts sentences).

    Returns:
        One :class:`DocumentTranslation` per text, in input order.
    """
    layouts = [split_document(t, lang) for t in texts]
    flat = [s for lay in layouts for s in lay.sentences]
    labels = [f"input {first_index + d}" + (f", sentence {k + 1}" if len(lay.sentences) > 1
                                             else "")
              for d, lay in enumerate(layouts) for k in range(len(lay.sentences))]
    out = translate(flat, cfg, labels=labels, **kwargs) if flat else []
    docs, start = [], 0
    for lay in layouts:
        n = len(lay.sentences)
        sents = out[start:start + n]
        start += n
        score = sum(t.score for t in sents) / n if n else 0.0
        docs.append(DocumentTranslation(lay.rejoin([t.text for t in sents]), sents, score, lay))
    return docs


__all__ = ["DocumentTranslation", "Layout", "split_document", "translate_documents"]
