"""Checkpoint bundle: one self-describing file, written atomically and loaded safely.

A bundle is a plain dict (see ``docs/DESIGN.md``)::

    {
      "format_version": 1,
      "model_config": dict(asdict(ModelConfig)),
      "vocab": {"src_size": int, "tgt_size": int, "joint": bool},
      "model": model.state_dict(),
      "spm": {"src": uint8 tensor (proto bytes), "tgt": uint8 tensor},
      "train_state": {...} | None,
      "meta": {"src_lang", "tgt_lang", "step", "dev_bleu", "created", "config"},
    }

It holds only tensors, dicts, lists, tuples, str/int/float/bool/None, so it loads with
``torch.load(..., weights_only=True)``: no arbitrary pickle is ever executed. :func:`save_bundle`
refuses anything else, writes ``<path>.tmp`` in the same directory, fsyncs it and ``os.replace``-s
it over ``path``, so a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from seq2seq.config import ModelConfig, plain
from seq2seq.tokenizer import Tokenizer

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_config", "vocab", "model", "spm", "meta")

_PLAIN_SCALARS = (str, int, float, bool, type(None))


def proto_to_tensor(proto: bytes) -> torch.Tensor:
    """Pack serialized sentencepiece proto bytes into a tensor.

    Args:
        proto: serialized ``ModelProto`` bytes.

    Returns:
        ``(N,)`` uint8 tensor holding the bytes.
    """
    return torch.frombuffer(bytearray(proto), dtype=torch.uint8).clone()  # (N,)


def tensor_to_proto(t: torch.Tensor) -> bytes:
    """Inverse of :func:`proto_to_tensor`.

    Args:
        t: ``(N,)`` uint8 tensor.

    Returns:
        The original bytes.
    """
    if t.dtype != torch.uint8 or t.dim() != 1:
        raise ValueError(f"expected a 1-D uint8 tensor of proto bytes, got {t.dtype} {tuple(t.shape)}")
    return t.cpu().numpy().tobytes()


def make_bundle(
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    truecase: dict[str, str] | None = None,
    final_mark: str | None = None,
) -> dict[str, Any]:
    """Assemble a bundle dict from live objects.

    Args:
        model: the :class:`~seq2seq.model.seq2seq.Seq2Seq` (its ``state_dict`` is stored; tensors are
            detached and moved to CPU).
        model_cfg: its architecture.
        src_tok: source tokenizer.
        tgt_tok: target tokenizer (the same object or an equal one means a joint vocabulary).
        meta: ``src_lang``, ``tgt_lang``, ``step``, ``dev_bleu``, ``config`` ...; ``created`` is
            filled in when absent.
        train_state: optimizer/scheduler/sampler/rng state to resume, or None.
        truecase: the training source's word forms, ``{lowercase word: most frequent form}``
            (:class:`~seq2seq.inference.casing.TrueCaser`), stored as ``truecase.src``.
        final_mark: the training source's usual final mark
            (:func:`~seq2seq.data.punctuation.final_mark`), stored as ``final_mark.src``.

    Returns:
        A bundle ready for :func:`save_bundle`.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = dict(meta)
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("step", 0)
    meta.setdefault("dev_bleu", None)
    bundle = {
        "format_version": FORMAT_VERSION,
        "model_config": plain(model_cfg),
        "vocab": {
            "src_size": src_tok.vocab_size,
            "tgt_size": tgt_tok.vocab_size,
            "joint": src_tok == tgt_tok,
        },
        "model": state,
        "spm": {"src": proto_to_tensor(src_tok.to_bytes()), "tgt": proto_to_tensor(tgt_tok.to_bytes())},
        "train_state": train_state,
        "meta": meta,
    }
    if truecase:
        bundle["truecase"] = {"src": dict(truecase)}
    if final_mark:
        bundle["final_mark"] = {"src": str(final_mark)}
    return bundle


