"""Property test of the whole HTTP stack: no client input yields a 5xx.

Hypothesis (a maintained property-based testing library: shrinking to a minimal failing body and
a replayable example database, which a hand-rolled generator would not give) throws random JSON
values, random Unicode (control characters, lone surrogates, combining marks, right-to-left
text, emoji, NUL, zero-width characters), random mixes of the known fields with right and wrong
types and sizes, and random raw bytes at a real ``seq2seq-serve`` on a real port. Every answer
must be a 200 with translations or a 4xx with a ``detail`` message, and a fixed canary request
must be answered identically before and after.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve.validation import ALLOWED_FIELDS, SCORE_FIELDS  # the request models' fields

SHORT = "Und Gott sprach."
FIELDS = (*ALLOWED_FIELDS, *SCORE_FIELDS)

# characters that break naive text handling
ODD = st.sampled_from([
    "\x00", "\x07", "\x1b", "\x7f", "\u0085", "\u200b", "\u200c", "\u200d", "\u2028", "\ufeff",
    "\u202e", "\u0301", "\u0308\u0308\u0308", "\ud800", "\udfff", "\U0001f600", "\U0001f1e9\U0001f1ea",
    "ש", "مرحبا", "\t", "\r\n", " ", "Gott", "Licht", "\uffff", "\U0010ffff",
])
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(ODD, max_size=12).map("".join),
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.just("G" * 2000),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, st.sampled_from(FIELDS)), inner,
                                                 max_size=4)), max_leaves=12)
FIELD_VALUE = {
    "text": st.one_of(TEXT, JSON),
    "texts": st.one_of(st.lists(TEXT, max_size=10), JSON),
    "beam_size": st.one_of(st.integers(-3, 40), JSON),
    "n_best": st.one_of(st.integers(-3, 40), JSON),
    "max_length": st.one_of(st.integers(-3, 500), JSON),
    "return_alignment": st.one_of(st.booleans(), JSON),
    "return_scores": st.one_of(st.booleans(), JSON),
    "split_sentences": st.one_of(st.booleans(), JSON),
    "target_prefix": st.one_of(TEXT, st.lists(TEXT, max_size=10), JSON),
    "model": st.one_of(TEXT, JSON, st.sampled_from(["de-en", "en-de", "x"])),
    "src_lang": st.one_of(TEXT, JSON, st.sampled_from(["de", "en", "fr"])),
    "tgt_lang": st.one_of(TEXT, JSON, st.sampled_from(["de", "en", "fr"])),
    "format": st.one_of(st.sampled_from(["text", "html", "markdown", "pdf"]), JSON),
    "glossary": st.one_of(st.dictionaries(TEXT, TEXT, max_size=3),
                          st.just({"Gott": "the Almighty"}), JSON),
}
assert set(FIELD_VALUE) == set(ALLOWED_FIELDS)  # every field of the request model is thrown at
REQUEST = st.fixed_dictionaries({}, optional={k: v for k, v in FIELD_VALUE.items()})
SCORE_VALUE = {
    "source": st.one_of(TEXT, JSON), "target": st.one_of(TEXT, JSON),
    "sources": st.one_of(st.lists(TEXT, max_size=10), JSON),
    "targets": st.one_of(st.lists(TEXT, max_size=10), JSON),
    "token_scores": st.one_of(st.booleans(), JSON),
    "model": FIELD_VALUE["model"], "src_lang": FIELD_VALUE["src_lang"],
    "tgt_lang": FIELD_VALUE["tgt_lang"],
}
assert set(SCORE_VALUE) == set(SCORE_FIELDS)
SCORE_REQUEST = st.one_of(
    st.fixed_dictionaries({}, optional=SCORE_VALUE),
    # mostly well-formed pairs with odd targets, so the model path runs too
    st.fixed_dictionaries({"source": st.sampled_from(["Gott", "Licht", SHORT]),
                           "target": st.one_of(TEXT, st.just(""))},
                          optional={"token_scores": st.booleans()}),
)
VALID_PREDICT = st.fixed_dictionaries(
    {"text": st.sampled_from(["Gott", "Licht", SHORT, "Und Gott sprach. Amen.\n\nLicht."])},
    optional={"return_scores": st.booleans(), "split_sentences": st.booleans(),
              "target_prefix": st.one_of(TEXT, st.just("And"))})


def bodies(request: st.SearchStrategy) -> st.SearchStrategy:
    """Raw bodies: the endpoint's field mixes, random JSON, random bytes, surrogates."""
    return st.one_of(
        request.map(lambda d: json.dumps(d).encode()),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        request.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    )


