"""The volume-regression task of the runner: LV volume from volume-only labels (cardiac ch. 6, thesis §4.2).

The chapter *Volume-only supervision* and ``cmrlab train / evaluate / predict
cardiac-ch6-regression-unet`` run the :class:`~cmrlab.nn.models.regression_unet.RegressionUNet` on
the runner (:mod:`cmrlab.train.runner`) with the :class:`VolumeRegressionTask` defined here.

**Cases.** The ED frame of every ACDC-layout case (:class:`cmrlab.train.segmentation.CaseData`).
The training target is one number per case, the LV ED volume in ml, measured on the original grid
from the manual mask (label 3 × voxel volume, :func:`cmrlab.nn.metrics.mask_volume`); the mask
itself is used only to score the CAM on the test cases (thesis L4640-4696).

**Preprocessing** (thesis: 2×2 mm, 88×88): min-max over the volume, in-plane bilinear resampling to
``preprocessing.spacing``, crop/pad to ``preprocessing.size``; the slice axis is untouched, so the
slice count varies between cases (8-14). The model reads ``(N, 1, D = slices, H, W)`` and each
case's voxel size ``(slice spacing, row, column)`` in mm, so its scanning module gives ml.

**Batches** (thesis L4851-4889): only cases with the same slice count share a batch
(:class:`~cmrlab.data.patches.SameShapeBatchSampler`), and with ``augmentation.paired`` every raw
batch is followed by an augmented batch of as many random training cases of that slice count
(rotation, shear, zoom, shift and additive noise of ``augmentation``; thesis: ±30°, ±20°, 0,
±15 px, noise mean 0.035 and SD 0.01). The augmented batch's transforms are seeded by
``(seed, epoch, batch)``, so a resumed run draws the same ones. [choice] The thesis forces the
one case left over per epoch into the next epoch's first batches; here each epoch's last batch
of a slice count is simply smaller.

**Loss**: Eq 6.1 (:class:`~cmrlab.nn.losses.VolumeRegressionLoss`, weights 1 / 100 / 1e-3) on the
model's volume, π̂, bottleneck and CAM. Validation: the loss and ``val_mae_ml``.

**Evaluation** (thesis L4932-5105): per test case the true and predicted volume, absolute (ml) and
relative (%) error, π̂, and the CAM's Dice with the LV mask on the preprocessed grid after the
threshold ``evaluation.options.cam_threshold`` (0.9) and the largest connected object, then again
after a ``dilation × dilation × 1`` in-plane dilation (5); over the cases Pearson's R, the
regression line (slope, bias) and Bland–Altman. :meth:`VolumeEvaluation.summary` prints them with
the thesis's figures beside ours.

**Prediction**: a 3-D NIfTI volume (or a 4-D cine: every frame) in; ``<name>_volume.json`` (the
volume in ml and π̂ per frame) and ``<name>_cam<suffix>`` (the CAM brought back to the input's grid,
float32 with the input's geometry) out.
"""
from __future__ import annotations

import random as _random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from cmrlab.checks import check_spacing
from cmrlab.data.augment import RandomAugment
from cmrlab.data.io import save_map_like
from cmrlab.data.patches import SameShapeBatchSampler
from cmrlab.data.preprocess import preprocess_volume
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.nn import metrics as _metrics
from cmrlab.train.experiment import Experiment
from cmrlab.train.runner import (
    Evaluation,
    SplitCases,
    Task,
    mean_sd,
    nifti_data,
    nifti_spacing,
    preprocessing_of,
    write_json,
)
from cmrlab.train.segmentation import CaseData, case_data

__all__ = ["THESIS_CH6", "PairedBatchSampler", "VolumeDataset", "VolumeEvaluation", "VolumeRegressionTask",
           "lv_volume", "predict_case"]

#: The thesis's ch. 6 results on its 98 test cases (L4998-5105): mean ± SD where two numbers.
THESIS_CH6: dict[str, Any] = {
    "abs_error_ml": (9.127, 18.888), "rel_error_pct": (8.50, 6.60), "pearson_r": 0.95,
    "slope": 0.81, "bias_ml": 19.41, "cam_dice": (0.720, 0.053), "cam_dice_dilated": (0.791, 0.042),
    "seconds_per_case": 1.07,
}
_LV = 3   # ACDC's LV cavity label


def lv_volume(case: CaseData) -> float:
    """The LV ED volume of ``case`` in ml from its mask on the original grid (the training target)."""
    return float(_metrics.mask_volume(case.ed_labels, case.spacing, label=_LV, slice_axis=2))


