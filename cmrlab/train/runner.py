"""One experiment runner for every task: train, evaluate and apply the thesis experiments.

The chapters and the ``cmrlab train / evaluate / predict`` commands call three functions, whatever
the experiment's task::

    from cmrlab.train.runner import train_experiment, evaluate_experiment, predict_files
    trained = train_experiment("cardiac-ch6-regression-unet", profile="fast")   # runs/<name>-fast/
    report = evaluate_experiment("cardiac-ch6-regression-unet", trained.checkpoint)
    print(report.summary())                        # the thesis's table, with its numbers beside ours
    predict_files(trained.checkpoint, ["patient101_frame01.nii.gz"], out="pred/")

**Tasks.** The experiment's ``task`` (:data:`cmrlab.train.experiment.TASKS`) picks a
:class:`Task`, a small interface that says what differs between the experiments:

- what a *case* is (:meth:`Task.read_case`: the frames, labels and geometry it keeps);
- how cases become training and validation items, and how those are batched
  (:meth:`Task.datasets`, :meth:`Task.loader`);
- how the model's output meets the loss and the validation metrics (:meth:`Task.loss`,
  :meth:`Task.metrics`);
- how a trained model scores the test cases (:meth:`Task.evaluate`, giving an
  :class:`Evaluation` whose :meth:`~Evaluation.summary` prints the thesis's table), and how it
  turns a NIfTI file into an output file (:meth:`Task.predict_file`).

Three tasks use it: ``segmentation`` (:mod:`cmrlab.train.segmentation`, ch. 5),
``volume_regression`` (:mod:`cmrlab.train.volume`, ch. 6) and ``frame_detection``
(:mod:`cmrlab.train.frames`, ch. 7). Everything else is shared and lives here or below.

**Data.** :func:`load_cases` asks :func:`cmrlab.data.datasets.get_dataset` for the experiment's
dataset (that function alone chooses between the real and the synthetic copy: the ``fast``
profile uses the synthetic one, ``full`` the real one under the data root or an error saying how
to get it), reads every case with the task and splits the cases into train / validation / test
with :func:`cmrlab.data.splits.stratified_order` (test first, then validation, then training
from one order in which every prefix holds the diagnostic groups in proportion).

**The run folder is touched last.** The experiment (with ``--set`` overrides), a resumed folder's
``config.yaml``, its ``last.pt`` and the model, loss, optimizer and Trainer are all built and
checked before anything is written: a mistake leaves the folder absent or as it was. Then the
temporary files of a save that was killed are removed and ``config.yaml`` and ``run.json``
written. Every checkpoint carries, under :data:`RUN_KEY`, what inference needs (task, model name
and keyword arguments, preprocessing), so :func:`load_trained` and :func:`predict_files` need
only the checkpoint; :func:`check_run_info` checks that entry field by field. ``resume=True``
continues the run folder's ``last.pt`` exactly (:meth:`cmrlab.train.Trainer.resume`).

:func:`setup` (:mod:`cmrlab.config`) runs once per command: the profile, seed, device and data
root it returns are passed down, never recomputed.
"""
from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cmrlab.checks import check_bool, check_int, did_you_mean, metadata_number
from cmrlab.config import RunConfig, select_device, setup
from cmrlab.data.datasets import get_dataset
from cmrlab.data.io import load_nifti
from cmrlab.data.splits import stratified_order
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.files import atomic_write, load_yaml, parse_yaml_text, remove_partials
from cmrlab.nn.registry import MODELS, build_model
from cmrlab.train.callbacks import CSVLogger, ModelCheckpoint
from cmrlab.train.checkpoint import load_checkpoint
from cmrlab.train.experiment import (
    NORMALISATIONS,
    PROJECTIONS,
    TASKS,
    Experiment,
    experiment_from_dict,
    load_experiment,
)
from cmrlab.train.trainer import Trainer

__all__ = [
    "Evaluation",
    "RUN_FORMAT",
    "RUN_KEY",
    "SplitCases",
    "Task",
    "TrainResult",
    "check_run_info",
    "evaluate_experiment",
    "get_task",
    "load_cases",
    "load_trained",
    "mean_sd",
    "nifti_name",
    "parse_overrides",
    "predict_files",
    "preprocessing_of",
    "split_cases",
    "train_experiment",
    "write_rows",
]

