"""One fused Elman RNN layer (one or both directions) as a hand-written autograd Function.

PyTorch's ``nn.RNN`` cell, with ``act`` = ``tanh`` or ``relu``::

    h' = act(W_ih x + b_ih + W_hh h + b_hh)

Forward: one GEMM per direction for the input projection of all steps (both biases folded in),
then per step one batched ``baddbmm`` for both directions that writes ``W_hh h + pre`` straight
into the next state and one in-place activation. Backward: the activation derivatives of all
steps at once before the time loop (``1 - h'^2`` for tanh, ``h' > 0`` for relu, from the saved
outputs); per step one multiply and one GEMM for both directions; the weight and input
gradients as one large GEMM each over all steps. A step's pointwise work is a single op, so
there is no compiled path (``torch.compile`` would fuse nothing). Ragged lengths: see
:mod:`seq2seq.rnn.ragged`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .activation import tanh, tanh_
from .ragged import Ragged
from .workspace import backward_possible as _backward_possible
from .workspace import buffer

NONLINEARITIES = ("tanh", "relu")


class RNNLayerFunction(torch.autograd.Function):
    """Fused Elman RNN layer over ``D`` directions (1 or 2) for a time-major ragged batch."""

    @staticmethod
    def forward(  # noqa: D417
        ctx, x: Tensor, h0: Tensor, ragged: Ragged, nonlinearity: str,
        backward_possible: bool, *weights: Tensor
    ):
        """Run the layer.

        Args:
            x: ``(T, B, I)`` input.
            h0: ``(D, B, H)`` initial hidden state.
            ragged: lengths bookkeeping for the batch.
            nonlinearity: ``"tanh"`` or ``"relu"``.
            backward_possible: False when no backward can follow: then buffers are scratch.
            *weights: per direction ``w_ih (H, I), w_hh (H, H), b_ih (H,), b_hh (H,)``.

        Returns:
            ``y (T, B, D*H)`` (zero on padded steps) and ``h_n (D, B, H)``.
        """
        nd = len(weights) // 4
        steps, batch = x.shape[:2]
        hid = h0.shape[-1]
        w_ih, w_hh = weights[0::4], weights[1::4]
        biases = [weights[4 * d + 2] + weights[4 * d + 3] for d in range(nd)]  # each (H,)
        infer = not backward_possible
        pre = buffer("rnn.pre", (nd, steps, batch, hid), x, infer)  # (D, T, B, H)
        xs, pre = ragged.project_inputs(x, w_ih, biases, out=pre)
        # states time-major, so each step's baddbmm writes one contiguous (D, B, H) block
        hs_tm = buffer("rnn.hs", (steps + 1, nd, batch, hid), x, infer)  # (T+1, D, B, H)
        hs_tm[0] = h0
        w_hh_t = torch.stack(w_hh).transpose(1, 2).contiguous()  # (D, H, H), GEMM-friendly
        act_ = tanh_ if nonlinearity == "tanh" else torch.Tensor.relu_
        pre_all, h_all = pre.unbind(1), hs_tm.unbind(0)  # per-step (D, B, .) views
        for t in range(steps):
            torch.baddbmm(pre_all[t], h_all[t], w_hh_t, out=h_all[t + 1])  # both directions
            act_(h_all[t + 1])
        hs = hs_tm.transpose(0, 1)  # (D, T+1, B, H) view
        y = ragged.outputs(hs)  # (T, B, D*H)
        h_n = ragged.final(hs)  # (D, B, H)
        ctx.ragged = ragged
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(*xs, hs_tm, *weights)
        ctx.nd = nd
        return y, h_n

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_hn: Tensor | None):
        """Backward through time in reverse; weight gradients as one GEMM over all steps."""
        nd = ctx.nd
        saved = ctx.saved_tensors
        xs, hs_tm, weights = saved[:nd], saved[nd], saved[nd + 1:]
        w_ih, w_hh = weights[0::4], weights[1::4]
        ragged: Ragged = ctx.ragged
        steps, batch, hid = hs_tm.shape[0] - 1, hs_tm.shape[2], hs_tm.shape[3]
        isize = xs[0].shape[-1]
        rows = steps * batch
        # grad of h_t (aligned time, time-major); it becomes the pre-activation grad in place
        da_tm = buffer("rnn.da", (steps, nd, batch, hid), hs_tm)  # (T, D, B, H)
        ragged.state_grads(grad_y, grad_hn, hs_tm, nd, hid, out=da_tm.transpose(0, 1))
        out = hs_tm[1:]  # (T, D, B, H) the activations
        if ctx.nonlinearity == "tanh":
            deriv = buffer("rnn.deriv", (steps, nd, batch, hid), hs_tm)  # (T, D, B, H)
            torch.addcmul(hs_tm.new_ones(()), out, out, value=-1.0, out=deriv)  # 1 - h'^2
        else:
            deriv = out > 0  # (T, D, B, H) bool: relu passes the gradient where h' > 0
        w_hh_s = torch.stack(w_hh)  # (D, H, H)
        dh0 = hs_tm.new_empty(nd, batch, hid)  # (D, B, H)
        da_all, k_all = da_tm.unbind(0), deriv.unbind(0)  # per-step (D, B, H), contiguous
        for t in range(steps - 1, -1, -1):
            da_all[t].mul_(k_all[t])  # dL/d(pre-activation) of step t
            if t > 0:
                da_all[t - 1].baddbmm_(da_all[t], w_hh_s)  # both directions in one GEMM
            else:
                torch.bmm(da_all[0], w_hh_s, out=dh0)

        grads: list[Tensor | None] = []
        da = da_tm.transpose(0, 1)  # (D, T, B, H) view
        ga2 = [da[d].reshape(rows, hid) for d in range(nd)]  # each (T*B, H)
        for d in range(nd):
            gw_ih = ga2[d].t().mm(xs[d].view(rows, isize))  # (H, I)
            gw_hh = ga2[d].t().mm(hs_tm[:steps, d].reshape(rows, hid))  # (H, H)
            gb = ga2[d].sum(0)  # (H,): both biases get the same gradient
            grads += [gw_ih, gw_hh, gb, gb.clone()]
        dx = (ragged.input_grad(ga2, w_ih, buffer("rnn.dx", (rows, isize), hs_tm))
              if ctx.needs_input_grad[0] else None)  # (T, B, I)
        return dx, dh0, None, None, None, *grads


def rnn_layer(
    x: Tensor,
    h0: Tensor,
    ragged: Ragged,
    weights: list[Tensor],
    *,
    nonlinearity: str = "tanh",
) -> tuple[Tensor, Tensor]:
    """Differentiable fused Elman RNN layer.

    Args:
        x: ``(T, B, I)`` time-major input.
        h0: ``(D, B, H)`` initial hidden state.
        ragged: lengths bookkeeping (:class:`~seq2seq.rnn.ragged.Ragged`).
        weights: ``4 * D`` tensors, per direction ``w_ih, w_hh, b_ih, b_hh`` (PyTorch layout).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``y (T, B, D*H)`` and ``h_n (D, B, H)``.
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {list(NONLINEARITIES)}, "
                         f"got {nonlinearity!r}")
    return RNNLayerFunction.apply(x, h0, ragged, nonlinearity,
                                  _backward_possible(x, h0, *weights), *weights)


def rnn_cell_math(pre: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """One Elman step after the GEMMs (``pre = W_ih x + b_ih + W_hh h + b_hh``); the decoder's
    cell and the reference the fused layer is tested against.

    Args:
        pre: ``(..., H)`` pre-activation.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``(..., H)`` new hidden state.
    """
    return tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
