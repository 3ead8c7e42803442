"""The training loop used by the chapters, the CLI and the benchmarks.

::

    from cmrlab.train import Trainer, CSVLogger, MonitorCallback, resumable_loader
    trainer = Trainer(model, GeneralizedDiceLoss(), torch.optim.Adam(model.parameters(), 1e-3),
                      train_loader=resumable_loader(train_set, batch_size=3, seed=run.seed),
                      val_loader=DataLoader(val_set, batch_size=3),
                      metrics={"dice": mean_dice}, device=run.device, max_epochs=50,
                      checkpoint_dir="runs/ch5", callbacks=[MonitorCallback(), CSVLogger("ch5.csv")])
    history = trainer.fit()                 # list of per-epoch dicts
    trainer.fit(resume=True)                # after a crash: continue from runs/ch5/last.pt

**Batches.** A batch is either a sequence ``(input, target, ...)`` — what a ``TensorDataset``
gives — or a dict with the keys ``"image"`` (the input) and ``"label"`` (the target); other
entries are ignored. :func:`batch_to` moves tensors in nested dicts, lists and tuples to the
device. The model is called as ``model(input)``, or ``model(**input)`` when the input is itself a
dict (e.g. ``{"x": images, "spacing": mm}`` for a model that needs each case's voxel size), the loss as ``loss_fn(output, target)``, each
metric as ``metric(output, target)`` (returning a number or a 0-d tensor). For :meth:`predict`
the target may be missing (a bare tensor, ``(input,)`` or a dict with ``"image"`` only).

**One epoch.** For each batch: forward, ``loss / k`` backward (``k = grad_accumulation``), and
an optimiser step after every ``k`` batches and after the epoch's last batch. At the end of an
epoch whose batch count ``n`` is not a multiple of ``k`` the last ``r = n mod k`` batches are
divided by ``r`` instead of ``k``, so every step follows the mean loss of its batches (a loader
without ``len()`` cannot be counted ahead: its last group is divided by ``k``). Then the
validation (if a ``val_loader`` was given), a scheduler step (``scheduler_interval="epoch"``;
``"step"`` steps it after every optimiser step; ``ReduceLROnPlateau`` is given the number named
by ``scheduler_monitor``, by default ``val_loss``, or ``loss`` without validation), and the callbacks. The numbers of an epoch (``logs``,
``trainer.history``): ``epoch`` (from 1), ``loss`` (the mean training loss over its samples,
weighted by batch size), ``lr`` (of the first parameter group, during the epoch), ``val_loss``
and ``val_<name>`` for each metric (means over the validation samples, weighted by batch size).

**Devices.** ``device=None`` takes :func:`cmrlab.config.select_device` (cuda → mps → cpu); the
model is moved there with ``.to(device)``. ``amp`` (mixed precision: ``torch.autocast`` in
bfloat16 where the GPU supports it, else float16 with a ``GradScaler``) and ``channels_last``
(NHWC memory layout; NDHWC for 3D inputs) apply on CUDA only: ``"auto"`` turns them on on CUDA and
off elsewhere, and ``True`` on a CPU or MPS device raises :class:`~cmrlab.errors.ArgumentError`
(there they would slow training down or fail, so asking for them is a mistake to report).
The running sums of an epoch (``running_loss``, and the validation sums) are float32 tensors on
the training device (MPS has no float64) and are copied to the CPU once per epoch, not once
per batch, so the GPU is not made to wait after every batch.

**Determinism.** ``seed`` seeds ``random``, NumPy and torch at the start of :meth:`fit` (not on
resume, where the checkpoint's generator states are restored); ``seed=None`` leaves them alone.
``deterministic=True`` turns on ``torch.use_deterministic_algorithms(True)``,
``cudnn.deterministic`` and turns off ``cudnn.benchmark`` for the duration of :meth:`fit` (the
previous settings come back afterwards). cuBLAS additionally needs the environment variable
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` set *before* CUDA starts: the Trainer sets it when it is
missing, which is only early enough if no CUDA work was done yet in the process; export it in
the shell to be sure. Operations without a deterministic version then raise an error.

**Exact resume.** :meth:`Trainer.resume` (or ``fit(resume=...)``) reads a checkpoint with
``weights_only=True`` and checks every field before it changes anything. A checkpoint (:class:`~cmrlab.train.ModelCheckpoint`, written every epoch and,
with ``checkpoint_every_steps``, every so many optimiser steps) holds the model, optimiser,
scheduler, gradient scaler, the position (completed epochs, batches done in the current epoch,
optimiser steps), the running loss sum of the current epoch, the random generators, the callbacks'
state and the history. A resumed run, even from the middle of an epoch, then trains on the same
remaining batches with the same random draws and ends with bit-identical weights on the CPU, when

* the train loader's sampler is a :class:`~cmrlab.train.ResumableRandomSampler`
  (:func:`resumable_loader` builds such a loader) or otherwise gives the same order every time
  (``shuffle=False``): the first batches of the epoch are then skipped without being loaded;
  other samplers are skipped by drawing the batches, and a ``RandomSampler``'s order is then
  not the original one (a warning says so);
* random augmentation draws from the global generators in the main process (``num_workers=0``)
  or from generators seeded per sample; worker processes' generators are not checkpointed.

Validation and the creation of each epoch's data iterator leave the global generators as they
were, so adding a validation set does not change the training run.

**Several GPUs.** When ``torch.distributed`` is initialised (:func:`~cmrlab.train.init_distributed`
under ``torchrun``) the model is wrapped in ``DistributedDataParallel``, losses and metrics are
summed over the processes, gradients are synchronised only at optimiser steps (``no_sync`` while
accumulating), and only rank 0 shows progress and writes files. A mid-epoch resume of a distributed
run restores rank 0's random generators on every rank.
"""
from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from cmrlab.checks import check_bool, check_choice, check_int, check_number
from cmrlab.config import seed_everything, select_device
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.train.callbacks import ModelCheckpoint
from cmrlab.train.checkpoint import (
    ResumableRandomSampler,
    capture_rng_state,
    check_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from cmrlab.train.distributed import all_reduce_sum, get_world_size, is_distributed, is_main_process
from cmrlab.viz.progress import progress as progress_bar

__all__ = ["Trainer", "batch_to", "resumable_loader", "split_batch"]

#: Version tag of the checkpoints written by :meth:`Trainer.state_dict`.
CHECKPOINT_FORMAT = "cmrlab.train.Trainer/1"
_HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")


def batch_to(batch: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor moved to ``device``, through nested dicts, lists and tuples.

    Other values (strings, numbers, case ids) are returned as they are; mappings come back as
    ``dict``, lists and tuples (named tuples too) keep their type. ``non_blocking=True`` overlaps the copy with computation for pinned CPU memory.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: batch_to(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # named tuple
        return type(batch)(*(batch_to(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to(v, device, non_blocking) for v in batch)
    return batch


def split_batch(batch: Any, *, need_target: bool = True) -> tuple[Any, Any]:
    """``(input, target)`` of a batch: ``batch[0], batch[1]`` of a sequence, or
    ``batch["image"], batch["label"]`` of a dict. ``need_target=False`` also accepts a bare
    tensor, a 1-sequence or a dict without ``"label"`` (target ``None``)."""
    if isinstance(batch, Mapping):
        if "image" not in batch or (need_target and "label" not in batch):
            want = "'image' and 'label'" if need_target else "'image'"
            raise ArgumentError(f"a dict batch needs the keys {want}; this one has {sorted(batch)}")
        return batch["image"], batch.get("label")
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        if len(batch) >= 2:
            return batch[0], batch[1]
        if len(batch) == 1 and not need_target:
            return batch[0], None
    if isinstance(batch, torch.Tensor) and not need_target:
        return batch, None
    what = type(batch).__name__
    if isinstance(batch, (list, tuple)):
        what += f" of length {len(batch)}"
    raise ArgumentError(
        f"a batch must be a sequence (input, target, ...) or a dict with 'image' and 'label', got {what}"
    )


def _forward(model: nn.Module, x: Any) -> Any:
    """``model(**x)`` for a dict input (keyword arguments), else ``model(x)``."""
    return model(**x) if isinstance(x, Mapping) else model(x)


def _batch_len(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.ndim else 1
    if isinstance(x, Mapping):
        return _batch_len(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return _batch_len(x[0])
    raise ArgumentError(f"cannot tell the batch size of an input of type {type(x).__name__}")


def resumable_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                     drop_last: bool = False, num_workers: int = 0, **loader_kwargs: Any) -> DataLoader:
    """A ``DataLoader`` whose order is fixed by ``(seed, epoch)`` and can resume mid-epoch.

    Its sampler is a :class:`~cmrlab.train.ResumableRandomSampler`, split over the processes of a
    distributed run when it is built after :func:`~cmrlab.train.init_distributed`; ``drop_last``
    drops a last incomplete batch. Other keyword arguments
    (``collate_fn``, ``pin_memory``, ...) go to ``DataLoader``.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    sampler = ResumableRandomSampler(dataset, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, **loader_kwargs)


@contextlib.contextmanager
def _rng_neutral() -> Iterator[None]:
    """Run a block without changing the global random generators."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def _check_state(state: object) -> None:
    """Refuse a Trainer checkpoint whose fields have the wrong type or range (ArgumentError naming the field)."""
    if not isinstance(state, Mapping):
        raise ArgumentError(f"a checkpoint must be a dict, got {type(state).__name__}")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ArgumentError(f"not a Trainer checkpoint (format {str(state.get('format'))[:60]!r}, "
                            f"expected {CHECKPOINT_FORMAT!r})")

    def mapping(field: str, value: object, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not isinstance(value, Mapping):
            raise ArgumentError(f"field {field!r} must be a dict{' or None' if optional else ''}, "
                                f"got {type(value).__name__}")

    missing = [k for k in ("model", "optimizer", "epoch", "batch_in_epoch", "global_step", "epoch_loss_sum",
                           "epoch_samples", "rng", "history") if k not in state]
    if missing:
        raise ArgumentError(f"field {missing[0]!r} is missing")
    mapping("model", state["model"])
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise ArgumentError("field 'model' must map parameter names to tensors (a model's state_dict)")
    mapping("optimizer", state["optimizer"])
    mapping("scheduler", state.get("scheduler"), optional=True)
    mapping("scaler", state.get("scaler"), optional=True)
    mapping("rng", state["rng"])
    check_rng_state(state["rng"])
    mapping("sampler", state.get("sampler"), optional=True)
    for field in ("epoch", "batch_in_epoch", "global_step", "epoch_samples"):
        check_int(f"field {field!r}", state[field], 0)
    check_number("field 'epoch_loss_sum'", state["epoch_loss_sum"])
    if state.get("seed") is not None:
        check_int("field 'seed'", state["seed"], 0)
    if state.get("sampler") is not None:
        for key in ("seed", "epoch"):
            check_int(f"field 'sampler.{key}'", state["sampler"].get(key), 0)
        check_int("field 'sampler.start'", state["sampler"].get("start", 0), 0)
    history = state["history"]
    if not isinstance(history, (list, tuple)):
        raise ArgumentError(f"field 'history' must be a list of per-epoch dicts, got {type(history).__name__}")
    for i, row in enumerate(history):
        if not isinstance(row, Mapping) or not all(
                isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, bool) for k, v in row.items()):
            raise ArgumentError(f"field 'history[{i}]' must map names to numbers, got {str(row)[:60]}")
    callbacks = state.get("callbacks") or []
    if not isinstance(callbacks, (list, tuple)):
        raise ArgumentError(f"field 'callbacks' must be a list, got {type(callbacks).__name__}")
    for i, entry in enumerate(callbacks):
        if not (isinstance(entry, Mapping) and isinstance(entry.get("class"), str)
                and isinstance(entry.get("state"), Mapping)):
            raise ArgumentError(f"field 'callbacks[{i}]' must be a dict with 'class' (text) and 'state' (a dict)")


class Trainer:
    """Train, validate, test and predict with one model (see the module docstring for details).

    Args:
        model: the network; moved to ``device``.
        loss_fn: ``loss_fn(output, target)`` → a scalar tensor.
        optimizer: built on ``model.parameters()``.
        train_loader: training batches (a ``DataLoader``; see :func:`resumable_loader`).
        val_loader: validation batches, evaluated after each epoch (optional).
        scheduler: a learning-rate scheduler, stepped per epoch or per optimiser step
            (``scheduler_interval``).
        metrics: ``{name: fn(output, target)}`` computed on validation and test batches.
        device: a torch device or its name; ``None``: :func:`cmrlab.config.select_device`.
        max_epochs: train until this many epochs are done (a second :meth:`fit` with a larger
            ``max_epochs`` continues).
        grad_accumulation: optimiser step every ``k`` batches (effective batch ``k ×`` batch).
        amp, channels_last: ``"auto"`` (on for CUDA), ``True`` (CUDA only) or ``False``.
        deterministic: deterministic algorithms during :meth:`fit`.
        checkpoint_dir: adds a :class:`~cmrlab.train.ModelCheckpoint` on this folder (monitor
            ``val_loss`` when there is a validation set) unless ``callbacks`` has one.
        checkpoint_every_steps: that checkpoint also after every so many optimiser steps.
        callbacks: :class:`~cmrlab.train.Callback` objects (see :mod:`cmrlab.train.callbacks`).
        progress: a tqdm bar per epoch (rank 0 only).
        seed: seeds the generators when :meth:`fit` starts fresh (``None``: not seeded).
        scheduler_interval: ``"epoch"`` or ``"step"``.
        scheduler_monitor: the epoch number a ``ReduceLROnPlateau`` scheduler follows (default
            ``"val_loss"`` with a validation set, else ``"loss"``); e.g. ``"val_dice"`` with a
            scheduler made with ``mode="max"``.

    Attributes: ``epoch`` (completed epochs), ``batch_in_epoch``, ``global_step`` (optimiser
    steps), ``history`` (list of per-epoch ``logs``), ``should_stop`` (set by callbacks),
    ``device``, ``amp``, ``amp_dtype``, ``channels_last``, ``running_loss`` (the sum of loss ×
    batch size over the current epoch's batches so far: a 0-d float32 tensor on ``device``) and
    ``running_samples`` (their number of samples).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        scheduler: Any = None,
        metrics: Mapping[str, Callable[[Any, Any], Any]] | None = None,
        device: torch.device | str | None = None,
        max_epochs: int,
        grad_accumulation: int = 1,
        amp: str | bool = "auto",
        channels_last: str | bool = "auto",
        deterministic: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every_steps: int | None = None,
        callbacks: Sequence[Any] = (),
        progress: bool = True,
        seed: int | None = 0,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ArgumentError(f"loss_fn must be callable, got {loss_fn!r}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ArgumentError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.scheduler = scheduler
        self.metrics = dict(metrics or {})
        for name, fn in self.metrics.items():
            if not isinstance(name, str) or not callable(fn):
                raise ArgumentError(f"metrics must map names to functions, got {name!r}: {fn!r}")
        self.max_epochs = check_int("max_epochs", max_epochs, 0)
        self.grad_accumulation = check_int("grad_accumulation", grad_accumulation, 1)
        self.scheduler_interval = check_choice("scheduler_interval", scheduler_interval, ("epoch", "step"))
        if scheduler_monitor is not None and not isinstance(scheduler_monitor, str):
            raise ArgumentError(f"scheduler_monitor must be the name of an epoch number, got {scheduler_monitor!r}")
        self.scheduler_monitor = scheduler_monitor or ("val_loss" if val_loader is not None else "loss")
        self.deterministic = check_bool("deterministic", deterministic)
        self.progress = check_bool("progress", progress)
        self.seed = None if seed is None else check_int("seed", seed, 0)

        # device, mixed precision, memory layout
        if device is None:
            dev = select_device()
        elif isinstance(device, torch.device):
            dev = device
        else:
            dev = select_device(str(device))
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        self.device = dev
        cuda = dev.type == "cuda"
        for name, value in (("amp", amp), ("channels_last", channels_last)):
            if check_choice(name, value, ("auto", True, False)) is True and not cuda:
                raise ArgumentError(f"{name}=True needs a CUDA device, but the trainer runs on "
                                    f"{dev}: use {name}='auto' or False")
        self.amp = bool(cuda if amp == "auto" else amp)
        self.channels_last = bool(cuda if channels_last == "auto" else channels_last)
        self.amp_dtype = (torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.model.to(self.device)
        self._net: nn.Module | None = None  # the module called in training (DDP-wrapped if needed)
        self._memory_format: torch.memory_format | None = None

        # callbacks, ModelCheckpoint(s) last
        cbs = list(callbacks)
        for cb in cbs:
            if not any(hasattr(cb, hook) for hook in _HOOKS):
                raise ArgumentError(f"callback {cb!r} has none of the hooks {', '.join(_HOOKS)}")
        if checkpoint_dir is not None and not any(isinstance(cb, ModelCheckpoint) for cb in cbs):
            cbs.append(ModelCheckpoint(checkpoint_dir, monitor="val_loss" if val_loader is not None else None,
                                       every_steps=checkpoint_every_steps))
        elif checkpoint_every_steps is not None and checkpoint_dir is None:
            raise ArgumentError("checkpoint_every_steps needs checkpoint_dir")
        self.callbacks: list[Any] = ([cb for cb in cbs if not isinstance(cb, ModelCheckpoint)]
                                     + [cb for cb in cbs if isinstance(cb, ModelCheckpoint)])
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

        # position
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []
        self.should_stop = False
        self.running_loss = torch.zeros((), dtype=torch.float32, device=self.device)
        self.running_samples = 0
        self._seeded = False

    # ------------------------------------------------------------------------------ helpers
    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _prepare_input(self, x: Any) -> Any:
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim in (4, 5):
            fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
            if self._memory_format is None:
                self.model.to(memory_format=fmt)
                self._memory_format = fmt
            x = x.contiguous(memory_format=fmt)
        return x

    def _training_net(self) -> nn.Module:
        if self._net is None:
            if is_distributed():
                from torch.nn.parallel import DistributedDataParallel

                ids = [self.device.index] if self.device.type == "cuda" else None
                self._net = DistributedDataParallel(self.model, device_ids=ids)
            else:
                self._net = self.model
        return self._net

    def _sum_count(self, count: int) -> int:
        """A sample count summed over the processes (itself when not distributed)."""
        if not is_distributed():
            return count
        return int(all_reduce_sum(torch.tensor([count], dtype=torch.int64, device=self.device)).item())

    def _epoch_totals(self) -> tuple[float, int]:
        """``(loss sum, samples)`` of the current epoch so far, over all processes (one sync)."""
        return float(all_reduce_sum(self.running_loss)), self._sum_count(self.running_samples)

    def _epoch_iterator(self, loader: Iterable[Any], epoch: int, start: int) -> Iterator[Any]:
        """The loader's iterator for ``epoch`` (0-based), past its first ``start`` batches,
        created without touching the global random generators."""
        sampler = getattr(loader, "sampler", None)
        batch_sampler = getattr(loader, "batch_sampler", None)
        batch_size = getattr(loader, "batch_size", None)
        skip = start
        if isinstance(sampler, ResumableRandomSampler) and batch_size is not None:
            sampler.set_epoch(epoch, start * batch_size)
            skip = 0
        else:
            for s in (sampler, batch_sampler):
                if s is not None and hasattr(s, "set_epoch"):
                    s.set_epoch(epoch)
            if skip and isinstance(sampler, RandomSampler) and sampler.generator is None:
                warnings.warn("resuming in the middle of an epoch with a RandomSampler: the rest "
                              "of this epoch will not see the original data order; use "
                              "cmrlab.train.resumable_loader for an exact resume", stacklevel=3)
        with _rng_neutral():
            it = iter(loader)
            for _ in range(skip):
                next(it)
        return it

    # ------------------------------------------------------------------------------ training
    def fit(self, resume: bool | str | os.PathLike = False) -> list[dict[str, float]]:
        """Train until ``max_epochs`` epochs are done (or a callback stops it); return the history.

        ``resume=True`` continues from ``<checkpoint_dir>/last.pt`` when it exists (and starts
        from scratch when it does not, e.g. after a crash in the first epoch); a path continues
        from that checkpoint, which must exist.
        """
        if resume is True:
            if self.checkpoint_dir is None:
                raise ArgumentError("fit(resume=True) needs checkpoint_dir (or give the checkpoint's path)")
            last = self.checkpoint_dir / ModelCheckpoint.LAST
            if last.exists():
                self.resume(last)
        elif resume not in (False, None):
            self.resume(resume)
        if not self._seeded:
            if self.seed is not None:
                seed_everything(self.seed)
            self._seeded = True

        previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                    torch.backends.cudnn.benchmark)
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        self.should_stop = False
        try:
            self._call("on_fit_start")
            while self.epoch < self.max_epochs and not self.should_stop:
                self._train_epoch()
            self._call("on_fit_end")
        finally:
            if self.deterministic:
                torch.use_deterministic_algorithms(previous[0])
                torch.backends.cudnn.deterministic = previous[1]
                torch.backends.cudnn.benchmark = previous[2]
        return self.history

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def _train_epoch(self) -> None:
        epoch = self.epoch  # 0-based index of the epoch being trained
        start = self.batch_in_epoch
        if start == 0:
            self.running_loss.zero_()
            self.running_samples = 0
        self._call("on_epoch_start", epoch + 1)
        net = self._training_net()
        net.train()
        k = self.grad_accumulation
        try:
            n_batches: int | None = len(self.train_loader)  # type: ignore[arg-type]
        except TypeError:
            n_batches = None
        tail = n_batches % k if n_batches else 0  # batches in a last, shorter accumulation group
        bar = progress_bar(total=n_batches, initial=start, desc=f"epoch {epoch + 1}/{self.max_epochs}",
                           leave=False, disable=not (self.progress and is_main_process()))
        lr = float(self.optimizer.param_groups[0]["lr"])
        it = self._epoch_iterator(self.train_loader, epoch, start)
        self.optimizer.zero_grad(set_to_none=True)
        pending = False
        try:
            for i, batch in enumerate(it, start=start):
                x, y = split_batch(batch_to(batch, self.device, non_blocking=True))
                x = self._prepare_input(x)
                last = n_batches is not None and i + 1 == n_batches
                step_now = (i + 1) % k == 0 or last
                group = tail if (tail and n_batches is not None and i >= n_batches - tail) else k
                sync = contextlib.nullcontext() if step_now or not is_distributed() else net.no_sync()
                with sync:
                    with self._autocast():
                        out = _forward(net, x)
                        loss = self.loss_fn(out, y)
                    self.scaler.scale(loss / group if group > 1 else loss).backward()
                pending = not step_now
                if step_now:
                    self._optimizer_step()
                loss = loss.detach()
                n = _batch_len(x)
                self.running_loss += loss.float() * n           # stays on the device: no sync
                self.running_samples += n
                self.batch_in_epoch = i + 1
                self._call("on_batch_end", i, {"loss": loss, "optimizer_step": step_now})
                bar.update(1)
                if bar.disable is False and (i + 1) % 10 == 0:
                    bar.set_postfix(loss=f"{float(loss):.4g}")
            if pending:  # loader without len(): flush the last accumulation group
                self._optimizer_step()
        finally:
            bar.close()

        loss_sum, samples = self._epoch_totals()
        logs: dict[str, float] = {"loss": loss_sum / samples if samples > 0 else float("nan"), "lr": lr}
        if self.val_loader is not None:
            logs.update(self.validate())
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if self.scheduler_monitor not in logs:
                    raise ArgumentError(f"scheduler_monitor={self.scheduler_monitor!r} is not among the "
                                        f"epoch's numbers {sorted(logs)} (validation numbers need a val_loader)")
                self.scheduler.step(logs[self.scheduler_monitor])
            else:
                self.scheduler.step()
        self.epoch = epoch + 1
        self.batch_in_epoch = 0
        self.running_loss.zero_()
        self.running_samples = 0
        self.history.append({"epoch": epoch + 1, **logs})
        self._call("on_epoch_end", epoch + 1, logs)

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self, loader: Iterable[Any], prefix: str) -> dict[str, float]:
        model = self.model
        was_training = model.training
        model.eval()
        names = ["loss", *self.metrics]
        sums = torch.zeros(len(names), dtype=torch.float32, device=self.device)  # on the device: no sync per batch
        count = 0
        try:
            with _rng_neutral(), torch.no_grad():
                for batch in loader:
                    x, y = split_batch(batch_to(batch, self.device, non_blocking=True))
                    x = self._prepare_input(x)
                    with self._autocast():
                        out = _forward(model, x)
                        loss = self.loss_fn(out, y)
                    out = out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out
                    n = _batch_len(x)
                    values = [torch.as_tensor(loss, dtype=torch.float32, device=self.device)]
                    for fn in self.metrics.values():
                        values.append(torch.as_tensor(fn(out, y), dtype=torch.float32, device=self.device))
                    sums += torch.stack([v.reshape(()) for v in values]) * n
                    count += n
        finally:
            model.train(was_training)
        sums = all_reduce_sum(sums).tolist()                  # the one GPU→CPU copy
        count = self._sum_count(count)
        if count == 0:
            raise ArgumentError(f"the {prefix.rstrip('_')} loader gave no batches")
        return {f"{prefix}{name}": sums[j] / count for j, name in enumerate(names)}

    def validate(self) -> dict[str, float]:
        """Loss and metrics on ``val_loader``: ``{"val_loss": ..., "val_<metric>": ...}``."""
        if self.val_loader is None:
            raise ArgumentError("validate() needs a val_loader")
        return self._evaluate(self.val_loader, "val_")

    def test(self, loader: Iterable[Any]) -> dict[str, float]:
        """Loss and metrics on ``loader``: ``{"test_loss": ..., "test_<metric>": ...}``."""
        return self._evaluate(loader, "test_")

    def predict(self, loader: Iterable[Any]) -> torch.Tensor:
        """The model's outputs for every batch of ``loader``, concatenated along the batch axis
        and returned on the CPU (targets, if present, are ignored). Evaluation mode, no
        gradients; mixed precision outputs are returned as float32."""
        model = self.model
        was_training = model.training
        model.eval()
        outputs = []
        try:
            with _rng_neutral(), torch.no_grad():
                for batch in loader:
                    x, _ = split_batch(batch_to(batch, self.device, non_blocking=True), need_target=False)
                    with self._autocast():
                        out = _forward(model, self._prepare_input(x))
                    outputs.append(out.float().cpu() if out.is_floating_point() else out.cpu())
        finally:
            model.train(was_training)
        if not outputs:
            raise ArgumentError("predict() got a loader without batches")
        return torch.cat(outputs)

    # ------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (see the module docstring).

        In a distributed run every process must call it (it sums the running loss over them).
        """
        loss_sum, samples = self._epoch_totals()
        sampler = getattr(self.train_loader, "sampler", None)
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "epoch_loss_sum": loss_sum,
            "epoch_samples": samples,
            "seed": self.seed,
            "world_size": get_world_size(),
            "rng": capture_rng_state(),
            "sampler": sampler.state_dict() if hasattr(sampler, "state_dict") else None,
            "callbacks": [{"class": type(cb).__name__,
                           "state": cb.state_dict() if hasattr(cb, "state_dict") else {}}
                          for cb in self.callbacks],
            "history": [dict(row) for row in self.history],
        }

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from the checkpoint at ``path`` (a :meth:`state_dict` saved by
        :class:`~cmrlab.train.ModelCheckpoint`): the next :meth:`fit` goes on where it stopped.

        The file is read with ``weights_only=True`` (:func:`~cmrlab.train.load_checkpoint`) and
        checked in full before anything of this trainer changes; a missing, truncated or foreign
        file, a field of the wrong type or out of range, or weights of another model give a
        :class:`~cmrlab.errors.FileFormatError` naming the file and the field.
        """
        path = Path(path)
        state = load_checkpoint(path)
        try:
            self.load_state_dict(state)
        except (ArgumentError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FileFormatError(path, f"cannot be resumed by this trainer ({first})") from None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. ``load_checkpoint(path)``) into this trainer.

        Every field is checked first (:class:`~cmrlab.errors.ArgumentError` naming it); the
        model, optimiser and scheduler must be the kind that wrote it (torch raises otherwise).
        :meth:`resume` turns such errors into a :class:`~cmrlab.errors.FileFormatError` naming
        the file.
        """
        _check_state(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            if state["scheduler"] is None:
                raise ArgumentError("this trainer has a scheduler but the checkpoint has none")
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        main = is_main_process()
        self.running_loss.fill_(float(state["epoch_loss_sum"]) if main else 0.0)
        self.running_samples = int(state["epoch_samples"]) if main else 0
        self.history = [dict(row) for row in state["history"]]
        sampler = getattr(self.train_loader, "sampler", None)
        if state.get("sampler") is not None and hasattr(sampler, "load_state_dict"):
            sampler.load_state_dict(state["sampler"])
        saved = state.get("callbacks") or []
        for cb, entry in zip(self.callbacks, saved):
            if type(cb).__name__ == entry["class"] and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(entry["state"])
        if [type(cb).__name__ for cb in self.callbacks] != [e["class"] for e in saved]:
            warnings.warn("the checkpoint's callbacks differ from this trainer's; the state of "
                          "callbacks that do not match was not restored", stacklevel=2)
        self._seeded = True

    def __repr__(self) -> str:
        return (f"Trainer(model={type(self.model).__name__}, device={self.device}, epoch={self.epoch}/"
                f"{self.max_epochs}, amp={self.amp}, channels_last={self.channels_last}, "
                f"grad_accumulation={self.grad_accumulation})")
