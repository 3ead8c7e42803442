"""The cardiac segmentation runner: train, evaluate and apply the chapter-5 models (thesis §4.1).

The chapter *2D or 3D? Segmenting the ventricles* and the ``cmrlab train / evaluate / predict``
commands share these three functions::

    from cmrlab.train.segmentation import train_experiment, evaluate_experiment, predict_files
    trained = train_experiment("cardiac-ch5-pspunet", profile="fast")     # runs/cardiac-ch5-pspunet-fast/
    report = evaluate_experiment("cardiac-ch5-pspunet", trained.checkpoint)
    print(report.summary())                                              # Tables 5.1 and 5.2 in structure
    predict_files(trained.checkpoint, ["patient101_4d.nii.gz"], out="seg/")

**Data.** :func:`load_cases` finds the dataset of the experiment (ACDC): in the ``fast`` profile the
synthetic copy (:func:`cmrlab.data.datasets.get_dataset`), in ``full`` the real one under the data
root (an error naming the missing folder otherwise, never a silent fallback). It keeps, per case,
the ED and ES frames with their labels (not the whole cine). :func:`split_cases` splits the cases
into train / validation / test with the experiment's fractions (thesis: 65 / 10 / 25 %),
stratified by diagnostic group: the cases of each group are shuffled (seeded), the groups are
dealt in turn into one order, and the test cases are the first of that order, then validation,
then training, so every part gets the groups in proportion.

**Training** (:func:`train_experiment`). Each volume of the frames in ``dataset.frames`` (the
thesis: ED only) is preprocessed as in the thesis
(:func:`cmrlab.data.preprocess.preprocess_volume`: min-max over the volume, in-plane bilinear
resampling to the configured spacing, labels nearest, centre crop/pad to the configured size),
cut into windows of 3 adjacent slices with stride 1 (:class:`cmrlab.data.patches.SliceWindowDataset`,
:math:`Z - 2` windows per volume), optionally extended by ``augmentation.extra`` augmented windows
(:func:`cmrlab.data.patches.augmentation_plan` picks them, each window at most ``max_uses``
times; :class:`~cmrlab.data.patches.PairedAugment` transforms each one with a generator seeded by
its number, so the extra windows are the same in every epoch, as offline augmentation is, without
holding them in memory). The :class:`~cmrlab.train.Trainer` then runs the experiment's optimiser,
loss, batch size and epochs with a :class:`~cmrlab.train.ModelCheckpoint` (``last.pt`` every epoch,
``best.pt`` on the lowest validation loss) and a :class:`~cmrlab.train.CSVLogger`
(``history.csv``) in the run folder (default ``runs/<experiment>-<profile>``), which also gets
the resolved experiment (``config.yaml``) and ``run.json``. Every checkpoint carries, under the key
``"cmrlab_run"``, what inference needs (model name and keyword arguments, preprocessing, label
names), so :func:`predict_files` needs only the checkpoint; :func:`check_run_info` checks that
entry field by field whenever a checkpoint is read. ``resume=True`` continues the run folder's
``last.pt`` exactly (the Trainer's guarantee, :meth:`~cmrlab.train.Trainer.resume`).

**The run folder is touched last.** The experiment (with ``--set`` overrides), a resumed folder's
``config.yaml`` (read with :func:`cmrlab.files.load_yaml` and checked by
:func:`~cmrlab.train.experiment.experiment_from_dict`), its ``last.pt`` and the model, loss,
optimizer and Trainer are all built and checked before anything is written: a mistake leaves
the folder absent or as it was. Then the temporary files of a save that was killed
(:func:`cmrlab.files.remove_partials`) are removed and ``config.yaml`` and ``run.json`` written.

**Evaluation** (:func:`evaluate_experiment`). For every test case, at ED and at ES: preprocess,
predict every window, average the windows' softmax probabilities per slice
(:func:`cmrlab.train.inference.predict_volume_windows`), bring the probabilities back to the
original grid (bilinear, :meth:`~cmrlab.data.preprocess.PreprocessGeometry.restore_to_original`;
outside the crop window: background) and take the most probable label [choice: restoring
probabilities rather than labels gives smoother borders on the original grid]. Then, on the
original grid, the Dice per region, the global Dice (:func:`cmrlab.nn.metrics.global_dice`) and
the relative absolute volume error of each region. As in the thesis, ES is reported without the
myocardium (its ES ground truth has none; ACDC and our synthetic data do have it, and the
per-case CSV keeps it) and the ES global Dice pools the LV and RV cavities only. Tables 5.1 and
5.2 give the median ± SD over the test cases (:meth:`Evaluation.summary`).

**Prediction** (:func:`predict_files`). NIfTI images in, 3-D or 4-D cine (every frame
segmented), label NIfTI out with exactly the input's shape, affine and header geometry
(spacing, origin, direction, qform/sform), ``uint8`` with ACDC label values
(:data:`cmrlab.data.acdc.LABELS`).

Labels follow ACDC throughout: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity (the
thesis numbered them 1 LV cavity, 2 LV myocardium, 3 RV cavity; its loss weights 0.1/0.3/0.3/0.3
give every tissue the same weight, so the renumbering changes nothing).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from cmrlab.config import RunConfig, select_device, setup
from cmrlab.data.acdc import LABELS, read_patient
from cmrlab.data.datasets import get_dataset
from cmrlab.data.io import load_nifti, save_labels_like
from cmrlab.files import atomic_write, load_yaml, parse_yaml_text, remove_partials
from cmrlab.data.patches import PairedAugment, SliceWindowDataset, augmentation_plan
from cmrlab.data.preprocess import preprocess_volume
from cmrlab.data.splits import stratified_order
from cmrlab.checks import check_bool, check_int, check_spacing, did_you_mean, metadata_number
from cmrlab.errors import ArgumentError, CmrlabError, ConfigError, FileFormatError
from cmrlab.nn import metrics as _metrics
from cmrlab.nn.metrics import foreground_dice
from cmrlab.nn.registry import MODELS, build_model
from cmrlab.train.callbacks import CSVLogger, ModelCheckpoint
from cmrlab.train.checkpoint import load_checkpoint
from cmrlab.train.experiment import Experiment, experiment_from_dict, load_experiment
from cmrlab.train.inference import predict_volume_windows
from cmrlab.train.trainer import Trainer, resumable_loader

__all__ = [
    "CaseData",
    "Evaluation",
    "REGIONS",
    "RUN_KEY",
    "SplitCases",
    "THESIS_TABLE_5_1",
    "THESIS_TABLE_5_2",
    "TrainResult",
    "check_run_info",
    "evaluate_experiment",
    "load_trained",
    "load_cases",
    "parse_overrides",
    "predict_files",
    "predict_volume",
    "split_cases",
    "train_experiment",
]

#: Key of the inference metadata inside every checkpoint the runner writes.
RUN_KEY = "cmrlab_run"
#: Version tag of that metadata.
RUN_FORMAT = "cmrlab.train.segmentation/1"
#: The regions of Tables 5.1 and 5.2, in the thesis's column order, with their ACDC label.
REGIONS: dict[str, int] = {"LV cavity": 3, "RV cavity": 1, "LV myocardium": 2}
#: Regions reported per frame (the thesis has no myocardium at ES).
FRAME_REGIONS: dict[str, tuple[str, ...]] = {
    "ED": ("LV cavity", "RV cavity", "LV myocardium"),
    "ES": ("LV cavity", "RV cavity"),
}
_SHORT = {"LV cavity": "lv", "RV cavity": "rv", "LV myocardium": "myo"}

#: Table 5.1 of the thesis: Dice, median ± SD over its 99 (ED) / 98 (ES) test cases (L3949-3979).
THESIS_TABLE_5_1: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "cardiac_unet3d": {
        "ED": {"whole": (0.907, 0.028), "LV cavity": (0.956, 0.021), "RV cavity": (0.904, 0.042),
               "LV myocardium": (0.875, 0.039)},
        "ES": {"whole": (0.826, 0.060), "LV cavity": (0.881, 0.073), "RV cavity": (0.781, 0.080)},
    },
    "pspunet": {
        "ED": {"whole": (0.910, 0.026), "LV cavity": (0.955, 0.021), "RV cavity": (0.905, 0.036),
               "LV myocardium": (0.875, 0.037)},
        "ES": {"whole": (0.848, 0.053), "LV cavity": (0.896, 0.053), "RV cavity": (0.798, 0.070)},
    },
}
#: Table 5.2 of the thesis: relative absolute volume error, median ± SD (L4040-4052).
THESIS_TABLE_5_2: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "cardiac_unet3d": {
        "ED": {"LV cavity": (0.025, 0.032), "RV cavity": (0.058, 0.070), "LV myocardium": (0.048, 0.049)},
        "ES": {"LV cavity": (0.115, 0.121), "RV cavity": (0.258, 0.221)},
    },
    "pspunet": {
        "ED": {"LV cavity": (0.026, 0.033), "RV cavity": (0.051, 0.047), "LV myocardium": (0.039, 0.051)},
        "ES": {"LV cavity": (0.084, 0.118), "RV cavity": (0.234, 0.196)},
    },
}
_MODEL_TITLES = {"cardiac_unet3d": "3D U-net", "pspunet": "PSPU-net"}
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


# ----------------------------------------------------------------------------------------------
# Cases and the split
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CaseData:
    """One case as the runner uses it: the ED and ES frames (X, Y, Z) with their labels.

    ``spacing`` is (3,) mm and ``affine`` 4×4 as in the NIfTI file; ``group`` the diagnostic
    group ("unknown" when the dataset gives none). The cine itself is not kept (memory).
    """

    id: str
    group: str
    ed_image: np.ndarray
    es_image: np.ndarray
    ed_labels: np.ndarray
    es_labels: np.ndarray
    spacing: np.ndarray
    affine: np.ndarray

    def frame(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(image, labels)`` of frame ``"ED"`` or ``"ES"``."""
        if name == "ED":
            return self.ed_image, self.ed_labels
        if name == "ES":
            return self.es_image, self.es_labels
        raise ArgumentError(f"frame must be 'ED' or 'ES', got {name!r}")


