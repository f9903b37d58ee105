"""Tests of serve/api.py and serve/server.py (and the demo page serve/static/index.html).

Fast tests drive the LitAPI and its batch loop in-process with the real tiny checkpoint. The
``slow`` end-to-end tests start the real ``seq2seq-serve`` (``python -m seq2seq.cli.serve``) on a free
localhost port as a subprocess and talk HTTP to it; the browser test drives the demo page in
headless Debian Chromium through Playwright.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from queue import Queue

import pytest

from seq2seq.config import SearchConfig, ServeConfig
from serve.api import Job, TranslatorAPI, search_config_for
from serve.batching import LengthGroupedLoop, plan_chunks
from serve.catalog import Catalog, single_model
from serve.validation import TranslateRequest, token_counter, validate_payload

CHROMIUM = Path("/usr/bin/chromium")
SHORT = "Und Gott sprach."
LONG = ("Und Gott sprach: Es werde Licht! und es ward Licht. Und Gott sah das Licht, dass es "
        "gut war; und Gott schied das Licht von der Finsternis.")
SENTENCES = [
    "Im Anfang schuf Gott die Himmel und die Erde.",
    SHORT,
    "Und es ward Abend und es ward Morgen: fünfter Tag.",
    "Und Gott redete zu Noah und sprach:",
]
SERVER_SEARCH = SearchConfig(beam_size=3)


# ----------------------------------------------------------------------------- planning (fast)

def test_plan_chunks_groups_by_key_and_length_shortest_first():
    # (name, key, length, n_texts)
    items = [("a", 1, 30, 1), ("b", 1, 5, 1), ("c", 2, 6, 1), ("d", 1, 9, 1), ("e", 1, 17, 1),
             ("f", 1, 16, 1)]
    chunks = plan_chunks(items, key=lambda i: i[1], length=lambda i: i[2], size=lambda i: i[3],
                         max_texts=10, ratio=2.0)
    # key 1 sorted: b5 d9 f16 e17 a30; lengths < 8 count as 8: b,d,f (<=16) | e,a (<= 34)
    assert [[i[0] for i in c] for c in chunks] == [["c"], ["b", "d", "f"], ["e", "a"]]


def test_plan_chunks_respects_max_texts_and_ratio_zero():
    items = [(n, 0, length, 2) for n, length in (("a", 1), ("b", 50), ("c", 3), ("d", 100))]
    chunks = plan_chunks(items, key=lambda i: i[1], length=lambda i: i[2], size=lambda i: i[3],
                         max_texts=4, ratio=0)
    assert [[i[0] for i in c] for c in chunks] == [["a", "c"], ["b", "d"]]
    # an item with more texts than max_texts gets a chunk of its own
    big = [("x", 0, 5, 9), ("y", 0, 5, 1)]
    chunks = plan_chunks(big, key=lambda i: i[1], length=lambda i: i[2], size=lambda i: i[3],
                         max_texts=4, ratio=0)
    assert sorted(len(c) for c in chunks) == [1, 1]


def test_search_config_for_applies_request_options():
    base = SearchConfig(beam_size=5, n_best=1, max_len_a=1.5, max_len_b=10)
    req = TranslateRequest(texts=("a",), beam_size=3, n_best=2, max_length=7,
                           return_alignment=True)
    cfg = search_config_for(req, base)
    assert (cfg.beam_size, cfg.n_best, cfg.max_len_a, cfg.max_len_b, cfg.return_alignment) == (
        3, 2, 0.0, 7, True)
    cfg = search_config_for(TranslateRequest(texts=("a",), beam_size=1), base)
    assert (cfg.beam_size, cfg.n_best, cfg.max_len_a, cfg.max_len_b) == (1, 1, 1.5, 10)
    assert cfg.length_penalty == base.length_penalty


# ------------------------------------------------------------------- LitAPI + loop (real model)

@pytest.fixture(scope="module")
def api(tiny_bundle: Path) -> TranslatorAPI:
    cfg = ServeConfig(max_batch_size=8, batch_timeout=0.0, metrics=False)
    specs = Catalog([single_model(tiny_bundle, cfg, SERVER_SEARCH)]).specs
    a = TranslatorAPI(specs, cfg)
    a.setup("cpu")
    return a


def decode(api: TranslatorAPI, body: dict) -> Job:
    """``body`` as the HTTP process validates it, then decoded by the model worker."""
    tr = api.translator
    req = validate_payload(body, api.serve_cfg, token_counter(tr.src_tok, tr.src_lang),
                           api.search_cfg.beam_size)
    return api.decode_request(req.to_payload())


@pytest.fixture(scope="module")
def expected(api: TranslatorAPI) -> dict[str, object]:
    """Reference translations: each text alone, straight through the Translator (as documents,
    the server's default: LONG holds several sentences)."""
    return {s: api.translator.translate_documents([s], SERVER_SEARCH)[0]
            for s in [*SENTENCES, LONG]}


def test_texts_are_documents_split_into_sentences_and_rejoined(api):
    doc = f"{SENTENCES[0]} {SHORT}\n\n{SENTENCES[2]}"
    one = {s: api.translator.translate([s], SERVER_SEARCH)[0] for s in
           (SENTENCES[0], SHORT, SENTENCES[2])}
    job = decode(api, {"text": doc, "n_best": 2, "return_alignment": True})
    assert job.request.split_sentences and job.request.n_tokens == (
        max(len(api.translator.src_tok.encode(s)) for s in one),)
    (out,) = api.unbatch(api.predict(api.batch([job])))
    (t,) = api.encode_response((job, out))["translations"]
    assert t["text"] == f"{one[SENTENCES[0]].text} {one[SHORT].text}\n\n{one[SENTENCES[2]].text}"
    assert t["score"] == pytest.approx(sum(x.score for x in one.values()) / 3, abs=1e-4)
    assert [x["text"] for x in t["sentences"]] == [x.text for x in one.values()]
    assert all(len(x["n_best"]) == 2 and len(x["alignment"]) == len(x["tgt_pieces"])
               for x in t["sentences"])
    assert "alignment" not in t and "n_best" not in t
    # pre-segmented input: the whole text is one segment, as before
    job = decode(api, {"text": doc, "split_sentences": False})
    (out,) = api.unbatch(api.predict(api.batch([job])))
    (t,) = api.encode_response((job, out))["translations"]
    assert t["text"] == api.translator.translate([doc], SERVER_SEARCH)[0].text
    assert "sentences" not in t


def test_decode_predict_encode_matches_translator(api, expected):
    job = decode(api, {"texts": SENTENCES[:2], "n_best": 2, "return_alignment": True})
    assert isinstance(job, Job) and job.search.n_best == 2 and job.search.return_alignment
    assert job.request.n_tokens == tuple(len(api.translator.src_tok.encode(s))
                                         for s in SENTENCES[:2])
    (out,) = api.unbatch(api.predict(api.batch([job])))
    enc = api.encode_response((job, out))
    assert [t["text"] for t in enc["translations"]] == [expected[s].text for s in SENTENCES[:2]]
    for s, t in zip(SENTENCES[:2], enc["translations"], strict=True):
        assert t["score"] == pytest.approx(expected[s].score, abs=1e-4)
        assert len(t["n_best"]) == 2 and t["n_best"][0]["text"] == t["text"]
        assert t["n_best"][0]["score"] >= t["n_best"][1]["score"]
        assert t["src_pieces"] == api.translator.src_tok.pieces(s)
        assert len(t["alignment"]) == len(t["tgt_pieces"])
        assert all(len(row) == len(t["src_pieces"]) for row in t["alignment"])
        assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in t["alignment"])


