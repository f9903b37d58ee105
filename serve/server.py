"""The litserve HTTP server translating with a checkpoint bundle, behind ``seq2seq-serve``
(whose command line, Hydra overrides as in the other commands, is parsed in
:mod:`seq2seq.cli.serve`)::

    seq2seq-serve checkpoint=runs/default/checkpoints/best.pt port=8001 max_batch_size=32 \\
        batch_timeout=0.02 search.beam_size=5
    seq2seq-serve checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]  # ensemble

Endpoints:

* ``POST /predict`` -- ``{"text": "..."}`` or ``{"texts": [...]}`` plus optional ``beam_size``,
  ``n_best``, ``max_length``, ``return_alignment``, ``return_scores``, ``split_sentences``,
  ``target_prefix``; answers ``{"translations": [...]}``.
* ``POST /score`` -- ``{"source": "...", "target": "..."}`` or ``{"sources": [...],
  "targets": [...]}`` plus ``token_scores``; answers ``{"scores": [{"log_prob", "score"}]}``.
  Bodies are validated here, in the HTTP process, before they are queued (see
  :mod:`serve.validation`), so a bad request gets a 4xx and never joins a batch; both endpoints
  share the key check, the bounded queue and the model worker.
* ``GET /health`` -- 200 ``ok`` once the model worker has loaded the bundle, 503 before.
* ``GET /info`` -- model config, languages, vocabulary sizes, checkpoint step, dev BLEU, limits.
* ``GET /`` and ``GET /demo`` -- the demo page (text box, translate button, attention heat map).
* ``GET /openapi.json``, ``GET /docs`` -- the OpenAPI schema and its browser.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import litserve as ls
import torch
from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from litserve.callbacks import EventTypes
from litserve.server import RegularRequestHandler
from starlette.requests import ClientDisconnect

from seq2seq.checkpoint import bundle_paths
from seq2seq.config import SearchConfig, ServeConfig, plain
from seq2seq.runtime import precision_reason
from serve.admission import Admission, load_api_keys
from serve.api import TranslatorAPI
from serve.process import ServerProcess, free_port
from serve.schemas import ScoreBody, ScoreResponse, TranslateBody, TranslateResponse
from serve.shutdown import install_graceful_stop
from serve.validation import (
    RequestError,
    max_body_bytes,
    parse_body,
    token_counter,
    validate_payload,
    validate_score_payload,
)

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DRAIN_POLL_S = 0.1  # how often a body still being read checks whether the server is stopping


@dataclass(repr=False)  # ServeConfig's repr, which hides the API keys
class ServeJobConfig(ServeConfig):
    """Top-level config of ``seq2seq-serve``: the :class:`ServeConfig` fields, plus these.

    Attributes:
        checkpoint: bundle to serve (required), or a list of bundles: an ensemble.
        search: default search options; requests may override beam_size, n_best, max_length
            and return_alignment within the server's limits.
    """

    checkpoint: Any = "???"
    search: SearchConfig = field(default_factory=SearchConfig)


def model_info(checkpoint: str | Path | list[str]) -> tuple[dict[str, Any], Any]:
    """Read a bundle's description and source tokenizer (in the HTTP process).

    Args:
        checkpoint: bundle path, or a list of them (an ensemble: the first one's description,
            every member in ``ensemble``, their parameters summed).

    Returns:
        ``(info, src_tokenizer)``; ``info`` has the keys of ``Translator.info()`` except device.

    Raises:
        ValueError: ensemble members with different sentencepiece models.
    """
    from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
    from seq2seq.inference.description import describe_bundle, ensemble_meta
    from seq2seq.inference.ensemble import check_same_vocabulary

    paths = bundle_paths(checkpoint)
    bundles = [load_bundle(p, map_location="cpu") for p in paths]
    toks = [tokenizers_from_bundle(b) for b in bundles]
    check_same_vocabulary(toks, paths)
    info = describe_bundle(bundles[0], paths[0])
    if len(bundles) > 1:
        info["ensemble"] = ensemble_meta([dict(b.get("meta") or {}) for b in bundles],
                                         paths)["ensemble"]
        info["parameters"] = sum(describe_bundle(b, p)["parameters"]
                                 for b, p in zip(bundles, paths, strict=True))
    return info, toks[0][0]


class ValidatingRequestHandler(RegularRequestHandler):
    """litserve's request handler with the body read and validated before it is queued.

    Args:
        lit_api: the model worker's API.
        server: the server (tokenizer, admission).
        task: ``"translate"`` (``/predict``) or ``"score"`` (``/score``).
    """

    def __init__(self, lit_api: TranslatorAPI, server: TranslationServer,
                 task: str = "translate") -> None:
        super().__init__(lit_api, server)
        self.task = task
        self.cfg = lit_api.serve_cfg
        self.default_beam = lit_api.search_cfg.beam_size
        tok = server.src_tokenizer
        lang = server.model_description.get("src_lang") or "en"
        self.count_tokens = token_counter(tok, lang) if tok is not None else None
        self.admission = server.admission

    async def handle_request(self, request: Request, request_type: Any) -> Any:
        self.admission.check_key(request)  # 401 before anything is read
        self.admission.enter()  # 503 + Retry-After when max_queue requests are in already
        try:
            return await super().handle_request(request, request_type)
        finally:
            self.admission.leave()

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

    async def _body_unless_draining(self, request: Request) -> bytes:
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

    async def _prepare_request(self, request: Request, request_type: Any) -> dict:
        body = await self._body_unless_draining(request)
        try:
            payload = parse_body(body, self.cfg)
            if self.task == "score":
                req = validate_score_payload(payload, self.cfg, self.count_tokens)
            else:
                req = validate_payload(payload, self.cfg, self.count_tokens, self.default_beam)
        except RequestError as e:
            raise HTTPException(e.status, e.message) from None
        return req.to_payload()


class TranslationServer(ls.LitServer):
    """A :class:`litserve.LitServer` with validated ``/predict``, model ``/info`` and the demo.

    Args:
        api: the translation API.
        info: model description for ``/info`` (from :func:`model_info`).
        src_tokenizer: counts source subwords for the token limit (None: not checked).
        **kwargs: passed to :class:`litserve.LitServer`.
    """

    def __init__(self, api: TranslatorAPI, info: dict[str, Any], src_tokenizer: Any = None,
                 **kwargs: Any) -> None:
        self.model_description = info
        self.src_tokenizer = src_tokenizer
        self.admission = Admission(load_api_keys(api.serve_cfg.api_keys), api.serve_cfg.max_queue)
        self.draining: Any = None  # made in _start_server, before the HTTP processes fork
        super().__init__(api, info_path="/server-info", **kwargs)
        self.uvicorn_graceful_timeout = api.serve_cfg.shutdown_grace  # litserve's is 30 s

    def _start_server(self, *args: Any, **kwargs: Any) -> dict:
        self.draining = mp.get_context("fork").Event()  # inherited by the forked HTTP processes
        workers = super()._start_server(*args, **kwargs)  # the HTTP processes are forked here
        install_graceful_stop(list(workers.values()), self._shutdown_event.set,
                              grace=self.uvicorn_graceful_timeout, draining=self.draining)
        return workers

    def _register_internal_endpoints(self) -> None:
        super()._register_internal_endpoints()
        # litserve answers "/" with "litserve running": the demo page takes its place
        self.app.router.routes = [r for r in self.app.router.routes
                                  if getattr(r, "path", None) != "/"]
        page = STATIC_DIR / "index.html"

        async def demo() -> FileResponse:
            return FileResponse(page, media_type="text/html")

        self.app.add_api_route("/", demo, methods=["GET"], include_in_schema=False)
        self.app.add_api_route("/demo", demo, methods=["GET"], summary="Demo page")

        async def info() -> JSONResponse:
            api: TranslatorAPI = self.lit_api
            return JSONResponse({
                "model": self.model_description,
                "search": plain(api.search_cfg),
                "limits": {k: getattr(api.serve_cfg, k) for k in (
                    "max_chars", "max_tokens", "max_texts", "max_beam_size", "max_n_best",
                    "max_length", "max_queue", "timeout", "shutdown_grace")},
                "auth": self.admission.auth,
                "precision": precision_reason(api.serve_cfg.precision, torch.device(
                    "cuda" if accelerator() != "cpu" else "cpu")),
                "batching": {"max_batch_size": api.max_batch_size,
                             "batch_timeout": api.batch_timeout,
                             "length_group_ratio": api.serve_cfg.length_group_ratio},
                "server": {"devices": self.devices, "workers_per_device": self.workers_per_device,
                           "timeout": self.timeout},
            })

        self.app.add_api_route("/info", info, methods=["GET"],
                               summary="Model config, languages, vocab sizes, step, dev BLEU")

    def _register_api_endpoints(self, lit_api: TranslatorAPI, request_type: Any,
                                response_type: Any) -> None:
        self._callback_runner.trigger_event(EventTypes.ON_SERVER_START.value, litserver=self)
        handler = ValidatingRequestHandler(lit_api, self)
        scorer = ValidatingRequestHandler(lit_api, self, task="score")

        async def predict(request: Request) -> dict:
            return await handler.handle_request(request, Request)

        async def score(request: Request) -> dict:
            return await scorer.handle_request(request, Request)

        error = {"description": "invalid request", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}}}
        for path, endpoint, body, answer, summary in (
                (lit_api.api_path, predict, TranslateBody, TranslateResponse,
                 "Translate one text or a list of texts"),
                ("/score", score, ScoreBody, ScoreResponse,
                 "The model's log-probability of given translations")):
            self.app.add_api_route(
                path, endpoint, methods=["POST"], response_model=answer,
                response_model_exclude_none=True, summary=summary,
                openapi_extra={"requestBody": {"required": True, "content": {
                    "application/json": {"schema": body.model_json_schema()}}}},
                responses={k: error for k in (400, 401, 413, 422, 503, 504)})


def accelerator() -> str:
    """``"auto"`` (CUDA) when a GPU is present, else ``"cpu"``."""
    import torch

    return "auto" if torch.cuda.is_available() else "cpu"


def build_server(checkpoint: str | Path | list[str], serve_cfg: ServeConfig,
                 search_cfg: SearchConfig) -> TranslationServer:
    """Assemble the server (the model itself is loaded by the worker's ``setup``).

    Args:
        checkpoint: bundle path, or a list of them (an ensemble).
        serve_cfg: limits, batching, host/port.
        search_cfg: default search options.

    Returns:
        A server ready to ``run(host, port)``.
    """
    info, src_tok = model_info(checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "batch/unbatch without max_batch_size"
        paths = bundle_paths(checkpoint)
        api = TranslatorAPI(paths if len(paths) > 1 else paths[0], serve_cfg, search_cfg)
    return TranslationServer(
        api,
        info,
        src_tok,
        accelerator=accelerator(),
        workers_per_device=serve_cfg.workers_per_device,
        timeout=serve_cfg.timeout,
    )


def serve(cfg: ServeJobConfig) -> None:
    """Build the server for ``cfg`` and run it until interrupted."""
    serve_cfg = ServeConfig(**{f.name: getattr(cfg, f.name) for f in fields(ServeConfig)})
    server = build_server(cfg.checkpoint, serve_cfg, cfg.search)
    logger.info("serving %s on http://%s:%d", cfg.checkpoint, cfg.host, cfg.port)
    server.run(host=cfg.host, port=cfg.port, log_level=cfg.log_level,
               generate_client_file=False, num_api_servers=1)


__all__ = ["ServeJobConfig", "ServerProcess", "TranslationServer", "build_server",
           "free_port", "model_info", "serve"]
