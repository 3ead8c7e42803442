"""Evaluation metrics of the course: overlap, surface distances, volumes, ES/ED frames, agreement.

Every number the source theses report about a segmentation, a volume or a frame comes from one of
these functions, so the chapters that reproduce their tables compute them here:

=========================================  ====================================================
metric                                     source
=========================================  ====================================================
Dice per class, global Dice                cardiac thesis ch. 5, Table 5.1 (L3854-3866, L3949-3979)
relative absolute volume error             cardiac thesis ch. 5, Table 5.2 (L3868-3872, L4040-4052)
absolute / relative volume error, Pearson  cardiac thesis ch. 6 (L4932-4940, L4998-5027);
r, regression slope and intercept          absolute volume difference (AVD), lecture 3 (L547, L584)
EDV/ESV/SV/EF and LV mass from masks       cardiac thesis ch. 2 (Eqs 2.1-2.3, L1377-1499)
naïve and central ES/ED frame selection,   cardiac thesis ch. 7 (L5919-5996), Table 7.1
(relative) frame difference
4-class "average Dice" and 3-tissue mean   brain thesis ch. 6 (L3286-3288, Tables 2-4)
Hausdorff distance (and HD95, ASD)         DLMI school slides (L813, L930), lecture 3 (L583)
pixel accuracy (the accuracy trap)         explainable-FCN paper (L177-183)
Bland-Altman bias and limits of agreement  the clinical-metrics chapter (method comparison)
=========================================  ====================================================

Conventions
-----------
* **One case at a time.** Segmentation inputs are one case's masks or label maps, of any number
  of dimensions (a 2D slice, a 3D volume); loop over cases and then summarise (the theses report
  the median or mean ± SD over cases).
* **NumPy or torch** inputs (any device; gradients are not needed, tensors are detached and
  copied to the CPU). Results are plain Python ``float``/``int`` (NumPy arrays where the input
  was an array of cases). These are evaluation numbers; the differentiable versions used for
  training are in :mod:`cmrlab.nn.losses`.
* **Binary masks** are bool or 0/1 arrays; **label maps** hold integer labels (0 = background).
  Functions for binary masks reject label maps with other values, so a label map is never
  silently read as "any label". :func:`per_class` applies a binary metric to each label.
* **Spacing** is the voxel size in mm **in the array's axis order**: ``(dz, dy, dx)`` for a torch
  ``(D, H, W)`` volume whose first axis is the slices (``dz`` = centre-to-centre slice distance,
  thickness + gap), or a single number for isotropic voxels. Surface distances and volumes
  require it: a cine volume with 10 mm slices and 1.5 mm pixels gives very wrong millimetres if
  the spacing is forgotten.
* **Bad input** — shapes that differ, NaN or infinite values, non-binary masks, non-integer labels,
  a bad spacing, probabilities outside [0, 1] — raises :class:`~cmrlab.errors.ArgumentError`
  naming the argument.

Empty masks (documented values)
-------------------------------
* Dice of two empty masks is **1.0** (the two agree that there is nothing); Dice of an empty and
  a non-empty mask is 0.0 (the formula's value). MONAI's ``compute_dice`` gives NaN for an empty
  reference by default (``ignore_empty=True``) and 1.0 with ``ignore_empty=False``, as here.
* Hausdorff distance, HD95 and average surface distance of an empty and a non-empty mask are
  **inf** (the non-empty surface is infinitely far from a surface that does not exist), as in
  MONAI's Hausdorff and average surface distance (MONAI's HD95 gives NaN there, a quirk of taking a
  percentile of infinities; we return inf for all three). Of two empty masks they are **0.0**,
  matching the Dice of 1.0 (MONAI gives NaN). To leave a structure out of an evaluation (the
  thesis reports no myocardium at end-systole), do not list its label.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from scipy import ndimage

from cmrlab.checks import check_number
from cmrlab.errors import ArgumentError
from cmrlab.physics.cardiac import ejection_fraction, myocardial_mass, stack_volume, stroke_volume

__all__ = [
    "BRAIN_CLASSES",
    "BlandAltman",
    "BrainDice",
    "CardiacFunction",
    "LinearFit",
    "absolute_volume_error",
    "average_surface_distance",
    "bland_altman",
    "brain_dice",
    "cardiac_function",
    "dice",
    "largest_component",
    "thresholded_dice",
    "dice_per_class",
    "es_ed_frames",
    "foreground_dice",
    "frame_difference",
    "global_dice",
    "hausdorff_distance",
    "hd95",
    "linear_fit",
    "mask_volume",
    "mean_dice",
    "pearson_r",
    "per_class",
    "pixel_accuracy",
    "relative_frame_difference",
    "relative_volume_error",
    "select_frame",
    "surface_distances",
    "surface_voxels",
]

#: An array of one case: NumPy, torch (any device) or a nested list.
ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[Any]]
#: A voxel size in mm: one number (isotropic) or one number per array axis.
Spacing = Union[float, Sequence[float], np.ndarray, torch.Tensor]

#: Label → tissue of the brain datasets after the 4-class mapping (iSeg-2017, MRBrainS18).
BRAIN_CLASSES: dict[int, str] = {0: "background", 1: "CSF", 2: "GM", 3: "WM"}


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _to_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` as a real NumPy array (torch tensors are detached and copied to the CPU); no NaN/inf."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ArgumentError(f"{name} must be real, got a complex tensor")
        x = x.detach()
        x = x.to(device="cpu", dtype=torch.float64) if x.is_floating_point() else x.cpu()
        a = x.numpy()
    else:
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"{name} must be an array of numbers") from exc
    if a.dtype.kind not in "biuf":
        raise ArgumentError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise ArgumentError(f"{name} contains NaN")
        if np.isinf(a).any():
            raise ArgumentError(f"{name} contains an infinite value")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ArgumentError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ArgumentError(f"{names[0]} and {names[1]} have no elements (shape {a.shape})")


def _binary(x: Any, name: str) -> np.ndarray:
    """A bool mask from a bool or 0/1 array; a label map with other values is an error."""
    a = _to_numpy(x, name)
    if a.dtype == bool:
        return a
    if not np.isin(a, (0, 1)).all():
        values = np.unique(a)[:6]
        raise ArgumentError(
            f"{name} must be a binary mask (bool or 0/1), got values {values.tolist()}; "
            "for a label map use per_class(...) or dice_per_class(...)"
        )
    return a.astype(bool)


def _labels(x: Any, name: str) -> np.ndarray:
    """An integer label map (float arrays must hold whole numbers, e.g. labels read from NIfTI)."""
    a = _to_numpy(x, name)
    if a.dtype == bool:
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.array_equal(a, np.round(a)):
            raise ArgumentError(f"{name} must hold integer labels, got fractional values "
                                "(pass argmax labels, not probabilities)")
        return a.astype(np.int64)
    return a


def _pair(pred: Any, target: Any, kind: Callable[[Any, str], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    p, t = kind(pred, "pred"), kind(target, "target")
    _same_shape(p, t, ("pred", "target"))
    return p, t


def _spacing(spacing: Spacing, ndim: int) -> np.ndarray:
    """The voxel size as ``ndim`` positive finite floats (a single number is used on every axis)."""
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        s = np.full(ndim, float(spacing))
    else:
        s = _to_numpy(spacing, "spacing").astype(np.float64).reshape(-1)
        if s.size == 1:
            s = np.full(ndim, float(s[0]))
        elif s.size != ndim:
            raise ArgumentError(f"spacing must give one voxel size per axis ({ndim} for this array) "
                                f"or a single number, got {s.size} values")
    if not np.isfinite(s).all() or (s <= 0).any():
        raise ArgumentError(f"spacing must be positive and finite (mm), got {s.tolist()}")
    return s


def _label_list(labels: Sequence[int] | None, *maps: np.ndarray) -> list[int]:
    """The labels to evaluate: those given, or every non-zero label present in one of ``maps``."""
    if labels is None:
        present = np.unique(np.concatenate([np.unique(m) for m in maps]))
        return [int(v) for v in present if v != 0]
    out: list[int] = []
    for v in labels:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ArgumentError(f"labels must be integers, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ArgumentError(f"labels must not repeat, got {list(labels)}")
    return out


def _check_vector(x: Any, name: str, min_len: int = 1) -> np.ndarray:
    a = _to_numpy(x, name).astype(np.float64)
    if a.ndim != 1:
        raise ArgumentError(f"{name} must be one-dimensional (one value per case), got shape {a.shape}")
    if a.size < min_len:
        raise ArgumentError(f"{name} must hold at least {min_len} values, got {a.size}")
    return a


def _paired(x: Any, y: Any, names: tuple[str, str], min_len: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _check_vector(x, names[0], min_len), _check_vector(y, names[1], min_len)
    if a.shape != b.shape:
        raise ArgumentError(f"{names[0]} and {names[1]} must have the same length, got {a.size} and {b.size}")
    return a, b


def _scalar_or_array(a: np.ndarray) -> Any:
    return a.item() if a.ndim == 0 else a


# --------------------------------------------------------------------------------------------
# Overlap
# --------------------------------------------------------------------------------------------
def foreground_dice(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean over the *foreground* classes of the hard Dice of a batch, on the device (a validation metric).

    ``output`` (B, C, ...) logits or probabilities, ``target`` (B, ...) labels. The prediction is
    ``output.argmax(1)``; class 0 (background) is left out of the mean, so a model that gets the
    background right and misses the heart scores 0, not ``1/C``. Each class's Dice pools every
    voxel of the batch; a class absent from both the prediction and the target counts 1. A 0-d
    float tensor on ``output``'s device (no GPU→CPU copy); the segmentation runner's ``val_dice``.
    """
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ArgumentError("foreground_dice takes tensors: output (B, C, ...) and target (B, ...)")
    if output.ndim < 2 or output.shape[1] < 2:
        raise ArgumentError(f"output must be (B, C, ...) scores with C >= 2 classes, got shape {tuple(output.shape)}")
    if target.shape != output.shape[:1] + output.shape[2:]:
        raise ArgumentError(f"target must be (B, ...) labels of shape {tuple(output.shape[:1] + output.shape[2:])}, "
                            f"got {tuple(target.shape)}")
    pred = output.argmax(1)
    scores = []
    for c in range(1, output.shape[1]):
        p, t = pred == c, target == c
        total = p.sum() + t.sum()
        scores.append(torch.where(total > 0, 2.0 * (p & t).sum() / total.clamp(min=1), torch.ones((), device=output.device)))
    return torch.stack(scores).float().mean()



