"""Translator: a checkpoint bundle (or a live model) turned into ``texts -> translations``.

Used by ``seq2seq-evaluate``, ``seq2seq-translate``, the HTTP server and dev BLEU during
training::

    tr = Translator.from_checkpoint("runs/x/checkpoints/best.pt")
    out = tr.translate(["Im Anfang schuf Gott Himmel und Erde."], SearchConfig(beam_size=5))
    out[0].text, out[0].score, out[0].alignment   # alignment only with return_alignment=True

Inputs are sorted by source length and searched in batches of ``cfg.batch_size`` sentences (less
padding, fewer wasted steps); results come back in input order. Inputs with no subword pieces
(empty, whitespace-only, or only characters the source model drops, such as zero-width spaces)
give an empty translation with score 0 without running the model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
from seq2seq.config import Precision, SearchConfig, check_search_config, plain
from seq2seq.data import pad_sequences
from seq2seq.inference.documents import DocumentTranslation, translate_documents
from seq2seq.model import build_model
from seq2seq.runtime import autocast, precision_reason, resolve_precision
from seq2seq.search import search
from seq2seq.tokenizer import Tokenizer

EOS_PIECE = "</s>"
DEFAULT_MAX_INPUT_LENGTH = 256  # subwords, when the bundle does not say its training maximum

log = logging.getLogger(__name__)


@dataclass
class Translation:
    """One translated sentence.

    Attributes:
        text: best hypothesis, detokenized.
        score: its length-normalised score (the ranking score of search).
        tokens: its target piece ids (no BOS/EOS).
        n_best: ``(text, score)`` for the ``cfg.n_best`` best hypotheses, best first.
        alignment: attention rows of the best hypothesis as nested lists of shape
            ``(len(tokens) + 1, len(src_pieces))`` (the last row is the EOS step), or None when
            alignments were not requested.
        src_pieces: source subword pieces (columns of ``alignment``).
        tgt_pieces: target pieces of the best hypothesis followed by ``"</s>"`` (rows).
        truncated_from: the source's length in subwords when it was longer than the
            translator's ``max_input_length`` and only its first pieces were translated; else
            None.
    """

    text: str
    score: float
    tokens: list[int]
    n_best: list[tuple[str, float]] = field(default_factory=list)
    alignment: list[list[float]] | None = None
    src_pieces: list[str] = field(default_factory=list)
    tgt_pieces: list[str] = field(default_factory=list)
    truncated_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (tuples become lists)."""
        d = asdict(self)
        d["n_best"] = [[t, s] for t, s in self.n_best]
        return d


def describe(model_config: dict[str, Any], meta: dict[str, Any], src_tok: Tokenizer,
             tgt_tok: Tokenizer, parameters: int, path: str | None) -> dict[str, Any]:
    """The model description of :meth:`Translator.info` and the server's ``/info``.

    Args:
        model_config: the plain model config.
        meta: the bundle's ``meta``.
        src_tok, tgt_tok: the tokenizers (equal ones mean a joint vocabulary).
        parameters: number of distinct parameters (tied weights counted once).
        path: where the bundle came from.

    Returns:
        Model config, languages, vocabulary sizes, step, dev BLEU, creation time, averaging
        sources, the bundle it was fine-tuned from, parameter count and the checkpoint path.
    """
    return {
        "checkpoint": path,
        "model_config": dict(model_config),
        "src_lang": meta.get("src_lang"),
        "tgt_lang": meta.get("tgt_lang"),
        "src_vocab_size": src_tok.vocab_size,
        "tgt_vocab_size": tgt_tok.vocab_size,
        "joint_vocab": src_tok == tgt_tok,
        "step": int(meta.get("step") or 0),
        "dev_bleu": meta.get("dev_bleu"),
        "created": meta.get("created"),
        "averaged_from": meta.get("averaged_from"),
        "init_from": meta.get("init_from"),
        "parameters": parameters,
    }


def describe_bundle(bundle: dict[str, Any], path: str | None) -> dict[str, Any]:
    """:func:`describe` of a loaded bundle without building its model (the server's HTTP side)."""
    src_tok, tgt_tok = tokenizers_from_bundle(bundle)
    seen, n_params = set(), 0
    for t in bundle["model"].values():  # tied weights share storage: count them once
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            n_params += t.numel()
    return describe(bundle["model_config"], dict(bundle.get("meta") or {}), src_tok, tgt_tok,
                    n_params, path)


