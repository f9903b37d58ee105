"""Reference gate math of the fused GRU/LSTM layers, and its ``torch.compile``-fused step binders.

The one copy of the gate math: :func:`gru_cell_math` and :func:`lstm_cell_math` (PyTorch gate
order) are also the decoder's cells. The pure functions :func:`gru_forward_math`,
:func:`gru_backward_math`, :func:`lstm_forward_math` and :func:`lstm_backward_math` (new tensors in, new tensors out, no mutation) define one step's
pointwise work between the GEMMs; the eager in-place binders of :mod:`seq2seq.rnn.pointwise` are
tested against them. Wrapped in ``torch.compile(fullgraph=True, dynamic=True)`` each becomes one
fused kernel per step (Triton on CUDA, C++ on CPU): the binders here build a step function
``step(t)`` around the compiled call that copies its results into the layer's buffers. Compiled
lazily on first use and cached at module level. Imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .activation import tanh

StepFn = Callable[[int], None]


def gru_cell_math(gx: Tensor, hg: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One GRU step after the GEMMs (PyTorch gate order ``r, z, n``); any leading dims.

    Also the decoder's GRU cell (:mod:`seq2seq.model.decoder`), so there is one copy of the math.

    Args:
        gx: ``(..., 3H)`` input part ``W_ih x + b_ih``.
        hg: ``(..., 3H)`` hidden part ``W_hh h + b_hh``.
        h: ``(..., H)`` previous hidden state.

    Returns:
        ``rz (..., 2H)`` activated ``r, z``, ``n (..., H)`` and the new hidden state ``(..., H)``.
    """
    hid = h.shape[-1]
    rz = torch.sigmoid(gx[..., : 2 * hid] + hg[..., : 2 * hid])  # (..., 2H)
    r, z = rz[..., :hid], rz[..., hid:]  # each (..., H)
    n = tanh(torch.addcmul(gx[..., 2 * hid :], r, hg[..., 2 * hid :]))  # (..., H)
    return rz, n, torch.addcmul(n, z, h - n)  # h' = n + z * (h - n)