@dataclass(frozen=True, eq=False)
class SplitCases:
    """The cases of an experiment split into ``train``, ``validation`` and ``test``.

    ``source`` says where they came from (a :class:`~cmrlab.data.datasets.DatasetLocation`
    rendered as text). Pass it to :func:`train_experiment` and :func:`evaluate_experiment`
    (``cases=``) to read the data once for several runs.
    """

    train: list[CaseData]
    validation: list[CaseData]
    test: list[CaseData]
    source: str
    synthetic: bool
    seed: int

    def __str__(self) -> str:
        return (f"{len(self.train)} train / {len(self.validation)} validation / {len(self.test)} "
                f"test cases from {self.source}")


def _case_data(folder: Path) -> CaseData:
    p = read_patient(folder)
    return CaseData(p.id, p.group or "unknown", p.ed_image, p.es_image, p.ed_labels, p.es_labels,
                    np.asarray(p.spacing, dtype=np.float64), np.asarray(p.affine, dtype=np.float64))


def _data_source(exp: Experiment, run: RunConfig, progress: bool):
    """The dataset location for ``exp`` at ``run``'s profile (see the module docstring)."""
    if exp.dataset.name != "acdc":
        raise ConfigError(f"dataset.name: the segmentation runner reads ACDC-layout data only, got "
                          f"{exp.dataset.name!r}")
    if run.fast:
        return get_dataset("acdc", run=run, synthetic=True, n_cases=exp.dataset.n_cases, seed=0,
                           progress=progress)
    if not run.data_root.is_dir():
        raise CmrlabError(f"data root {run.data_root} does not exist: the full profile trains on the real "
                          "ACDC under the data root (--data-root DIR or $CMRLAB_DATA_ROOT); "
                          "python data_scripts/acdc.py explains how to get it")
    return get_dataset("acdc", run=run, synthetic=False)


