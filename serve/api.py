"""The litserve ``LitAPI`` of the translation endpoint and its length-grouping batch loop.

Flow of one dynamic batch (worker process)::

    requests (<= max_batch_size, gathered for <= batch_timeout after the first one)
      -> decode_request per request (a failure answers only that request)
      -> group by search options (beam, n-best, max length, alignment)
      -> within a group sort by source length; cut into chunks of similar length
         (longest <= length_group_ratio x shortest, <= search batch_size texts)
      -> per chunk, shortest chunk first: batch -> predict -> unbatch -> encode_response,
         and answer the chunk's requests at once

So a long sentence that arrives with short ones does not hold their answers back: the short
chunk is decoded and answered first (its decoding stops at the short sentences' length), the
long one afterwards. A failing chunk fails only its own requests.

``serve/`` holds no model code: :meth:`TranslatorAPI.setup` loads the checkpoint bundle into a
:class:`~seq2seq.inference.translator.Translator` and ``predict`` calls its search.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from queue import Empty, Queue
from typing import Any, TypeVar

import litserve as ls
from fastapi import HTTPException
from litserve.callbacks import CallbackRunner, EventTypes
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from litserve.loops.simple_loops import BatchedLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType, PickleableHTTPException

from seq2seq.config import SearchConfig, ServeConfig
from serve.shutdown import ignore_sigint
from serve.validation import RequestError, TranslateRequest, token_counter, validate_payload

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_GROUP_TOKENS = 8  # sentences up to this many subwords always share a chunk


@dataclass(frozen=True)
class Job:
    """A decoded request: its texts and the search options it runs with."""

    request: TranslateRequest
    search: SearchConfig

    @property
    def key(self) -> tuple:
        """Requests with equal keys can be searched in one call."""
        s = self.search
        return (s.beam_size, s.n_best, s.max_len_a, s.max_len_b, s.return_alignment,
                self.request.split_sentences)

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
    cfg = replace(base, beam_size=beam, n_best=n_best, return_alignment=req.return_alignment)
    if req.max_length is not None:
        cfg = replace(cfg, max_len_a=0.0, max_len_b=req.max_length)
    return cfg


def plan_chunks(
    items: Sequence[T],
    key: Callable[[T], Any],
    length: Callable[[T], int],
    size: Callable[[T], int],
    max_texts: int,
    ratio: float,
) -> list[list[T]]:
    """Split one dynamic batch into chunks that are searched (and answered) one after another.

    Items with different ``key`` never share a chunk. Within a key, items are sorted by
    ``length``; a new chunk starts when adding an item would exceed ``max_texts`` texts or when
    its length exceeds ``ratio`` times the chunk's shortest (lengths below
    :data:`MIN_GROUP_TOKENS` count as that minimum; ``ratio <= 0`` disables length splitting).
    Chunks are returned shortest first.

    Args:
        items: the batch.
        key: search-compatibility key of an item.
        length: source length of an item (its longest text).
        size: number of texts of an item.
        max_texts: texts per chunk (an item with more texts gets a chunk of its own).
        ratio: allowed longest/shortest length ratio inside a chunk.

    Returns:
        Chunks (lists of items), every item exactly once, shortest chunks first.
    """
    groups: dict[Any, list[T]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    chunks: list[tuple[int, int, list[T]]] = []  # (max length, arrival, items)
    for group in groups.values():
        chunk: list[T] = []
        shortest = count = 0
        for it in sorted(group, key=length):
            n = max(length(it), MIN_GROUP_TOKENS)
            too_many = count + size(it) > max_texts
            too_long = ratio > 0 and n > ratio * shortest
            if chunk and (too_many or too_long):
                chunks.append((max(length(c) for c in chunk), len(chunks), chunk))
                chunk, count = [], 0
            if not chunk:
                shortest = n
            chunk.append(it)
            count += size(it)
        if chunk:
            chunks.append((max(length(c) for c in chunk), len(chunks), chunk))
    chunks.sort(key=lambda c: (c[0], c[1]))
    return [c[2] for c in chunks]


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class TranslatorAPI(ls.LitAPI):
    """Translation endpoint over a checkpoint bundle.

    Args:
        checkpoint: path of the bundle.
        serve_cfg: limits and batching (``max_batch_size``, ``batch_timeout``,
            ``length_group_ratio``, ``threads``).
        search_cfg: default search options (per-request options override them).
    """

    def __init__(self, checkpoint: str, serve_cfg: ServeConfig, search_cfg: SearchConfig) -> None:
        super().__init__(
            max_batch_size=serve_cfg.max_batch_size,
            batch_timeout=serve_cfg.batch_timeout,
            api_path="/predict",
            loop=LengthGroupedLoop(),
        )
        self.checkpoint = str(checkpoint)
        self.serve_cfg = serve_cfg
        self.search_cfg = search_cfg
        self.translator = None

    def setup(self, device: str) -> None:
        """Load the bundle onto ``device`` (``"cpu"`` or ``"cuda:N"``); nothing else."""
        import torch

        from seq2seq.inference.translator import Translator

        ignore_sigint()  # the main process stops this worker last (serve/shutdown.py)
        if self.serve_cfg.threads > 0:
            torch.set_num_threads(self.serve_cfg.threads)
        self.translator = Translator.from_checkpoint(self.checkpoint, device=device,
                                                     precision=self.serve_cfg.precision)
        logger.info("loaded %s (step %s) on %s", self.checkpoint, self.translator.step, device)

    def decode_request(self, request: dict, **kwargs: Any) -> Job:
        """Validated payload (from the HTTP process) -> :class:`Job`.

        A payload that did not come through the HTTP process's validation (no ``n_tokens``) is
        validated here in full.

        Raises:
            HTTPException: 422 (or 400) with a message; the loop answers only this request.
        """
        try:
            if isinstance(request, dict) and "n_tokens" in request:
                req = TranslateRequest(
                    texts=tuple(request["texts"]),
                    n_tokens=tuple(int(n) for n in request["n_tokens"]),
                    beam_size=request["beam_size"],
                    n_best=request["n_best"],
                    max_length=request["max_length"],
                    return_alignment=bool(request["return_alignment"]),
                    single=bool(request["single"]),
                    split_sentences=bool(request.get("split_sentences", True)),
                )
            else:
                count = None
                if self.translator is not None:
                    count = token_counter(self.translator.src_tok, self.translator.src_lang)
                req = validate_payload(request, self.serve_cfg, count, self.search_cfg.beam_size)
        except RequestError as e:
            raise HTTPException(e.status, e.message) from None
        except (KeyError, TypeError, ValueError) as e:
            raise HTTPException(422, f"malformed request: {e}") from None
        return Job(req, search_config_for(req, self.search_cfg))

    def batch(self, inputs: list[Job]) -> list[Job]:
        """A chunk of jobs with one search key stays a list."""
        return inputs

    def predict(self, jobs: list[Job]) -> list[list]:
        """Translate every text of every job in one ``Translator.translate`` call.

        Args:
            jobs: jobs sharing one search config (one chunk).

        Returns:
            Per job, its list of :class:`~seq2seq.inference.translator.Translation`.
        """
        cfg = jobs[0].search
        texts = [t for job in jobs for t in job.request.texts]
        if jobs[0].request.split_sentences:  # documents: one search over all their sentences
            out = self.translator.translate_documents(texts, cfg)
        else:
            out = self.translator.translate(texts, cfg)
        result, start = [], 0
        for job in jobs:
            n = len(job.request.texts)
            result.append(out[start:start + n])
            start += n
        return result

    def unbatch(self, output: list[list]) -> list[list]:
        return output

    def encode_response(self, output: tuple[Job, list], **kwargs: Any) -> dict:
        """(job, translations) -> ``{"translations": [...]}`` JSON dict.

        With ``split_sentences`` each item is a document: its rejoined ``text`` and mean
        ``score``; a document of one sentence also carries that sentence's n-best and alignment
        as before, one of several sentences carries them per sentence in ``sentences``.
        """
        job, translations = output
        req = job.request
        items = []
        for tr in translations:
            if not req.split_sentences:
                items.append(self._sentence_item(req, tr))
                continue
            sents = tr.sentences
            if len(sents) == 1:
                item = {**self._sentence_item(req, sents[0]), "text": tr.text}
            else:
                item = {"text": tr.text, "score": _finite(tr.score)}
                if (req.n_best is not None and req.n_best > 1) or req.return_alignment:
                    item["sentences"] = [self._sentence_item(req, s) for s in sents]
            items.append(item)
        return {"translations": items}

    @staticmethod
    def _sentence_item(req: TranslateRequest, tr: Any) -> dict[str, Any]:
        """One sentence's Translation -> JSON dict (n-best and alignment when asked for)."""
        item: dict[str, Any] = {"text": tr.text, "score": _finite(tr.score)}
        if req.n_best is not None and req.n_best > 1:
            item["n_best"] = [{"text": t, "score": _finite(s)} for t, s in tr.n_best[:req.n_best]]
        if req.return_alignment:
            item["alignment"] = [[round(float(a), 5) for a in row] for row in (tr.alignment or [])]
            item["src_pieces"] = list(tr.src_pieces)
            item["tgt_pieces"] = list(tr.tgt_pieces)
        return item


