"""``FusedLSTM``, ``FusedGRU``, ``FusedRNN``: drop-in replacements for ``torch.nn.LSTM``/``GRU``/
``RNN``.

Same constructor arguments (``bias=False`` included), parameter names (``weight_ih_l0``,
``weight_hh_l0_reverse``, ``bias_ih_l0``, ...), shapes, initialisation and state ordering as
PyTorch, so a native state dict loads directly. Variable-length batches take a ``lengths`` tensor instead of a
PackedSequence. ``fused_pointwise`` picks the per-step gate math (:mod:`seq2seq.rnn.pointwise`):
``"auto"`` fuses it with ``torch.compile`` on CUDA and runs the in-place eager ops elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import dropout
from .elman import NONLINEARITIES, rnn_layer
from .gru import gru_layer
from .lstm import lstm_layer
from .pointwise import check_mode
from .ragged import Ragged


class _FusedRNNBase(nn.Module):
    """Shared parameters and layer stacking of :class:`FusedLSTM`, :class:`FusedGRU` and
    :class:`FusedRNN`."""

    gates = 0  # 4 for LSTM, 3 for GRU, 1 for the Elman RNN

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
        fused_pointwise: str = "auto",
    ) -> None:
        super().__init__()
        self.fused_pointwise = check_mode(fused_pointwise)
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError("input_size, hidden_size and num_layers must be positive")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bias = bool(bias)
        self.num_directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        gate_size = self.gates * hidden_size
        self._weight_names: list[list[str | None]] = []  # per layer: 4 * D names, kernel order
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.num_directions
            names = []
            for d in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = {
                    "weight_ih": (gate_size, layer_in),
                    "weight_hh": (gate_size, hidden_size),
                    "bias_ih": (gate_size,),
                    "bias_hh": (gate_size,),
                }
                for base, shape in shapes.items():
                    if base.startswith("bias") and not bias:
                        names.append(None)  # the kernels get zeros
                        continue
                    self.register_parameter(base + sfx, nn.Parameter(torch.empty(shape, **kw)))
                    names.append(base + sfx)
            self._weight_names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every parameter ``U(-1/sqrt(H), 1/sqrt(H))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, layer: int) -> list[Tensor]:
        """Parameters of one layer in kernel order.

        Args:
            layer: layer index.

        Returns:
            ``4 * D`` tensors: per direction ``weight_ih, weight_hh, bias_ih, bias_hh`` (zeros
            when ``bias=False``).
        """
        ws = [getattr(self, n) if n else None for n in self._weight_names[layer]]
        if self.bias:
            return ws
        zero = ws[1].new_zeros(ws[1].shape[0])  # (G,)
        return [zero if w is None else w for w in ws]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if not self.bias:
            s += ", bias=False"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.fused_pointwise != "auto":
            s += f", fused_pointwise={self.fused_pointwise!r}"
        return s

    def _prepare(
        self, x: Tensor, lengths: Tensor | Sequence[int] | None
    ) -> tuple[Tensor, Ragged, int, torch.dtype]:
        """Validate, go time-major, trim trailing all-padding steps, cast under autocast."""
        if x.dim() != 3:
            raise ValueError(f"expected a 3-D input (batched), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features, expected {self.input_size}")
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError("input has no time steps")
        ragged = Ragged(lengths, steps, batch, x.device)
        if not ragged.full:
            used = int(ragged.lengths.max())
            if used < steps:
                x = x[:used]  # (T', B, I) steps past every length do nothing
                ragged = Ragged(ragged.lengths, used, batch, x.device)
        dtype = self.weight_ih_l0.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        return x.to(dtype), ragged, steps, dtype

    def _init_state(self, x: Tensor, state: Tensor | None, dtype: torch.dtype) -> Tensor:
        """Zero initial state or a validated ``(L*D, B, H)`` one."""
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        if state is None:
            return x.new_zeros(shape, dtype=dtype)
        if tuple(state.shape) != shape:
            raise ValueError(f"initial state must have shape {shape}, got {tuple(state.shape)}")
        return state.to(dtype)

    def _run(self, x: Tensor, lengths, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Stack the layers. ``states`` are ``(L*D, B, H)`` initial states (h, or h and c)."""
        x, ragged, full_steps, dtype = self._prepare(x, lengths)
        states = [self._init_state(x, s, dtype) for s in states]
        nd = self.num_directions
        finals: list[list[Tensor]] = [[] for _ in states]
        with torch.autocast(x.device.type, enabled=False):
            for layer in range(self.num_layers):
                if layer > 0 and self.dropout > 0.0 and self.training:
                    x = dropout(x, self.dropout)  # (T, B, D*H)
                weights = [w.to(dtype) for w in self.layer_weights(layer)]
                init = [s[layer * nd : (layer + 1) * nd] for s in states]  # each (D, B, H)
                x, *last = self._layer(x, init, ragged, weights)  # (T, B, D*H)
                for acc, s in zip(finals, last, strict=True):
                    acc.append(s)
        if x.shape[0] < full_steps:
            x = F.pad(x, (0, 0, 0, 0, 0, full_steps - x.shape[0]))  # (T, B, D*H)
        if self.batch_first:
            x = x.transpose(0, 1)  # (B, T, D*H)
        return x, [torch.cat(acc, 0) for acc in finals]  # each (L*D, B, H)

    def _layer(self, x, init, ragged, weights):  # pragma: no cover - abstract
        raise NotImplementedError


