"""``seq2seq-translate``: translate sentences from stdin or a file with a checkpoint bundle.

Examples::

    echo "Im Anfang schuf Gott Himmel und Erde." | seq2seq-translate checkpoint=best.pt
    seq2seq-translate checkpoint=best.pt input=test.de output=test.hyp beam_size=10
    seq2seq-translate checkpoint=best.pt n_best=3 < in.de      # "index<TAB>text<TAB>score" lines
    seq2seq-translate checkpoint=best.pt plot_attention=attn.png < in.de

One sentence per input line. With ``n_best == 1`` each output line is the translation (followed by
``<TAB>score`` when ``scores=true``); with ``n_best > 1`` each input gives ``n_best`` lines
``index<TAB>text<TAB>score`` (0-based input index, best first). ``plot_attention=FILE`` writes the
attention heat map of the first input sentence as PNG. Every search option of
:class:`~seq2seq.config.SearchConfig` is a top-level key (``beam_size``, ``n_best``,
``length_penalty``, ``alpha``, ``max_len_a``, ...). Input is read and translated in chunks, so large
files stream; from a terminal each line is translated as soon as it is entered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

import hydra
from hydra.core.config_store import ConfigStore
from hydra.utils import to_absolute_path
from omegaconf import MISSING, OmegaConf

from seq2seq.config import Precision, SearchConfig
from seq2seq.search.scoring import check_search_config

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@dataclass
class TranslateConfig(SearchConfig):
    """Options of ``seq2seq-translate``: the search options plus these.

    Attributes:
        checkpoint: bundle to translate with (required).
        input: source file, or ``"-"`` for stdin.
        output: output file, or ``"-"`` for stdout.
        plot_attention: PNG path for the attention heat map of the first sentence (or None).
        scores: append ``<TAB>score`` to 1-best lines.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 where the device has native bf16 matrix support, else
            fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA); weights converted once at load.
        chunk_size: input lines read and translated at a time (0 = all at once).
        progress: show a tqdm progress bar on stderr (never for terminal input).
        max_input_length: sentences longer than this many subwords are cut to it with a
            warning (default: twice the training maximum; 0 = no limit).
        split_sentences: split each line into sentences (``sentencex``), translate them and
            put the line back together (one output line per input line); ``false`` for
            pre-segmented input (one sentence per line, e.g. a test set) and for ``n_best > 1``.
    """

    checkpoint: str = MISSING
    input: str = "-"
    output: str = "-"
    plot_attention: str | None = None
    scores: bool = False
    device: str = "auto"
    precision: Precision = Precision.auto
    chunk_size: int = 2000
    progress: bool = True
    max_input_length: int | None = None
    split_sentences: bool = True


def search_config(cfg: TranslateConfig) -> SearchConfig:
    """The :class:`SearchConfig` part of ``cfg`` (alignment on when a plot is requested)."""
    sc = SearchConfig(**{f.name: getattr(cfg, f.name) for f in fields(SearchConfig)})
    if cfg.plot_attention:
        sc.return_alignment = True
    return sc


def _chunks(stream: TextIO, size: int) -> Iterator[list[str]]:
    """Lines of ``stream`` (terminators stripped) in lists of ``size`` (1 for a terminal)."""
    if stream.isatty():
        size = 1
    chunk: list[str] = []
    for line in stream:
        chunk.append(line.rstrip("\r\n"))
        if size and len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def translate_stream(cfg: TranslateConfig, inp: TextIO, out: TextIO) -> int:
    """Translate every line of ``inp`` into ``out``; return the number of sentences.

    Args:
        cfg: options (``checkpoint``/``plot_attention`` paths relative to the original cwd).
        inp: source lines.
        out: where translations are written (flushed after each chunk).
    """
    from tqdm import tqdm

    from seq2seq.inference.translator import Translator
    from seq2seq.plots import plot_attention
    from seq2seq.runtime import resolve_device

    scfg = search_config(cfg)
    check_search_config(scfg, section="")
    split = cfg.split_sentences and cfg.n_best == 1
    translator = Translator.from_checkpoint(to_absolute_path(cfg.checkpoint),
                                            device=resolve_device(cfg.device, key="device"),
                                            precision=cfg.precision)
    if cfg.max_input_length is not None:
        translator.max_input_length = cfg.max_input_length
    n = 0
    plotted = False
    with tqdm(desc="translating", unit="sent", file=sys.stderr,
              disable=not cfg.progress or inp.isatty()) as bar:
        for chunk in _chunks(inp, cfg.chunk_size):
            if split:  # each line a document: its sentences translated, the line rebuilt
                docs = translator.translate_documents(chunk, scfg, progress=bar.update,
                                                      first_index=n + 1)
                sentences = [s for d in docs for s in d.sentences]
                for d in docs:
                    out.write(f"{d.text}\t{d.score:.4f}\n" if cfg.scores else d.text + "\n")
            else:
                sentences = translator.translate(chunk, scfg, progress=bar.update,
                                                 first_index=n + 1)
                for i, tr in enumerate(sentences):
                    if cfg.n_best > 1:
                        for text, score in tr.n_best:
                            out.write(f"{n + i}\t{text}\t{score:.4f}\n")
                    elif cfg.scores:
                        out.write(f"{tr.text}\t{tr.score:.4f}\n")
                    else:
                        out.write(tr.text + "\n")
            out.flush()
            if cfg.plot_attention and not plotted and sentences:
                first = sentences[0]
                if not first.src_pieces:
                    print("seq2seq-translate: first sentence is empty; no attention plot",
                          file=sys.stderr)
                else:
                    plot_attention(first.src_pieces, first.tgt_pieces, first.alignment,
                                   to_absolute_path(cfg.plot_attention))
                plotted = True
            n += len(chunk)
    return n


ConfigStore.instance().store(name="translate_schema", node=TranslateConfig)


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="translate")
def main(dcfg) -> None:
    """Hydra entry point of ``seq2seq-translate``."""
    cfg: TranslateConfig = OmegaConf.to_object(dcfg)
    inp = out = None
    try:
        inp = sys.stdin if cfg.input == "-" else open(
            to_absolute_path(cfg.input), encoding="utf-8", newline="")
        out = sys.stdout if cfg.output == "-" else open(
            to_absolute_path(cfg.output), "w", encoding="utf-8")
        translate_stream(cfg, inp, out)
    except (ValueError, FileNotFoundError) as err:
        print(f"seq2seq-translate: error: {err}", file=sys.stderr)
        sys.exit(2)
    finally:
        for f, std in ((inp, sys.stdin), (out, sys.stdout)):
            if f is not None and f is not std:
                f.close()


if __name__ == "__main__":
    main()
