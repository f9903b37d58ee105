"""The request handlers of the translating endpoints (HTTP process): ``/predict``, ``/score``
and LibreTranslate's ``/translate``.

Each request, in order: its key (``401`` / LibreTranslate ``400``/``403``), the key's request
rate (``429``), the bounded queue (``503``), the body within the size limit (``413``; a body
that has not arrived when the server starts stopping: ``503``), its validation (``4xx`` naming
the field), the key's text and character limits (``400`` / ``429``), then the model worker's
queue; every answer is counted in the metrics by endpoint, model and status. Checked here, once,
a request reaches the worker valid (:mod:`serve.validation`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from litserve.server import RegularRequestHandler
from starlette.requests import ClientDisconnect

from serve.admission import KeyRejected, LimitExceeded
from serve.libretranslate import answer, plan_translation, read_params
from serve.validation import (
    RequestError,
    TranslateRequest,
    max_body_bytes,
    parse_body,
    validate_payload,
    validate_score_payload,
)

logger = logging.getLogger(__name__)

DRAIN_POLL_S = 0.1  # how often a body still being read checks whether the server is stopping


class TranslatingHandler(RegularRequestHandler):
    """litserve's request handler with admission, validation and metrics before the queue.

    Args:
        lit_api: the model worker's API.
        server: the :class:`~serve.server.TranslationServer` (catalog, admission, metrics,
            draining event).
        endpoint: the path, for metrics.
    """

    endpoint = "/predict"

    def __init__(self, lit_api: Any, server: Any, endpoint: str | None = None) -> None:
        super().__init__(lit_api, server)
        self.endpoint = endpoint or self.endpoint
        self.cfg = lit_api.serve_cfg
        self.catalog = server.catalog
        self.admission = server.admission
        self.metrics = server.http_metrics

    async def handle_request(self, request: Request, request_type: Any) -> Any:
        start, status = time.perf_counter(), 200
        request.state.model = ""
        try:
            return await self._admit_and_run(request, request_type)
        except HTTPException as e:
            status = self.status_of(e)
            if isinstance(e, LimitExceeded):
                self.metrics.refused(e.limit)
            raise
        finally:
            self.metrics.request(self.endpoint, request.state.model, status,
                                 time.perf_counter() - start)

    def status_of(self, e: HTTPException) -> int:
        """The status the client gets for ``e`` (for metrics)."""
        return e.status_code

    async def _admit_and_run(self, request: Request, request_type: Any) -> Any:
        request.state.key = self.admission.identify(request)  # 401 before anything is read
        self.admission.charge_request(request.state.key)  # 429 over the key's rate
        self.admission.enter()  # 503 + Retry-After when max_queue requests are in already
        self.metrics.queue_depth(self.admission.in_flight)
        try:
            return await super().handle_request(request, request_type)
        finally:
            self.admission.leave()
            self.metrics.queue_depth(self.admission.in_flight)

    async def _read_body(self, request: Request) -> bytes:
        """The whole body, within the size limit (413), or 400 when the client went away."""
        limit = max_body_bytes(self.cfg)
        body, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
                body.append(chunk)
        except ClientDisconnect:  # normal traffic: one short line, no traceback, nothing queued
            client = f"{request.client.host}:{request.client.port}" if request.client else "?"
            logger.info("client %s disconnected before its request body arrived", client)
            raise HTTPException(400, "client disconnected before the request body arrived") \
                from None
        return b"".join(body)

    async def body(self, request: Request) -> bytes:
        """:meth:`_read_body`, given up with a 503 once the server is stopping: a body that
        has not arrived by then (a half-open or slow client) must not hold the shutdown up."""
        draining = self.server.draining
        reading = asyncio.ensure_future(self._read_body(request))
        while True:
            done, _ = await asyncio.wait({reading}, timeout=DRAIN_POLL_S)
            if done:
                return reading.result()
            if draining is not None and draining.is_set():
                reading.cancel()
                raise HTTPException(503, "server is shutting down; the request body had not "
                                         "arrived; retry", headers={"Retry-After": "1"})

    def validate(self, payload: object) -> TranslateRequest:
        """The body as a request for the worker (``/predict``)."""
        return validate_payload(payload, self.cfg, router=self.catalog.router())

    async def _prepare_request(self, request: Request, request_type: Any) -> dict:
        raw = await self.body(request)
        try:
            req = self.validate(parse_body(raw, self.cfg))
        except RequestError as e:
            raise HTTPException(e.status, e.message) from None
        request.state.model = req.model
        texts = list(req.texts) + list(req.targets or ())
        self.admission.charge_texts(request.state.key, len(req.texts), sum(map(len, texts)))
        return req.to_payload()


class ScoreHandler(TranslatingHandler):
    """``POST /score``."""

    endpoint = "/score"

    def validate(self, payload: object) -> TranslateRequest:
        return validate_score_payload(payload, self.cfg, router=self.catalog.router())


class LibreTranslateHandler(TranslatingHandler):
    """``POST /translate`` in LibreTranslate's request and answer shapes (and its errors:
    ``{"error": "..."}``; a missing key is a 400, an unknown one a 403)."""

    endpoint = "/translate"

    async def handle_request(self, request: Request, request_type: Any) -> Any:
        try:
            return await super().handle_request(request, request_type)
        except HTTPException as e:
            return error_response(e)

    def status_of(self, e: HTTPException) -> int:
        return error_response(e).status_code

    async def _admit_and_run(self, request: Request, request_type: Any) -> Any:
        raw = await self.body(request)  # the key may be in the body: read it first
        try:
            params = await read_params(request, raw, self.cfg)
        except RequestError as e:
            raise HTTPException(e.status, e.message) from None
        key = params.get("api_key")
        request.state.key = self.admission.identify(request, key if isinstance(key, str)
                                                    else None)
        self.admission.charge_request(request.state.key)
        try:
            plan, req = plan_translation(params, self.catalog, self.server.langid, self.cfg)
        except RequestError as e:
            raise HTTPException(e.status, e.message) from None
        chars = sum(len(plan.texts[i]) for i in plan.todo)
        self.admission.charge_texts(request.state.key, len(plan.texts), chars)
        if req is None:  # nothing for the model
            return answer(plan, None)
        request.state.model = req.model
        request.state.payload = req.to_payload()
        self.admission.enter()
        self.metrics.queue_depth(self.admission.in_flight)
        try:
            response = await RegularRequestHandler.handle_request(self, request, request_type)
        finally:
            self.admission.leave()
            self.metrics.queue_depth(self.admission.in_flight)
        return answer(plan, response)

    async def _prepare_request(self, request: Request, request_type: Any) -> dict:
        return request.state.payload


def error_response(e: HTTPException) -> JSONResponse:
    """LibreTranslate's error shape for ``e``: ``{"error": ...}``, the same status and headers
    (a missing key: 400, an unknown key: 403, as LibreTranslate answers them)."""
    status, message = e.status_code, str(e.detail)
    if isinstance(e, KeyRejected):
        status, message = ((400, "Please contact the server operator to get an API key")
                           if e.missing else (403, "Invalid API key"))
    elif status == 429:
        message = f"Slowdown: {message}"
    headers = {k: v for k, v in (e.headers or {}).items() if k != "WWW-Authenticate"}
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


__all__ = ["LibreTranslateHandler", "ScoreHandler", "TranslatingHandler", "error_response"]
