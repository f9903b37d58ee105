"""The model worker's sentence cache: a translated sentence is not searched again.

Documents repeat headers, footers and boilerplate, and clients resend what they sent. Every
sentence a model translates is kept, keyed by the model, the sentence, its target prefix, the
glossary and every search option that can change the output (not the batch size: search is batch-invariant,
so a sentence's translation does not depend on what it was searched with). A repeated sentence
is answered from the cache (a sentence repeated within one call is searched once) and the others
are searched together: the tokens are what searching again gives, the scores too up to the
floating-point noise of batched kernels (``tests/test_cache.py``), and a repeated request gets
the same bytes. Least recently used entries are dropped beyond ``cache_size`` (``seq2seq-serve
cache_size=N``; 0 = off: every call goes to the translator as it is).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from seq2seq.config import SearchConfig

OUTPUT_NEUTRAL = frozenset({"batch_size", "batch_tokens"})  # never change a translation


def search_key(cfg: SearchConfig) -> tuple:
    """The search options that can change a translation."""
    return tuple((f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                 if f.name not in OUTPUT_NEUTRAL)


class SentenceCache:
    """An LRU map of ``(model, search options, prefix, sentence)`` to its Translation.

    Args:
        size: entries kept (0 = nothing is kept).

    Attributes:
        hits, misses: sentences answered from the cache / searched, since the start.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def bind(self, translate: Callable[..., list], model: str) -> Callable[..., list]:
        """``translate`` (a :meth:`Translator.translate`) with this cache in front, for
        ``model``: same arguments, same results."""
        def cached(texts: Sequence[str], cfg: SearchConfig, progress: Any = None,
                   first_index: int = 0, labels: Sequence[str] | None = None,
                   prefixes: Sequence[str | None] | None = None, glossary: Any = None) -> list:
            if not self.size:
                self.misses += len(texts)
                return translate(texts, cfg, progress=progress, first_index=first_index,
                                 labels=labels, prefixes=prefixes, glossary=glossary)
            texts = list(texts)
            pre = list(prefixes) if prefixes is not None else [None] * len(texts)
            base = (model, search_key(cfg), glossary.key if glossary else ())
            keys = [(*base, p or "", t) for t, p in zip(texts, pre, strict=True)]
            out: list = [self._get(k) for k in keys]
            first: dict[tuple, int] = {}  # each missing sentence searched once per call
            for i, r in enumerate(out):
                if r is None:
                    first.setdefault(keys[i], i)
            todo = list(first.values())
            self.hits += len(texts) - len(todo)
            self.misses += len(todo)
            if todo:
                found = translate([texts[i] for i in todo], cfg, progress=progress,
                                  first_index=first_index,
                                  labels=[labels[i] for i in todo] if labels else None,
                                  prefixes=[pre[i] for i in todo] if prefixes is not None
                                  else None, glossary=glossary)
                for i, tr in zip(todo, found, strict=True):
                    self._put(keys[i], tr)
                searched = dict(zip(todo, found, strict=True))
                out = [r if r is not None else searched[first[keys[i]]]
                       for i, r in enumerate(out)]
            elif progress is not None:
                progress(len(texts))
            return out
        return cached

    def _get(self, key: tuple) -> Any:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def _put(self, key: tuple, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


__all__ = ["SentenceCache", "search_key"]
