"""Attention decoder, with or without input feeding (Luong et al., 2015), over GRU, LSTM or Elman
RNN cells.

One decoder step, for previous token ``y`` and previous attentional vector ``a'``::

    h_1 = cell_1([emb(y); a'], h_1)          # input feeding: a' joins the first layer's input
    h_l = cell_l(dropout(h_{l-1}), h_l)      # further layers
    c, w = attention(h_L, memory)            # context (N, 2H), weights (N, S)
    a = tanh(W_c [c; h_L])                   # attentional vector (N, H), fed to the next step
    logits = W_o P dropout(a) + b_o          # P only when tying needs a size change

Dropout acts on the target embeddings, between decoder layers and on the attentional vectors
before the output layer (all steps at once, after the loop); the fed-back vector is undropped.

The teacher-forced pass (:meth:`AttentionDecoder.forward`) is written for throughput. With input
feeding each step needs the previous step's attention, so it is a loop: the target embeddings
and their share of the first layer's input projection are computed for all steps in one GEMM
before it, attention keys are projected once, and the output projection runs once over all
steps after it; inside the loop only the recurrent work remains, through the same
:meth:`AttentionDecoder._step` as the incremental :meth:`AttentionDecoder.step`. Without input
feeding (``model.input_feeding=false``) the RNN stack does not depend on attention, so each
layer runs over all positions in one call of the fused core (:mod:`seq2seq.rnn`, its
hand-written BPTT) and attention, the combine layer and the output layer run batched over all
positions: no Python loop over positions in this module. Both compute what the steps compute.
Training calls :meth:`AttentionDecoder.loss`: the output layer then runs only at the real
(non-padding) target positions, fused with the loss (:mod:`seq2seq.model.loss`).
The state that search reorders lives in :mod:`seq2seq.model.decoder_state`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.model.attention import DeferredContext, build_attention, mask_bias
from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.encoder import EncoderOut
from seq2seq.model.loss import LossOutput, output_loss
from seq2seq.rnn import Dropout, Ragged, gru_layer, lstm_layer, rnn_layer
from seq2seq.rnn.activation import tanh
from seq2seq.rnn.compiled import gru_cell_math, lstm_cell_math
from seq2seq.rnn.elman import rnn_cell_math

__all__ = ["AttentionDecoder", "DecoderState"]


class AttentionDecoder(nn.Module):
    """Stacked GRU/LSTM/Elman decoder with attention, input feeding and optional tied embeddings.

    Args:
        cfg: model configuration.
        vocab_size: target vocabulary size ``V``.
        memory_size: size of one encoder output (``2H``).
        pad_id: padding token id.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, memory_size: int,
                 pad_id: int = 0) -> None:
        super().__init__()
        H, E = cfg.hidden_size, cfg.embed_dim
        self.kind = cfg.rnn
        self.hidden_size = H
        self.embed_dim = E
        self.num_layers = cfg.decoder_layers
        self.input_feeding = cfg.input_feeding
        self.bridge = cfg.bridge
        self.embedding = nn.Embedding(vocab_size, E, padding_idx=pad_id)
        self.dropout = Dropout(cfg.dropout)
        self.nonlinearity = cfg.rnn.nonlinearity  # Elman cells only
        if self.nonlinearity:
            def cell_cls(i: int, h: int) -> nn.Module:
                return nn.RNNCell(i, h, nonlinearity=self.nonlinearity)
        else:
            cell_cls = nn.GRUCell if cfg.rnn == "gru" else nn.LSTMCell
        in0 = E + H if cfg.input_feeding else E
        self.cells = nn.ModuleList(
            [cell_cls(in0 if i == 0 else H, H) for i in range(cfg.decoder_layers)])
        self.attention = build_attention(cfg.attention, H, memory_size)
        self.combine = nn.Linear(memory_size + H, H, bias=False)
        if cfg.bridge:
            n_states = 2 if cfg.rnn == "lstm" else 1
            self.bridge_layers = nn.ModuleList(
                [nn.Linear(memory_size, H) for _ in range(cfg.decoder_layers * n_states)])
        else:
            self.bridge_layers = None
        out_in = H
        self.out_proj = None
        if cfg.tie_embeddings and H != E:
            self.out_proj = nn.Linear(H, E, bias=False)
            out_in = E
        self.output = nn.Linear(out_in, vocab_size)
        if cfg.tie_embeddings:
            self.output.weight = self.embedding.weight

    # ------------------------------------------------------------------ state
    def init_state(self, enc: EncoderOut) -> DecoderState:
        """Initial state from the encoder (bridge) or zeros.

        Decoder layer ``l`` of ``L_d`` is bridged from encoder layer ``L_e - L_d + l`` (top
        layers aligned; clamped to 0 when the decoder is deeper), its forward and backward final
        states concatenated and mapped by ``tanh(Linear(2H -> H))``.

        Args:
            enc: encoder output for ``B`` rows.

        Returns:
            :class:`DecoderState` for ``B`` rows.
        """
        memory = enc.memory
        B = memory.shape[0]
        H, L = self.hidden_size, self.num_layers
        if self.bridge_layers is not None:
            Le = enc.hidden.shape[0] // 2
            idx = [max(0, Le - L + i) for i in range(L)]
            sources = [enc.hidden] + ([enc.cell] if self.kind == "lstm" else [])
            bridged = []
            for k, src in enumerate(sources):
                per_layer = src.reshape(Le, 2, B, H)  # (Le, 2, B, H)
                states = []
                for i in range(L):
                    fb = torch.cat([per_layer[idx[i], 0], per_layer[idx[i], 1]], dim=1)  # (B, 2H)
                    states.append(tanh(self.bridge_layers[k * L + i](fb)))  # (B, H)
                bridged.append(torch.stack(states))  # (L, B, H)
            hidden = bridged[0]
            cell = bridged[1] if self.kind == "lstm" else None
        else:
            hidden = memory.new_zeros(L, B, H)  # (L, B, H)
            cell = memory.new_zeros(L, B, H) if self.kind == "lstm" else None
        return DecoderState(
            hidden=hidden,
            cell=cell,
            feed=memory.new_zeros(B, H),  # (B, H)
            src_memory=memory,
            src_keys=self.attention.precompute_keys(memory),  # (B, S, K)
            src_bias=mask_bias(enc.mask, memory.dtype),  # (B, S)
            src_mask=enc.mask,
            # inference only (attention then skips padding); in training it would cost a sync
            src_lens=None if torch.is_grad_enabled() else tuple(enc.mask.sum(1).tolist()),
        )

    # ------------------------------------------------------------------ core step
    def _embed_proj(self, emb: torch.Tensor) -> torch.Tensor:
        """Embedding share of the first layer's input projection (incl. ``b_ih``).

        Args:
            emb: ``(..., E)`` target embeddings.

        Returns:
            ``(..., G)`` with ``G = 3H`` (GRU), ``4H`` (LSTM) or ``H`` (Elman).
        """
        cell = self.cells[0]
        return F.linear(emb, cell.weight_ih[:, : self.embed_dim], cell.bias_ih)

    def _weights(self) -> list[tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor,
                                      torch.Tensor]]:
        """Per-layer recurrent weights, sliced and transposed once per pass.

        Slicing a parameter inside the time loop would make autograd build (and zero-fill) a
        full-size gradient per step; doing it once keeps that to one slice per pass.

        Returns:
            Per layer ``(w_in (I, G) | None, b_in (G,) | None, w_hh (H, G), b_hh (G,))``; for
            layer 0 ``w_in`` is the input-feeding share (None without input feeding) and
            ``b_in`` is None (it is folded into :meth:`_embed_proj`).
        """
        out = []
        for i, cell in enumerate(self.cells):
            if i == 0:
                w_in = cell.weight_ih[:, self.embed_dim :].t() if self.input_feeding else None
                out.append((w_in, None, cell.weight_hh.t(), cell.bias_hh))
            else:
                out.append((cell.weight_ih.t(), cell.bias_ih, cell.weight_hh.t(), cell.bias_hh))
        return out

    def _step(
        self,
        weights: list,
        x_proj: torch.Tensor,
        feed: torch.Tensor,
        hs: list[torch.Tensor],
        cs: list[torch.Tensor] | None,
        keys: torch.Tensor,
        memory: torch.Tensor,
        bias: torch.Tensor,
        context_fn: DeferredContext | None = None,
        group: int = 1,
        lengths: tuple[int, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor] | None]:
        """One recurrent step given the precomputed embedding projection.

        Args:
            weights: output of :meth:`_weights`.
            x_proj: ``(N, G)`` from :meth:`_embed_proj`.
            feed: ``(N, H)`` previous attentional vector.
            hs: per layer ``(N, H)`` hidden states.
            cs: per layer ``(N, H)`` LSTM cell states, or None.
            keys: ``(B, S, K)``; memory: ``(B, S, 2H)``; bias: ``(B, S)`` per source row,
                ``B = N / group``.
            context_fn: optional deferred-gradient context (teacher-forced training pass).
            group: consecutive rows per source row (see :class:`DecoderState`).
            lengths: optional true source length per source row (inference).

        Returns:
            ``(attentional vector (N, H), attention weights (N, S), new hs, new cs)``.
        """
        new_h: list[torch.Tensor] = []
        new_c: list[torch.Tensor] | None = [] if cs is not None else None
        x = x_proj
        for i, (w_in, b_in, w_hh, b_hh) in enumerate(weights):
            if i == 0:
                gi = torch.addmm(x_proj, feed, w_in) if w_in is not None else x_proj  # (N, G)
            else:
                gi = torch.addmm(b_in, self.dropout(x), w_in)  # (N, G)
            gh = torch.addmm(b_hh, hs[i], w_hh)  # (N, G)
            if self.nonlinearity:
                x = rnn_cell_math(gi + gh, self.nonlinearity)  # (N, H)
            elif cs is None:
                x = gru_cell_math(gi, gh, hs[i])[2]  # (N, H)
            else:
                x, c = lstm_cell_math(gi + gh, cs[i])  # (N, H)
                new_c.append(c)
            new_h.append(x)
        context, attn = self.attention(x, keys, memory, bias, context_fn, group,
                                       lengths)  # (N, 2H), (N, S)
        att = tanh(self.combine(torch.cat([context, x], dim=1)))  # (N, H)
        return att, attn, new_h, new_c

    def _logits(self, att: torch.Tensor) -> torch.Tensor:
        """Output layer on attentional vectors.

        Args:
            att: ``(..., H)`` attentional vectors.

        Returns:
            ``(..., V)`` logits.
        """
        x = self.dropout(att)
        if self.out_proj is not None:
            x = self.out_proj(x)  # (..., E)
        return self.output(x)  # (..., V)

    # ------------------------------------------------------------------ public passes
    def forward(self, tgt_in: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Teacher-forced pass over all target positions.

        Args:
            tgt_in: ``(B, T)`` long decoder inputs (BOS + target, padded).
            state: initial state for the ``B`` rows (:meth:`init_state`).

        Returns:
            ``(B, T, V)`` logits.
        """
        return self._logits(self.features(tgt_in, state))  # (B, T, V)

    def loss(self, tgt_in: torch.Tensor, tgt_out: torch.Tensor, state: DecoderState,
             epsilon: float) -> LossOutput:
        """Teacher-forced pass and label-smoothed loss: the output layer runs only at the real
        (non-padding) positions of ``tgt_out``, fused with the loss (:mod:`seq2seq.model.loss`).

        Args:
            tgt_in, state: as for :meth:`forward`.
            tgt_out: ``(B, T)`` long gold ids, PAD at padding.
            epsilon: label smoothing.

        Returns:
            :class:`LossOutput` summed over the real positions.
        """
        att = self.features(tgt_in, state)  # (B, T, H)
        keep = (tgt_out.reshape(-1) != self.embedding.padding_idx).nonzero().squeeze(1)  # (n,)
        x = self.dropout(att.reshape(-1, att.shape[-1])[keep])  # (n, H)
        if self.out_proj is not None:
            x = self.out_proj(x)  # (n, E)
        return output_loss(x, self.output.weight, self.output.bias, tgt_out.reshape(-1)[keep],
                           epsilon)

    def features(self, tgt_in: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """The attentional vectors of a teacher-forced pass (the output layer's input before
        dropout).

        Args:
            tgt_in: ``(B, T)`` long decoder inputs; state: initial state for the ``B`` rows.

        Returns:
            ``(B, T, H)``.
        """
        if not self.input_feeding:
            return self._forward_parallel(tgt_in, state)
        emb = self.dropout(self.embedding(tgt_in.t()))  # (T, B, E)
        x_proj = self._embed_proj(emb)  # (T, B, G)
        hs = list(state.hidden.unbind(0))
        cs = list(state.cell.unbind(0)) if state.cell is not None else None
        feed = state.feed
        keys, memory, bias = state.keys, state.memory, state.bias
        weights = self._weights()
        context_fn = (DeferredContext(memory)
                      if torch.is_grad_enabled() and memory.requires_grad else None)
        outs = []
        for x_t in x_proj.unbind(0):  # one backward node for all steps, not T zero-filled slices
            feed, _, hs, cs = self._step(weights, x_t, feed, hs, cs, keys, memory, bias,
                                         context_fn)
            outs.append(feed)
        return torch.stack(outs, dim=1)  # (B, T, H)

    def _forward_parallel(self, tgt_in: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Teacher-forced pass without input feeding: no per-position Python loop here.

        Without the fed-back attentional vector the RNN stack does not depend on attention,
        so each layer runs over all positions in one call of the fused core (its hand-written
        BPTT); attention, the combine layer and the output layer then run batched over all
        ``B * T`` positions (one query group of ``T`` rows per source row). Same function as
        :meth:`step` applied position by position.

        Args:
            tgt_in: ``(B, T)`` long decoder inputs.
            state: initial state for the ``B`` rows.

        Returns:
            ``(B, T, H)`` attentional vectors.
        """
        B, T = tgt_in.shape
        x = self.dropout(self.embedding(tgt_in.t()))  # (T, B, E)
        device = x.device.type
        dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
                 else self.cells[0].weight_hh.dtype)
        ragged = Ragged(None, T, B, x.device)  # every row runs T steps; the loss masks padding
        x = x.to(dtype)
        with torch.autocast(device, enabled=False):  # the core casts once per layer call
            for i, cell in enumerate(self.cells):
                if i > 0:
                    x = self.dropout(x)  # (T, B, H)
                w = [cell.weight_ih.to(dtype), cell.weight_hh.to(dtype),
                     cell.bias_ih.to(dtype), cell.bias_hh.to(dtype)]
                h0 = state.hidden[i : i + 1].to(dtype)  # (1, B, H)
                if self.nonlinearity:
                    x = rnn_layer(x, h0, ragged, w, nonlinearity=self.nonlinearity)[0]
                elif state.cell is None:
                    x = gru_layer(x, h0, ragged, w)[0]  # (T, B, H)
                else:
                    c0 = state.cell[i : i + 1].to(dtype)  # (1, B, H)
                    x = lstm_layer(x, h0, c0, ragged, w)[0]  # (T, B, H)
        top = x.transpose(0, 1).reshape(B * T, self.hidden_size)  # (B*T, H)
        context, _ = self.attention(top, state.keys, state.memory, state.bias,
                                    group=T)  # (B*T, 2H), (B*T, S)
        att = tanh(self.combine(torch.cat([context, top], dim=1)))  # (B*T, H)
        return att.view(B, T, -1)  # (B, T, H)

    def step(self, prev_tokens: torch.Tensor,
             state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One incremental step.

        Args:
            prev_tokens: ``(N,)`` long previous tokens (BOS at the first step).
            state: current state for ``N`` rows.

        Returns:
            ``(log_probs (N, V), new state)``; ``new_state.attn`` is ``(N, S)``.
        """
        x_proj = self._embed_proj(self.dropout(self.embedding(prev_tokens)))  # (N, G)
        hs = list(state.hidden.unbind(0))
        cs = list(state.cell.unbind(0)) if state.cell is not None else None
        att, weights, hs, cs = self._step(
            self._weights(), x_proj, state.feed, hs, cs, state.src_keys, state.src_memory,
            state.src_bias, group=state.group, lengths=state.src_lens)
        logits = self._logits(att).float()  # (N, V) fp32 even under AMP
        # in place: a fresh (N, V) tensor per step is page-faulted in when it is large
        logp = torch.log_softmax(logits, dim=-1, out=logits) if not logits.requires_grad \
            else torch.log_softmax(logits, dim=-1)  # (N, V)
        new_state = DecoderState(
            hidden=torch.stack(hs),  # (L, N, H)
            cell=torch.stack(cs) if cs is not None else None,  # (L, N, H)
            feed=att,
            src_memory=state.src_memory,
            src_keys=state.src_keys,
            src_bias=state.src_bias,
            src_mask=state.src_mask,
            attn=weights,
            group=state.group,
            src_lens=state.src_lens,
        )
        return logp, new_state
