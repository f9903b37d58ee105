"""Where and how a process computes: device, autocast precision, RNG state.

Used by training, the CLIs and the server alike (one device resolver). ``train.device`` and
``train.precision`` are resolved once, before any data is read, and fail with
a ``ValueError`` naming the key. :func:`rng_state` / :func:`set_rng_state` capture and restore
every random generator a training process draws from (torch CPU, the current CUDA device, Python's
``random``) as plain data, so a checkpoint can hold them and a resumed run continues with the same
dropout masks.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import torch

from seq2seq.config import Precision


def resolve_device(name: str | torch.device, key: str = "train.device") -> torch.device:
    """A device setting (``train.device``, ``device=`` of the CLIs and the server) -> device.

    Args:
        name: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        key: the setting's name, for the error message.

    Returns:
        The device (``"cuda"`` carries no index; the trainer picks the local rank's GPU under
        DDP).

    Raises:
        ValueError: an unknown name, or CUDA without a CUDA device.
    """
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":", 1)[0]
    if kind not in ("cpu", "cuda") or (kind == "cpu" and name != "cpu"):
        raise ValueError(f"{key} must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key}={name} but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"{key} must be 'auto', 'cpu' or 'cuda', got {name!r}") from err


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` has native bf16 matrix support.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: oneDNN's own check (AVX512-BF16 or AMX), not
    ``/proc/cpuinfo``: without it a bf16 GEMM is emulated and far slower than float32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_precision(name: Precision | str, device: torch.device,
                      key: str = "train.precision") -> torch.dtype | None:
    """A precision setting (``train.precision``, ``precision=`` of the CLIs and the server) ->
    the compute dtype.

    Args:
        name: ``"auto"`` (bf16 where :func:`native_bf16`, else fp16 on CUDA and fp32 on CPU),
            ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: where the model runs.
        key: the setting's name, for the error message.

    Returns:
        ``torch.bfloat16`` or ``torch.float16``, or None for fp32.

    Raises:
        ValueError: fp16 on CPU.
    """
    name = Precision(name)
    if name == Precision.auto:
        if native_bf16(device):
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else None
    table = {Precision.fp32: None, Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}
    if name == Precision.fp16 and device.type != "cuda":
        raise ValueError(f"{key}=fp16 needs CUDA; use bf16 or fp32 on CPU")
    return table[name]


def precision_reason(name: Precision | str, device: torch.device) -> str:
    """One line saying which precision :func:`resolve_precision` picks and why (logs, ``/info``)."""
    dtype = resolve_precision(name, device)
    chosen = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    if Precision(name) != Precision.auto:
        return f"{chosen} (precision={Precision(name).value})"
    what = "GPU" if device.type == "cuda" else "CPU"
    if native_bf16(device):
        return f"bf16 (auto: this {what} has native bf16 matrix support)"
    return f"{chosen} (auto: this {what} has no native bf16 matrix support)"


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on ``device``.

    Args:
        device: where the model runs.
        dtype: from :func:`resolve_precision`; None = fp32.

    Returns:
        ``torch.autocast(...)``, or a null context for fp32.
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as plain data (fit for a ``weights_only`` checkpoint).

    Args:
        device: the training device; the CUDA generator is captured only on CUDA.

    Returns:
        ``{"torch": uint8 tensor, "cuda": uint8 tensor | None, "python": [version, list, gauss]}``.
    """
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` captured.

    Args:
        state: a :func:`rng_state` result (tensors may sit on any device).
        device: the training device; the CUDA generator is restored only on CUDA.
    """
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
