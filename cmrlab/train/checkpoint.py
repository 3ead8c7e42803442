"""Checkpoints that survive a crash and resume a run exactly.

A checkpoint is a ``dict`` written with ``torch.save`` and read back with
``torch.load(weights_only=True)``: it may hold only tensors, numbers, strings, ``None``, and
lists, tuples and dicts of these. Nothing is pickled that could run code when loaded, so a
checkpoint from anywhere is safe to open.

::

    save_checkpoint("runs/unet/last.pt", {"model": model.state_dict(), "epoch": 3})
    state = load_checkpoint("runs/unet/last.pt")
    model.load_state_dict(state["model"])

:func:`save_checkpoint` writes a hidden temporary file next to the target, flushes it to disk and
renames it (``os.replace``), so a run killed while writing leaves the previous checkpoint intact.

For an **exact** resume two more things are kept:

* the random number generators (:func:`capture_rng_state` / :func:`restore_rng_state`): Python's
  ``random``, NumPy's global generator, torch's CPU generator and every CUDA generator, stored as
  tensors and plain numbers;
* the data order (:class:`ResumableRandomSampler`): the permutation of epoch ``e`` is drawn from
  its own generator seeded by ``(seed, e)``, and the sampler can start an epoch after its first
  ``k`` samples, so a run resumed in the middle of an epoch sees the same remaining batches.
"""
from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from cmrlab.checks import check_bool, check_int
from cmrlab.files import atomic_write
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "ResumableRandomSampler",
    "capture_rng_state",
    "check_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

_PLAIN = (bool, int, float, str, type(None))


def _plain(value: Any, where: str) -> Any:
    """``value`` checked (and NumPy scalars turned into Python numbers) for ``weights_only`` loading."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise ArgumentError(f"checkpoint state {where} has a key {key!r} of type "
                                    f"{type(key).__name__}: keys must be strings or integers")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise ArgumentError(
        f"checkpoint state {where} is a {type(value).__name__}: a checkpoint may hold only tensors, "
        "numbers, strings, None and lists/tuples/dicts of these (torch.load(weights_only=True))"
    )


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically and return the path.

    ``state`` must hold only tensors, numbers, strings, ``None`` and lists/tuples/dicts of these
    (:class:`~cmrlab.errors.ArgumentError` names the first entry that is not; NumPy scalars are
    turned into Python numbers). The data go to a hidden temporary file in the same folder, which
    is flushed to disk and then renamed over ``path``: a crash at any moment leaves either the old
    or the new checkpoint, never half of one. Tensors are saved where they are; load them with
    ``map_location`` (:func:`load_checkpoint` maps to the CPU).
    """
    if not isinstance(state, Mapping):
        raise ArgumentError(f"state must be a dict, got {type(state).__name__}")
    clean = _plain(state, "state")
    path = Path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(clean, f)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    Tensors are mapped to ``map_location`` (default the CPU; ``load_state_dict`` then copies them
    to the model's device). A missing, truncated or corrupt file, or one holding objects that
    ``weights_only`` loading refuses, raises :class:`~cmrlab.errors.FileFormatError` naming it.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "checkpoint not found")
    if path.is_dir():
        raise FileFormatError(path, "is a folder: give the checkpoint file (e.g. last.pt)")
    if path.stat().st_size == 0:
        raise FileFormatError(path, "checkpoint file is empty (the run was interrupted while "
                                    "creating it?)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure of torch.load means a bad file here
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            problem = ("holds objects that torch.load(weights_only=True) refuses to unpickle; "
                       "it was not written by cmrlab.train.save_checkpoint")
        else:
            problem = f"is truncated or not a torch checkpoint ({type(exc).__name__}: {text})"
        raise FileFormatError(path, problem) from None
    if not isinstance(state, dict):
        raise FileFormatError(path, f"holds a {type(state).__name__}, not a checkpoint dict")
    return state


# ----------------------------------------------------------------------------------------------
# Random number generators
# ----------------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """The state of every global random generator, as tensors and plain numbers.

    Keys: ``"python"`` (``random``: version, the 625 Mersenne-Twister words as an int64 tensor,
    the cached Gaussian or ``None``), ``"numpy"`` (``np.random``'s legacy global generator: the
    624 words, position, cached Gaussian), ``"torch"`` (the CPU generator's byte tensor) and
    ``"cuda"`` (one byte tensor per CUDA device; empty when CUDA is not available).
    """
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": {"version": int(version), "state": torch.tensor(words, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"state": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def _parse_rng_state(state: object) -> tuple[tuple, tuple, torch.Tensor]:
    """The (python, numpy, torch) generator states of ``state``, checked, or ArgumentError."""
    try:
        py = state["python"]  # type: ignore[index]
        words = py["state"]
        if not isinstance(words, torch.Tensor) or words.numel() != 625:
            raise ValueError("python.state must be a tensor of 625 words")
        gauss = py["gauss"]
        if gauss is not None and not isinstance(gauss, float):
            raise ValueError("python.gauss must be a float or None")
        python_state = (int(py["version"]), tuple(int(w) for w in words.tolist()), gauss)
        npst = state["numpy"]  # type: ignore[index]
        keys = npst["state"]
        if not isinstance(keys, torch.Tensor) or keys.numel() != 624:
            raise ValueError("numpy.state must be a tensor of 624 words")
        numpy_state = ("MT19937", keys.numpy().astype(np.uint32), int(npst["pos"]),
                       int(npst["has_gauss"]), float(npst["cached_gaussian"]))
        cpu = state["torch"]  # type: ignore[index]
        if not isinstance(cpu, torch.Tensor) or cpu.dtype != torch.uint8 or cpu.numel() != torch.get_rng_state().numel():
            raise ValueError("torch must be the uint8 tensor of torch.get_rng_state()")
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError) as exc:
        raise ArgumentError(f"rng state is not one captured by capture_rng_state ({exc})") from None
    return python_state, numpy_state, cpu


def check_rng_state(state: object) -> None:
    """Raise :class:`~cmrlab.errors.ArgumentError` unless ``state`` is one that
    :func:`restore_rng_state` can put back (checked without changing any generator)."""
    _parse_rng_state(state)


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back generator states captured by :func:`capture_rng_state`.

    The state is checked in full first (:func:`check_rng_state`), so a damaged one changes no
    generator. CUDA states are restored when the checkpoint has one per CUDA device of this
    machine; a checkpoint from a machine with another number of GPUs (or none) leaves the CUDA
    generators as they are (their draws then differ; CPU runs are unaffected).
    """
    python_state, numpy_state, cpu = _parse_rng_state(state)
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(cpu.to("cpu"))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to("cpu", torch.uint8) for s in cuda])


