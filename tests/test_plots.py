"""Tests for seq2seq.plots: valid PNGs showing the right data."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from seq2seq.plots import (
    PNG_MAGIC,
    attention_png_bytes,
    plot_attention,
    plot_training_curves,
)

ROWS = [
    {"step": 100, "train_loss": 5.0, "dev_loss": "", "dev_bleu": ""},
    {"step": 200, "train_loss": 4.0, "dev_loss": 4.5, "dev_bleu": 3.25},
    {"step": 300, "train_loss": 3.5, "dev_loss": "", "dev_bleu": ""},
    {"step": 400, "train_loss": 3.0, "dev_loss": 3.75, "dev_bleu": 7.5},
]


def _lines(ax) -> dict[str, tuple[list[float], list[float]]]:
    return {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.lines}


def test_training_curves_from_rows(tmp_path):
    out = tmp_path / "curves.png"
    fig = plot_training_curves(ROWS, out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    h, w, _ = mpimg.imread(out).shape
    assert (w, h) == (1000, 400)
    loss = _lines(fig.axes[0])
    assert loss["train loss"] == ([100, 200, 300, 400], [5.0, 4.0, 3.5, 3.0])
    assert loss["dev loss"] == ([200, 400], [4.5, 3.75])
    assert _lines(fig.axes[1])["dev BLEU"] == ([200, 400], [3.25, 7.5])
    assert fig.axes[0].get_xlabel() == "step" and fig.axes[1].get_ylabel() == "BLEU"


def test_training_curves_from_csv(tmp_path):
    csv_path = tmp_path / "history.csv"
    lines = ["step,train_loss,dev_loss,dev_bleu,lr"]
    lines += [f"{r['step']},{r['train_loss']},{r['dev_loss']},{r['dev_bleu']},0.001" for r in ROWS]
    csv_path.write_text("\n".join(lines) + "\n")
    fig = plot_training_curves(csv_path, tmp_path / "sub" / "c.png")
    assert (tmp_path / "sub" / "c.png").read_bytes()[:8] == PNG_MAGIC
    assert _lines(fig.axes[1])["dev BLEU"] == ([200.0, 400.0], [3.25, 7.5])


def test_training_curves_need_data(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        plot_training_curves([{"step": 1}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_attention_heat_map(tmp_path):
    src = ["▁Im", "▁Anfang", "▁schuf"]
    tgt = ["▁In", "▁the", "▁beginning", "</s>"]
    align = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9]]
    out = tmp_path / "attn.png"
    fig = plot_attention(src, tgt, align, out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == src
    assert [t.get_text() for t in ax.get_yticklabels()] == tgt
    np.testing.assert_allclose(ax.images[0].get_array(), np.array(align))


def test_attention_png_bytes_is_a_png():
    data = attention_png_bytes(["a", "b"], ["x", "</s>"], [[1.0, 0.0], [0.5, 0.5]])
    assert data[:8] == PNG_MAGIC
    assert mpimg.imread(io.BytesIO(data), format="png").shape[2] in (3, 4)


def test_attention_shape_mismatch():
    with pytest.raises(ValueError, match=r"alignment shape \(2, 2\) does not match .* \(2, 3\)"):
        attention_png_bytes(["a", "b", "c"], ["x", "</s>"], [[1.0, 0.0], [0.5, 0.5]])
