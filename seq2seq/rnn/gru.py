"""One fused GRU layer (one or both directions) as a hand-written autograd Function.

Gate equations and order are PyTorch's (``r, z, n``)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Forward: one GEMM per direction for the input projection of all steps, per step one GEMM
``h @ W_hh^T + b_hh`` and the gate math on both directions at once. Backward walks time in
reverse with one GEMM per step and direction and computes ``dW_ih``, ``dW_hh``, the biases and
``dx`` with one large GEMM each over all steps. Ragged lengths: see :mod:`seq2seq.rnn.ragged`.
The per-step gate math lives in :mod:`seq2seq.rnn.pointwise`: in-place eager ops by default on
CPU, one ``torch.compile``-fused kernel per step on CUDA (``fused_pointwise``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .pointwise import pointwise_for
from .ragged import Ragged
from .workspace import backward_possible as _backward_possible
from .workspace import buffer


class GRULayerFunction(torch.autograd.Function):
    """Fused GRU layer over ``D`` directions (1 or 2) for a time-major ragged batch."""

    @staticmethod
    def forward(  # noqa: D417
        ctx, x: Tensor, h0: Tensor, ragged: Ragged, fused_pointwise: str,
        backward_possible: bool, *weights: Tensor
    ):
        """Run the layer.

        Args:
            x: ``(T, B, I)`` input.
            h0: ``(D, B, H)`` initial hidden state.
            ragged: lengths bookkeeping for the batch.
            fused_pointwise: ``"auto"``, ``"compile"`` or ``"eager"`` (see
                :func:`~seq2seq.rnn.pointwise.pointwise_for`).
            backward_possible: False when no backward can follow (grad mode off or nothing
                requires grad): then all buffers are reusable scratch.
            *weights: per direction ``w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,)``.

        Returns:
            ``y (T, B, D*H)`` (zero on padded steps) and ``h_n (D, B, H)``.
        """
        nd = len(weights) // 4
        steps, batch = x.shape[:2]
        hid = h0.shape[-1]
        w_ih, w_hh = weights[0::4], weights[1::4]
        b_ih, b_hh = weights[2::4], weights[3::4]
        # without a backward to come, every buffer is scratch (see .workspace)
        infer = not backward_possible
        gates = buffer("gru.gates", (nd, steps, batch, 3 * hid), x, infer)  # (D, T, B, 3H)
        xs, gates = ragged.project_inputs(x, w_ih, b_ih, out=gates)  # x-part, then r, z, n
        # W_hh h + b_hh, stored time-major so that each step's batched GEMM writes one
        # contiguous (D, B, 3H) block (a strided output makes baddbmm copy)
        hg_tm = buffer("gru.hgates", (steps, nd, batch, 3 * hid), x, infer)  # (T, D, B, 3H)
        hgates = hg_tm.transpose(0, 1)  # (D, T, B, 3H) view
        hs = buffer("gru.hs", (nd, steps + 1, batch, hid), x, infer)  # (D, T+1, B, H); [:, 0] = h0
        hs[:, 0] = h0
        w_hh_t = torch.stack(w_hh).transpose(1, 2).contiguous()  # (D, H, 3H), GEMM-friendly
        b_hh_s = torch.stack(b_hh).unsqueeze(1)  # (D, 1, 3H)
        hg_all, h_all = hg_tm.unbind(0), hs.unbind(1)  # per-step (D, B, .) views
        pw = pointwise_for(x.device, fused_pointwise)
        step = pw.gru_forward(gates, hgates, hs)
        for t in range(steps):
            torch.baddbmm(b_hh_s, h_all[t], w_hh_t, out=hg_all[t])  # both directions at once
            step(t)  # r, z, n into gates[:, t]; h into hs[:, t + 1]
        y = ragged.outputs(hs)  # (T, B, D*H)
        h_n = ragged.final(hs)  # (D, B, H)
        ctx.ragged = ragged
        ctx.save_for_backward(*xs, gates, hgates, hs, *weights)
        ctx.nd = nd
        ctx.pw = pw
        return y, h_n

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_hn: Tensor | None):
        """Backward through time in reverse; weight gradients as one GEMM over all steps."""
        nd = ctx.nd
        saved = ctx.saved_tensors
        xs, (gates, hgates, hs) = saved[:nd], saved[nd : nd + 3]
        weights = saved[nd + 3 :]
        w_ih, w_hh = weights[0::4], weights[1::4]
        ragged: Ragged = ctx.ragged
        _, steps, batch, three_h = gates.shape
        hid = three_h // 3
        isize = xs[0].shape[-1]
        rows = steps * batch
        # grad of h_t in aligned time and the gate grads: scratch that stays in here
        dh_tm = buffer("gru.dh", (steps, nd, batch, hid), gates)  # (T, D, B, H): contiguous steps
        dh = ragged.state_grads(grad_y, grad_hn, gates, nd, hid, out=dh_tm.transpose(0, 1))
        dgx = buffer("gru.dgx", (nd, steps, batch, 3 * hid), gates)  # (D, T, B, 3H) x-part gates
        dgh = buffer("gru.dgh", (nd, steps, batch, 3 * hid), gates)  # (D, T, B, 3H) W_hh h + b_hh
        dh0 = gates.new_empty(nd, batch, hid)  # (D, B, H)
        w_hh_s = torch.stack(w_hh)  # (D, 3H, H)
        dgh_all, dh_all = dgh.unbind(1), dh_tm.unbind(0)  # per-step (D, B, .); dh_all contiguous
        step = ctx.pw.gru_backward(gates, hgates, hs, dh, dgx, dgh, dh0)
        for t in range(steps - 1, -1, -1):
            step(t)  # gate grads of step t; dh[:, t] * z into dh[:, t - 1] (dh0 at t = 0)
            if t > 0:
                dh_all[t - 1].baddbmm_(dgh_all[t], w_hh_s)  # both directions in one GEMM
            else:
                dh0.baddbmm_(dgh_all[0], w_hh_s)

        grads: list[Tensor | None] = []
        gx2 = [dgx[d].view(rows, 3 * hid) for d in range(nd)]  # each (T*B, 3H)
        for d in range(nd):
            gh2 = dgh[d].view(rows, 3 * hid)  # (T*B, 3H)
            gw_ih = gx2[d].t().mm(xs[d].view(rows, isize))  # (3H, I)
            gw_hh = gh2.t().mm(hs[d, :steps].reshape(rows, hid))  # (3H, H)
            grads += [gw_ih, gw_hh, gx2[d].sum(0), gh2.sum(0)]
        dx = (ragged.input_grad(gx2, w_ih, buffer("gru.dx", (rows, isize), gates))
              if ctx.needs_input_grad[0] else None)  # (T, B, I)
        return dx, dh0, None, None, None, *grads


def gru_layer(
    x: Tensor,
    h0: Tensor,
    ragged: Ragged,
    weights: list[Tensor],
    *,
    fused_pointwise: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Differentiable fused GRU layer.

    Args:
        x: ``(T, B, I)`` time-major input.
        h0: ``(D, B, H)`` initial hidden state.
        ragged: lengths bookkeeping (:class:`~seq2seq.rnn.ragged.Ragged`).
        weights: ``4 * D`` tensors, per direction ``w_ih, w_hh, b_ih, b_hh`` (PyTorch layout).
        fused_pointwise: per-step gate math: ``"auto"`` (compiled on CUDA, eager elsewhere),
            ``"compile"`` or ``"eager"``.

    Returns:
        ``y (T, B, D*H)`` and ``h_n (D, B, H)``.
    """
    return GRULayerFunction.apply(x, h0, ragged, fused_pointwise,
                                  _backward_possible(x, h0, *weights), *weights)
