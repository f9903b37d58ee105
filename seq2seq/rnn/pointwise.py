"""Per-step gate math of the fused GRU/LSTM layers: eager in place, or fused by ``torch.compile``.

The layer Functions in :mod:`seq2seq.rnn.gru` and :mod:`seq2seq.rnn.lstm` own the buffers and the
GEMMs; the pointwise work between two GEMMs (gate activations, state update, gate gradients) is
delegated to a *step function* ``step(t)`` built once per call by a binder.

Two implementations share that interface:

* **eager** (this module): in-place ops on preallocated views (``out=``, ``add_``, ...), the
  default on CPU.
* **compiled** (:mod:`seq2seq.rnn.compiled`): the pure reference math wrapped in
  ``torch.compile``, one fused kernel per step; the default on CUDA.

:func:`pointwise_for` picks one for a device and a mode (``"auto"``: compiled on CUDA, eager
elsewhere; ``"compile"``; ``"eager"``). Imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .activation import tanh, tanh_
from .compiled import (
    StepFn,
    gru_backward_compiled,
    gru_forward_compiled,
    lstm_backward_compiled,
    lstm_forward_compiled,
)
from .workspace import buffer

MODES = ("auto", "compile", "eager")


def _dsigmoid_(grad: Tensor, y: Tensor, tmp: Tensor) -> None:
    """``grad *= y * (1 - y)`` in place (``y = sigmoid(.)``); ``tmp`` is scratch like ``y``."""
    torch.addcmul(y, y, y, value=-1.0, out=tmp)
    grad.mul_(tmp)


def _dtanh_(grad: Tensor, y: Tensor, tmp: Tensor, one: Tensor) -> None:
    """``grad *= 1 - y**2`` in place (``y = tanh(.)``); ``one`` is a 0-dim tensor of 1."""
    torch.addcmul(one, y, y, value=-1.0, out=tmp)
    grad.mul_(tmp)


# --------------------------------------------------------------------------- eager binders


def gru_forward_eager(gates: Tensor, hgates: Tensor, hs: Tensor) -> StepFn:
    """In-place GRU forward step: after ``hgates[:, t]`` is computed, activate and update.

    Args:
        gates: ``(D, T, B, 3H)`` input part; step ``t`` overwrites ``[:, t]`` with ``r, z, n``.
        hgates: ``(D, T, B, 3H)`` hidden part ``W_hh h + b_hh`` (read only).
        hs: ``(D, T+1, B, H)`` states; step ``t`` writes ``hs[:, t+1]``.

    Returns:
        ``step(t)``.
    """
    hid = hs.shape[-1]
    h1, h2 = hid, 2 * hid
    # per-step views, made once: each list holds T (or T+1) tensors of shape (D, B, .)
    hg_rz, hg_n = hgates[..., :h2].unbind(1), hgates[..., h2:].unbind(1)
    g_rz, g_r, g_z = (
        gates[..., :h2].unbind(1),
        gates[..., :h1].unbind(1),
        gates[..., h1:h2].unbind(1),
    )
    g_n, h_all = gates[..., h2:].unbind(1), hs.unbind(1)

    def step(t: int) -> None:
        g_rz[t].add_(hg_rz[t]).sigmoid_()  # r, z
        n = g_n[t]
        tanh_(n.addcmul_(g_r[t], hg_n[t]))  # n
        h = h_all[t + 1]
        torch.sub(h_all[t], n, out=h)
        h.mul_(g_z[t]).add_(n)  # n + z * (h - n)

    return step


def gru_backward_eager(
    gates: Tensor, hgates: Tensor, hs: Tensor, dh: Tensor, dgx: Tensor, dgh: Tensor, dh0: Tensor
) -> StepFn:
    """In-place GRU backward step (everything of step ``t`` but the ``W_hh`` GEMM).

    Args:
        gates: ``(D, T, B, 3H)`` activated ``r, z, n``.
        hgates: ``(D, T, B, 3H)`` hidden parts.
        hs: ``(D, T+1, B, H)`` states.
        dh: ``(D, T, B, H)`` state gradients; step ``t`` adds ``dh[:, t] * z`` to ``dh[:, t-1]``.
        dgx: ``(D, T, B, 3H)`` step ``t`` writes the input-part gradient ``[:, t]``.
        dgh: ``(D, T, B, 3H)`` step ``t`` writes the hidden-part gradient ``[:, t]``.
        dh0: ``(D, B, H)`` step 0 writes ``dh[:, 0] * z`` here.

    Returns:
        ``step(t)``.
    """
    hid = hs.shape[-1]
    batch, nd = hs.shape[2], hs.shape[0]
    h1, h2 = hid, 2 * hid
    tmp = gates.new_empty(nd, batch, hid)  # (D, B, H)
    one = gates.new_ones(())
    g_r, g_z, g_n = (gates[..., a : a + hid].unbind(1) for a in (0, h1, h2))
    hg_n = hgates[..., h2:].unbind(1)
    d_r, d_z, d_n = (dgx[..., a : a + hid].unbind(1) for a in (0, h1, h2))
    dx_rz, dh_rz, dh_n = (
        dgx[..., :h2].unbind(1),
        dgh[..., :h2].unbind(1),
        dgh[..., h2:].unbind(1),
    )
    dh_all, h_all = dh.unbind(1), hs.unbind(1)

    def step(t: int) -> None:
        r, z, n = g_r[t], g_z[t], g_n[t]
        dht = dh_all[t]
        dn = d_n[t]
        torch.addcmul(dht, dht, z, value=-1.0, out=dn)  # dh * (1 - z)
        _dtanh_(dn, n, tmp, one)
        dz = d_z[t]
        torch.sub(h_all[t], n, out=dz)
        dz.mul_(dht)
        _dsigmoid_(dz, z, tmp)
        torch.mul(dn, r, out=dh_n[t])  # d (W_hn h + b_hn)
        dr = d_r[t]
        torch.mul(dn, hg_n[t], out=dr)
        _dsigmoid_(dr, r, tmp)
        dh_rz[t].copy_(dx_rz[t])
        if t > 0:
            dh_all[t - 1].addcmul_(dht, z)
        else:
            torch.mul(dht, z, out=dh0)

    return step


def lstm_forward_eager(pre: Tensor, gates: Tensor, hs: Tensor, cs: Tensor, tcs: Tensor) -> StepFn:
    """LSTM forward step: activate ``pre`` into ``gates[:, t]``, then update the states.

    Internal gate layout (see :mod:`seq2seq.rnn.lstm`): one out-of-place ``tanh`` over the whole
    contiguous block and ``(1 + t) / 2`` on the first ``3H`` columns give ``o, i, f, g``: one
    activation over a contiguous block instead of three over strided slices, out of place because
    small in-place activations are slower on CPU (timings in benchmarks/README.md).

    Args:
        pre: ``(D, B, 4H)`` contiguous block holding step ``t``'s pre-activations
            ``o/2, i/2, f/2, g`` (both GEMMs and biases summed); read only.
        gates: ``(D, T, B, 4H)``; step ``t`` writes the activated ``o, i, f, g`` to ``[:, t]``.
        hs: ``(D, T+1, B, H)`` hidden states; step ``t`` writes ``hs[:, t+1]``.
        cs: ``(D, T+1, B, H)`` cell states; step ``t`` writes ``cs[:, t+1]``.
        tcs: ``(D, T, B, H)``; step ``t`` writes ``tanh(cs[:, t+1])``.

    Returns:
        ``step(t)``.
    """
    hid = hs.shape[-1]
    h1, h2, h3 = hid, 2 * hid, 3 * hid
    half = pre.new_full((), 0.5)
    # per-step views, made once: each list holds T (or T+1) tensors of shape (D, B, .)
    g_all, g_ofi = gates.unbind(1), gates[..., :h3].unbind(1)
    g_o, g_i = gates[..., :h1].unbind(1), gates[..., h1:h2].unbind(1)
    g_f, g_g = gates[..., h2:h3].unbind(1), gates[..., h3:].unbind(1)
    c_all, tc_all, h_all = cs.unbind(1), tcs.unbind(1), hs.unbind(1)

    def step(t: int) -> None:
        tanh(pre, out=g_all[t])
        torch.add(half, g_ofi[t], alpha=0.5, out=g_ofi[t])  # sigmoid gates o, i, f
        c = c_all[t + 1]
        torch.mul(g_f[t], c_all[t], out=c)
        c.addcmul_(g_i[t], g_g[t])
        tanh(c, out=tc_all[t])
        torch.mul(g_o[t], tc_all[t], out=h_all[t + 1])

    return step


def lstm_backward_eager(
    gates: Tensor, cs: Tensor, tcs: Tensor, dh: Tensor, dgates: Tensor, dc: Tensor
) -> StepFn:
    """LSTM backward step (everything of step ``t`` but the ``W_hh`` GEMM).

    Everything that depends on the forward pass alone is computed for all steps at once when the
    step function is built (a handful of large ops), so that a step is four small ops: with
    ``K = [g i(1-i), c_{t-1} f(1-f), i (1-g^2), tanh(c_t) o(1-o)]`` (PyTorch's gate order) and
    ``A = o (1 - tanh(c_t)^2)``::

        dc += dh * A              (full grad of c_t)
        d[i, f, g] = K[i, f, g] * dc      d[o] = K[o] * dh
        dc *= f                   (grad of c_{t-1})

    Args:
        gates: ``(D, T, B, 4H)`` activated gates in the forward layout ``o, i, f, g``.
        cs: ``(D, T+1, B, H)`` cell states.
        tcs: ``(D, T, B, H)`` ``tanh`` of the output cell states.
        dh: ``(D, T, B, H)`` full hidden-output gradients (read only).
        dgates: ``(D, T, B, 4H)``; step ``t`` writes the gradients w.r.t. the pre-activations
            ``W x + b`` (PyTorch's order ``i, f, g, o``) to ``[:, t]``.
        dc: ``(D, B, H)`` cell gradient carried in place: in, of ``c_t``; out, of ``c_{t-1}``.

    Returns:
        ``step(t)``.
    """
    nd, steps, batch, hid = tcs.shape
    h1, h2, h3 = hid, 2 * hid, 3 * hid
    one = tcs.new_ones(())
    o, i, f, g = (gates[..., a : a + hid] for a in (0, h1, h2, h3))  # each (D, T, B, H)
    a_if = gates[..., h1:h3]  # (D, T, B, 2H) i, f
    coef = buffer("lstm.coef", (nd, steps, batch, 4 * hid), tcs)  # (D, T, B, 4H) the K above
    torch.addcmul(a_if, a_if, a_if, value=-1.0, out=coef[..., :h2])  # s (1 - s) for i, f
    torch.addcmul(one, g, g, value=-1.0, out=coef[..., h2:h3])  # 1 - g^2
    torch.addcmul(o, o, o, value=-1.0, out=coef[..., h3:])  # o (1 - o)
    coef[..., :h1].mul_(g)
    coef[..., h1:h2].mul_(cs[:, :steps])
    coef[..., h2:h3].mul_(i)
    coef[..., h3:].mul_(tcs)
    a_tm = buffer("lstm.a", (steps, nd, batch, hid), tcs)  # (T, D, B, H) contiguous steps
    a = a_tm.transpose(0, 1)  # (D, T, B, H) view
    torch.addcmul(one, tcs, tcs, value=-1.0, out=a)
    a.mul_(o)
    k_ifg = coef[..., :h3].view(nd, steps, batch, 3, hid).unbind(1)  # each (D, B, 3, H)
    d_ifg = dgates[..., :h3].view(nd, steps, batch, 3, hid).unbind(1)  # each (D, B, 3, H)
    k_o, d_o = coef[..., h3:].unbind(1), dgates[..., h3:].unbind(1)  # each (D, B, H)
    a_all, f_all, dh_all = a_tm.unbind(0), f.unbind(1), dh.unbind(1)
    dc_b = dc.unsqueeze(2)  # (D, B, 1, H) view

    def step(t: int) -> None:
        dht = dh_all[t]
        dc.addcmul_(dht, a_all[t])  # full grad of c_t
        torch.mul(k_ifg[t], dc_b, out=d_ifg[t])
        torch.mul(k_o[t], dht, out=d_o[t])
        dc.mul_(f_all[t])  # grad of c_{t-1}

    return step


class Pointwise(NamedTuple):
    """The four step binders of one implementation (see the module docstring)."""

    gru_forward: Callable[..., StepFn]
    gru_backward: Callable[..., StepFn]
    lstm_forward: Callable[..., StepFn]
    lstm_backward: Callable[..., StepFn]
    compiled: bool


EAGER = Pointwise(
    gru_forward_eager, gru_backward_eager, lstm_forward_eager, lstm_backward_eager, compiled=False
)
COMPILED = Pointwise(
    gru_forward_compiled,
    gru_backward_compiled,
    lstm_forward_compiled,
    lstm_backward_compiled,
    compiled=True,
)


def check_mode(mode: str) -> str:
    """Validate a ``fused_pointwise`` mode.

    Raises:
        ValueError: if ``mode`` is not one of ``"auto"``, ``"compile"``, ``"eager"``.
    """
    if mode not in MODES:
        raise ValueError(f"fused_pointwise must be one of {MODES}, got {mode!r}")
    return mode


def pointwise_for(device: torch.device | str, mode: str = "auto") -> Pointwise:
    """The pointwise implementation for a device.

    Args:
        device: where the layer runs.
        mode: ``"auto"`` (compiled on CUDA, eager elsewhere), ``"compile"`` (compiled on any
            device; inductor needs a C++ compiler on CPU) or ``"eager"``.

    Returns:
        :data:`COMPILED` or :data:`EAGER`.
    """
    check_mode(mode)
    if mode == "compile" or (mode == "auto" and torch.device(device).type == "cuda"):
        return COMPILED
    return EAGER