def largest_component(mask: ArrayLike) -> np.ndarray:
    """The largest connected object of a binary ``mask`` (full connectivity: faces, edges and
    corners touch), as a boolean array of the same shape; an empty mask stays empty."""
    from scipy import ndimage

    mask = np.asarray(mask).astype(bool)
    if not mask.any():
        return mask
    labels, count = ndimage.label(mask, ndimage.generate_binary_structure(mask.ndim, mask.ndim))
    sizes = ndimage.sum_labels(mask, labels, range(1, count + 1))
    return labels == (int(np.argmax(sizes)) + 1)


_largest_component = largest_component      # thresholded_dice's keyword of the same name hides it


def thresholded_dice(map_: ArrayLike, mask: ArrayLike, threshold: float = 0.9, *,
                     largest_component: bool = True, dilation: Sequence[int] | None = None) -> float:
    """Dice of ``map_ > threshold`` with the binary ``mask`` (arrays of one shape).

    The cardiac thesis scores its sigmoid CAM this way (ch. 6, L5070-5101): threshold 0.9, keep
    the largest connected object (:func:`largest_component`; the one the scanning module used),
    then optionally grow it with a box of ``dilation`` voxels per axis (its 5×5×1 post-processing
    is ``(5, 5, 1)`` for an (X, Y, Z) map). Both empty: 1. :func:`cmrlab.explain.scores.map_dice`
    applies it to a batch.
    """
    from scipy import ndimage

    m = _to_numpy(map_, "map_").astype(np.float64)
    truth = _binary(mask, "mask")
    _same_shape(m, truth, ("map_", "mask"))
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ArgumentError(f"threshold must be a finite number, got {threshold!r}")
    pred = m > threshold
    if largest_component:
        pred = _largest_component(pred)
    if dilation is not None:
        size = tuple(int(d) for d in dilation)
        if len(size) != m.ndim or any(d < 1 for d in size):
            raise ArgumentError(f"dilation must give one size >= 1 per axis ({m.ndim}), got {tuple(dilation)}")
        if pred.any():
            pred = ndimage.binary_dilation(pred, np.ones(size, dtype=bool))
    total = int(pred.sum() + truth.sum())
    return 1.0 if total == 0 else float(2.0 * (pred & truth).sum() / total)


