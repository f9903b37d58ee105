"""Search throughput: sentences/s and target tokens/s, batch 1 vs batch 64, greedy vs beam.

Usage::

    python -m benchmarks.search [--checkpoint runs/default/checkpoints/best.pt]
        [--data data/bible/test.de.gz] [--sentences 256] [--beam 5] [--batch 64]
        [--threads 2] [--repeats 2] [--json]

Decodes a fixed slice (the first ``--sentences`` lines) of the test split with the default
model. Sentences are sorted by length and cut into consecutive batches (as the Translator does).
Without the checkpoint, a randomly initialised default-size model (8000-piece vocabularies) with
the ``</s>`` output bias raised is used instead, its source ids made by hashing words; the output
says so. Target tokens count the best hypothesis' tokens plus ``</s>``. Each row is the best of
``--repeats`` passes over the slice (the rows take turns, so a noisy moment hits one pass only).
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import torch

from seq2seq.config import ModelConfig, SearchConfig
from seq2seq.data import pad_sequences, read_lines
from seq2seq.runtime import resolve_precision
from seq2seq.search import search
from seq2seq.tokenizer import EOS_ID

FALLBACK_DATA = Path("tests/fixtures/tiny.de")


def load(checkpoint: Path, vocab: int = 8000, eos_bias: float = 4.0, device: str = "cpu",
         precision: str = "fp32"):
    """Model and a ``text -> ids`` function; the trained model when ``checkpoint`` exists.

    The model is put on ``device`` with its weights in ``precision`` (converted once, as the
    Translator does).

    Returns:
        ``(model, encode, description)``.
    """
    if checkpoint.exists():
        from seq2seq.inference.translator import Translator

        tr = Translator.from_checkpoint(checkpoint, device=device, precision=precision)
        tr.model.eval()
        return tr.model, tr.src_tok.encode, f"trained model {checkpoint} (step {tr.step})"
    from seq2seq.model.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(), vocab, vocab).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] += eos_bias
    dtype = resolve_precision(precision, torch.device(device), key="--precision")
    model.to(device=device, dtype=dtype or torch.float32)

    def encode(text: str) -> list[int]:
        return [4 + zlib.crc32(w.encode()) % (vocab - 4) for w in text.split()]

    return (
        model,
        encode,
        (
            f"RANDOM default-size model ({checkpoint} not found; EOS bias "
            f"+{eos_bias}, hashed word ids) - numbers are for the search only"
        ),
    )


def run(model, ids: list[list[int]], batch: int, cfg: SearchConfig) -> dict[str, float]:
    """Decode ``ids`` in length-sorted batches of ``batch`` sentences; time it (one pass).

    Returns:
        ``{"seconds", "sentences_per_s", "tokens_per_s", "tokens"}``.
    """
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    tokens = 0
    dev = next(model.parameters()).device
    start = time.perf_counter()
    for s in range(0, len(order), batch):
        src, src_len = pad_sequences([ids[i] for i in order[s : s + batch]])  # (b, S), (b,)
        for hyps in search(model, src.to(dev), src_len.to(dev), cfg):
            tokens += len(hyps[0].tokens) + 1
    sec = time.perf_counter() - start  # hypotheses are Python lists: the device has synced
    return {
        "seconds": sec,
        "sentences_per_s": len(ids) / sec,
        "tokens_per_s": tokens / sec,
        "tokens": tokens,
    }


def add_slice_args(ap: argparse.ArgumentParser) -> None:
    """``--checkpoint``, ``--data``, ``--sentences``: the model and the test slice."""
    ap.add_argument("--checkpoint", type=Path, default=Path("runs/default/checkpoints/best.pt"))
    ap.add_argument("--data", type=Path, default=Path("data/bible/test.de.gz"))
    ap.add_argument("--sentences", type=int, default=256)


def load_slice(args: argparse.Namespace, precision: str = "fp32",
               device: str = "cpu") -> tuple[object, list[list[int]], str, Path]:
    """``(model, source ids of the slice, model description, data path)``."""
    data = args.data if args.data.exists() else FALLBACK_DATA
    model, encode, desc = load(args.checkpoint, device=device, precision=precision)
    ids = [encode(line)[:100] or [EOS_ID] for line in read_lines(data)[: args.sentences]]
    return model, ids, desc, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_slice_args(ap)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="passes per row; the fastest counts")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--precision", nargs="+", default=["fp32"],
                    help="weight precisions to time in one run (fp32 bf16 fp16 auto)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {}
    for prec in args.precision:
        model, ids, desc, data = load_slice(args, precision=prec, device=args.device)
        models[prec] = model
    setups = [(prec, name, beam, batch) for prec in args.precision
              for name, beam in (("greedy", 1), (f"beam {args.beam}", args.beam))
              for batch in (1, args.batch)]
    best: dict[tuple, dict[str, float]] = {}
    for _ in range(max(1, args.repeats)):
        for prec, name, beam, batch in setups:
            r = run(models[prec], ids, batch, SearchConfig(beam_size=beam, n_best=1))
            key = (prec, name, batch)
            if key not in best or r["seconds"] < best[key]["seconds"]:
                best[key] = r
    rows = [{"precision": p, "search": n, "batch": b, **best[p, n, b]} for p, n, _, b in setups]
    by = {(r["precision"], r["search"], r["batch"]): r["sentences_per_s"] for r in rows}
    beam, first = f"beam {args.beam}", args.precision[0]
    speedup = by[(first, beam, args.batch)] / by[(first, beam, 1)]
    result = {
        "model": desc,
        "data": f"{data} (first {len(ids)} sentences)",
        "threads": args.threads,
        "device": args.device,
        "repeats": args.repeats,
        "rows": rows,
        f"beam{args.beam}_batch{args.batch}_vs_batch1": speedup,
        **{f"{p}_vs_{first}_beam{args.beam}_batch{args.batch}":
           by[(p, beam, args.batch)] / by[(first, beam, args.batch)] for p in args.precision[1:]},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"model: {desc}\ndata: {result['data']}, device {args.device}, torch threads: "
          f"{args.threads}, best of {args.repeats}\n")
    print("| precision | search | batch | sentences/s | target tokens/s | seconds |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {r['search']} | {r['batch']} | {r['sentences_per_s']:.1f} | "
              f"{r['tokens_per_s']:.0f} | {r['seconds']:.2f} |")
    print(f"\n{beam} ({first}): batch {args.batch} is {speedup:.1f}x the sentences/s of batch 1")
    for p in args.precision[1:]:
        print(f"{beam}, batch {args.batch}: {p} is "
              f"{by[(p, beam, args.batch)] / by[(first, beam, args.batch)]:.2f}x {first}")


if __name__ == "__main__":
    main()
