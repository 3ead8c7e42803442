"""Anatomical plausibility of a 2D short-axis segmentation: topology rules a heart always obeys.

A segmentation can score a high Dice and still be impossible anatomy: a second LV island in the
liver, a hole in the myocardium, an LV cavity that touches the RV. Painchaud et al. (2019, 2020,
"Cardiac segmentation with strong anatomical guarantees") list 16 such criteria for short-axis
slices and correct every segmentation that breaks one by projecting it through a shape
autoencoder; the Deep Learning for Medical Imaging school lecture presents that work. This module
checks the topological ones, on label maps in the ACDC convention (0 background, 1 RV cavity,
2 LV myocardium, 3 LV cavity):

==========================  =====================================================================
``missing_<S>``             structure ``S`` (``lv``, ``myo``, ``rv``) has no pixel
``fragmented_<S>``          ``S`` has more than one connected component (8-connectivity) of at
                            least ``min_size`` pixels
``holes_in_lv``             some non-LV pixel is enclosed by the LV
``holes_in_rv``             some non-RV pixel is enclosed by the RV
``holes_in_myo``            some background or RV pixel is enclosed by myocardium ∪ LV but not
                            by the LV alone (a gap inside the wall, or between the wall and the
                            cavity)
``lv_touches_rv``           an LV pixel is a 4-neighbour of an RV pixel (the septum is missing)
``lv_touches_background``   an LV pixel is a 4-neighbour of a background pixel (the myocardial
                            ring is open)
``rv_detached``             the RV touches no myocardium (it floats away from the septum)
==========================  =====================================================================

"Enclosed" means not connected to the image border through pixels outside the structure
(4-connectivity for the outside, 8 for the structure: the usual pairing of digital topology, so a
diagonal line of pixels encloses what it surrounds). The shape criteria of the paper
(concavity, circularity, wall-thickness ratios) are not checked here.

>>> import numpy as np
>>> ring = np.zeros((9, 9), dtype=int); ring[1:8, 1:8] = 2; ring[3:6, 3:6] = 3; ring[0, :] = 1
>>> [name for name, broken in anatomical_errors(ring).items() if broken]
[]
>>> ring[4, 1:4] = 0          # cut the wall: the cavity now touches the background
>>> [name for name, broken in anatomical_errors(ring).items() if broken]
['lv_touches_background']
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError

__all__ = ["CRITERIA", "anatomical_errors", "count_anatomical_errors", "is_plausible"]

_BACKGROUND, _RV, _MYO, _LV = 0, 1, 2, 3
_STRUCTURES = (("lv", _LV), ("myo", _MYO), ("rv", _RV))
_EIGHT = np.ones((3, 3), dtype=bool)                  # 8-connectivity for a structure
_FOUR = ndimage.generate_binary_structure(2, 1)       # 4-connectivity for its outside

#: The criteria :func:`anatomical_errors` checks, in the order it reports them.
CRITERIA: tuple[str, ...] = (
    *(f"missing_{name}" for name, _ in _STRUCTURES),
    *(f"fragmented_{name}" for name, _ in _STRUCTURES),
    "holes_in_lv", "holes_in_rv", "holes_in_myo",
    "lv_touches_rv", "lv_touches_background", "rv_detached",
)


def _check_labels(labels: Any) -> np.ndarray:
    if hasattr(labels, "detach"):                     # a torch tensor, on any device
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ArgumentError(f"labels must be a 2D label map (H, W), got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ArgumentError(f"labels must hold integer labels 0..3, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ArgumentError("labels must hold integer labels 0..3, got non-integer values")
    if arr.size and (arr.min() < 0 or arr.max() > 3):
        raise ArgumentError(
            f"labels must be 0 background, 1 RV, 2 MYO or 3 LV, got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _n_components(mask: np.ndarray, min_size: int) -> int:
    """Connected components of ``mask`` (8-connectivity) with at least ``min_size`` pixels."""
    components, n = ndimage.label(mask, structure=_EIGHT)
    sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
    return int(np.sum(sizes >= min_size))


def _has_holes(region: np.ndarray) -> bool:
    """True if some pixel outside ``region`` cannot reach the border without crossing it."""
    return bool(np.any(ndimage.binary_fill_holes(region, structure=_FOUR) & ~region))


def _touches(a: np.ndarray, b: np.ndarray) -> bool:
    """True if a pixel of ``a`` is a 4-neighbour of a pixel of ``b``."""
    return bool(np.any(ndimage.binary_dilation(a, structure=_FOUR) & b))


def anatomical_errors(labels: Any, *, min_size: int = 1) -> dict[str, bool]:
    """Check a 2D short-axis label map against the rules of :data:`CRITERIA`.

    Args:
        labels: ``(H, W)`` integer label map (numpy array or tensor), 0 background, 1 RV,
            2 MYO, 3 LV.
        min_size: components smaller than this (pixels) do not count as fragments. 1 (the
            default) counts every pixel; a few pixels tolerate the specks that nearest-neighbour
            resampling of a label map leaves at the thin tips of the RV crescent.

    Returns:
        ``{criterion: broken}`` for every criterion of :data:`CRITERIA`, in that order; ``True``
        means the rule is broken. A missing structure breaks only its ``missing_`` rule (and
        ``rv_detached`` is only checked when both the RV and the myocardium exist).

    Raises:
        ArgumentError: ``labels`` is not 2D or holds values other than 0–3.
    """
    arr = _check_labels(labels)
    min_size = check_int("min_size", min_size, 1)
    masks = {name: arr == value for name, value in _STRUCTURES}
    present = {name: bool(mask.any()) for name, mask in masks.items()}
    lv, myo, rv = masks["lv"], masks["myo"], masks["rv"]
    background = arr == _BACKGROUND
    errors = {f"missing_{name}": not present[name] for name, _ in _STRUCTURES}
    errors.update({f"fragmented_{name}": _n_components(masks[name], min_size) > 1 for name, _ in _STRUCTURES})
    errors["holes_in_lv"] = _has_holes(lv)
    errors["holes_in_rv"] = _has_holes(rv)
    wall_and_cavity = myo | lv                       # a hole inside the LV is holes_in_lv only
    enclosed = ndimage.binary_fill_holes(wall_and_cavity, structure=_FOUR) & ~wall_and_cavity
    errors["holes_in_myo"] = bool(np.any(enclosed & ~ndimage.binary_fill_holes(lv, structure=_FOUR)))
    errors["lv_touches_rv"] = _touches(lv, rv)
    errors["lv_touches_background"] = _touches(lv, background)
    errors["rv_detached"] = present["rv"] and present["myo"] and not _touches(rv, myo)
    return errors


def count_anatomical_errors(labels: Any, *, min_size: int = 1) -> int:
    """Number of broken rules of :func:`anatomical_errors` (0 for a plausible slice)."""
    return sum(anatomical_errors(labels, min_size=min_size).values())


def is_plausible(labels: Any, *, min_size: int = 1) -> bool:
    """True if the 2D label map breaks none of the rules of :func:`anatomical_errors`."""
    return count_anatomical_errors(labels, min_size=min_size) == 0
