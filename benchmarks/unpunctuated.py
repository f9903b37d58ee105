"""Translation quality with and without the final punctuation mark, per checkpoint.

Usage::

    python -m benchmarks.unpunctuated --checkpoint runs/a/checkpoints/best.pt [more ...]
        [--split dev test] [--beam 5] [--threads 2] [--punctuate-input on off]
        [--final-mark .]

For each split of the shipped Bible corpus, the **q** subset is the pairs that end in a
sentence mark on both sides and keep some text (:func:`seq2seq.data.punctuation.strip_pair`).
Each checkpoint translates the whole split, **qp** (the q pairs as they are) and **qnop** (the
q pairs with that final run of marks stripped from source and reference), beam ``--beam``, in
float32. The table gives sacreBLEU BLEU per set and, for qp and qnop, the runaway share: the
hypotheses with more than 1.5 times the reference's words. Each checkpoint gets one row per
``--punctuate-input`` setting (``search.punctuate_input``: a source ending in a letter or digit
is translated with the bundle's final mark appended and given back without final marks;
``--final-mark`` supplies the mark for bundles written before bundles kept one). This is how the
``Unpunctuated input`` tables of benchmarks/README.md are made.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

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
    ap.add_argument("--punctuate-input", nargs="+", default=["on", "off"], choices=["on", "off"])
    ap.add_argument("--final-mark", default=None,
                    help="final mark for bundles without one (older bundles)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SearchConfig(beam_size=args.beam)
    data = {split: sets(split) for split in args.split}
    head = [f"{split} {name}" for split in args.split for name in ("all", "qp", "qnop")]
    print(f"| checkpoint | punctuate_input | {' | '.join(head)} | " +
          " | ".join(f"runaway {split} {n}" for split in args.split for n in ("qp", "qnop")) + " |")
    print("|---|---" + "|---:" * (len(head) + 2 * len(args.split)) + "|")
    for path in args.checkpoint:
        tr = Translator.from_checkpoint(path)
        tr.final_mark = tr.final_mark or args.final_mark
        for mode in args.punctuate_input:
            bleu, away = [], []
            for split in args.split:
                # each distinct source once (qp is part of all; search is batch-invariant)
                todo = sorted({s for src, _ in data[split].values() for s in src})
                done = dict(zip(todo, tr.translate(todo, replace(cfg, punctuate_input=mode == "on")),
                                strict=True))
                for name, (src, ref) in data[split].items():
                    hyps = [done[s].text for s in src]
                    bleu.append(f"{corpus_scores(hyps, ref)['bleu']:.2f}")
                    if name != "all":
                        away.append(f"{runaway(hyps, ref):.1f}%")
            shown = f"{mode} ({tr.final_mark!r})" if mode == "on" else mode
            print(f"| {path} | {shown} | {' | '.join(bleu)} | {' | '.join(away)} |", flush=True)


if __name__ == "__main__":
    main()
