"""Benchmarks of the many-model service: two models under load, per-key limits, overload, the
bound on loaded models, the sentence cache, and SIGTERM with two models loaded.

    python -m benchmarks.serve_models all [--checkpoint C]    # every table below, ~4 minutes
    python -m benchmarks.serve_models load|limits|overload|memory|cache|sigterm

Every mode starts its own ``seq2seq-serve models=FILE`` on a free 127.0.0.1 port. The two
served models are the checkpoint under two ids (``a``, ``b``): what is measured is the
service, not translation quality. ``memory`` serves three randomly initialised large models
(2-layer biLSTM-512, ~160 MB of weights each) so that their weights dominate the worker's
memory.

* **load**: 48 clients spread over two models for ``--duration`` s, dynamic batching on and
  off (``max_batch_size=1``): requests/s per model, failures, and the on/off ratio per model.
* **limits**: a key limited to 60 requests a minute sends 120 within a minute while another
  key sends as many: how many of each were answered 200 and 429.
* **overload**: four times the measured capacity, open loop, over both models: only
  200/429/503/504 and how fast.
* **memory**: three models with ``max_loaded=2`` (and, for comparison, unbounded): the
  resident memory of the server after each model's first request.
* **cache**: one document sent ten times: the first answer's time and the others', the bytes
  identical.
* **sigterm**: two models loaded, clients with requests in flight and idle connections:
  seconds from SIGTERM to exit (bound: ``shutdown_grace`` + 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks.serve import DEFAULT_CHECKPOINT, DEFAULT_SENTENCES, load_sentences
from benchmarks.serve_stress import group_rss_mib, open_loop, pct
from serve.process import ServerProcess

KEYS_ENV = "SEQ2SEQ_API_KEYS_FILE"


def models_file(directory: Path, checkpoints: dict[str, str], extra: str = "") -> Path:
    path = directory / "models.yaml"
    path.write_text("".join(f"- id: {m}\n  checkpoint: {c}\n{extra}"
                            for m, c in checkpoints.items()), encoding="utf-8")
    return path


def drive(url: str, bodies: list[dict], clients: int, seconds: float,
          headers_of=lambda i: {}) -> list[tuple[int, int, float]]:
    """``clients`` closed-loop clients posting ``bodies`` round robin to ``/predict`` for
    ``seconds``; ``(body index, status, latency)`` per request (status -1: no answer)."""
    out: list[tuple[int, int, float]] = []
    lock, counter = threading.Lock(), [0]
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            with lock:
                i = counter[0]
                counter[0] += 1
            t0 = time.perf_counter()
            try:
                code = session.post(url + "/predict", json=bodies[i % len(bodies)],
                                    headers=headers_of(i), timeout=120).status_code
            except requests.RequestException:
                code = -1
            with lock:
                out.append((i % len(bodies), code, time.perf_counter() - t0))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    return out


def load(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    f = models_file(tmp, {"a": args.checkpoint, "b": args.checkpoint})
    bodies = [{"text": s, "model": m} for s in sentences for m in ("a", "b")]
    rows = {}
    for mode, batching in (("on", ["max_batch_size=32", "batch_timeout=0.02"]),
                           ("off", ["max_batch_size=1", "batch_timeout=0.0"])):
        with ServerProcess(None, [f"models={f}", f"threads={args.threads}", "log_level=warning",
                                  "search.beam_size=1", "max_queue=512", *batching],
                           ready_timeout=300) as srv:
            drive(srv.url, bodies[:8], 4, 3.0)  # warm-up
            results = drive(srv.url, bodies, args.clients, args.duration)
        for model in ("a", "b"):
            mine = [(c, s) for i, c, s in results if bodies[i]["model"] == model]
            ok = [s for c, s in mine if c == 200]
            rows[mode, model] = (len(ok) / args.duration, len(mine) - len(ok),
                                 pct(ok, 50) * 1000, pct(ok, 99) * 1000)
    print(f"{args.clients} clients over two models for {args.duration:.0f} s, greedy, one test "
          f"sentence a request, {args.threads} torch threads\n")
    print("| batching | model | requests/s | failed | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for (mode, model), (rps, failed, p50, p99) in rows.items():
        print(f"| {mode} | {model} | {rps:.1f} | {failed} | {p50:.0f} | {p99:.0f} |")
    for model in ("a", "b"):
        print(f"\nmodel {model}: batching on / off = {rows['on', model][0] / rows['off', model][0]:.2f}x")


def limits(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    f = models_file(tmp, {"a": args.checkpoint, "b": args.checkpoint})
    keys = tmp / "keys"
    keys.write_text("limited-key requests_per_minute=60\nother-key\n", encoding="utf-8")
    with ServerProcess(None, [f"models={f}", f"threads={args.threads}", "log_level=warning",
                              "search.beam_size=1"], env={KEYS_ENV: str(keys)},
                       ready_timeout=300) as srv:
        def one(i: int) -> tuple[str, int, str | None]:
            key = "limited-key" if i % 2 == 0 else "other-key"
            r = requests.post(srv.url + "/predict", timeout=120,
                              json={"text": sentences[i % len(sentences)], "model": "ab"[i % 4 // 2]},
                              headers={"Authorization": f"Bearer {key}"})
            return key, r.status_code, r.headers.get("Retry-After")

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, range(240)))
        seconds = time.perf_counter() - t0
    print(f"240 requests in {seconds:.1f} s, 120 per key, 8 concurrent\n")
    print("| key | 200 | 429 | Retry-After (s) |")
    print("|---|---:|---:|---|")
    for key in ("limited-key", "other-key"):
        mine = [(c, ra) for k, c, ra in got if k == key]
        waits = sorted({int(ra) for c, ra in mine if c == 429 and ra})
        print(f"| {key.split('-')[0]} (60/min: {key == 'limited-key'}) | "
              f"{sum(c == 200 for c, _ in mine)} | {sum(c == 429 for c, _ in mine)} | "
              f"{waits[0] if waits else '-'}..{waits[-1] if waits else '-'} |")


def overload(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    f = models_file(tmp, {"a": args.checkpoint, "b": args.checkpoint})
    with ServerProcess(None, [f"models={f}", f"threads={args.threads}", "log_level=warning",
                              "search.beam_size=1", "max_queue=32", "timeout=2",
                              "max_batch_size=32", "batch_timeout=0.02"],
                       ready_timeout=300) as srv:
        bodies = [{"text": s, "model": m} for s in sentences for m in ("a", "b")]
        cap = drive(srv.url, bodies, 16, 8.0)
        rate = 4 * sum(c == 200 for _, c, _ in cap) / 8.0
        results = open_loop(srv.url, bodies, rate, args.duration, 60)
        n = len(results)
        healthy = requests.get(srv.url + "/health", timeout=10).status_code == 200
    codes = sorted({c for c, _ in results})
    print(f"capacity {rate / 4:.1f} requests/s over two models; offered {rate:.1f}/s (x4) for "
          f"{args.duration:.0f} s = {n} requests; max_queue=32, timeout=2 s\n")
    print("| status | requests | p50 s | p99 s |")
    print("|---|---:|---:|---:|")
    for c in codes:
        xs = [s for cc, s in results if cc == c]
        print(f"| {c} | {len(xs)} | {pct(xs, 50):.2f} | {pct(xs, 99):.2f} |")
    print(f"\nonly 200/429/503/504: {set(codes) <= {200, 429, 503, 504}}; healthy afterwards: "
          f"{healthy}")


def big_models(tmp: Path, checkpoint: str, n: int) -> dict[str, str]:
    """``n`` randomly initialised 2-layer biLSTM-512 bundles with the checkpoint's vocabularies."""
    import torch

    from seq2seq.checkpoint import load_bundle, make_bundle, save_bundle, tokenizers_from_bundle
    from seq2seq.config import ModelConfig
    from seq2seq.model.seq2seq import Seq2Seq

    ref = load_bundle(checkpoint)
    src, tgt = tokenizers_from_bundle(ref)
    cfg = ModelConfig(rnn="lstm", embed_dim=512, hidden_size=512, encoder_layers=2,
                      decoder_layers=2, tie_embeddings=False)
    out = {}
    for i in range(n):
        torch.manual_seed(i)
        model = Seq2Seq(cfg, src.vocab_size, tgt.vocab_size)
        path = tmp / f"big{i}.pt"
        save_bundle(path, make_bundle(model, cfg, src, tgt, dict(ref["meta"]), None))
        out["xyz"[i]] = str(path)
    return out