#: Key of the inference metadata inside every checkpoint the runner writes.
RUN_KEY = "cmrlab_run"
#: Version tag of that metadata.
RUN_FORMAT = "cmrlab.train.runner/1"
#: Earlier formats that still load, with the task they imply (ch. 5 checkpoints of cmrlab ≤ 0.x).
LEGACY_FORMATS = {"cmrlab.train.segmentation/1": "segmentation"}
#: The module and class of each task's :class:`Task`.
TASK_CLASSES = {
    "segmentation": "cmrlab.train.segmentation:SegmentationTask",
    "volume_regression": "cmrlab.train.volume:VolumeRegressionTask",
    "frame_detection": "cmrlab.train.frames:FrameDetectionTask",
}
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


# ----------------------------------------------------------------------------------------------
# The task interface
# ----------------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """Per-case results of one model on the test cases (:func:`evaluate_experiment`).

    ``rows``: one dict per scored item (the task says which keys; every row has ``case`` and
    ``group``); ``csv_path``: where they were written; ``predictions``: what the task keeps for a
    viewer when asked (``keep_predictions=True``). Subclasses add the task's tables and
    :meth:`summary`.
    """

    model: str
    experiment: str
    profile: str
    rows: list[dict[str, Any]]
    csv_path: Path | None = None
    predictions: dict[Any, Any] = field(default_factory=dict)

    def column(self, key: str, **where: Any) -> list[Any]:
        """The values of ``key`` over the rows whose other keys equal ``where``."""
        return [r[key] for r in self.rows if all(r.get(k) == v for k, v in where.items())]

    @property
    def seconds_per_case(self) -> float:
        """Mean inference time of one scored item (s; the rows' ``seconds``)."""
        values = [r["seconds"] for r in self.rows if "seconds" in r]
        return float(np.mean(values)) if values else float("nan")

    def summary(self, thesis: bool = True) -> str:  # pragma: no cover - every task overrides it
        return f"{self.experiment} ({self.profile}): {len(self.rows)} rows"

    def _finish(self, lines: list[str]) -> str:
        """``lines`` and the CSV's path, as one text (the end of every task's summary)."""
        if self.csv_path is not None:
            lines.append(f"  per-case results: {self.csv_path}")
        return "\n".join(lines)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample SD)`` of the finite values (SD 0 for one value; NaNs when there are none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


class Task:
    """What one kind of experiment does differently; see the module docstring.

    A subclass sets :attr:`name` (a key of :data:`cmrlab.train.experiment.TASKS`) and implements
    the methods below. Cases are the task's own objects with at least ``id`` and ``group``.
    """

    name: ClassVar[str] = ""
    #: The datasets (layouts) whose cases :meth:`read_case` can read.
    reads: ClassVar[tuple[str, ...]] = ("acdc",)
    #: True when :meth:`read_case` already applies the experiment's preprocessing (then cases are
    #: reusable only by experiments with the same preprocessing).
    preprocesses_on_read: ClassVar[bool] = False

    # -- data ---------------------------------------------------------------------------------
    def read_case(self, folder: Path, exp: Experiment) -> Any:
        """One case from a dataset folder (the reader of ``exp.dataset.name``)."""
        raise NotImplementedError

    def datasets(self, split: "SplitCases", exp: Experiment, seed: int) -> tuple[Dataset, Dataset | None, dict[str, int]]:
        """``(train, validation or None, counts)``; ``counts`` has ``items`` and ``augmented``."""
        raise NotImplementedError

    def loader(self, dataset: Dataset, exp: Experiment, seed: int, *, train: bool) -> DataLoader:
        """The loader of ``dataset`` (training: shuffled, seeded by ``(seed, epoch)``, resumable)."""
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------
    def loss(self, exp: Experiment) -> Callable[[Any, Any], torch.Tensor]:
        """``loss(output, target)`` for the Trainer."""
        raise NotImplementedError

    def metrics(self, exp: Experiment) -> dict[str, Callable[[Any, Any], Any]]:
        """Validation metrics ``{name: fn(output, target)}`` for the Trainer (``val_<name>``)."""
        return {}

    def monitor(self) -> str:
        """The validation number that picks ``best.pt`` (lowest wins)."""
        return "val_loss"

    def run_info(self, exp: Experiment) -> dict[str, Any]:
        """Task-specific entries of the checkpoint's :data:`RUN_KEY` metadata."""
        return {}

    # -- after training -----------------------------------------------------------------------
    def evaluate(self, model: nn.Module, info: Mapping[str, Any], cases: Sequence[Any], exp: Experiment, *,
                 keep_predictions: bool = False) -> Evaluation:
        """Score ``model`` on ``cases``; ``info`` is the checkpoint's checked metadata."""
        raise NotImplementedError

    def predict_file(self, model: nn.Module, info: Mapping[str, Any], path: Path, image: Any,
                     out_dir: Path, stem: str, suffix: str) -> list[Path]:
        """Apply ``model`` to the NIfTI ``image`` read from ``path``; write into ``out_dir``."""
        raise NotImplementedError


_TASK_CACHE: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The :class:`Task` of ``name`` (a key of :data:`cmrlab.train.experiment.TASKS`)."""
    if name not in TASK_CLASSES:
        raise ConfigError(f"task: {str(name)[:60]!r} is not one of {', '.join(TASK_CLASSES)}"
                          f"{did_you_mean(str(name), TASK_CLASSES)}")
    if name not in _TASK_CACHE:
        module, cls = TASK_CLASSES[name].split(":")
        _TASK_CACHE[name] = getattr(importlib.import_module(module), cls)()
    return _TASK_CACHE[name]


# ----------------------------------------------------------------------------------------------
# Cases and the split
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SplitCases:
    """The cases of an experiment split into ``train``, ``validation`` and ``test``.

    ``source`` says where they came from (a :class:`~cmrlab.data.datasets.DatasetLocation`
    rendered as text); ``task`` and ``preprocessing`` what they were read for. Pass it to
    :func:`train_experiment` and :func:`evaluate_experiment` (``cases=``) to read the data once
    for several runs of the same task and preprocessing.
    """

    train: list[Any]
    validation: list[Any]
    test: list[Any]
    source: str
    synthetic: bool
    seed: int
    task: str = "segmentation"
    preprocessing: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"{len(self.train)} train / {len(self.validation)} validation / {len(self.test)} "
                f"test cases from {self.source}")


def preprocessing_of(exp: Experiment) -> dict[str, Any]:
    """The experiment's preprocessing as plain data (what checkpoints store under ``preprocessing``)."""
    pre = exp.dataset.preprocessing
    return {"spacing": [float(s) for s in pre.spacing], "size": [int(s) for s in pre.size],
            "normalisation": pre.normalisation, "window": int(pre.window), "stride": int(pre.stride),
            "projection": pre.projection}


def load_cases(exp: Experiment, run: RunConfig, *, progress: bool = False) -> SplitCases:
    """Read the cases of ``exp`` for ``run``'s profile with its task and split them.

    ``fast``: the synthetic copy (generated and cached on first use, ``dataset.n_cases`` cases,
    ``dataset.synthetic_variant``); ``full``: the real dataset under the data root, every case or
    a stratified ``dataset.n_cases`` of them. :func:`cmrlab.data.datasets.get_dataset` makes the
    choice; an absent real dataset in ``full`` is an error naming the folder.
    """
    task = get_task(exp.task)
    if exp.dataset.name not in task.reads:
        raise ConfigError(f"dataset.name: the {exp.task} task reads {', '.join(task.reads)}-layout data only, "
                          f"got {exp.dataset.name!r}")
    location = get_dataset(exp.dataset.name, run=run, n_cases=exp.dataset.n_cases, seed=0,
                           progress=progress, variant=exp.dataset.synthetic_variant, fallback=False)
    folders = location.cases()
    if not folders:
        raise FileFormatError(location.path, f"holds no {exp.dataset.name} cases")
    cases = [task.read_case(Path(f), exp) for f in folders]
    split = exp.dataset.split
    if not location.synthetic and exp.dataset.n_cases is not None and exp.dataset.n_cases < len(cases):
        keep = stratified_order([c.group for c in cases], run.seed, split.stratify)[:exp.dataset.n_cases]
        cases = [cases[i] for i in sorted(keep)]
    parts = split_cases(cases, exp, seed=run.seed)
    return SplitCases(*parts, source=str(location), synthetic=location.synthetic, seed=run.seed,
                      task=exp.task, preprocessing=preprocessing_of(exp))


def split_cases(cases: Sequence[Any], exp: Experiment, seed: int = 0) -> tuple[list[Any], list[Any], list[Any]]:
    """(train, validation, test) with the counts of ``exp.dataset.split`` (fractions rounded, or
    integer counts), stratified by group (:func:`cmrlab.data.splits.stratified_order`). Training must get ≥ 1 case
    and test ≥ 1; otherwise :class:`~cmrlab.errors.ConfigError`."""
    split = exp.dataset.split
    n_train, n_val, n_test = split.counts(len(cases))
    if n_train < 1 or n_test < 1 or n_train + n_val + n_test > len(cases):
        raise ConfigError(f"dataset.split: {len(cases)} cases give {n_train} train / {n_val} validation / "
                          f"{n_test} test; training and test need at least one case each")
    order = stratified_order([c.group for c in cases], seed, split.stratify)
    test = [cases[i] for i in order[:n_test]]
    val = [cases[i] for i in order[n_test:n_test + n_val]]
    train = [cases[i] for i in order[n_test + n_val:n_test + n_val + n_train]]
    return train, val, test


def _check_cases(cases: SplitCases, exp: Experiment) -> None:
    if not isinstance(cases, SplitCases):
        raise ArgumentError(f"cases must be the SplitCases of load_cases, got {type(cases).__name__}")
    if cases.task != exp.task:
        raise ArgumentError(f"cases were read for the task {cases.task!r}; {exp.name} is a {exp.task!r} "
                            "experiment (call load_cases for it)")
    if get_task(exp.task).preprocesses_on_read and dict(cases.preprocessing) != preprocessing_of(exp):
        raise ArgumentError(f"cases were read with the preprocessing {dict(cases.preprocessing)}; "
                            f"{exp.name} needs {preprocessing_of(exp)} (call load_cases for it)")


# ----------------------------------------------------------------------------------------------
# Overrides and the run folder
# ----------------------------------------------------------------------------------------------
def parse_overrides(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["epochs=2", "optimizer.lr=1e-4"]`` (the CLI's ``--set``) → ``{"epochs": 2, "optimizer.lr": 0.0001}``.

    Values are read as YAML (``2`` an integer, ``[1, 1]`` a list, ``true``), and a number YAML
    leaves as text (``1e-4``) as a number. A mapping is returned as it is. An item without
    ``=``, a value that is not valid YAML (``[1, 2``), nested too deeply, or not a finite number
    where it reads as one (``nan``, ``inf``, ``.inf``, ``1e400``) is an
    :class:`~cmrlab.errors.ArgumentError` naming the key; whether the key exists and the value
    has the right type is checked by :func:`~cmrlab.train.experiment.load_experiment`.
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    if isinstance(items, (str, bytes)):
        raise ArgumentError(f"overrides must be a list of KEY=VALUE strings or a mapping, got the text {items!r}")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0].strip():
            raise ArgumentError(f"--set: expected KEY=VALUE (e.g. epochs=2), got {item!r}")
        key, text = (s.strip() for s in item.split("=", 1))
        try:
            value = parse_yaml_text(text, f"--set {key}") if text else ""
        except FileFormatError as exc:
            problem = exc.problem.replace("field '(top level)' ", "")
            hint = ("; quote text that holds YAML characters, e.g. --set 'name=\"a: b\"'"
                    if "not valid YAML" in problem else "")
            raise ArgumentError(f"--set {key}: the value {text[:80]!r} {problem}{hint}") from None
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if not math.isfinite(number):
                    raise ArgumentError(f"--set {key}: the value {text[:80]!r} is not a finite number")
                value = number
        out[key] = value
    return out


def _run_info(exp: Experiment, task: Task, seed: int, split: SplitCases) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "task": exp.task,
        "experiment": exp.name,
        "profile": exp.profile,
        "model": {"name": exp.model.name, "kwargs": dict(exp.model.kwargs)},
        "preprocessing": preprocessing_of(exp),
        **task.run_info(exp),
        "seed": int(seed),
        "cases": {"train": [c.id for c in split.train], "validation": [c.id for c in split.validation],
                  "test": [c.id for c in split.test]},
        "data": split.source,
    }


class _RunTrainer(Trainer):
    """A Trainer whose checkpoints also hold the runner's metadata (under :data:`RUN_KEY`)."""

    run_info: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state[RUN_KEY] = self.run_info
        return state


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("path", "epochs")}


@dataclass
class TrainResult:
    """What :func:`train_experiment` did: the run folder, its checkpoints, the history."""

    experiment: Experiment
    run_dir: Path
    checkpoint: Path
    last: Path
    history: list[dict[str, float]]
    n_items: int
    n_augmented: int
    cases: SplitCases
    seconds: float
    resumed_from_epoch: int = 0

    @property
    def n_windows(self) -> int:
        """The training items of a segmentation run are its 3-slice windows."""
        return self.n_items

    @property
    def best_epoch(self) -> int:
        """The epoch with the lowest validation loss (training loss without validation)."""
        key = "val_loss" if self.history and "val_loss" in self.history[0] else "loss"
        return int(min(self.history, key=lambda row: row[key])["epoch"]) if self.history else 0

    def summary(self) -> str:
        exp = self.experiment
        lines = [f"{exp.name} ({exp.profile} profile, task {exp.task}): model {exp.model.name} "
                 f"{exp.model.kwargs or '(full width)'}",
                 f"  data: {self.cases}",
                 f"  training items: {self.n_items} + {self.n_augmented} augmented; batch {exp.batch_size}, "
                 f"{exp.optimizer.name} lr {exp.optimizer.lr:g}"]
        if self.resumed_from_epoch:
            lines.append(f"  resumed after epoch {self.resumed_from_epoch}")
        for row in self.history:
            extra = "".join(f"  {k} {v:.4f}" for k, v in row.items() if k.startswith("val_"))
            lines.append(f"  epoch {int(row['epoch']):3d}  loss {row['loss']:.4f}{extra}")
        lines.append(f"  {len(self.history)} epochs, {self.seconds:.1f} s this session; best epoch "
                     f"{self.best_epoch}: {self.checkpoint}")
        return "\n".join(lines)


def train_experiment(
    config: str | os.PathLike,
    *,
    profile: str = "fast",
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    seed: int = 0,
    cases: SplitCases | None = None,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> TrainResult:
    """Train the experiment ``config`` (a name of :func:`~cmrlab.train.list_experiments` or a YAML
    path) at ``profile``; see the module docstring for every step.

    ``out``: the run folder (default ``runs/<experiment>-<profile>``); one that already holds a
    checkpoint is refused unless ``resume=True``, which continues its ``last.pt`` (the
    experiment must be the same one, except for ``epochs``). ``overrides``: ``KEY=VALUE``
    strings or a mapping (:func:`parse_overrides`). ``cases``: a :class:`SplitCases` from
    :func:`load_cases` for the same experiment and seed, to skip reading the data again.
    ``callbacks`` are added to the Trainer's (e.g. a :class:`~cmrlab.train.MonitorCallback`).
    """
    resume = check_bool("resume", resume)
    seed = check_int("seed", seed, 0)
    run = setup(profile=profile, seed=seed, device=device, data_root=data_root)
    exp = load_experiment(config, profile=run.profile.name, overrides=parse_overrides(overrides))
    task = get_task(exp.task)
    run_dir = Path(out).expanduser() if out is not None else Path("runs") / f"{exp.name}-{exp.profile}"
    if run_dir.exists() and not run_dir.is_dir():
        raise FileFormatError(run_dir, "is a file; the run folder must be a folder")
    last = run_dir / ModelCheckpoint.LAST
    resolved = exp.to_dict()
    if resume and (run_dir / "config.yaml").exists():
        _check_same_config(run_dir / "config.yaml", resolved)
    elif not resume and last.exists():
        raise CmrlabError(f"{run_dir} already holds a run ({last.name}); pass --resume (resume=True) to "
                          "continue it, or choose another --out folder")
    if cases is not None:
        _check_cases(cases, exp)
    split = cases if cases is not None else load_cases(exp, run, progress=progress)
    train_set, val_set, counts = task.datasets(split, exp, run.seed)
    val_loader = task.loader(val_set, exp, run.seed, train=False) if val_set is not None else None

    torch.manual_seed(run.seed)                                   # the same initial weights every time
    model = exp.build_model()
    info = _run_info(exp, task, run.seed, split)
    monitor = task.monitor() if val_loader is not None else "loss"
    trainer = _RunTrainer(
        model, task.loss(exp), exp.build_optimizer(model.parameters()),
        train_loader=task.loader(train_set, exp, run.seed, train=True),
        val_loader=val_loader, metrics=task.metrics(exp) if val_loader is not None else None,
        device=run.device, max_epochs=exp.epochs, seed=run.seed, progress=progress,
        callbacks=[*callbacks, CSVLogger(run_dir / "history.csv"), ModelCheckpoint(run_dir, monitor=monitor)],
    )
    trainer.run_info = info
    if resume and last.exists():
        before = check_run_info(last, load_checkpoint(last).get(RUN_KEY))
        for key in ("task", "experiment", "profile", "model", "preprocessing"):
            if before[key] != info[key]:
                raise ConfigError(f"--resume: {last} was trained with another {key} ({str(before[key])[:80]}, "
                                  f"now {str(info[key])[:80]}); only epochs may change on resume")
        trainer.resume(last)                                      # checked in full before anything is written
    resumed = trainer.epoch
    # everything is checked: only now is the run folder touched
    remove_partials(run_dir)                                      # left by a save that was killed
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    _write_text(run_dir / "run.json", json.dumps(info, indent=2) + "\n")
    start = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - start
    best = run_dir / ModelCheckpoint.BEST
    return TrainResult(exp, run_dir, best if best.exists() else last, last, history, counts["items"],
                       counts["augmented"], split, seconds, resumed)


def _check_same_config(path: Path, resolved: Mapping[str, Any]) -> None:
    """Refuse to resume a run folder whose ``config.yaml`` is damaged or another experiment's."""
    before = experiment_from_dict(load_yaml(path), path).to_dict()
    if _comparable(before) != _comparable(resolved):
        changed = sorted(k for k in set(before) | set(resolved)
                         if k not in ("path", "epochs") and before.get(k) != resolved.get(k))
        raise ConfigError(f"--resume: {path.parent} was trained with another configuration "
                          f"(differs in: {', '.join(changed)}); only epochs may change on resume")


# ----------------------------------------------------------------------------------------------
# Loading a trained model
# ----------------------------------------------------------------------------------------------
def check_run_info(path: str | os.PathLike, info: object) -> dict[str, Any]:
    """The runner's metadata of a checkpoint (its :data:`RUN_KEY` entry), checked field by field.

    Returns a clean copy (numbers as ``int``/``float``) with the keys that inference and resume
    use: ``format``, ``task`` (a key of :data:`~cmrlab.train.experiment.TASKS`; a checkpoint of
    the earlier ``cmrlab.train.segmentation/1`` format is a segmentation one), ``experiment``,
    ``profile``, ``model`` (``name`` in :data:`cmrlab.nn.registry.MODELS`, ``kwargs`` a mapping
    with text keys), ``preprocessing`` (``spacing``: 2 finite numbers > 0, ``size``: 2 whole
    numbers in [1, 4096], ``normalisation`` and ``projection`` among the known ones, ``window``
    and ``stride``: whole numbers in [1, 64]) and ``seed`` (a whole number >= 0). Anything
    else — a missing entry, another format, a wrong type, NaN — is a
    :class:`~cmrlab.errors.FileFormatError` naming ``path`` and the field.
    """
    path = Path(path)

    def fail(field: str, problem: str) -> FileFormatError:
        return FileFormatError(path, f"field {RUN_KEY + '.' + field!r} {problem}")

    def mapping(value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise fail(field, f"must be a mapping with text keys, got {type(value).__name__}")
        return value

    def number(value: object, field: str, **bounds: Any) -> float | int:
        if isinstance(value, str):  # metadata_number reads text; a checkpoint stores numbers
            raise fail(field, f"must be a number, got the text {value[:40]!r}")
        return metadata_number(path, f"{RUN_KEY}.{field}", value, **bounds)

    found = info.get("format") if isinstance(info, Mapping) else None
    if not isinstance(info, Mapping) or (found != RUN_FORMAT and found not in LEGACY_FORMATS):
        raise FileFormatError(path, f"is not a checkpoint of the cmrlab runner (no {RUN_KEY!r} entry of "
                                    f"format {RUN_FORMAT!r}; found {str(found)[:60]!r}); "
                                    "train it with `cmrlab train`")
    task = info.get("task", LEGACY_FORMATS.get(found))
    if not isinstance(task, str) or task not in TASKS:
        raise fail("task", f"must be one of {', '.join(TASKS)}, got {str(task)[:40]!r}")
    for key in ("experiment", "profile"):
        if not isinstance(info.get(key), str):
            raise fail(key, f"must be text, got {type(info.get(key)).__name__}")
    if info["profile"] not in ("fast", "full"):
        raise fail("profile", f"must be 'fast' or 'full', got {info['profile'][:40]!r}")
    model = mapping(info.get("model"), "model")
    name = model.get("name")
    if not isinstance(name, str):
        raise fail("model.name", f"must be text, got {type(name).__name__}")
    if name not in MODELS:
        raise FileFormatError(path, f"names the model {name[:60]!r}, which this cmrlab does not know"
                                    f"{did_you_mean(name, MODELS)}")
    kwargs = dict(mapping(model.get("kwargs"), "model.kwargs"))
    pre = mapping(info.get("preprocessing"), "preprocessing")
    clean_pre: dict[str, Any] = {}
    for key, integer, low, high in (("spacing", False, None, None), ("size", True, 1, 4096)):
        value = pre.get(key)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise fail(f"preprocessing.{key}", f"must be a list of 2 numbers, got {str(value)[:60]}")
        items = [number(v, f"preprocessing.{key}[{i}]", integer=integer, minimum=low, maximum=high)
                 for i, v in enumerate(value)]
        if key == "spacing" and not all(v > 0 for v in items):
            raise fail("preprocessing.spacing", f"must hold numbers > 0 (mm), got {items}")
        clean_pre[key] = items
    for key, choices, default in (("normalisation", NORMALISATIONS, None), ("projection", PROJECTIONS, "none")):
        value = pre.get(key, default)
        if value not in choices:
            raise fail(f"preprocessing.{key}", f"must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
        clean_pre[key] = value
    for key in ("window", "stride"):
        clean_pre[key] = number(pre.get(key), f"preprocessing.{key}", integer=True, minimum=1, maximum=64)
    seed = number(info.get("seed", 0), "seed", integer=True, minimum=0)
    return {**info, "format": RUN_FORMAT, "task": task, "model": {"name": name, "kwargs": kwargs},
            "preprocessing": clean_pre, "seed": seed}


def load_trained(checkpoint: str | os.PathLike, device: str | torch.device | None = None,
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a checkpoint the runner wrote, in eval mode on ``device``, and its run metadata.

    Only the checkpoint is needed: the model's name and keyword arguments come from its
    :data:`RUN_KEY` entry (checked by :func:`check_run_info`, returned as the second value, with
    the task and the preprocessing inference needs). ``device``: as
    :func:`cmrlab.config.select_device` (``None``: cuda, then mps, then cpu). A damaged
    checkpoint, metadata that does not build the model, or weights that do not fit it are a
    :class:`~cmrlab.errors.FileFormatError` naming the file.
    """
    device = select_device(device) if not isinstance(device, torch.device) else device
    path = Path(checkpoint).expanduser()
    state = load_checkpoint(path)
    info = check_run_info(path, state.get(RUN_KEY))
    weights = state.get("model")
    if not isinstance(weights, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                   for k, v in weights.items()):
        raise FileFormatError(path, "field 'model' must map parameter names to tensors (a model's state_dict)")
    name = info["model"]["name"]
    try:
        model = build_model(name, **info["model"]["kwargs"])
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the checkpoint's keyword arguments are at fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(path, f"field {RUN_KEY + '.model.kwargs'!r} does not build the model "
                                    f"{name!r} ({first})") from None
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(path, f"weights do not fit the model {name!r} ({first})") from None
    return model.to(device).eval(), info


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
def evaluate_experiment(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    *,
    profile: str = "fast",
    data_root: str | os.PathLike | None = None,
    device: str | None = None,
    out: str | os.PathLike | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    seed: int | None = None,
    cases: SplitCases | None = None,
    keep_predictions: bool = False,
) -> Evaluation:
    """Score ``checkpoint`` on the test cases of ``config`` with its task's metrics.

    The model, its width and the preprocessing come from the checkpoint; the data, split and
    evaluation settings from the experiment at ``profile`` with ``overrides`` (as for
    :func:`train_experiment`; give the ones that changed the data or the split in training),
    ``seed``: the split's, default the one the checkpoint was trained with. Writes
    ``test_metrics.csv`` (one row per scored item) to ``out`` (default: the checkpoint's folder).
    ``keep_predictions`` keeps what the task's viewer shows.
    """
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.exists():
        raise FileFormatError(ckpt, "checkpoint not found (train first: cmrlab train ...)")
    model_device = select_device(device)
    model, info = load_trained(ckpt, model_device)
    split_seed = int(info.get("seed", 0)) if seed is None else check_int("seed", seed, 0)
    run = setup(profile=profile, seed=split_seed, device=device, data_root=data_root)
    exp = load_experiment(config, profile=run.profile.name, overrides=parse_overrides(overrides))
    if info["task"] != exp.task:
        raise ConfigError(f"{ckpt} holds a model of the task {info['task']!r} but {exp.name} is a "
                          f"{exp.task!r} experiment; give the matching experiment")
    if info["model"]["name"] != exp.model.name:
        raise ConfigError(f"{ckpt} holds a {info['model']['name']!r} model but {exp.name} uses "
                          f"{exp.model.name!r}; give the matching experiment")
    if cases is None:
        cases = load_cases(exp, run)
    else:
        _check_cases(cases, exp)
    task = get_task(exp.task)
    with torch.no_grad():
        report = task.evaluate(model, info, cases.test, exp, keep_predictions=keep_predictions)
    target = Path(out).expanduser() if out is not None else ckpt.parent
    report.csv_path = write_rows(target / "test_metrics.csv", report.rows)
    return report


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (dicts with the same keys) as a CSV file, atomically; returns ``path``."""
    if path.exists() and path.is_dir():
        raise FileFormatError(path, "is a folder; cannot write the metrics CSV there")
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.getvalue()
    return atomic_write(path, lambda tmp: tmp.write_text(data, encoding="utf-8"))


# ----------------------------------------------------------------------------------------------
# Prediction on NIfTI files
# ----------------------------------------------------------------------------------------------
def nifti_name(path: Path) -> tuple[str, str] | None:
    """``(stem, suffix)`` of a ``.nii`` / ``.nii.gz`` file name, else ``None``."""
    name = path.name
    for suffix in _NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return None


def nifti_spacing(path: Path, img: Any) -> list[float]:
    """The in-plane and slice spacing (mm) of a NIfTI header, checked (finite and > 0)."""
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    if len(zooms) < 3 or not all(math.isfinite(z) and z > 0 for z in zooms):
        raise FileFormatError(path, f"header gives the voxel spacing {zooms} (pixdim[1:4]); every "
                                    "spacing must be a finite number > 0 mm")
    return zooms


def nifti_data(path: Path, img: Any, ndims: Sequence[int] = (3, 4)) -> np.ndarray:
    """The voxels of a NIfTI image as float32, refusing other dimensions and complex data."""
    data = np.asanyarray(img.dataobj)
    if data.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise FileFormatError(path, f"holds a {data.ndim}-D image; expected a {want} image "
                                    "(3-D: a volume, 4-D: a cine)")
    if np.iscomplexobj(data):
        raise FileFormatError(path, f"holds complex voxels ({data.dtype}); save the magnitude image "
                                    "(np.abs) and use that")
    if data.dtype.kind not in "biuf":
        raise FileFormatError(path, f"holds voxels of type {data.dtype}; expected numbers")
    data = np.asarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise FileFormatError(path, "holds NaN or infinite intensities")
    return data


def predict_files(checkpoint: str | os.PathLike, inputs: Sequence[str | os.PathLike], *,
                  out: str | os.PathLike, device: str | None = None) -> list[Path]:
    """Apply the model of ``checkpoint`` to NIfTI ``inputs``; write the task's outputs into ``out``.

    Segmentation writes ``<name>_seg.nii[.gz]`` (labels with the input's geometry), volume
    regression ``<name>_cam.nii[.gz]`` and ``<name>_volume.json``, frame detection
    ``<name>_frames.json`` (see each task's module). Every name is checked before any work: a
    missing checkpoint, a file that is not NIfTI or is damaged, an image the model cannot take is a
    :class:`~cmrlab.errors.FileFormatError` naming it; nothing is written for an input that
    fails, and every file is written atomically. Returns the paths written, in input order.
    """
    dev = select_device(device)
    model, info = load_trained(checkpoint, dev)
    task = get_task(info["task"])
    paths = [Path(p).expanduser() for p in inputs]
    if not paths:
        raise ArgumentError("inputs: give at least one NIfTI file")
    for path in paths:                       # check every name before any work
        if nifti_name(path) is None:
            raise FileFormatError(path, "is not a NIfTI file (.nii or .nii.gz); convert it first, e.g. "
                                        "with SimpleITK")
        if not path.is_file():
            raise FileFormatError(path, "not found" if not path.exists() else "is not a file")
    out_dir = Path(out).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileFormatError(out_dir, "exists and is not a folder")
    written: list[Path] = []
    for path in paths:
        img = load_nifti(path)
        stem, suffix = nifti_name(path)  # type: ignore[misc]
        with torch.no_grad():
            written.extend(task.predict_file(model, info, path, img, out_dir, stem, suffix))
    return written


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """``data`` as indented JSON, written atomically (the folder is made); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps(data, indent=2) + "\n")
    return path