def _preprocess(pre: Mapping[str, Any], image: np.ndarray, spacing: Sequence[float],
                labels: np.ndarray | None = None, affine: np.ndarray | None = None):
    return preprocess_volume(image, spacing, labels, affine=affine, target_spacing=tuple(pre["spacing"]),
                             size=tuple(pre["size"]), normalise=pre["normalisation"] == "minmax")


def _model_input(volume: np.ndarray) -> torch.Tensor:
    """(X, Y, Z) → (1, D = Z, H = X, W = Y) float32."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(volume, (2, 0, 1)), dtype=np.float32))[None]


def _voxel(pre: Mapping[str, Any], slice_spacing: float) -> torch.Tensor:
    """The model's spacing (slice, row, column) in mm after preprocessing."""
    return torch.tensor([float(slice_spacing), float(pre["spacing"][0]), float(pre["spacing"][1])],
                        dtype=torch.float32)


class VolumeDataset(Dataset):
    """Preprocessed ED volumes with their LV volume (ml): item ``i`` is
    ``({"x": (1, D, H, W), "spacing": (3,)}, volume)``; item ``(i, key)`` is case ``i`` augmented
    with a generator seeded by ``key`` (what :class:`PairedBatchSampler` asks for).

    ``item_shapes`` (the ``(D, H, W)`` of every case) feeds :class:`SameShapeBatchSampler`.
    """

    def __init__(self, cases: Sequence[CaseData], pre: Mapping[str, Any], augment: RandomAugment | None = None) -> None:
        self.inputs, self.spacings, self.targets = [], [], []
        for case in cases:
            prep = _preprocess(pre, case.ed_image, case.spacing, affine=case.affine)
            self.inputs.append(_model_input(prep.image))
            self.spacings.append(_voxel(pre, case.spacing[2]))
            self.targets.append(torch.tensor(lv_volume(case), dtype=torch.float32))
        self.augment = augment
        self.item_shapes = [tuple(x.shape[1:]) for x in self.inputs]

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if isinstance(key, tuple):
            i, seed = key
            if self.augment is None:
                raise ArgumentError("this VolumeDataset has no augmentation; give augment=")
            g = torch.Generator().manual_seed(int(seed))
            x, _ = self.augment(self.inputs[i][None], generator=g)
            x = x[0]
        else:
            i, x = key, self.inputs[key]
        return {"x": x, "spacing": self.spacings[i]}, self.targets[i]


class PairedBatchSampler(Sampler[list]):
    """The thesis's ch. 6 batches: every raw batch of equal slice count, then (``paired=True``)
    an augmented batch of as many random cases of that slice count, drawn without replacement
    within the epoch where possible.

    Raw batches are :class:`SameShapeBatchSampler`'s; the augmented batch holds ``(item, key)``
    pairs whose key seeds that item's transform, from ``(seed, epoch, batch number)``. Call
    :meth:`set_epoch` at the start of each epoch (the Trainer does).
    """

    def __init__(self, shapes: Sequence[Sequence[int]] | Dataset, batch_size: int, *, paired: bool = True,
                 shuffle: bool = True, seed: int = 0) -> None:
        self.raw = SameShapeBatchSampler(shapes, batch_size, shuffle=shuffle, seed=seed)
        self.paired = bool(paired)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.raw.set_epoch(epoch)
        self.epoch = int(epoch)

    def batches(self) -> list[list]:
        out: list[list] = []
        rng = _random.Random(f"paired-{self.seed}-{self.epoch}")
        pools: dict[tuple[int, ...], list[int]] = {}
        for number, batch in enumerate(self.raw.batches()):
            out.append(batch)
            if not self.paired:
                continue
            shape = self.raw.shapes[batch[0]]
            pool = pools.setdefault(shape, [])
            picked = []
            for _ in batch:
                if not pool:
                    pool.extend(self.raw.buckets[shape])
                    rng.shuffle(pool)
                picked.append(pool.pop())
            base = int(np.random.SeedSequence([self.seed, self.epoch, number]).generate_state(1)[0])
            out.append([(i, base + k) for k, i in enumerate(picked)])
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.raw) * (2 if self.paired else 1)


def _augment(exp: Experiment) -> RandomAugment | None:
    aug = exp.augmentation
    if not aug.enabled:
        return None
    return RandomAugment(rotation=aug.rotation, shear=aug.shear, scale=aug.zoom, shift=aug.shift,
                         noise_mean=aug.noise_mean, noise_std=aug.noise_std, spatial_dims=3)


