"""Callbacks: code the :class:`~cmrlab.train.Trainer` calls at fixed points of training.

A callback is any object with some of these methods (the others are looked up and skipped);
subclassing :class:`Callback` gives all of them, doing nothing:

=====================================================  ==========================================
``on_fit_start(trainer)``                              before the first epoch (also on resume)
``on_epoch_start(trainer, epoch)``                     ``epoch`` counts from 1
``on_batch_end(trainer, batch, logs)``                 after each training batch; ``batch`` is
                                                       its index in the epoch (from 0); ``logs``
                                                       has ``"loss"`` (a detached 0-d tensor:
                                                       call ``float`` only when you need it, it
                                                       waits for the GPU) and
                                                       ``"optimizer_step"`` (True when the
                                                       optimiser stepped after this batch)
``on_epoch_end(trainer, epoch, logs)``                 ``logs``: the epoch's numbers (``loss``,
                                                       ``lr``, ``val_loss``, ``val_<metric>``)
``on_fit_end(trainer)``                                after the last epoch or an early stop
``state_dict()`` / ``load_state_dict(state)``          saved in and restored from checkpoints
=====================================================  ==========================================

Callbacks run in the order given, except :class:`ModelCheckpoint`, which the Trainer runs last so
that a checkpoint holds the other callbacks' state after the same batch or epoch. A callback that
sets ``trainer.should_stop = True`` ends training after the current epoch. In a distributed run
every process calls every callback; those shipped here write files on rank 0 only.

Shipped: :class:`CSVLogger`, :class:`MonitorCallback` (live curves in a notebook),
:class:`TensorBoardCallback` (needs the ``tensorboard`` package), :class:`EarlyStopping`,
:class:`ModelCheckpoint`.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmrlab.checks import check_bool, check_choice, check_int, check_number
from cmrlab.files import atomic_write, remove_partials
from cmrlab.errors import ArgumentError, ConfigError
from cmrlab.train.checkpoint import save_checkpoint
from cmrlab.train.distributed import is_main_process

if TYPE_CHECKING:  # pragma: no cover
    from cmrlab.train.trainer import Trainer

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "MonitorCallback",
    "TensorBoardCallback",
]


class Callback:
    """Base class with every hook doing nothing; override the ones you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (after a resume has been loaded)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before training epoch ``epoch`` (1-based)."""

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None:
        """After training batch ``batch`` (0-based index in the epoch)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch`` and its validation, with the epoch's numbers."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After training ends (normally or by early stopping)."""

    def state_dict(self) -> dict[str, Any]:
        """State to keep in a checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


def _improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _best_state(state: dict[str, Any], owner: str) -> tuple[float | None, int]:
    """``(best, best_epoch)`` of a saved callback state, checked (ArgumentError naming the field)."""
    best = state.get("best")
    if best is not None:
        best = check_number(f"{owner} state 'best'", best)
    return best, check_int(f"{owner} state 'best_epoch'", state.get("best_epoch"), 0)


def _monitored(logs: dict[str, float], monitor: str, owner: str) -> float:
    if monitor not in logs:
        raise ArgumentError(f"{owner}: monitor={monitor!r} is not among the epoch's numbers "
                            f"{sorted(logs)} (validation metrics need a val_loader)")
    return float(logs[monitor])


class CSVLogger(Callback):
    """Write the numbers of every epoch to a CSV file: one row per epoch, one column per number.

    The whole table (``trainer.history``) is rewritten atomically after each epoch, so the file is
    never half written and a resumed run continues the table of the checkpoint (rows of epochs
    that were lost with a crash disappear). Columns: ``epoch`` and then the numbers in the order
    they first appear; an empty cell where an epoch has no value.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def on_fit_start(self, trainer: Trainer) -> None:
        """Remove the temporary files of this CSV that a killed run left (rank 0)."""
        if is_main_process():
            remove_partials(self.path.parent, self.path.name)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if is_main_process():
            self.write(trainer.history)

    def write(self, history: Sequence[dict[str, float]]) -> Path:
        """Write ``history`` (a list of per-epoch dicts with an ``"epoch"`` key) to the file."""
        names: list[str] = ["epoch"]
        for row in history:
            names.extend(k for k in row if k not in names)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(names)
        for row in history:
            writer.writerow([_cell(row.get(n)) for n in names])
        data = text.getvalue()
        return atomic_write(self.path, lambda tmp: tmp.write_text(data, encoding="utf-8"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class MonitorCallback(Callback):
    """Draw the training curves live with :class:`cmrlab.viz.TrainingMonitor`.

    Args:
        metrics: the numbers to plot (default: every number except ``lr``).
        title: figure title.
        live: passed to ``TrainingMonitor`` (``None``: live in a Jupyter kernel, one final figure
            in the website build).
        every: redraw every ``every`` epochs.

    The monitor is ``self.monitor`` (its ``history`` and ``figure()`` stay usable after
    training). On resume the epochs of the checkpoint are drawn first.
    """

    def __init__(self, metrics: Sequence[str] | None = None, *, title: str | None = None,
                 live: bool | None = None, every: int = 1) -> None:
        from cmrlab.viz.monitor import TrainingMonitor

        self.metrics = None if metrics is None else list(metrics)
        self.monitor = TrainingMonitor(self.metrics, title=title, live=live, every=every)

    def _values(self, logs: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in logs.items() if k != "epoch" and (self.metrics is not None or k != "lr")}

    def on_fit_start(self, trainer: Trainer) -> None:
        if not is_main_process():
            return
        done = {e for values in self.monitor.history.values() for e, _ in values}
        for row in trainer.history:
            values = self._values(row)
            if row["epoch"] not in done and values:
                self.monitor.update(int(row["epoch"]), **values)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if is_main_process():
            self.monitor.update(epoch, **self._values(logs))

    def on_fit_end(self, trainer: Trainer) -> None:
        if is_main_process():
            self.monitor.close()


class TensorBoardCallback(Callback):
    """Write each epoch's numbers as TensorBoard scalars under ``log_dir``.

    Needs the optional ``tensorboard`` package (``pip install tensorboard``); without it the
    constructor raises :class:`~cmrlab.errors.ConfigError` saying so.
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("TensorBoardCallback needs the optional 'tensorboard' package, which "
                              "is not installed: pip install tensorboard (or use CSVLogger)") from None
        self.log_dir = Path(log_dir)
        self._writer_class = SummaryWriter
        self.writer: Any = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if not is_main_process():
            return
        if self.writer is None:
            self.writer = self._writer_class(log_dir=str(self.log_dir))
        for name, value in logs.items():
            if name != "epoch":
                self.writer.add_scalar(name, float(value), epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    "Improved" means below the best value so far minus ``min_delta`` (``mode="min"``) or above it
    plus ``min_delta`` (``mode="max"``). ``best``, ``best_epoch`` and ``wait`` (epochs since the
    best) are kept in checkpoints.
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 5, mode: str = "min",
                 min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.patience = check_int("patience", patience, 1)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.min_delta = check_number("min_delta", min_delta, 0.0)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = _best_state(state, "EarlyStopping")
        self.wait = check_int("EarlyStopping state 'wait'", state.get("wait"), 0)


class ModelCheckpoint(Callback):
    """Save the full training state: ``last.pt`` every epoch, ``best.pt`` on a validation metric.

    Args:
        dirpath: the folder (created when needed).
        monitor: the number that decides ``best.pt`` (e.g. ``"val_loss"``, ``"val_dice"``);
            ``None`` writes no ``best.pt``.
        mode: ``"min"`` or ``"max"``: which direction of ``monitor`` is better.
        every_steps: also write ``last.pt`` after every ``every_steps`` optimiser steps, in the
            middle of an epoch (a long epoch then loses little work to a crash).
        keep_epochs: also keep one file per epoch, ``epoch-0007.pt``.

    Every file is a :meth:`Trainer.state_dict` (model, optimiser, scheduler, gradient scaler,
    position, RNG states, data order, callbacks, history) written atomically by
    :func:`~cmrlab.train.checkpoint.save_checkpoint`; ``Trainer.fit(resume=...)`` continues from
    any of them, and ``load_checkpoint(path)["model"]`` is the model's ``state_dict``. Only rank
    0 writes. ``best``/``best_epoch`` are kept in checkpoints.
    """

    LAST = "last.pt"
    BEST = "best.pt"

    def __init__(self, dirpath: str | os.PathLike, *, monitor: str | None = "val_loss",
                 mode: str = "min", every_steps: int | None = None,
                 keep_epochs: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.every_steps = None if every_steps is None else check_int("every_steps", every_steps, 1)
        self.keep_epochs = check_bool("keep_epochs", keep_epochs)
        self.best: float | None = None
        self.best_epoch = 0

    @property
    def last_path(self) -> Path:
        return self.dirpath / self.LAST

    @property
    def best_path(self) -> Path:
        return self.dirpath / self.BEST

    def on_fit_start(self, trainer: Trainer) -> None:
        """Remove the temporary files that a save killed half-way left (``.last.*.partial.pt``,
        ``.best.*``, and ``.epoch-NNNN.*`` with ``keep_epochs``); rank 0 only."""
        if not is_main_process():
            return
        names = [self.LAST, self.BEST]
        if self.keep_epochs:
            names += [f"epoch-{e:04d}.pt" for e in range(1, trainer.max_epochs + 1)]
        for name in names:
            remove_partials(self.dirpath, name)

    def on_batch_end(self, trainer: Trainer, batch: int, logs: dict[str, Any]) -> None:
        if (self.every_steps and logs.get("optimizer_step")
                and trainer.global_step % self.every_steps == 0):
            self._save(trainer, [self.last_path])

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        paths = [self.last_path]
        if self.keep_epochs:
            paths.append(self.dirpath / f"epoch-{epoch:04d}.pt")
        if self.monitor is not None:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if _improved(value, self.best, self.mode):
                self.best, self.best_epoch = value, epoch
                paths.append(self.best_path)
        self._save(trainer, paths)

    def _save(self, trainer: Trainer, paths: list[Path]) -> None:
        state = trainer.state_dict()  # on every rank: it sums the running loss over the ranks
        if is_main_process():
            for path in paths:
                save_checkpoint(path, state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = _best_state(state, "ModelCheckpoint")
