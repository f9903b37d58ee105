"""Reusable scratch buffers for the fused layers on CPU (grow-only, one set per thread).

A fresh large CPU tensor is expensive before it is even used: glibc returns blocks above its
mmap threshold (at most 32 MiB) to the kernel when they are freed, so the next call's buffer is
page-faulted in again on first touch, which costs several times the refill of a reused buffer
(timings in benchmarks/README.md). The gate buffer of one LSTM layer at the translation shape
alone is 52 MiB.

Buffers that never leave a call (the gate and state gradients inside a backward pass, and every
forward buffer when nothing will call backward) are therefore taken from here: one flat buffer
per thread, name, dtype and inference mode, grown when a call needs more and kept for the next
call. A name is handed out again by the next request for it, so a caller must be done with a
buffer before it asks for the same name again, and must never return it (or a view of it) to its
own caller.
Off the CPU (CUDA has a caching allocator) :func:`buffer` simply allocates.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

_LOCAL = threading.local()


def buffer(name: str, shape: tuple[int, ...], like: Tensor, reuse: bool = True) -> Tensor:
    """An uninitialised contiguous tensor of ``shape`` with the dtype and device of ``like``.

    Args:
        name: slot name; buffers used at the same time need different names.
        shape: wanted shape.
        like: tensor whose dtype and device the buffer takes.
        reuse: ``False`` allocates a fresh tensor (for buffers that outlive the call).

    Returns:
        ``shape`` tensor; with ``reuse`` on CPU a view into this thread's cached storage.
    """
    if not reuse or like.device.type != "cpu":
        return like.new_empty(shape)
    pool: dict[tuple, Tensor] = _LOCAL.__dict__.setdefault("pool", {})
    n = math.prod(shape)
    # inference tensors cannot be written outside inference mode: separate slots per mode
    key = (name, like.dtype, torch.is_inference_mode_enabled())
    flat = pool.get(key)
    if flat is None or flat.numel() < n:
        flat = like.new_empty(n)
        pool[key] = flat
    return flat[:n].view(shape)


def backward_possible(*tensors: Tensor) -> bool:
    """Whether autograd will record an op on ``tensors`` (grad mode on and one requires grad)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def release() -> None:
    """Free this thread's cached buffers (they are rebuilt on the next call that needs them)."""
    _LOCAL.__dict__.pop("pool", None)


def cached_bytes() -> int:
    """Bytes held by this thread's cached buffers."""
    pool = _LOCAL.__dict__.get("pool", {})
    return sum(t.numel() * t.element_size() for t in pool.values())


__all__ = ["backward_possible", "buffer", "cached_bytes", "release"]
