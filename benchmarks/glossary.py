"""Glossary-constrained decoding on the test set: do the terms come out, does the rest stay the
same, what does a glossary of names do to BLEU, and what does it cost.

    python -m benchmarks.glossary [--checkpoint runs/default/checkpoints/best.pt] [--repeats 3]

Three tables, one run, beam 5 (the evaluation default):

* **unusual renderings**: 24 frequent German words mapped to target terms the model would not
  produce (``Gott`` -> ``the Almighty`` ...): in how many test sentences with a term every term
  is in the output, and whether the term-free sentences are byte-identical to the unconstrained
  output.
* **names from the references**: German names whose English form the reference has and the
  unconstrained output misses at least once (chosen on the test set, as the issue asks: the
  gain is an upper bound of what a user's own term list buys); test BLEU without and with.
* **speed**: sentences/s of beam 5 on (up to 200) test sentences holding exactly one term of
  each glossary, without and with it, alternated ``--repeats`` times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.serve import DEFAULT_CHECKPOINT

UNUSUAL = {
    "Gott": "the Almighty", "Herr": "the Sovereign", "HERR": "the Eternal", "Jesus": "the Nazarene",
    "Weisheit": "sagacity", "Sohn": "offspring", "Vater": "Progenitor", "Welt": "cosmos",
    "Licht": "radiance", "Leben": "existence", "Wahrheit": "veracity", "Herz": "inner self",
    "Mund": "lips", "Seele": "psyche", "König": "monarch", "Tod": "demise", "Brot": "bread loaf",
    "Jünger": "followers", "Wort": "Logos", "Volk": "populace", "Himmel": "firmament",
    "Gerechte": "upright one", "Narr": "simpleton", "Zeugnis": "attestation",
}
NAMES = {
    "Petrus": "Peter", "Pilatus": "Pilate", "Johannes": "John", "Nikodemus": "Nicodemus",
    "Galiläa": "Galilee", "Kapernaum": "Capernaum", "Judäa": "Judea", "Bethanien": "Bethany",
    "Philippus": "Philip", "Andreas": "Andrew", "Maria": "Mary", "Kaiphas": "Caiaphas",
    "Barabbas": "Barabbas", "Mose": "Moses", "Moses": "Moses", "Abraham": "Abraham",
    "Elias": "Elijah", "Lazarus": "Lazarus", "Martha": "Martha", "Thomas": "Thomas",
    "Judas": "Judas", "Simon": "Simon", "Samaria": "Samaria", "Jerusalem": "Jerusalem",
    "Nathanael": "Nathanael", "Hannas": "Annas", "Salomo": "Solomon", "Israel": "Israel",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--src", default="data/bible/test.de.gz")
    ap.add_argument("--ref", default="data/bible/test.en.gz")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    import torch

    from seq2seq.config import SearchConfig
    from seq2seq.data import load_parallel
    from seq2seq.inference.glossary import Glossary
    from seq2seq.inference.translator import Translator
    from seq2seq.metrics import corpus_scores

    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"no checkpoint at {args.checkpoint}: run `make train` or pass one")
    tr = Translator.from_checkpoint(args.checkpoint)
    pairs = load_parallel(args.src, args.ref)
    src, ref = [s for s, _ in pairs], [r for _, r in pairs]
    cfg = SearchConfig()
    plain = tr.translate(src, cfg)
    base = corpus_scores([t.text for t in plain], ref)

    unusual = Glossary(UNUSUAL)
    out = tr.translate(src, cfg, glossary=unusual)
    with_terms = [(p, g) for p, g in zip(plain, out, strict=True) if g.constraints]
    all_met = sum(all(c.met for c in g.constraints) for _, g in with_terms)
    terms = sum(len(g.constraints) for _, g in with_terms)
    met = sum(c.met for _, g in with_terms for c in g.constraints)
    free = [(p, g) for p, g in zip(plain, out, strict=True) if not g.constraints]
    same = sum(p.text == g.text for p, g in free)
    print(f"checkpoint {args.checkpoint}; {len(src)} test sentences, beam 5; unconstrained "
          f"BLEU {base['bleu']:.2f}\n")
    print("| glossary | sentences with a term | every term met | terms met | term-free "
          "sentences identical | BLEU |")
    print("|---|---:|---:|---:|---:|---:|")
    bleu_u = corpus_scores([t.text for t in out], ref)["bleu"]
    print(f"| {len(UNUSUAL)} unusual renderings | {len(with_terms)} | {all_met} "
          f"({100 * all_met / max(1, len(with_terms)):.1f}%) | {met}/{terms} | {same}/{len(free)} "
          f"| {bleu_u:.2f} |")

    missed = {s: t for s, t in NAMES.items()
              if any(s in x.split() or f"{s}," in x or f"{s}." in x for x in src)
              and any(t in r and t not in p.text for x, r, p in zip(src, ref, plain, strict=True)
                      if s in x)}
    names = Glossary(missed)
    named = tr.translate(src, cfg, glossary=names)
    scores = corpus_scores([t.text for t in named], ref)
    n_named = sum(bool(t.constraints) for t in named)
    print(f"| {len(missed)} names from the references | {n_named} | "
          f"{sum(all(c.met for c in t.constraints) for t in named if t.constraints)} | - | - | "
          f"{scores['bleu']:.2f} (+{scores['bleu'] - base['bleu']:.2f}) |")
    print(f"\nnames: {', '.join(f'{s}={t}' for s, t in missed.items())}")

    print("\nspeed: beam 5 on test sentences holding exactly one term, sentences/s, best of "
          f"{args.repeats} alternated runs\n")
    print("| glossary | sentences | target pieces per term | unconstrained | constrained | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, gl in ((f"{len(missed)} names", names), (f"{len(UNUSUAL)} unusual renderings",
                                                        unusual)):
        hits = [(s, found[0]) for s in src
                if len(found := gl.matches(s, tr.src_tok.normalize)) == 1][:200]
        texts, single = [s for s, _ in hits], Glossary(dict(term for _, term in hits))
        pieces = sorted({len(tr.tgt_tok.encode(t)) for _, (_, t) in hits})
        rates: dict[str, list[float]] = {"plain": [], "glossary": []}
        for _ in range(args.repeats):
            for kind, g in (("plain", None), ("glossary", single)):
                t0 = time.perf_counter()
                tr.translate(texts, cfg, glossary=g)
                rates[kind].append(len(texts) / (time.perf_counter() - t0))
        best = {k: max(v) for k, v in rates.items()}
        print(f"| {name} | {len(texts)} | {pieces[0]}-{pieces[-1]} | {best['plain']:.1f} | "
              f"{best['glossary']:.1f} | {best['glossary'] / best['plain']:.2f}x |")

if __name__ == "__main__":
    main()