def load_cases(exp: Experiment, run: RunConfig, *, progress: bool = False) -> SplitCases:
    """Read the cases of ``exp`` for ``run``'s profile and split them (module docstring).

    ``fast``: the synthetic ACDC (generated and cached on first use, ``dataset.n_cases`` cases);
    ``full``: the real ACDC under the data root, every case or a stratified ``dataset.n_cases``
    of them. Errors name a missing data root or dataset folder.
    """
    location = _data_source(exp, run, progress)
    folders = location.cases()
    if not folders:
        raise FileFormatError(location.path, "holds no ACDC patient folders")
    cases = [_case_data(Path(f)) for f in folders]
    split = exp.dataset.split
    if not location.synthetic and exp.dataset.n_cases is not None and exp.dataset.n_cases < len(cases):
        keep = stratified_order([c.group for c in cases], run.seed, split.stratify)[:exp.dataset.n_cases]
        cases = [cases[i] for i in sorted(keep)]
    parts = split_cases(cases, exp, seed=run.seed)
    return SplitCases(*parts, source=str(location), synthetic=location.synthetic, seed=run.seed)


def split_cases(cases: Sequence[CaseData], exp: Experiment, seed: int = 0,
                ) -> tuple[list[CaseData], list[CaseData], list[CaseData]]:
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


