"""Tests for serve/cache.py: a repeated sentence is answered from the cache with what searching
it again gives; the options that change a translation are part of the key.

Search is batch-invariant, so a sentence's tokens do not depend on what it is searched with;
its scores and attention do, by the floating-point noise of the model's batched kernels (a
GEMM of 3 rows and one of 8 round differently), here well under 1e-5."""

from __future__ import annotations

from dataclasses import replace

import pytest

from seq2seq.config import SearchConfig
from seq2seq.data import read_lines
from seq2seq.inference.documents import translate_documents
from serve.cache import SentenceCache, search_key

CFG = SearchConfig(beam_size=3, n_best=2, max_len_a=1.0, max_len_b=5, return_scores=True,
                   return_alignment=True)


@pytest.fixture(scope="module")
def sentences(tiny_corpus) -> list[str]:
    return read_lines(tiny_corpus["src_test"])[:8]


def same(a, b) -> None:
    """Equal texts and tokens; equal numbers up to the batched kernels' noise."""
    x, y = a.to_dict(), b.to_dict()
    for k in ("text", "tokens", "src_pieces", "tgt_pieces", "truncated_from"):
        assert x[k] == y[k]
    assert [t for t, _ in x["n_best"]] == [t for t, _ in y["n_best"]]
    numbers = lambda d: [d["score"], d["log_prob"], *d["token_scores"],  # noqa: E731
                         *[s for _, s in d["n_best"]], *[v for r in d["alignment"] for v in r]]
    assert numbers(x) == pytest.approx(numbers(y), abs=1e-5)


def test_cached_answers_equal_searching_again(translator, sentences, one_thread) -> None:
    """Three passes with shifting overlaps: every answer equals the uncached translation
    (text, tokens, n-best, scores, alignment), whatever was searched with it."""
    cache = SentenceCache(100)
    cached = cache.bind(translator.translate, "m")
    plain = {s: translator.translate([s], CFG)[0] for s in sentences}
    for texts in (sentences[:5], sentences[3:], [sentences[6], sentences[0], sentences[6]]):
        for s, got in zip(texts, cached(texts, CFG), strict=True):
            same(got, plain[s])
    assert (cache.hits, cache.misses) == (2 + 3, 5 + 3)  # 3..4 again; then all three again
    assert len(cache) == 8


def test_documents_reuse_the_cache(translator, sentences, one_thread) -> None:
    cache = SentenceCache(100)
    cached = cache.bind(translator.translate, "m")
    doc = f"{sentences[0]} {sentences[1]}\n\n{sentences[0]}"
    first = translate_documents(cached, [doc, doc], "de", CFG)
    assert (cache.hits, cache.misses) == (4, 2)  # five sentences, two distinct... six in all
    again = translate_documents(cached, [doc], "de", CFG)
    uncached = translate_documents(translator.translate, [doc], "de", CFG)
    assert again[0].text == first[0].text == uncached[0].text
    assert (cache.hits, cache.misses) == (7, 2)


def test_what_changes_a_translation_is_part_of_the_key(translator, sentences) -> None:
    cache = SentenceCache(100)
    cached = cache.bind(translator.translate, "m")
    cached(sentences[:1], CFG)
    cached(sentences[:1], replace(CFG, batch_size=1, batch_tokens=50))  # same translation
    assert (cache.hits, cache.misses) == (1, 1)
    cached(sentences[:1], replace(CFG, beam_size=2))
    cached(sentences[:1], CFG, prefixes=["And"])
    cache.bind(translator.translate, "other")(sentences[:1], CFG)
    assert (cache.hits, cache.misses) == (1, 4)
    assert search_key(CFG) != search_key(replace(CFG, alpha=0.5))
    assert search_key(CFG) == search_key(replace(CFG, batch_size=3))


def test_least_recently_used_entries_go_and_size_0_keeps_nothing(translator, sentences) -> None:
    cache = SentenceCache(2)
    cached = cache.bind(translator.translate, "m")
    cached(sentences[:2], CFG)
    cached(sentences[:1], CFG)  # sentence 0 is now the most recent
    cached(sentences[2:3], CFG)  # sentence 1 goes
    cached(sentences[:2], CFG)
    assert (cache.hits, cache.misses, len(cache)) == (2, 4, 2)
    off = SentenceCache(0)
    off.bind(translator.translate, "m")(sentences[:1] * 2, CFG)
    assert (off.hits, off.misses, len(off)) == (0, 2, 0)