class SinkTransport:
    """Collects what the loop sends back, in order (stands in for litserve's response queues)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, object]] = []

    def send(self, item: tuple, consumer_id: int) -> None:
        uid, (data, status, _kind, _worker) = item
        self.sent.append((uid, data, status))


def run_loop(api: TranslatorAPI, payloads: dict[str, object]) -> list[tuple[str, object, object]]:
    """Feed ``payloads`` as one dynamic batch through the real loop; return the responses."""
    from litserve.callbacks import CallbackRunner
    from litserve.loops.base import _SENTINEL_VALUE

    q: Queue = Queue()
    for uid, p in payloads.items():
        q.put((0, uid, time.monotonic(), p))
    q.put(_SENTINEL_VALUE)
    transport = SinkTransport()
    LengthGroupedLoop().run_batched_loop(api, q, transport, CallbackRunner())
    return transport.sent


def test_loop_answers_failing_requests_alone_and_short_chunks_first(api, expected):
    from litserve.utils import LitAPIStatus

    def ok(body: dict) -> dict:  # what the HTTP process queues for a valid body
        return decode(api, body).request.to_payload()

    sent = run_loop(api, {
        "long": ok({"text": LONG}),
        "broken": {"n_tokens": [3]},  # no texts: decode_request fails for this one alone
        "short": ok({"text": SHORT}),
        "beam1": ok({"text": SHORT, "beam_size": 1}),
        "pair": ok({"texts": SENTENCES[2:]}),
    })
    by_uid = {uid: (data, status) for uid, data, status in sent}
    assert set(by_uid) == {"long", "broken", "short", "beam1", "pair"}
    assert by_uid["broken"][1] == LitAPIStatus.ERROR
    for uid, texts in (("long", [LONG]), ("short", [SHORT]), ("pair", SENTENCES[2:])):
        data, status = by_uid[uid]
        assert status == LitAPIStatus.OK
        assert [t["text"] for t in data["translations"]] == [expected[s].text for s in texts]
    greedy = api.translator.translate([SHORT], SearchConfig(beam_size=1))[0]
    assert by_uid["beam1"][0]["translations"][0]["text"] == greedy.text
    order = [uid for uid, _, _ in sent]
    assert order.index("short") < order.index("long")  # the short chunk is answered first


def test_one_worker_serves_two_models_and_a_chunk_never_mixes_them(
        tiny_bundle, tiny_bundle_en_de, two_models):
    """A dynamic batch with requests for both models: each model call holds one model's texts
    and every answer is that model's translation."""
    from seq2seq.inference.translator import Translator
    from serve.catalog import read_models_file

    cfg = ServeConfig(max_batch_size=16, batch_timeout=0.0, metrics=False)
    catalog = Catalog(read_models_file(two_models, cfg, SearchConfig()))
    two = TranslatorAPI(catalog.specs, cfg)
    two.setup("cpu")
    assert two.registry.loaded == ["de-en"]  # en-de: preload false
    calls = []
    real = two.predict
    two.predict = lambda jobs: calls.append({j.request.model for j in jobs}) or real(jobs)
    router = catalog.router()

    def payload(body: dict) -> dict:
        return validate_payload(body, cfg, router=router).to_payload()

    en = "And God said, Let there be light."
    sent = run_loop(two, {"a": payload({"text": SHORT}),
                          "b": payload({"text": en, "model": "en-de"}),
                          "c": payload({"texts": [SHORT, LONG], "src_lang": "de",
                                        "tgt_lang": "en"}),
                          "d": payload({"text": en, "src_lang": "en", "tgt_lang": "de"})})
    assert all(len(models) == 1 for models in calls) and {m for c in calls for m in c} == {
        "de-en", "en-de"}
    by_uid = {uid: data["translations"] for uid, data, _ in sent}
    de_en = Translator.from_checkpoint(tiny_bundle)
    en_de = Translator.from_checkpoint(tiny_bundle_en_de)
    one = lambda tr, t, beam: tr.translate_documents([t], SearchConfig(beam_size=beam))[0].text  # noqa: E731
    assert [t["text"] for t in by_uid["a"]] == [one(de_en, SHORT, 5)]
    assert [t["text"] for t in by_uid["c"]] == [one(de_en, SHORT, 5), one(de_en, LONG, 5)]
    assert by_uid["b"] == by_uid["d"] and by_uid["b"][0]["text"] == one(en_de, en, 3)
    assert sorted(two.registry.loaded) == ["de-en", "en-de"]


