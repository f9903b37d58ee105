"""The model description shown by :meth:`Translator.info` and the server's ``/info``: one
function for both, so they cannot disagree."""

from __future__ import annotations

from typing import Any

from seq2seq.checkpoint import tokenizers_from_bundle
from seq2seq.tokenizer import Tokenizer


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
        sources, the bundle it was fine-tuned from, the members of an ensemble, parameter count
        and the checkpoint path.
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
        "ensemble": meta.get("ensemble"),
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


def ensemble_meta(metas: list[dict[str, Any]], paths: list[str]) -> dict[str, Any]:
    """The first member's ``meta`` with ``"ensemble"``: every member's path, step and dev BLEU."""
    meta = dict(metas[0])
    meta["ensemble"] = [{"path": p, "step": int(m.get("step") or 0), "dev_bleu": m.get("dev_bleu")}
                        for p, m in zip(paths, metas, strict=True)]
    return meta


__all__ = ["describe", "describe_bundle", "ensemble_meta"]