# ----------------------------------------------------------------------------------------------
# Data order
# ----------------------------------------------------------------------------------------------
def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed mixed from ``(seed, epoch)`` (NumPy's SeedSequence: no (s, e+1) = (s+1, e))."""
    words = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class ResumableRandomSampler(Sampler[int]):
    """Sample indices in an order fixed by ``(seed, epoch)``; start an epoch part-way through.

    Args:
        data_source: the dataset (anything with ``len``) or its length.
        shuffle: ``True``: a random permutation per epoch, drawn from a private
            ``torch.Generator`` seeded from ``(seed, epoch)`` (the global generators are not
            touched). ``False``: ``0, 1, …, n-1``.
        seed: the seed of the data order (the same on every process of a distributed run).
        num_replicas, rank: the split over processes, as ``DistributedSampler`` does it: the
            permutation is padded by repeating its first indices to a multiple of
            ``num_replicas`` (or cut to one, ``drop_last=True``) and process ``rank`` takes
            every ``num_replicas``-th index starting at ``rank``. Defaults: the world size and
            rank of an initialised ``torch.distributed`` process group, else 1 and 0.
        drop_last: see ``num_replicas``.

    :meth:`set_epoch` chooses the epoch (call it before each epoch, as with
    ``DistributedSampler``) and how many of this process's samples of that epoch to skip:
    ``set_epoch(3, start=k * batch_size)`` resumes epoch 3 after its ``k``-th batch.
    ``len(sampler)`` is the number of samples of a whole epoch for this process.
    """

    def __init__(self, data_source: Sized | int, *, shuffle: bool = True, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None,
                 drop_last: bool = False) -> None:
        n = data_source if isinstance(data_source, int) and not isinstance(data_source, bool) \
            else len(data_source)  # type: ignore[arg-type]
        self.n = check_int("len(data_source)", n, 0)
        self.shuffle = check_bool("shuffle", shuffle)
        self.seed = check_int("seed", seed, 0)
        dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
        if num_replicas is None:
            num_replicas = torch.distributed.get_world_size() if dist_on else 1
        if rank is None:
            rank = torch.distributed.get_rank() if dist_on else 0
        self.num_replicas = check_int("num_replicas", num_replicas, 1)
        self.rank = check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ArgumentError(f"rank must be < num_replicas={self.num_replicas}, got {rank!r}")
        self.drop_last = check_bool("drop_last", drop_last)
        if self.drop_last:
            self.total = (self.n // self.num_replicas) * self.num_replicas
        else:
            self.total = math.ceil(self.n / self.num_replicas) * self.num_replicas
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use the order of ``epoch`` (0-based) for the next pass, skipping its first ``start``
        samples of this process."""
        self.epoch = check_int("epoch", epoch, 0)
        self.start = check_int("start", start, 0)

    def indices(self, epoch: int | None = None) -> list[int]:
        """This process's indices for a whole ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, 0)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(_epoch_seed(self.seed, epoch))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.n and len(order) < self.total:
            reps = math.ceil(self.total / len(order))
            order = (order * reps)[: self.total]
        order = order[: self.total]
        return order[self.rank : self.total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.total // self.num_replicas

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch", "start", "num_replicas", "rank"}`` for a checkpoint."""
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start,
                "num_replicas": self.num_replicas, "rank": self.rank}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore the seed, epoch and start of :meth:`state_dict` (the split stays this one's)."""
        self.seed = check_int("seed", state["seed"], 0)
        self.set_epoch(state["epoch"], state.get("start", 0))

    def __repr__(self) -> str:
        return (f"ResumableRandomSampler(n={self.n}, shuffle={self.shuffle}, seed={self.seed}, "
                f"num_replicas={self.num_replicas}, rank={self.rank}, epoch={self.epoch})")
