"""Tests for serve/admission.py and serve/shutdown.py: API keys, the bounded queue and the
per-request deadline, and the graceful stop; unit tests and a real server on a real port."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from fastapi import HTTPException
from starlette.requests import Request

from serve.admission import KEYS_FILE_ENV, Admission, load_api_keys

SHORT = "Und Gott sprach."
HEAVY = {"texts": ["Und Gott sprach: Es werde Licht! und es ward Licht. Und Gott sah das Licht."]
         * 8, "beam_size": 6, "max_length": 80}


def _request(auth: str | None) -> Request:
    headers = [(b"authorization", auth.encode())] if auth is not None else []
    return Request({"type": "http", "headers": headers})


# ----------------------------------------------------------------------------------- unit
def test_keys_from_config_and_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text("# team keys\n  k-file-1  \n\nk-file-2\n", encoding="utf-8")
    assert load_api_keys(["k1"], {KEYS_FILE_ENV: str(f)}) == ["k1", "k-file-1", "k-file-2"]
    assert load_api_keys([], {}) == []
    with pytest.raises(ValueError, match="cannot read the file"):
        load_api_keys([], {KEYS_FILE_ENV: str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("# none\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no key"):
        load_api_keys(["k1"], {KEYS_FILE_ENV: str(tmp_path / "empty")})
    with pytest.raises(ValueError, match="empty key"):
        load_api_keys(["  "], {})


@pytest.mark.parametrize("auth, ok", [
    (None, False), ("", False), ("Bearer", False), ("Bearer ", False), ("Basic s3cret", False),
    ("Bearer s3cre", False), ("Bearer s3cret2", False), ("Bearer s3cret", True),
    ("bearer s3cret", True), ("Bearer other", True),
])
def test_bearer_keys(auth: str | None, ok: bool) -> None:
    adm = Admission(["s3cret", "other"], max_queue=4)
    if ok:
        adm.check_key(_request(auth))
        return
    with pytest.raises(HTTPException) as err:
        adm.check_key(_request(auth))
    assert err.value.status_code == 401 and err.value.headers == {"WWW-Authenticate": "Bearer"}
    assert "s3cret" not in err.value.detail and "other" not in err.value.detail
    Admission([], 4).check_key(_request(auth))  # no keys: anyone


def test_bounded_queue_answers_503_with_retry_after() -> None:
    adm = Admission([], max_queue=2)
    adm.enter()
    adm.enter()
    with pytest.raises(HTTPException) as err:
        adm.enter()
    assert err.value.status_code == 503 and err.value.headers == {"Retry-After": "1"}
    assert "max_queue=2" in err.value.detail
    adm.leave()
    adm.enter()  # room again
    assert adm.in_flight == 2


# ----------------------------------------------------------------------------- end to end
def _post(url: str, body: dict, key: str | None = None, timeout: float = 60) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(url + "/predict", json=body, headers=headers, timeout=timeout)


@pytest.mark.slow
def test_api_keys_guard_predict_only_and_never_leak(tiny_bundle: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from serve.server import ServerProcess

    keyfile = tmp_path / "keys"
    keyfile.write_text("file-key-7f3a\n", encoding="utf-8")
    monkeypatch.setenv(KEYS_FILE_ENV, str(keyfile))
    log = tmp_path / "server.log"
    with ServerProcess(tiny_bundle, ["api_keys=[cli-key-91bc]", "log_level=info"],
                       log_path=log) as srv:
        assert requests.get(srv.url + "/health", timeout=10).status_code == 200
        for key in (None, "wrong", "cli-key-91b"):
            r = _post(srv.url, {"text": SHORT}, key)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
            assert "Authorization: Bearer <key>" in r.json()["detail"]
        for key in ("cli-key-91bc", "file-key-7f3a"):
            r = _post(srv.url, {"text": SHORT}, key)
            assert r.status_code == 200 and r.json()["translations"][0]["text"]
        pair = {"source": SHORT, "target": "And God said."}
        score = requests.post(srv.url + "/score", json=pair, timeout=60)
        assert score.status_code == 401  # /score is guarded too
        score = requests.post(srv.url + "/score", json=pair, timeout=60,
                              headers={"Authorization": "Bearer cli-key-91bc"})
        assert score.status_code == 200 and score.json()["scores"][0]["log_prob"] < 0
        info = requests.get(srv.url + "/info", timeout=10)
        assert info.json()["auth"] == "bearer"
        pages = info.text + requests.get(srv.url + "/openapi.json", timeout=10).text
    text = log.read_text(errors="replace") + pages
    assert "cli-key-91bc" not in text and "file-key-7f3a" not in text


@pytest.mark.slow
def test_overload_gets_503_or_504_quickly_and_the_server_recovers(tiny_bundle: Path) -> None:
    """40 heavy requests at once against max_queue=6 and a 1 s deadline: only 200/503/504."""
    from serve.server import ServerProcess

    with ServerProcess(tiny_bundle, ["max_queue=6", "timeout=1.0", "max_batch_size=1",
                                     "threads=1", "log_level=warning", "max_beam_size=8",
                                     "max_texts=8"]) as srv:
        canary = _post(srv.url, {"text": SHORT}).json()
        results: list[tuple[int, float, dict]] = []
        lock = threading.Lock()

        def client() -> None:
            t0 = time.perf_counter()
            r = _post(srv.url, HEAVY)
            with lock:
                results.append((r.status_code, time.perf_counter() - t0, dict(r.headers)))

        threads = [threading.Thread(target=client) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        codes = [c for c, _, _ in results]
        assert len(codes) == 40 and set(codes) <= {200, 503, 504}, codes
        assert codes.count(503) > 0 and codes.count(200) > 0, codes
        assert all(h.get("retry-after") == "1" for c, _, h in results if c == 503)
        assert max(s for c, s, _ in results if c == 503) < 5.0  # refused at once
        assert requests.get(srv.url + "/health", timeout=10).status_code == 200
        assert _post(srv.url, {"text": SHORT}).json() == canary


@pytest.mark.slow
@pytest.mark.parametrize("whom", ["main", "group"])
def test_sigterm_finishes_requests_in_flight_then_exits_0(tiny_bundle: Path, whom: str) -> None:
    """SIGTERM to the main process only (docker, Kubernetes) or to every process of the server
    (systemd's default ``KillMode=control-group``, ``pkill -f``): the same graceful stop."""
    from serve.server import ServerProcess

    srv = ServerProcess(tiny_bundle, ["max_batch_size=1", "threads=1", "max_beam_size=8",
                                      "max_texts=32", "log_level=info"]).start()
    try:
        results: list[tuple[int, float]] = []  # (status, when answered)
        first = threading.Event()

        def client(n: int) -> None:
            # texts of its own: the translation cache must not answer the queued requests
            texts = [f"{HEAVY['texts'][0]} {n}.{k}" for k in range(32)]
            heavier = {**HEAVY, "texts": texts, "beam_size": 8}
            results.append((_post(srv.url, heavier, timeout=90).status_code, time.monotonic()))
            first.set()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        assert first.wait(timeout=60)  # one answered; the others queued behind it (batch size 1)
        half_open = _half_open(srv.port)  # and a client that never sends its body
        t0 = time.monotonic()
        if whom == "main":
            os.kill(srv.proc.pid, signal.SIGTERM)
        else:
            os.killpg(srv.proc.pid, signal.SIGTERM)  # its own session: the group is the server's
        for t in threads:
            t.join(timeout=120)
        assert [code for code, _ in results] == [200] * 8, results
        assert sum(when > t0 for _, when in results) >= 4, results  # in flight at the signal
        assert srv.proc.wait(timeout=60) == 0, srv.log_tail()
        assert time.monotonic() - t0 <= 20.0 + 2.0  # within the default shutdown_grace
        assert half_open.recv(200).startswith(b"HTTP/1.1 503"), srv.log_tail()
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.url + "/health", timeout=5)
    finally:
        srv.stop()


