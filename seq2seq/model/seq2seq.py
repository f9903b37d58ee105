"""Seq2Seq: bidirectional RNN encoder + attention decoder, with the decoder protocol.

Training uses :meth:`Seq2Seq.forward` (teacher forcing: raw logits, or the loss when given the
gold outputs). Search talks to the model
only through the fairseq-like decoder protocol::

    enc = model.encode(src, src_len)               # EncoderOut
    state = model.init_state(enc)                  # DecoderState for B rows
    logp, state = model.step(prev_tokens, state)   # (N, V) log-probs; state.attn (N, S)
    state = model.reorder_state(state, index)      # select / reorder / repeat rows
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seq2seq.checkpoint import model_config_from_bundle
from seq2seq.config import ModelConfig
from seq2seq.model.decoder import AttentionDecoder, DecoderState
from seq2seq.model.encoder import Encoder, EncoderOut
from seq2seq.model.loss import LossOutput
from seq2seq.tokenizer import PAD_ID

__all__ = ["DecoderState", "EncoderOut", "Seq2Seq", "build_model"]


class Seq2Seq(nn.Module):
    """Attention encoder-decoder configured by :class:`ModelConfig`.

    Args:
        cfg: architecture.
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size ``V``.
        pad_id: padding id shared by both sides (0).
    """

    def __init__(self, cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int,
                 pad_id: int = PAD_ID) -> None:
        super().__init__()
        self.cfg = cfg
        self.pad_id = pad_id
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.encoder = Encoder(cfg, src_vocab_size, pad_id)
        self.decoder = AttentionDecoder(cfg, tgt_vocab_size, self.encoder.output_size, pad_id)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor,
                tgt_out: torch.Tensor | None = None,
                label_smoothing: float = 0.0) -> torch.Tensor | LossOutput:
        """Teacher-forced pass: logits, or with ``tgt_out`` the loss (what training calls; the
        output layer then runs only at real positions, fused with the loss).

        Args:
            src: ``(B, S)`` long source ids (PAD-padded).
            src_len: ``(B,)`` long source lengths.
            tgt_in: ``(B, T)`` long decoder inputs (BOS + target, PAD-padded).
            tgt_out: ``(B, T)`` long gold outputs (target + EOS, PAD-padded), or None.
            label_smoothing: label smoothing of the loss in ``[0, 1)``.

        Returns:
            ``(B, T, V)`` raw logits without ``tgt_out``; else :class:`LossOutput` (label-smoothed
            ``loss`` and plain ``nll`` summed over the real target tokens).
        """
        state = self.init_state(self.encode(src, src_len))
        if tgt_out is None:
            return self.decoder(tgt_in, state)  # (B, T, V)
        return self.decoder.loss(tgt_in, tgt_out, state, label_smoothing)

    # ------------------------------------------------------------------ decoder protocol
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> EncoderOut:
        """Encode a source batch.

        Args:
            src: ``(B, S)`` long; src_len: ``(B,)`` long.

        Returns:
            :class:`EncoderOut` (memory ``(B, S, 2H)``, mask ``(B, S)``, final states).
        """
        return self.encoder(src, src_len)

    def init_state(self, enc: EncoderOut) -> DecoderState:
        """Initial decoder state for the encoded rows.

        Args:
            enc: output of :meth:`encode`.

        Returns:
            :class:`DecoderState` for ``B`` rows.
        """
        return self.decoder.init_state(enc)

    def step(self, prev_tokens: torch.Tensor,
             state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """Advance every row by one token.

        Args:
            prev_tokens: ``(N,)`` long previous tokens.
            state: state for ``N`` rows.

        Returns:
            ``(log_probs (N, V), new state)`` with ``new_state.attn`` ``(N, S)``.
        """
        return self.decoder.step(prev_tokens, state)

    def reorder_state(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Select, reorder or repeat state rows (see :meth:`DecoderState.index_select`).

        Per-source tensors (encoder memory, keys, mask) are shared by runs of rows with the same
        source row, so beam expansion and reordering do not copy them.

        Args:
            state: state for ``N`` rows.
            index: ``(N',)`` long row indices.

        Returns:
            State for ``N'`` rows.
        """
        return state.index_select(index)


def build_model(bundle: dict[str, Any], device: str | torch.device = "cpu") -> torch.nn.Module:
    """Construct the bundle's :class:`Seq2Seq` and load its weights (eval mode).

    Args:
        bundle: a loaded bundle.
        device: where to put the model.

    Returns:
        The model, in eval mode.

    Raises:
        ValueError: the weights do not match the stored architecture.
    """
    cfg = model_config_from_bundle(bundle)
    model = Seq2Seq(cfg, int(bundle["vocab"]["src_size"]), int(bundle["vocab"]["tgt_size"]))
    try:
        model.load_state_dict(bundle["model"])
    except RuntimeError as err:
        raise ValueError(f"bundle weights do not match its model_config: {err}") from err
    return model.to(device).eval()
