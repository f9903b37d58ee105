"""Checkpoint averaging: the weights of several bundles averaged into one (``seq2seq-average``).

Averaging the last few checkpoints of a run (as in Marian, fairseq's ``average_checkpoints.py``
and OpenNMT-py's ``average_models``) usually gains a little BLEU for free::

    seq2seq-average --run-dir runs/default --last 5            # -> checkpoints/avg_last5.pt
    seq2seq-average --run-dir runs/default --best              # the keep_best best validations
    seq2seq-average a.pt b.pt c.pt -o averaged.pt
    seq2seq-evaluate checkpoint=runs/default/checkpoints/avg_last5.pt

Floating-point parameters and buffers are summed in float64 and divided by the count, then cast
back to their dtype; other tensors (integer buffers) are taken from the last input. The result
has no training state (it cannot resume training) and records its inputs in
``meta.averaged_from``. Inputs must share architecture, vocabularies and parameter shapes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seq2seq.checkpoint import load_bundle

STEP_RE = re.compile(r"^step_(\d+)\.pt$")
BEST_RE = re.compile(r"^best_step_(\d+)\.pt$")


def step_checkpoints(run_dir: str | Path, best: bool = False) -> list[Path]:
    """``<run_dir>/checkpoints/step_<N>.pt`` files (or ``<run_dir>/step_<N>.pt``) by step number;
    with ``best``, the ``best_step_<N>.pt`` files that ``train.keep_best`` keeps instead.

    Raises:
        FileNotFoundError: there are none.
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints" if (run_dir / "checkpoints").is_dir() else run_dir
    pattern, name = (BEST_RE, "best_step") if best else (STEP_RE, "step")
    found = [(int(m.group(1)), p) for p in ckpt_dir.glob(f"{name}_*.pt")
             if (m := pattern.match(p.name))]
    if not found:
        hint = " (train with train.keep_best=N to keep them)" if best else ""
        raise FileNotFoundError(f"no {name}_<N>.pt checkpoints in {ckpt_dir}{hint}")
    return [p for _, p in sorted(found)]


def _compatible(first: dict[str, Any], other: dict[str, Any], path: str, first_path: str) -> None:
    """Raise ``ValueError`` unless ``other`` can be averaged with ``first``."""
    if other["model_config"] != first["model_config"]:
        diff = sorted(k for k in set(first["model_config"]) | set(other["model_config"])
                      if first["model_config"].get(k) != other["model_config"].get(k))
        raise ValueError(f"cannot average {path} with {first_path}: model_config differs in {diff}")
    for key in ("src_size", "tgt_size"):
        if other["vocab"][key] != first["vocab"][key]:
            raise ValueError(f"cannot average {path} with {first_path}: vocab.{key} differs "
                             f"({other['vocab'][key]} vs {first['vocab'][key]})")
    for side in ("src", "tgt"):
        if not torch.equal(other["spm"][side], first["spm"][side]):
            raise ValueError(f"cannot average {path} with {first_path}: the {side} sentencepiece "
                             "models differ")
    a, b = first["model"], other["model"]
    if set(a) != set(b):
        raise ValueError(f"cannot average {path} with {first_path}: parameter names differ "
                         f"({sorted(set(a) ^ set(b))[:5]})")
    for k in a:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
            raise ValueError(f"cannot average {path} with {first_path}: parameter {k} is "
                             f"{b[k].dtype} {tuple(b[k].shape)} vs {a[k].dtype} {tuple(a[k].shape)}")


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Average the weights of ``paths`` (loaded one at a time) into a new bundle.

    Args:
        paths: two or more bundle files; the last one supplies config, tokenizers, non-float
            buffers and metadata.

    Returns:
        The averaged bundle (``train_state`` None, ``meta.averaged_from`` = ``[{path, step}]``,
        ``meta.dev_bleu`` None, ``meta.step`` = the last input's step).

    Raises:
        ValueError: no paths, or incompatible inputs (message names both files and
            what differs).
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoints to average")
    first: dict[str, Any] | None = None
    sums: dict[str, torch.Tensor] = {}
    sources: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    for path in paths:
        bundle = load_bundle(path, map_location="cpu")
        if first is None:
            first = bundle
        else:
            _compatible(first, bundle, path, paths[0])
        for k, v in bundle["model"].items():
            if v.is_floating_point():
                acc = v.to(torch.float64)  # same shape, float64
                sums[k] = acc.clone() if k not in sums else sums[k].add_(acc)
        sources.append({"path": str(Path(path).resolve()), "step": bundle["meta"].get("step")})
        last = bundle  # only the first (for checks), the last and the sums stay in memory
    n = len(paths)
    model = {k: (sums[k] / n).to(v.dtype) if v.is_floating_point() else v.clone()
             for k, v in last["model"].items()}
    meta = dict(last["meta"])
    meta.update(averaged_from=sources, dev_bleu=None)
    return {**last, "model": model, "train_state": None, "meta": meta}
