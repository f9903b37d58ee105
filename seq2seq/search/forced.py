"""Forced decoding: the model's log-probability of given translations (scoring).

Every sentence's target is fed token by token through the decoder protocol, exactly as search
feeds its hypotheses (one ``step`` per time step for all sentences at once, finished sentences
dropped, longest source first), and the log-prob of each given token and of the final EOS is
read off. No search masks apply (minimum length, n-gram blocking): the result is the model's own
probability. Scoring the output of beam search therefore gives back its hypothesis' ``log_prob``
and ``score`` (up to the floating-point noise of batched kernels). Works for any model with the
protocol, ensembles included.
"""

from __future__ import annotations

import torch

from seq2seq.config import SearchConfig
from seq2seq.search.scoring import DecoderModel, Hypothesis, eval_mode, longest_first, normalise
from seq2seq.tokenizer import BOS_ID, EOS_ID


def forced_decode(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                  targets: list[list[int]], cfg: SearchConfig,
                  return_alignment: bool = False) -> list[Hypothesis]:
    """Score ``targets`` (one per source row) under ``model``.

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long PAD-padded source ids; src_len: ``(B,)`` long true lengths.
        targets: per sentence its target ids (no BOS/EOS).
        cfg: ``length_penalty`` and ``alpha`` for the normalised score.
        return_alignment: also return the attention rows.

    Returns:
        Per sentence (input order) a :class:`Hypothesis` with ``tokens`` = the target,
        ``log_prob`` (EOS included), the normalised ``score`` and ``token_log_probs``.
    """
    B, S = src.shape
    if len(targets) != B:
        raise ValueError(f"{len(targets)} targets for {B} sources")
    dev = src.device
    lens = torch.tensor([len(t) for t in targets], dtype=torch.long, device=dev)  # (B,)
    T = int(lens.max()) + 1 if B else 1
    tgt = torch.full((B, T), EOS_ID, dtype=torch.long, device=dev)  # (B, T) target + EOS
    for i, t in enumerate(targets):
        if t:
            tgt[i, :len(t)] = torch.tensor(t, dtype=torch.long)
    tok_lp = torch.zeros(B, T, device=dev)  # (B, T)
    cum = torch.zeros(B, device=dev)  # (B,) summed step by step, in the order search sums
    attn = torch.zeros(B, T, S, device=dev) if return_alignment else None  # (B, T, S)
    with eval_mode(model):
        sent = longest_first(src_len.to(dev))  # (b,) original ids of active rows
        state = model.init_state(model.encode(src[sent], src_len.to(dev)[sent]))
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (b,)
        for t in range(T):
            logp, state = model.step(prev, state)  # (b, V)
            tok = tgt[sent, t]  # (b,)
            lp = logp.float().gather(1, tok[:, None]).squeeze(1)  # (b,)
            tok_lp[sent, t] = lp
            cum[sent] = cum[sent] + lp
            if attn is not None:
                attn[sent, t] = state.attn.float()
            ended = lens[sent] == t  # (b,) this step was their EOS
            if bool(ended.any()):
                keep = (~ended).nonzero().squeeze(1)  # (b',)
                if keep.numel() == 0:
                    break
                state = model.reorder_state(state, keep)
                sent, tok = sent[keep], tok[keep]
            prev = tok
    log_prob = cum
    score = normalise(log_prob, lens + 1, cfg)  # (B,)
    out = []
    for i in range(B):
        n = len(targets[i])
        alignment = attn[i, :n + 1, :int(src_len[i])].clone() if attn is not None else None
        out.append(Hypothesis(list(targets[i]), float(score[i]), float(log_prob[i]), alignment,
                              tok_lp[i, :n + 1].tolist()))
    return out


__all__ = ["forced_decode"]
