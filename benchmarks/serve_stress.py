"""Stress tests of ``seq2seq-serve``: overload at a multiple of its capacity, and a long soak.

    python -m benchmarks.serve_stress overload [--checkpoint C] [--factor 4] [--duration 20]
        [--max-queue 32] [--timeout 2]
    python -m benchmarks.serve_stress soak [--checkpoint C] [--requests 20000] [--clients 16]

Both start their own server on a free 127.0.0.1 port (:class:`serve.server.ServerProcess`) and
are bounded in time and request count.

* **overload**: measures the server's capacity (closed loop, ``--clients`` clients, 8 s), then
  offers ``--factor`` times that rate open loop (requests sent on schedule whether or not the
  earlier ones were answered) for ``--duration`` seconds. With the bounded queue
  (``max_queue``) and the per-request deadline (``timeout``) every answer must be 200, 503 or
  504, accepted requests must finish within about the deadline, and the server must answer the
  same canary request identically afterwards.
* **soak**: ``--requests`` short requests from ``--clients`` closed-loop clients; the resident
  memory of all the server's processes (its process group) is sampled every 1,000 requests and
  its growth after warm-up (the first 2,000) must stay under 10%.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import threading
import time
from pathlib import Path

import requests

from benchmarks.serve import DEFAULT_CHECKPOINT, DEFAULT_SENTENCES, load_sentences, run_load
from serve.server import ServerProcess


def group_rss_mib(pgid: int) -> float:
    """Resident memory (MiB) of every process in process group ``pgid`` (Linux ``/proc``)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024


def pct(xs: list[float], q: float) -> float:
    """Percentile ``q`` of ``xs`` (nearest rank), NaN when empty."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def open_loop(url: str, bodies: list[dict], rate: float, duration: float,
              timeout: float) -> list[tuple[int, float]]:
    """POST ``bodies`` (in turn) to ``url/predict`` at ``rate`` requests/s for ``duration`` s,
    whatever the answers take (an open loop); ``(status, seconds from due time)`` per request,
    status -1 for a failed connection."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        try:
            code = requests.post(url + "/predict", json=bodies[i % len(bodies)],
                                 timeout=timeout).status_code
        except requests.RequestException:
            code = -1
        with lock:
            results.append((code, time.perf_counter() - due))

    n, t0 = int(rate * duration), time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=256) as pool:
        for i in range(n):
            due = t0 + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(one, i, due)
    return results


def overload(args: argparse.Namespace, sentences: list[str]) -> None:
    overrides = [f"max_queue={args.max_queue}", f"timeout={args.timeout}", "max_batch_size=32",
                 "batch_timeout=0.02", f"threads={args.threads}", "log_level=warning",
                 f"search.beam_size={args.beam_size}"]
    with ServerProcess(args.checkpoint, overrides, ready_timeout=300) as srv:
        canary = requests.post(srv.url + "/predict", json={"text": sentences[0]}, timeout=60).json()
        cap = run_load(srv.url, sentences, args.clients, 8.0, 10**9, 1, "capacity")
        rate = args.factor * cap.rps
        results = open_loop(srv.url, [{"text": s} for s in sentences], rate, args.duration,
                            args.timeout * 10 + 60)
        n = len(results)
        healthy = requests.get(srv.url + "/health", timeout=10).status_code == 200
        same = requests.post(srv.url + "/predict", json={"text": sentences[0]},
                             timeout=60).json() == canary
    codes: dict[int, int] = {}
    for c, _ in results:
        codes[c] = codes.get(c, 0) + 1
    ok = [s for c, s in results if c == 200]
    print(f"capacity (closed loop, {args.clients} clients, 8 s): {cap.rps:.1f} requests/s")
    print(f"offered: {rate:.1f} requests/s (x{args.factor}) for {args.duration:.0f} s = {n} "
          f"requests; max_queue={args.max_queue}, timeout={args.timeout} s\n")
    print("| status | requests | p50 s | p99 s | max s |")
    print("|---|---:|---:|---:|---:|")
    for c in sorted(codes):
        xs = [s for cc, s in results if cc == c]
        print(f"| {c} | {codes[c]} | {pct(xs, 50):.2f} | {pct(xs, 99):.2f} | {max(xs):.2f} |")
    print(f"\nonly 200/503/504: {set(codes) <= {200, 503, 504}}; accepted p99 {pct(ok, 99):.2f} s "
          f"(deadline {args.timeout} s + one batch); healthy afterwards: {healthy}; canary "
          f"identical: {same}")


def soak(args: argparse.Namespace, sentences: list[str]) -> None:
    overrides = ["max_batch_size=32", "batch_timeout=0.01", f"threads={args.threads}",
                 "log_level=warning", "search.beam_size=1", "timeout=120"]
    samples: list[tuple[int, float]] = []
    with ServerProcess(args.checkpoint, overrides, ready_timeout=300) as srv:
        pgid = srv.proc.pid
        done, failures = 0, 0
        t0 = time.perf_counter()
        while done < args.requests:
            n = min(1000, args.requests - done)
            r = run_load(srv.url, sentences, args.clients, 600.0, n, 1, "soak")
            done += r.requests
            failures += r.failures
            samples.append((done, group_rss_mib(pgid)))
        seconds = time.perf_counter() - t0
    warm = next(rss for n, rss in samples if n >= args.warmup)
    end = samples[-1][1]
    print(f"{done} requests in {seconds:.0f} s ({done / seconds:.1f}/s), {failures} failed, "
          f"{args.clients} clients, greedy, short test sentences\n")
    print("| requests | server RSS MiB |")
    print("|---:|---:|")
    for n, rss in samples:
        print(f"| {n} | {rss:.1f} |")
    growth = 100 * (end - warm) / warm
    print(f"\nRSS after warm-up ({args.warmup} requests): {warm:.1f} MiB; at the end: {end:.1f} "
          f"MiB; growth {growth:+.1f}% (limit 10%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["overload", "soak"])
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--sentences", default=DEFAULT_SENTENCES)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch threads in the model worker")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--factor", type=float, default=4.0, help="offered load / capacity")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--max-queue", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    args = ap.parse_args()
    if not Path(args.checkpoint).exists():
        raise SystemExit(f"{args.checkpoint} not found: train first (make train) or pass --checkpoint")
    sentences = load_sentences(args.sentences, 200, 150)
    (overload if args.mode == "overload" else soak)(args, sentences)


if __name__ == "__main__":
    main()