class LengthGroupedLoop(BatchedLoop):
    """Dynamic batching that isolates bad requests and answers short chunks first.

    Collection: block for the first request, then gather more for up to ``batch_timeout``
    seconds (measured from the first one) or until ``max_batch_size``; with
    ``max_batch_size=1`` each request runs alone without waiting. Then see the module docstring.
    """

    _stopping = False

    def get_batch_requests(self, lit_api: ls.LitAPI, request_queue: Queue,
                           transport: MessageTransport) -> tuple[list, list]:
        payloads: list = []
        timed_out: list = []
        if self._stopping:
            raise _StopLoopError()
        try:
            item = request_queue.get(timeout=1.0)
        except Empty:
            return payloads, timed_out
        deadline = time.monotonic() + lit_api.batch_timeout
        while True:
            if item == _SENTINEL_VALUE:
                if not payloads:
                    raise _StopLoopError()
                self._stopping = True  # answer what was gathered, then stop
                break
            response_queue_id, uid, timestamp, x_enc = item
            limit = lit_api.request_timeout
            if limit not in (None, False, -1) and time.monotonic() - timestamp > limit:
                timed_out.append((response_queue_id, uid))
            else:
                payloads.append((response_queue_id, uid, x_enc))
            if len(payloads) >= lit_api.max_batch_size:
                break
            remaining = deadline - time.monotonic()
            try:
                item = (request_queue.get(timeout=remaining) if remaining > 0
                        else request_queue.get_nowait())
            except Empty:
                break
        return payloads, timed_out

    def _send(self, transport: MessageTransport, rq: int, uid: str, data: Any,
              status: LitAPIStatus) -> None:
        self.put_response(transport, rq, uid, data, status, LoopResponseType.REGULAR)

    def run_batched_loop(self, lit_api: TranslatorAPI, request_queue: Queue,
                         transport: MessageTransport, callback_runner: CallbackRunner,
                         lit_spec: Any = None) -> None:
        while True:
            try:
                batch, timed_out = self.get_batch_requests(lit_api, request_queue, transport)
            except _StopLoopError:
                return
            for rq, uid in timed_out:
                self._send(transport, rq, uid, PickleableHTTPException(504, "request timed out "
                           "waiting in the queue"), LitAPIStatus.ERROR)
            if not batch:
                continue
            decoded = []
            for rq, uid, x_enc in batch:
                try:
                    decoded.append((rq, uid, lit_api.decode_request(x_enc)))
                except HTTPException as e:
                    self._send(transport, rq, uid, PickleableHTTPException.from_exception(e),
                               LitAPIStatus.ERROR)
                except Exception as e:  # noqa: BLE001 - answer this request only
                    logger.exception("decode_request failed for uid=%s", uid)
                    self.put_error_response(transport, rq, uid, e, LoopResponseType.REGULAR)
            chunks = plan_chunks(
                decoded,
                key=lambda d: d[2].key,
                length=lambda d: d[2].length,
                size=lambda d: len(d[2].request.texts),
                max_texts=max(lit_api.search_cfg.batch_size, 1),
                ratio=lit_api.serve_cfg.length_group_ratio,
            )
            for chunk in chunks:
                self._run_chunk(lit_api, chunk, transport, callback_runner)

    def _run_chunk(self, lit_api: TranslatorAPI, chunk: list, transport: MessageTransport,
                   callback_runner: CallbackRunner) -> None:
        try:
            jobs = lit_api.batch([d[2] for d in chunk])
            callback_runner.trigger_event(EventTypes.BEFORE_PREDICT.value, lit_api=lit_api)
            outputs = lit_api.unbatch(lit_api.predict(jobs))
            callback_runner.trigger_event(EventTypes.AFTER_PREDICT.value, lit_api=lit_api)
            if len(outputs) != len(chunk):
                raise RuntimeError(f"predict returned {len(outputs)} outputs for {len(chunk)}")
        except Exception as e:  # noqa: BLE001 - fail this chunk only
            logger.exception("predict failed for a chunk of %d requests", len(chunk))
            for rq, uid, _ in chunk:
                self.put_error_response(transport, rq, uid, e, LoopResponseType.REGULAR)
            return
        for (rq, uid, job), out in zip(chunk, outputs, strict=True):
            try:
                enc = lit_api.encode_response((job, out))
            except Exception as e:  # noqa: BLE001
                logger.exception("encode_response failed for uid=%s", uid)
                self.put_error_response(transport, rq, uid, e, LoopResponseType.REGULAR)
                continue
            self._send(transport, rq, uid, enc, LitAPIStatus.OK)