def dice(pred: ArrayLike, target: ArrayLike) -> float:
    """Dice coefficient of two binary masks (Sørensen–Dice):

        DSC = 2 |P ∩ T| / (|P| + |T|)

    in [0, 1], 1 for a perfect overlap; the explainable-FCN paper writes it 2·A_nl / (A_n + A_l).
    Two empty masks give 1.0 (they agree), an empty and a non-empty mask 0.0.
    """
    p, t = _pair(pred, target, _binary)
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, t).sum()) / total


def per_class(
    metric: Callable[..., float],
    pred: ArrayLike,
    target: ArrayLike,
    labels: Sequence[int] | None = None,
    **kwargs: Any,
) -> dict[int, float]:
    """Apply a binary-mask ``metric`` to every label of two label maps: ``{label: value}``.

    ``metric(pred == label, target == label, **kwargs)`` for each label of ``labels`` (default:
    every non-zero label present in either map, i.e. the background is left out; list ``0`` to
    include it). Example: ``per_class(hausdorff_distance, pred, gt, labels=(1, 2, 3),
    spacing=(10, 1.5, 1.5))``.
    """
    p, t = _pair(pred, target, _labels)
    return {c: metric(p == c, t == c, **kwargs) for c in _label_list(labels, p, t)}


def dice_per_class(pred: ArrayLike, target: ArrayLike, labels: Sequence[int] | None = None) -> dict[int, float]:
    """Dice coefficient of every label of two label maps, ``{label: DSC}`` (see :func:`dice`).

    ``labels`` defaults to every non-zero label present in either map. The cardiac thesis
    reports it per region (LV cavity = 1, LV myocardium = 2, RV cavity = 3 at ED), Table 5.1.
    """
    return per_class(dice, pred, target, labels)