# ----------------------------------------------------------------------------------------------
# Datasets of windows
# ----------------------------------------------------------------------------------------------
def _preprocess(exp_pre: Mapping[str, Any], image: np.ndarray, spacing: Sequence[float],
                labels: np.ndarray | None = None, affine: np.ndarray | None = None):
    return preprocess_volume(image, spacing, labels, affine=affine,
                             target_spacing=tuple(exp_pre["spacing"]), size=tuple(exp_pre["size"]),
                             normalise=exp_pre["normalisation"] == "minmax")


def _window_dataset(cases: Sequence[CaseData], pre: Mapping[str, Any], frames: Sequence[str] = ("ED",),
                    ) -> SliceWindowDataset:
    """The windows of the listed frames of every case (preprocessed, with their labels)."""
    images, labels = [], []
    for case in cases:
        for frame in frames:
            image, lab = case.frame(frame)
            prep = _preprocess(pre, image, case.spacing, lab, case.affine)
            images.append(prep.image)
            labels.append(prep.labels)
    return SliceWindowDataset(images, labels, size=pre["window"], stride=pre["stride"])


class AugmentedWindows(Dataset):
    """The thesis's offline augmentation as a dataset: item ``i`` is window ``plan[i]`` of
    ``base`` transformed by ``augment`` with a generator seeded from ``(seed, i)``.

    The same item is the same augmented window in every epoch and on every run (what an offline
    set is), computed when asked for instead of being stored.
    """

    def __init__(self, base: Dataset, plan: np.ndarray, augment: PairedAugment, seed: int) -> None:
        self.base, self.plan, self.augment, self.seed = base, [int(i) for i in plan], augment, int(seed)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.base[self.plan[i]]
        state = np.random.SeedSequence([self.seed, i]).generate_state(2, dtype=np.uint32)
        g = torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))
        out, lab = self.augment(image, label, generator=g)
        return out, lab


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


