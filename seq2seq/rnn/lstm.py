"""One fused LSTM layer (one or both directions) as a hand-written autograd Function.

Gate equations and order are PyTorch's (``i, f, g, o``)::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     f = sigmoid(... f ...)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)        o = sigmoid(... o ...)
    c' = f * c + i * g                             h' = o * tanh(c')

Forward: one GEMM per direction for the input projection of all steps, then per step one GEMM
``h @ W_hh^T`` accumulated in place into the gate buffer and in-place gate math on both
directions at once. Backward walks time in reverse with one GEMM per step and direction, and
computes ``dW_ih``, ``dW_hh``, the biases and ``dx`` with one large GEMM each over all steps.
Nothing builds an autograd graph per step. Ragged lengths: see :mod:`seq2seq.rnn.ragged`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .ragged import Ragged


def _dsigmoid_(grad: Tensor, y: Tensor, tmp: Tensor) -> None:
    """``grad *= y * (1 - y)`` in place (``y = sigmoid(.)``); ``tmp`` is scratch like ``y``."""
    torch.addcmul(y, y, y, value=-1.0, out=tmp)
    grad.mul_(tmp)


def _dtanh_(grad: Tensor, y: Tensor, tmp: Tensor, one: Tensor) -> None:
    """``grad *= 1 - y**2`` in place (``y = tanh(.)``); ``one`` is a 0-dim tensor of 1."""
    torch.addcmul(one, y, y, value=-1.0, out=tmp)
    grad.mul_(tmp)


class LSTMLayerFunction(torch.autograd.Function):
    """Fused LSTM layer over ``D`` directions (1 or 2) for a time-major ragged batch."""

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, c0: Tensor, ragged: Ragged, *weights: Tensor):  # noqa: D417
        """Run the layer.

        Args:
            x: ``(T, B, I)`` input.
            h0: ``(D, B, H)`` initial hidden state.
            c0: ``(D, B, H)`` initial cell state.
            ragged: lengths bookkeeping for the batch.
            *weights: per direction ``w_ih (4H, I), w_hh (4H, H), b_ih (4H,), b_hh (4H,)``.

        Returns:
            ``y (T, B, D*H)`` (zero on padded steps), ``h_n (D, B, H)``, ``c_n (D, B, H)``.
        """
        nd = len(weights) // 4
        steps, batch, isize = x.shape
        hid = h0.shape[-1]
        w_ih, w_hh = weights[0::4], weights[1::4]
        b_ih, b_hh = weights[2::4], weights[3::4]
        x = x.contiguous()
        xs = [x] if nd == 1 else [x, ragged.reverse(x)]  # aligned-time inputs, each (T, B, I)
        gates = x.new_empty(nd, steps, batch, 4 * hid)  # (D, T, B, 4H)
        for d in range(nd):
            torch.addmm(
                b_ih[d] + b_hh[d],
                xs[d].view(steps * batch, isize),
                w_ih[d].t(),
                out=gates[d].view(steps * batch, 4 * hid),
            )
        hs = x.new_empty(nd, steps + 1, batch, hid)  # (D, T+1, B, H), hs[:, 0] = h0
        cs = x.new_empty(nd, steps + 1, batch, hid)  # (D, T+1, B, H)
        tcs = x.new_empty(nd, steps, batch, hid)  # (D, T, B, H) tanh(c_t)
        hs[:, 0] = h0
        cs[:, 0] = c0
        w_hh_t = torch.stack(w_hh).transpose(1, 2)  # (D, H, 4H)
        h1, h2, h3 = hid, 2 * hid, 3 * hid
        # per-step views, made once: each list holds T (or T+1) tensors of shape (D, B, .)
        g_all, g_if, g_g, g_o = (
            v.unbind(1) for v in (gates, gates[..., :h2], gates[..., h2:h3], gates[..., h3:])
        )
        g_i, g_f = gates[..., :h1].unbind(1), gates[..., h1:h2].unbind(1)
        c_all, tc_all, h_all = cs.unbind(1), tcs.unbind(1), hs.unbind(1)
        for t in range(steps):
            g_all[t].baddbmm_(h_all[t], w_hh_t)  # both directions in one batched GEMM
            g_if[t].sigmoid_()
            g_g[t].tanh_()
            g_o[t].sigmoid_()
            c = c_all[t + 1]
            torch.mul(g_f[t], c_all[t], out=c)
            c.addcmul_(g_i[t], g_g[t])
            torch.tanh(c, out=tc_all[t])
            torch.mul(g_o[t], tc_all[t], out=h_all[t + 1])
        y = x.new_empty(steps, batch, nd * hid)  # (T, B, D*H)
        y[..., :hid] = hs[0, 1:]
        if nd == 2:
            y[..., hid:] = ragged.reverse(hs[1, 1:])
        ragged.zero_padding_(y)
        h_n = ragged.final(hs)  # (D, B, H)
        c_n = ragged.final(cs)  # (D, B, H)
        ctx.ragged = ragged
        ctx.save_for_backward(*xs, gates, hs, cs, tcs, *weights)
        ctx.nd = nd
        return y, h_n, c_n

    @staticmethod
    def backward(ctx, grad_y: Tensor | None, grad_hn: Tensor | None, grad_cn: Tensor | None):
        """Backward through time in reverse; weight gradients as one GEMM over all steps."""
        nd = ctx.nd
        saved = ctx.saved_tensors
        xs, (gates, hs, cs, tcs) = saved[:nd], saved[nd : nd + 4]
        weights = saved[nd + 4 :]
        w_ih, w_hh = weights[0::4], weights[1::4]
        ragged: Ragged = ctx.ragged
        _, steps, batch, hid = tcs.shape
        isize = xs[0].shape[-1]
        rows = steps * batch
        h1, h2, h3 = hid, 2 * hid, 3 * hid

        dh = tcs.new_zeros(nd, steps, batch, hid)  # (D, T, B, H) grad of h_t, aligned time
        if grad_y is not None:
            dh[0] = grad_y[..., :hid]
            if nd == 2:
                dh[1] = ragged.reverse(grad_y[..., hid:])
            ragged.zero_padding_(dh)
        if grad_hn is not None:
            ragged.inject_final_grad_(dh, grad_hn)
        dgates = tcs.new_empty(nd, steps, batch, 4 * hid)  # (D, T, B, 4H) pre-activation grads
        dc = tcs.new_zeros(nd, batch, hid)  # (D, B, H) grad of c_t
        tmp = tcs.new_empty(nd, batch, hid)  # (D, B, H)
        tmp2 = tcs.new_empty(nd, batch, 2 * hid)  # (D, B, 2H)
        one = tcs.new_ones(())
        dh0 = tcs.new_empty(nd, batch, hid)  # (D, B, H)
        w_hh_s = torch.stack(w_hh)  # (D, 4H, H)
        views = [gates[..., a:b].unbind(1) for a, b in ((0, h1), (h1, h2), (h2, h3), (h3, 4 * hid))]
        g_i, g_f, g_g, g_o = views
        g_if = gates[..., :h2].unbind(1)
        dviews = [
            dgates[..., a:b].unbind(1) for a, b in ((0, h1), (h1, h2), (h2, h3), (h3, 4 * hid))
        ]
        d_i, d_f, d_g, d_o = dviews
        d_if, d_all = dgates[..., :h2].unbind(1), dgates.unbind(1)
        c_all, tc_all, dh_all = cs.unbind(1), tcs.unbind(1), dh.unbind(1)
        for t in range(steps - 1, -1, -1):
            if grad_cn is not None:
                sel = ragged.last_rows(t)
                if sel is not None:
                    dc[:, sel] += grad_cn[:, sel]
            tc, dht = tc_all[t], dh_all[t]
            torch.mul(dht, tc, out=d_o[t])  # d o
            torch.addcmul(one, tc, tc, value=-1.0, out=tmp)  # 1 - tanh(c)^2
            tmp.mul_(g_o[t]).mul_(dht)
            dc.add_(tmp)  # full grad of c_t
            torch.mul(dc, g_g[t], out=d_i[t])
            torch.mul(dc, c_all[t], out=d_f[t])
            torch.mul(dc, g_i[t], out=d_g[t])
            dc.mul_(g_f[t])  # grad of c_{t-1}
            _dsigmoid_(d_if[t], g_if[t], tmp2)
            _dtanh_(d_g[t], g_g[t], tmp, one)
            _dsigmoid_(d_o[t], g_o[t], tmp)
            if t > 0:
                dh_all[t - 1].baddbmm_(d_all[t], w_hh_s)  # both directions in one GEMM
            else:
                torch.bmm(d_all[0], w_hh_s, out=dh0)

        grads: list[Tensor | None] = []
        dx = None
        need_x = ctx.needs_input_grad[0]
        for d in range(nd):
            dg2 = dgates[d].view(rows, 4 * hid)  # (T*B, 4H)
            gw_ih = dg2.t().mm(xs[d].view(rows, isize))  # (4H, I)
            gw_hh = dg2.t().mm(hs[d, :steps].reshape(rows, hid))  # (4H, H)
            gb = dg2.sum(0)  # (4H,)
            grads += [gw_ih, gw_hh, gb, gb.clone()]
            if need_x:
                dxd = dg2.mm(w_ih[d]).view(steps, batch, isize)  # (T, B, I)
                if d == 0:
                    dx = dxd
                else:
                    dx.add_(ragged.reverse(dxd))
        return dx, dh0, dc, None, *grads


def lstm_layer(
    x: Tensor, h0: Tensor, c0: Tensor, ragged: Ragged, weights: list[Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """Differentiable fused LSTM layer.

    Args:
        x: ``(T, B, I)`` time-major input.
        h0: ``(D, B, H)`` initial hidden state.
        c0: ``(D, B, H)`` initial cell state.
        ragged: lengths bookkeeping (:class:`~seq2seq.rnn.ragged.Ragged`).
        weights: ``4 * D`` tensors, per direction ``w_ih, w_hh, b_ih, b_hh`` (PyTorch layout).

    Returns:
        ``y (T, B, D*H)``, ``h_n (D, B, H)``, ``c_n (D, B, H)``.
    """
    return LSTMLayerFunction.apply(x, h0, c0, ragged, *weights)
