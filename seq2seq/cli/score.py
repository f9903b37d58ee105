"""``seq2seq-score``: the model's log-probability of given translations (forced decoding).

Examples::

    seq2seq-score checkpoint=best.pt src=test.de tgt=test.hyp         # "log_prob<TAB>score"
    paste test.de test.en | seq2seq-score checkpoint=best.pt          # pairs on stdin (TSV)
    seq2seq-score checkpoint=best.pt src=a.de tgt=a.en token_scores=true   # JSON lines
    seq2seq-score checkpoint=[a.pt,b.pt] src=a.de tgt=a.en            # an ensemble
    seq2seq-score checkpoint=best.pt src=a.de tgt=a.en search.length_penalty=average

One output line per pair, in input order: ``log_prob<TAB>score`` (the summed log-prob of the
target's pieces and its EOS, and the length-normalised score that search ranks by:
``search.length_penalty``/``search.alpha``), or with ``token_scores=true`` a JSON object
``{"log_prob", "score", "tokens", "token_scores"}`` (the target pieces ending in ``</s>`` and
the log-prob of each). Scoring a translation that beam search produced with the same ``search``
options gives back its score. Pairs are read and scored in chunks and batched by source length
(``search.batch_size`` / ``search.batch_tokens``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from omegaconf import MISSING

from seq2seq.checkpoint import bundle_paths
from seq2seq.cli.conf import command, to_config
from seq2seq.config import INFERENCE_PRECISION, Precision, SearchConfig


@dataclass
class ScoreConfig:
    """Options of ``seq2seq-score``.

    Attributes:
        checkpoint: bundle, or a list of bundles (an ensemble).
        search: the search options; scoring uses ``length_penalty`` and ``alpha`` (the
            normalised score) and ``batch_size`` / ``batch_tokens``.
        src, tgt: line-aligned source and target files; without them, ``input`` holds
            ``source<TAB>target`` lines.
        input: the TSV pairs file, or ``"-"`` for stdin.
        output: output file, or ``"-"`` for stdout.
        token_scores: JSON lines with the per-token log-probs.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"`` (the default, :data:`~seq2seq.config.INFERENCE_PRECISION`),
            ``"auto"`` (bf16 where the device has native bf16 matrix support, else fp32),
            ``"bf16"`` or ``"fp16"`` (CUDA); weights converted once at load.
        chunk_size: pairs read and scored at a time.
        progress: a tqdm progress bar on stderr.
        max_input_length: sources longer than this many subwords are cut (default: twice the
            training maximum; 0 = no limit).
    """

    checkpoint: Any = MISSING
    search: SearchConfig = field(default_factory=SearchConfig)
    src: str | None = None
    tgt: str | None = None
    input: str = "-"
    output: str = "-"
    token_scores: bool = False
    device: str = "auto"
    precision: Precision = INFERENCE_PRECISION
    chunk_size: int = 2000
    progress: bool = True
    max_input_length: int | None = None


def read_pairs(cfg: ScoreConfig, stdin: TextIO) -> Iterator[list[tuple[str, str]]]:
    """The pairs to score in chunks of ``cfg.chunk_size``.

    Raises:
        ValueError: only one of ``src``/``tgt``, files of different lengths, or a TSV line
            without exactly one tab (its number given).
    """
    from seq2seq.data import load_parallel

    if (cfg.src is None) != (cfg.tgt is None):
        raise ValueError("give both src= and tgt= (or neither, for TSV pairs on input)")
    if cfg.src is not None:
        pairs = load_parallel(cfg.src, cfg.tgt)
        for start in range(0, len(pairs), max(1, cfg.chunk_size)):
            yield pairs[start:start + max(1, cfg.chunk_size)]
        return
    stream = stdin if cfg.input == "-" else open(cfg.input, encoding="utf-8", newline="")
    try:
        chunk: list[tuple[str, str]] = []
        for n, line in enumerate(stream, start=1):
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 2:
                raise ValueError(f"input line {n} has {len(cols)} tab-separated fields; "
                                 "expected source<TAB>target")
            chunk.append((cols[0], cols[1]))
            if len(chunk) >= max(1, cfg.chunk_size):
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        if stream is not stdin:
            stream.close()


def score_stream(cfg: ScoreConfig, stdin: TextIO, out: TextIO) -> int:
    """Score every pair into ``out``; return the number of pairs."""
    from tqdm import tqdm

    from seq2seq.inference.translator import Translator
    from seq2seq.runtime import resolve_device

    scfg = cfg.search
    translator = Translator.from_checkpoint(bundle_paths(cfg.checkpoint),
                                            device=resolve_device(cfg.device, key="device"),
                                            precision=cfg.precision)
    if cfg.max_input_length is not None:
        translator.max_input_length = cfg.max_input_length
    n = 0
    with tqdm(desc="scoring", unit="pair", file=sys.stderr, disable=not cfg.progress) as bar:
        for chunk in read_pairs(cfg, stdin):
            try:
                scored = translator.score([s for s, _ in chunk], [t for _, t in chunk], scfg,
                                          progress=bar.update)
            except ValueError as err:  # name the line, not the position in the chunk
                raise ValueError(f"pairs {n + 1}-{n + len(chunk)}: {err}") from None
            for tr in scored:
                if cfg.token_scores:
                    out.write(json.dumps({"log_prob": tr.log_prob, "score": tr.score,
                                          "tokens": tr.tgt_pieces,
                                          "token_scores": tr.token_scores},
                                         ensure_ascii=False) + "\n")
                else:
                    out.write(f"{tr.log_prob:.4f}\t{tr.score:.4f}\n")
            out.flush()
            n += len(chunk)
    return n


@command("score", ScoreConfig)
def main(dcfg) -> None:
    """Hydra entry point of ``seq2seq-score``."""
    cfg: ScoreConfig = to_config(dcfg, "seq2seq-score")
    out = None
    try:
        out = sys.stdout if cfg.output == "-" else open(cfg.output, "w", encoding="utf-8")
        score_stream(cfg, sys.stdin, out)
    except (ValueError, FileNotFoundError) as err:
        print(f"seq2seq-score: error: {err}", file=sys.stderr)
        sys.exit(2)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
