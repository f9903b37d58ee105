"""Translator: a checkpoint bundle turned into ``texts -> translations``.

Used by ``seq2seq-evaluate``, ``seq2seq-translate`` and the HTTP server::

    tr = Translator.from_checkpoint("runs/x/checkpoints/best.pt")
    out = tr.translate(["Im Anfang schuf Gott Himmel und Erde."], SearchConfig(beam_size=5))
    out[0].text, out[0].score, out[0].alignment   # alignment only with return_alignment=True

Inputs are sorted by source length and searched in batches of ``cfg.batch_size`` sentences (less
padding, fewer wasted steps); results come back in input order. Empty or whitespace-only inputs
give an empty translation without running the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from seq2seq.checkpoint import build_model, load_bundle, tokenizers_from_bundle
from seq2seq.config import SearchConfig
from seq2seq.data import pad_sequences

EOS_PIECE = "</s>"


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
    """

    text: str
    score: float
    tokens: list[int]
    n_best: list[tuple[str, float]] = field(default_factory=list)
    alignment: list[list[float]] | None = None
    src_pieces: list[str] = field(default_factory=list)
    tgt_pieces: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (tuples become lists)."""
        d = asdict(self)
        d["n_best"] = [[t, s] for t, s in self.n_best]
        return d


class Translator:
    """Tokenizers + model + search from one bundle.

    Args:
        bundle: a loaded checkpoint bundle (:func:`seq2seq.checkpoint.load_bundle`).
        device: where the model runs.
        path: where the bundle came from (for :meth:`info`).
    """

    def __init__(self, bundle: dict[str, Any], device: str | torch.device = "cpu",
                 path: str | None = None) -> None:
        self.device = torch.device(device)
        self.path = path
        self.src_tok, self.tgt_tok = tokenizers_from_bundle(bundle)
        self.model = build_model(bundle, self.device)
        self.model_config = dict(bundle["model_config"])
        self.vocab = dict(bundle["vocab"])
        self.meta = dict(bundle.get("meta") or {})

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Translator:
        """Load the bundle at ``path`` (safely) and build a translator on ``device``."""
        bundle = load_bundle(path, map_location="cpu")
        return cls(bundle, device=device, path=str(path))

    @property
    def step(self) -> int:
        """Training step the weights come from."""
        return int(self.meta.get("step") or 0)

    def info(self) -> dict[str, Any]:
        """Plain-JSON description: model config, languages, vocab sizes, step, dev BLEU."""
        n_params = sum(p.numel() for p in self.model.parameters())
        return {
            "checkpoint": self.path,
            "model_config": self.model_config,
            "src_lang": self.meta.get("src_lang"),
            "tgt_lang": self.meta.get("tgt_lang"),
            "src_vocab_size": int(self.vocab["src_size"]),
            "tgt_vocab_size": int(self.vocab["tgt_size"]),
            "joint_vocab": bool(self.vocab.get("joint", False)),
            "step": self.step,
            "dev_bleu": self.meta.get("dev_bleu"),
            "created": self.meta.get("created"),
            "averaged_from": self.meta.get("averaged_from"),
            "parameters": n_params,
            "device": str(self.device),
        }

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids per text (no BOS/EOS, as in training)."""
        return self.src_tok.encode_batch(list(texts))

    @torch.inference_mode()
    def translate(
        self,
        texts: Sequence[str],
        cfg: SearchConfig | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Translation]:
        """Translate ``texts``.

        Args:
            texts: source sentences.
            cfg: search options (beam size, n-best, length penalty, alignment, batch size).
            progress: called with the number of sentences finished after each batch (e.g.
                ``tqdm.update``); empty inputs are reported in the first call.

        Returns:
            One :class:`Translation` per text, in input order.
        """
        from seq2seq.search import search

        cfg = cfg or SearchConfig()
        if cfg.batch_size < 1:
            raise ValueError(f"search batch_size must be >= 1, got {cfg.batch_size}")
        texts = list(texts)
        results: list[Translation | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        for i, t in enumerate(texts):
            if not t.strip():
                results[i] = Translation(text="", score=0.0, tokens=[], n_best=[("", 0.0)],
                                         alignment=[] if cfg.return_alignment else None)
        if progress is not None and len(todo) < len(texts):
            progress(len(texts) - len(todo))
        ids = self.encode([texts[i] for i in todo]) if todo else []
        # longest first: the first batch shows memory problems at once
        order = sorted(range(len(todo)), key=lambda j: -len(ids[j]))
        for start in range(0, len(order), cfg.batch_size):
            chunk = order[start:start + cfg.batch_size]
            src, src_len = pad_sequences([ids[j] for j in chunk])  # (B, S), (B,)
            hyps = search(self.model, src.to(self.device), src_len.to(self.device), cfg)
            for j, nbest in zip(chunk, hyps, strict=True):
                idx = todo[j]
                results[idx] = self._to_translation(texts[idx], nbest, cfg)
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


__all__ = ["EOS_PIECE", "Translation", "Translator"]