def memory(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    paths = big_models(tmp, args.checkpoint, 3)
    mb = os.path.getsize(paths["x"]) / 2**20
    print(f"three models of {mb:.0f} MiB each (2-layer biLSTM-512, random weights)\n")
    print("| max_loaded | after | server RSS MiB |")
    print("|---|---|---:|")
    for bound in (2, 0):
        f = models_file(tmp, paths, "  preload: false\n")
        with ServerProcess(None, [f"models={f}", "threads=1", "log_level=warning",
                                  f"max_loaded={bound}", "search.beam_size=1",
                                  "search.max_len_b=5"], ready_timeout=300) as srv:
            print(f"| {bound or 'all'} | start | {group_rss_mib(srv.proc.pid):.0f} |")
            for model in ("x", "y", "z", "x", "y", "z"):
                r = requests.post(srv.url + "/predict", json={"text": sentences[0],
                                                             "model": model}, timeout=300)
                assert r.status_code == 200, r.text
                time.sleep(0.5)
                loaded = [m["id"] for m in requests.get(srv.url + "/models", timeout=10)
                          .json()["models"] if m["loaded"]]
                print(f"| {bound or 'all'} | {model} (loaded: {','.join(loaded)}) | "
                      f"{group_rss_mib(srv.proc.pid):.0f} |")


def cache(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    f = models_file(tmp, {"a": args.checkpoint, "b": args.checkpoint})
    doc = "\n\n".join(" ".join(sentences[i:i + 3]) for i in range(0, 30, 3))  # 10 paragraphs
    with ServerProcess(None, [f"models={f}", f"threads={args.threads}", "log_level=warning",
                              "max_chars=10000", "max_tokens=400"], ready_timeout=300) as srv:
        requests.post(srv.url + "/predict", json={"text": sentences[40]}, timeout=120)  # warm
        times, bodies = [], []
        for _ in range(10):
            t0 = time.perf_counter()
            r = requests.post(srv.url + "/predict", json={"text": doc, "model": "a"}, timeout=300)
            times.append(time.perf_counter() - t0)
            bodies.append(r.content)
    rest = statistics.median(times[1:])
    print(f"one document of {len(doc)} characters (30 sentences), beam 5, sent ten times\n")
    print(f"first: {times[0] * 1000:.0f} ms; answers 2-10: median {rest * 1000:.1f} ms, max "
          f"{max(times[1:]) * 1000:.1f} ms; first / median = {times[0] / rest:.0f}x; "
          f"byte-identical: {len(set(bodies)) == 1}")


def sigterm(args: argparse.Namespace, sentences: list[str], tmp: Path) -> None:
    import socket

    f = models_file(tmp, {"a": args.checkpoint, "b": args.checkpoint})
    srv = ServerProcess(None, [f"models={f}", "threads=1", "log_level=warning",
                               "max_batch_size=1"], ready_timeout=300).start()
    for m in ("a", "b"):
        requests.post(srv.url + "/predict", json={"text": sentences[0], "model": m}, timeout=120)
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(4)]
    heavy = {"texts": sentences[:16], "beam_size": 8}
    codes: list[int] = []

    def call(m: str) -> None:
        try:
            codes.append(requests.post(srv.url + "/predict", json={**heavy, "model": m},
                                       timeout=120).status_code)
        except requests.RequestException:
            codes.append(-1)

    threads = [threading.Thread(target=call, args=("ab"[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    os.kill(srv.proc.pid, signal.SIGTERM)
    srv.proc.wait(timeout=60)
    seconds = time.perf_counter() - t0
    for t in threads:
        t.join(timeout=60)
    for s in idle:
        s.close()
    print(f"two models loaded, 6 heavy requests in flight, 4 idle connections: exit "
          f"{srv.proc.returncode} {seconds:.1f} s after SIGTERM (bound: shutdown_grace 20 + 2 "
          f"s); answers {sorted(codes)}")


MODES = {"load": load, "limits": limits, "overload": overload, "memory": memory,
         "cache": cache, "sigterm": sigterm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=[*MODES, "all"])
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--sentences", default=DEFAULT_SENTENCES)
    ap.add_argument("--clients", type=int, default=48)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"no checkpoint at {args.checkpoint}: run `make train` or pass "
                         "--checkpoint")
    args.checkpoint = str(Path(args.checkpoint).resolve())
    sentences = load_sentences(args.sentences, 400, 200)
    for name in (MODES if args.mode == "all" else [args.mode]):
        print(f"\n## {name}\n")
        with tempfile.TemporaryDirectory() as tmp:
            MODES[name](args, sentences, Path(tmp))


if __name__ == "__main__":
    main()
