"""The litserve ``LitAPI`` of the translating endpoints (model worker).

``/predict``, ``/score`` and the LibreTranslate ``/translate`` share one model worker and one
queue, whatever the number of models: a validated request says which model and which task it
is (:class:`serve.validation.TranslateRequest`), :class:`Job` keys keep models, tasks and search
options apart, and the batch loop (:mod:`serve.batching`) cuts every dynamic batch into chunks
of one key and similar length. ``serve/`` holds no model code: the
:class:`~serve.registry.ModelRegistry` loads bundles into
:class:`~seq2seq.inference.translator.Translator` s, and ``predict`` calls their ``translate``
(through the :class:`~serve.cache.SentenceCache`), ``translate_documents`` or ``score``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import litserve as ls

from seq2seq.config import SearchConfig, ServeConfig
from seq2seq.inference.documents import translate_documents
from seq2seq.inference.glossary import Glossary
from seq2seq.inference.markup import translate_markup
from serve.batching import LengthGroupedLoop
from serve.cache import SentenceCache
from serve.catalog import ModelSpec
from serve.metrics import Metrics
from serve.registry import ModelRegistry
from serve.shutdown import worker_signals
from serve.validation import TranslateRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A decoded request: its texts and the search options it runs with."""

    request: TranslateRequest
    search: SearchConfig

    @property
    def key(self) -> tuple:
        """Requests with equal keys can be searched (or scored) in one call."""
        s, r = self.search, self.request
        return (r.model, r.task, s.beam_size, s.n_best, s.max_len_a, s.max_len_b,
                s.return_alignment, s.return_scores, r.split_sentences, r.format,
                tuple(sorted((r.glossary or {}).items())))

    @property
    def length(self) -> int:
        """Longest source text in subwords (characters / 4 when the count is unknown)."""
        req = self.request
        counts = req.n_tokens if len(req.n_tokens) == len(req.texts) else [-1] * len(req.texts)
        return max(n if n >= 0 else math.ceil(len(x) / 4)
                   for n, x in zip(counts, req.texts, strict=True))


