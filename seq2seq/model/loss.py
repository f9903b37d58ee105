"""Label-smoothed, padding-masked cross entropy, and the output layer fused with it.

The loss matches ``torch.nn.functional.cross_entropy(label_smoothing=eps, ignore_index=pad,
reduction="sum")``: the smoothing mass ``eps`` is spread uniformly over all ``V`` classes (the
target included), i.e. per token ``(1 - eps) * nll + eps * mean_v(-log p_v)``. Its gradient
with respect to the logits is ``softmax - (1 - eps) * onehot - eps / V``.

Two entry points share that formula (:func:`_chunk`):

* :func:`label_smoothed_cross_entropy` takes logits ``(N, V)``, as a user of ``torch.nn`` would.
* :func:`output_loss` takes the output layer's input, weight and bias. Training uses it (through
  ``Seq2Seq.forward(..., tgt_out=...)``): padding rows are dropped before the layer, and the
  layer and the loss run in chunks of rows whose logits stay in cache. Each chunk's logits become
  their gradient in place and are multiplied into the input, weight and bias gradients at once,
  so the ``(N, V)`` logits are never stored: the gradients wait in the autograd context and the
  backward only scales them by the incoming gradient. Under autocast the three GEMMs run in the
  autocast dtype and the softmax in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.rnn.workspace import buffer
from seq2seq.tokenizer import PAD_ID

CHUNK_ELEMENTS = 1 << 22  # logits per chunk of the fused loss (16 MiB in float32)


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


def _softmax_dtype(x: torch.Tensor) -> torch.dtype:
    """float32, or float64 for float64 inputs (gradcheck)."""
    return torch.promote_types(x.dtype, torch.float32)


def _chunk(z: torch.Tensor, target: torch.Tensor,
           epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and nll sums of float32 (or float64) logits ``z`` ``(n, V)`` for ``target`` ``(n,)``; ``z``
    becomes the loss's gradient with respect to it, in place.

    One exponential and no temporary of ``z``'s size: the row sums of ``exp(z - max)`` give the
    log-normaliser, and the same exponentials scaled by their inverse sums are the softmax.
    """
    V = z.shape[1]
    picked = z.gather(1, target[:, None]).squeeze(1)  # (n,)
    mean = z.mean(1) if epsilon > 0.0 else None  # (n,)
    top = z.amax(1, keepdim=True)  # (n, 1)
    total = z.sub_(top).exp_().sum(1, keepdim=True)  # (n, 1)
    lse = (top + total.log()).squeeze(1)  # (n,)
    nll = (lse - picked).sum()
    if mean is not None:
        smooth = (lse - mean).sum()  # sum of mean_v(-log p_v)
        loss = (1.0 - epsilon) * nll + epsilon * smooth
    else:
        loss = nll.clone()
    grad = z.mul_(total.reciprocal_())  # (n, V) softmax
    if epsilon > 0.0:
        grad.sub_(epsilon / V)
    grad.scatter_add_(1, target[:, None], grad.new_full((grad.shape[0], 1), -(1.0 - epsilon)))
    return loss, nll


class _SmoothedCE(torch.autograd.Function):
    """Loss of logits; the forward leaves the gradient, the backward scales it."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor,
                epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        grad = logits.to(_softmax_dtype(logits), copy=True)  # (N, V)
        loss, nll = _chunk(grad, target, epsilon)
        ctx.save_for_backward(grad)
        ctx.in_dtype = logits.dtype
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_loss).to(ctx.in_dtype), None, None


class _FusedOutputCE(torch.autograd.Function):
    """Loss of ``x @ weight.T + bias``, chunked; gradients made in the forward (module
    docstring). All three inputs share one dtype (the GEMMs' dtype)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                target: torch.Tensor, epsilon: float,
                grads: bool) -> tuple[torch.Tensor, torch.Tensor]:
        N, V = x.shape[0], weight.shape[0]
        rows, acc = max(16, CHUNK_ELEMENTS // V), _softmax_dtype(x)
        loss = torch.zeros((), dtype=acc, device=x.device)
        nll = torch.zeros((), dtype=acc, device=x.device)
        if grads:
            dx = torch.empty_like(x)  # (N, E)
            dw = torch.zeros(weight.shape, dtype=acc, device=x.device)  # (V, E)
            db = torch.zeros(V, dtype=acc, device=x.device)  # (V,)
        wt = weight.t()  # (E, V)
        # One logits buffer for all chunks and calls (a fresh one costs page faults, see
        # seq2seq.rnn.workspace), and one in the GEMMs' dtype when that is narrower.
        z_buf = buffer("loss.logits", (min(rows, N), V), loss)  # (rows, V) softmax dtype
        g_buf = z_buf if x.dtype == acc else buffer("loss.grad", tuple(z_buf.shape), x)
        for s in range(0, N, rows):
            xs, ts = x[s:s + rows], target[s:s + rows]  # (n, E), (n,)
            n = xs.shape[0]
            z, g = z_buf[:n], g_buf[:n]  # (n, V)
            torch.addmm(bias, xs, wt, out=g)
            if g is not z:
                z.copy_(g)
            chunk_loss, chunk_nll = _chunk(z, ts, epsilon)
            loss += chunk_loss
            nll += chunk_nll
            if grads:
                if g is not z:
                    g.copy_(z)  # (n, V) the logits' gradient, in the GEMMs' dtype
                torch.mm(g, weight, out=dx[s:s + rows])
                dw += torch.mm(g.t(), xs)
                db += z.sum(0)
        if grads:  # dw, db stay float32 until scaled (fp16 with a loss scale)
            ctx.save_for_backward(dx, dw, db)
            ctx.dtype = weight.dtype
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll: torch.Tensor):
        dx, dw, db = ctx.saved_tensors
        return (dx * grad_loss.to(dx.dtype), (dw * grad_loss).to(ctx.dtype),
                (db * grad_loss).to(ctx.dtype), None, None, None)


def _check_epsilon(epsilon: float) -> None:
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {epsilon}")


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
    _check_epsilon(epsilon)
    keep = (target.reshape(-1) != ignore_index).nonzero().squeeze(1)  # (n,)
    flat = logits.reshape(-1, logits.shape[-1])[keep]  # (n, V)
    loss, nll = _SmoothedCE.apply(flat, target.reshape(-1)[keep], float(epsilon))
    return LossOutput(loss=loss, nll=nll, ntokens=keep.numel())


def output_loss(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                target: torch.Tensor, epsilon: float = 0.1) -> LossOutput:
    """The loss of the output layer ``x @ weight.T + bias`` for real (non-padding) rows.

    Args:
        x: ``(n, E)`` the output layer's input at the real target positions.
        weight: ``(V, E)``; bias: ``(V,)``.
        target: ``(n,)`` long gold ids.
        epsilon: label smoothing in ``[0, 1)``.

    Returns:
        :class:`LossOutput` (summed over the ``n`` rows). Differentiable in ``x``, ``weight`` and
        ``bias`` once (the gradients are made in the forward when grad mode is on).
    """
    _check_epsilon(epsilon)
    device = x.device.type
    dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
             else weight.dtype)
    grads = torch.is_grad_enabled() and any(
        t.requires_grad for t in (x, weight, bias))
    with torch.autocast(device, enabled=False):
        loss, nll = _FusedOutputCE.apply(x.to(dtype), weight.to(dtype), bias.to(dtype), target,
                                         float(epsilon), grads)
    return LossOutput(loss=loss, nll=nll, ntokens=x.shape[0])


__all__ = ["LossOutput", "label_smoothed_cross_entropy", "output_loss"]
