"""A training job's data: its text pairs, sentencepiece models and encoded datasets.

Built from a :class:`~seq2seq.config.DataConfig` in four steps the trainer interleaves with
loading the resume checkpoint:

* :func:`load_pairs` reads the train and dev files (dev cut to ``dev_max_sentences``);
* :func:`train_job_tokenizers` trains the sentencepiece models on the training split on rank 0
  only (or loads the user's own, ``data.spm_src``/``data.spm_tgt``), writes them to
  ``<spm_dir>/<lang>.model`` and broadcasts them, so every rank encodes alike (a resumed or
  fine-tuned run takes its checkpoint's models instead and never retrains);
* :func:`source_style` learns the training source's word forms and final mark for the bundles
  (rank 0);
* :func:`encode_datasets` encodes both splits, dropping over-long and empty training pairs (and
  the final punctuation of a seeded fraction of them, ``data.drop_final_punct``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from seq2seq.config import DataConfig
from seq2seq.data import ParallelDataset, load_parallel
from seq2seq.data.punctuation import drop_final_punct, final_mark
from seq2seq.inference.casing import TrueCaser
from seq2seq.tokenizer import Tokenizer
from seq2seq.training import distributed as D

log = logging.getLogger(__name__)

Pairs = list[tuple[str, str]]


def load_pairs(d: DataConfig) -> tuple[Pairs, Pairs]:
    """Read the training and dev pairs.

    Args:
        d: ``src_train``/``tgt_train``/``src_dev``/``tgt_dev`` and ``dev_max_sentences``
            (0 = the whole dev set).

    Returns:
        ``(train_pairs, dev_pairs)`` of ``(source, target)`` sentences.
    """
    train_pairs = load_parallel(d.src_train, d.tgt_train)
    dev_pairs = load_parallel(d.src_dev, d.tgt_dev)
    if d.dev_max_sentences > 0:
        dev_pairs = dev_pairs[: d.dev_max_sentences]
    return train_pairs, dev_pairs


def train_job_tokenizers(pairs: Pairs, d: DataConfig, seed: int, spm_dir: str | Path,
                         ctx: D.DistContext) -> tuple[Tokenizer, Tokenizer]:
    """Sentencepiece models trained on ``pairs`` (or read from ``d.spm_src``/``d.spm_tgt``) on
    rank 0, written there, broadcast to all.

    Collective: every rank must call it. A corpus too small for ``d.vocab_size`` gives a smaller
    vocabulary and a warning, not an error.

    Args:
        pairs: the training pairs (read on rank 0 only).
        d: ``vocab_size``, ``spm_model_type``, ``joint_vocab``, ``src_lang``, ``tgt_lang``, and
            the user's own models ``spm_src``/``spm_tgt`` (a side without one is trained).
        seed: sentencepiece seed.
        spm_dir: where rank 0 writes ``<src_lang>.model`` and ``<tgt_lang>.model``.
        ctx: distributed context.

    Returns:
        ``(src_tokenizer, tgt_tokenizer)``; the same object twice with ``d.joint_vocab``.

    Raises:
        ValueError: a given model's special ids differ from the project's (the message names
            the key, the file and the ids).
    """
    protos = None
    if ctx.is_main:
        given = {"src": d.spm_src, "tgt": d.spm_src if d.joint_vocab else d.spm_tgt}
        sides = ("src",) if d.joint_vocab else ("src", "tgt")
        toks: dict[str, Tokenizer] = {}
        for side in sides:
            if given[side]:
                toks[side] = load_spm(given[side], f"data.spm_{side}")
                log.info("%s sentencepiece model from %s (%d pieces)", side, given[side],
                         toks[side].vocab_size)
                continue
            t0 = time.perf_counter()
            sents = [p[0] for p in pairs] if side == "src" else [p[1] for p in pairs]
            if d.joint_vocab:
                sents = sents + [p[1] for p in pairs]
            toks[side] = Tokenizer.train(sents, d.vocab_size, d.spm_model_type, seed=seed,
                                         hard_vocab_limit=False)
            if toks[side].vocab_size < d.vocab_size:
                log.warning("%s sentencepiece vocabulary has %d pieces, fewer than "
                            "data.vocab_size=%d (small corpus)", side, toks[side].vocab_size,
                            d.vocab_size)
            log.info("trained %s sentencepiece (%s, %d pieces) in %.1fs", side,
                     d.spm_model_type, toks[side].vocab_size, time.perf_counter() - t0)
        src, tgt = toks["src"], toks.get("tgt", toks["src"])
        protos = (src.to_bytes(), tgt.to_bytes())
        spm_dir = Path(spm_dir)
        spm_dir.mkdir(parents=True, exist_ok=True)
        (spm_dir / f"{d.src_lang}.model").write_bytes(protos[0])
        (spm_dir / f"{d.tgt_lang}.model").write_bytes(protos[1])
    protos = D.broadcast_object(protos, ctx)
    src = Tokenizer(protos[0])
    return (src, src) if d.joint_vocab else (src, Tokenizer(protos[1]))


def source_style(pairs: Pairs) -> dict[str, Any]:
    """What the bundles keep of the training source's style for typed input (the keyword
    arguments of :func:`~seq2seq.checkpoint.make_bundle`): ``truecase``, its word forms
    (``{lowercase word: most frequent form}``, :class:`~seq2seq.inference.casing.TrueCaser`),
    and ``final_mark``, its usual final mark (:func:`~seq2seq.data.punctuation.final_mark`).
    A pure function of the sources: a resumed run learns the same style."""
    t0 = time.perf_counter()
    table = TrueCaser.learn(s for s, _ in pairs).table
    mark = final_mark(s for s, _ in pairs)
    log.info("source style: %d words most often not in lowercase, final mark %r (%.1fs)",
             len(table), mark, time.perf_counter() - t0)
    return {"truecase": table, "final_mark": mark}


def load_spm(path: str | Path, key: str) -> Tokenizer:
    """A user's sentencepiece model file as a :class:`~seq2seq.tokenizer.Tokenizer`.

    Args:
        path: the ``.model`` file.
        key: the config key that named it (for messages).

    Raises:
        ValueError: not a sentencepiece model, or its special ids differ from ours.
    """
    try:
        return Tokenizer(Path(path).read_bytes())
    except ValueError as err:  # the special ids: say which file and how to retrain it
        raise ValueError(f"{key}: {path}: {err}; train it with --pad_id=0 --unk_id=1 "
                         "--bos_id=2 --eos_id=3") from None
    except RuntimeError as err:  # sentencepiece could not parse it
        raise ValueError(f"{key}: {path} is not a sentencepiece model ({err})") from None


def encode_datasets(train_pairs: Pairs, dev_pairs: Pairs, src_tok: Tokenizer, tgt_tok: Tokenizer,
                    d: DataConfig, seed: int,
                    verbose: bool = True) -> tuple[ParallelDataset, ParallelDataset]:
    """Encode both splits; training pairs longer than ``max_src_len``/``max_tgt_len`` are dropped,
    and ``drop_final_punct`` of them lose their final punctuation first.

    Args:
        train_pairs: training sentences.
        dev_pairs: dev sentences (only empty ones are dropped).
        src_tok: source tokenizer.
        tgt_tok: target tokenizer.
        d: ``max_src_len``, ``max_tgt_len`` (0 = no limit), ``drop_final_punct`` and
            ``src_train`` (for the error).
        seed: the run's seed (which pairs lose their final punctuation).
        verbose: log the split sizes (rank 0).

    Returns:
        ``(train_set, dev_set)``.

    Raises:
        ValueError: no training pair survives the filter.
    """
    train_pairs, unpunctuated = drop_final_punct(train_pairs, d.drop_final_punct, seed)
    train_set = ParallelDataset.from_pairs(train_pairs, src_tok, tgt_tok, d.max_src_len,
                                           d.max_tgt_len)
    if len(train_set) == 0:
        raise ValueError(f"no training pairs left after filtering {d.src_train}")
    dev_set = ParallelDataset.from_pairs(dev_pairs, src_tok, tgt_tok)
    if verbose:
        log.info("train: %d pairs (%d dropped, %d without their final punctuation), dev: %d "
                 "pairs, vocab %d/%d", len(train_set), train_set.n_dropped, unpunctuated,
                 len(dev_pairs), src_tok.vocab_size, tgt_tok.vocab_size)
    return train_set, dev_set
