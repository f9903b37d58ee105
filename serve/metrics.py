"""Prometheus metrics of the server (``prometheus-client``), scraped at ``GET /metrics``.

=====================================  ==========================================================
``seq2seq_requests_total``             requests answered, by ``endpoint``, ``model``, ``status``
``seq2seq_request_seconds``            their latency (histogram), by ``endpoint`` and ``model``
``seq2seq_queue_depth``                requests accepted and not yet answered
``seq2seq_limited_total``              requests refused by a key's limit, by ``limit``
``seq2seq_batch_texts``                texts per model call (histogram), by ``model``
``seq2seq_sentences_total``            sentences translated (cache hits included), by ``model``
``seq2seq_tokens_total``               subword tokens translated, by ``model``, ``side``
``seq2seq_cache_hits_total``           sentences answered from the cache, by ``model``
``seq2seq_cache_misses_total``         sentences searched, by ``model``
``seq2seq_models_loaded``              models in memory in the model worker
``seq2seq_model_loads_total``          model loads, by ``model``
=====================================  ==========================================================

The HTTP process and the model worker are separate processes, so the server runs
prometheus-client's multiprocess mode: :func:`use_directory` (before anything else imports
prometheus-client) makes every process write its values to files in one directory, and
``/metrics`` adds them up. Keys are never labels. Without that directory (tests that drive the
worker in-process) each :class:`Metrics` keeps its own registry.
"""

from __future__ import annotations

import os
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TEXTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def use_directory(path: str) -> None:
    """Multiprocess mode: every process started from now on writes its metrics under ``path``
    (call it in the main process before the HTTP process and the worker start)."""
    os.environ[MULTIPROC_ENV] = path


class Metrics:
    """The server's metrics (see the module docstring); every method is a no-op when
    ``enabled`` is false."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        reg = {"registry": self.registry}
        self.requests = Counter("seq2seq_requests", "Requests answered",
                                ["endpoint", "model", "status"], **reg)
        self.latency = Histogram("seq2seq_request_seconds", "Request latency",
                                 ["endpoint", "model"], buckets=SECONDS, **reg)
        self.queue = Gauge("seq2seq_queue_depth", "Requests accepted and not yet answered",
                           multiprocess_mode="livesum", **reg)
        self.limited = Counter("seq2seq_limited", "Requests refused by a key's limit",
                               ["limit"], **reg)
        self.batch = Histogram("seq2seq_batch_texts", "Texts per model call", ["model"],
                               buckets=TEXTS, **reg)
        self.sentences = Counter("seq2seq_sentences", "Sentences translated", ["model"], **reg)
        self.tokens = Counter("seq2seq_tokens", "Subword tokens translated",
                              ["model", "side"], **reg)
        self.cache_hits = Counter("seq2seq_cache_hits", "Sentences answered from the cache",
                                  ["model"], **reg)
        self.cache_misses = Counter("seq2seq_cache_misses", "Sentences searched", ["model"],
                                    **reg)
        self.loaded = Gauge("seq2seq_models_loaded", "Models in memory",
                            multiprocess_mode="livesum", **reg)
        self.loads = Counter("seq2seq_model_loads", "Model loads", ["model"], **reg)

    def request(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        """One answered request."""
        if self.enabled:
            self.requests.labels(endpoint, model, str(status)).inc()
            self.latency.labels(endpoint, model).observe(seconds)

    def queue_depth(self, n: int) -> None:
        if self.enabled:
            self.queue.set(n)

    def refused(self, limit: str) -> None:
        if self.enabled:
            self.limited.labels(limit).inc()

    def model_call(self, model: str, texts: int) -> None:
        if self.enabled:
            self.batch.labels(model).observe(texts)

    def translated(self, model: str, sentences: int, src_tokens: int, tgt_tokens: int) -> None:
        if self.enabled:
            self.sentences.labels(model).inc(sentences)
            self.tokens.labels(model, "source").inc(src_tokens)
            self.tokens.labels(model, "target").inc(tgt_tokens)

    def cache(self, model: str, hits: int, misses: int) -> None:
        if self.enabled:
            self.cache_hits.labels(model).inc(hits)
            self.cache_misses.labels(model).inc(misses)

    def models(self, loaded: list[str], new: str | None = None) -> None:
        """The models in memory now (``new``: just loaded)."""
        if self.enabled:
            self.loaded.set(len(loaded))
            if new is not None:
                self.loads.labels(new).inc()

    def exposition(self) -> tuple[bytes, str]:
        """``(body, content type)`` of a scrape: every process's values in multiprocess mode,
        this object's otherwise."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry: Any = getattr(self, "registry", None)
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return (generate_latest(registry) if registry is not None else b""), CONTENT_TYPE_LATEST


__all__ = ["MULTIPROC_ENV", "Metrics", "use_directory"]
