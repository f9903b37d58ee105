"""Translation quality with and without the final punctuation mark, per checkpoint.

Usage::

    python -m benchmarks.unpunctuated --checkpoint runs/a/checkpoints/best.pt [more ...]
        [--split dev test] [--beam 5] [--threads 2]

For each split of the shipped Bible corpus, the **q** subset is the pairs that end in a
sentence mark on both sides and keep some text (:func:`seq2seq.data.punctuation.strip_pair`).
Each checkpoint translates the whole split, **qp** (the q pairs as they are) and **qnop** (the
q pairs with that final run of marks stripped from source and reference), beam ``--beam``, in
float32. The table gives sacreBLEU BLEU per set and, for qp and qnop, the runaway share: the
hypotheses with more than 1.5 times the reference's words. This is how the ``Unpunctuated
input`` table of benchmarks/README.md is made (there with ``seq2seq-evaluate`` per set, which
translates the same sentences the same way).
"""

from __future__ import annotations

import argparse

import torch

from seq2seq.config import SearchConfig
from seq2seq.data import load_parallel
from seq2seq.data.punctuation import strip_pair
from seq2seq.inference.translator import Translator
from seq2seq.metrics import corpus_scores

SPLITS = {"dev": ("data/bible/dev.de.gz", "data/bible/dev.en.gz"),
          "test": ("data/bible/test.de.gz", "data/bible/test.en.gz")}


def sets(split: str) -> dict[str, tuple[list[str], list[str]]]:
    """``{"all" | "qp" | "qnop": (sources, references)}`` of a Bible split."""
    pairs = load_parallel(*SPLITS[split])
    q = [(pair, stripped) for pair in pairs
         if (stripped := strip_pair(*pair)) is not None and all(stripped)]
    return {"all": ([s for s, _ in pairs], [r for _, r in pairs]),
            "qp": ([s for (s, _), _ in q], [r for (_, r), _ in q]),
            "qnop": ([s for _, (s, _) in q], [r for _, (_, r) in q])}


def runaway(hyps: list[str], refs: list[str]) -> float:
    """Percentage of hypotheses with more than 1.5 times their reference's words."""
    return 100.0 * sum(len(h.split()) > 1.5 * len(r.split())
                       for h, r in zip(hyps, refs, strict=True)) / len(refs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", nargs="+", required=True)
    ap.add_argument("--split", nargs="+", default=["dev", "test"], choices=sorted(SPLITS))
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SearchConfig(beam_size=args.beam)
    data = {split: sets(split) for split in args.split}
    head = [f"{split} {name}" for split in args.split for name in ("all", "qp", "qnop")]
    print(f"| checkpoint | {' | '.join(head)} | " +
          " | ".join(f"runaway {split} {n}" for split in args.split for n in ("qp", "qnop")) + " |")
    print("|---" + "|---:" * (len(head) + 2 * len(args.split)) + "|")
    for path in args.checkpoint:
        tr = Translator.from_checkpoint(path)
        bleu, away = [], []
        for split in args.split:
            for name, (src, ref) in data[split].items():
                hyps = [t.text for t in tr.translate(src, cfg)]
                bleu.append(f"{corpus_scores(hyps, ref)['bleu']:.2f}")
                if name != "all":
                    away.append(f"{runaway(hyps, ref):.1f}%")
        print(f"| {path} | {' | '.join(bleu)} | {' | '.join(away)} |")


if __name__ == "__main__":
    main()
