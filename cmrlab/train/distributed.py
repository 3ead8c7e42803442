"""Multi-GPU training with DistributedDataParallel, launched by ``torchrun`` only.

::

    # train.py
    from cmrlab.train import Trainer, init_distributed, resumable_loader
    info = init_distributed()                       # reads RANK / WORLD_SIZE / LOCAL_RANK
    loader = resumable_loader(dataset, batch_size=3, seed=0)   # splits the data over the ranks
    Trainer(model, loss, opt, train_loader=loader, device=info.device, max_epochs=50,
            checkpoint_dir="runs/ch5").fit()

    $ torchrun --standalone --nproc_per_node=4 train.py

Each process trains a copy of the model on its share of every batch; DDP averages the gradients
over the processes after each backward pass, so the copies stay identical and one step equals a
step on the union of the processes' batches (for a mean loss, equal local batch sizes, and a model
without batch normalisation, whose statistics stay per process). The :class:`~cmrlab.train.Trainer`
wraps the model in DDP when a process group is running, sums its metrics over the processes, and
writes checkpoints, CSV files and progress bars on rank 0 only.

Run without ``torchrun`` (no ``WORLD_SIZE`` in the environment), :func:`init_distributed` starts
nothing and returns rank 0 of 1, so the same script runs on one device.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cmrlab.config import select_device
from cmrlab.errors import ConfigError

__all__ = [
    "DistributedInfo",
    "all_reduce_sum",
    "barrier",
    "cleanup_distributed",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
]


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its machine, the
    torch ``device`` it trains on and the ``backend`` (``None`` when not distributed)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files."""
        return self.rank == 0


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def init_distributed(backend: str | None = None) -> DistributedInfo:
    """Join the process group that ``torchrun`` set up, or run alone.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``). With a world size
    above 1 it initialises ``torch.distributed`` (``env://``) with ``backend`` — default
    ``"nccl"`` when CUDA is available, else ``"gloo"`` — and, on CUDA, makes ``cuda:LOCAL_RANK``
    this process's device. Without these variables (a plain ``python train.py``) nothing is
    initialised and the device is :func:`cmrlab.config.select_device`'s choice. Calling it again
    once initialised returns the same answer.
    """
    world = _env_int("WORLD_SIZE")
    rank = _env_int("RANK")
    local = _env_int("LOCAL_RANK")
    if world is None or world <= 1:
        return DistributedInfo(0, 1, 0, select_device(), None)
    if rank is None:
        raise ConfigError("WORLD_SIZE is set but RANK is not: launch the script with torchrun")
    local = rank if local is None else local
    cuda = torch.cuda.is_available()
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if backend not in ("nccl", "gloo", "mpi"):
        raise ConfigError(f"backend must be 'nccl', 'gloo' or 'mpi', got {backend!r}")
    if backend == "nccl" and not cuda:
        raise ConfigError("backend 'nccl' needs CUDA; use 'gloo' on the CPU")
    if cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA "
                              "device(s) exist: lower --nproc_per_node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return DistributedInfo(dist.get_rank(), dist.get_world_size(), local, device,
                           dist.get_backend())


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the process that writes files and logs."""
    return get_rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (``tensor`` itself when not distributed).

    The input is not modified. With the ``nccl`` backend the tensor must be on this process's
    GPU; the Trainer keeps its sums on its device.
    """
    if not is_distributed():
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def barrier() -> None:
    """Wait until every process gets here (nothing when not distributed)."""
    if is_distributed():
        dist.barrier()


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
