"""The frame-detection task of the runner: which frame is ES, which is ED (cardiac ch. 7, thesis §4.3).

The chapter *When is end-systole?* and ``cmrlab train / evaluate / predict
cardiac-ch7-framedetector-wce`` (``-wdl``, ``-frames``) run the
:class:`~cmrlab.nn.models.frame_detector.FrameDetector` on the runner (:mod:`cmrlab.train.runner`)
with the :class:`FrameDetectionTask` defined here.

**Labels from the frames that carry contours** (thesis L5602-5669, :func:`event_frames`): a
cine's manual contours exist on two frames. The thesis's data contour the myocardium at ED only,
so the frame with myocardium is ED and the other one ES; ACDC contours the myocardium on both,
and then ED is the contoured frame with the larger LV cavity (ED ends the filling: the LV is at
its largest). Each frame gets a one-hot vector over (ES, ED, background).

**Preprocessing** (:func:`project_cine`; thesis: 1×1 mm, 176×176): in-plane bilinear resampling
of every frame to ``preprocessing.spacing`` and a crop/pad to ``preprocessing.size``, min-max
normalisation per frame (``minmax_per_frame``, over all the frame's slices), then the median
projection over the 2nd to the penultimate slice (:func:`cmrlab.data.intensity.median_projection`):
one image per frame, ``(H, W, T)``, whatever the slice count (the first and last slices may lie
outside the LV, at its base or apex; the median ignores the odd slice out). Cases are projected
when they are read (only the projection is kept: a cine is 30 times larger).

**Batches**: cases with the same frame count share a batch
(:class:`~cmrlab.data.patches.SameShapeBatchSampler`; thesis: batches of 2). **Offline
augmentation**: ``augmentation.copies`` transformed copies of every training case (thesis: 6, so
259 → 1813 sequences), each with one random in-plane transform for all its frames (rotation,
shear, zoom, shift in pixels; thesis ±20°, ±10°, ±44 px at 1 mm) and a circular shift in time by
0 … ``temporal_shift`` of its length (thesis 40 %): the cycle repeats, so the frames that leave
at the end come back at the start, and the ES and ED positions move. Copy ``k`` of a case is the
same in every epoch (seeded by ``(seed, k)``), as an offline set is, without being stored.

**Losses**: Eq 7.1 (weighted cross-entropy, 100 on the ES and ED frames) or Eq 7.2 (weighted Dice,
0.45 / 0.45 / 0.1) on the per-frame softmax; or the thesis's future-work head (``head="frames"``:
a softmax across the frames for ES and for ED) with :func:`cmrlab.nn.losses.frame_cross_entropy`.

**Evaluation** (thesis L5919-5996): one ES and one ED frame per case by the naïve method (the most
probable frame) and the central one (the centre of the run of frames with p >
``evaluation.options.central_threshold``, 0.9; the naïve frame when there is none, counted in the
rows as a fallback); the frame difference ``|selected − true|`` and the relative one (divided by
the frame count), both as the thesis defines them and the short way round the cycle
(``circular``: frame 34 of 35 is one frame from frame 0). :meth:`FrameEvaluation.summary` prints
Table 7.1 in the thesis's structure with its numbers beside ours.

**Prediction**: a 4-D cine NIfTI (X, Y, Z, T) in, ``<name>_frames.json`` out: the ES and ED frames
(0-based, and 1-based as ACDC's ``Info.cfg`` counts), by both methods, and the per-frame
probabilities.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cmrlab.checks import check_spacing
from cmrlab.data.acdc import read_patient
from cmrlab.data.augment import RandomAugment
from cmrlab.data.intensity import median_projection
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

__all__ = ["THESIS_TABLE_7_1", "FrameCase", "FrameDataset", "FrameDetectionTask", "FrameEvaluation",
           "event_frames", "frame_targets", "predict_frames", "project_cine"]

_LV, _MYO = 3, 2
#: Table 7.1 of the thesis (98 test cases, L6121-6181): frame difference mean ± SD and relative
#: frame difference mean ± SD, by loss, frame and method.
THESIS_TABLE_7_1: dict[str, dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]]] = {
    "frame_weighted_cross_entropy": {
        ("ES", "naive"): ((3.121, 3.500), (0.090, 0.101)), ("ES", "central"): ((2.505, 2.249), (0.072, 0.065)),
        ("ED", "naive"): ((0.141, 0.619), (0.005, 0.018)), ("ED", "central"): ((0.141, 0.619), (0.005, 0.018)),
    },
    "weighted_dice": {
        ("ES", "naive"): ((1.747, 1.849), (0.051, 0.053)), ("ES", "central"): ((1.242, 1.45), (0.036, 0.042)),
        ("ED", "naive"): ((0.0, 0.0), (0.0, 0.0)), ("ED", "central"): ((0.0, 0.0), (0.0, 0.0)),
    },
}
_LOSS_TITLES = {"frame_weighted_cross_entropy": "WCE (Eq 7.1)", "weighted_dice": "WDL (Eq 7.2)",
                "frame_cross_entropy": "softmax across frames"}


def event_frames(contoured: Mapping[int, np.ndarray]) -> tuple[int, int]:
    """``(es, ed)``: the 0-based ES and ED frames of a cine from its contoured frames.

    ``contoured`` maps each frame that carries manual contours to its label map (ACDC values:
    2 myocardium, 3 LV cavity). With exactly two frames: if only one has myocardium it is ED (the
    thesis's data contour the myocardium at ED only), otherwise ED is the one with the larger LV
    cavity. Anything else is an ArgumentError.
    """
    if len(contoured) != 2:
        raise ArgumentError(f"need exactly 2 contoured frames (ED and ES), got {len(contoured)}")
    (a, la), (b, lb) = sorted(contoured.items())
    myo = [bool((np.asarray(la) == _MYO).any()), bool((np.asarray(lb) == _MYO).any())]
    if myo[0] != myo[1]:
        return (b, a) if myo[0] else (a, b)
    lv_a, lv_b = int((np.asarray(la) == _LV).sum()), int((np.asarray(lb) == _LV).sum())
    if lv_a == lv_b:
        raise ArgumentError(f"frames {a} and {b} have the same LV cavity size; cannot tell ED from ES")
    return (b, a) if lv_a > lv_b else (a, b)


def frame_targets(n_frames: int, es: int, ed: int) -> torch.Tensor:
    """One-hot frame labels (3, T) in the order (ES, ED, background)."""
    if es == ed or not (0 <= es < n_frames and 0 <= ed < n_frames):
        raise ArgumentError(f"ES ({es}) and ED ({ed}) must be two different frames of 0..{n_frames - 1}")
    y = torch.zeros(3, n_frames)
    y[0, es] = y[1, ed] = 1.0
    y[2] = 1.0 - y[0] - y[1]
    return y


def project_cine(cine: np.ndarray, spacing: Sequence[float], preprocessing: Mapping[str, Any]) -> np.ndarray:
    """A cine (X, Y, Z, T) → the model's frames (H, W, T), float32 (module docstring)."""
    cine = np.asarray(cine)
    if cine.ndim != 4:
        raise ArgumentError(f"a cine must be 4-D (X, Y, Z, T), got shape {cine.shape}")
    if cine.dtype.kind not in "biuf" or not np.isfinite(cine).all():
        raise ArgumentError("the cine must hold finite real numbers")
    spacing = check_spacing("spacing", list(spacing)[:3], ndim=3)
    prep = preprocess_volume(cine, spacing, target_spacing=tuple(preprocessing["spacing"]),
                             size=tuple(preprocessing["size"]), normalise=False)
    frames = prep.image.astype(np.float32)                               # (H, W, Z, T)
    if preprocessing["normalisation"] == "minmax_per_frame":
        low = frames.min(axis=(0, 1, 2), keepdims=True)
        span = frames.max(axis=(0, 1, 2), keepdims=True) - low
        frames = np.where(span > 0, (frames - low) / np.where(span > 0, span, 1.0), 0.0)
    elif preprocessing["normalisation"] == "minmax":
        low, span = frames.min(), frames.max() - frames.min()
        frames = (frames - low) / span if span > 0 else np.zeros_like(frames)
    return median_projection(frames, slice_axis=2)                       # (H, W, T)


def _model_input(frames: np.ndarray) -> torch.Tensor:
    """(H, W, T) → (1, T, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(frames, (2, 0, 1)), dtype=np.float32))[None]


@dataclass(frozen=True, eq=False)
class FrameCase:
    """One cine as the frame task keeps it: its projected frames ``(H, W, T)`` (preprocessed),
    the 0-based ``es`` and ``ed`` frames from its contours, and the original ``spacing``."""

    id: str
    group: str
    frames: np.ndarray
    es: int
    ed: int
    spacing: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[2])


class FrameDataset(Dataset):
    """Item ``i < N``: case ``i`` as ``((1, T, H, W), one-hot (3, T))``; item ``N·(1 + k) + i`` is
    copy ``k`` of case ``i``, transformed and shifted in time (module docstring), seeded by
    ``(seed, item)``. ``item_shapes`` feeds :class:`SameShapeBatchSampler`."""

    def __init__(self, cases: Sequence[FrameCase], *, copies: int = 0, augment: RandomAugment | None = None,
                 temporal_shift: float = 0.0, seed: int = 0) -> None:
        self.inputs = [_model_input(c.frames) for c in cases]
        self.targets = [frame_targets(c.n_frames, c.es, c.ed) for c in cases]
        self.copies = int(copies) if augment is not None else 0
        self.augment, self.temporal_shift, self.seed = augment, float(temporal_shift), int(seed)
        self.item_shapes = [tuple(x.shape[1:]) for x in self.inputs] * (1 + self.copies)

    def __len__(self) -> int:
        return len(self.inputs) * (1 + self.copies)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.inputs)
        i = item % n
        x, y = self.inputs[i], self.targets[i]
        if item < n:
            return x, y
        state = np.random.SeedSequence([self.seed, item]).generate_state(2, dtype=np.uint32)
        g = torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))
        x, _ = self.augment(x[None], generator=g)                # one transform for every frame
        x = x[0]
        most = int(self.temporal_shift * x.shape[1])
        shift = int(torch.randint(0, most + 1, (1,), generator=g)) if most > 0 else 0
        return torch.roll(x, shift, dims=1), torch.roll(y, shift, dims=1)


def _frame_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean naïve frame difference of ES and ED over a batch, the short way round (validation)."""
    t = target.shape[-1]
    diff = (out[:, :2].argmax(-1) - target[:, :2].argmax(-1)).abs()
    return torch.minimum(diff, t - diff).float().mean()


def predict_frames(model: nn.Module, frames: np.ndarray) -> np.ndarray:
    """The model's probabilities for projected frames ``(H, W, T)``: (C, T) as a NumPy array (C =
    3 classes per frame, or 2 distributions over the frames for ``head="frames"``)."""
    device = next(model.parameters()).device
    return model(_model_input(frames)[None].to(device))[0].float().cpu().numpy()


def _select(probs: np.ndarray, head: str, method: str, threshold: float) -> tuple[tuple[int, int], tuple[bool, bool]]:
    """``((es, ed), (es fell back, ed fell back))`` by ``method``; the frames head has no run to
    centre on (each row sums to 1 over the frames), so it always takes the most probable frame."""
    if head == "frames":
        return (int(probs[0].argmax()), int(probs[1].argmax())), (False, False)
    es, ed = _metrics.es_ed_frames(probs, method=method, threshold=threshold, circular=True)
    fallback = (method == "central" and probs[0].max() <= threshold, method == "central" and probs[1].max() <= threshold)
    return (int(es), int(ed)), (bool(fallback[0]), bool(fallback[1]))



@dataclass
class FrameEvaluation(Evaluation):
    """The ch. 7 results of a frame detector on the test cases (:meth:`summary`).

    ``rows``: per case ``case``, ``group``, ``n_frames``, ``es_true``, ``ed_true`` and, for each
    ``method`` in (naive, central) and event in (es, ed): ``<event>_<method>`` (the frame),
    ``fd_<event>_<method>`` (frame difference, the thesis's), ``fdc_<event>_<method>`` (the short
    way round the cycle), ``rfd_<event>_<method>`` (relative), ``fallback_<event>`` (central found
    no frame above the threshold); ``seconds``. ``predictions`` (when kept): ``{case: (frames,
    probabilities)}``. ``loss`` names the training loss (for the thesis's row).
    """

    loss: str = ""

    def table(self, circular: bool = False) -> dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]]:
        """Table 7.1 for this model: ``{(frame, method): ((mean, SD), (relative mean, SD))}``."""
        out = {}
        for frame in ("ES", "ED"):
            for method in ("naive", "central"):
                key = f"{frame.lower()}_{method}"
                diffs = self.column(("fdc_" if circular else "fd_") + key)
                rel = [d / n for d, n in zip(diffs, self.column("n_frames"))]
                out[(frame, method)] = (mean_sd(diffs), mean_sd(rel))
        return out

    def within(self, frames: int = 1, event: str = "es", method: str = "central", circular: bool = True) -> float:
        """The fraction of cases whose ``event`` frame is at most ``frames`` off."""
        diffs = np.asarray(self.column(("fdc_" if circular else "fd_") + f"{event}_{method}"))
        return float((diffs <= frames).mean()) if diffs.size else float("nan")

    def summary(self, thesis: bool = True) -> str:
        title = _LOSS_TITLES.get(self.loss, self.loss)
        counts = sorted(set(self.column("n_frames")))
        lines = [f"{self.experiment} ({self.profile}): FrameDetector, {title}, on {len(self.rows)} test cines "
                 f"({', '.join(str(c) for c in counts)} frames)",
                 "Table 7.1  frame difference, mean ± SD (relative)   [thesis]; "
                 "'round the cycle': the short way round"]
        plain, wrapped = self.table(), self.table(circular=True)
        ref_table = THESIS_TABLE_7_1.get(self.loss, {}) if thesis else {}
        for (frame, method), (fd, rel) in plain.items():
            ref = ref_table.get((frame, method))
            ref_text = f"   [{ref[0][0]:.3f} ± {ref[0][1]:.3f} ({ref[1][0]:.3f} ± {ref[1][1]:.3f})]" if ref else ""
            lines.append(f"  {frame} ({method:7}) {fd[0]:6.3f} ± {fd[1]:.3f} ({rel[0]:.3f} ± {rel[1]:.3f})"
                         f"   round the cycle {wrapped[(frame, method)][0][0]:.3f}{ref_text}")
        fallback = np.mean(self.column("fallback_es") + self.column("fallback_ed")) if self.rows else float("nan")
        lines.append(f"  ES within 1 frame (central, round the cycle): {100 * self.within():.0f} % of cases; "
                     f"central fell back to naïve for {100 * fallback:.0f} % of the events")
        lines.append(f"  inference {self.seconds_per_case * 1000:.1f} ms per case (thesis: 0.1 s on a GPU)")
        return self._finish(lines)