def _half_open(port: int) -> socket.socket:
    """A connection whose request headers arrived but whose body never does."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"text\": ")
    return s


@pytest.mark.slow
@pytest.mark.parametrize("sig,whom", [(signal.SIGTERM, "main"), (signal.SIGTERM, "group"),
                                      (signal.SIGINT, "group")])  # the last: Ctrl-C
def test_sigterm_stops_an_idle_server_at_once_despite_open_and_aborted_clients(
        tiny_bundle: Path, sig: signal.Signals, whom: str) -> None:
    """Idle keep-alive, half-open, aborted and silent connections: gone within 3 s, exit 0."""
    from serve.server import ServerProcess

    srv = ServerProcess(tiny_bundle, ["threads=1"]).start()
    try:
        keep_alive = requests.Session()
        assert keep_alive.get(srv.url + "/health", timeout=10).status_code == 200
        half_open = _half_open(srv.port)
        aborted = _half_open(srv.port)
        aborted.close()  # a client that gave up halfway through its body
        silent = socket.create_connection(("127.0.0.1", srv.port), timeout=30)  # sends nothing
        time.sleep(0.5)
        t0 = time.monotonic()
        (os.kill if whom == "main" else os.killpg)(srv.proc.pid, sig)
        assert srv.proc.wait(timeout=30) == 0, srv.log_tail()
        took = time.monotonic() - t0
        assert took <= 3.0, (took, srv.log_tail())
        answer = half_open.recv(300)
        assert answer.startswith(b"HTTP/1.1 503") and b"shutting down" in answer, answer
        assert silent.recv(10) == b""  # closed by the server, not left hanging
    finally:
        srv.stop()


def test_config_reprs_hide_the_keys() -> None:
    from seq2seq.config import ServeConfig
    from serve.server import ServeJobConfig

    for cfg in (ServeConfig(api_keys=["k-secret-1"]), ServeJobConfig(api_keys=["k-secret-1"])):
        assert "k-secret-1" not in repr(cfg) and "<1 keys>" in repr(cfg)


# ---------------------------------------------------------------------- per-key limits (unit)
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_in_the_keys_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text("plain\nlimited requests_per_minute=60 chars_per_day=500 texts_per_request=4\n",
                 encoding="utf-8")
    plain, limited = load_api_keys([], {KEYS_FILE_ENV: str(f)})
    assert (plain, plain.requests_per_minute, plain.chars_per_day) == ("plain", 0, 0)
    assert (limited.requests_per_minute, limited.chars_per_day, limited.texts_per_request) == (
        60, 500, 4)
    f.write_text("secret-key rpm=60\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_api_keys([], {KEYS_FILE_ENV: str(f)})
    assert "line 1: unknown limit 'rpm'" in str(err.value) and "secret-key" not in str(err.value)
    f.write_text("k chars_per_day=-5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chars_per_day must be a whole number >= 0, got '-5'"):
        load_api_keys([], {KEYS_FILE_ENV: str(f)})


def _limited_admission(clock: Clock, utcnow=None) -> Admission:
    from serve.admission import ApiKey

    key = ApiKey.parse("lim requests_per_minute=60 chars_per_day=1000 texts_per_request=4", "t")
    kw = {"utcnow": utcnow} if utcnow else {}
    return Admission([key, "free"], max_queue=8, clock=clock, **kw)


def test_requests_per_minute_is_a_sliding_window_per_key() -> None:
    from serve.admission import LimitExceeded

    clock = Clock()
    adm = _limited_admission(clock)
    lim, free = adm.identify(_request("Bearer lim")), adm.identify(_request("Bearer free"))
    answered = refused = 0
    for i in range(120):  # 120 requests spread over 59 seconds
        clock.now = 1000.0 + i * 59 / 119
        try:
            adm.charge_request(lim)
            answered += 1
        except LimitExceeded as e:
            refused += 1
            assert e.status_code == 429 and e.limit == "requests_per_minute"
            assert 1 <= int(e.headers["Retry-After"]) <= 60
            assert "60 requests per minute" in e.detail and "lim" not in e.detail.split(";")[0][:3]
        adm.charge_request(free)  # another key: never limited
    assert (answered, refused) == (60, 60)
    clock.now = 1000.0 + 60.01  # the first request left the window: one more fits
    adm.charge_request(lim)


def test_texts_per_request_and_chars_per_day() -> None:
    import datetime as dt

    from serve.admission import LimitExceeded

    now = [dt.datetime(2026, 12, 3, 23, 59, 0, tzinfo=dt.timezone.utc)]
    adm = _limited_admission(Clock(), utcnow=lambda: now[0])
    lim = adm.identify(_request("Bearer lim"))
    with pytest.raises(LimitExceeded) as err:
        adm.charge_texts(lim, texts=5, chars=10)
    assert (err.value.status_code, err.value.headers) == (400, None)
    assert "4 texts per request; this request has 5" in err.value.detail
    adm.charge_texts(lim, texts=2, chars=900)
    with pytest.raises(LimitExceeded) as err:
        adm.charge_texts(lim, texts=1, chars=200)
    assert err.value.status_code == 429 and err.value.headers == {"Retry-After": "60"}
    assert "1000 characters per day (900 used today, this request has 200)" in err.value.detail
    now[0] += dt.timedelta(minutes=2)  # a new UTC day
    adm.charge_texts(lim, texts=1, chars=1000)
    adm.charge_texts(adm.identify(_request("Bearer free")), texts=99, chars=10**6)


@pytest.mark.slow
def test_a_key_limited_to_60_a_minute_gets_60_answers_of_120_and_others_all(
        two_models: Path, tmp_path: Path) -> None:
    """Two models, two keys: 120 requests of the limited key within a minute, interleaved with
    the other key's: exactly 60 answered 200, 60 refused 429 with Retry-After naming the
    limit; every request of the other key 200."""
    from concurrent.futures import ThreadPoolExecutor

    from serve.process import ServerProcess

    keys = tmp_path / "keys"
    keys.write_text("lim-4e1a requests_per_minute=60\nfree-9b2c\n", encoding="utf-8")
    with ServerProcess(None, [f"models={two_models}", "threads=1", "log_level=warning"],
                       env={KEYS_FILE_ENV: str(keys)}, ready_timeout=180) as srv:
        def call(i: int) -> tuple[str, requests.Response]:
            key = "lim-4e1a" if i % 2 == 0 else "free-9b2c"
            body = {"text": SHORT, "model": "de-en" if i % 4 < 2 else "en-de", "beam_size": 1}
            return key, _post(srv.url, body, key=key)

        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(240)))
        assert time.monotonic() - start < 55  # all within the limited key's minute
        lim = [r for k, r in results if k == "lim-4e1a"]
        free = [r for k, r in results if k == "free-9b2c"]
        assert sorted(r.status_code for r in lim) == [200] * 60 + [429] * 60
        for r in lim:
            if r.status_code == 429:
                assert 1 <= int(r.headers["Retry-After"]) <= 60
                assert "60 requests per minute" in r.json()["detail"]
        assert [r.status_code for r in free] == [200] * 120
        metrics = requests.get(srv.url + "/metrics", timeout=10).text
        assert 'seq2seq_limited_total{limit="requests_per_minute"} 60.0' in metrics
        assert "lim-4e1a" not in metrics and "free-9b2c" not in metrics
