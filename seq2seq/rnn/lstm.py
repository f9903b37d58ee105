"""One fused LSTM layer (one or both directions) as a hand-written autograd Function.

Gate equations and order are PyTorch's (``i, f, g, o``)::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     f = sigmoid(... f ...)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)        o = sigmoid(... o ...)
    c' = f * c + i * g                             h' = o * tanh(c')

Forward: one GEMM per direction for the input projection of all steps, then per step one
batched GEMM ``proj_t + h @ W_hh^T`` for both directions into a small scratch block and the gate
math on both directions at once. Backward walks time in reverse with one GEMM per step and direction, and
computes ``dW_ih``, ``dW_hh``, the biases and ``dx`` with one large GEMM each over all steps.
Nothing builds an autograd graph per step. Ragged lengths: see :mod:`seq2seq.rnn.ragged`.
The per-step gate math lives in :mod:`seq2seq.rnn.pointwise`: in-place eager ops by default on
CPU, one ``torch.compile``-fused kernel per step on CUDA (``fused_pointwise``).

Forward gate layout: inside the forward pass the weights are reordered to ``o, i, f, g`` and the
rows of the three sigmoid gates are scaled by 1/2 (:func:`to_internal`, exact in floating point),
because ``sigmoid(a) = (1 + tanh(a / 2)) / 2``: one ``tanh`` over the contiguous ``(D, B, 4H)``
block and one affine op on its first ``3H`` columns activate all four gates, instead of three
activations on strided slices. The stored activations keep that order; the backward pass writes
the gate gradients in PyTorch's order and scale (gradients w.r.t. ``W x + b``), so its GEMMs use
the parameters as they are and the weight gradients need no conversion.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .pointwise import pointwise_for
from .ragged import Ragged
from .workspace import backward_possible as _backward_possible
from .workspace import buffer


def to_internal(w: Tensor) -> Tensor:
    """PyTorch-layout gate rows ``i, f, g, o`` -> forward layout ``o/2, i/2, f/2, g`` (new tensor).

    Args:
        w: ``(4H, ...)`` weight or ``(4H,)`` bias.

    Returns:
        Tensor of the same shape in the internal layout.
    """
    hid = w.shape[0] // 4
    out = w.roll(hid, 0)  # (4H, ...) blocks o, i, f, g: a cyclic shift by one block
    out[: 3 * hid].mul_(0.5)
    return out


class LSTMLayerFunction(torch.autograd.Function):
    """Fused LSTM layer over ``D`` directions (1 or 2) for a time-major ragged batch."""

    @staticmethod
    def forward(  # noqa: D417
        ctx,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        ragged: Ragged,
        fused_pointwise: str,
        backward_possible: bool,
        *weights: Tensor,
    ):
        """Run the layer.

        Args:
            x: ``(T, B, I)`` input.
            h0: ``(D, B, H)`` initial hidden state.
            c0: ``(D, B, H)`` initial cell state.
            ragged: lengths bookkeeping for the batch.
            fused_pointwise: ``"auto"``, ``"compile"`` or ``"eager"`` (see
                :func:`~seq2seq.rnn.pointwise.pointwise_for`).
            backward_possible: False when no backward can follow (grad mode off or nothing
                requires grad): then all buffers are reusable scratch.
            *weights: per direction ``w_ih (4H, I), w_hh (4H, H), b_ih (4H,), b_hh (4H,)`` in
                PyTorch's layout (converted with :func:`to_internal` here).

        Returns:
            ``y (T, B, D*H)`` (zero on padded steps), ``h_n (D, B, H)``, ``c_n (D, B, H)``.
        """
        nd = len(weights) // 4
        steps, batch = x.shape[:2]
        hid = h0.shape[-1]
        w_ih = [to_internal(w) for w in weights[0::4]]  # D x (4H, I), internal layout
        w_hh = [to_internal(w) for w in weights[1::4]]  # D x (4H, H)
        b_ih, b_hh = weights[2::4], weights[3::4]
        biases = [to_internal(b_ih[d] + b_hh[d]) for d in range(nd)]  # D x (4H,)
        # without a backward to come, every buffer is scratch (see .workspace)
        infer = not backward_possible
        proj = buffer("lstm.proj", (nd, steps, batch, 4 * hid), x)  # (D, T, B, 4H) scratch
        xs, proj = ragged.project_inputs(x, w_ih, biases, out=proj)
        # activated gates, stored time-major so that each step's activation writes one
        # contiguous (D, B, 4H) block
        act = buffer("lstm.act", (steps, nd, batch, 4 * hid), x, infer)  # (T, D, B, 4H)
        gates = act.transpose(0, 1)  # (D, T, B, 4H) view
        pre = buffer("lstm.pre", (nd, batch, 4 * hid), x)  # (D, B, 4H) one step's pre-activations
        hs = buffer("lstm.hs", (nd, steps + 1, batch, hid), x, infer)  # (D, T+1, B, H); [:, 0] = h0
        cs = buffer("lstm.cs", (nd, steps + 1, batch, hid), x, infer)  # (D, T+1, B, H)
        tcs = buffer("lstm.tcs", (nd, steps, batch, hid), x, infer)  # (D, T, B, H) tanh(c_t)
        hs[:, 0] = h0
        cs[:, 0] = c0
        w_hh_t = torch.stack(w_hh).transpose(1, 2).contiguous()  # (D, H, 4H), GEMM-friendly
        p_all, h_all = proj.unbind(1), hs.unbind(1)  # per-step (D, B, .)
        pw = pointwise_for(x.device, fused_pointwise)
        step = pw.lstm_forward(pre, gates, hs, cs, tcs)
        for t in range(steps):
            torch.baddbmm(p_all[t], h_all[t], w_hh_t, out=pre)  # both directions at once
            step(t)  # activate pre into gates[:, t]; c, tanh(c), h of step t
        y = ragged.outputs(hs)  # (T, B, D*H)
        h_n = ragged.final(hs)  # (D, B, H)
        c_n = ragged.final(cs)  # (D, B, H)
        ctx.ragged = ragged
        ctx.save_for_backward(*xs, gates, hs, cs, tcs, *weights)
        ctx.nd = nd
        ctx.pw = pw
        return y, h_n, c_n

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_hn: Tensor | None, grad_cn: Tensor | None):
        """Backward through time in reverse; weight gradients as one GEMM over all steps."""
        nd = ctx.nd
        saved = ctx.saved_tensors
        xs, (gates, hs, cs, tcs) = saved[:nd], saved[nd : nd + 4]
        weights = saved[nd + 4 :]
        w_ih, w_hh = weights[0::4], weights[1::4]  # PyTorch layout
        ragged: Ragged = ctx.ragged
        _, steps, batch, hid = tcs.shape
        isize = xs[0].shape[-1]
        rows = steps * batch
        # grad of h_t in aligned time, and the pre-activation grads: scratch that stays in here
        dh_tm = buffer("lstm.dh", (steps, nd, batch, hid), tcs)  # (T, D, B, H): contiguous steps
        dh = ragged.state_grads(grad_y, grad_hn, tcs, nd, hid, out=dh_tm.transpose(0, 1))
        dgates = buffer("lstm.dgates", (nd, steps, batch, 4 * hid), tcs)  # (D, T, B, 4H)
        dc = tcs.new_zeros(nd, batch, hid)  # (D, B, H) grad of c_t
        dh0 = tcs.new_empty(nd, batch, hid)  # (D, B, H)
        w_hh_s = torch.stack(w_hh)  # (D, 4H, H)
        d_all, dh_all = dgates.unbind(1), dh_tm.unbind(0)  # per-step (D, B, .); dh_all contiguous
        step = ctx.pw.lstm_backward(gates, cs, tcs, dh, dgates, dc)
        for t in range(steps - 1, -1, -1):
            if grad_cn is not None:
                sel = ragged.last_rows(t)
                if sel is not None:
                    dc[:, sel] += grad_cn[:, sel]
            step(t)  # gate grads of step t into dgates[:, t]; dc becomes grad of c_{t-1}
            if t > 0:
                dh_all[t - 1].baddbmm_(d_all[t], w_hh_s)  # both directions in one GEMM
            else:
                torch.bmm(d_all[0], w_hh_s, out=dh0)

        grads: list[Tensor | None] = []
        dg2 = [dgates[d].view(rows, 4 * hid) for d in range(nd)]  # each (T*B, 4H)
        for d in range(nd):
            gw_ih = dg2[d].t().mm(xs[d].view(rows, isize))  # (4H, I)
            gw_hh = dg2[d].t().mm(hs[d, :steps].reshape(rows, hid))  # (4H, H)
            gb = dg2[d].sum(0)  # (4H,)
            grads += [gw_ih, gw_hh, gb, gb.clone()]
        dx = (ragged.input_grad(dg2, w_ih, buffer("lstm.dx", (rows, isize), tcs))
              if ctx.needs_input_grad[0] else None)  # (T, B, I)
        return dx, dh0, dc, None, None, None, *grads


def lstm_layer(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    ragged: Ragged,
    weights: list[Tensor],
    *,
    fused_pointwise: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Differentiable fused LSTM layer.

    Args:
        x: ``(T, B, I)`` time-major input.
        h0: ``(D, B, H)`` initial hidden state.
        c0: ``(D, B, H)`` initial cell state.
        ragged: lengths bookkeeping (:class:`~seq2seq.rnn.ragged.Ragged`).
        weights: ``4 * D`` tensors, per direction ``w_ih, w_hh, b_ih, b_hh`` (PyTorch layout).
        fused_pointwise: per-step gate math: ``"auto"`` (compiled on CUDA, eager elsewhere),
            ``"compile"`` or ``"eager"``.

    Returns:
        ``y (T, B, D*H)``, ``h_n (D, B, H)``, ``c_n (D, B, H)``.
    """
    return LSTMLayerFunction.apply(x, h0, c0, ragged, fused_pointwise,
                                   _backward_possible(x, h0, c0, *weights), *weights)