def mean_dice(pred: ArrayLike, target: ArrayLike, labels: Sequence[int] | None = None) -> float:
    """Mean of the per-class Dice coefficients (macro average): (1/C) Σ_c DSC_c.

    Every class counts the same, however small. ``labels`` as in :func:`dice_per_class`; no label
    at all (two all-background maps without ``labels``) gives 1.0.
    """
    scores = dice_per_class(pred, target, labels)
    return float(np.mean(list(scores.values()))) if scores else 1.0


def global_dice(pred: ArrayLike, target: ArrayLike, labels: Sequence[int] | None = None) -> float:
    """Global Dice of a multi-class segmentation: the Dice overlap pooled over the classes.

        DSC_global = 2 Σ_c |P_c ∩ T_c| / Σ_c (|P_c| + |T_c|)

    over the labels ``c`` of ``labels`` (default: every non-zero label present), so a voxel counts
    as overlap only if both maps give it the same label. This is the generalised Dice score of
    Crum et al. (the score behind the thesis's generalised Dice loss) with unit class weights: a
    volume-weighted average of the per-class Dice.

    [choice] The cardiac thesis reports a "global Dice coefficient … an average metric of the whole
    segmentation" (L3862-3866, the "whole segmentation" column of Table 5.1) without a formula;
    we read it as this pooled score. The plain mean of the per-class values is :func:`mean_dice`.
    No voxel of any listed label in either map gives 1.0.
    """
    p, t = _pair(pred, target, _labels)
    wanted = np.asarray(_label_list(labels, p, t), dtype=np.int64)
    in_p, in_t = np.isin(p, wanted), np.isin(t, wanted)
    total = int(in_p.sum()) + int(in_t.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p == t, in_t).sum()) / total


def pixel_accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Pixel (voxel) accuracy: the fraction of voxels whose label is right, #(P = T) / #voxels.

    Misleading for small structures (the explainable-FCN paper's "accuracy trap", L177-183): if
    the LV fills 5 % of the image, predicting "background" everywhere scores 0.95 while its Dice
    is 0. Works on label maps and binary masks alike.
    """
    p, t = _pair(pred, target, _labels)
    return float(np.mean(p == t))


@dataclass(frozen=True)
class BrainDice:
    """Dice of a 4-class brain segmentation, summarised as the brain thesis reports it.

    ``per_class`` maps label → DSC (background, CSF, GM, WM by default); ``average`` is the mean
    over all four classes **including the background**, the thesis's "Average DSC" of Tables 2-4;
    ``tissue_mean`` is the mean over the three tissues alone. Values in [0, 1]; the thesis prints
    them × 100.
    """

    per_class: dict[int, float]
    average: float
    tissue_mean: float


def brain_dice(pred: ArrayLike, target: ArrayLike, labels: Sequence[int] = (0, 1, 2, 3)) -> BrainDice:
    """The brain thesis's 4-class "average Dice" and the 3-tissue mean of two label maps.

    The thesis (ch. 6, L3286-3288) reports an "average dice coefficient as well as per brain
    region" without defining the average. Solving its tables, 4·average − (CSF + GM + WM) gives a
    background Dice of 99.97 % for V-Net on iSeg-2017: the average includes the background, which
    every model segments almost perfectly, so it flatters the tissues. Both are returned:

        average     = (DSC_bg + DSC_CSF + DSC_GM + DSC_WM) / 4
        tissue_mean = (DSC_CSF + DSC_GM + DSC_WM) / 3

    ``labels`` lists the background first, then the tissues (default 0, 1, 2, 3 =
    :data:`BRAIN_CLASSES`).
    """
    if labels is None:
        raise ArgumentError("labels must list the background label first, then the tissues, e.g. (0, 1, 2, 3)")
    wanted = _label_list(labels)
    if len(wanted) < 2:
        raise ArgumentError(f"labels must list the background and at least one tissue, got {list(labels)}")
    scores = dice_per_class(pred, target, wanted)
    values = [scores[c] for c in wanted]
    return BrainDice(per_class=scores, average=float(np.mean(values)), tissue_mean=float(np.mean(values[1:])))


# --------------------------------------------------------------------------------------------
# Surface distances
# --------------------------------------------------------------------------------------------
def surface_voxels(mask: ArrayLike) -> np.ndarray:
    """The surface (boundary) voxels of a binary mask: mask voxels with a face neighbour outside it.

        surface = mask AND NOT erosion(mask)

    with a face-connected (cross-shaped) structuring element; outside the array counts as
    background, so mask voxels on the array's border are surface voxels. This is the edge
    definition of MONAI's surface metrics. Returns a bool array of the mask's shape.
    """
    m = _binary(mask, "mask")
    if not m.any():
        return np.zeros_like(m)
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    return m & ~ndimage.binary_erosion(m, structure=structure, border_value=0)


def surface_distances(pred: ArrayLike, target: ArrayLike, spacing: Spacing) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each surface voxel of one mask to the nearest surface voxel of the other.

    Returns ``(pred_to_target, target_to_pred)``: for every surface voxel ``p`` of ``pred``,
    d(p, ∂T) = min over target surface voxels ``t`` of ‖(p − t) · spacing‖ (and the other way
    round), computed exactly with a Euclidean distance transform
    (``scipy.ndimage.distance_transform_edt(…, sampling=spacing)``) on the bounding box of the two
    surfaces. Surfaces are :func:`surface_voxels`. If one mask is empty, the distances from the
    other's surface are inf and the other array is empty; two empty masks give two empty arrays.
    """
    p, t = _pair(pred, target, _binary)
    s = _spacing(spacing, p.ndim)
    sp, st = surface_voxels(p), surface_voxels(t)
    if not sp.any() or not st.any():
        return np.full(int(sp.sum()), np.inf), np.full(int(st.sum()), np.inf)
    both = np.argwhere(sp | st)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(both.min(0), both.max(0)))
    sp, st = sp[box], st[box]
    to_target = ndimage.distance_transform_edt(~st, sampling=s)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=s)
    return to_target[sp], to_pred[st]


