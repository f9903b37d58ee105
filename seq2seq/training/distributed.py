"""DistributedDataParallel plumbing: process-group setup/teardown and small collectives.

``torchrun`` (or any launcher using the ``env://`` rendezvous) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and
joins the group with ``nccl`` on CUDA and ``gloo`` on CPU. Without those variables everything
degrades to a single process (world size 1) and every helper is a cheap no-op, so the trainer
calls them unconditionally.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 is the main process that writes files).
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def env_context() -> DistContext:
    """Rank/world size from the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    Returns:
        The context; rank 0 of 1 when the variables are absent.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return DistContext(rank=rank, world_size=world, local_rank=local)


def init_distributed(device_type: str, timeout_minutes: float = 60.0) -> DistContext:
    """Join the process group when launched with more than one process.

    Args:
        device_type: ``"cuda"`` (backend ``nccl``, and the current device becomes
            ``cuda:LOCAL_RANK``) or ``"cpu"`` (backend ``gloo``).
        timeout_minutes: collective timeout (validation on rank 0 keeps the others waiting).

    Returns:
        The context (world size 1 without a launcher).
    """
    ctx = env_context()
    if not ctx.enabled or dist.is_initialized():
        return ctx
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        rank=ctx.rank,
        world_size=ctx.world_size,
        timeout=_dt.timedelta(minutes=timeout_minutes),
    )
    return ctx


def destroy() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over all ranks in place (no-op for one process).

    Args:
        t: tensor on the backend's device.
        ctx: the job context.

    Returns:
        ``t`` (now holding the global sum).
    """
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Send a picklable object from rank ``src`` to every rank.

    Args:
        obj: the value on ``src`` (ignored elsewhere).
        ctx: the job context.
        src: sending rank.

    Returns:
        ``src``'s object on every rank.
    """
    if not ctx.enabled:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Collect one picklable object per rank, in rank order, on every rank.

    Args:
        obj: this rank's value.
        ctx: the job context.

    Returns:
        ``[obj_rank0, obj_rank1, ...]`` (``[obj]`` for one process).
    """
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for one process)."""
    if ctx.enabled:
        dist.barrier()
