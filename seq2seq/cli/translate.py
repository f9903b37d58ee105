"""``seq2seq-translate``: translate lines from stdin or a file with a checkpoint bundle (or several).

Examples::

    echo "Im Anfang schuf Gott Himmel und Erde." | seq2seq-translate checkpoint=best.pt
    seq2seq-translate checkpoint=best.pt input=test.de output=test.hyp search.beam_size=10
    seq2seq-translate checkpoint=best.pt search.n_best=3 < in.de   # "index<TAB>text<TAB>score"
    seq2seq-translate checkpoint=[a.pt,b.pt] < in.de            # an ensemble
    seq2seq-translate checkpoint=best.pt alignment=true < in.de  # "text<TAB>0-0 1-2 ..." lines
    seq2seq-translate checkpoint=best.pt search.return_scores=true < in.de   # JSON lines
    seq2seq-translate checkpoint=best.pt target_prefix=prefixes.en < in.de
    seq2seq-translate checkpoint=best.pt search=sampling search.n_best=4 search.seed=1 < mono.de
    seq2seq-translate checkpoint=best.pt plot_attention=attn.pdf < in.de   # one page a sentence
    seq2seq-translate checkpoint=best.pt glossary=terms.tsv < in.de   # source<TAB>target terms
    seq2seq-translate checkpoint=best.pt format=html input=page.de.html output=page.en.html

Each input line is a document: its sentences are translated and put back together
(``split_sentences=true``, one output line per input line), or one segment
(``split_sentences=false``, also implied by ``search.n_best > 1``, ``alignment``,
``search.return_scores`` and ``target_prefix``). Output per input line:

* the translation, followed by ``<TAB>score`` with ``scores=true``;
* with ``search.n_best > 1`` (or samples): ``n_best`` lines ``index<TAB>text<TAB>score`` (0-based
  input index, best first);
* with ``alignment=true``: ``text<TAB>alignment``, hard word alignments in Pharaoh format
  (``i-j``: source word ``i``, target word ``j``, whitespace words; :mod:`seq2seq.inference.
  alignment`);
* with ``search.return_scores=true``: one JSON object ``{"text", "score", "log_prob", "tokens",
  "token_scores"}`` (``tokens``: the target pieces ending in ``</s>``; ``n_best`` and
  ``alignment`` too when asked for; ``constraints`` with a glossary term in the line).

``format=html`` or ``format=markdown`` reads the whole input as one document and writes it
back with its markup kept, only its text translated (:mod:`seq2seq.inference.markup`).

``glossary=FILE`` (``source<TAB>target`` lines) makes every source term found in a line come out
as its target term (constrained beam search, :mod:`seq2seq.inference.glossary`); a term that
could not be placed is named on stderr.

``plot_attention=FILE`` draws every sentence: ``FILE.pdf`` one page each, otherwise one PNG each
(``attn_<line>.png``, ``attn_<line>.<k>.png`` for sentence ``k`` of a split line). The search
options of :class:`~seq2seq.config.SearchConfig` are the ``search`` group, spelled as in every
command (``search=greedy``, ``search.beam_size=10``, ``search.batch_tokens=2000``). Input is read
and translated in chunks, so large files stream; from a terminal each line is translated as soon
as it is entered.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from omegaconf import MISSING

from seq2seq.checkpoint import bundle_paths
from seq2seq.cli.conf import command, to_config
from seq2seq.config import INFERENCE_PRECISION, Precision, SearchConfig


@dataclass
class TranslateConfig:
    """Options of ``seq2seq-translate``.

    Attributes:
        checkpoint: bundle to translate with, or a list of bundles (an ensemble).
        search: the search options (``search=greedy``, ``search.beam_size=10``, ...).
        input: source file, or ``"-"`` for stdin.
        output: output file, or ``"-"`` for stdout.
        plot_attention: PDF or PNG path for the attention heat maps of every sentence (or None).
        scores: append ``<TAB>score`` to 1-best lines.
        alignment: append ``<TAB>`` and the Pharaoh word alignment to each translation.
        target_prefix: a file of target prefixes, one per input line (empty: none), each
            translation must start with.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"`` (the default, :data:`~seq2seq.config.INFERENCE_PRECISION`),
            ``"auto"`` (bf16 where the device has native bf16 matrix support, else fp32),
            ``"bf16"`` or ``"fp16"`` (CUDA); weights converted once at load.
        chunk_size: input lines read and translated at a time (0 = all at once).
        progress: show a tqdm progress bar on stderr (never for terminal input).
        max_input_length: sentences longer than this many subwords are cut to it with a
            warning (default: twice the training maximum; 0 = no limit).
        split_sentences: split each line into sentences (``sentencex``), translate them and
            put the line back together (one output line per input line); ``false`` for
            pre-segmented input (one sentence per line, e.g. a test set).
        glossary: a ``source<TAB>target`` file of terms (see the module docstring).
        format: ``"text"`` (line by line), ``"html"`` or ``"markdown"`` (the whole input one
            document, its markup kept).
    """

    checkpoint: Any = MISSING
    search: SearchConfig = field(default_factory=SearchConfig)
    input: str = "-"
    output: str = "-"
    plot_attention: str | None = None
    scores: bool = False
    alignment: bool = False
    target_prefix: str | None = None
    device: str = "auto"
    precision: Precision = INFERENCE_PRECISION
    chunk_size: int = 2000
    progress: bool = True
    max_input_length: int | None = None
    split_sentences: bool = True
    glossary: str | None = None
    format: str = "text"


def search_config(cfg: TranslateConfig) -> SearchConfig:
    """``cfg.search`` with alignments on when a plot or word alignments are requested."""
    if cfg.plot_attention or cfg.alignment:
        return replace(cfg.search, return_alignment=True)
    return cfg.search


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


def _line(cfg: TranslateConfig, index: int, tr: Any) -> str:
    """The output of one segment (see the module docstring)."""
    from seq2seq.inference.alignment import pharaoh, word_alignment

    if cfg.search.return_scores:
        rec = {"text": tr.text, "score": tr.score, "log_prob": tr.log_prob,
               "tokens": tr.tgt_pieces, "token_scores": tr.token_scores}
        if cfg.search.n_best > 1:
            rec["n_best"] = [{"text": t, "score": s} for t, s in tr.n_best]
        if cfg.alignment:
            rec["alignment"] = pharaoh(word_alignment(tr.src_pieces, tr.tgt_pieces,
                                                      tr.alignment or []))
        if tr.constraints:
            rec["constraints"] = [c.to_dict() for c in tr.constraints]
        return json.dumps(rec, ensure_ascii=False) + "\n"
    if cfg.search.n_best > 1:
        return "".join(f"{index}\t{text}\t{score:.4f}\n" for text, score in tr.n_best)
    out = tr.text
    if cfg.scores:
        out += f"\t{tr.score:.4f}"
    if cfg.alignment:
        out += "\t" + pharaoh(word_alignment(tr.src_pieces, tr.tgt_pieces, tr.alignment or []))
    return out + "\n"


def translate_stream(cfg: TranslateConfig, inp: TextIO, out: TextIO) -> int:
    """Translate every line of ``inp`` into ``out``; return the number of lines.

    Args:
        cfg: options (``checkpoint``/``plot_attention``/``target_prefix`` paths relative to the
            original cwd).
        inp: source lines (with ``format=html|markdown``: one document).
        out: where translations are written (flushed after each chunk).
    """
    from tqdm import tqdm

    from seq2seq.inference.glossary import Glossary
    from seq2seq.inference.translator import Translator
    from seq2seq.plots import AttentionPlots
    from seq2seq.runtime import resolve_device

    scfg = search_config(cfg)
    glossary = Glossary.read_tsv(cfg.glossary) if cfg.glossary else None
    translator = Translator.from_checkpoint(bundle_paths(cfg.checkpoint),
                                            device=resolve_device(cfg.device, key="device"),
                                            precision=cfg.precision)
    if cfg.max_input_length is not None:
        translator.max_input_length = cfg.max_input_length
    if cfg.format != "text":  # one document, markup kept
        doc = translator.translate_documents([inp.read()], scfg, glossary=glossary,
                                             format=cfg.format)[0]
        out.write(doc.text)
        out.flush()
        _warn_unmet([("document", s) for s in doc.sentences])
        return 1
    plots = AttentionPlots(Path(cfg.plot_attention).resolve()) if cfg.plot_attention else None
    lines = _Lines(cfg, translator, scfg, glossary)
    n = 0
    with tqdm(desc="translating", unit="sent", file=sys.stderr,
              disable=not cfg.progress or inp.isatty()) as bar:
        for chunk in _chunks(inp, cfg.chunk_size):
            drawn = lines.translate(chunk, n, out, bar.update)
            out.flush()
            _warn_unmet(drawn)
            if plots is not None:
                for label, tr in drawn:
                    if tr.src_pieces:  # an empty line has nothing to draw
                        plots.add(label, tr.src_pieces, tr.tgt_pieces, tr.alignment)
            n += len(chunk)
    if plots is not None:
        written = plots.close()
        where = written[0] if len(written) == 1 else f"{written[0].parent} ({len(written)} files)"
        print(f"seq2seq-translate: attention plots: {where if written else 'none (no sentence)'}",
              file=sys.stderr)
    return n


class _Lines:
    """Line-by-line translation: each line a document (sentences split and rejoined) or one
    segment (n-best, alignments, scores and prefixes need segments)."""

    def __init__(self, cfg: TranslateConfig, translator: Any, scfg: SearchConfig,
                 glossary: Any) -> None:
        from seq2seq.data import read_lines

        self.cfg, self.translator, self.scfg, self.glossary = cfg, translator, scfg, glossary
        segments = (scfg.n_best > 1 or cfg.alignment or scfg.return_scores
                    or bool(cfg.target_prefix))
        self.split = cfg.split_sentences and not segments
        self.prefixes = (read_lines(Path(cfg.target_prefix).resolve()) if cfg.target_prefix
                         else None)

    def translate(self, chunk: list[str], n: int, out: TextIO,
                  progress: Any) -> list[tuple[str, Any]]:
        """Write the chunk's translations (its first line is line ``n + 1``); return every
        sentence's translation with its label (``"3"``, ``"3.2"`` for sentence 2 of line 3)."""
        cfg, tr = self.cfg, self.translator
        if self.split:  # each line a document: its sentences translated, the line rebuilt
            docs = tr.translate_documents(chunk, self.scfg, progress=progress,
                                          first_index=n + 1, glossary=self.glossary)
            drawn = []
            for i, d in enumerate(docs):
                out.write(f"{d.text}\t{d.score:.4f}\n" if cfg.scores else d.text + "\n")
                many = len(d.sentences) > 1
                drawn += [(f"{n + i + 1}.{k + 1}" if many else f"{n + i + 1}", s)
                          for k, s in enumerate(d.sentences)]
            return drawn
        pre = None
        if self.prefixes is not None:
            pre = self.prefixes[n:n + len(chunk)]
            if len(pre) < len(chunk):
                raise ValueError(f"target_prefix {cfg.target_prefix} has "
                                 f"{len(self.prefixes)} lines, fewer than the input")
        results = tr.translate(chunk, self.scfg, progress=progress, first_index=n + 1,
                               prefixes=pre, glossary=self.glossary)
        for i, t in enumerate(results):
            out.write(_line(cfg, n + i, t))
        return [(f"{n + i + 1}", t) for i, t in enumerate(results)]


def _warn_unmet(drawn: list[tuple[str, Any]]) -> None:
    """Name every glossary term that could not be placed, on stderr."""
    for label, tr in drawn:
        for c in tr.constraints or []:
            if not c.met:
                print(f"seq2seq-translate: line {label}: term {c.source!r} -> {c.target!r} not "
                      f"in the output ({c.reason})", file=sys.stderr)


@command("translate", TranslateConfig)
def main(dcfg) -> None:
    """Hydra entry point of ``seq2seq-translate``."""
    cfg: TranslateConfig = to_config(dcfg, "seq2seq-translate")
    inp = out = None
    try:
        inp = sys.stdin if cfg.input == "-" else open(cfg.input, encoding="utf-8", newline="")
        out = sys.stdout if cfg.output == "-" else open(cfg.output, "w", encoding="utf-8")
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
