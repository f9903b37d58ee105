"""How much gradient reaches the first source positions, per recurrent cell (vanishing gradients).

``python -m benchmarks.gradient_flow CKPT [CKPT ...] [--data data/bible/test.de.gz
--ref data/bible/test.en.gz] [--min-len 40] [--sentences 200]`` takes trained bundles (e.g. the
``model.rnn=gru,lstm,rnn_tanh,rnn_relu`` sweep) and, on the long test sentences (at least
``--min-len`` source subwords), measures two gradient norms per source position ``t``:

* **translation loss**: ``||dL/de_t||``, the gradient of the teacher-forced loss (summed over the
  reference's tokens, label smoothing off, dropout off) with respect to the source embedding at
  ``t``. Attention reaches every position directly, so this shows the whole model's credit
  assignment, not the recurrence alone.
* **recurrence alone**: ``||d(u . h_fwd)/de_t||``, the gradient of a fixed random unit projection
  of the encoder's forward-direction final state (top layer) with respect to each embedding:
  what flows back through the recurrent steps only, over a distance of ``len - t`` steps.

Each is reported for the first 5 positions, the last 5, and their ratio (first / last; mean over
sentences of the per-sentence means). For the forward recurrence the first positions are the
farthest: a ratio far below 1 is the vanishing gradient.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
from seq2seq.data import load_parallel
from seq2seq.model import build_model
from seq2seq.tokenizer import BOS_ID, EOS_ID


def _encode_from(model: torch.nn.Module, src: torch.Tensor):
    """The encoder's pass from its embeddings of ``src (1, S)``, made a leaf to take gradients
    of; returns ``(embeddings (1, S, E), EncoderOut)`` (eval mode: no dropout)."""
    from seq2seq.model.encoder import EncoderOut

    emb = model.encoder.embedding(src).detach().requires_grad_()  # (1, S, E)
    out, h = model.encoder.rnn(emb.transpose(0, 1), torch.tensor([src.shape[1]]))  # (S, 1, 2H)
    hidden, cell = h if isinstance(h, tuple) else (h, None)  # (L*2, 1, H) each
    enc = EncoderOut(memory=out.transpose(0, 1), mask=torch.ones_like(src, dtype=torch.bool),
                     hidden=hidden, cell=cell)
    return emb, enc


def sentence_norms(model: torch.nn.Module, src_ids: list[int], tgt_ids: list[int],
                   probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position gradient norms ``(S,)`` for the loss and for the forward recurrence."""
    src = torch.tensor([src_ids])  # (1, S)
    # recurrence alone: u . h_fwd (top layer's forward final state), back to the embeddings
    emb, enc = _encode_from(model, src)
    (g_rec,) = torch.autograd.grad((enc.hidden[-2, 0] * probe).sum(), emb)
    # the translation loss, through attention and the decoder
    emb, enc = _encode_from(model, src)
    tgt_in = torch.tensor([[BOS_ID, *tgt_ids]])  # (1, T)
    tgt_out = torch.tensor([[*tgt_ids, EOS_ID]])  # (1, T)
    logits = model.decoder(tgt_in, model.init_state(enc))  # (1, T, V)
    loss = torch.nn.functional.cross_entropy(logits[0], tgt_out[0], reduction="sum")
    (g_loss,) = torch.autograd.grad(loss, emb)
    return g_loss[0].norm(dim=-1), g_rec[0].norm(dim=-1)  # (S,), (S,)


def measure(path: str, pairs: list[tuple[str, str]], min_len: int, limit: int,
            seed: int = 0) -> dict:
    """First-5 / last-5 gradient norms of one bundle on the long sentences of ``pairs``."""
    bundle = load_bundle(path)
    src_tok, tgt_tok = tokenizers_from_bundle(bundle)
    model = build_model(bundle, "cpu").eval()
    gen = torch.Generator().manual_seed(seed)
    probe = torch.randn(model.cfg.hidden_size, generator=gen)
    probe /= probe.norm()
    rows = {"loss": [], "recurrence": []}
    used = 0
    for s, t in pairs:
        src_ids = src_tok.encode(s)
        if len(src_ids) < min_len:
            continue
        g_loss, g_rec = sentence_norms(model, src_ids, tgt_tok.encode(t), probe)
        for key, g in (("loss", g_loss), ("recurrence", g_rec)):
            rows[key].append((float(g[:5].mean()), float(g[-5:].mean())))
        used += 1
        if used >= limit:
            break
    out = {"checkpoint": path, "rnn": str(model.cfg.rnn), "sentences": used}
    for key, vals in rows.items():
        first = sum(v[0] for v in vals) / max(len(vals), 1)
        last = sum(v[1] for v in vals) / max(len(vals), 1)
        out[key] = {"first5": first, "last5": last, "ratio": first / last if last else 0.0}
    return out


def format_table(results: list[dict]) -> str:
    """Markdown table of :func:`measure` results."""
    lines = ["| cell | sentences | loss: first 5 | loss: last 5 | loss: first / last "
             "| recurrence: first 5 | recurrence: last 5 | recurrence: first / last |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lo, rc = r["loss"], r["recurrence"]
        lines.append(f"| {r['rnn']} | {r['sentences']} | {lo['first5']:.3g} | {lo['last5']:.3g} "
                     f"| {lo['ratio']:.3g} | {rc['first5']:.3g} | {rc['last5']:.3g} "
                     f"| {rc['ratio']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default="data/bible/test.de.gz")
    ap.add_argument("--ref", default="data/bible/test.en.gz")
    ap.add_argument("--min-len", type=int, default=40, help="long sentences: >= this many "
                    "source subwords")
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = load_parallel(Path(args.data), Path(args.ref))
    results = [measure(c, pairs, args.min_len, args.sentences) for c in args.checkpoints]
    print(format_table(results))


if __name__ == "__main__":
    main()
