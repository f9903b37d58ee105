"""The LibreTranslate API (serve/libretranslate.py) on a real server on a real port serving two
models, driven by LibreTranslate's own Python client (``libretranslatepy``, from PyPI) and by
the request forms LibreTranslate's server accepts (JSON, form, multipart, query)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from seq2seq.config import SearchConfig
from seq2seq.inference.translator import Translator
from serve.admission import KEYS_FILE_ENV

DE = "Und Gott sprach: Es werde Licht!"
EN = "And God said, Let there be light."
KEY, OTHER = "lt-key-3f9c1e", "lt-other-77aa"


@pytest.fixture(scope="module")
def server(two_models: Path, tmp_path_factory: pytest.TempPathFactory):
    from serve.process import ServerProcess

    keys = tmp_path_factory.mktemp("lt") / "keys"
    keys.write_text(f"{KEY}\n{OTHER} texts_per_request=2\n", encoding="utf-8")
    with ServerProcess(None, [f"models={two_models}", "threads=1", "log_level=warning",
                              "max_texts=4", "max_chars=300", "max_n_best=4"],
                       env={KEYS_FILE_ENV: str(keys)}, ready_timeout=180) as proc:
        yield proc


@pytest.fixture(scope="module")
def expected(tiny_bundle: Path, tiny_bundle_en_de: Path) -> dict[str, str]:
    """What each model gives (documents, its server-side search defaults)."""
    de_en = Translator.from_checkpoint(tiny_bundle).translate_documents([DE], SearchConfig())
    en_de = Translator.from_checkpoint(tiny_bundle_en_de).translate_documents(
        [EN], SearchConfig(beam_size=3))
    return {DE: de_en[0].text, EN: en_de[0].text}


@pytest.mark.slow
def test_the_libretranslate_client_translates_detects_and_lists(server, expected) -> None:
    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(server.url, api_key=KEY)
    assert lt.translate(DE, "de", "en") == expected[DE]
    assert lt.translate(EN, "en", "de") == expected[EN]
    assert lt.translate(DE, "auto", "en") == expected[DE]
    detected = lt.detect(DE)
    assert detected[0]["language"] == "de" and detected[0]["confidence"] > 50
    assert [d["language"] for d in detected] == ["de", "en"]
    assert lt.languages() == [{"code": "de", "name": "German", "targets": ["en"]},
                              {"code": "en", "name": "English", "targets": ["de"]}]


def _post(server, path: str = "/translate", key: str | None = KEY, **kw) -> requests.Response:
    return requests.post(server.url + path, timeout=60, **kw)


@pytest.mark.slow
def test_every_request_form_libretranslate_accepts(server, expected) -> None:
    body = {"q": DE, "source": "de", "target": "en", "api_key": KEY}
    for kw in ({"json": body}, {"data": body}, {"files": {k: (None, v) for k, v in body.items()}},
               {"params": body}):
        r = _post(server, **kw)
        assert r.status_code == 200, (kw, r.text)
        assert r.json() == {"translatedText": expected[DE]}
    # a list, auto detection and alternatives; untranslatable texts come back as they are
    r = _post(server, json={"q": [DE, "🙂", ""], "source": "auto", "target": "en",
                            "alternatives": "2", "api_key": KEY}).json()
    assert r["translatedText"] == [expected[DE], "🙂", ""]
    assert [d["language"] for d in r["detectedLanguage"]] == ["de"] * 3
    assert len(r["alternatives"]) == 3 and len(r["alternatives"][0]) <= 2
    assert expected[DE] not in r["alternatives"][0] and r["alternatives"][1:] == [[], []]
    one = _post(server, json={**body, "alternatives": 1}).json()
    assert set(one) == {"translatedText", "alternatives"} and len(one["alternatives"]) <= 1
    # the key in the header instead of the body
    r = _post(server, json={k: v for k, v in body.items() if k != "api_key"},
              headers={"Authorization": f"Bearer {KEY}"})
    assert r.json() == {"translatedText": expected[DE]}


@pytest.mark.slow
@pytest.mark.parametrize(("kw", "status", "error"), [
    ({"json": {"source": "de", "target": "en"}}, 400, "Invalid request: missing q parameter"),
    ({"json": {"q": DE, "target": "en"}}, 400, "Invalid request: missing source parameter"),
    ({"json": {"q": DE, "source": "de"}}, 400, "Invalid request: missing target parameter"),
    ({"json": {"q": DE, "source": "fr", "target": "en"}}, 400, "fr is not supported"),
    ({"json": {"q": DE, "source": "de", "target": "de"}}, 400,
     "German (de) is not available as a target language from German (de)"),
    ({"json": {"q": DE, "source": "de", "target": "en", "format": "pdf"}}, 400,
     "pdf format is not supported"),
    ({"json": {"q": DE, "source": "de", "target": "en", "alternatives": "x"}}, 400,
     "Invalid request: alternatives parameter is not a number"),
    ({"json": {"q": DE, "source": "de", "target": "en", "alternatives": 9}}, 400,
     "Invalid request: alternatives parameter must be <= 3"),
    ({"json": {"q": ["a"] * 5, "source": "de", "target": "en"}}, 400,
     "Invalid request: request (5) exceeds text limit (4)"),
    ({"json": {"q": "x" * 301, "source": "de", "target": "en"}}, 400,
     "Invalid request: request (301) exceeds text limit (300)"),
    ({"json": {"q": [1, 2], "source": "de", "target": "en"}}, 400,
     "Invalid request: q must be a string or a list of strings"),
    ({"data": b"[1]", "headers": {"Content-Type": "application/json"}}, 400,
     "Invalid JSON format"),
])
def test_errors_in_libretranslates_shape(server, kw: dict, status: int, error: str) -> None:
    if "json" in kw:
        kw = {"json": {**kw["json"], "api_key": KEY}}
    else:
        kw = {**kw, "headers": {**kw["headers"], "Authorization": f"Bearer {KEY}"}}
    r = _post(server, **kw)
    assert (r.status_code, r.json()) == (status, {"error": error})


@pytest.mark.slow
def test_keys_and_their_limits(server) -> None:
    body = {"q": DE, "source": "de", "target": "en"}
    assert _post(server, json=body).json() == {
        "error": "Please contact the server operator to get an API key"}
    r = _post(server, json={**body, "api_key": "nope"})
    assert (r.status_code, r.json()) == (403, {"error": "Invalid API key"})
    r = _post(server, json={**body, "q": [DE] * 3, "api_key": OTHER})
    assert r.status_code == 400
    assert r.json() == {"error": "API key limit: 2 texts per request; this request has 3"}
    assert _post(server, json={**body, "q": [DE] * 2, "api_key": OTHER}).status_code == 200
    r = _post(server, "/detect", data={"q": DE})
    assert r.status_code == 400 and "API key" in r.json()["error"]


@pytest.mark.slow
def test_settings_languages_and_disabled_endpoints(server) -> None:
    settings = requests.get(server.url + "/frontend/settings", timeout=10).json()
    assert settings["charLimit"] == 300 and settings["apiKeys"] is True
    assert settings["language"] == {"source": {"code": "auto", "name": "Auto Detect"},
                                    "target": {"code": "en", "name": "English"}}
    r = _post(server, "/suggest", data={"q": "a", "s": "b", "source": "de", "target": "en"})
    assert (r.status_code, r.json()) == (403, {"error": "Suggestions are disabled on this server."})
    assert _post(server, "/translate_file").status_code == 400
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    assert {"/translate", "/detect", "/languages", "/frontend/settings", "/models"} <= set(
        spec["paths"])
    d = _post(server, "/detect", json={"q": EN, "api_key": KEY}).json()
    assert d[0]["language"] == "en" and json.dumps(d)


@pytest.mark.slow
def test_html_and_a_glossary_through_translate(server) -> None:
    r = _post(server, json={"q": "<p>Und <b>Gott</b> sprach: <code>x</code></p>", "source": "de",
                            "target": "en", "format": "html", "api_key": KEY,
                            "glossary": {"Gott": "the Almighty"}}).json()
    out = r["translatedText"]
    assert out.startswith("<p>") and out.count("<b>") == 1 and "<code>x</code>" in out
    assert "the Almighty" in out
