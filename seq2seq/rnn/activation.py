"""``tanh`` for the recurrent core and the models: float32 on the CPU through the sigmoid.

PyTorch's float32 ``tanh`` on the CPU (a 1-ulp SLEEF kernel) costs several times its
``sigmoid``. The identity ``tanh(x) = 2 sigmoid(2x) - 1`` costs three cheap passes instead
(``x *= 2``, ``sigmoid_``, ``-1 + 2 x``); timings in benchmarks/README.md. Its absolute error
stays within 3e-7 over the whole float32 line (PyTorch's: 5e-8), below the rounding of a
float32 GEMM over a few hundred terms; ``±inf`` map to ``±1`` and NaN stays NaN.

Every other dtype and device (bfloat16, where ``tanh`` is cheaper and the identity's
cancellation near 0 would cost bits; float64 for gradcheck; CUDA) runs ``torch.tanh`` itself.
The choice depends only on dtype and device, never on what the CPU happens to support.
Imports only torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MINUS_ONE = torch.tensor(-1.0)  # float32, CPU: the only place the identity runs


def _via_sigmoid(x: Tensor) -> bool:
    """True where the identity is used: float32 on the CPU."""
    return x.dtype == torch.float32 and x.device.type == "cpu"


def _sigmoid_form_(y: Tensor) -> Tensor:
    """``y = 2 sigmoid(y) - 1`` in place, for a float32 CPU ``y`` already doubled."""
    y.sigmoid_()
    return torch.add(_MINUS_ONE, y, alpha=2.0, out=y)


def tanh_(x: Tensor) -> Tensor:
    """``tanh`` in place (any shape and strides); returns ``x``. Not for autograd leaves."""
    if not _via_sigmoid(x):
        return x.tanh_()
    return _sigmoid_form_(x.mul_(2.0))


class _Tanh(torch.autograd.Function):
    """The identity's forward with ``tanh``'s own backward ``grad * (1 - y^2)``."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = _sigmoid_form_(torch.mul(x, 2.0))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def tanh(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``tanh`` out of place; differentiable when ``out`` is not given.

    Args:
        x: any shape.
        out: optional result tensor of ``x``'s shape and dtype (no autograd through it).

    Returns:
        ``tanh(x)``, in ``out`` when given.
    """
    if not _via_sigmoid(x):
        return torch.tanh(x, out=out)
    if out is not None:
        return _sigmoid_form_(torch.mul(x, 2.0, out=out))
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return _sigmoid_form_(torch.mul(x, 2.0))


__all__ = ["tanh", "tanh_"]
