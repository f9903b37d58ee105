"""Plots people would rather see than read: training curves and attention heat maps (PNG).

Matplotlib runs headless (``Agg``); every function builds its own :class:`~matplotlib.figure.Figure`
(no pyplot global state), so it is safe in servers and threads.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _to_float(value: Any) -> float:
    """CSV cell or number -> float; empty/None/unparsable -> NaN."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_history(history: str | os.PathLike | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a training history: a CSV path (header row) or an iterable of dicts."""
    if isinstance(history, (str, os.PathLike)):
        with open(history, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    return [dict(r) for r in history]


# accepted column names per series (the first present one in a row is used)
COLUMNS = {
    "train_loss": ("train_loss", "loss"),
    "dev_loss": ("dev_loss", "valid_loss", "val_loss"),
    "dev_bleu": ("dev_bleu", "valid_bleu", "val_bleu", "bleu"),
}


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of the rows where column ``key`` (or an alias) has a finite value."""
    xs, ys = [], []
    for r in rows:
        name = next((c for c in COLUMNS[key] if c in r), key)
        y = _to_float(r.get(name))
        x = _to_float(r.get("step"))
        if math.isfinite(y) and math.isfinite(x):
            xs.append(x)
            ys.append(y)
    return xs, ys


def training_curves_figure(history: str | os.PathLike | Iterable[Mapping[str, Any]]) -> Figure:
    """Figure with train/dev loss (left) and dev BLEU (right) against the update step.

    Args:
        history: CSV path or rows with a ``step`` column and any of ``train_loss``,
            ``dev_loss``, ``dev_bleu`` (aliases in :data:`COLUMNS`; empty cells are skipped: dev
            values appear only on validation rows).

    Returns:
        The figure; ``fig.axes[0]`` holds the loss lines labelled ``"train loss"``/``"dev loss"``,
        ``fig.axes[1]`` the ``"dev BLEU"`` line.

    Raises:
        ValueError: no row has a ``step`` and any plottable value.
    """
    rows = read_history(history)
    series = {k: _series(rows, k) for k in ("train_loss", "dev_loss", "dev_bleu")}
    if not any(xs for xs, _ in series.values()):
        raise ValueError("training history has no rows with a step and train_loss/dev_loss/dev_bleu")
    fig = Figure(figsize=(10, 4), dpi=100)
    ax_loss, ax_bleu = fig.subplots(1, 2)
    for key, label, style in (("train_loss", "train loss", "-"), ("dev_loss", "dev loss", "o-")):
        xs, ys = series[key]
        if xs:
            ax_loss.plot(xs, ys, style, label=label, markersize=3)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (per token)")
    ax_loss.set_title("Loss")
    ax_loss.grid(alpha=0.3)
    if ax_loss.lines:
        ax_loss.legend()
    xs, ys = series["dev_bleu"]
    if xs:
        ax_bleu.plot(xs, ys, "o-", color="tab:green", label="dev BLEU", markersize=3)
        best = max(range(len(ys)), key=ys.__getitem__)
        ax_bleu.annotate(f"best {ys[best]:.2f}", (xs[best], ys[best]), textcoords="offset points",
                         xytext=(0, 6), ha="center")
        ax_bleu.legend()
    ax_bleu.set_xlabel("step")
    ax_bleu.set_ylabel("BLEU")
    ax_bleu.set_title("Dev BLEU")
    ax_bleu.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_training_curves(history: str | os.PathLike | Iterable[Mapping[str, Any]],
                         out_png: str | os.PathLike) -> Figure:
    """Write the training curves PNG (see :func:`training_curves_figure`); return the figure."""
    fig = training_curves_figure(history)
    _save(fig, out_png)
    return fig


def attention_figure(src_pieces: Sequence[str], tgt_pieces: Sequence[str],
                     alignment: Sequence[Sequence[float]]) -> Figure:
    """Heat map of attention weights: target pieces (rows) against source pieces (columns).

    Args:
        src_pieces: ``S`` source pieces (x tick labels).
        tgt_pieces: ``T`` target pieces, usually ending in ``"</s>"`` (y tick labels).
        alignment: ``(T, S)`` weights (nested lists or array-like).

    Returns:
        The figure; ``fig.axes[0].images[0].get_array()`` is the ``(T, S)`` matrix.

    Raises:
        ValueError: the alignment shape does not match the pieces.
    """
    import numpy as np

    mat = np.asarray(alignment, dtype=np.float64)  # (T, S)
    if mat.ndim != 2 or mat.shape != (len(tgt_pieces), len(src_pieces)):
        raise ValueError(
            f"alignment shape {mat.shape} does not match (len(tgt_pieces), len(src_pieces)) = "
            f"({len(tgt_pieces)}, {len(src_pieces)})"
        )
    s, t = len(src_pieces), len(tgt_pieces)
    fig = Figure(figsize=(min(2 + 0.45 * s, 30), min(1.5 + 0.4 * t, 30)), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(mat, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(mat.max(initial=0.0))),
                   aspect="auto", interpolation="nearest")
    ax.set_xticks(range(s))
    ax.set_xticklabels(list(src_pieces), rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(t))
    ax.set_yticklabels(list(tgt_pieces), fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_attention(src_pieces: Sequence[str], tgt_pieces: Sequence[str],
                   alignment: Sequence[Sequence[float]], out_png: str | os.PathLike) -> Figure:
    """Write the attention heat map PNG (see :func:`attention_figure`); return the figure."""
    fig = attention_figure(src_pieces, tgt_pieces, alignment)
    _save(fig, out_png)
    return fig


class AttentionPlots:
    """Attention heat maps of many sentences: one PNG per sentence, or one page each of a PDF.

    Args:
        path: ``attn.pdf`` for one multi-page PDF; any other name (``attn.png``) for PNGs
            named ``attn_<label>.png`` beside it.

    Attributes:
        written: the files written so far.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.written: list[Path] = []
        self._pdf = None
        if self.path.suffix.lower() == ".pdf":
            from matplotlib.backends.backend_pdf import PdfPages

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._pdf = PdfPages(self.path)
            self.written.append(self.path)

    def add(self, label: str, src_pieces: Sequence[str], tgt_pieces: Sequence[str],
            alignment: Sequence[Sequence[float]]) -> None:
        """Draw one sentence (titled ``label``)."""
        fig = attention_figure(src_pieces, tgt_pieces, alignment)
        fig.suptitle(label)
        if self._pdf is not None:
            self._pdf.savefig(fig)
            return
        out = self.path.with_name(f"{self.path.stem}_{label}{self.path.suffix or '.png'}")
        _save(fig, out)
        self.written.append(out)

    def close(self) -> list[Path]:
        """Finish the PDF; return the files written."""
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
        return self.written


def attention_png_bytes(src_pieces: Sequence[str], tgt_pieces: Sequence[str],
                        alignment: Sequence[Sequence[float]]) -> bytes:
    """The attention heat map as PNG bytes (for HTTP responses)."""
    buf = io.BytesIO()
    FigureCanvasAgg(attention_figure(src_pieces, tgt_pieces, alignment)).print_png(buf)
    return buf.getvalue()


def _save(fig: Figure, out_png: str | os.PathLike) -> None:
    """Render ``fig`` as PNG at ``out_png`` (parent directories created)."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(out))