def hausdorff_distance(
    pred: ArrayLike, target: ArrayLike, spacing: Spacing, percentile: float | None = None
) -> float:
    """Symmetric Hausdorff distance (mm) between the surfaces of two binary masks.

        HD = max( max_{p ∈ ∂P} d(p, ∂T),  max_{t ∈ ∂T} d(t, ∂P) )

    the largest distance from a point of either surface to the other surface (the worst boundary
    error). With ``percentile=q`` each directed maximum is replaced by the q-th percentile (linear
    interpolation), HD_q = max(P_q(d(∂P, ∂T)), P_q(d(∂T, ∂P))), which ignores the worst (100 − q) %
    outliers; :func:`hd95` is q = 95. This is MONAI's definition (``compute_hausdorff_distance``);
    some tools (MedPy) instead take the percentile of both directions pooled.

    ``spacing`` is the voxel size in mm in the array's axis order. Empty masks: inf if exactly
    one is empty, 0.0 if both are (see the module notes).
    """
    q = None if percentile is None else check_number("percentile", percentile, 0.0, 100.0)
    d_pt, d_tp = surface_distances(pred, target, spacing)
    if d_pt.size == 0 and d_tp.size == 0:
        return 0.0
    if np.isinf(d_pt).any() or np.isinf(d_tp).any():
        return math.inf
    if q is None:
        return float(max(d_pt.max(), d_tp.max()))
    return float(max(np.percentile(d_pt, q), np.percentile(d_tp, q)))


def hd95(pred: ArrayLike, target: ArrayLike, spacing: Spacing) -> float:
    """95th-percentile Hausdorff distance (mm): :func:`hausdorff_distance` with ``percentile=95``."""
    return hausdorff_distance(pred, target, spacing, percentile=95)


def average_surface_distance(
    pred: ArrayLike, target: ArrayLike, spacing: Spacing, symmetric: bool = True
) -> float:
    """Average surface distance (mm) between two binary masks.

    Symmetric (default; often called ASSD), the mean over the surface voxels of both masks:

        ASD = ( Σ_{p ∈ ∂P} d(p, ∂T) + Σ_{t ∈ ∂T} d(t, ∂P) ) / ( |∂P| + |∂T| )

    and with ``symmetric=False`` the directed mean from the prediction, (1/|∂P|) Σ_p d(p, ∂T).
    As MONAI's ``compute_average_surface_distance``. ``spacing`` in mm, array axis order. Empty
    masks: inf if exactly one is empty, 0.0 if both are (see the module notes).
    """
    d_pt, d_tp = surface_distances(pred, target, spacing)
    d = np.concatenate([d_pt, d_tp]) if symmetric else d_pt
    if d_pt.size == 0 and d_tp.size == 0:
        return 0.0
    if d.size == 0 or np.isinf(d).any():  # directed from an empty prediction, or one mask empty
        return math.inf
    return float(d.mean())


