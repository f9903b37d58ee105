"""One optimisation update: gradient accumulation over micro-batches, DDP, AMP, clipping.

The loss of every micro-batch is scaled by ``world_size / global_tokens`` (DDP averages the
gradients over ranks), so the update's gradient is that of the summed loss over the *whole*
update divided by its target-token count, whatever the accumulation and the number of ranks.
Gradients are all-reduced once, after the last micro-batch (``no_sync`` before it). With fp16 a
``GradScaler`` scales the loss; gradients are unscaled before clipping, so clipping always acts on
the true float32 gradients. A non-finite gradient norm skips the optimizer step (with a warning).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

from seq2seq.data import Batch
from seq2seq.runtime import autocast

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Updater:
    """What an update needs: the (possibly DDP-wrapped) model and its optimisation state
    (built from keyword arguments only).

    Attributes:
        ddp: the model to call (DDP wrapper or the model itself).
        model: the bare model (its parameters are clipped).
        optimizer, schedule: stepped once per update.
        scaler: fp16 ``GradScaler`` or None.
        device: where the batches are.
        amp_dtype: autocast dtype (None = fp32).
        world_size, distributed: DDP ranks, and whether DDP is on.
        label_smoothing, clip_norm: loss and clipping settings (``clip_norm <= 0``: no clip).
    """

    ddp: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: object
    scaler: torch.amp.GradScaler | None
    device: torch.device
    amp_dtype: torch.dtype | None
    world_size: int
    distributed: bool
    label_smoothing: float
    clip_norm: float

    def __call__(self, batches: list[Batch], global_tokens: int,
                 step: int) -> dict[str, torch.Tensor]:
        """One update from this rank's micro-batches.

        Args:
            batches: this rank's ``accum_steps`` micro-batches, on the device.
            global_tokens: target tokens of the update summed over micro-batches and ranks.
            step: updates done before this one (for the warning).

        Returns:
            Detached sums ``{"loss", "nll", "ntokens"}`` of this rank and the gradient norm.
        """
        scale = self.world_size / max(global_tokens, 1)  # DDP averages over ranks
        loss_sum = torch.zeros((), device=self.device)
        nll_sum = torch.zeros((), device=self.device)
        ntok = 0
        for i, b in enumerate(batches):
            last = i == len(batches) - 1
            no_sync = (self.ddp.no_sync() if self.distributed and not last
                       else contextlib.nullcontext())
            with no_sync:
                with autocast(self.device, self.amp_dtype):
                    out = self.ddp(b.src, b.src_len, b.tgt_in, b.tgt_out, self.label_smoothing)
                loss = out.loss * scale
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            loss_sum += out.loss.detach()
            nll_sum += out.nll
            ntok += out.ntokens
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        limit = self.clip_norm if self.clip_norm > 0 else float("inf")
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), limit)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif torch.isfinite(gnorm):
            self.optimizer.step()
        else:
            log.warning("non-finite gradient norm at update %d: update skipped", step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        return {"loss": loss_sum, "nll": nll_sum, "ntokens": torch.tensor(float(ntok)),
                "gnorm": gnorm.detach()}


__all__ = ["Updater"]
