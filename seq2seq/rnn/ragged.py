"""Ragged (variable-length) batches without PackedSequence.

A batch is time-major ``(T, B, ...)``; sequence ``b`` has ``lengths[b]`` real steps followed by
padding. The recurrent kernels run every sequence for ``T`` steps in *aligned time*: the forward
direction in natural order, the reverse direction with each sequence reversed on its own
(``t -> len_b - 1 - t`` for ``t < len_b``; padded steps stay in place), so that both directions
see the real steps first and the padding last. Padded steps therefore can never reach a real
step, the final state of sequence ``b`` is the state after its step ``len_b - 1``, and the
gradients of padded steps are exactly zero.

:class:`Ragged` holds the index tensors for one batch and implements the few gather/scatter
operations the kernels need.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class Ragged:
    """Index bookkeeping for a time-major batch of variable-length sequences.

    Args:
        lengths: ``(B,)`` integer lengths (any device, or a Python sequence), or ``None`` when
            every sequence has ``T`` real steps.
        steps: padded time length ``T``.
        batch: batch size ``B``.
        device: device of the batch.

    Raises:
        ValueError: when ``lengths`` has the wrong shape or a length is outside ``[1, T]``.
    """

    def __init__(
        self,
        lengths: Tensor | Sequence[int] | None,
        steps: int,
        batch: int,
        device: torch.device,
    ) -> None:
        self.steps = steps
        self.batch = batch
        self.full = True
        self.lengths: Tensor | None = None  # (B,) long on device
        self.index: Tensor | None = None  # (T, B) long, per-sequence time reversal
        self.pad: Tensor | None = None  # (T, B, 1) bool, True on padded steps
        self._last_rows: dict[int, Tensor] = {}  # step -> rows whose last real step it is
        self._flat_reverse: Tensor | None = None  # (T*B,) see flat_reverse_index
        if lengths is None:
            return
        cpu = torch.as_tensor(lengths).detach().to("cpu")
        if cpu.dim() != 1 or cpu.numel() != batch:
            raise ValueError(f"lengths must have shape ({batch},), got {tuple(cpu.shape)}")
        if cpu.dtype.is_floating_point or cpu.dtype == torch.bool:
            raise ValueError(f"lengths must be an integer tensor, got {cpu.dtype}")
        cpu = cpu.long()
        if batch and (int(cpu.min()) < 1 or int(cpu.max()) > steps):
            raise ValueError(
                f"lengths must lie in [1, {steps}] (the time dimension), "
                f"got min {int(cpu.min())}, max {int(cpu.max())}"
            )
        if batch == 0 or bool((cpu == steps).all()):
            return
        self.full = False
        t = torch.arange(steps).unsqueeze(1)  # (T, 1)
        lens = cpu.unsqueeze(0)  # (1, B)
        index = torch.where(t < lens, lens - 1 - t, t)  # (T, B)
        self.lengths = cpu.to(device)
        self.index = index.to(device)
        self.pad = (t >= lens).unsqueeze(-1).to(device)  # (T, B, 1)
        for step in torch.unique(cpu - 1).tolist():
            rows = torch.nonzero(cpu - 1 == step).flatten()  # (n,)
            self._last_rows[int(step)] = rows.to(device)

    def reverse(self, x: Tensor) -> Tensor:
        """Reverse every sequence in time on its own (an involution).

        Args:
            x: ``(T, B, F)`` time-major tensor.

        Returns:
            ``(T, B, F)`` tensor with ``out[t, b] = x[len_b - 1 - t, b]`` for ``t < len_b`` and
            ``out[t, b] = x[t, b]`` on padded steps.
        """
        if self.full:
            return x.flip(0)
        index = self.index.unsqueeze(-1).expand(-1, -1, x.shape[-1])  # (T, B, F)
        return torch.gather(x, 0, index)

    def zero_padding_(self, x: Tensor) -> Tensor:
        """Zero the padded steps of ``x`` in place.

        Args:
            x: ``(..., T, B, F)`` tensor (leading dims broadcast).

        Returns:
            ``x``.
        """
        if not self.full:
            x.masked_fill_(self.pad, 0.0)
        return x

    def outputs(self, states: Tensor) -> Tensor:
        """A layer's output in natural time from its states in aligned time.

        Args:
            states: ``(D, T + 1, B, H)`` states, ``states[:, 0]`` the initial one.

        Returns:
            ``(T, B, D*H)`` forward (and reverse) outputs concatenated, zero on padded steps.
        """
        nd, hid = states.shape[0], states.shape[-1]
        y = states.new_empty(self.steps, self.batch, nd * hid)  # (T, B, D*H)
        y[..., :hid] = states[0, 1:]
        if nd == 2:
            y[..., hid:] = self.reverse(states[1, 1:])
        return self.zero_padding_(y)

    def final(self, states: Tensor) -> Tensor:
        """Pick each sequence's state after its own last real step.

        Args:
            states: ``(D, T + 1, B, H)`` states in aligned time, ``states[:, 0]`` the initial one.

        Returns:
            ``(D, B, H)`` final states.
        """
        if self.full:
            return states[:, self.steps].clone()
        rows = torch.arange(self.batch, device=states.device)  # (B,)
        return states[:, self.lengths, rows]

    def inject_final_grad_(self, grads: Tensor, grad_final: Tensor) -> None:
        """Add the gradient of the final states at each sequence's last real step.

        Args:
            grads: ``(D, T, B, H)`` per-step state gradients in aligned time (modified in place).
            grad_final: ``(D, B, H)`` gradient of the final states.
        """
        if self.full:
            grads[:, self.steps - 1] += grad_final
            return
        rows = torch.arange(self.batch, device=grads.device)  # (B,)
        grads[:, self.lengths - 1, rows] += grad_final

    def project_inputs(self, x: Tensor, w_ih: Sequence[Tensor], biases: Sequence[Tensor],
                       out: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """Hoisted input projection of a layer: one GEMM per direction over all steps.

        Args:
            x: ``(T, B, I)`` layer input.
            w_ih: per direction ``(G, I)`` input weights.
            biases: per direction ``(G,)`` bias added to the projection.
            out: optional contiguous ``(D, T, B, G)`` buffer for the projections.

        Returns:
            The aligned-time inputs (``D`` tensors ``(T, B, I)``; the reverse direction's is
            reversed per sequence, kept for the weight gradients) and the projections
            ``(D, T, B, G)``.
        """
        nd, (steps, batch, isize) = len(w_ih), x.shape
        x = x.contiguous()
        xs = [x] if nd == 1 else [x, self.reverse(x)]  # each (T, B, I), aligned time
        size = w_ih[0].shape[0]
        gates = x.new_empty(nd, steps, batch, size) if out is None else out  # (D, T, B, G)
        for d in range(nd):
            torch.addmm(biases[d], xs[d].view(steps * batch, isize), w_ih[d].t(),
                        out=gates[d].view(steps * batch, size))
        return xs, gates

    def input_grad(self, grad_proj: Sequence[Tensor], w_ih: Sequence[Tensor],
                   scratch: Tensor | None = None) -> Tensor:
        """Gradient of the layer input from the projections' gradients (one GEMM per direction).

        The reverse direction's share is added row by row at its natural-time position
        (``index_add_``), without building a reversed copy.

        Args:
            grad_proj: per direction ``(T*B, G)`` gradient of the input projection, aligned time.
            w_ih: per direction ``(G, I)`` input weights.
            scratch: optional ``(T*B, I)`` buffer for the reverse direction's share.

        Returns:
            ``(T, B, I)`` gradient of the layer input in natural time.
        """
        isize = w_ih[0].shape[1]
        dx = grad_proj[0].mm(w_ih[0])  # (T*B, I)
        if len(grad_proj) == 2:
            back = torch.mm(grad_proj[1], w_ih[1], out=scratch)  # (T*B, I) aligned time
            dx.index_add_(0, self.flat_reverse_index(dx.device), back)
        return dx.view(self.steps, self.batch, isize)  # (T, B, I)

    def flat_reverse_index(self, device: torch.device) -> Tensor:
        """``(T*B,)`` row of ``(T*B, F)`` that aligned-time row ``t * B + b`` reverses to."""
        if self._flat_reverse is None:
            rows = torch.arange(self.batch, device=device)  # (B,)
            if self.full:
                time = torch.arange(self.steps - 1, -1, -1, device=device)[:, None]  # (T, 1)
            else:
                time = self.index.to(device)  # (T, B)
            self._flat_reverse = (time * self.batch + rows).reshape(-1)  # (T*B,)
        return self._flat_reverse

    def state_grads(self, grad_y: Tensor | None, grad_final: Tensor | None, like: Tensor,
                    directions: int, hid: int, out: Tensor | None = None) -> Tensor:
        """Per-step hidden-state gradients of a layer in aligned time, for its backward pass.

        Args:
            grad_y: ``(T, B, D*H)`` gradient of the layer output (``None`` if unused).
            grad_final: ``(D, B, H)`` gradient of the final hidden states (``None`` if unused).
            like: tensor whose dtype/device the result takes.
            directions: ``D``.
            hid: hidden size ``H``.
            out: optional ``(D, T, B, H)`` buffer to fill (any previous content is overwritten).

        Returns:
            ``(D, T, B, H)`` gradients; the reverse direction is in its own (reversed) time,
            padded steps get only what flows back from later real steps.
        """
        shape = (directions, self.steps, self.batch, hid)
        if grad_y is None:
            dh = like.new_zeros(shape) if out is None else out.zero_()  # (D, T, B, H)
        else:
            dh = like.new_empty(shape) if out is None else out  # (D, T, B, H) filled below
            dh[0] = grad_y[..., :hid]
            if directions == 2:
                dh[1] = self.reverse(grad_y[..., hid:])
            self.zero_padding_(dh)
        if grad_final is not None:
            self.inject_final_grad_(dh, grad_final)
        return dh

    def last_rows(self, step: int) -> Tensor | slice | None:
        """Rows whose last real step is ``step`` (``None`` if there are none).

        Args:
            step: aligned time step.

        Returns:
            ``(n,)`` long row indices on the batch device, ``slice(None)`` for all rows, or
            ``None``.
        """
        if self.full:
            return slice(None) if step == self.steps - 1 else None
        return self._last_rows.get(step)
