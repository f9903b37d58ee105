"""Converters between ``torch.nn.LSTM``/``GRU``/``RNN`` and the fused modules.

The fused modules use PyTorch's parameter names, shapes and gate order, so state dicts convert
exactly (bit for bit). These helpers validate that and build one module from the other.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .modules import FusedGRU, FusedLSTM, FusedRNN, _FusedRNNBase

_PAIRS: tuple[tuple[type[nn.RNNBase], type[_FusedRNNBase]], ...] = (
    (nn.LSTM, FusedLSTM),
    (nn.GRU, FusedGRU),
    (nn.RNN, FusedRNN),
)


def _check_native(module: nn.RNNBase) -> None:
    """Reject native configurations the fused core does not implement."""
    if getattr(module, "proj_size", 0):
        raise ValueError("proj_size > 0 (projected LSTM) is not supported by the fused core")


def _copy_state(src: Mapping[str, Tensor], dst: nn.Module) -> None:
    """Load ``src`` into ``dst`` requiring exactly the same keys and shapes."""
    own = dst.state_dict()
    missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
    if missing or extra:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {extra}")
    for key, value in src.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"{key}: shape {tuple(value.shape)} does not match {tuple(own[key].shape)}"
            )
    dst.load_state_dict(dict(src), strict=True)


def _rebuild_as(cls: type[nn.Module], module: nn.Module) -> nn.Module:
    """A ``cls`` with ``module``'s configuration, device, dtype, weights and train/eval mode."""
    ref = module.weight_ih_l0
    extra = {"nonlinearity": module.nonlinearity} if hasattr(module, "nonlinearity") else {}
    out = cls(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        batch_first=module.batch_first,
        dropout=module.dropout,
        device=ref.device,
        dtype=ref.dtype,
        bias=module.bias,
        **extra,
    )
    with torch.no_grad():
        _copy_state(module.state_dict(), out)
    return out.train(module.training)


def from_torch(module: nn.LSTM | nn.GRU | nn.RNN) -> FusedLSTM | FusedGRU | FusedRNN:
    """Build a fused module with the same configuration and weights as a native one.

    Args:
        module: a ``torch.nn.LSTM`` (no projection), ``torch.nn.GRU`` or ``torch.nn.RNN``.

    Returns:
        ``FusedLSTM``/``FusedGRU``/``FusedRNN`` on the same device and dtype, in the same
        train/eval mode (``bias`` and ``nonlinearity`` as the native one).

    Raises:
        TypeError: for other module types.
        ValueError: for unsupported options (``proj_size``).
    """
    fused = next((f for n, f in _PAIRS if type(module) is n), None)
    if fused is None:
        raise TypeError(f"expected nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}")
    _check_native(module)
    return _rebuild_as(fused, module)


def to_torch(module: FusedLSTM | FusedGRU | FusedRNN) -> nn.LSTM | nn.GRU | nn.RNN:
    """Build a native ``torch.nn.LSTM``/``GRU``/``RNN`` with the same configuration and weights.

    Args:
        module: a ``FusedLSTM``, ``FusedGRU`` or ``FusedRNN``.

    Returns:
        The native module on the same device and dtype, in the same train/eval mode.

    Raises:
        TypeError: for other module types.
    """
    native = next((n for n, f in _PAIRS if type(module) is f), None)
    if native is None:
        raise TypeError(f"expected FusedLSTM, FusedGRU or FusedRNN, got "
                        f"{type(module).__name__}")
    return _rebuild_as(native, module)


def state_dict_from_torch(state: Mapping[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """Convert a native LSTM/GRU/RNN state dict to fused-module keys.

    Args:
        state: state dict of ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (keys like ``weight_ih_l0``), possibly
            nested in a larger model's dict.
        prefix: key prefix of the recurrent module inside ``state`` (e.g. ``"encoder.rnn."``);
            only keys under it are converted, with the prefix kept.

    Returns:
        A new dict with the same keys and the same tensors (the layouts are identical).

    Raises:
        ValueError: for projection weights (``weight_hr_*``) the fused core does not have.
    """
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name.startswith("weight_hr"):
            raise ValueError(f"{key}: projected LSTMs are not supported by the fused core")
        out[key] = value
    return out


def state_dict_to_torch(state: Mapping[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """Convert a fused-module state dict to native ``nn.LSTM``/``nn.GRU`` keys.

    Args:
        state: state dict of ``FusedLSTM``/``FusedGRU``, possibly nested in a larger dict.
        prefix: key prefix of the recurrent module inside ``state``.

    Returns:
        A new dict with the same keys and tensors (the layouts are identical).
    """
    return {k: v for k, v in state.items() if k.startswith(prefix)}