def search_config_for(req: TranslateRequest, base: SearchConfig) -> SearchConfig:
    """The model's search defaults with the request's options applied.

    ``max_length`` replaces the length budget ``max_len_a * src_len + max_len_b`` by a flat
    ``max_length`` subwords; ``alternatives`` asks for that many more hypotheses (the beam
    widened to hold them).
    """
    beam = req.beam_size if req.beam_size is not None else base.beam_size
    n_best = req.n_best if req.n_best is not None else min(base.n_best, beam)
    if req.alternatives:
        n_best = max(n_best, req.alternatives + 1)
        beam = max(beam, n_best)
    cfg = replace(base, beam_size=beam, n_best=n_best, return_alignment=req.return_alignment,
                  return_scores=req.return_scores)
    if req.max_length is not None:
        cfg = replace(cfg, max_len_a=0.0, max_len_b=req.max_length)
    return cfg


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class TranslatorAPI(ls.LitAPI):
    """The translating endpoints over the served models.

    Args:
        specs: the served models (:class:`~serve.catalog.ModelSpec`, languages filled in); the
            first is the model of a request that names none.
        serve_cfg: limits, batching (``max_batch_size``, ``batch_timeout``,
            ``length_group_ratio``), ``threads``, ``max_loaded``, ``cache_size``, ``metrics``.
    """

    def __init__(self, specs: Sequence[ModelSpec], serve_cfg: ServeConfig) -> None:
        super().__init__(
            max_batch_size=serve_cfg.max_batch_size,
            batch_timeout=serve_cfg.batch_timeout,
            api_path="/predict",
            loop=LengthGroupedLoop(),
        )
        self.specs = {s.id: s for s in specs}
        self.default_model = specs[0].id
        self.serve_cfg = serve_cfg
        self.registry: ModelRegistry | None = None
        self.cache = SentenceCache(serve_cfg.cache_size)
        self.metrics = Metrics(enabled=False)
        self.loaded_flags: Any = None  # shared with the HTTP process: 1 per model in memory
        self.may_stop: Any = None  # set by the main process when this worker may stop

    @property
    def search_cfg(self) -> SearchConfig:
        """The default model's search options."""
        return self.specs[self.default_model].search

    @property
    def translator(self) -> Any:
        """The default model's translator (loaded if it is not)."""
        return self.registry.get(self.default_model)

    def setup(self, device: str) -> None:
        """Load the ``preload`` models onto ``device`` (``"cpu"`` or ``"cuda:N"``)."""
        import torch

        worker_signals(self.may_stop)  # the main process stops this worker last (serve/shutdown.py)
        if self.serve_cfg.threads > 0:
            torch.set_num_threads(self.serve_cfg.threads)
        self.metrics = Metrics(self.serve_cfg.metrics)
        self.registry = ModelRegistry(list(self.specs.values()), device,
                                      self.serve_cfg.max_loaded, on_change=self._loaded)
        self.registry.preload()

    def _loaded(self, loaded: list[str], new: str | None) -> None:
        self.metrics.models(loaded, new)
        if self.loaded_flags is not None:
            for i, model in enumerate(self.specs):
                self.loaded_flags[i] = model in loaded

    def share_loaded(self) -> None:
        """Shared memory (one flag per model) through which the HTTP process sees which models
        the worker holds, and the event by which the main process lets the worker stop
        (:func:`serve.shutdown.worker_signals`); call before the worker starts."""
        import multiprocessing as mp

        self.loaded_flags = mp.get_context("spawn").RawArray("b", len(self.specs))
        self.may_stop = mp.get_context("spawn").Event()

    def loaded(self) -> set[str] | None:
        """Ids of the models the worker holds (None when not shared)."""
        if self.loaded_flags is None:
            return None
        return {m for m, on in zip(self.specs, self.loaded_flags, strict=True) if on}

    def tick(self) -> None:
        """Between batches: unload the models idle for too long."""
        if self.registry is not None:
            self.registry.unload_idle()

    def decode_request(self, request: dict, **kwargs: Any) -> Job:
        """A request validated in the HTTP process (:mod:`serve.validation`; its payload) ->
        :class:`Job`. Nothing is checked again here."""
        req = TranslateRequest.from_payload(request)
        if not req.model:
            req = replace(req, model=self.default_model)
        return Job(req, search_config_for(req, self.specs[req.model].search))

    def glossary(self, model: str, extra: dict[str, str] | None) -> Glossary | None:
        """The model's glossary extended by a request's (None when both are empty)."""
        terms = self.specs[model].glossary
        if not terms and not extra:
            return None
        return Glossary(terms).extended(extra)

    def batch(self, inputs: list[Job]) -> list[Job]:
        """A chunk of jobs with one key stays a list."""
        return inputs

    def predict(self, jobs: list[Job]) -> list[list]:
        """Translate (or score) every text of every job in one call of the model's translator.

        Args:
            jobs: jobs sharing one key (one model, one chunk).

        Returns:
            Per job, its list of :class:`~seq2seq.inference.translator.Translation` (documents
            with ``split_sentences``).
        """
        cfg, first = jobs[0].search, jobs[0].request
        model = first.model
        tr = self.registry.get(model)
        texts = [t for job in jobs for t in job.request.texts]
        glossary = self.glossary(model, first.glossary)
        self.metrics.model_call(model, len(texts))
        hits, misses = self.cache.hits, self.cache.misses
        translate = self.cache.bind(tr.translate, model)
        if first.task == "score":
            targets = [t for job in jobs for t in job.request.targets]
            out = tr.score(texts, targets, cfg)
        elif first.format != "text":  # markup: its segments as documents, through the cache
            def docs(parts: list[str], aligned: SearchConfig, **kw: Any) -> list:
                return translate_documents(translate, parts, tr.src_lang, aligned, **kw)

            out = translate_markup(docs, texts, first.format, cfg, glossary=glossary)
        elif first.split_sentences:  # documents: one search over all their sentences
            out = translate_documents(translate, texts, tr.src_lang, cfg, glossary=glossary)
        else:
            prefixes = None
            if any(job.request.prefixes for job in jobs):
                prefixes = [p for job in jobs
                            for p in (job.request.prefixes or (None,) * len(job.request.texts))]
            out = translate(texts, cfg, prefixes=prefixes, glossary=glossary)
        self.metrics.cache(model, self.cache.hits - hits, self.cache.misses - misses)
        sents = [s for o in out for s in (getattr(o, "sentences", None) or [o])]
        self.metrics.translated(model, len(sents), sum(len(s.src_pieces) for s in sents),
                                sum(len(s.tokens) for s in sents))
        result, start = [], 0
        for job in jobs:
            n = len(job.request.texts)
            result.append(out[start:start + n])
            start += n
        return result

    def unbatch(self, output: list[list]) -> list[list]:
        return output

    def encode_response(self, output: tuple[Job, list], **kwargs: Any) -> dict:
        """(job, results) -> ``{"translations": [...]}`` or ``{"scores": [...]}`` JSON dict.

        With ``split_sentences`` each item is a document: its rejoined ``text`` and mean
        ``score``; a document of one sentence also carries that sentence's n-best, alignment
        and scores as before, one of several sentences carries them per sentence in
        ``sentences``. With ``alternatives`` every item has ``alternatives``: other
        translations, best first.
        """
        job, results = output
        req = job.request
        if req.task == "score":
            return {"scores": [self._score_item(req, tr) for tr in results]}
        items = []
        for tr in results:
            if req.format != "text":
                item = {"text": tr.text, "score": _finite(tr.score)}
                checks = [c.to_dict() for s in tr.sentences for c in (s.constraints or [])]
                if checks:
                    item["constraints"] = checks
                others = []
            elif not req.split_sentences:
                item = self._sentence_item(req, tr)
                others = [t for t, _ in tr.n_best[1:]]
            else:
                sents = tr.sentences
                if len(sents) == 1:
                    item = {**self._sentence_item(req, sents[0]), "text": tr.text}
                else:
                    item = {"text": tr.text, "score": _finite(tr.score)}
                    detail = (req.n_best is not None and req.n_best > 1) or \
                        req.return_alignment or req.return_scores
                    if detail:
                        item["sentences"] = [self._sentence_item(req, s) for s in sents]
                    checks = [c.to_dict() for s in sents for c in (s.constraints or [])]
                    if checks:
                        item["constraints"] = checks
                others = tr.alternatives(req.alternatives) if req.alternatives else []
            if req.alternatives:
                unique = list(dict.fromkeys(t for t in others if t and t != item["text"]))
                item["alternatives"] = unique[:req.alternatives]
            items.append(item)
        return {"translations": items}

    @staticmethod
    def _sentence_item(req: TranslateRequest, tr: Any) -> dict[str, Any]:
        """One sentence's Translation -> JSON dict (n-best, alignment, scores when asked)."""
        item: dict[str, Any] = {"text": tr.text, "score": _finite(tr.score)}
        if tr.truncated_from is not None:  # longer than max_input_length: its start translated
            item["truncated_from"] = tr.truncated_from
        if req.n_best is not None and req.n_best > 1:
            item["n_best"] = [{"text": t, "score": _finite(s)} for t, s in tr.n_best[:req.n_best]]
        if req.return_alignment:
            item["alignment"] = [[round(float(a), 5) for a in row] for row in (tr.alignment or [])]
            item["src_pieces"] = list(tr.src_pieces)
            item["tgt_pieces"] = list(tr.tgt_pieces)
        if req.return_scores:
            item["log_prob"] = _finite(tr.log_prob)
            item["tokens"] = list(tr.tgt_pieces)
            item["token_scores"] = [_finite(x) for x in (tr.token_scores or [])]
        if tr.constraints:
            item["constraints"] = [c.to_dict() for c in tr.constraints]
        return item

    @staticmethod
    def _score_item(req: TranslateRequest, tr: Any) -> dict[str, Any]:
        """One scored pair -> JSON dict."""
        item: dict[str, Any] = {"log_prob": _finite(tr.log_prob), "score": _finite(tr.score)}
        if req.return_scores:
            item["tokens"] = list(tr.tgt_pieces)
            item["token_scores"] = [_finite(x) for x in (tr.token_scores or [])]
        return item