class FrameDetectionTask(Task):
    """Frame detection on the runner (module docstring)."""

    name = "frame_detection"
    preprocesses_on_read = True

    def read_case(self, folder: Path, exp: Experiment) -> FrameCase:
        p = read_patient(folder)
        try:
            es, ed = event_frames({p.ed - 1: p.ed_labels, p.es - 1: p.es_labels})
        except ArgumentError as exc:
            raise FileFormatError(folder, f"its contoured frames do not tell ED from ES ({exc})") from None
        frames = project_cine(p.image4d, p.spacing, preprocessing_of(exp))
        return FrameCase(p.id, p.group or "unknown", frames, es, ed, np.asarray(p.spacing, dtype=np.float64))

    def datasets(self, split: SplitCases, exp: Experiment, seed: int):
        aug = exp.augmentation
        augment = None
        if aug.enabled and aug.copies > 0:
            augment = RandomAugment(rotation=aug.rotation, shear=aug.shear, scale=aug.zoom, shift=aug.shift,
                                    noise_mean=aug.noise_mean, noise_std=aug.noise_std, spatial_dims=3)
        train = FrameDataset(split.train, copies=aug.copies, augment=augment,
                             temporal_shift=aug.temporal_shift, seed=seed)
        val = FrameDataset(split.validation) if split.validation else None
        return train, val, {"items": len(split.train), "augmented": len(train) - len(split.train)}

    def loader(self, dataset: Dataset, exp: Experiment, seed: int, *, train: bool) -> DataLoader:
        sampler = SameShapeBatchSampler(dataset, exp.batch_size, shuffle=train, seed=seed)
        return DataLoader(dataset, batch_sampler=sampler)

    def loss(self, exp: Experiment):
        return exp.build_loss()

    def metrics(self, exp: Experiment):
        return {"frame_error": _frame_error}

    def run_info(self, exp: Experiment) -> dict[str, Any]:
        head = exp.model.kwargs.get("head", "classes")
        return {"classes": ["ES", "ED"] if head == "frames" else ["ES", "ED", "background"],
                "loss": exp.loss.name,
                "central_threshold": float(exp.evaluation.option(self.name, "central_threshold"))}

    def evaluate(self, model: nn.Module, info: Mapping[str, Any], cases: Sequence[FrameCase], exp: Experiment, *,
                 keep_predictions: bool = False) -> FrameEvaluation:
        threshold = float(exp.evaluation.option(self.name, "central_threshold"))
        head = info["model"]["kwargs"].get("head", "classes")
        rows, kept = [], {}
        for case in cases:
            start = time.perf_counter()
            probs = predict_frames(model, case.frames)
            picks = {m: _select(probs, head, m, threshold) for m in ("naive", "central")}
            seconds = time.perf_counter() - start
            t = case.n_frames
            row: dict[str, Any] = {"case": case.id, "group": case.group, "n_frames": t,
                                   "es_true": case.es, "ed_true": case.ed}
            for method, ((es, ed), _) in picks.items():
                for event, frame, true in (("es", es, case.es), ("ed", ed, case.ed)):
                    row[f"{event}_{method}"] = frame
                    row[f"fd_{event}_{method}"] = int(_metrics.frame_difference(frame, true))
                    row[f"fdc_{event}_{method}"] = int(_metrics.frame_difference(frame, true, circular=True, n_frames=t))
                    row[f"rfd_{event}_{method}"] = row[f"fd_{event}_{method}"] / t
            row["fallback_es"], row["fallback_ed"] = picks["central"][1]
            row["seconds"] = seconds
            rows.append(row)
            if keep_predictions:
                kept[case.id] = (case.frames, probs)
        return FrameEvaluation(info["model"]["name"], exp.name, exp.profile, rows, None, kept,
                               loss=str(info.get("loss", exp.loss.name)))

    def predict_file(self, model: nn.Module, info: Mapping[str, Any], path: Path, img: Any,
                     out_dir: Path, stem: str, suffix: str) -> list[Path]:
        data = nifti_data(path, img, ndims=(4,))
        spacing = nifti_spacing(path, img)
        try:
            frames = project_cine(data, spacing, info["preprocessing"])
            probs = predict_frames(model, frames)
        except ArgumentError as exc:
            raise FileFormatError(path, str(exc)) from None
        head = info["model"]["kwargs"].get("head", "classes")
        result: dict[str, Any] = {"input": str(path), "experiment": info["experiment"], "n_frames": int(frames.shape[2]),
                                  "frame_numbering": "0-based (ACDC's Info.cfg counts from 1: add 1)"}
        threshold = info.get("central_threshold", 0.9)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise FileFormatError(path, f"the checkpoint's central_threshold {str(threshold)[:40]} "
                                        "is not a number in (0, 1)")
        for method in ("naive", "central"):
            (es, ed), fallback = _select(probs, head, method, float(threshold))
            result[method] = {"ES": es, "ED": ed, "fell_back_to_naive": list(fallback)}
        classes = info.get("classes") or (["ES", "ED"] if head == "frames" else ["ES", "ED", "background"])
        result["probabilities"] = {str(name): [round(float(v), 5) for v in row] for name, row in zip(classes, probs)}
        return [write_json(out_dir / f"{stem}_frames.json", result)]