def _run_info(exp: Experiment, seed: int, split: SplitCases) -> dict[str, Any]:
    pre = exp.dataset.preprocessing
    return {
        "format": RUN_FORMAT,
        "experiment": exp.name,
        "profile": exp.profile,
        "model": {"name": exp.model.name, "kwargs": dict(exp.model.kwargs)},
        "preprocessing": {"spacing": [float(s) for s in pre.spacing], "size": [int(s) for s in pre.size],
                          "normalisation": pre.normalisation, "window": int(pre.window), "stride": int(pre.stride)},
        "labels": {str(k): v for k, v in LABELS.items()},
        "num_classes": len(LABELS),
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
    n_windows: int
    n_augmented: int
    cases: SplitCases
    seconds: float
    resumed_from_epoch: int = 0

    @property
    def best_epoch(self) -> int:
        """The epoch with the lowest validation loss (training loss without validation)."""
        key = "val_loss" if self.history and "val_loss" in self.history[0] else "loss"
        return int(min(self.history, key=lambda row: row[key])["epoch"]) if self.history else 0

    def summary(self) -> str:
        exp = self.experiment
        lines = [f"{exp.name} ({exp.profile} profile): model {exp.model.name} {exp.model.kwargs or '(full width)'}",
                 f"  data: {self.cases}",
                 f"  windows: {self.n_windows} training + {self.n_augmented} augmented; batch {exp.batch_size}, "
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
    split = cases if cases is not None else load_cases(exp, run, progress=progress)

    pre = dataclasses.asdict(exp.dataset.preprocessing)
    train_set: Dataset = _window_dataset(split.train, pre, exp.dataset.frames)
    n_windows = len(train_set)
    n_extra = 0
    aug = exp.augmentation
    if aug.enabled and aug.extra > 0:
        n_extra = min(aug.extra, n_windows * aug.max_uses)      # the thesis's count, capped by max_uses
        plan = augmentation_plan(n_windows, n_extra, aug.max_uses, seed=run.seed)
        augment = PairedAugment(aug.rotation, aug.zoom, aug.shear)
        train_set = ConcatDataset([train_set, AugmentedWindows(train_set, plan, augment, run.seed)])
    val_loader = None
    if split.validation:
        val_loader = DataLoader(_window_dataset(split.validation, pre, exp.dataset.frames),
                                batch_size=exp.batch_size)

    torch.manual_seed(run.seed)                                   # the same initial weights every time
    model = exp.build_model()
    info = _run_info(exp, run.seed, split)
    trainer = _RunTrainer(
        model, exp.build_loss(), exp.build_optimizer(model.parameters()),
        train_loader=resumable_loader(train_set, exp.batch_size, seed=run.seed),
        val_loader=val_loader, metrics={"dice": foreground_dice}, device=run.device,
        max_epochs=exp.epochs, seed=run.seed, progress=progress,
        callbacks=[*callbacks, CSVLogger(run_dir / "history.csv"),
                   ModelCheckpoint(run_dir, monitor="val_loss" if val_loader is not None else "loss")],
    )
    trainer.run_info = info
    if resume and last.exists():
        before = check_run_info(last, load_checkpoint(last).get(RUN_KEY))
        for key in ("experiment", "profile", "model", "preprocessing"):
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
    return TrainResult(exp, run_dir, best if best.exists() else last, last, history, n_windows, n_extra,
                       split, seconds, resumed)


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
    use: ``format``, ``experiment``, ``profile``, ``model`` (``name`` in
    :data:`cmrlab.nn.registry.MODELS`, ``kwargs`` a mapping with text keys), ``preprocessing``
    (``spacing``: 2 finite numbers > 0, ``size``: 2 whole numbers in [1, 4096],
    ``normalisation``: ``"minmax"`` or ``"none"``, ``window`` and ``stride``: whole numbers in
    [1, 64]) and ``seed`` (a whole number >= 0). Anything else — a missing entry, another
    format, a wrong type, NaN — is a :class:`~cmrlab.errors.FileFormatError` naming ``path``
    and the field.
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

    if not isinstance(info, Mapping) or info.get("format") != RUN_FORMAT:
        found = info.get("format") if isinstance(info, Mapping) else None
        raise FileFormatError(path, f"is not a checkpoint of cmrlab.train.segmentation (no {RUN_KEY!r} "
                                    f"entry of format {RUN_FORMAT!r}; found {str(found)[:60]!r}); "
                                    "train it with `cmrlab train`")
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
    if pre.get("normalisation") not in ("minmax", "none"):
        raise fail("preprocessing.normalisation", f"must be 'minmax' or 'none', got {str(pre.get('normalisation'))[:40]!r}")
    clean_pre["normalisation"] = pre["normalisation"]
    for key in ("window", "stride"):
        clean_pre[key] = number(pre.get(key), f"preprocessing.{key}", integer=True, minimum=1, maximum=64)
    seed = number(info.get("seed", 0), "seed", integer=True, minimum=0)
    return {**info, "model": {"name": name, "kwargs": kwargs}, "preprocessing": clean_pre, "seed": seed}


def load_trained(checkpoint: str | os.PathLike, device: str | torch.device | None = None,
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a checkpoint the runner wrote, in eval mode on ``device``, and its run metadata.

    Only the checkpoint is needed: the model's name and keyword arguments come from its
    :data:`RUN_KEY` entry (checked by :func:`check_run_info`, returned as the second value, with
    the preprocessing inference needs). ``device``: as :func:`cmrlab.config.select_device`
    (``None``: cuda, then mps, then cpu). A damaged checkpoint, metadata that does not build the
    model, or weights that do not fit it are a :class:`~cmrlab.errors.FileFormatError` naming the file.
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


def predict_volume(model: nn.Module, image: np.ndarray, spacing: Sequence[float],
                   preprocessing: Mapping[str, Any], *, affine: np.ndarray | None = None,
                   batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Segment one volume ``image`` (X, Y, Z) on its own grid.

    Preprocess as in training, predict every window, average the window probabilities per slice,
    restore the probabilities to the input grid (bilinear; background outside the crop) and take
    the most probable label. Returns ``(labels, probabilities)``: (X, Y, Z) uint8 and
    (X, Y, Z, C) float32. The model's device is used.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ArgumentError(f"image must be a volume (X, Y, Z), got shape {image.shape}")
    if np.iscomplexobj(image):
        raise ArgumentError("image holds complex values; give the magnitude (np.abs) of a complex image")
    if image.dtype.kind not in "biuf":
        raise ArgumentError(f"image must hold real numbers, got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise ArgumentError("image holds NaN or infinite intensities")
    spacing = check_spacing("spacing", list(spacing)[:3], ndim=3)
    window = int(preprocessing["window"])
    if image.shape[2] < window:
        raise ArgumentError(f"image has {image.shape[2]} slices; the model reads windows of {window}")
    prep = _preprocess(preprocessing, image, spacing[:3], affine=affine)
    device = next(model.parameters()).device
    probs = predict_volume_windows(model, torch.from_numpy(prep.image).to(device), size=window,
                                   stride=int(preprocessing["stride"]), batch_size=batch_size)
    probs = probs.permute(1, 2, 3, 0).cpu().numpy()                       # (X', Y', Z, C)
    background = np.zeros(probs.shape[-1], np.float32)
    background[0] = 1.0
    restored = prep.geometry.restore_to_original(probs, order="linear")
    outside = restored.sum(-1) < 0.5                                      # outside the crop window
    restored[outside] = background
    return restored.argmax(-1).astype(np.uint8), restored.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
def _median_sd(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(np.median(v)), float(v.std(ddof=1)) if v.size > 1 else 0.0


@dataclass
class Evaluation:
    """Per-case metrics of one model on the test cases (:func:`evaluate_experiment`).

    ``rows``: one dict per case and frame with ``case``, ``group``, ``frame``, ``dice_global``,
    ``dice_lv``/``dice_rv``/``dice_myo``, ``rve_lv``/``rve_rv``/``rve_myo`` (relative absolute
    volume errors) and ``seconds`` (inference time of that volume: preprocessing, windows,
    reassembly, restoring). ``predictions`` (when kept): ``{(case, frame): (image, predicted,
    truth)}`` on the original grid.
    """

    model: str
    experiment: str
    profile: str
    rows: list[dict[str, Any]]
    csv_path: Path | None = None
    predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def values(self, frame: str, key: str) -> list[float]:
        """The column ``key`` of the rows of ``frame``."""
        return [r[key] for r in self.rows if r["frame"] == frame]

    def dice_table(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Table 5.1 for this model: ``{frame: {"whole" | region: (median, SD)}}``."""
        out = {}
        for frame in sorted({r["frame"] for r in self.rows}):
            row = {"whole": _median_sd(self.values(frame, "dice_global"))}
            for region in FRAME_REGIONS[frame]:
                row[region] = _median_sd(self.values(frame, f"dice_{_SHORT[region]}"))
            out[frame] = row
        return out

    def volume_table(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Table 5.2 for this model: ``{frame: {region: (median, SD)}}``."""
        return {frame: {region: _median_sd(self.values(frame, f"rve_{_SHORT[region]}"))
                        for region in FRAME_REGIONS[frame]}
                for frame in sorted({r["frame"] for r in self.rows})}

    @property
    def seconds_per_case(self) -> float:
        """Mean inference time of one volume (s)."""
        return float(np.mean([r["seconds"] for r in self.rows])) if self.rows else float("nan")

    def summary(self, thesis: bool = True) -> str:
        """Tables 5.1 and 5.2 in the thesis's structure (median ± SD), with its numbers beside ours."""
        title = _MODEL_TITLES.get(self.model, self.model)
        n = {f: len(self.values(f, "dice_global")) for f in ("ED", "ES")}
        lines = [f"{self.experiment} ({self.profile}): {title} on {n['ED']} ED / {n['ES']} ES test volumes"]
        lines.append("Table 5.1  Dice, median ± SD" + ("   [thesis]" if thesis else ""))
        cols = ["whole", *REGIONS]
        lines.append(f"  {'model (frame)':<18}" + "".join(f"{c:>26}" for c in cols))
        for frame, row in self.dice_table().items():
            ref = THESIS_TABLE_5_1.get(self.model, {}).get(frame, {}) if thesis else {}
            lines.append(f"  {title + ' (' + frame + ')':<18}" + "".join(f"{_cell(row.get(c), ref.get(c)):>26}" for c in cols))
        lines.append("Table 5.2  relative absolute volume error, median ± SD" + ("   [thesis]" if thesis else ""))
        lines.append(f"  {'model (frame)':<18}" + "".join(f"{c:>26}" for c in REGIONS))
        for frame, row in self.volume_table().items():
            ref = THESIS_TABLE_5_2.get(self.model, {}).get(frame, {}) if thesis else {}
            lines.append(f"  {title + ' (' + frame + ')':<18}" + "".join(f"{_cell(row.get(c), ref.get(c)):>26}" for c in REGIONS))
        lines.append(f"  inference {self.seconds_per_case:.2f} s per volume (thesis: PSPU-net 0.91 s, 3D U-net 1.11 s on a GPU)"
                     " — ES has no myocardium column, as in the thesis")
        if self.csv_path is not None:
            lines.append(f"  per-case metrics: {self.csv_path}")
        return "\n".join(lines)


def _cell(ours: tuple[float, float] | None, ref: tuple[float, float] | None) -> str:
    if ours is None:
        return "–"
    text = f"{ours[0]:.3f}±{ours[1]:.3f}"
    if ref is not None:
        text += f" [{ref[0]:.3f}±{ref[1]:.3f}]"
    return text


def _evaluate_volume(model: nn.Module, info: Mapping[str, Any], case: CaseData, frame: str,
                     ) -> tuple[dict[str, Any], np.ndarray]:
    image, truth = case.frame(frame)
    start = time.perf_counter()
    pred, _ = predict_volume(model, image, case.spacing, info["preprocessing"], affine=case.affine)
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {"case": case.id, "group": case.group, "frame": frame}
    regions = FRAME_REGIONS[frame]
    row["dice_global"] = _metrics.global_dice(pred, truth, labels=[REGIONS[r] for r in regions])
    for region, label in REGIONS.items():
        row[f"dice_{_SHORT[region]}"] = _metrics.dice(pred == label, truth == label)
        true_volume = _metrics.mask_volume(truth, case.spacing, label=label, slice_axis=2)
        predicted = _metrics.mask_volume(pred, case.spacing, label=label, slice_axis=2)
        row[f"rve_{_SHORT[region]}"] = (_metrics.relative_volume_error(predicted, true_volume)
                                       if true_volume > 0 else float("nan"))
    row["seconds"] = seconds
    return row, pred


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
    """Score ``checkpoint`` on the test cases of ``config`` at ED and ES (module docstring).

    The model, its width and the preprocessing come from the checkpoint; the data, split and
    frames from the experiment at ``profile`` with ``overrides`` (as for :func:`train_experiment`;
    give the ones that changed the data or the split in training), ``seed``: the split's, default
    the one the checkpoint was trained with. Writes ``test_metrics.csv`` (one row per case and frame) to
    ``out`` (default: the checkpoint's folder). ``keep_predictions`` keeps the label maps for
    a viewer.
    """
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.exists():
        raise FileFormatError(ckpt, "checkpoint not found (train first: cmrlab train ...)")
    run = setup(profile=profile, seed=0, device=device, data_root=data_root)
    exp = load_experiment(config, profile=run.profile.name, overrides=parse_overrides(overrides))
    model, info = load_trained(ckpt, run.device)
    if info["model"]["name"] != exp.model.name:
        raise ConfigError(f"{ckpt} holds a {info['model']['name']!r} model but {exp.name} uses "
                          f"{exp.model.name!r}; give the matching experiment")
    split_seed = int(info.get("seed", 0)) if seed is None else int(seed)
    if cases is None:
        run = setup(profile=profile, seed=split_seed, device=device, data_root=data_root)
        cases = load_cases(exp, run)
    rows, kept = [], {}
    with torch.no_grad():
        for case in cases.test:
            for frame in exp.evaluation.frames:
                row, pred = _evaluate_volume(model, info, case, frame)
                rows.append(row)
                if keep_predictions:
                    kept[(case.id, frame)] = (case.frame(frame)[0], pred, case.frame(frame)[1])
    target = Path(out).expanduser() if out is not None else ckpt.parent
    csv_path = _write_rows(target / "test_metrics.csv", rows)
    return Evaluation(info["model"]["name"], exp.name, exp.profile, rows, csv_path, kept)


def _write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
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
def _nifti_name(path: Path) -> tuple[str, str] | None:
    name = path.name
    for suffix in sorted(_NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


def predict_files(checkpoint: str | os.PathLike, inputs: Sequence[str | os.PathLike], *,
                  out: str | os.PathLike, device: str | None = None) -> list[Path]:
    """Segment NIfTI ``inputs`` with ``checkpoint``; write ``<name>_seg.nii[.gz]`` into ``out``.

    A 3-D image gives a 3-D label map; a 4-D cine (X, Y, Z, T) gives labels for every frame. The
    output has exactly the input's shape and geometry (its header is copied: affine, qform and
    sform, pixdim including the time step, units), data ``uint8`` with ACDC label values.
    Errors (:class:`~cmrlab.errors.FileFormatError`) name a missing checkpoint, a file that is not
    NIfTI or is damaged, or an image with fewer slices than a window; nothing is written for an
    input that fails. Returns the paths written, in input order.
    """
    dev = select_device(device)
    model, info = load_trained(checkpoint, dev)
    paths = [Path(p).expanduser() for p in inputs]
    if not paths:
        raise ArgumentError("inputs: give at least one NIfTI file")
    for path in paths:                       # check every name before any work
        if _nifti_name(path) is None:
            raise FileFormatError(path, "is not a NIfTI file (.nii or .nii.gz); convert it first, e.g. "
                                        "with SimpleITK")
        if not path.is_file():
            raise FileFormatError(path, "not found" if not path.exists() else "is not a file")
    out_dir = Path(out).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileFormatError(out_dir, "exists and is not a folder")
    written = []
    for path in paths:
        img = load_nifti(path)
        data = np.asanyarray(img.dataobj)
        if data.ndim not in (3, 4):
            raise FileFormatError(path, f"holds a {data.ndim}-D image; expected a 3-D volume or a 4-D cine")
        if np.iscomplexobj(data):
            raise FileFormatError(path, f"holds complex voxels ({data.dtype}); save the magnitude image "
                                        "(np.abs) and segment that")
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        if not all(math.isfinite(z) and z > 0 for z in zooms):
            raise FileFormatError(path, f"header gives the voxel spacing {zooms} (pixdim[1:4]); every "
                                        "spacing must be a finite number > 0 mm")
        spacing = zooms
        volumes = [data] if data.ndim == 3 else [data[..., t] for t in range(data.shape[3])]
        labels = []
        with torch.no_grad():
            for volume in volumes:
                try:
                    lab, _ = predict_volume(model, np.asarray(volume, dtype=np.float32), spacing,
                                            info["preprocessing"], affine=img.affine)
                except ArgumentError as exc:
                    raise FileFormatError(path, str(exc)) from None
                labels.append(lab)
        result = labels[0] if data.ndim == 3 else np.stack(labels, axis=-1)
        stem, suffix = _nifti_name(path)  # type: ignore[misc]
        written.append(save_labels_like(result, img, out_dir / f"{stem}_seg{suffix}"))
    return written