class Translator:
    """Tokenizers + model + search.

    Built from a bundle (:meth:`from_checkpoint`, :meth:`from_bundle`) for evaluation,
    translation and serving, or around a live model during training (dev BLEU), so every
    translation goes through the same code.

    Args:
        model: the :class:`~seq2seq.model.Seq2Seq` (any module with the decoder protocol and a
            ``cfg``); its train/eval mode is left to the search.
        src_tok: source tokenizer.
        tgt_tok: target tokenizer.
        device: where the model runs (default: where its parameters are).
        amp_dtype: autocast dtype for the search (None = fp32).
        meta: the bundle's ``meta`` (languages, step, dev BLEU, ...), for :meth:`info`.
        path: where the bundle came from, for :meth:`info`.
        max_input_length: sources longer than this many subwords are cut to it, with a warning
            (as CTranslate2's ``max_input_length``): a model never trained on such lengths
            produces nothing useful from them, slowly. Default: twice the training maximum
            (``meta.config.data.max_src_len``), else :data:`DEFAULT_MAX_INPUT_LENGTH`; 0 = none.
    """

    def __init__(self, model: torch.nn.Module, src_tok: Tokenizer, tgt_tok: Tokenizer, *,
                 device: str | torch.device | None = None, amp_dtype: torch.dtype | None = None,
                 meta: dict[str, Any] | None = None, path: str | None = None,
                 max_input_length: int | None = None) -> None:
        self.model = model
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        self.device = torch.device(device) if device is not None else next(
            model.parameters()).device
        self.amp_dtype = amp_dtype
        self.meta = dict(meta or {})
        self.path = path
        self.precision = ("fp32" if amp_dtype is None else
                          f"autocast {str(amp_dtype).removeprefix('torch.')}")
        if max_input_length is None:
            trained = ((self.meta.get("config") or {}).get("data") or {}).get("max_src_len")
            max_input_length = 2 * int(trained) if trained else DEFAULT_MAX_INPUT_LENGTH
        self.max_input_length = int(max_input_length)

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], device: str | torch.device = "cpu",
                    path: str | None = None,
                    precision: Precision | str = Precision.fp32) -> Translator:
        """Build the bundle's model (eval mode) and tokenizers on ``device``.

        Args:
            bundle: a loaded bundle.
            device: where the model runs.
            path: where the bundle came from (for :meth:`info`).
            precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` (CUDA) or ``"auto"`` (bf16 where the
                device has native bf16 matrix support, see :func:`seq2seq.runtime.native_bf16`).
                The weights are converted once, here; the decoder returns float32 log-probs, so
                search bookkeeping (scores, top-k) stays in float32.
        """
        device = torch.device(device)
        dtype = resolve_precision(precision, device, key="precision")
        src_tok, tgt_tok = tokenizers_from_bundle(bundle)
        model = build_model(bundle, device)
        if dtype is not None:
            model.to(dtype)
        tr = cls(model, src_tok, tgt_tok, device=device, meta=bundle.get("meta"), path=path)
        tr.precision = precision_reason(precision, device)
        return tr

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                        precision: Precision | str = Precision.fp32) -> Translator:
        """Load the bundle at ``path`` (safely) and build a translator on ``device``
        (``precision`` as in :meth:`from_bundle`)."""
        bundle = load_bundle(path, map_location="cpu")
        return cls.from_bundle(bundle, device=device, path=str(path), precision=precision)

    @property
    def step(self) -> int:
        """Training step the weights come from."""
        return int(self.meta.get("step") or 0)

    def info(self) -> dict[str, Any]:
        """Plain-JSON description (:func:`describe`) plus the device and the precision (which,
        and why)."""
        n_params = sum(p.numel() for p in self.model.parameters())
        return {**describe(plain(self.model.cfg), self.meta, self.src_tok, self.tgt_tok, n_params,
                           self.path), "device": str(self.device), "precision": self.precision}

    @property
    def src_lang(self) -> str:
        """Source language code from the bundle (``"en"`` when it does not say)."""
        return str(self.meta.get("src_lang") or "en")

    def translate_documents(self, texts: Sequence[str], cfg: SearchConfig | None = None,
                            progress: Callable[[int], None] | None = None,
                            first_index: int = 0) -> list[DocumentTranslation]:
        """Translate whole documents: split into sentences, one batched search, rejoined with
        the same line breaks and whitespace (:mod:`seq2seq.inference.documents`).

        Args:
            texts: documents (several sentences, lines, paragraphs each).
            cfg: search options, applied per sentence.
            progress: called with the number of sentences finished (see :meth:`translate`).
            first_index: number of ``texts[0]`` in warnings (e.g. its line number in a file).

        Returns:
            One :class:`~seq2seq.inference.documents.DocumentTranslation` per text.
        """
        return translate_documents(self.translate, texts, self.src_lang, cfg or SearchConfig(),
                                   first_index=first_index, progress=progress)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids per text (no BOS/EOS, as in training)."""
        return self.src_tok.encode_batch(list(texts))

    @torch.inference_mode()
    def translate(
        self,
        texts: Sequence[str],
        cfg: SearchConfig | None = None,
        progress: Callable[[int], None] | None = None,
        first_index: int = 0,
        labels: Sequence[str] | None = None,
    ) -> list[Translation]:
        """Translate ``texts``.

        Args:
            texts: source sentences.
            cfg: search options (beam size, n-best, length penalty, alignment, batch size).
            progress: called with the number of sentences finished after each batch (e.g.
                ``tqdm.update``); empty inputs are reported in the first call.
            first_index: number of ``texts[0]`` in warnings (e.g. its line number in a file).
            labels: names of the texts in warnings instead (``"input 3, sentence 2"``).

        Returns:
            One :class:`Translation` per text, in input order.
        """
        cfg = cfg or SearchConfig()
        check_search_config(cfg)
        texts = list(texts)
        results: list[Translation | None] = [None] * len(texts)
        ids = [self.src_tok.encode(t) if t.strip() else [] for t in texts]
        cut: dict[int, int] = {}
        limit = self.max_input_length
        for i, x in enumerate(ids):
            if 0 < limit < len(x):
                cut[i] = len(x)
                ids[i] = x[:limit]
                log.warning("%s has %d subword pieces; translating its first %d "
                            "(max_input_length)",
                            labels[i] if labels else f"input {first_index + i}", len(x), limit)
        todo = [i for i in range(len(texts)) if ids[i]]
        for i in range(len(texts)):
            if not ids[i]:  # blank, or no subword pieces at all (e.g. only zero-width spaces)
                results[i] = Translation(text="", score=0.0, tokens=[], n_best=[("", 0.0)],
                                         alignment=[] if cfg.return_alignment else None,
                                         src_pieces=[], tgt_pieces=[])
        if progress is not None and len(todo) < len(texts):
            progress(len(texts) - len(todo))
        # longest first: the first batch shows memory problems at once
        order = sorted(todo, key=lambda i: -len(ids[i]))
        for start in range(0, len(order), cfg.batch_size):
            chunk = order[start:start + cfg.batch_size]
            src, src_len = pad_sequences([ids[i] for i in chunk])  # (B, S), (B,)
            with autocast(self.device, self.amp_dtype):
                hyps = search(self.model, src.to(self.device), src_len.to(self.device), cfg)
            for i, nbest in zip(chunk, hyps, strict=True):
                results[i] = self._to_translation(texts[i], nbest, cfg)
                results[i].truncated_from = cut.get(i)
                if i in cut:  # the pieces that were translated (alignment columns)
                    results[i].src_pieces = results[i].src_pieces[:limit]
            if progress is not None:
                progress(len(chunk))
        return results  # type: ignore[return-value]

    def _to_translation(self, text: str, nbest: list, cfg: SearchConfig) -> Translation:
        """Turn the n-best hypotheses of one sentence into a :class:`Translation`."""
        best = nbest[0]
        tokens = [int(t) for t in best.tokens]
        alignment = None
        if cfg.return_alignment and best.alignment is not None:
            alignment = best.alignment.float().cpu().tolist()  # (T_out+1, S) nested lists
        return Translation(
            text=self.tgt_tok.decode(tokens),
            score=float(best.score),
            tokens=tokens,
            n_best=[(self.tgt_tok.decode([int(t) for t in h.tokens]), float(h.score)) for h in nbest],
            alignment=alignment,
            src_pieces=self.src_tok.pieces(text),
            tgt_pieces=[self.tgt_tok.id_to_piece(t) for t in tokens] + [EOS_PIECE],
        )


__all__ = ["EOS_PIECE", "Translation", "Translator", "describe", "describe_bundle"]
