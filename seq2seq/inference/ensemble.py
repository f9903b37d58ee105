"""Ensembles: several models behind the one decoder protocol, their log-probs averaged per step.

:class:`Ensemble` implements ``encode``/``init_state``/``step``/``reorder_state`` by calling
each member and, at every step, averaging the members' log-probabilities (the arithmetic mean of
log-probs, as OpenNMT-py does; a geometric mean of the distributions). Search does not know it
is searching an ensemble, so everything that works for one model (beam, greedy, sampling,
prefixes, forced scoring, batch invariance) works for several. The members may differ in
architecture (GRU and LSTM, other sizes), but must share the source and target sentencepiece
models: :func:`check_same_vocabulary` names the first difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seq2seq.tokenizer import Tokenizer


@dataclass
class EnsembleState:
    """The members' decoder states and the averaged attention of the last step.

    Attributes:
        states: one state per member.
        attn: ``(N, S)`` mean of the members' attention weights (None before the first step).
    """

    states: list[Any]
    attn: torch.Tensor | None = None


class Ensemble(nn.Module):
    """Several models with one decoder protocol (see the module docstring).

    Args:
        models: the members (each with the decoder protocol and a ``cfg``).

    Attributes:
        cfg: the first member's model config (what :meth:`Translator.info` describes).
    """

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.cfg = models[0].cfg

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> list[Any]:
        """Every member's encoder output for ``src (B, S)``."""
        return [m.encode(src, src_len) for m in self.members]

    def init_state(self, encs: list[Any]) -> EnsembleState:
        """Every member's initial state."""
        return EnsembleState([m.init_state(e) for m, e in zip(self.members, encs, strict=True)])

    def step(self, prev_tokens: torch.Tensor,
             state: EnsembleState) -> tuple[torch.Tensor, EnsembleState]:
        """One step of every member; ``(N, V)`` mean log-probs and the mean attention."""
        outs = [m.step(prev_tokens, s) for m, s in zip(self.members, state.states, strict=True)]
        logp = torch.stack([lp.float() for lp, _ in outs]).mean(0)  # (N, V)
        attns = [s.attn for _, s in outs if s.attn is not None]
        attn = torch.stack([a.float() for a in attns]).mean(0) if attns else None  # (N, S)
        return logp, EnsembleState([s for _, s in outs], attn)

    def reorder_state(self, state: EnsembleState, index: torch.Tensor) -> EnsembleState:
        """Select/reorder/repeat rows of every member's state."""
        return EnsembleState([m.reorder_state(s, index)
                              for m, s in zip(self.members, state.states, strict=True)],
                             None if state.attn is None else state.attn[index])


def check_same_vocabulary(tokenizers: list[tuple[Tokenizer, Tokenizer]],
                          names: list[str]) -> None:
    """Raise ``ValueError`` unless all ``(src, tgt)`` tokenizer pairs are identical.

    Args:
        tokenizers: per member its source and target tokenizer.
        names: per member a name for messages (its checkpoint path).
    """
    (src0, tgt0), first = tokenizers[0], names[0]
    for (src, tgt), name in zip(tokenizers[1:], names[1:], strict=True):
        for side, a, b in (("source", src0, src), ("target", tgt0, tgt)):
            if a != b:
                raise ValueError(
                    f"cannot ensemble {name} with {first}: their {side} sentencepiece models "
                    f"differ ({b.vocab_size} vs {a.vocab_size} pieces"
                    f"{'' if b.vocab_size != a.vocab_size else ', same size but other pieces'})")


__all__ = ["Ensemble", "EnsembleState", "check_same_vocabulary"]