LT_VALUE = {  # LibreTranslate's /translate: lenient types, as its own server reads them
    "q": st.one_of(TEXT, st.lists(TEXT, max_size=6), JSON),
    "source": st.one_of(st.sampled_from(["de", "en", "auto", "fr", "DE", ""]), JSON),
    "target": st.one_of(st.sampled_from(["de", "en", "fr", ""]), JSON),
    "format": st.one_of(st.sampled_from(["text", "html", "xml"]), JSON),
    "alternatives": st.one_of(st.integers(-3, 9), TEXT, JSON),
    "api_key": st.one_of(TEXT, JSON),
    "glossary": FIELD_VALUE["glossary"],
}
LT_REQUEST = st.fixed_dictionaries({}, optional=LT_VALUE)
VALID_LT = st.fixed_dictionaries(
    {"q": st.sampled_from(["Gott", SHORT, "Und Gott sprach. Amen.", "God said."]),
     "source": st.sampled_from(["de", "en", "auto"]), "target": st.sampled_from(["de", "en"])},
    optional={"alternatives": st.integers(0, 2)})


def lt_bodies() -> st.SearchStrategy:
    """JSON bodies and the same as forms (the content type comes with the body)."""
    form = st.one_of(LT_REQUEST, VALID_LT).map(
        lambda d: (urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items()},
                             errors="surrogatepass").encode(),
                   "application/x-www-form-urlencoded"))
    return st.one_of(bodies(st.one_of(LT_REQUEST, VALID_LT)).map(lambda b: (b, None)), form)


BODIES = {"/predict": bodies(st.one_of(REQUEST, VALID_PREDICT)), "/score": bodies(SCORE_REQUEST),
          "/translate": lt_bodies()}


@pytest.fixture(scope="module")
def server(two_models: Path):
    from serve.server import ServerProcess

    overrides = [f"models={two_models}", "max_chars=300", "max_tokens=100", "max_texts=8",
                 "max_beam_size=6", "max_length=60", "log_level=warning", "search.beam_size=2",
                 "threads=1"]
    with ServerProcess(None, overrides) as proc:
        yield proc


def _canary(server) -> dict:
    r = requests.post(server.url + "/predict", json={"text": SHORT, "n_best": 2}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "key", "examples"), [("/predict", "translations", 400),
                                                          ("/score", "scores", 250),
                                                          ("/translate", "translatedText", 300)])
def test_no_client_input_gets_a_5xx(server, endpoint: str, key: str, examples: int) -> None:
    before = _canary(server)
    seen: dict[int, int] = {}
    error = "error" if endpoint == "/translate" else "detail"

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=BODIES[endpoint])
    def check(body: bytes | tuple[bytes, str | None]) -> None:
        body, ctype = body if isinstance(body, tuple) else (body, None)
        r = requests.post(server.url + endpoint, data=body, timeout=60,
                          headers={"Content-Type": ctype or "application/json"})
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code == 200 or 400 <= r.status_code < 500, (body[:300], r.text[:300])
        payload = r.json()
        if r.status_code == 200:
            assert isinstance(payload[key], list if endpoint != "/translate" else (str, list))
        else:
            assert isinstance(payload[error], str) and payload[error]

    check()
    assert seen.get(200, 0) > 0 and sum(v for k, v in seen.items() if k != 200) > 0, seen
    assert _canary(server) == before
    assert requests.get(server.url + "/health", timeout=10).text == "ok"