# --------------------------------------------------------------------- end to end (real server)

@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    from serve.server import ServerProcess

    log = tmp_path_factory.mktemp("serve") / "server.log"
    overrides = ["batch_timeout=0.05", "max_batch_size=16", "max_chars=300", "max_tokens=100",
                 "max_texts=8", "max_beam_size=6", "max_n_best=6", "max_length=80",
                 "log_level=warning", "search.beam_size=3", "threads=1"]
    with ServerProcess(tiny_bundle, overrides, log_path=log, ready_timeout=180) as proc:
        yield proc


def post(server, body: object | bytes, **kwargs):
    import requests

    if isinstance(body, bytes):
        return requests.post(server.url + "/predict", data=body, timeout=60,
                             headers={"Content-Type": "application/json"}, **kwargs)
    return requests.post(server.url + "/predict", json=body, timeout=60, **kwargs)


@pytest.mark.slow
def test_health_info_openapi(server, tiny_bundle):
    import requests

    from seq2seq.checkpoint import load_bundle

    assert requests.get(server.url + "/health", timeout=10).text == "ok"
    info = requests.get(server.url + "/info", timeout=10).json()
    bundle = load_bundle(tiny_bundle)
    model = info["model"]
    assert model["step"] == 150 and model["dev_bleu"] == 1.5
    assert (model["src_lang"], model["tgt_lang"]) == ("de", "en")
    assert model["src_vocab_size"] == bundle["vocab"]["src_size"]
    assert model["tgt_vocab_size"] == bundle["vocab"]["tgt_size"]
    assert model["model_config"] == bundle["model_config"]
    assert info["search"]["beam_size"] == 3
    assert info["auth"] == "none" and info["limits"]["max_queue"] == 256
    assert info["precision"] == "fp32 (precision=fp32)"  # the default of every entry point
    assert info["limits"]["shutdown_grace"] == 20.0
    assert info["limits"]["max_texts"] == 8 and info["batching"]["max_batch_size"] == 16
    schema = requests.get(server.url + "/openapi.json", timeout=10).json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert {"text", "texts", "beam_size", "n_best", "max_length", "return_alignment"} <= set(
        body["schema"]["properties"])
    assert "/info" in schema["paths"] and "/health" in schema["paths"]


