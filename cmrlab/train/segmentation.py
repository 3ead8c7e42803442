"""The segmentation task of the runner: train, evaluate and apply the chapter-5 models (thesis §4.1).

The chapter *2D or 3D? Segmenting the ventricles* and the ``cmrlab train / evaluate / predict``
commands use the runner (:mod:`cmrlab.train.runner`, whose functions this module re-exports)
with the :class:`SegmentationTask` defined here::

    from cmrlab.train.segmentation import train_experiment, evaluate_experiment, predict_files
    trained = train_experiment("cardiac-ch5-pspunet", profile="fast")     # runs/cardiac-ch5-pspunet-fast/
    report = evaluate_experiment("cardiac-ch5-pspunet", trained.checkpoint)
    print(report.summary())                                              # Tables 5.1 and 5.2 in structure
    predict_files(trained.checkpoint, ["patient101_4d.nii.gz"], out="seg/")

**Data.** The runner's :func:`~cmrlab.train.runner.load_cases` finds the dataset of the
experiment (ACDC; the choice between the real and the synthetic copy is
:func:`cmrlab.data.datasets.get_dataset`'s) and splits it, stratified by diagnostic group (thesis:
65 / 10 / 25 %). A case (:class:`CaseData`) keeps the ED and ES frames with their labels (not the
whole cine).

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
(``history.csv``) in the run folder (default ``runs/<experiment>-<profile>``); the validation
metric is :func:`cmrlab.nn.metrics.foreground_dice`. The run folder, checkpoints, resume and the
checks before anything is written are the runner's (:mod:`cmrlab.train.runner`).

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

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from cmrlab.checks import check_spacing
from cmrlab.data.acdc import LABELS, read_patient
from cmrlab.data.io import save_labels_like
from cmrlab.data.patches import PairedAugment, SliceWindowDataset, augmentation_plan
from cmrlab.data.preprocess import preprocess_volume
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.nn import metrics as _metrics
from cmrlab.nn.metrics import foreground_dice
from cmrlab.train.experiment import Experiment
from cmrlab.train.inference import predict_volume_windows
from cmrlab.train.runner import (
    RUN_KEY,
    Evaluation as _Evaluation,
    SplitCases,
    Task,
    TrainResult,
    check_run_info,
    evaluate_experiment,
    load_cases,
    load_trained,
    nifti_data,
    nifti_spacing,
    parse_overrides,
    predict_files,
    preprocessing_of,
    split_cases,
    train_experiment,
)
from cmrlab.train.trainer import resumable_loader

__all__ = [
    "CaseData",
    "SegmentationTask",
    "case_data",
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


def case_data(folder: Path) -> CaseData:
    """The :class:`CaseData` of an ACDC-layout patient folder (:func:`cmrlab.data.acdc.read_patient`)."""
    p = read_patient(folder)
    return CaseData(p.id, p.group or "unknown", p.ed_image, p.es_image, p.ed_labels, p.es_labels,
                    np.asarray(p.spacing, dtype=np.float64), np.asarray(p.affine, dtype=np.float64))



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
# Inference
# ----------------------------------------------------------------------------------------------
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
class Evaluation(_Evaluation):
    """Per-case metrics of a segmentation model on the test cases (:func:`evaluate_experiment`).

    ``rows``: one dict per case and frame with ``case``, ``group``, ``frame``, ``dice_global``,
    ``dice_lv``/``dice_rv``/``dice_myo``, ``rve_lv``/``rve_rv``/``rve_myo`` (relative absolute
    volume errors) and ``seconds`` (inference time of that volume: preprocessing, windows,
    reassembly, restoring). ``predictions`` (when kept): ``{(case, frame): (image, predicted,
    truth)}`` on the original grid.
    """

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
        return self._finish(lines)


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




# ----------------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------------
class SegmentationTask(Task):
    """Segmentation on the runner: windows of 3 slices in, label maps out (module docstring)."""

    name = "segmentation"

    def read_case(self, folder: Path, exp: Experiment) -> CaseData:
        return case_data(folder)

    def datasets(self, split: SplitCases, exp: Experiment, seed: int) -> tuple[Dataset, Dataset | None, dict[str, int]]:
        pre = preprocessing_of(exp)
        train_set: Dataset = _window_dataset(split.train, pre, exp.dataset.frames)
        n_windows = len(train_set)
        n_extra = 0
        aug = exp.augmentation
        if aug.enabled and aug.extra > 0:
            n_extra = min(aug.extra, n_windows * aug.max_uses)      # the thesis's count, capped by max_uses
            plan = augmentation_plan(n_windows, n_extra, aug.max_uses, seed=seed)
            augment = PairedAugment(aug.rotation, aug.zoom, aug.shear)
            train_set = ConcatDataset([train_set, AugmentedWindows(train_set, plan, augment, seed)])
        val_set = _window_dataset(split.validation, pre, exp.dataset.frames) if split.validation else None
        return train_set, val_set, {"items": n_windows, "augmented": n_extra}

    def loader(self, dataset: Dataset, exp: Experiment, seed: int, *, train: bool) -> DataLoader:
        if train:
            return resumable_loader(dataset, exp.batch_size, seed=seed)
        return DataLoader(dataset, batch_size=exp.batch_size)

    def loss(self, exp: Experiment):
        return exp.build_loss()

    def metrics(self, exp: Experiment):
        return {"dice": foreground_dice}

    def run_info(self, exp: Experiment) -> dict[str, Any]:
        return {"labels": {str(k): v for k, v in LABELS.items()}, "num_classes": len(LABELS)}

    def evaluate(self, model: nn.Module, info: Mapping[str, Any], cases: Sequence[CaseData], exp: Experiment, *,
                 keep_predictions: bool = False) -> Evaluation:
        rows, kept = [], {}
        for case in cases:
            for frame in exp.evaluation.frames:
                row, pred = _evaluate_volume(model, info, case, frame)
                rows.append(row)
                if keep_predictions:
                    kept[(case.id, frame)] = (case.frame(frame)[0], pred, case.frame(frame)[1])
        return Evaluation(info["model"]["name"], exp.name, exp.profile, rows, None, kept)

    def predict_file(self, model: nn.Module, info: Mapping[str, Any], path: Path, img: Any,
                     out_dir: Path, stem: str, suffix: str) -> list[Path]:
        """A 3-D image gives a 3-D label map, a 4-D cine (X, Y, Z, T) labels for every frame, in
        ``<stem>_seg<suffix>`` with exactly the input's shape and geometry (its header is copied:
        affine, qform and sform, pixdim including the time step, units), ``uint8`` with ACDC
        label values (:data:`cmrlab.data.acdc.LABELS`)."""
        data = nifti_data(path, img)
        spacing = nifti_spacing(path, img)
        volumes = [data] if data.ndim == 3 else [data[..., t] for t in range(data.shape[3])]
        labels = []
        for volume in volumes:
            try:
                lab, _ = predict_volume(model, volume, spacing, info["preprocessing"], affine=img.affine)
            except ArgumentError as exc:
                raise FileFormatError(path, str(exc)) from None
            labels.append(lab)
        result = labels[0] if data.ndim == 3 else np.stack(labels, axis=-1)
        return [save_labels_like(result, img, out_dir / f"{stem}_seg{suffix}")]