def _mae_ml(out: Any, target: torch.Tensor) -> torch.Tensor:
    return (out.volume.reshape(-1) - target.reshape(-1)).abs().mean()


def predict_case(model: nn.Module, image: np.ndarray, spacing: Sequence[float], preprocessing: Mapping[str, Any],
                 *, affine: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict[str, Any]:
    """The regression U-Net's reading of one ED volume ``image`` (X, Y, Z) with ``spacing`` (mm).

    Returns ``volume_ml``, ``pi``, ``cam`` (X', Y', Z) on the preprocessed grid, ``image`` (the
    preprocessed volume), ``labels`` (the preprocessed ``labels`` if given), ``geometry`` (to bring
    maps back to the input's grid) and ``area`` / ``diameter`` per slice (pixels).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ArgumentError(f"image must be a volume (X, Y, Z), got shape {image.shape}")
    if image.dtype.kind not in "biuf" or not np.isfinite(image).all():
        raise ArgumentError("image must hold finite real numbers")
    spacing = check_spacing("spacing", list(spacing)[:3], ndim=3)
    prep = _preprocess(preprocessing, image, spacing, labels, affine)
    device = next(model.parameters()).device
    x = _model_input(prep.image)[None].to(device)
    out = model(x, spacing=_voxel(preprocessing, spacing[2]).to(device))
    return {"volume_ml": float(out.volume[0]), "pi": float(out.pi[0]),
            "cam": np.transpose(out.cam[0, 0].float().cpu().numpy(), (1, 2, 0)),
            "image": prep.image, "labels": prep.labels, "geometry": prep.geometry,
            "area": out.area[0].cpu().numpy(), "diameter": out.diameter[0].cpu().numpy()}



@dataclass
class VolumeEvaluation(Evaluation):
    """The ch. 6 results of a regression U-Net on the test cases (:meth:`summary`).

    ``rows``: per case ``case``, ``group``, ``true_ml``, ``predicted_ml``, ``abs_error_ml``,
    ``rel_error_pct``, ``pi``, ``cam_dice``, ``cam_dice_dilated``, ``seconds``. ``predictions``
    (when kept): ``{case: predict_case's dict}`` for the viewer.
    """

    def agreement(self) -> dict[str, Any]:
        """Pearson R, the regression line and Bland–Altman of predicted vs true volumes."""
        true, pred = np.asarray(self.column("true_ml")), np.asarray(self.column("predicted_ml"))
        if true.size < 2:
            return {"pearson_r": float("nan"), "slope": float("nan"), "bias_ml": float("nan"),
                    "bland_altman": None}
        fit = _metrics.linear_fit(true, pred)
        r = _metrics.pearson_r(true, pred) if np.ptp(pred) > 0 and np.ptp(true) > 0 else float("nan")
        return {"pearson_r": r, "slope": fit.slope, "bias_ml": fit.intercept,
                "bland_altman": _metrics.bland_altman(pred, true)}

    def table(self) -> dict[str, Any]:
        """Our numbers under the keys of :data:`THESIS_CH6` (mean ± SD as pairs)."""
        agree = self.agreement()
        return {"abs_error_ml": mean_sd(self.column("abs_error_ml")),
                "rel_error_pct": mean_sd(self.column("rel_error_pct")),
                "pearson_r": agree["pearson_r"], "slope": agree["slope"], "bias_ml": agree["bias_ml"],
                "cam_dice": mean_sd(self.column("cam_dice")),
                "cam_dice_dilated": mean_sd(self.column("cam_dice_dilated")),
                "seconds_per_case": self.seconds_per_case}

    def summary(self, thesis: bool = True) -> str:
        ours = self.table()
        names = {"abs_error_ml": "absolute error (ml)", "rel_error_pct": "relative error (%)",
                 "pearson_r": "Pearson R", "slope": "slope", "bias_ml": "bias (ml)",
                 "cam_dice": "CAM Dice (0.9, largest object)", "cam_dice_dilated": "CAM Dice, dilated",
                 "seconds_per_case": "inference (s per case)"}
        lines = [f"{self.experiment} ({self.profile}): regression U-Net on {len(self.rows)} test ED volumes",
                 f"  {'':32}{'ours':>20}{'thesis (98 cases, GPU)' if thesis else '':>26}"]
        for key, title in names.items():
            value, ref = ours[key], THESIS_CH6[key]
            text = f"{value[0]:.3f} ± {value[1]:.3f}" if isinstance(value, tuple) else f"{value:.3f}"
            ref_text = (f"{ref[0]:.3f} ± {ref[1]:.3f}" if isinstance(ref, tuple) else f"{ref:.3f}") if thesis else ""
            lines.append(f"  {title:32}{text:>20}{ref_text:>26}")
        agree = self.agreement()
        if agree["bland_altman"] is not None:
            ba = agree["bland_altman"]
            lines.append(f"  Bland–Altman: bias {ba.bias:+.2f} ml, limits of agreement {ba.lower:+.2f} … {ba.upper:+.2f} ml")
        return self._finish(lines)


class VolumeRegressionTask(Task):
    """Volume regression on the runner (module docstring)."""

    name = "volume_regression"

    def read_case(self, folder: Path, exp: Experiment) -> CaseData:
        return case_data(folder)

    def datasets(self, split: SplitCases, exp: Experiment, seed: int):
        pre = preprocessing_of(exp)
        augment = _augment(exp)
        train = VolumeDataset(split.train, pre, augment)
        val = VolumeDataset(split.validation, pre) if split.validation else None
        paired = bool(augment is not None and exp.augmentation.paired)
        return train, val, {"items": len(train), "augmented": len(train) if paired else 0}

    def loader(self, dataset: Dataset, exp: Experiment, seed: int, *, train: bool) -> DataLoader:
        paired = train and getattr(dataset, "augment", None) is not None and exp.augmentation.paired
        sampler = PairedBatchSampler(dataset, exp.batch_size, paired=paired, shuffle=train, seed=seed)
        return DataLoader(dataset, batch_sampler=sampler)

    def loss(self, exp: Experiment):
        criterion = exp.build_loss()

        def loss(out: Any, target: torch.Tensor) -> torch.Tensor:
            return criterion(out.volume, target, out.pi, out.bottleneck, out.cam)

        return loss

    def metrics(self, exp: Experiment):
        return {"mae_ml": _mae_ml}

    def evaluate(self, model: nn.Module, info: Mapping[str, Any], cases: Sequence[CaseData], exp: Experiment, *,
                 keep_predictions: bool = False) -> VolumeEvaluation:
        threshold = float(exp.evaluation.option(self.name, "cam_threshold"))
        grow = int(exp.evaluation.option(self.name, "dilation"))
        rows, kept = [], {}
        for case in cases:
            start = time.perf_counter()
            result = predict_case(model, case.ed_image, case.spacing, info["preprocessing"],
                                  affine=case.affine, labels=case.ed_labels)
            seconds = time.perf_counter() - start
            truth = result["labels"] == _LV
            true_ml = lv_volume(case)
            rows.append({
                "case": case.id, "group": case.group, "true_ml": true_ml,
                "predicted_ml": result["volume_ml"], "abs_error_ml": abs(result["volume_ml"] - true_ml),
                "rel_error_pct": 100.0 * abs(result["volume_ml"] - true_ml) / true_ml if true_ml > 0 else float("nan"),
                "pi": result["pi"],
                "cam_dice": _metrics.thresholded_dice(result["cam"], truth, threshold),
                "cam_dice_dilated": _metrics.thresholded_dice(result["cam"], truth, threshold,
                                                              dilation=(grow, grow, 1)),
                "seconds": seconds,
            })
            if keep_predictions:
                kept[case.id] = result
        return VolumeEvaluation(info["model"]["name"], exp.name, exp.profile, rows, None, kept)

    def predict_file(self, model: nn.Module, info: Mapping[str, Any], path: Path, img: Any,
                     out_dir: Path, stem: str, suffix: str) -> list[Path]:
        data = nifti_data(path, img)
        spacing = nifti_spacing(path, img)
        volumes = [data] if data.ndim == 3 else [data[..., t] for t in range(data.shape[3])]
        readings, cams = [], []
        for volume in volumes:
            try:
                result = predict_case(model, volume, spacing, info["preprocessing"], affine=img.affine)
            except ArgumentError as exc:
                raise FileFormatError(path, str(exc)) from None
            cam = result["geometry"].restore_to_original(result["cam"][..., None], order="linear")[..., 0]
            cams.append(np.clip(cam, 0.0, 1.0).astype(np.float32))
            readings.append({"volume_ml": round(result["volume_ml"], 3), "pi": round(result["pi"], 4)})
        cam = cams[0] if data.ndim == 3 else np.stack(cams, axis=-1)
        cam_path = save_map_like(cam, img, out_dir / f"{stem}_cam{suffix}")
        summary = {"input": str(path), "experiment": info["experiment"], "unit": "ml",
                   "frames": readings, "cam": cam_path.name}
        return [write_json(out_dir / f"{stem}_volume.json", summary), cam_path]
