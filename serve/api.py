"""The litserve ``LitAPI`` of the translation and scoring endpoints (model worker).

``/predict`` and ``/score`` share one model worker and one queue: a validated request says
which task it is (:class:`serve.validation.TranslateRequest`), :class:`Job` keys keep the tasks
and search options apart, and the batch loop (:mod:`serve.batching`) cuts every dynamic batch
into chunks of similar length. ``serve/`` holds no model code: :meth:`TranslatorAPI.setup`
loads the checkpoint bundle(s) into a :class:`~seq2seq.inference.translator.Translator`, and
``predict`` calls its ``translate``, ``translate_documents`` or ``score``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import litserve as ls

from seq2seq.config import SearchConfig, ServeConfig
from serve.batching import LengthGroupedLoop
from serve.shutdown import ignore_sigint
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
        return (r.task, s.beam_size, s.n_best, s.max_len_a, s.max_len_b, s.return_alignment,
                s.return_scores, r.split_sentences)

    @property
    def length(self) -> int:
        """Longest source text in subwords (characters / 4 when the count is unknown)."""
        req = self.request
        counts = req.n_tokens if len(req.n_tokens) == len(req.texts) else [-1] * len(req.texts)
        return max(n if n >= 0 else math.ceil(len(x) / 4)
                   for n, x in zip(counts, req.texts, strict=True))


def search_config_for(req: TranslateRequest, base: SearchConfig) -> SearchConfig:
    """The server's search defaults with the request's options applied.

    ``max_length`` replaces the length budget ``max_len_a * src_len + max_len_b`` by a flat
    ``max_length`` subwords.
    """
    beam = req.beam_size if req.beam_size is not None else base.beam_size
    n_best = req.n_best if req.n_best is not None else min(base.n_best, beam)
    cfg = replace(base, beam_size=beam, n_best=n_best, return_alignment=req.return_alignment,
                  return_scores=req.return_scores)
    if req.max_length is not None:
        cfg = replace(cfg, max_len_a=0.0, max_len_b=req.max_length)
    return cfg


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class TranslatorAPI(ls.LitAPI):
    """Translation and scoring endpoint over a checkpoint bundle (or several: an ensemble).

    Args:
        checkpoint: path of the bundle, or a list of paths.
        serve_cfg: limits and batching (``max_batch_size``, ``batch_timeout``,
            ``length_group_ratio``, ``threads``).
        search_cfg: default search options (per-request options override them).
    """

    def __init__(self, checkpoint: str | list[str], serve_cfg: ServeConfig,
                 search_cfg: SearchConfig) -> None:
        super().__init__(
            max_batch_size=serve_cfg.max_batch_size,
            batch_timeout=serve_cfg.batch_timeout,
            api_path="/predict",
            loop=LengthGroupedLoop(),
        )
        self.checkpoint = checkpoint if isinstance(checkpoint, list) else str(checkpoint)
        self.serve_cfg = serve_cfg
        self.search_cfg = search_cfg
        self.translator = None

    def setup(self, device: str) -> None:
        """Load the bundle(s) onto ``device`` (``"cpu"`` or ``"cuda:N"``); nothing else."""
        import torch

        from seq2seq.inference.translator import Translator

        ignore_sigint()  # the main process stops this worker last (serve/shutdown.py)
        if self.serve_cfg.threads > 0:
            torch.set_num_threads(self.serve_cfg.threads)
        self.translator = Translator.from_checkpoint(self.checkpoint, device=device,
                                                     precision=self.serve_cfg.precision)
        logger.info("loaded %s (step %s) on %s", self.checkpoint, self.translator.step, device)

    def decode_request(self, request: dict, **kwargs: Any) -> Job:
        """A request validated in the HTTP process (:mod:`serve.validation`; its payload) ->
        :class:`Job`. Nothing is checked again here."""
        req = TranslateRequest.from_payload(request)
        return Job(req, search_config_for(req, self.search_cfg))

    def batch(self, inputs: list[Job]) -> list[Job]:
        """A chunk of jobs with one search key stays a list."""
        return inputs

    def predict(self, jobs: list[Job]) -> list[list]:
        """Translate (or score) every text of every job in one call of the translator.

        Args:
            jobs: jobs sharing one key (one chunk).

        Returns:
            Per job, its list of :class:`~seq2seq.inference.translator.Translation` (documents
            with ``split_sentences``).
        """
        cfg, first = jobs[0].search, jobs[0].request
        texts = [t for job in jobs for t in job.request.texts]
        if first.task == "score":
            targets = [t for job in jobs for t in job.request.targets]
            out = self.translator.score(texts, targets, cfg)
        elif first.split_sentences:  # documents: one search over all their sentences
            out = self.translator.translate_documents(texts, cfg)
        else:
            prefixes = None
            if any(job.request.prefixes for job in jobs):
                prefixes = [p for job in jobs
                            for p in (job.request.prefixes or (None,) * len(job.request.texts))]
            out = self.translator.translate(texts, cfg, prefixes=prefixes)
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
        ``sentences``.
        """
        job, results = output
        req = job.request
        if req.task == "score":
            return {"scores": [self._score_item(req, tr) for tr in results]}
        items = []
        for tr in results:
            if not req.split_sentences:
                items.append(self._sentence_item(req, tr))
                continue
            sents = tr.sentences
            if len(sents) == 1:
                item = {**self._sentence_item(req, sents[0]), "text": tr.text}
            else:
                item = {"text": tr.text, "score": _finite(tr.score)}
                detail = (req.n_best is not None and req.n_best > 1) or req.return_alignment \
                    or req.return_scores
                if detail:
                    item["sentences"] = [self._sentence_item(req, s) for s in sents]
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
        return item

    @staticmethod
    def _score_item(req: TranslateRequest, tr: Any) -> dict[str, Any]:
        """One scored pair -> JSON dict."""
        item: dict[str, Any] = {"log_prob": _finite(tr.log_prob), "score": _finite(tr.score)}
        if req.return_scores:
            item["tokens"] = list(tr.tgt_pieces)
            item["token_scores"] = [_finite(x) for x in (tr.token_scores or [])]
        return item
