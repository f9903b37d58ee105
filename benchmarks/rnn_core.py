"""Benchmark the fused recurrent core against torch.nn.LSTM/GRU/RNN and a naive cell loop.

``python -m benchmarks.rnn_core [--threads 2] [--repeats 3] [--cells lstm gru rnn]
[--json out.json]`` prints one table measured in one run (best of ``--repeats`` round-robin
rounds): forward (inference, no grad) and forward+backward times of FusedLSTM/FusedGRU/FusedRNN
(tanh), torch.nn.LSTM/GRU/RNN and a Python loop over nn.LSTMCell/GRUCell/RNNCell, the ratios,
and the effective GFLOP/s against the machine's own large float32 GEMM.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from seq2seq.rnn import FusedGRU, FusedLSTM, FusedRNN


@dataclass(frozen=True)
class Shape:
    """One benchmark configuration (time-major input ``(T, B, I)``)."""

    name: str
    batch: int
    steps: int
    input_size: int
    hidden: int
    layers: int = 2
    bidirectional: bool = True


IMPLS = ("fused", "native", "cell")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
FUSED = {"lstm": FusedLSTM, "gru": FusedGRU, "rnn": FusedRNN}
NATIVE = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}

SHAPES = [
    Shape("translation", 64, 50, 256, 512),
    Shape("small", 16, 30, 128, 128),
]


class CellLoop(nn.Module):
    """Naive stacked (bi)directional RNN: a Python loop over nn.LSTMCell/GRUCell/RNNCell steps."""

    def __init__(self, kind: str, shape: Shape) -> None:
        super().__init__()
        cell = CELLS[kind]
        nd = 2 if shape.bidirectional else 1
        self.lstm = kind == "lstm"
        self.cells = nn.ModuleList(
            nn.ModuleList(
                cell(shape.input_size if layer == 0 else nd * shape.hidden, shape.hidden)
                for _ in range(nd)
            )
            for layer in range(shape.layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Run ``x (T, B, I)`` and return the top layer's output ``(T, B, D*H)``."""
        for layer in self.cells:
            outs = []
            for d, cell in enumerate(layer):
                seq = x if d == 0 else x.flip(0)
                state = None
                ys = []
                for t in range(seq.shape[0]):
                    state = cell(seq[t], state)
                    ys.append(state[0] if self.lstm else state)
                y = torch.stack(ys)  # (T, B, H)
                outs.append(y if d == 0 else y.flip(0))
            x = torch.cat(outs, -1)  # (T, B, D*H)
        return x


def rnn_flops(shape: Shape, gates: int) -> float:
    """Forward GEMM FLOPs of the stacked RNN (backward is twice this)."""
    nd = 2 if shape.bidirectional else 1
    total = 0.0
    for layer in range(shape.layers):
        isize = shape.input_size if layer == 0 else nd * shape.hidden
        total += 2.0 * shape.steps * shape.batch * gates * shape.hidden * (isize + shape.hidden)
    return nd * total


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Best (minimum) wall time in seconds of ``fn`` over ``repeats`` runs after one warm-up.

    The minimum is the least noisy estimate on a shared machine: interference only adds time.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


DEVICE = torch.device("cpu")  # set by --device


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def gemm_gflops(repeats: int, n: int = 2048) -> float:
    """The machine's large float32 GEMM throughput (``n x n @ n x n``) in GFLOP/s."""
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    out = torch.empty(n, n, device=DEVICE)

    def mm() -> None:
        torch.mm(a, b, out=out)
        _sync()

    return 2.0 * n**3 / timeit(mm, repeats) / 1e9


def build(kind: str, impl: str, shape: Shape) -> nn.Module:
    """Construct one implementation (same weights are not needed for timing)."""
    args = (shape.input_size, shape.hidden, shape.layers)
    if impl == "fused":
        return FUSED[kind](*args, bidirectional=shape.bidirectional)
    if impl == "native":
        return NATIVE[kind](*args, bidirectional=shape.bidirectional)
    return CellLoop(kind, shape)


