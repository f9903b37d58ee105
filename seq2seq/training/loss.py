"""Label-smoothed, padding-masked cross entropy.

Matches ``torch.nn.functional.cross_entropy(label_smoothing=eps, ignore_index=pad,
reduction="sum")``: the smoothing mass ``eps`` is spread uniformly over all ``V`` classes
(the target included), i.e. per token ``(1 - eps) * nll + eps * mean_v(-log p_v)``. Only the
non-padding positions are pushed through ``log_softmax``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.tokenizer import PAD_ID


@dataclass
class LossOutput:
    """Summed losses over a batch (divide by ``ntokens`` for per-token values).

    Attributes:
        loss: scalar tensor, label-smoothed loss summed over real tokens (differentiable).
        nll: scalar tensor, plain negative log-likelihood summed over real tokens (detached).
        ntokens: number of non-padding target tokens.
    """

    loss: torch.Tensor
    nll: torch.Tensor
    ntokens: int


class _SmoothedCE(torch.autograd.Function):
    """Fused forward/backward: ``grad = w * (softmax - (1 - eps) * onehot - eps / V)``.

    Autograd's version would materialise a zero-filled scatter for the gather, an expanded
    gradient for the smoothing sum, a ``log_softmax`` backward and their sum, each a full
    ``(N, V)`` pass; this backward is three in-place passes over one buffer.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor,
                epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        V = logits.shape[1]
        logp = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
        nll_rows = -logp.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
        nll = (nll_rows * keep).sum()
        if epsilon > 0.0:
            smooth = -(logp.sum(1) * keep).sum() / V
            loss = (1.0 - epsilon) * nll + epsilon * smooth
        else:
            loss = nll.clone()
        ctx.save_for_backward(logp, target, keep)
        ctx.epsilon = epsilon
        ctx.in_dtype = logits.dtype
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        logp, target, keep = ctx.saved_tensors
        eps, V = ctx.epsilon, logp.shape[1]
        grad = torch.exp(logp)  # (N, V) softmax
        if eps > 0.0:
            grad.sub_(eps / V)
        grad.scatter_add_(1, target.unsqueeze(1),
                          grad.new_full((grad.shape[0], 1), -(1.0 - eps)))
        grad.mul_((keep * grad_loss).unsqueeze(1))
        return grad.to(ctx.in_dtype), None, None, None


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    epsilon: float = 0.1,
    ignore_index: int = PAD_ID,
) -> LossOutput:
    """Label-smoothed cross entropy summed over non-padding positions.

    Args:
        logits: ``(B, T, V)`` or ``(N, V)`` raw scores.
        target: ``(B, T)`` or ``(N,)`` long gold ids; ``ignore_index`` marks padding.
        epsilon: label smoothing in ``[0, 1)``.
        ignore_index: padding id excluded from the loss and the token count.

    Returns:
        :class:`LossOutput` with summed ``loss`` and ``nll`` and ``ntokens``.
    """
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {epsilon}")
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)  # (B*T, V)
    tgt = target.reshape(-1)  # (B*T,)
    keep = tgt != ignore_index  # (B*T,)
    ntokens = int(keep.sum())
    loss, nll = _SmoothedCE.apply(flat, tgt, keep.to(torch.float32), float(epsilon))
    return LossOutput(loss=loss, nll=nll, ntokens=ntokens)