def lstm_cell_math(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step after the GEMMs in PyTorch's gate order ``i, f, g, o``; any leading dims.

    The decoder's LSTM cell (:mod:`seq2seq.model.decoder`); the fused layers compute the same
    function in their internal layout (:func:`lstm_forward_math`, tested against this one).

    Args:
        gates: ``(..., 4H)`` summed input and hidden projections incl. both biases.
        c: ``(..., H)`` previous cell state.

    Returns:
        ``(h (..., H), c (..., H))``.
    """
    i, f, g, o = gates.chunk(4, dim=-1)  # (..., H) each
    c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), tanh(g))  # (..., H)
    return torch.sigmoid(o) * tanh(c), c  # (..., H), (..., H)


def gru_forward_math(gx: Tensor, hg: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """One GRU step of a fused layer: :func:`gru_cell_math` with the activations kept.

    Args:
        gx: ``(D, B, 3H)`` input part ``W_ih x + b_ih`` (``r, z, n`` blocks).
        hg: ``(D, B, 3H)`` hidden part ``W_hh h + b_hh``.
        h: ``(D, B, H)`` previous hidden state.

    Returns:
        ``act (D, B, 3H)`` = activated ``r, z, n`` and the new hidden state ``(D, B, H)``.
    """
    rz, n, h_new = gru_cell_math(gx, hg, h)
    return torch.cat([rz, n], -1), h_new  # (D, B, 3H), (D, B, H)


def gru_backward_math(
    dh: Tensor, act: Tensor, hg: Tensor, h_prev: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Gate gradients of one GRU step.

    Args:
        dh: ``(D, B, H)`` full gradient of the step's output state.
        act: ``(D, B, 3H)`` activated ``r, z, n`` of the step.
        hg: ``(D, B, 3H)`` hidden part ``W_hh h + b_hh`` of the step.
        h_prev: ``(D, B, H)`` the step's input state.

    Returns:
        ``dgx (D, B, 3H)`` (grad of the input part), ``dgh (D, B, 3H)`` (grad of the hidden part)
        and ``dh * z (D, B, H)``, the direct contribution to the previous state's gradient.
    """
    hid = dh.shape[-1]
    r, z, n = act[..., :hid], act[..., hid : 2 * hid], act[..., 2 * hid :]  # each (D, B, H)
    dn = dh * (1 - z) * (1 - n * n)  # (D, B, H)
    dz = (h_prev - n) * dh * (z - z * z)  # (D, B, H)
    dr = dn * hg[..., 2 * hid :] * (r - r * r)  # (D, B, H)
    dgx = torch.cat([dr, dz, dn], -1)  # (D, B, 3H)
    dgh = torch.cat([dr, dz, dn * r], -1)  # (D, B, 3H)
    return dgx, dgh, dh * z


def lstm_forward_math(g: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One LSTM step after the GEMMs, in the internal gate layout of :mod:`seq2seq.rnn.lstm`.

    Args:
        g: ``(D, B, 4H)`` pre-activations ``o/2, i/2, f/2, g`` (sigmoid gates' rows halved).
        c: ``(D, B, H)`` previous cell state.

    Returns:
        ``act (D, B, 4H)`` activated gates ``o, i, f, g``, ``c' (D, B, H)``,
        ``tanh(c') (D, B, H)`` and ``h' (D, B, H)``.
    """
    hid = c.shape[-1]
    t = tanh(g)  # (D, B, 4H)
    ofi = 0.5 + 0.5 * t[..., : 3 * hid]  # (D, B, 3H) sigmoid(a) = (1 + tanh(a / 2)) / 2
    o, i, f = ofi[..., :hid], ofi[..., hid : 2 * hid], ofi[..., 2 * hid :]  # each (D, B, H)
    gg = t[..., 3 * hid :]  # (D, B, H)
    c_new = f * c + i * gg  # (D, B, H)
    tc = tanh(c_new)  # (D, B, H)
    return torch.cat([ofi, gg], -1), c_new, tc, o * tc


def lstm_backward_math(
    dh: Tensor, dc: Tensor, act: Tensor, c_prev: Tensor, tc: Tensor
) -> tuple[Tensor, Tensor]:
    """Gate gradients of one LSTM step.

    Args:
        dh: ``(D, B, H)`` full gradient of the step's hidden output.
        dc: ``(D, B, H)`` gradient of the step's cell output from later steps (and ``c_n``).
        act: ``(D, B, 4H)`` activated gates in the forward layout ``o, i, f, g``.
        c_prev: ``(D, B, H)`` the step's input cell state.
        tc: ``(D, B, H)`` ``tanh`` of the step's output cell state.

    Returns:
        ``dgates (D, B, 4H)``, the gradients w.r.t. the pre-activations ``W x + b`` in PyTorch's
        order ``i, f, g, o``, and the gradient of ``c_prev (D, B, H)``.
    """
    hid = dh.shape[-1]
    o, i = act[..., :hid], act[..., hid : 2 * hid]  # each (D, B, H)
    f, gg = act[..., 2 * hid : 3 * hid], act[..., 3 * hid :]  # each (D, B, H)
    dc = dc + dh * o * (1 - tc * tc)  # (D, B, H) full grad of c_t
    di = dc * gg * (i - i * i)  # (D, B, H)
    df = dc * c_prev * (f - f * f)  # (D, B, H)
    dg = dc * i * (1 - gg * gg)  # (D, B, H)
    do = dh * tc * (o - o * o)  # (D, B, H)
    return torch.cat([di, df, dg, do], -1), dc * f  # (D, B, 4H), (D, B, H)


_COMPILED: dict[str, Callable] = {}


def _steps(buf: Tensor) -> list[Tensor]:
    """Per-step ``buf[:, t]`` views, detached so that they have no ``_base``.

    ``torch.compile`` guards on the sizes of a view's base: the time dimension would then take
    part in duck-sized equalities (``T == H``) and a new sequence length could recompile.
    Detached views share the buffer's storage, so ``copy_`` into them still fills it.
    """
    return [v.detach() for v in buf.unbind(1)]


def _compiled(fn: Callable) -> Callable:
    """``torch.compile(fn, fullgraph=True, dynamic=True)``, made once per function."""
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = torch.compile(fn, fullgraph=True, dynamic=True)
    return _COMPILED[fn.__name__]


def gru_forward_compiled(gates: Tensor, hgates: Tensor, hs: Tensor) -> StepFn:
    """Like :func:`~seq2seq.rnn.pointwise.gru_forward_eager`; one compiled
    :func:`gru_forward_math` call per step.
    """
    fn = _compiled(gru_forward_math)
    g_all, hg_all, h_all = _steps(gates), _steps(hgates), _steps(hs)

    def step(t: int) -> None:
        act, h = fn(g_all[t], hg_all[t], h_all[t])  # (D, B, 3H), (D, B, H)
        g_all[t].copy_(act)
        h_all[t + 1].copy_(h)

    return step


def gru_backward_compiled(
    gates: Tensor, hgates: Tensor, hs: Tensor, dh: Tensor, dgx: Tensor, dgh: Tensor, dh0: Tensor
) -> StepFn:
    """Like :func:`~seq2seq.rnn.pointwise.gru_backward_eager`; one compiled
    :func:`gru_backward_math` call per step.
    """
    fn = _compiled(gru_backward_math)
    g_all, hg_all, h_all = _steps(gates), _steps(hgates), _steps(hs)
    dh_all, dgx_all, dgh_all = _steps(dh), _steps(dgx), _steps(dgh)

    def step(t: int) -> None:
        gx, gh, carry = fn(dh_all[t], g_all[t], hg_all[t], h_all[t])
        dgx_all[t].copy_(gx)
        dgh_all[t].copy_(gh)
        if t > 0:
            dh_all[t - 1].add_(carry)
        else:
            dh0.copy_(carry)

    return step


def lstm_forward_compiled(
    pre: Tensor, gates: Tensor, hs: Tensor, cs: Tensor, tcs: Tensor
) -> StepFn:
    """Like :func:`~seq2seq.rnn.pointwise.lstm_forward_eager`; one compiled
    :func:`lstm_forward_math` call per step.
    """
    fn = _compiled(lstm_forward_math)
    g_all, h_all = _steps(gates), _steps(hs)
    c_all, tc_all = _steps(cs), _steps(tcs)
    pre = pre.detach()  # no _base (see _steps)

    def step(t: int) -> None:
        act, c, tc, h = fn(pre, c_all[t])
        g_all[t].copy_(act)
        c_all[t + 1].copy_(c)
        tc_all[t].copy_(tc)
        h_all[t + 1].copy_(h)

    return step


def lstm_backward_compiled(
    gates: Tensor, cs: Tensor, tcs: Tensor, dh: Tensor, dgates: Tensor, dc: Tensor
) -> StepFn:
    """Like :func:`~seq2seq.rnn.pointwise.lstm_backward_eager`; one compiled
    :func:`lstm_backward_math` call per step.
    """
    fn = _compiled(lstm_backward_math)
    g_all, c_all, tc_all = _steps(gates), _steps(cs), _steps(tcs)
    dh_all, d_all = _steps(dh), _steps(dgates)

    def step(t: int) -> None:
        dg, dc_prev = fn(dh_all[t], dc, g_all[t], c_all[t], tc_all[t])
        d_all[t].copy_(dg)
        dc.copy_(dc_prev)

    return step
