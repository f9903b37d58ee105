"""``seq2seq-evaluate``: translate a dev/test split with beam search and score it with sacreBLEU.

Examples::

    seq2seq-evaluate checkpoint=runs/default/checkpoints/best.pt split=test
    seq2seq-evaluate checkpoint=best.pt split=dev search=greedy
    seq2seq-evaluate checkpoint=best.pt src=my.de ref=my.en search.beam_size=10 device=cuda
    seq2seq-evaluate checkpoint=[runs/a/checkpoints/best.pt,runs/b/checkpoints/best.pt]
    seq2seq-evaluate checkpoint=best.pt glossary=terms.tsv     # required terms (source<TAB>target)

The split files come from the training config saved in the bundle (``meta.config.data``) unless
``src``/``ref`` are given; relative paths are resolved against the directory the command was
started in. Writes ``<output_dir>/<name>.hyp`` (one hypothesis per line) and
``<output_dir>/<name>.json`` (BLEU, chrF, sacreBLEU signatures, sentence count, time, speed,
checkpoint step) where ``name = <checkpoint stem>.<split>`` (``ensemble<N>.<split>`` for a list of
checkpoints, which are searched as one ensemble) and ``output_dir`` defaults to the (first)
checkpoint's directory. A misspelled option fails at once with an error naming it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from seq2seq.checkpoint import bundle_paths
from seq2seq.cli.conf import command, to_config
from seq2seq.config import INFERENCE_PRECISION, Precision, SearchConfig, plain

SPLITS = ("dev", "test")


@dataclass
class EvaluateConfig:
    """Options of ``seq2seq-evaluate``.

    Attributes:
        checkpoint: bundle to evaluate (required), or a list of bundles: an ensemble.
        split: ``"dev"`` or ``"test"``: which files of the saved training config to use.
        src: source file overriding the split's (needs ``ref`` too).
        ref: reference file overriding the split's.
        search: decoding options (``search=greedy`` / ``search=beam`` presets, or fields).
        output_dir: where hypotheses and scores go (default: the checkpoint's directory).
        name: file name stem of the outputs (default: ``<checkpoint stem>.<split>``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"`` (the default, :data:`~seq2seq.config.INFERENCE_PRECISION`),
            ``"auto"`` (bf16 where the device has native bf16 matrix support, else fp32),
            ``"bf16"`` or ``"fp16"`` (CUDA); weights converted once at load.
        tokenize: sacreBLEU tokenizer for BLEU.
        lowercase: case-insensitive BLEU.
        progress: show a tqdm progress bar on stderr.
        glossary: a ``source<TAB>target`` file of terms the translations must contain where the
            source has them (constrained search); the scores record how many were met.
    """

    checkpoint: Any = MISSING
    split: str = "test"
    src: str | None = None
    ref: str | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    output_dir: str | None = None
    name: str | None = None
    device: str = "auto"
    precision: Precision = INFERENCE_PRECISION
    tokenize: str = "13a"
    lowercase: bool = False
    progress: bool = True
    glossary: str | None = None


def split_files(cfg: EvaluateConfig, bundle_meta: dict[str, Any]) -> tuple[str, str]:
    """Absolute ``(source, reference)`` paths for ``cfg``.

    Raises:
        ValueError: unknown split, only one of ``src``/``ref`` given, or the bundle has no saved
            data config for the split.
    """
    if cfg.split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {cfg.split!r}")
    if (cfg.src is None) != (cfg.ref is None):
        raise ValueError("give both src= and ref= (or neither, to use the split's files)")
    if cfg.src is not None:
        return str(Path(cfg.src).resolve()), str(Path(cfg.ref).resolve())
    data = ((bundle_meta.get("config") or {}).get("data")) or {}
    src, ref = data.get(f"src_{cfg.split}"), data.get(f"tgt_{cfg.split}")
    if not src or not ref:
        raise ValueError(
            f"the checkpoint's saved config has no data.src_{cfg.split}/data.tgt_{cfg.split}; "
            "pass src=FILE ref=FILE"
        )
    return str(Path(src).resolve()), str(Path(ref).resolve())


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Translate and score; write the hypothesis and JSON files; return the scores.

    Args:
        cfg: options (paths may be relative to the original working directory).

    Returns:
        The JSON record: ``bleu``, ``chrf``, ``bleu_signature``, ``chrf_signature``,
        ``n_sentences``, ``seconds``, ``sentences_per_second``, ``step``, paths and the search
        options.
    """
    from tqdm import tqdm

    from seq2seq.data import load_parallel
    from seq2seq.inference.glossary import Glossary
    from seq2seq.inference.translator import Translator
    from seq2seq.metrics import corpus_scores
    from seq2seq.runtime import resolve_device

    paths = bundle_paths(cfg.checkpoint)
    ckpt = Path(paths[0])
    device = resolve_device(cfg.device, key="device")
    translator = Translator.from_checkpoint(paths, device=device, precision=cfg.precision)
    src_path, ref_path = split_files(cfg, translator.meta)
    pairs = load_parallel(src_path, ref_path)
    if not pairs:
        raise ValueError(f"{src_path} is empty")
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]

    start = time.perf_counter()
    with tqdm(total=len(sources), desc="translating", unit="sent", file=sys.stderr,
              disable=not cfg.progress) as bar:
        glossary = Glossary.read_tsv(cfg.glossary) if cfg.glossary else None
        out = translator.translate(sources, cfg.search, progress=bar.update, glossary=glossary)
    seconds = time.perf_counter() - start
    hyps = [t.text for t in out]
    scores = corpus_scores(hyps, refs, tokenize=cfg.tokenize, lowercase=cfg.lowercase)

    out_dir = Path(cfg.output_dir).resolve() if cfg.output_dir else ckpt.parent
    stem = ckpt.stem if len(paths) == 1 else f"ensemble{len(paths)}"
    name = cfg.name or f"{stem}.{cfg.split if cfg.src is None else Path(src_path).name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    hyp_path, json_path = out_dir / f"{name}.hyp", out_dir / f"{name}.json"
    hyp_path.write_text("".join(h.replace("\n", " ") + "\n" for h in hyps), encoding="utf-8")
    record = {
        **scores,
        "n_sentences": len(hyps),
        "seconds": round(seconds, 3),
        "sentences_per_second": round(len(hyps) / max(seconds, 1e-9), 2),
        "step": translator.step,
        "checkpoint": str(ckpt) if len(paths) == 1 else paths,
        "split": cfg.split if cfg.src is None else None,
        "src": src_path,
        "ref": ref_path,
        "hypotheses": str(hyp_path),
        "scores": str(json_path),
        "device": str(device),
        "precision": translator.precision,
        "search": plain(cfg.search),
    }
    if glossary is not None:
        checks = [c for t in out for c in (t.constraints or [])]
        record["glossary"] = {"file": str(Path(cfg.glossary).resolve()), "terms": len(glossary),
                              "sentences_with_terms": sum(bool(t.constraints) for t in out),
                              "required": len(checks), "met": sum(c.met for c in checks)}
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)
    return record


@command("evaluate", EvaluateConfig)
def main(dcfg) -> None:
    """Hydra entry point of ``seq2seq-evaluate``."""
    cfg: EvaluateConfig = to_config(dcfg, "seq2seq-evaluate")
    try:
        rec = evaluate(cfg)
    except (ValueError, FileNotFoundError) as err:
        print(f"seq2seq-evaluate: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"BLEU = {rec['bleu']:.2f}  ({rec['bleu_signature']})")
    print(f"chrF = {rec['chrf']:.2f}  ({rec['chrf_signature']})")
    if "glossary" in rec:
        g = rec["glossary"]
        print(f"glossary: {g['met']} of {g['required']} required terms met in "
              f"{g['sentences_with_terms']} sentences")
    print(f"{rec['n_sentences']} sentences in {rec['seconds']:.1f} s "
          f"({rec['sentences_per_second']:.1f} sent/s), checkpoint step {rec['step']}")
    print(f"hypotheses: {rec['hypotheses']}")
    print(f"scores:     {rec['scores']}")


if __name__ == "__main__":
    main()
