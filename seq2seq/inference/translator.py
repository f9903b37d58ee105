"""Translator: checkpoint bundle(s) (or a live model) turned into ``texts -> translations``.

Used by ``seq2seq-evaluate``, ``seq2seq-translate``, ``seq2seq-score``, the HTTP server and dev
BLEU during training::

    tr = Translator.from_checkpoint("runs/x/checkpoints/best.pt")     # or a list: an ensemble
    out = tr.translate(["Im Anfang schuf Gott Himmel und Erde."], SearchConfig(beam_size=5))
    out[0].text, out[0].score, out[0].alignment   # alignment only with return_alignment=True
    tr.translate(texts, cfg, prefixes=["In the"])  # outputs that start with a given prefix
    tr.translate(texts, cfg, glossary={"Gott": "the Almighty"})  # terms that must come out
    tr.score(["Amen."], ["Amen."])                 # the model's log-prob of given translations

Inputs are sorted by source length and searched in batches of ``cfg.batch_size`` sentences, or of
at most ``cfg.batch_tokens`` padded source subwords (less padding, fewer wasted steps); results
come back in input order. Inputs with no subword pieces (empty, whitespace-only, or only
characters the source model drops, such as zero-width spaces) give an empty translation with
score 0 without running the model. A source typed all in capitals or all in lowercase is
truecased first, and capitals get their translation in capitals (``cfg.recase_input``); a source
without a final mark is translated with one, and its translation given back without
(``cfg.punctuate_input``; both in :mod:`seq2seq.inference.source_form`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
from seq2seq.config import INFERENCE_PRECISION, Precision, SearchConfig, plain
from seq2seq.data import pad_sequences
from seq2seq.inference.casing import TrueCaser
from seq2seq.inference.description import describe, describe_bundle, ensemble_meta
from seq2seq.inference.documents import DocumentTranslation, translate_documents
from seq2seq.inference.ensemble import Ensemble, check_same_vocabulary
from seq2seq.inference.glossary import Glossary, TermCheck
from seq2seq.inference.markup import translate_markup
from seq2seq.inference.source_form import SourceForm, source_form
from seq2seq.inference.translation import EOS_PIECE, Translation
from seq2seq.model import build_model
from seq2seq.runtime import autocast, precision_reason, resolve_precision
from seq2seq.search import forced_decode, search
from seq2seq.tokenizer import Tokenizer

DEFAULT_MAX_INPUT_LENGTH = 256  # subwords, when the bundle does not say its training maximum

log = logging.getLogger(__name__)
Progress = Callable[[int], None] | None


class Translator:
    """Tokenizers + model + search.

    Built from bundles (:meth:`from_checkpoint`, :meth:`from_bundle`) for evaluation,
    translation, scoring and serving, or around a live model during training (dev BLEU), so
    every translation goes through the same code.

    Args:
        model: the :class:`~seq2seq.model.Seq2Seq` or an
            :class:`~seq2seq.inference.ensemble.Ensemble` (any module with the decoder protocol
            and a ``cfg``); its train/eval mode is left to the search.
        src_tok: source tokenizer.
        tgt_tok: target tokenizer.
        device: where the model runs (default: where its parameters are).
        amp_dtype: autocast dtype for the search (None = fp32).
        meta: the bundle's ``meta`` (languages, step, dev BLEU, ...), for :meth:`info`.
        path: where the bundle came from, for :meth:`info`.
        max_input_length: sources longer than this many subwords are cut to it, with a warning
            (as CTranslate2's ``max_input_length``): a model never trained on such lengths
            produces nothing useful from them, slowly. Default: twice the training maximum
            (``meta.config.data.max_src_len``), else :data:`DEFAULT_MAX_INPUT_LENGTH`; 0 = none.
        truecaser: the training source's word forms (the bundle's ``truecase``), for sources
            typed in one case (``cfg.recase_input``); None = capitals are only lowercased.
        final_mark: the training source's usual final mark (the bundle's ``final_mark``), for
            sources without one (``cfg.punctuate_input``); None = such sources go as typed.
    """

    def __init__(self, model: torch.nn.Module, src_tok: Tokenizer, tgt_tok: Tokenizer, *,
                 device: str | torch.device | None = None, amp_dtype: torch.dtype | None = None,
                 meta: dict[str, Any] | None = None, path: str | None = None,
                 max_input_length: int | None = None,
                 truecaser: TrueCaser | None = None, final_mark: str | None = None) -> None:
        self.model = model
        self.truecaser, self.final_mark = truecaser, final_mark
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        self.device = torch.device(device) if device is not None else next(
            model.parameters()).device
        self.amp_dtype = amp_dtype
        self.meta = dict(meta or {})
        self.path = path
        self.precision = ("fp32" if amp_dtype is None else
                          f"autocast {str(amp_dtype).removeprefix('torch.')}")
        if max_input_length is None:
            trained = ((self.meta.get("config") or {}).get("data") or {}).get("max_src_len")
            max_input_length = 2 * int(trained) if trained else DEFAULT_MAX_INPUT_LENGTH
        self.max_input_length = int(max_input_length)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bundle(cls, bundle: dict[str, Any] | Sequence[dict[str, Any]],
                    device: str | torch.device = "cpu",
                    path: str | os.PathLike | Sequence[str] | None = None,
                    precision: Precision | str = INFERENCE_PRECISION) -> Translator:
        """Build the bundle's model (eval mode) and tokenizers on ``device``; several bundles
        make an :class:`~seq2seq.inference.ensemble.Ensemble`.

        Args:
            bundle: a loaded bundle, or a list of them (same sentencepiece models).
            device: where the model runs.
            path: where the bundle(s) came from (for :meth:`info` and messages).
            precision: ``"fp32"`` (the default of every entry point,
                :data:`~seq2seq.config.INFERENCE_PRECISION`), ``"bf16"``, ``"fp16"`` (CUDA) or
                ``"auto"`` (bf16 where the device has native bf16 matrix support, see
                :func:`seq2seq.runtime.native_bf16`).
                The weights are converted once, here; the decoder returns float32 log-probs, so
                search bookkeeping (scores, top-k) stays in float32.

        Raises:
            ValueError: ensemble members with different sentencepiece models.
        """
        bundles = [bundle] if isinstance(bundle, dict) else list(bundle)
        paths = [path] if path is None or isinstance(path, (str, os.PathLike)) else list(path)
        paths = [str(p) if p is not None else f"bundle {i}" for i, p in enumerate(paths)]
        device = torch.device(device)
        dtype = resolve_precision(precision, device, key="precision")
        toks = [tokenizers_from_bundle(b) for b in bundles]
        check_same_vocabulary(toks, paths)
        models = [build_model(b, device) for b in bundles]
        if dtype is not None:
            for m in models:
                m.to(dtype)
        metas = [dict(b.get("meta") or {}) for b in bundles]
        if len(models) == 1:
            model, meta, where = models[0], metas[0], path if path is None else paths[0]
        else:
            model, meta, where = Ensemble(models).eval(), ensemble_meta(metas, paths), paths[0]
        table = (bundles[0].get("truecase") or {}).get("src")
        tr = cls(model, *toks[0], device=device, meta=meta, path=where,
                 truecaser=TrueCaser(table) if table else None,
                 final_mark=(bundles[0].get("final_mark") or {}).get("src"))
        tr.precision = precision_reason(precision, device)
        return tr

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | Sequence[str | os.PathLike],
                        device: str | torch.device = "cpu",
                        precision: Precision | str = INFERENCE_PRECISION) -> Translator:
        """Load the bundle at ``path`` (safely; a list of paths: an ensemble) and build a
        translator on ``device`` (``precision`` as in :meth:`from_bundle`)."""
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        bundles = [load_bundle(p, map_location="cpu") for p in paths]
        return cls.from_bundle(bundles, device=device, path=[str(p) for p in paths],
                               precision=precision)

    @property
    def step(self) -> int:
        """Training step the weights come from."""
        return int(self.meta.get("step") or 0)

    def info(self) -> dict[str, Any]:
        """Plain-JSON description (:func:`describe`) plus the device and the precision (which,
        and why)."""
        n_params = sum(p.numel() for p in self.model.parameters())
        return {**describe(plain(self.model.cfg), self.meta, self.src_tok, self.tgt_tok, n_params,
                           self.path), "device": str(self.device), "precision": self.precision}

    @property
    def src_lang(self) -> str:
        """Source language code from the bundle (``"en"`` when it does not say)."""
        return str(self.meta.get("src_lang") or "en")

    # ------------------------------------------------------------------ translation
    def translate_documents(self, texts: Sequence[str], cfg: SearchConfig | None = None,
                            progress: Progress = None, first_index: int = 0,
                            glossary: Glossary | Mapping[str, str] | None = None,
                            format: str = "text") -> list[DocumentTranslation]:
        """Translate whole documents: split into sentences, one batched search, rejoined with
        the same line breaks and whitespace (:mod:`seq2seq.inference.documents`).

        Args:
            texts: documents (several sentences, lines, paragraphs each).
            cfg: search options, applied per sentence.
            progress: called with the number of sentences finished (see :meth:`translate`).
            first_index: number of ``texts[0]`` in warnings (e.g. its line number in a file).
            glossary: terms, per sentence as in :meth:`translate`.
            format: ``"text"``, ``"html"`` or ``"markdown"``: only the text of markup is
                translated, the markup kept (:mod:`seq2seq.inference.markup`).

        Returns:
            One :class:`~seq2seq.inference.documents.DocumentTranslation` per text.
        """
        if format != "text":
            return translate_markup(self.translate_documents, texts, format,
                                    cfg or SearchConfig(), glossary=glossary)
        return translate_documents(self.translate, texts, self.src_lang, cfg or SearchConfig(),
                                   first_index=first_index, progress=progress,
                                   glossary=glossary)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids per text (no BOS/EOS, as in training)."""
        return self.src_tok.encode_batch(list(texts))

    def _source_ids(self, texts: list[str], first_index: int,
                    labels: Sequence[str] | None) -> tuple[list[list[int]], dict[int, int]]:
        """Source ids per text, cut to ``max_input_length`` with a warning; ``{i: length}``
        of the cut ones."""
        ids = [self.src_tok.encode(t) if t.strip() else [] for t in texts]
        cut: dict[int, int] = {}
        limit = self.max_input_length
        for i, x in enumerate(ids):
            if 0 < limit < len(x):
                cut[i] = len(x)
                ids[i] = x[:limit]
                log.warning("%s has %d subword pieces; translating its first %d "
                            "(max_input_length)",
                            labels[i] if labels else f"input {first_index + i}", len(x), limit)
        return ids, cut

    @staticmethod
    def batches(lengths: Sequence[int], todo: Sequence[int],
                cfg: SearchConfig) -> Iterator[list[int]]:
        """The indices ``todo`` longest first, cut into search batches: ``cfg.batch_size``
        sentences, or with ``cfg.batch_tokens`` as many as keep ``longest x count`` (the
        padded source subwords) within it (at least one per batch)."""
        order = sorted(todo, key=lambda i: -lengths[i])  # longest first: memory problems at once
        if cfg.batch_tokens <= 0:
            for start in range(0, len(order), cfg.batch_size):
                yield order[start:start + cfg.batch_size]
            return
        chunk: list[int] = []
        for i in order:
            if chunk and lengths[chunk[0]] * (len(chunk) + 1) > cfg.batch_tokens:
                yield chunk
                chunk = []
            chunk.append(i)
        if chunk:
            yield chunk

    @torch.inference_mode()
    def translate(
        self,
        texts: Sequence[str],
        cfg: SearchConfig | None = None,
        progress: Progress = None,
        first_index: int = 0,
        labels: Sequence[str] | None = None,
        prefixes: Sequence[str | None] | None = None,
        glossary: Glossary | Mapping[str, str] | None = None,
    ) -> list[Translation]:
        """Translate ``texts``.

        Args:
            texts: source sentences.
            cfg: search options (beam size, n-best, sampling, length penalty, alignment,
                scores, batching).
            progress: called with the number of sentences finished after each batch (e.g.
                ``tqdm.update``); empty inputs are reported in the first call.
            first_index: number of ``texts[0]`` in warnings (e.g. its line number in a file).
            labels: names of the texts in warnings instead (``"input 3, sentence 2"``).
            prefixes: per text a target prefix the translation must start with (None or ""
                for none), as CTranslate2's ``target_prefix``.
            glossary: source terms -> target terms; a text containing a source term must get
                its target term (constrained search, :mod:`seq2seq.inference.glossary`); texts
                without one translate as without a glossary.

        Returns:
            One :class:`Translation` per text, in input order. ``src_pieces`` are those of the
            text the search saw (truecased, final mark appended: :mod:`.source_form`);
            ``text`` and ``n_best`` are given back in the source's form (in capitals, without
            final marks) while ``tokens`` and ``tgt_pieces`` are what the model produced.

        Raises:
            ValueError: a glossary with sampling.
        """
        cfg = cfg or SearchConfig()
        texts = list(texts)
        if prefixes is not None and len(prefixes) != len(texts):
            raise ValueError(f"{len(prefixes)} prefixes for {len(texts)} texts")
        pre = [self.tgt_tok.encode(p) if p else [] for p in (prefixes or [None] * len(texts))]
        forms = [source_form(t, truecaser=self.truecaser, final_mark=self.final_mark,
                             recase=cfg.recase_input, punctuate=cfg.punctuate_input)
                 if not p else SourceForm(t) for t, p in zip(texts, pre, strict=True)]
        searched = [f.text for f in forms]  # a prefix fixes the output's form
        gl = Glossary(glossary) if glossary and not isinstance(glossary, Glossary) else glossary
        terms = [gl.required(t, self.src_tok.normalize, self.tgt_tok.encode) if gl else []
                 for t in searched]  # on the searched text: "GOTT" and "gott" match "Gott"
        results: list[Translation | None] = [None] * len(texts)
        ids, cut = self._source_ids(searched, first_index, labels)
        todo = [i for i in range(len(texts)) if ids[i]]
        for i in range(len(texts)):
            if not ids[i]:  # blank, or no subword pieces at all (e.g. only zero-width spaces)
                results[i] = Translation(text="", score=0.0, tokens=[], n_best=[("", 0.0)],
                                         alignment=[] if cfg.return_alignment else None,
                                         src_pieces=[], tgt_pieces=[],
                                         token_scores=[] if cfg.return_scores else None)
        if progress is not None and len(todo) < len(texts):
            progress(len(texts) - len(todo))
        for chunk in self.batches([len(x) for x in ids], todo, cfg):
            src, src_len = pad_sequences([ids[i] for i in chunk])  # (B, S), (B,)
            cons = [[c for _, _, c in terms[i]] for i in chunk] if any(terms) else None
            with autocast(self.device, self.amp_dtype):
                hyps = search(self.model, src.to(self.device), src_len.to(self.device), cfg,
                              [pre[i] for i in chunk] if prefixes is not None else None, cons)
            for i, nbest in zip(chunk, hyps, strict=True):
                results[i] = self._to_translation(searched[i], nbest, cfg, cut.get(i), terms[i],
                                                  forms[i])
            if progress is not None:
                progress(len(chunk))
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def score(self, sources: Sequence[str], targets: Sequence[str],
              cfg: SearchConfig | None = None, progress: Progress = None) -> list[Translation]:
        """The model's log-probability of given translations (forced decoding, batched).

        Args:
            sources: source sentences.
            targets: their translations to score (one per source).
            cfg: ``length_penalty``/``alpha`` (the normalised ``score``), ``batch_size`` /
                ``batch_tokens``, ``return_alignment``.
            progress: called with the number of pairs finished after each batch.

        Returns:
            Per pair a :class:`Translation` of the given target: ``log_prob`` (EOS included),
            ``score`` (length-normalised as search ranks) and ``token_scores``.

        Raises:
            ValueError: different counts, or a source with no subword pieces (naming it).
        """
        cfg = cfg or SearchConfig()
        sources, targets = list(sources), list(targets)
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        ids, cut = self._source_ids(sources, 1, None)
        for i, x in enumerate(ids):
            if not x:
                raise ValueError(f"source {i + 1} has no subword pieces; it cannot be scored")
        tgt_ids = [self.tgt_tok.encode(t) for t in targets]
        results: list[Translation | None] = [None] * len(sources)
        for chunk in self.batches([len(x) for x in ids], range(len(ids)), cfg):
            src, src_len = pad_sequences([ids[i] for i in chunk])  # (B, S), (B,)
            with autocast(self.device, self.amp_dtype):
                hyps = forced_decode(self.model, src.to(self.device), src_len.to(self.device),
                                     [tgt_ids[i] for i in chunk], cfg, cfg.return_alignment)
            for i, h in zip(chunk, hyps, strict=True):
                results[i] = self._to_translation(sources[i], [h], cfg, cut.get(i))
                results[i].text = targets[i]
                results[i].token_scores = list(h.token_log_probs)
            if progress is not None:
                progress(len(chunk))
        return results  # type: ignore[return-value]

    def _to_translation(self, text: str, nbest: list, cfg: SearchConfig,
                        truncated_from: int | None = None,
                        terms: Sequence[tuple[str, str, list[int]]] = (),
                        form: SourceForm | None = None) -> Translation:
        """Turn the n-best hypotheses of one sentence into a :class:`Translation` (its texts
        given back in the source's ``form``; glossary terms are checked before)."""
        best = nbest[0]
        tokens = [int(t) for t in best.tokens]
        alignment = None
        if cfg.return_alignment and best.alignment is not None:
            alignment = best.alignment.float().cpu().tolist()  # (T_out+1, S) nested lists
        src_pieces = self.src_tok.pieces(text)
        if truncated_from is not None:  # the pieces that were translated (alignment columns)
            src_pieces = src_pieces[:self.max_input_length]
        out = self.tgt_tok.decode(tokens)
        checks = None
        if terms:
            placed = best.constraints_met or [True] * len(terms)
            checks = [TermCheck(s, t, t in out, "" if t in out else "length" if not ok
                                else "detokenized differently")
                      for (s, t, _), ok in zip(terms, placed, strict=True)]
        restore = form.restore if form is not None else str
        return Translation(
            text=restore(out),
            score=float(best.score),
            tokens=tokens,
            n_best=[(restore(self.tgt_tok.decode([int(t) for t in h.tokens])), float(h.score))
                    for h in nbest],
            alignment=alignment,
            src_pieces=src_pieces,
            tgt_pieces=[self.tgt_tok.id_to_piece(t) for t in tokens] + [EOS_PIECE],
            truncated_from=truncated_from,
            log_prob=float(best.log_prob),
            token_scores=list(best.token_log_probs) if best.token_log_probs is not None else None,
            constraints=checks,
        )


__all__ = ["EOS_PIECE", "Translation", "Translator", "describe", "describe_bundle"]
