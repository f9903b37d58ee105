"""Dynamic batching of the model worker: one litserve batch cut into chunks of similar length.

Flow of one dynamic batch (worker process)::

    requests (<= max_batch_size, gathered for <= batch_timeout after the first one)
      -> decode_request per request (a failure answers only that request)
      -> group by model and search options (task, beam, n-best, max length, alignment,
         scores, split): a batch never mixes models
      -> within a group sort by source length; cut into chunks of similar length
         (longest <= length_group_ratio x shortest, <= search batch_size texts)
      -> per chunk, shortest chunk first: batch -> predict -> unbatch -> encode_response,
         and answer the chunk's requests at once

So a long sentence that arrives with short ones does not hold their answers back: the short
chunk is decoded and answered first (its decoding stops at the short sentences' length), the
long one afterwards. A failing chunk fails only its own requests. Requests that waited in the
queue longer than the server's ``timeout`` are answered 504 without being decoded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from queue import Empty, Queue
from typing import Any, TypeVar

import litserve as ls
from fastapi import HTTPException
from litserve.callbacks import CallbackRunner, EventTypes
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from litserve.loops.simple_loops import BatchedLoop
from litserve.transport.base import MessageTransport
from litserve.utils import LitAPIStatus, LoopResponseType, PickleableHTTPException

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_GROUP_TOKENS = 8  # sentences up to this many subwords always share a chunk


def plan_chunks(
    items: Sequence[T],
    key: Callable[[T], Any],
    length: Callable[[T], int],
    size: Callable[[T], int],
    max_texts: int | Callable[[T], int],
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
        max_texts: texts per chunk (an item with more texts gets a chunk of its own), or a
            function of an item giving it for the item's key.
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
        limit = max_texts(group[0]) if callable(max_texts) else max_texts
        for it in sorted(group, key=length):
            n = max(length(it), MIN_GROUP_TOKENS)
            too_many = count + size(it) > limit
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

    def run_batched_loop(self, lit_api: Any, request_queue: Queue,
                         transport: MessageTransport, callback_runner: CallbackRunner,
                         lit_spec: Any = None) -> None:
        while True:
            if hasattr(lit_api, "tick"):
                lit_api.tick()  # between batches: e.g. unload idle models
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
                max_texts=lambda d: d[2].search.batch_size,
                ratio=lit_api.serve_cfg.length_group_ratio,
            )
            for chunk in chunks:
                self._run_chunk(lit_api, chunk, transport, callback_runner)

    def _run_chunk(self, lit_api: Any, chunk: list, transport: MessageTransport,
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
