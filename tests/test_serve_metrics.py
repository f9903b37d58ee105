"""Tests for serve/metrics.py: Prometheus metrics of a real two-model server (HTTP process and
model worker added up), token protection, and the sentence cache seen through them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from serve.metrics import Metrics

DOC = "Und Gott sprach: Es werde Licht!\nUnd es ward Licht. Und Gott sprach: Es werde Licht!"


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m[3])
    return 0.0


def test_in_process_metrics_and_the_disabled_no_op() -> None:
    m = Metrics()
    m.request("/predict", "de-en", 200, 0.2)
    m.translated("de-en", 3, 30, 40)
    m.models(["de-en"], "de-en")
    body, ctype = m.exposition()
    text = body.decode()
    assert ctype.startswith("text/plain")
    assert _value(text, "seq2seq_requests_total", endpoint="/predict", model="de-en",
                  status="200") == 1.0
    assert _value(text, "seq2seq_tokens_total", model="de-en", side="target") == 40.0
    assert _value(text, "seq2seq_model_loads_total", model="de-en") == 1.0
    off = Metrics(enabled=False)
    off.request("/predict", "x", 200, 1.0)  # nothing happens, nothing fails
    assert not hasattr(off, "registry")


@pytest.mark.slow
def test_a_two_model_server_counts_requests_work_and_cache_hits(two_models: Path) -> None:
    from serve.process import ServerProcess

    token = "m-token-51d0"
    with ServerProcess(None, [f"models={two_models}", "threads=1", "log_level=warning",
                              f"metrics_token={token}"], ready_timeout=180) as srv:
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(srv.url + "/metrics", timeout=10).status_code == 401
        first = requests.post(srv.url + "/predict", json={"text": DOC}, timeout=60)
        again = requests.post(srv.url + "/predict", json={"text": DOC}, timeout=60)
        assert first.status_code == 200 and first.content == again.content  # byte-identical
        requests.post(srv.url + "/predict", json={"text": "God said.", "model": "en-de"},
                      timeout=60)
        requests.post(srv.url + "/predict", json={"text": ""}, timeout=60)  # a 422
        requests.post(srv.url + "/translate", data={"q": "Licht", "source": "de",
                                                    "target": "en"}, timeout=60)
        text = requests.get(srv.url + "/metrics", headers=auth, timeout=10).text
        ok = {"endpoint": "/predict", "status": "200"}
        assert _value(text, "seq2seq_requests_total", model="de-en", **ok) == 2
        assert _value(text, "seq2seq_requests_total", model="en-de", **ok) == 1
        assert _value(text, "seq2seq_requests_total", endpoint="/predict", model="",
                      status="422") == 1
        assert _value(text, "seq2seq_requests_total", endpoint="/translate", model="de-en",
                      status="200") == 1
        # the document's three sentences, two of them the same: searched twice in all
        assert _value(text, "seq2seq_cache_misses_total", model="de-en") == 3  # + "Licht"
        assert _value(text, "seq2seq_cache_hits_total", model="de-en") == 4
        assert _value(text, "seq2seq_sentences_total", model="de-en") == 7
        assert _value(text, "seq2seq_models_loaded") == 2  # en-de loaded on first use
        assert _value(text, "seq2seq_model_loads_total", model="en-de") == 1
        assert _value(text, "seq2seq_queue_depth") == 0
        assert _value(text, "seq2seq_request_seconds_count", endpoint="/predict",
                      model="en-de") == 1
        assert _value(text, "seq2seq_batch_texts_count", model="de-en") == 3
