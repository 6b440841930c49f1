"""Multi-process training on torch.distributed (issue 10): ``torchrun --nproc_per_node=N -m tgir
train CONFIG --out RUN`` runs DDP with gloo on CPU and NCCL on GPUs, one process per device.

Every rank draws the same global batch (the sampler is seeded by (seed, step), as in one
process) and keeps its contiguous share (``part``), so N processes see exactly the batches one
process would; the batch-based losses gather the embeddings of all shares, with gradients
(``models.losses.gather_global``), so they are computed over the global batch. Only rank 0
logs, validates and writes checkpoints. BatchNorm statistics stay per process on CPU (PyTorch's
SyncBatchNorm is GPU-only); on GPUs BatchNorm is converted to SyncBatchNorm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from tgir import TgirError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def from_env() -> DistInfo:
    """The torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK); one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world,
                    int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (no-op for one process) and pick this
    rank's device: ``cuda:LOCAL_RANK`` when the run is on CUDA, else the CPU."""
    info = from_env()
    if not info.enabled:
        return info, device
    if not dist.is_available():  # pragma: no cover - CPU wheels ship torch.distributed
        raise TgirError("this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def part(indices: np.ndarray, share: tuple[int, int]) -> np.ndarray:
    """Rank ``share[0]``'s contiguous part of a global batch of ``share[1]`` parts."""
    rank, world = share
    return np.array_split(np.asarray(indices), world)[rank] if world > 1 else indices


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. 'the run directory is usable')."""
    if not info.enabled:
        return flag
    t = torch.tensor([int(flag)])
    dist.broadcast(t, 0)
    return bool(t.item())


class LossModule(torch.nn.Module):
    """``forward(batch) = model.loss(batch)``, so DistributedDataParallel's hooks see the
    models' loss computation (they expose ``loss``, not ``forward``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> dict:
        return self.model.loss(batch)


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """The module whose call computes the loss: DDP around ``LossModule`` when distributed."""
    module = LossModule(model)
    if not info.enabled:
        return module
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
