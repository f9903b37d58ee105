"""Dropout whose mask comes from uniform draws: ``torch.nn.functional.dropout``'s distribution,
cheaper on the CPU.

On the CPU ``F.dropout`` draws its mask with ``bernoulli_``, which costs about twice as much as
drawing ``torch.rand`` and comparing it with ``p`` (benchmarks/README.md, "Reused loss buffers,
one exponential, a uniform-draw dropout mask"). Each element is kept with probability ``1 - p``
(to the 2^-24 resolution of float32 uniforms) and scaled by ``1 / (1 - p)``; the backward
multiplies by the same mask. Other devices keep
``F.dropout`` (CUDA fuses the mask into one kernel). Draws come from the default generator, so a
seeded run repeats and a resumed run continues its random stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``x`` with each element zeroed with probability ``p`` and the rest scaled by
    ``1 / (1 - p)`` when ``training``; ``x`` itself otherwise. Any shape; same shape out."""
    if not training or p == 0.0:
        return x
    if p >= 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    keep = torch.rand(x.shape, device=x.device) >= p  # same shape as x, bool
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """``torch.nn.Dropout`` on :func:`dropout` (no parameters, so state dicts are unchanged)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
