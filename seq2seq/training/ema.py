"""Exponential moving average of the weights during training, with bias correction.

After update ``n`` the average is::

    avg_n = (1 - d) * sum_k d^(n-k) * theta_k / (1 - d^n)      (k = 1 .. n)

a weighted mean of every iterate so far (weights summing to 1), the recent ones weighted most:
the ``1 / (1 - d^n)`` correction (as in Adam's moment estimates) removes the pull towards the
zero start, so the average is usable after a few updates instead of ``~1 / (1 - d)`` of them.
The biased running sum is kept in float32 whatever the training precision (the optimizer's
master weights are float32 too) and updated with one fused ``lerp`` over all parameters.

The trainer validates with the average, writes it into ``best.pt`` (the bundle users translate
with), and keeps the raw weights, the optimizer and this state in ``last.pt`` for an exact resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """EMA of a model's floating-point parameters.

    Args:
        model: the model whose parameters are averaged (the bare module, not a DDP wrapper).
        decay: ``d`` in ``(0, 1)``; the average spans roughly the last ``1 / (1 - d)`` updates.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self._params = {n: p for n, p in model.named_parameters() if p.is_floating_point()}
        self._names = list(self._params)
        self._biased = [torch.zeros_like(p, dtype=torch.float32) for p in self._params.values()]

    def _live(self) -> list[torch.Tensor]:
        return [self._params[n].detach() for n in self._names]

    @torch.no_grad()
    def update(self) -> None:
        """Fold in the parameters as they are after an optimizer step."""
        self.updates += 1
        live = [p.float() for p in self._live()]  # no copy for float32 parameters
        torch._foreach_lerp_(self._biased, live, 1.0 - self.decay)

    def _correction(self) -> float:
        return 1.0 / (1.0 - self.decay ** self.updates)

    @torch.no_grad()
    def averaged(self) -> dict[str, torch.Tensor]:
        """The bias-corrected average per parameter name, in each parameter's dtype.

        Returns:
            ``{name: tensor}`` (the raw parameters before any update).
        """
        if self.updates == 0:
            return {n: p.detach().clone() for n, p in self._params.items()}
        c = self._correction()
        return {n: (b * c).to(self._params[n].dtype)
                for n, b in zip(self._names, self._biased, strict=True)}

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model holds the averaged weights; the raw ones come back after.

        Tied parameters are one tensor, so they are swapped once.
        """
        live = self._live()
        raw = [p.clone() for p in live]
        avg = self.averaged()
        with torch.no_grad():
            torch._foreach_copy_(live, [avg[n] for n in self._names])
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(live, raw)

    def state_dict(self) -> dict[str, Any]:
        """Plain data for ``train_state`` (loads with ``weights_only=True``)."""
        return {"decay": self.decay, "updates": self.updates,
                "biased": {n: b.detach().cpu().clone()
                           for n, b in zip(self._names, self._biased, strict=True)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the configured ``decay`` is kept).

        Raises:
            ValueError: when the parameter names differ from the model's.
        """
        biased = state["biased"]
        if sorted(biased) != sorted(self._names):
            raise ValueError("the checkpoint's weight average has other parameters than the "
                             "model")
        self.updates = int(state["updates"])
        with torch.no_grad():
            for n, b in zip(self._names, self._biased, strict=True):
                b.copy_(biased[n])


__all__ = ["WeightAverage"]
