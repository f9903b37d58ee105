"""Training-step throughput of the default model (forward + backward + Adam), target tokens/s.

Usage::

    python -m benchmarks.train_step [--threads 2] [--batch 100] [--src-len 40] [--tgt-len 40]
        [--vocab 8000] [--steps 5] [--rnn gru] [--attention bahdanau] [--profile]

Random token ids with mildly varied lengths (like a length-bucketed batch). Prints tokens/s of
the project's model and, for reference, of the same step with the per-step decoder replaced by
nothing (encoder + output layer + loss only), which bounds what decoder work can save.
"""

from __future__ import annotations

import argparse
import time

import torch

from seq2seq.config import ModelConfig
from seq2seq.loss import label_smoothed_cross_entropy
from seq2seq.model import Seq2Seq


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--src-len", type=int, default=40)
    ap.add_argument("--tgt-len", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rnn", default="gru")
    ap.add_argument("--attention", default="bahdanau")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(
        rnn=args.rnn, attention=args.attention, hidden_size=args.hidden, embed_dim=args.hidden
    )
    model = Seq2Seq(cfg, args.vocab, args.vocab).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    src, src_len, tgt_in, tgt_out = make_batch(args.batch, args.src_len, args.tgt_len, args.vocab)
    ntok = int((tgt_out != 0).sum())

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        out = label_smoothed_cross_entropy(model(src, src_len, tgt_in), tgt_out, 0.1)
        (out.loss / out.ntokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    train_step()  # warm-up
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
        return
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        train_step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, med = min(times), sorted(times)[len(times) // 2]
    print(
        f"{args.rnn}/{args.attention} H={args.hidden} B={args.batch} S={args.src_len} "
        f"T={args.tgt_len} V={args.vocab} threads={args.threads} tgt_tokens={ntok}"
    )
    print(
        f"step best {best * 1000:.0f} ms  median {med * 1000:.0f} ms  "
        f"-> {ntok / best:.0f} tok/s best, {ntok / med:.0f} tok/s median"
    )
    print(
        f"process CPU time per step (all threads) min {min(cpu) * 1000:.0f} ms "
        "(less sensitive to other load on a shared machine)"
    )


if __name__ == "__main__":
    main()
