"""The model worker's translators: every served model in one worker process, loaded when it is
needed and unloaded when it is not.

A model marked ``preload`` is loaded when the worker starts (in the order of the models file),
the others on their first request. At most ``max_loaded`` are in memory at once: loading one
more first unloads the least recently used. A model with ``idle_unload`` seconds is unloaded
once it has had no request for that long (checked between batches). More models never mean
more worker processes: one worker holds them all and a batch never mixes models
(:mod:`serve.batching` groups by model).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from serve.catalog import ModelSpec

logger = logging.getLogger(__name__)


def _trim_heap() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; elsewhere a no-op):
    without it the unloaded weights' pages stay in the process as free heap."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class ModelRegistry:
    """Translators by model id.

    Args:
        specs: the served models (their languages filled in).
        device: where models are loaded (``"cpu"``, ``"cuda:0"``).
        max_loaded: models in memory at once (0 = all).
        load: ``spec -> translator`` (default: the spec's bundle(s) as a
            :class:`~seq2seq.inference.translator.Translator` on ``device``).
        clock: monotonic seconds (tests replace it).
        on_change: called after every load or unload with the ids loaded and the id just
            loaded (None after an unload); for metrics.
    """

    def __init__(self, specs: Sequence[ModelSpec], device: str = "cpu", max_loaded: int = 0,
                 load: Callable[[ModelSpec], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[list[str], str | None], None] | None = None) -> None:
        self.specs = {s.id: s for s in specs}
        self.device = device
        self.max_loaded = int(max_loaded)
        self._load = load or self._from_bundles
        self._clock = clock
        self._on_change = on_change
        self._loaded: OrderedDict[str, Any] = OrderedDict()  # least recently used first
        self._used: dict[str, float] = {}

    def _from_bundles(self, spec: ModelSpec) -> Any:
        from seq2seq.inference.translator import Translator

        paths = list(spec.checkpoint)
        return Translator.from_checkpoint(paths if len(paths) > 1 else paths[0],
                                          device=self.device, precision=spec.precision)

    @property
    def loaded(self) -> list[str]:
        """Ids of the models in memory, least recently used first."""
        return list(self._loaded)

    def preload(self) -> None:
        """Load the ``preload`` models (in order; no more than ``max_loaded``)."""
        for spec in self.specs.values():
            if spec.preload and (not self.max_loaded or len(self._loaded) < self.max_loaded):
                self.get(spec.id)

    def get(self, model: str) -> Any:
        """The translator of ``model``, loaded first if it is not (unloading the least recently
        used one when ``max_loaded`` are in memory).

        Raises:
            KeyError: a model that is not served.
        """
        spec = self.specs[model]
        self._used[model] = self._clock()
        found = self._loaded.get(model)
        if found is not None:
            self._loaded.move_to_end(model)
            return found
        while self.max_loaded and len(self._loaded) >= self.max_loaded:
            self.unload(next(iter(self._loaded)), "least recently used")
        start = time.perf_counter()
        self._loaded[model] = translator = self._load(spec)
        logger.info("loaded model %s (%s) in %.1f s", model, spec.pair,
                    time.perf_counter() - start)
        self._changed(model)
        return translator

    def unload(self, model: str, why: str) -> None:
        """Drop ``model`` from memory (a no-op when it is not loaded)."""
        if self._loaded.pop(model, None) is None:
            return
        gc.collect()  # the weights' memory goes back now, not at some later collection
        _trim_heap()
        logger.info("unloaded model %s (%s)", model, why)
        self._changed(None)

    def unload_idle(self) -> None:
        """Unload every model idle for its ``idle_unload`` seconds or more."""
        now = self._clock()
        for model in list(self._loaded):
            idle = self.specs[model].idle_unload
            if idle > 0 and now - self._used.get(model, now) >= idle:
                self.unload(model, f"idle for {idle:g} s")

    def _changed(self, new: str | None) -> None:
        if self._on_change is not None:
            self._on_change(self.loaded, new)


__all__ = ["ModelRegistry"]
