"""Reading and writing text corpora: UTF-8 lines (gzip transparently), line-aligned parallel
files."""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from pathlib import Path


def read_lines(path: str | Path) -> list[str]:
    """Read a UTF-8 text file (gzip when the name ends in ``.gz``), one item per line.

    Args:
        path: file to read.

    Returns:
        The lines without their line terminators (other whitespace is kept).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_parallel(src_path: str | Path, tgt_path: str | Path) -> list[tuple[str, str]]:
    """Read two line-aligned files into ``(source, target)`` pairs.

    Raises:
        ValueError: if the files have different numbers of lines (both names and counts given).
    """
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise ValueError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, "
            f"{tgt_path} has {len(tgt)} lines"
        )
    return list(zip(src, tgt, strict=True))


def write_lines(path: str | Path, lines: Sequence[str]) -> None:
    """Write lines (UTF-8, ``\\n``); gzip with ``mtime=0`` and no name when ``path`` ends in .gz.

    The file is written to ``path.tmp`` and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