class FusedLSTM(_FusedRNNBase):
    """Multi-layer (bi)directional LSTM on the fused core, interchangeable with ``nn.LSTM``.

    Args:
        input_size: features of the input ``I``.
        hidden_size: features of the hidden state ``H``.
        num_layers: stacked layers ``L``.
        bidirectional: run a reverse direction too (``D = 2``).
        batch_first: input/output are ``(B, T, .)`` instead of ``(T, B, .)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        device: parameter device.
        dtype: parameter dtype.
        bias: with ``b_ih``/``b_hh`` (keyword only; ``False`` as in ``torch.nn``).
        fused_pointwise: per-step gate math (keyword only): ``"auto"`` (``torch.compile``-fused
            on CUDA, in-place eager elsewhere), ``"compile"`` (fused on any device) or
            ``"eager"``.
    """

    gates = 4

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | Sequence[int] | None = None,
        hx: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM.

        Args:
            x: ``(T, B, I)`` input (``(B, T, I)`` if ``batch_first``), padded after each
                sequence's length.
            lengths: ``(B,)`` integer lengths in ``[1, T]`` (CPU or device), or ``None``.
            hx: optional ``(h0, c0)``, each ``(L*D, B, H)``.

        Returns:
            ``output (T, B, D*H)`` (zero at padded steps; ``(B, T, D*H)`` if batch_first) and
            ``(h_n, c_n)``, each ``(L*D, B, H)``, the state at each sequence's own length,
            ordered like PyTorch (layer-major, forward direction first).
        """
        states = [None, None] if hx is None else list(hx)
        y, (h_n, c_n) = self._run(x, lengths, states)
        return y, (h_n, c_n)

    def _layer(self, x, init, ragged, weights):
        h0, c0 = init
        return lstm_layer(x, h0, c0, ragged, weights, fused_pointwise=self.fused_pointwise)


class _HiddenStateRNN(_FusedRNNBase):
    """A stacked RNN whose only state is ``h`` (GRU, Elman): the shared ``forward``."""

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | Sequence[int] | None = None,
        hx: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Run the RNN.

        Args:
            x: ``(T, B, I)`` input (``(B, T, I)`` if ``batch_first``), padded after each
                sequence's length.
            lengths: ``(B,)`` integer lengths in ``[1, T]`` (CPU or device), or ``None``.
            hx: optional ``h0`` of shape ``(L*D, B, H)``.

        Returns:
            ``output (T, B, D*H)`` (zero at padded steps; ``(B, T, D*H)`` if batch_first) and
            ``h_n (L*D, B, H)``, the state at each sequence's own length, ordered like PyTorch.
        """
        y, (h_n,) = self._run(x, lengths, [hx])
        return y, h_n


class FusedGRU(_HiddenStateRNN):
    """Multi-layer (bi)directional GRU on the fused core, interchangeable with ``nn.GRU``.

    Args:
        input_size: features of the input ``I``.
        hidden_size: features of the hidden state ``H``.
        num_layers: stacked layers ``L``.
        bidirectional: run a reverse direction too (``D = 2``).
        batch_first: input/output are ``(B, T, .)`` instead of ``(T, B, .)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        device: parameter device.
        dtype: parameter dtype.
        bias: with ``b_ih``/``b_hh`` (keyword only; ``False`` as in ``torch.nn``).
        fused_pointwise: per-step gate math (keyword only): ``"auto"`` (``torch.compile``-fused
            on CUDA, in-place eager elsewhere), ``"compile"`` (fused on any device) or
            ``"eager"``.
    """

    gates = 3

    def _layer(self, x, init, ragged, weights):
        return gru_layer(x, init[0], ragged, weights, fused_pointwise=self.fused_pointwise)


class FusedRNN(_HiddenStateRNN):
    """Multi-layer (bi)directional Elman RNN on the fused core, interchangeable with ``nn.RNN``.

    ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with ``act`` = ``tanh`` or ``relu``
    (:mod:`seq2seq.rnn.elman`).

    Args:
        input_size: features of the input ``I``.
        hidden_size: features of the hidden state ``H``.
        num_layers: stacked layers ``L``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: with ``b_ih``/``b_hh`` (as ``nn.RNN``).
        batch_first: input/output are ``(B, T, .)`` instead of ``(T, B, .)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        bidirectional: run a reverse direction too (``D = 2``).
        device: parameter device.
        dtype: parameter dtype.
        fused_pointwise: accepted for symmetry with the gated cells (keyword only); a step's
            pointwise work is one activation, so it always runs eagerly.
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fused_pointwise: str = "auto",
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {list(NONLINEARITIES)}, "
                             f"got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers=num_layers,
                         bidirectional=bidirectional, batch_first=batch_first, dropout=dropout,
                         device=device, dtype=dtype, bias=bias, fused_pointwise=fused_pointwise)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh"
                    else "")

    def _layer(self, x, init, ragged, weights):
        return rnn_layer(x, init[0], ragged, weights, nonlinearity=self.nonlinearity)