def measure(kind: str, shape: Shape, repeats: int) -> dict[str, tuple[float, float]]:
    """Forward (no grad) and forward+backward seconds of every implementation.

    The implementations are timed round-robin (one run each per round, best of ``repeats``
    rounds after a warm-up round), so interference from other jobs hits them alike.
    """
    torch.manual_seed(0)
    x = torch.randn(shape.steps, shape.batch, shape.input_size, device=DEVICE,
                    requires_grad=True)
    modules = {impl: build(kind, impl, shape).to(DEVICE) for impl in IMPLS}

    def out(m: nn.Module) -> Tensor:
        y = m(x)
        return y[0] if isinstance(y, tuple) else y

    def fwd(m: nn.Module) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            out(m)
        _sync()
        return time.perf_counter() - start

    def fwd_bwd(m: nn.Module) -> float:
        m.zero_grad(set_to_none=True)
        x.grad = None
        start = time.perf_counter()
        out(m).sum().backward()
        _sync()
        return time.perf_counter() - start

    best = {impl: [math.inf, math.inf] for impl in IMPLS}
    for rnd in range(repeats + 1):
        for impl, m in modules.items():
            f, fb = fwd(m), fwd_bwd(m)
            if rnd:  # round 0 warms up
                best[impl] = [min(best[impl][0], f), min(best[impl][1], fb)]
    return {impl: (f, fb) for impl, (f, fb) in best.items()}


def run(repeats: int, shapes: list[Shape], cells: tuple[str, ...] = tuple(GATES)) -> dict:
    """Measure every (cell, shape, implementation) and return the results."""
    peak = gemm_gflops(max(repeats, 5))
    rows = []
    for shape in shapes:
        for kind in cells:
            flops = rnn_flops(shape, GATES[kind])
            res = measure(kind, shape, repeats)
            for impl, (f, fb) in res.items():
                rows.append(
                    {
                        "cell": kind,
                        "shape": shape.name,
                        "impl": impl,
                        "fwd_ms": 1e3 * f,
                        "fwd_bwd_ms": 1e3 * fb,
                        "fwd_gflops": flops / f / 1e9,
                        "fwd_bwd_gflops": 3 * flops / fb / 1e9,
                        "fwd_vs_native": f / res["native"][0],
                        "fwd_bwd_vs_native": fb / res["native"][1],
                        "cell_over_impl_fwd": res["cell"][0] / f,
                        "cell_over_impl_fwd_bwd": res["cell"][1] / fb,
                    }
                )
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": (torch.cuda.get_device_name() if DEVICE.type == "cuda"
                    else platform.processor() or platform.machine()),
        "repeats": repeats,
        "gemm_gflops": peak,
        "shapes": [asdict(s) for s in shapes],
        "rows": rows,
    }


def format_table(result: dict) -> str:
    """Render the results as a Markdown table."""
    lines = [
        f"torch {result['torch']}, {result['threads']} threads, best of {result['repeats']}; "
        f"large float32 GEMM: {result['gemm_gflops']:.1f} GFLOP/s",
        "",
        "| cell | shape | impl | fwd ms | fwd+bwd ms | fwd GFLOP/s | fwd+bwd GFLOP/s "
        "| fwd+bwd / native | cell loop / impl (fwd+bwd) | cell loop / impl (fwd) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['cell']} | {r['shape']} | {r['impl']} | {r['fwd_ms']:.1f} "
            f"| {r['fwd_bwd_ms']:.1f} | {r['fwd_gflops']:.1f} | {r['fwd_bwd_gflops']:.1f} "
            f"| {r['fwd_bwd_vs_native']:.2f} | {r['cell_over_impl_fwd_bwd']:.2f} "
            f"| {r['cell_over_impl_fwd']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--shapes", nargs="+", default=[s.name for s in SHAPES])
    parser.add_argument("--cells", nargs="+", default=list(GATES), choices=list(GATES),
                        help="rnn = the Elman RNN (tanh)")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (native = cuDNN there)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    shapes = [s for s in SHAPES if s.name in args.shapes]
    result = run(args.repeats, shapes, tuple(args.cells))
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