@pytest.mark.slow
def test_single_and_list(server, expected):
    r = post(server, {"text": SENTENCES[0]})
    assert r.status_code == 200, r.text
    (t,) = r.json()["translations"]
    assert t["text"] == expected[SENTENCES[0]].text
    assert t["score"] == pytest.approx(expected[SENTENCES[0]].score, abs=1e-4)
    assert "alignment" not in t and "n_best" not in t
    r = post(server, {"texts": SENTENCES})
    assert r.status_code == 200, r.text
    assert [t["text"] for t in r.json()["translations"]] == [expected[s].text for s in SENTENCES]


@pytest.mark.slow
def test_per_request_options(server, api):
    r = post(server, {"text": SENTENCES[0], "beam_size": 5, "n_best": 4, "return_alignment": True})
    assert r.status_code == 200, r.text
    (t,) = r.json()["translations"]
    ref = api.translator.translate([SENTENCES[0]], SearchConfig(beam_size=5, n_best=4))[0]
    assert [h["text"] for h in t["n_best"]] == [h[0] for h in ref.n_best]
    scores = [h["score"] for h in t["n_best"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4
    assert len(t["alignment"]) == len(t["tgt_pieces"]) and t["tgt_pieces"][-1] == "</s>"
    assert t["src_pieces"] == api.translator.src_tok.pieces(SENTENCES[0])
    r = post(server, {"text": SENTENCES[2], "max_length": 3, "return_alignment": True})
    assert r.status_code == 200, r.text
    (t,) = r.json()["translations"]
    assert len(t["tgt_pieces"]) <= 4  # <= 3 pieces + "</s>"
    r = post(server, {"text": SHORT, "beam_size": 1})
    greedy = api.translator.translate([SHORT], SearchConfig(beam_size=1))[0]
    assert r.json()["translations"][0]["text"] == greedy.text


BAD_REQUESTS = [
    (b'{"text": "\xff\xfe Gott"}', 400, "not valid UTF-8"),
    (b'{"text": "Gott"', 400, "not valid JSON"),
    (b"", 400, "request body is empty"),
    (b'["Gott"]', 400, "must be a JSON object"),
    ({}, 422, "exactly one of 'text'"),
    ({"txt": "Gott"}, 422, "unknown field(s) ['txt']"),
    ({"text": 42}, 422, "'text' must be a string"),
    ({"texts": "Gott"}, 422, "'texts' must be a list"),
    ({"texts": ["Gott", None]}, 422, "'texts[1]' must be a string"),
    ({"text": ""}, 422, "'text' is empty"),
    ({"texts": ["Gott", "  "]}, 422, "'texts[1]' is empty"),
    ({"text": "G" * 301}, 422, "'text' has 301 characters; the limit is 300"),
    ({"text": " ".join("Gott" * 30)}, 422, "'text': a sentence has"),
    ({"text": "Gott", "split_sentences": "yes"}, 422, "'split_sentences' must be true or false"),
    ({"texts": ["Gott"] * 9}, 422, "'texts' has 9 items; the limit is 8"),
    ({"text": "Gott", "beam_size": 0}, 422, "'beam_size' must be between 1 and 6"),
    ({"text": "Gott", "beam_size": 7}, 422, "'beam_size' must be between 1 and 6"),
    ({"text": "Gott", "beam_size": "3"}, 422, "'beam_size' must be an integer"),
    ({"text": "Gott", "n_best": 5}, 422, "'n_best' (5) must not exceed the beam size (3)"),
    ({"text": "Gott", "max_length": 81}, 422, "'max_length' must be between 1 and 80"),
    ({"text": "Gott", "return_alignment": "yes"}, 422, "'return_alignment' must be true"),
    (b" " * 200_000, 413, "request body"),
    (b"[" * 16_000 + b"]" * 16_000, 400, "nested too deeply"),
    (b'{"text": "Gott", "beam_size": ' + b"9" * 5000 + b"}", 400, "not valid JSON here"),
]


@pytest.mark.slow
@pytest.mark.parametrize("body, status, message", BAD_REQUESTS,
                         ids=[f"{i}-{s}" for i, (_, s, _) in enumerate(BAD_REQUESTS)])
def test_bad_input_gets_4xx_and_server_keeps_serving(server, expected, body, status, message):
    r = post(server, body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    ok = post(server, {"text": SHORT})
    assert ok.status_code == 200 and ok.json()["translations"][0]["text"] == expected[SHORT].text


@pytest.mark.slow
def test_two_lines_come_back_as_two_translated_lines(server):
    """The demo-page bug: "Das.\nZweite Zeile." lost its second line."""
    r = post(server, {"texts": ["Das.\nZweite Zeile.", "Im Anfang war das Wort. Amen."]})
    assert r.status_code == 200, r.text
    first, second = (t["text"] for t in r.json()["translations"])
    assert first.count("\n") == 1 and all(line.strip() for line in first.split("\n"))
    alone = [post(server, {"text": s}).json()["translations"][0]["text"]
             for s in ("Im Anfang war das Wort.", "Amen.")]
    assert second == " ".join(alone)


@pytest.mark.slow
def test_text_without_subword_pieces_gets_an_empty_translation(server, expected):
    """Zero-width characters encode to no pieces: an empty translation with score 0, like the
    Translator API and the CLI, and the neighbours in the same request are translated."""
    r = post(server, {"texts": ["\u200b\u200b\u200b", SHORT, "\u200c"]})
    assert r.status_code == 200, r.text
    out = r.json()["translations"]
    assert [(t["text"], t["score"]) for t in (out[0], out[2])] == [("", 0.0), ("", 0.0)]
    assert out[1]["text"] == expected[SHORT].text
    r = post(server, {"text": "\u200b", "return_alignment": True, "n_best": 2})
    assert r.status_code == 200, r.text
    (t,) = r.json()["translations"]
    assert (t["text"], t["alignment"], t["src_pieces"], t["tgt_pieces"]) == ("", [], [], [])
    assert t["n_best"] == [{"text": "", "score": 0.0}]


@pytest.mark.slow
def test_client_disconnecting_mid_body_is_one_log_line(server, expected):
    """A client that hangs up before its body arrives is normal traffic: no traceback."""
    import socket

    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 1000\r\n\r\n{\"text\": \"Und")
            time.sleep(0.2)
    time.sleep(0.5)
    ok = post(server, {"text": SHORT})
    assert ok.status_code == 200 and ok.json()["translations"][0]["text"] == expected[SHORT].text
    log = server.log_path.read_text(errors="replace")
    assert "Unhandled exception" not in log and "Traceback" not in log, log[-3000:]


@pytest.mark.slow
def test_concurrent_good_and_bad_requests(server, expected):
    bodies = [({"text": s}, 200) for s in SENTENCES * 3] + [({"text": LONG}, 200)] + [
        (b, st) for b, st, _ in BAD_REQUESTS[:6]]
    results: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def client(i: int) -> None:
        barrier.wait()
        results[i] = post(server, bodies[i][0])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for (body, status), r in zip(bodies, results, strict=True):
        assert r is not None and r.status_code == status, (body, r and r.text)
        if status == 200:
            assert r.json()["translations"][0]["text"] == expected[body["text"]].text
    assert post(server, {"text": SHORT}).status_code == 200


# ------------------------------------------------------------------------ demo page (browser)

@contextlib.contextmanager
def _chromium_page() -> Iterator:
    """A page of Debian's headless Chromium driven by Playwright (skips without Chromium)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium "
                    "(`apt-get install -y chromium`, done by .ci/run)")
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.slow
def test_demo_page_in_headless_chromium(server, api):
    import requests

    assert "<textarea" in requests.get(server.url + "/demo", timeout=10).text
    ref = post(server, {"text": SENTENCES[0], "return_alignment": True}).json()["translations"][0]
    with _chromium_page() as page:
        page.goto(server.url + "/", wait_until="load")
        page.wait_for_function("document.getElementById('model').textContent.includes('step')")
        assert "de → en" in page.text_content("#model")
        assert page.input_value("#beam") == "3"  # server default from /info
        page.fill("#source", SENTENCES[0])
        page.click("#translate")
        page.wait_for_function(
            "document.getElementById('heatmap').dataset.rows !== '0'", timeout=30_000)
        assert page.text_content("#result") == ref["text"]
        rows = int(page.get_attribute("#heatmap", "data-rows"))
        cols = int(page.get_attribute("#heatmap", "data-cols"))
        assert (rows, cols) == (len(ref["tgt_pieces"]), len(ref["src_pieces"]))
        # the heat map really was drawn: some cells are coloured (not white)
        coloured = page.evaluate("""() => {
            const c = document.getElementById('heatmap');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i + 2] === 255 && d[i] < 250) n++;
            return n;
        }""")
        assert coloured > rows * cols * 20
        # a bad input shows the server's message instead of a result
        page.fill("#source", "   ")
        page.click("#translate")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert "422" in page.text_content("#error") and "empty" in page.text_content("#error")
        assert page.text_content("#result") == ""


# --------------------------------------------------------------------- scores, prefixes, /score
@pytest.mark.slow
def test_return_scores_and_target_prefix(server, api):
    tr = api.translator
    r = post(server, {"texts": [SHORT, SENTENCES[0]], "return_scores": True,
                      "split_sentences": False, "target_prefix": ["And God", ""]})
    assert r.status_code == 200, r.text
    first, second = r.json()["translations"]
    cfg = replace(SERVER_SEARCH, return_scores=True)
    ref = tr.translate([SHORT, SENTENCES[0]], cfg, prefixes=["And God", None])
    for got, want in zip((first, second), ref, strict=True):
        assert got["text"] == want.text and got["tokens"] == want.tgt_pieces
        assert got["log_prob"] == pytest.approx(want.log_prob, abs=1e-4)
        assert got["token_scores"] == pytest.approx(want.token_scores, abs=1e-4)
    assert first["text"].startswith("And God")
    bad = post(server, {"texts": [SHORT], "target_prefix": "And"})
    assert bad.status_code == 422 and "'target_prefix' must be a list of 1 strings" in \
        bad.json()["detail"]


@pytest.mark.slow
def test_score_endpoint_matches_the_translator(server, api):
    import requests

    pairs = [(SHORT, "And God said."), (SENTENCES[0], ""), (LONG, "In the beginning.")]
    r = requests.post(server.url + "/score", json={
        "sources": [s for s, _ in pairs], "targets": [t for _, t in pairs],
        "token_scores": True}, timeout=60)
    assert r.status_code == 200, r.text
    ref = api.translator.score([s for s, _ in pairs], [t for _, t in pairs], SERVER_SEARCH)
    for got, want in zip(r.json()["scores"], ref, strict=True):
        assert got["log_prob"] == pytest.approx(want.log_prob, abs=1e-4)
        assert got["score"] == pytest.approx(want.score, abs=1e-4)
        assert got["tokens"] == want.tgt_pieces and len(got["token_scores"]) == len(got["tokens"])
    one = requests.post(server.url + "/score", json={"source": SHORT, "target": "And God said."},
                        timeout=60).json()["scores"]
    assert len(one) == 1 and "tokens" not in one[0]
    assert one[0]["log_prob"] == pytest.approx(ref[0].log_prob, abs=1e-4)
    # scoring the server's own translation gives back its score (greedy: the same rows)
    t = post(server, {"text": SHORT, "beam_size": 1, "split_sentences": False}).json()
    s = requests.post(server.url + "/score", json={"source": SHORT,
                                                   "target": t["translations"][0]["text"]},
                      timeout=60).json()["scores"][0]
    if api.translator.tgt_tok.encode(t["translations"][0]["text"]) == \
            api.translator.translate([SHORT], replace(SERVER_SEARCH, beam_size=1))[0].tokens:
        assert s["score"] == pytest.approx(t["translations"][0]["score"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("body", "message"), [
    ({"source": "Gott"}, "give both 'source' and 'target'"),
    ({"sources": ["a", "b"], "targets": ["x"]}, "'sources' has 2 items but 'targets' has 1"),
    ({"source": "\u200b", "target": "x"}, "'source' has no subword pieces"),
    ({"source": "", "target": "x"}, "'source' is empty"),
    ({"source": "Gott", "target": 3}, "'target' must be a string, got number"),
    ({"source": "Gott", "target": "x", "beam_size": 3}, "unknown field(s) ['beam_size']"),
    ({"text": "Gott"}, "unknown field(s) ['text']"),
])
def test_bad_score_bodies_get_422(server, body, message):
    import requests

    r = requests.post(server.url + "/score", json=body, timeout=60)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


@pytest.mark.slow
def test_an_ensemble_server(tiny_bundle, tmp_path, api):
    import shutil

    import requests

    from serve.process import ServerProcess

    second = tmp_path / "second.pt"
    shutil.copyfile(tiny_bundle, second)
    with ServerProcess([tiny_bundle, second], ["search.beam_size=3", "threads=1",
                                               "log_level=warning"]) as proc:
        info = requests.get(proc.url + "/info", timeout=10).json()["model"]
        assert [m["path"] for m in info["ensemble"]] == [str(tiny_bundle), str(second)]
        got = requests.post(proc.url + "/predict", json={"text": SHORT}, timeout=60).json()
        assert got["translations"][0]["text"] == \
            api.translator.translate_documents([SHORT], SERVER_SEARCH)[0].text


def test_a_source_over_max_input_length_is_cut_and_says_so(api):
    n = len(api.translator.src_tok.encode(SENTENCES[0]))
    limit, api.translator.max_input_length = api.translator.max_input_length, 3
    try:
        job = decode(api, {"text": SENTENCES[0], "split_sentences": False})
        (out,) = api.unbatch(api.predict(api.batch([job])))
        (t,) = api.encode_response((job, out))["translations"]
    finally:
        api.translator.max_input_length = limit
    assert n > 3 and t["truncated_from"] == n
    short = decode(api, {"text": SHORT, "split_sentences": False})
    (out,) = api.unbatch(api.predict(api.batch([short])))
    assert "truncated_from" not in api.encode_response((short, out))["translations"][0]


@pytest.mark.slow
def test_every_entry_point_gives_the_same_text_and_scores_by_default(tiny_bundle):
    """Python API, seq2seq-translate, seq2seq-score and the server, all at their defaults
    (INFERENCE_PRECISION, the default search): the same texts, scores and log-probs."""
    import json
    import subprocess
    import sys

    import requests

    from seq2seq.inference.translator import Translator
    from serve.server import ServerProcess

    translator = Translator.from_checkpoint(tiny_bundle)
    api = translator.translate(SENTENCES, SearchConfig(return_scores=True))
    texts = [t.text for t in api]
    cli = subprocess.run([sys.executable, "-m", "seq2seq.cli.translate",
                          f"checkpoint={tiny_bundle}", "search.return_scores=true", "progress=false"],
                         input="\n".join(SENTENCES) + "\n", capture_output=True, text=True,
                         check=True)
    translated = [json.loads(r) for r in cli.stdout.splitlines()]
    tsv = "".join(f"{s}\t{t}\n" for s, t in zip(SENTENCES, texts, strict=True))
    scored = subprocess.run([sys.executable, "-m", "seq2seq.cli.score", f"checkpoint={tiny_bundle}",
                             "token_scores=true", "progress=false"], input=tsv,
                            capture_output=True, text=True, check=True)
    forced = [json.loads(r) for r in scored.stdout.splitlines()]
    with ServerProcess(tiny_bundle, ["threads=1", "log_level=warning"]) as srv:
        served = requests.post(srv.url + "/predict", json={"texts": SENTENCES,
                                                           "return_scores": True},
                               timeout=60).json()["translations"]
        served_scores = requests.post(srv.url + "/score", json={
            "sources": SENTENCES, "targets": texts}, timeout=60).json()["scores"]
    assert [t["text"] for t in translated] == [t["text"] for t in served] == texts
    assert len(set(texts)) > 1  # the tiny model says different things to different inputs
    same_pieces = 0
    for t, c, f, s, ss in zip(api, translated, forced, served, served_scores, strict=True):
        for got in (c, s):
            assert got["score"] == pytest.approx(t.score, abs=1e-5)
            assert got["log_prob"] == pytest.approx(t.log_prob, abs=1e-5)
        assert f["log_prob"] == pytest.approx(ss["log_prob"], abs=1e-5)
        if translator.tgt_tok.encode(t.text) == t.tokens:  # re-encoding gives the same pieces
            same_pieces += 1
            for got in (f, ss):  # forced decoding of the same pieces: the same log-prob
                assert got["log_prob"] == pytest.approx(t.log_prob, abs=1e-4)
                assert got["score"] == pytest.approx(t.score, abs=1e-4)
    assert same_pieces >= 2


# ------------------------------------------------------------ many models, CORS (real server)
@pytest.fixture(scope="module")
def two_server(two_models: Path):
    from serve.process import ServerProcess

    with ServerProcess(None, [f"models={two_models}", "threads=1", "log_level=warning",
                              "cors_origins=[http://allowed.example]", "max_loaded=1"],
                       ready_timeout=180) as proc:
        yield proc


@pytest.mark.slow
def test_models_and_info_per_model(two_server):
    import requests

    models = requests.get(two_server.url + "/models", timeout=10).json()["models"]
    assert [(m["id"], m["source"], m["target"], m["search"]["beam_size"]) for m in models] == [
        ("de-en", "de", "en", 5), ("en-de", "en", "de", 3)]
    assert [m["loaded"] for m in models] == [True, False]
    info = requests.get(two_server.url + "/info?model=en-de", timeout=10).json()
    assert (info["model"]["id"], info["model"]["src_lang"], info["search"]["beam_size"]) == (
        "en-de", "en", 3)
    assert info["models"] == ["de-en", "en-de"] and info["server"]["max_loaded"] == 1
    r = requests.get(two_server.url + "/info?model=fr-en", timeout=10)
    assert r.status_code == 400 and "served: de-en (de→en), en-de (en→de)" in r.json()["detail"]
    r = requests.post(two_server.url + "/predict", json={"text": "God.", "model": "en-de"},
                      timeout=60)
    assert r.status_code == 200
    # max_loaded=1: en-de took de-en's place
    assert [m["loaded"] for m in requests.get(two_server.url + "/models",
                                              timeout=10).json()["models"]] == [False, True]
    r = requests.post(two_server.url + "/predict", json={"text": "x", "model": "xx"}, timeout=60)
    assert r.status_code == 400 and r.json()["detail"].startswith("unknown model 'xx'; served:")


@pytest.mark.slow
def test_cors_allow_list(two_server):
    import requests

    pre = {"Origin": "http://allowed.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    r = requests.options(two_server.url + "/translate", headers=pre, timeout=10)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://allowed.example"
    r = requests.options(two_server.url + "/translate",
                         headers={**pre, "Origin": "http://evil.example"}, timeout=10)
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = requests.get(two_server.url + "/languages", headers={"Origin": "http://allowed.example"},
                     timeout=10)
    assert r.headers["access-control-allow-origin"] == "http://allowed.example"


@pytest.mark.slow
def test_demo_page_picks_a_model(two_server, tiny_bundle_en_de):
    from seq2seq.inference.translator import Translator

    en = "And God said."
    want = Translator.from_checkpoint(tiny_bundle_en_de).translate_documents(
        [en], SearchConfig(beam_size=3))[0].text
    with _chromium_page() as page:
        page.goto(two_server.url + "/", wait_until="load")
        page.wait_for_function("document.getElementById('models').options.length === 2")
        assert page.text_content("#models option") == "de-en (de → en)"
        page.select_option("#models", "en-de")
        page.wait_for_function("document.getElementById('model').textContent"
                               ".startsWith('en → de')")
        assert page.input_value("#beam") == "3"
        page.fill("#source", en)
        page.click("#translate")
        page.wait_for_function("document.getElementById('result').textContent !== '…' && "
                               "document.getElementById('result').textContent !== ''",
                               timeout=30_000)
        assert page.text_content("#result") == want


def test_glossaries_of_the_model_and_the_request(tiny_bundle, tmp_path):
    """A model's glossary file and a request's glossary together; the answer says which terms
    were required and met; the request's entry wins for the same source term."""
    import dataclasses

    from serve.catalog import read_models_file

    (tmp_path / "terms.tsv").write_text("Gott\tthe Almighty\nAbend\tdusk\n", encoding="utf-8")
    f = tmp_path / "models.yaml"
    f.write_text(f"- id: de-en\n  checkpoint: {tiny_bundle}\n  glossary: terms.tsv\n",
                 encoding="utf-8")
    cfg = ServeConfig(max_batch_size=8, batch_timeout=0.0, metrics=False)
    specs = Catalog(read_models_file(f, cfg, SearchConfig(beam_size=3))).specs
    assert specs[0].glossary == (("Gott", "the Almighty"), ("Abend", "dusk"))
    g = TranslatorAPI(specs, cfg)
    g.setup("cpu")
    doc = "Und Gott sprach. Und es ward Abend."
    job = decode(g, {"text": doc, "glossary": {"Abend": "evening time", "sprach": "spoke"}})
    (out,) = g.unbatch(g.predict(g.batch([job])))
    (item,) = g.encode_response((job, out))["translations"]
    assert [(c["source"], c["target"], c["met"]) for c in item["constraints"]] == [
        ("Gott", "the Almighty", True), ("sprach", "spoke", True),
        ("Abend", "evening time", True)]
    assert "the Almighty" in item["text"] and "evening time" in item["text"]
    plain = decode(g, {"text": "Amen."})
    assert "constraints" not in g.encode_response((plain, g.unbatch(g.predict(g.batch(
        [plain])))[0]))["translations"][0]
    assert dataclasses.replace(job.request, glossary=None).glossary is None
    for bad, msg in (({"glossary": {"Gott": ""}}, "term '' is empty"),
                     ({"glossary": {"Gott": 3}}, "'glossary' must be a string, got number"),
                     ({"glossary": ["Gott"]}, "'glossary' must be an object of strings, got array")):
        with pytest.raises(Exception) as err:
            decode(g, {"text": doc, **bad})
        assert msg in str(err.value)