# --------------------------------------------------------------------------------------------
# Volumes and cardiac function
# --------------------------------------------------------------------------------------------
def mask_volume(mask: ArrayLike, spacing: Spacing, label: int | None = None, slice_axis: int = 0) -> float:
    """Volume (ml) of a 3D mask by the method of disks: V = dz · Σ_slices area / 1000.

    Each slice's area is its voxel count × the in-plane pixel area (mm²), and
    :func:`cmrlab.physics.cardiac.stack_volume` stacks the areas with the slice spacing ``dz``
    (centre-to-centre, i.e. thickness + gap). This equals voxel count × voxel volume / 1000.
    ``mask`` is a binary 3D mask, or a label map with ``label`` the structure to measure;
    ``spacing`` is ``(dz, dy, dx)`` in mm in the array's axis order with the slices on
    ``slice_axis`` (default 0, the ``D`` of a torch ``(D, H, W)`` volume).
    """
    if label is None:
        m = _binary(mask, "mask")
    else:
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ArgumentError(f"label must be an integer, got {label!r}")
        m = _labels(mask, "mask") == int(label)
    if m.ndim != 3:
        raise ArgumentError(f"mask must be a 3D volume (slices and two in-plane axes), got shape {m.shape}")
    if isinstance(slice_axis, bool) or not isinstance(slice_axis, numbers.Integral) or not -3 <= slice_axis < 3:
        raise ArgumentError(f"slice_axis must be 0, 1 or 2 (or -3 … -1), got {slice_axis!r}")
    axis = int(slice_axis) % 3
    s = _spacing(spacing, 3)
    in_plane = [a for a in range(3) if a != axis]
    areas = m.sum(axis=tuple(in_plane)).astype(np.float64) * s[in_plane[0]] * s[in_plane[1]]
    return float(stack_volume(areas, float(s[axis])))


