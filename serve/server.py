"""The litserve HTTP server behind ``seq2seq-serve`` (whose command line, Hydra overrides as in the
other commands, is parsed in :mod:`seq2seq.cli.serve`)::

    seq2seq-serve checkpoint=runs/default/checkpoints/best.pt port=8001 search.beam_size=5
    seq2seq-serve checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]  # ensemble
    seq2seq-serve models=models.yaml max_loaded=2             # many models (serve/catalog.py)

Endpoints:

* ``POST /predict`` -- ``{"text": "..."}`` or ``{"texts": [...]}`` plus optional ``model`` (or
  ``src_lang`` + ``tgt_lang``), ``beam_size``, ``n_best``, ``max_length``, ``return_alignment``,
  ``return_scores``, ``split_sentences``, ``target_prefix``; answers ``{"translations": [...]}``.
* ``POST /score`` -- ``{"source": "...", "target": "..."}`` or ``{"sources": [...],
  "targets": [...]}`` plus ``model`` and ``token_scores``; answers ``{"scores": [...]}``.
* The LibreTranslate API (:mod:`serve.libretranslate`): ``POST /translate``, ``POST /detect``,
  ``GET /languages``, ``GET /frontend/settings``.
* ``GET /models`` -- the served models (id, languages, search defaults, loaded or not).
* ``GET /health`` -- 200 ``ok`` once the model worker has started, 503 before.
* ``GET /info`` -- a model's config, languages, vocabulary sizes, step, dev BLEU
  (``?model=ID``; default: the first model), the server's limits, batching and precision.
* ``GET /metrics`` -- Prometheus metrics (:mod:`serve.metrics`).
* ``GET /`` and ``GET /demo`` -- the demo page; ``GET /openapi.json``, ``GET /docs``.

Requests are checked in the HTTP process before they are queued (:mod:`serve.handlers`), so a
bad request gets a 4xx and never joins a batch; every translating endpoint shares the key
check, the per-key limits, the bounded queue and the one model worker, which holds every model.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import litserve as ls
import torch
from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from litserve.callbacks import EventTypes

from seq2seq.config import SearchConfig, ServeConfig, plain
from seq2seq.runtime import precision_reason
from serve.admission import Admission, load_api_keys
from serve.answers import ScoreResponse, TranslateResponse
from serve.api import TranslatorAPI
from serve.catalog import Catalog, ModelSpec, read_models_file, single_model
from serve.handlers import LibreTranslateHandler, ScoreHandler, TranslatingHandler, error_response
from serve.langid import LanguageIdentifier
from serve.libretranslate import detect, frontend_settings, languages, read_params
from serve.metrics import Metrics, use_directory
from serve.process import ServerProcess, free_port
from serve.schemas import ScoreBody, TranslateBody
from serve.shutdown import install_graceful_stop, manager_ignoring_sigterm
from serve.validation import RequestError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
METRICS_TOKEN_ENV = "SEQ2SEQ_METRICS_TOKEN"
LIMIT_KEYS = ("max_chars", "max_tokens", "max_texts", "max_request_chars", "max_beam_size",
              "max_n_best", "max_length", "max_queue", "timeout", "shutdown_grace")


@dataclass(repr=False)  # ServeConfig's repr, which hides the API keys
class ServeJobConfig(ServeConfig):
    """Top-level config of ``seq2seq-serve``: the :class:`ServeConfig` fields, plus these.

    Attributes:
        checkpoint: the bundle to serve, or a list of bundles: an ensemble (one model).
        models: instead, a YAML file of models to serve (:mod:`serve.catalog`).
        search: default search options; requests may override beam_size, n_best, max_length
            and return_alignment within the server's limits, a models file per model.
    """

    checkpoint: Any = None
    models: str | None = None
    search: SearchConfig = field(default_factory=SearchConfig)


def model_specs(cfg: ServeJobConfig) -> list[ModelSpec]:
    """The models ``cfg`` serves (languages not yet read from the bundles).

    Raises:
        ValueError: neither or both of ``checkpoint`` and ``models``; a bad models file.
    """
    if (cfg.checkpoint is None) == (cfg.models is None):
        raise ValueError("give the bundle to serve (checkpoint=PATH, or a list: an ensemble) "
                         "or a models file (models=FILE), not both")
    serve_cfg = ServeConfig(**{f.name: getattr(cfg, f.name) for f in fields(ServeConfig)})
    if cfg.models is not None:
        return read_models_file(cfg.models, serve_cfg, cfg.search)
    return [single_model(cfg.checkpoint, serve_cfg, cfg.search)]


def accelerator() -> str:
    """``"auto"`` (CUDA) when a GPU is present, else ``"cpu"``."""
    return "auto" if torch.cuda.is_available() else "cpu"


class TranslationServer(ls.LitServer):
    """A :class:`litserve.LitServer` with the translating endpoints, LibreTranslate's, model
    listings, metrics and the demo page.

    Args:
        api: the model worker's API.
        catalog: the served models (read at startup).
        **kwargs: passed to :class:`litserve.LitServer`.
    """

    def __init__(self, api: TranslatorAPI, catalog: Catalog, **kwargs: Any) -> None:
        cfg = api.serve_cfg
        self.catalog = catalog
        self.admission = Admission(load_api_keys(cfg.api_keys), cfg.max_queue)
        self.http_metrics = Metrics(cfg.metrics)
        self.metrics_token = cfg.metrics_token or os.environ.get(METRICS_TOKEN_ENV) or None
        codes = [c for s in catalog.specs for c in (s.source, s.target)]
        self.langid = LanguageIdentifier(codes)
        self.draining: Any = None  # made in _start_server, before the HTTP processes fork
        middlewares = kwargs.pop("middlewares", None) or []
        if cfg.cors_origins:
            from fastapi.middleware.cors import CORSMiddleware

            middlewares.append((CORSMiddleware, {
                "allow_origins": list(cfg.cors_origins), "allow_methods": ["GET", "POST"],
                "allow_headers": ["Authorization", "Content-Type"], "max_age": 86400}))
        super().__init__(api, info_path="/server-info", middlewares=middlewares, **kwargs)
        self.uvicorn_graceful_timeout = cfg.shutdown_grace  # litserve's is 30 s

    def _start_server(self, *args: Any, **kwargs: Any) -> dict:
        self.draining = mp.get_context("fork").Event()  # inherited by the forked HTTP processes
        workers = super()._start_server(*args, **kwargs)  # the HTTP processes are forked here
        install_graceful_stop(list(workers.values()), self._shutdown_event.set,
                              grace=self.uvicorn_graceful_timeout, draining=self.draining,
                              may_stop=self.lit_api.may_stop)
        return workers

    def _init_manager(self, num_api_servers: int) -> Any:
        with manager_ignoring_sigterm():  # the manager outlives a SIGTERM sent to all processes
            return super()._init_manager(num_api_servers)

    def info(self, model: str | None) -> dict[str, Any]:
        """``GET /info``: one model's description and the server's settings."""
        api: TranslatorAPI = self.lit_api
        served = self.catalog.resolve(model=model) if model is not None else self.catalog.default
        cfg = api.serve_cfg
        return {
            "model": {**served.info, "id": served.spec.id,
                      "loaded": served.spec.id in (api.loaded() or ())},
            "models": [m.spec.id for m in self.catalog.models.values()],
            "search": plain(served.spec.search),
            "limits": {k: getattr(cfg, k) for k in LIMIT_KEYS},
            "auth": self.admission.auth,
            "precision": precision_reason(served.spec.precision, torch.device(
                "cuda" if accelerator() != "cpu" else "cpu")),
            "batching": {"max_batch_size": api.max_batch_size, "batch_timeout": api.batch_timeout,
                         "length_group_ratio": cfg.length_group_ratio},
            "cache": {"size": cfg.cache_size},
            "server": {"devices": self.devices, "workers_per_device": self.workers_per_device,
                       "timeout": self.timeout, "max_loaded": cfg.max_loaded},
        }

    def _register_internal_endpoints(self) -> None:
        super()._register_internal_endpoints()
        # litserve answers "/" with "litserve running": the demo page takes its place
        self.app.router.routes = [r for r in self.app.router.routes
                                  if getattr(r, "path", None) != "/"]
        page = STATIC_DIR / "index.html"

        async def demo() -> FileResponse:
            return FileResponse(page, media_type="text/html")

        async def info(model: str | None = None) -> JSONResponse:
            try:
                return JSONResponse(self.info(model))
            except RequestError as e:
                raise HTTPException(e.status, e.message) from None

        async def models() -> JSONResponse:
            return JSONResponse({"models": self.catalog.listing(self.lit_api.loaded())})

        async def metrics(request: Request) -> Response:
            if self.metrics_token and request.headers.get("authorization", "") != \
                    f"Bearer {self.metrics_token}":
                raise HTTPException(401, "metrics need 'Authorization: Bearer <token>'",
                                    headers={"WWW-Authenticate": "Bearer"})
            body, ctype = self.http_metrics.exposition()
            return Response(body, media_type=ctype)

        route = self.app.add_api_route
        route("/", demo, methods=["GET"], include_in_schema=False)
        route("/demo", demo, methods=["GET"], summary="Demo page")
        route("/info", info, methods=["GET"], summary="A model's config, languages, step, dev "
                                                      "BLEU; the server's limits")
        route("/models", models, methods=["GET"], summary="The served models")
        if self.lit_api.serve_cfg.metrics:
            route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
        self._register_libretranslate_info()

    def _register_libretranslate_info(self) -> None:
        """LibreTranslate's endpoints that need no model: languages, settings, detection."""
        route = self.app.add_api_route
        keys_required = self.admission.auth != "none"

        async def lt_languages() -> JSONResponse:
            return JSONResponse(languages(self.catalog))

        async def lt_settings() -> JSONResponse:
            return JSONResponse(frontend_settings(self.catalog, self.lit_api.serve_cfg,
                                                  keys_required))

        async def lt_detect(request: Request) -> Response:
            handler = TranslatingHandler(self.lit_api, self, "/detect")
            try:
                params = await read_params(request, await handler.body(request),
                                           self.lit_api.serve_cfg)
                key = params.get("api_key")
                idx = self.admission.identify(request, key if isinstance(key, str) else None)
                self.admission.charge_request(idx)
                return JSONResponse(detect(params, self.langid))
            except RequestError as e:
                return error_response(HTTPException(e.status, e.message))
            except HTTPException as e:
                return error_response(e)

        async def lt_disabled(request: Request) -> Response:
            if request.url.path == "/suggest":
                return JSONResponse({"error": "Suggestions are disabled on this server."}, 403)
            return JSONResponse({"error": "Files translation are disabled on this server."}, 400)

        tags = ["LibreTranslate"]
        route("/languages", lt_languages, methods=["GET"], tags=tags,
              summary="Supported languages (LibreTranslate)")
        route("/frontend/settings", lt_settings, methods=["GET"], tags=tags,
              summary="Frontend settings (LibreTranslate)")
        route("/detect", lt_detect, methods=["POST"], tags=tags,
              summary="Detect the language of a text (LibreTranslate)")
        for path in ("/suggest", "/translate_file"):
            route(path, lt_disabled, methods=["POST"], tags=tags, include_in_schema=False)

    def _register_api_endpoints(self, lit_api: TranslatorAPI, request_type: Any,
                                response_type: Any) -> None:
        self._callback_runner.trigger_event(EventTypes.ON_SERVER_START.value, litserver=self)
        handlers = {"/predict": TranslatingHandler(lit_api, self, "/predict"),
                    "/score": ScoreHandler(lit_api, self, "/score"),
                    "/translate": LibreTranslateHandler(lit_api, self, "/translate")}

        def endpoint(handler: TranslatingHandler) -> Any:
            async def run(request: Request) -> Any:
                return await handler.handle_request(request, Request)
            return run

        error = {"description": "invalid request", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}}}
        for path, body, answer, summary in (
                ("/predict", TranslateBody, TranslateResponse,
                 "Translate one text or a list of texts"),
                ("/score", ScoreBody, ScoreResponse,
                 "The model's log-probability of given translations")):
            self.app.add_api_route(
                path, endpoint(handlers[path]), methods=["POST"], response_model=answer,
                response_model_exclude_none=True, summary=summary,
                openapi_extra={"requestBody": {"required": True, "content": {
                    "application/json": {"schema": body.model_json_schema()}}}},
                responses={k: error for k in (400, 401, 413, 422, 429, 503, 504)})
        self.app.add_api_route("/translate", endpoint(handlers["/translate"]), methods=["POST"],
                               tags=["LibreTranslate"], summary="Translate text (LibreTranslate)")


