"""Training-step throughput of the default model (forward + backward + Adam), target tokens/s.

Usage::

    python -m benchmarks.train_step [--threads 2] [--batch 100] [--src-len 40] [--tgt-len 40]
        [--vocab 8000] [--steps 5] [--rnn gru] [--decoder bahdanau:feed luong_general:nofeed]
        [--precision fp32 bf16] [--loss fused logits] [--profile] [--breakdown]

Every ``--decoder`` (attention kind, with or without input feeding) is timed in every
``--precision`` (and through every ``--loss`` path); the timed steps take turns (one step of each model per round), so a noisy
moment hits every model alike, and each model is compared with the first one.

Random token ids with mildly varied lengths (like a length-bucketed batch). Prints tokens/s of
the project's model and of a textbook PyTorch implementation of the same architecture
(``torch.nn.GRU`` + packing encoder, per-step ``nn.GRUCell`` decoder with input feeding and
Bahdanau attention built from ``nn.Linear``, ``F.cross_entropy`` with label smoothing), measured in
the same run. Timings on a shared machine are noisy; the process CPU time is printed too.

``--breakdown`` profiles one step of every model per round (``--steps`` rounds, taking turns)
and splits it into the GEMMs (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``addbmm``: oneDNN's work)
and everything else, medians over the rounds. A step's ratio to the first model's is a mediant
of the two parts' ratios, so it lies between them: with the other ops no faster in bf16, the
bf16 step ratio stays below the GEMMs' own ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.model.loss import label_smoothed_cross_entropy
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.runtime import autocast, resolve_device, resolve_precision


def make_batch(B: int, S: int, T: int, V: int, seed: int = 0):
    """Random batch with lengths in ``[0.8 L, L]``.

    Returns:
        ``(src (B, S), src_len (B,), tgt_in (B, T), tgt_out (B, T))``.
    """
    g = torch.Generator().manual_seed(seed)
    src_len = torch.randint(int(0.8 * S), S + 1, (B,), generator=g)  # (B,)
    tgt_len = torch.randint(int(0.8 * T), T + 1, (B,), generator=g)  # (B,)
    src = torch.randint(4, V, (B, S), generator=g)  # (B, S)
    src[torch.arange(S)[None] >= src_len[:, None]] = 0
    y = torch.randint(4, V, (B, T), generator=g)  # (B, T)
    pad = torch.arange(T)[None] >= tgt_len[:, None]  # (B, T)
    tgt_in = torch.cat([torch.full((B, 1), 2), y[:, :-1]], 1)  # (B, T)
    tgt_out = y.clone()
    tgt_in[pad] = 0
    tgt_out[pad] = 0
    tgt_out[torch.arange(B), tgt_len - 1] = 3
    return src, src_len, tgt_in, tgt_out


class TextbookSeq2Seq(nn.Module):
    """Reference: the same GRU/Bahdanau/input-feeding model written the usual way."""

    def __init__(self, V: int, E: int, H: int) -> None:
        super().__init__()
        self.src_emb = nn.Embedding(V, E, padding_idx=0)
        self.tgt_emb = nn.Embedding(V, E, padding_idx=0)
        self.enc = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, H)
        self.cell = nn.GRUCell(E + H, H)
        self.wq, self.wk = nn.Linear(H, H), nn.Linear(2 * H, H, bias=False)
        self.v = nn.Linear(H, 1, bias=False)
        self.combine = nn.Linear(3 * H, H, bias=False)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(E, V)
        self.out.weight = self.tgt_emb.weight

    def forward(self, src, src_len, tgt_in):
        B, S = src.shape
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.src_emb(src)), src_len,
                                                   batch_first=True, enforce_sorted=False)
        mem, h = self.enc(packed)
        mem, _ = nn.utils.rnn.pad_packed_sequence(mem, batch_first=True, total_length=S)
        h = torch.tanh(self.bridge(torch.cat([h[0], h[1]], 1)))  # (B, H)
        keys = self.wk(mem)  # (B, S, H)
        mask = torch.arange(S)[None] < src_len[:, None]  # (B, S)
        feed = mem.new_zeros(B, h.shape[1])
        emb = self.drop(self.tgt_emb(tgt_in))  # (B, T, E)
        outs = []
        for t in range(tgt_in.shape[1]):
            h = self.cell(torch.cat([emb[:, t], feed], 1), h)
            s = self.v(torch.tanh(keys + self.wq(h).unsqueeze(1))).squeeze(2)  # (B, S)
            w = torch.softmax(s.masked_fill(~mask, float("-inf")), -1)
            ctx = torch.bmm(w.unsqueeze(1), mem).squeeze(1)
            feed = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
            outs.append(feed)
        return self.out(self.drop(torch.stack(outs, 1)))  # (B, T, V)


GEMMS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm"}


def breakdown(steps: dict, rounds: int) -> None:
    """Print each model's profiled step split into GEMMs and other ops (module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    parts: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, train_step in steps.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                train_step()
            events = prof.key_averages()
            gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMMS)
            total = sum(e.self_cpu_time_total for e in events)
            parts[name].append((gemm / 1e3, (total - gemm) / 1e3))  # ms
    med = {name: (sorted(g for g, _ in p)[len(p) // 2], sorted(o for _, o in p)[len(p) // 2])
           for name, p in parts.items()}
    first = next(iter(med))
    g0, o0 = med[first]
    print(f"| model | GEMMs | other ops | GEMM share | GEMMs vs {first} | other vs {first} "
          f"| step vs {first} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (g, o) in med.items():
        print(f"| {name} | {g:.0f} ms | {o:.0f} ms | {100 * g / (g + o):.0f}% | {g0 / g:.2f}x | "
              f"{o0 / o:.2f}x | {(g0 + o0) / (g + o):.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--src-len", type=int, default=40)
    ap.add_argument("--tgt-len", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rnn", default="gru")
    ap.add_argument("--decoder", nargs="+", default=["bahdanau:feed"],
                    help="decoders to time in one run, ATTENTION:feed (input feeding, per-step "
                         "loop) or ATTENTION:nofeed (fused RNN stack over all positions)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=0, help="embedding size (0: = --hidden)")
    ap.add_argument("--profile", action="store_true", help="profile one step of the first model")
    ap.add_argument("--breakdown", action="store_true",
                    help="split each model's profiled step into GEMMs and other ops")
    ap.add_argument("--no-reference", action="store_true", help="skip the textbook model")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--precision", nargs="+", default=["fp32"],
                    help="autocast precisions to time in one run (fp32 bf16 fp16 auto)")
    ap.add_argument("--loss", nargs="+", default=["fused"], choices=["fused", "logits"],
                    help="loss paths to time in one run: fused (what training runs: output "
                         "layer at real rows only, fused with the loss) or logits (the "
                         "(B, T, V) logits, then the loss)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, key="--device")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    cfgs = {}
    for spec in args.decoder:
        attention, _, feed = spec.partition(":")
        if feed not in ("feed", "nofeed"):
            ap.error(f"--decoder {spec!r}: expected ATTENTION:feed or ATTENTION:nofeed")
        cfgs[spec] = ModelConfig(rnn=args.rnn, attention=attention, hidden_size=args.hidden,
                                 embed_dim=args.embed or args.hidden,
                                 input_feeding=feed == "feed")
    batch = make_batch(args.batch, args.src_len, args.tgt_len, args.vocab)
    src, src_len, tgt_in, tgt_out = (t.to(device) for t in batch)
    ntok = int((tgt_out != 0).sum())
    print(f"{args.rnn} H={args.hidden} B={args.batch} S={args.src_len} T={args.tgt_len} "
          f"V={args.vocab} threads={args.threads} tgt_tokens={ntok} device={device}")
    models = {}
    for spec, cfg in cfgs.items():
        for prec in args.precision:  # fp32 master weights; autocast casts per op
            for path in args.loss:
                name = f"{spec} {prec}" + (f" {path}" if len(args.loss) > 1 else "")
                models[name] = (Seq2Seq(cfg, args.vocab, args.vocab).to(device),
                                resolve_precision(prec, device, key="--precision"))
    if not args.no_reference and not (args.profile or args.breakdown) and args.rnn == "gru":
        models["textbook"] = (TextbookSeq2Seq(args.vocab, args.hidden, args.hidden).to(device),
                              None)
    steps = {}
    for name, (model, amp) in models.items():
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train_step(model=model, opt=opt, name=name, amp=amp) -> None:
            opt.zero_grad(set_to_none=True)
            if name.endswith("logits"):
                with autocast(device, amp):
                    logits = model(src, src_len, tgt_in)  # (B, T, V)
                out = label_smoothed_cross_entropy(logits, tgt_out, 0.1)
                loss = out.loss / out.ntokens
            elif name != "textbook":
                with autocast(device, amp):
                    out = model(src, src_len, tgt_in, tgt_out, 0.1)
                loss = out.loss / out.ntokens
            else:
                logits = model(src, src_len, tgt_in)
                loss = F.cross_entropy(logits.reshape(-1, args.vocab), tgt_out.reshape(-1),
                                       ignore_index=0, label_smoothing=0.1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sync()

        train_step()  # warm-up
        steps[name] = train_step
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                train_step()
            rows = sorted(prof.key_averages(group_by_input_shape=True),
                          key=lambda e: -e.self_cpu_time_total)
            for e in rows[:30]:  # the ops by self time, one row per op and input shapes
                print(f"{e.key:28s} {e.self_cpu_time_total / 1000:8.1f} ms {e.count:5d}  {e.input_shapes}")
            return
    if args.breakdown:
        breakdown(steps, args.steps)
        return
    times = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, train_step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            train_step()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    first = next(iter(steps))
    med = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    print(f"| model | best step | median step | tokens/s (median) | process CPU | vs {first} |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t in times.items():
        print(f"| {name} | {min(t) * 1000:.0f} ms | {med[name] * 1000:.0f} ms | "
              f"{ntok / med[name]:,.0f} | {min(cpu[name]) * 1000:.0f} ms | "
              f"{med[first] / med[name]:.2f}x |")


if __name__ == "__main__":
    main()
