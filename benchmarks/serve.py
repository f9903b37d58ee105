"""Load test of ``seq2seq-serve``: dynamic batching on vs off, in one run.

For each mode the benchmark starts its own server on a free localhost port (a subprocess, see
:class:`serve.server.ServerProcess`), warms it up, then runs ``--clients`` concurrent clients
for ``--duration`` seconds (or until ``--max-requests``), each sending one fixed test-split
sentence per request, round robin. It prints requests/s, sentences/s, failed requests and
p50/p95/p99 latency per mode and the on/off throughput ratio::

    python -m benchmarks.serve                                   # default model, 32 clients, 30 s
    python -m benchmarks.serve --checkpoint path/to/best.pt --duration 10

Modes: ``off`` = ``max_batch_size=1`` (one request per model call); ``on`` =
``max_batch_size=--batch-size``, ``batch_timeout=--batch-timeout`` and the server's length
grouping (``length_group_ratio``); ``on-ungrouped`` (optional) = the same with grouping off. Everything stays on
127.0.0.1 and is bounded in time and request count. The clients run in this process (threads)
and share the machine's CPU with the server, as a real co-located load generator would.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CHECKPOINT = "runs/default/checkpoints/best.pt"
DEFAULT_SENTENCES = "data/bible/test.de.gz"


@dataclass
class LoadResult:
    """Outcome of one load run."""

    mode: str
    seconds: float
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    failures: int = 0
    sentences_per_request: int = 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.failures

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in milliseconds."""
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
        return xs[k] * 1000


def load_sentences(path: str, n: int, max_chars: int) -> list[str]:
    """The first ``n`` non-empty sentences of ``path`` no longer than ``max_chars``."""
    from seq2seq.data import read_lines

    out = [s for s in read_lines(path) if s.strip() and len(s) <= max_chars]
    if not out:
        raise SystemExit(f"no usable sentences in {path}")
    return out[:n]


def run_load(
    url: str,
    sentences: list[str],
    clients: int,
    duration: float,
    max_requests: int,
    per_request: int,
    mode: str,
) -> LoadResult:
    """Drive ``clients`` concurrent clients against ``url`` for ``duration`` seconds."""
    import requests

    lock = threading.Lock()
    counter = [0]
    result = LoadResult(mode=mode, seconds=duration, sentences_per_request=per_request)
    stop_at = time.monotonic() + duration

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            with lock:
                i = counter[0]
                if i >= max_requests:
                    return
                counter[0] += 1
            texts = [sentences[(i * per_request + k) % len(sentences)] for k in range(per_request)]
            body = {"text": texts[0]} if per_request == 1 else {"texts": texts}
            t0 = time.perf_counter()
            try:
                r = session.post(url + "/predict", json=body, timeout=120)
                ok = r.status_code == 200 and len(r.json()["translations"]) == per_request
            except requests.RequestException:
                ok = False
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    result.latencies.append(dt)
                else:
                    result.failures += 1

    start = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 180)
    result.seconds = time.monotonic() - start
    return result


def bench_mode(mode: str, args: argparse.Namespace, sentences: list[str]) -> LoadResult:
    """Start a server for ``mode`` (``"on"``/``"off"``), warm it up, load it, stop it."""
    import requests

    from serve.server import ServerProcess

    if mode == "off":
        batching = ["max_batch_size=1", "batch_timeout=0.0"]
    elif mode in ("on", "on-ungrouped"):
        ratio = args.length_group_ratio if mode == "on" else 0.0
        batching = [
            f"max_batch_size={args.batch_size}",
            f"batch_timeout={args.batch_timeout}",
            f"length_group_ratio={ratio}",
        ]
    else:
        raise SystemExit(f"unknown mode {mode!r}: use off, on or on-ungrouped")
    overrides = batching + [
        f"search.beam_size={args.beam_size}",
        f"threads={args.threads}",
        "log_level=warning",
        f"timeout={args.duration + 120}",
    ]
    with ServerProcess(args.checkpoint, overrides, ready_timeout=300) as server:
        for s in sentences[:4]:  # warm-up (first calls allocate)
            requests.post(server.url + "/predict", json={"text": s}, timeout=120)
        return run_load(
            server.url,
            sentences,
            args.clients,
            args.duration,
            args.max_requests,
            args.texts_per_request,
            mode,
        )


def format_table(results: list[LoadResult]) -> str:
    """Markdown table of the results."""
    lines = [
        "| batching | requests | failed | requests/s | sentences/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.requests} | {r.failures} | {r.rps:.1f} | "
            f"{r.rps * r.sentences_per_request:.1f} | {r.pct(50):.0f} | {r.pct(95):.0f} | "
            f"{r.pct(99):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--sentences", default=DEFAULT_SENTENCES, help="source side of the test split")
    p.add_argument("--num-sentences", type=int, default=200, help="fixed sentences cycled")
    p.add_argument("--max-chars", type=int, default=300, help="skip longer test sentences")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per mode")
    p.add_argument("--max-requests", type=int, default=100_000, help="bound per mode")
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32, help="max_batch_size when on")
    p.add_argument("--batch-timeout", type=float, default=0.02, help="batch_timeout when on")
    p.add_argument(
        "--length-group-ratio",
        type=float,
        default=2.0,
        help="server length_group_ratio when on (mode on-ungrouped uses 0)",
    )
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads in the server worker")
    p.add_argument("--modes", default="off,on", help="comma list of off, on, on-ungrouped")
    args = p.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        print(
            f"checkpoint {args.checkpoint} not found: train one (`make train`) or pass "
            "--checkpoint PATH",
            file=sys.stderr,
        )
        return 2
    sentences = load_sentences(args.sentences, args.num_sentences, args.max_chars)
    import torch

    print(
        f"checkpoint {args.checkpoint} | {len(sentences)} test sentences | {args.clients} "
        f"clients x {args.duration:.0f} s per mode | beam {args.beam_size} | batch "
        f"{args.batch_size}, timeout {args.batch_timeout}s | torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads here",
        flush=True,
    )
    results = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        print(f"running batching={mode} ...", flush=True)
        results.append(bench_mode(mode, args, sentences))
    print(format_table(results))
    by_mode = {r.mode: r for r in results}
    if "on" in by_mode and "off" in by_mode and by_mode["off"].rps > 0:
        ratio = by_mode["on"].rps / by_mode["off"].rps
        print(
            f"throughput on/off: {ratio:.2f}x (target >= 3x) {'MET' if ratio >= 3 else 'NOT MET'}"
        )
    failed = sum(r.failures for r in results)
    print(f"failed requests: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