def build_server(specs: list[ModelSpec], serve_cfg: ServeConfig) -> TranslationServer:
    """Assemble the server (the models are loaded by the worker's ``setup``).

    Args:
        specs: the models to serve (:func:`model_specs`); the first is the default.
        serve_cfg: limits, batching, host/port, keys, cache, metrics.

    Returns:
        A server ready to ``run(host, port)``.
    """
    catalog = Catalog(specs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "batch/unbatch without max_batch_size"
        api = TranslatorAPI(catalog.specs, serve_cfg)
    api.share_loaded()
    return TranslationServer(api, catalog, accelerator=accelerator(),
                             workers_per_device=serve_cfg.workers_per_device,
                             timeout=serve_cfg.timeout)


def serve(cfg: ServeJobConfig) -> None:
    """Build the server for ``cfg`` and run it until interrupted."""
    serve_cfg = ServeConfig(**{f.name: getattr(cfg, f.name) for f in fields(ServeConfig)})
    if serve_cfg.metrics:  # before the HTTP process and the worker start (serve/metrics.py)
        directory = tempfile.mkdtemp(prefix="seq2seq-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        use_directory(directory)
    server = build_server(model_specs(cfg), serve_cfg)
    logger.info("serving %s on http://%s:%d", server.catalog.served(), cfg.host, cfg.port)
    server.run(host=cfg.host, port=cfg.port, log_level=cfg.log_level,
               generate_client_file=False, num_api_servers=1)


__all__ = ["ServeJobConfig", "ServerProcess", "TranslationServer", "accelerator", "build_server",
           "free_port", "model_specs", "serve"]