def _volumes(predicted: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _to_numpy(predicted, "predicted").astype(np.float64), _to_numpy(true, "true").astype(np.float64)
    try:
        p, t = np.broadcast_arrays(p, t)
    except ValueError as exc:
        raise ArgumentError(f"predicted and true must have the same shape, got {p.shape} and {t.shape}") from exc
    if (p < 0).any():
        raise ArgumentError("predicted volumes must not be negative")
    if (t < 0).any():
        raise ArgumentError("true volumes must not be negative")
    return p, t


def absolute_volume_error(predicted: ArrayLike | float, true: ArrayLike | float) -> Any:
    """Absolute volume error |V_pred − V_true| (units of the input, usually ml).

    The "absolute error (ml)" of the cardiac thesis ch. 6 and the absolute volume difference (AVD)
    of lecture 3. Numbers give a float; arrays (one volume per case) give an array.
    """
    p, t = _volumes(predicted, true)
    return _scalar_or_array(np.abs(p - t))


def relative_volume_error(predicted: ArrayLike | float, true: ArrayLike | float) -> Any:
    """Relative absolute volume error |V_pred − V_true| / V_true (a fraction; × 100 for %).

    The "relative absolute error" of the volumes derived from the segmentations, cardiac thesis
    ch. 5 (L3868-3872; Table 5.2 prints fractions, e.g. 0.025 for the ED LV cavity) and ch. 6
    (in %). ``true`` must be positive. Numbers give a float; arrays give an array.
    """
    p, t = _volumes(predicted, true)
    if (t <= 0).any():
        raise ArgumentError("true volumes must be positive for a relative error")
    return _scalar_or_array(np.abs(p - t) / t)


@dataclass(frozen=True)
class CardiacFunction:
    """LV function from an ED and an ES segmentation: volumes in ml, EF in %, mass in g.

    ``lv_mass`` is ``None`` when no myocardium label was given.
    """

    edv: float
    esv: float
    sv: float
    ef: float
    lv_mass: float | None


def cardiac_function(
    ed_labels: ArrayLike,
    es_labels: ArrayLike,
    spacing: Spacing,
    cavity_label: int = 1,
    myocardium_label: int | None = 2,
    slice_axis: int = 0,
) -> CardiacFunction:
    """EDV, ESV, SV, EF and LV mass of a cine study from its ED and ES label maps.

    EDV and ESV are the LV cavity volumes (:func:`mask_volume`) at end-diastole and end-systole;
    then, with the formulas of :mod:`cmrlab.physics.cardiac`: SV = EDV − ESV (thesis Eq 2.1),
    EF = 100 · SV / EDV (Eq 2.3), and LV mass = ED myocardium volume × 1.055 g/ml (L1475-1481).
    Labels follow the thesis's ch. 5 data: 1 = LV cavity (ED and ES), 2 = LV myocardium (ED);
    ``myocardium_label=None`` skips the mass. ``spacing`` is ``(dz, dy, dx)`` in mm with the
    slices on ``slice_axis``.

    Raises :class:`~cmrlab.errors.ArgumentError` if the ES cavity is larger than the ED one (were
    the frames swapped?) or the ED cavity is empty (no EF).
    """
    ed = _labels(ed_labels, "ed_labels")
    es = _labels(es_labels, "es_labels")
    edv = mask_volume(ed, spacing, label=cavity_label, slice_axis=slice_axis)
    esv = mask_volume(es, spacing, label=cavity_label, slice_axis=slice_axis)
    mass = None
    if myocardium_label is not None:
        myo = mask_volume(ed, spacing, label=myocardium_label, slice_axis=slice_axis)
        mass = float(myocardial_mass(myo))
    return CardiacFunction(edv=edv, esv=esv, sv=float(stroke_volume(edv, esv)),
                           ef=float(ejection_fraction(edv, esv)), lv_mass=mass)


# --------------------------------------------------------------------------------------------
# ES/ED frames (cardiac thesis ch. 7)
# --------------------------------------------------------------------------------------------
_METHODS = ("naive", "central")


def _probabilities(x: Any, name: str) -> np.ndarray:
    a = _to_numpy(x, name).astype(np.float64)
    if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
        raise ArgumentError(f"{name} must be probabilities in [0, 1] (apply the softmax to logits first), "
                            f"got values from {a.min():g} to {a.max():g}")
    return a


def select_frame(
    probabilities: ArrayLike, method: str = "central", threshold: float = 0.9, circular: bool = False
) -> int:
    """Pick the one frame of a class (ES or ED) from its per-frame probabilities (thesis L5919-5969).

    * ``"naive"``: the most probable frame, argmax_i p_i (the first one on a tie).
    * ``"central"``: the frames with p_i > ``threshold`` (0.9 in the thesis) are kept and the frame
      at the centre of them is chosen, which is robust to a plateau of near-identical frames
      around ES or ED.

    [choice] Details the thesis leaves open: the frames kept are the **run of consecutive frames**
    above the threshold that contains the most probable frame (other runs are ignored; with one run
    this is the thesis's rule); an even-length run gives the **earlier** of its two middle frames;
    if no frame is above the threshold the naïve frame is returned. With ``circular=True`` the
    sequence is treated as one periodic cardiac cycle, so a run may wrap from the last frame to the
    first (e.g. frames 34, 0, 1 of 35 give 0); if every frame is above the threshold the circular
    run has no centre and the most probable frame is returned.

    ``probabilities`` is a 1D vector over frames. Returns the frame index.
    """
    p = _probabilities(probabilities, "probabilities")
    if p.ndim != 1 or p.size == 0:
        raise ArgumentError(f"probabilities must be a non-empty vector over frames, got shape {p.shape}")
    if method not in _METHODS:
        raise ArgumentError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold < 1:
        raise ArgumentError(f"threshold must be a probability in [0, 1), got {threshold!r}")
    best = int(np.argmax(p))
    above = p > threshold
    if method == "naive" or not above[best]:
        return best
    n = p.size
    if circular and above.all():
        return best
    start, end = best, best  # grow the run around the best frame (unwrapped indices when circular)
    while (start - 1 >= 0 or circular) and above[(start - 1) % n]:
        start -= 1
    while (end + 1 < n or circular) and above[(end + 1) % n]:
        end += 1
    return (start + (end - start) // 2) % n


def es_ed_frames(
    probabilities: ArrayLike,
    method: str = "central",
    threshold: float = 0.9,
    es_index: int = 0,
    ed_index: int = 1,
    circular: bool = False,
) -> tuple[int, int]:
    """The ES and ED frames of one sequence from its per-frame class probabilities.

    ``probabilities`` has shape ``(classes, frames)``: the FrameDetector's output for one sequence,
    ``output[i]``, with the classes [ES, ED, background] (``es_index=0``, ``ed_index=1``). Each
    class's row goes through :func:`select_frame` with ``method`` (``"naive"`` or ``"central"``),
    ``threshold`` and ``circular``. Returns ``(es_frame, ed_frame)``.
    """
    p = _probabilities(probabilities, "probabilities")
    if p.ndim != 2:
        raise ArgumentError(f"probabilities must have shape (classes, frames), got {p.shape}")
    for name, idx in (("es_index", es_index), ("ed_index", ed_index)):
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral) or not 0 <= idx < p.shape[0]:
            raise ArgumentError(f"{name} must be a class index in [0, {p.shape[0]}), got {idx!r}")
    if es_index == ed_index:
        raise ArgumentError("es_index and ed_index must differ")
    return (select_frame(p[es_index], method, threshold, circular),
            select_frame(p[ed_index], method, threshold, circular))


def _frames(x: Any, name: str) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
        raise ArgumentError(f"{name} must hold whole frame numbers, got fractional values")
    a = a.astype(np.int64)
    if (a < 0).any():
        raise ArgumentError(f"{name} must not be negative (frames count from 0)")
    return a


def frame_difference(
    predicted: ArrayLike | int, true: ArrayLike | int, n_frames: ArrayLike | int | None = None,
    circular: bool = False,
) -> Any:
    """Frame difference error |f_pred − f_true|, in frames (thesis L5975-5982, as its ref. [177]).

    With ``circular=True`` (needs ``n_frames``) the distance goes the short way round the cardiac
    cycle, min(|Δ|, n − |Δ|), so frames 0 and 34 of a 35-frame cycle are 1 apart; the thesis uses
    the plain difference. ``n_frames``, when given, also checks that the frames exist. Numbers
    give an int; arrays (one frame per case) give an array.
    """
    p, t = _frames(predicted, "predicted"), _frames(true, "true")
    try:
        p, t = np.broadcast_arrays(p, t)
    except ValueError as exc:
        raise ArgumentError(f"predicted and true must have the same shape, got {p.shape} and {t.shape}") from exc
    d = np.abs(p - t)
    if n_frames is not None:
        n = _frames(n_frames, "n_frames")
        if (n <= 0).any():
            raise ArgumentError("n_frames must be positive")
        if (p >= n).any() or (t >= n).any():
            raise ArgumentError("frame indices must be below n_frames")
        if circular:
            d = np.minimum(d, n - d)
    elif circular:
        raise ArgumentError("circular=True needs n_frames (the length of the cycle)")
    return _scalar_or_array(d)


def relative_frame_difference(
    predicted: ArrayLike | int, true: ArrayLike | int, n_frames: ArrayLike | int, circular: bool = False
) -> Any:
    """Relative frame difference error |f_pred − f_true| / n_frames (thesis L5982-5990).

    The frame difference divided by the sequence length, so studies with different frame counts
    compare (the thesis's test set had 35-, 25- and 22-frame cases). ``n_frames`` may be one number
    per case. Numbers give a float; arrays give an array.
    """
    d = frame_difference(predicted, true, n_frames, circular)
    n = _frames(n_frames, "n_frames")
    return _scalar_or_array(np.asarray(d, dtype=np.float64) / n)


# --------------------------------------------------------------------------------------------
# Agreement between a method and a reference (one value per case)
# --------------------------------------------------------------------------------------------
def pearson_r(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation coefficient of paired values (e.g. predicted vs manual volumes or EF):

        r = Σ (x_i − x̄)(y_i − ȳ) / √( Σ (x_i − x̄)² · Σ (y_i − ȳ)² )

    Needs at least 2 pairs and some spread in each. The cardiac thesis reports R = 0.95 for its
    ch. 6 volumes (L5004-5006).
    """
    a, b = _paired(x, y, ("x", "y"), 2)
    da, db = a - a.mean(), b - b.mean()
    sa, sb = float(np.sum(da * da)), float(np.sum(db * db))
    if sa == 0 or sb == 0:
        raise ArgumentError("x and y must vary: the correlation of a constant is undefined")
    return float(np.clip(np.sum(da * db) / math.sqrt(sa * sb), -1.0, 1.0))


@dataclass(frozen=True)
class LinearFit:
    """The least-squares line ``predicted ≈ slope · reference + intercept``."""

    slope: float
    intercept: float


def linear_fit(reference: ArrayLike, predicted: ArrayLike) -> LinearFit:
    """Least-squares regression line of ``predicted`` on ``reference``:

        slope = Σ (x_i − x̄)(y_i − ȳ) / Σ (x_i − x̄)²,   intercept = ȳ − slope · x̄

    with x = reference (manual) and y = predicted values. Slope 1 and intercept 0 is perfect
    agreement; the cardiac thesis's ch. 6 volumes give slope 0.81 and "bias" (intercept) 19.41 ml,
    an under-estimation of large ventricles (L5010-5013).
    """
    x, y = _paired(reference, predicted, ("reference", "predicted"), 2)
    dx = x - x.mean()
    sxx = float(np.sum(dx * dx))
    if sxx == 0:
        raise ArgumentError("reference must vary: a line cannot be fitted to one x value")
    slope = float(np.sum(dx * (y - y.mean())) / sxx)
    return LinearFit(slope=slope, intercept=float(y.mean() - slope * x.mean()))


@dataclass(frozen=True)
class BlandAltman:
    """A Bland–Altman analysis: bias and 95 % limits of agreement, plus the points to plot.

    ``means`` (x axis) and ``differences`` (y axis, method − reference) are per case.
    """

    bias: float
    sd: float
    lower: float
    upper: float
    means: np.ndarray
    differences: np.ndarray


def bland_altman(method: ArrayLike, reference: ArrayLike) -> BlandAltman:
    """Bland–Altman agreement between a method and a reference measuring the same cases.

    With the differences d_i = method_i − reference_i:

        bias = mean(d),   SD = sample standard deviation of d (n − 1),
        limits of agreement = bias ± 1.96 · SD

    (95 % of the differences lie within the limits if they are normally distributed). A positive
    bias means the method over-estimates. Needs at least 2 cases.
    """
    a, b = _paired(method, reference, ("method", "reference"), 2)
    d = a - b
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(bias=bias, sd=sd, lower=bias - 1.96 * sd, upper=bias + 1.96 * sd,
                       means=(a + b) / 2.0, differences=d)
