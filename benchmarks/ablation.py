"""Does each speed trick still pay? Each one timed on and off, in one run, rows taking turns.

Usage::

    python -m benchmarks.ablation [--checkpoint runs/default/checkpoints/best.pt]
        [--data data/bible/test.de.gz] [--sentences 256] [--threads 2] [--repeats 5]

A trick stays only if switching it off costs at least 3% on its end-to-end benchmark
(docs/CONTRIBUTING.md). Switched off here by patching, never by a flag in the library:

* ``length-trimmed attention`` (search): decoder states carry no ``src_lens``, so attention runs
  over the padded source rows; beam 5, batch 64 on the test slice of :mod:`benchmarks.search`.
* ``scratch buffers`` (RNN core and training step): :mod:`seq2seq.rnn.workspace` hands out
  fresh tensors instead of reused ones; forward + backward of a 2-layer bidirectional FusedLSTM
  at the translation shape of :mod:`benchmarks.rnn_core` (B 64, T 50, I 256, H 512), and one
  default-model training step of :mod:`benchmarks.train_step` (forward + backward + Adam,
  B 100, S = T = 40, vocab 4000).
* ``tanh through the sigmoid`` (:mod:`seq2seq.rnn.activation`, float32 on the CPU): every
  ``tanh`` of the core and the models runs ``torch.tanh`` instead; the search row above, the
  default model's training step, the training step of a Bahdanau input-feeding model (its
  energies ``tanh(W_q q + W_k m)`` are the largest ``tanh``), the FusedLSTM row above, and
  the op alone on a ``(4000, 256)`` float32 tensor (ms per 100 calls).

Prints, per trick, the best and median seconds with and without it and what removing it costs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from benchmarks.search import add_slice_args, load_slice, run
from benchmarks.train_step import make_batch
from seq2seq.config import ModelConfig, SearchConfig
from seq2seq.model.loss import label_smoothed_cross_entropy
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.rnn import FusedLSTM, activation, workspace
from seq2seq.rnn import gru as gru_mod
from seq2seq.rnn import lstm as lstm_mod


@contextlib.contextmanager
def no_length_trim(model: Seq2Seq) -> Iterator[None]:
    """Decoder states without ``src_lens``: attention over the padded rows."""
    init = model.init_state

    def padded(enc):  # noqa: ANN001, ANN202
        state = init(enc)
        state.src_lens = None
        return state

    model.init_state = padded
    try:
        yield
    finally:
        del model.init_state


@contextlib.contextmanager
def no_scratch_buffers() -> Iterator[None]:
    """The fused layers allocate every buffer afresh."""
    def fresh(name, shape, like, reuse=True):  # noqa: ANN001, ANN202, ARG001
        return like.new_empty(shape)

    saved = gru_mod.buffer, lstm_mod.buffer
    gru_mod.buffer = lstm_mod.buffer = fresh
    workspace.release()
    try:
        yield
    finally:
        gru_mod.buffer, lstm_mod.buffer = saved


@contextlib.contextmanager
def torch_tanh() -> Iterator[None]:
    """Every ``tanh`` of :mod:`seq2seq.rnn.activation` runs ``torch.tanh``."""
    saved = activation._via_sigmoid
    activation._via_sigmoid = lambda x: False  # noqa: ARG005
    try:
        yield
    finally:
        activation._via_sigmoid = saved


def train_step_fn(vocab: int = 4000, cfg: ModelConfig | None = None) -> Callable[[], None]:
    """One forward + backward + Adam step of a model (the default one) on a random batch."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg or ModelConfig(), vocab, vocab).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    src, src_len, tgt_in, tgt_out = make_batch(100, 40, 40, vocab)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = label_smoothed_cross_entropy(model(src, src_len, tgt_in), tgt_out, 0.1)
        (out.loss / out.ntokens).backward()
        opt.step()

    return step


def rnn_core_fn() -> Callable[[], None]:
    """Forward + backward of a 2-layer bidirectional FusedLSTM at the translation shape."""
    torch.manual_seed(0)
    rnn = FusedLSTM(256, 512, num_layers=2, bidirectional=True)
    x = torch.randn(50, 64, 256, requires_grad=True)  # (T, B, I)

    def step() -> None:
        y, _ = rnn(x)
        y.sum().backward()

    return step


def tanh_op_fn() -> Callable[[], None]:
    """100 out-of-place ``tanh`` calls of :mod:`seq2seq.rnn.activation` on a (4000, 256) tensor."""
    torch.manual_seed(0)
    x = torch.randn(4000, 256)
    out = torch.empty_like(x)

    def step() -> None:
        for _ in range(100):
            activation.tanh(x, out=out)

    return step


def compare(name: str, fn: Callable[[], object], off: Callable[[], contextlib.AbstractContextManager],
            repeats: int) -> dict:
    """Time ``fn`` with the trick (as is) and without it (inside ``off()``), alternating."""
    fn()  # warm-up
    with off():
        fn()
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(repeats):
        for label in ("with", "without"):
            ctx = off() if label == "without" else contextlib.nullcontext()
            with ctx:
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"trick": name, "best": best, "median": median,
            "cost_best": best["without"] / best["with"] - 1,
            "cost_median": median["without"] / median["with"] - 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_slice_args(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, ids, desc, data = load_slice(args)
    beam = SearchConfig(beam_size=5, n_best=1)

    def search_slice() -> None:
        run(model, ids, 64, beam)

    rows = [
        compare("length-trimmed attention (search, beam 5, batch 64)", search_slice,
                lambda: no_length_trim(model), args.repeats),
        compare("scratch buffers (RNN core, LSTM translation shape, fwd+bwd)", rnn_core_fn(),
                no_scratch_buffers, args.repeats),
        compare("scratch buffers (train step, default model)", train_step_fn(),
                no_scratch_buffers, args.repeats),
        compare("tanh through the sigmoid (search, beam 5, batch 64)", search_slice,
                torch_tanh, args.repeats),
        compare("tanh through the sigmoid (train step, default model)", train_step_fn(),
                torch_tanh, args.repeats),
        compare("tanh through the sigmoid (train step, Bahdanau, input feeding)",
                train_step_fn(cfg=ModelConfig(attention="bahdanau", input_feeding=True)),
                torch_tanh, args.repeats),
        compare("tanh through the sigmoid (RNN core, LSTM translation shape, fwd+bwd)",
                rnn_core_fn(), torch_tanh, args.repeats),
        compare("tanh through the sigmoid (the op, (4000, 256) float32, 100 calls)",
                tanh_op_fn(), torch_tanh, args.repeats),
    ]
    print(f"model: {desc}\ndata: {data} (first {len(ids)} sentences), torch threads: "
          f"{args.threads}, {args.repeats} alternating repeats\n")
    print("| trick | with: best / median s | without: best / median s | removing it costs "
          "(best / median) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['trick']} | {r['best']['with']:.3f} / {r['median']['with']:.3f} | "
              f"{r['best']['without']:.3f} / {r['median']['without']:.3f} | "
              f"{100 * r['cost_best']:+.1f}% / {100 * r['cost_median']:+.1f}% |")


if __name__ == "__main__":
    main()