def _check_plain(obj: Any, where: str) -> None:
    """Raise ``TypeError`` if ``obj`` holds anything ``weights_only`` loading would refuse."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN_SCALARS:  # not str/int subclasses
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if type(k) not in _PLAIN_SCALARS:
                raise TypeError(f"bundle key {where}[{k!r}] has non-plain type {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"bundle entry {where} has type {type(obj).__module__}.{type(obj).__qualname__}; only "
        "tensors, dicts, lists, tuples, str/int/float/bool/None may be saved"
    )


def save_bundle(path: str | os.PathLike, bundle: dict[str, Any]) -> None:
    """Write ``bundle`` to ``path`` atomically.

    The bundle is written to ``<path>.tmp`` in the same directory, flushed and fsynced, then
    renamed over ``path`` with ``os.replace``. If anything fails before the rename, the temporary
    file is removed and an existing ``path`` is untouched; an I/O failure (disk full, ...) is
    raised as ``OSError`` even where torch's writer wraps it in a ``RuntimeError``.

    Args:
        path: destination file; parent directories are created.
        bundle: a bundle dict (see module docstring).

    Raises:
        ValueError: missing required keys or wrong ``format_version``.
        TypeError: the bundle holds something other than tensors/containers/plain scalars.
    """
    _validate(bundle, str(path))
    _check_plain(bundle, "bundle")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(bundle, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        io_err = _io_error_in(err)
        if io_err is not None and io_err is not err:  # torch's zip writer hides ENOSPC
            raise OSError(io_err.errno, io_err.strerror or str(io_err)) from err
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _io_error_in(err: BaseException) -> OSError | None:
    """The first ``OSError`` in ``err``'s cause/context chain (``err`` itself included)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def bundle_paths(value: Any, key: str = "checkpoint") -> list[str]:
    """A ``checkpoint`` setting (one bundle path, or a list of them: an ensemble) as absolute
    paths, relative ones taken from the current directory (what every command and the server
    accept).

    Raises:
        ValueError: not a non-empty path or list of them (naming ``key``).
    """
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value or [])
    if not items or not all(isinstance(v, (str, os.PathLike)) and str(v) for v in items):
        raise ValueError(f"{key} must be a bundle path or a list of them, got {value!r}")
    return [str(Path(v).resolve()) for v in items]


def load_bundle(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a bundle with ``torch.load(..., weights_only=True)``.

    Args:
        path: bundle file.
        map_location: device for the tensors.

    Returns:
        The bundle dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a bundle, is truncated/corrupt, holds pickled Python objects
            other than plain data, has a newer ``format_version`` or lacks required keys. The
            message names the path and the problem.
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        bundle = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"checkpoint {path} holds objects that are not plain data and was refused by safe "
            f"loading (weights_only=True): {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # zip/EOF/legacy-pickle errors of a corrupt or foreign file
        raise ValueError(
            f"checkpoint {path} is truncated or not a torch checkpoint file: "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err
    _validate(bundle, path)
    return bundle


def _validate(bundle: Any, path: str) -> None:
    """Check the bundle's structure; raise ``ValueError`` naming ``path`` otherwise."""
    if not isinstance(bundle, dict) or "format_version" not in bundle:
        raise ValueError(f"checkpoint {path} is not a seq2seq bundle (no 'format_version' key)")
    version = bundle["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"checkpoint {path} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format_version {version}, newer than this seq2seq supports "
            f"({FORMAT_VERSION}); upgrade seq2seq to load it"
        )
    if version < 1:
        raise ValueError(f"checkpoint {path} has an invalid format_version {version}")
    missing = [k for k in REQUIRED_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"checkpoint {path} is missing required keys {missing}")
    for key in ("src", "tgt"):
        if key not in bundle["spm"]:
            raise ValueError(f"checkpoint {path} is missing the sentencepiece model spm.{key}")
    for key in ("src_size", "tgt_size"):
        if key not in bundle["vocab"]:
            raise ValueError(f"checkpoint {path} is missing vocab.{key}")


def model_config_from_bundle(bundle: dict[str, Any]) -> ModelConfig:
    """The bundle's :class:`ModelConfig`.

    Raises:
        ValueError: the stored config has keys ``ModelConfig`` does not know.
    """
    stored = dict(bundle["model_config"])
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"bundle model_config has unknown keys {unknown}")
    return ModelConfig(**stored)


def tokenizers_from_bundle(bundle: dict[str, Any]) -> tuple[Tokenizer, Tokenizer]:
    """Rebuild ``(src_tokenizer, tgt_tokenizer)`` from the bundle's proto bytes.

    For a joint vocabulary the same object is returned twice.
    """
    src = Tokenizer(tensor_to_proto(bundle["spm"]["src"]))
    if bundle["vocab"].get("joint", False):
        return src, src
    return src, Tokenizer(tensor_to_proto(bundle["spm"]["tgt"]))
