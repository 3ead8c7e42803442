"""Intensity normalisation of MR images, and the median projection of a short-axis stack.

MR intensities have no fixed unit: the same tissue gets different numbers on another scanner,
coil or day, so a network's input is put on a common scale first. The sources use two rules:

* **min-max** over the volume or per frame, :math:`(I - \\min I)/(\\max I - \\min I)` (the cardiac
  thesis, ch. 5 and 7; :func:`cmrlab.data.preprocess.min_max_normalise`);
* **z-score**, :math:`(I - \\mu)/\\sigma`, "a mean of zero and a standard deviation of one"
  (the brain thesis, L3100-3116), with μ and σ taken on the non-zero voxels only (L3272-3274):
  :func:`z_score` with ``mask=image != 0``.

Two more are common and compared in the chapter "Preprocessing": :func:`percentile_clip` (min-max
between two percentiles, so that a few bright outliers, e.g. fat or flow artefacts, do not squash
everything else) and :func:`histogram_equalise` (map every value to its rank, the empirical
CDF, which flattens the histogram).

:func:`median_projection` is the cardiac thesis's 4D → 3D reduction for its ES/ED frame
detector (ch. 7, L5647-5669): every frame of the stack becomes one image, the voxel-wise median
over the slices from the second to the penultimate.

Every function takes a NumPy array and returns a new float32 array (the input is not changed);
NaN or infinite values are an error.
"""
from __future__ import annotations

import numpy as np

from cmrlab.checks import check_int, check_number
from cmrlab.errors import ArgumentError

__all__ = ["histogram_equalise", "median_projection", "percentile_clip", "z_score"]


def _image(image: object, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ArgumentError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise ArgumentError(f"{name} must not be empty, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise ArgumentError(f"{name} must hold real numbers, got dtype {image.dtype}")
    if not np.all(np.isfinite(image)):
        raise ArgumentError(f"{name} holds NaN or infinite values; normalise finite values only")
    return image


def _values(image: np.ndarray, mask: object) -> np.ndarray:
    """The voxels the statistics are taken on: all of them, or those where ``mask`` is true."""
    if mask is None:
        return image.ravel()
    mask = np.asarray(mask)
    if mask.shape != image.shape or mask.dtype != bool:
        raise ArgumentError(f"mask must be a boolean array of the image's shape {image.shape}, "
                            f"got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise ArgumentError("mask selects no voxel: the statistics need at least one")
    return image[mask]


def z_score(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:math:`(I - \\mu) / \\sigma` with the mean μ and the (population) standard deviation σ
    of the voxels in ``mask`` (default: all voxels), applied to every voxel.

    ``mask=image != 0`` is the brain thesis's rule (non-zero voxels only, L3272-3274), which
    keeps the empty background out of the statistics. A constant image (σ = 0) gives
    ``I - μ``, i.e. zeros on the mask.
    """
    image = _image(image)
    values = _values(image, mask).astype(np.float64)
    mu, sigma = values.mean(), values.std()
    out = image.astype(np.float64) - mu
    if sigma > 0:
        out /= sigma
    return out.astype(np.float32)


def percentile_clip(image: np.ndarray, low: float = 1.0, high: float = 99.0,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """Clip to the ``low``-th and ``high``-th percentiles (of the voxels in ``mask``), then
    min-max to [0, 1]: :math:`(\\mathrm{clip}(I, q_l, q_h) - q_l) / (q_h - q_l)`.

    Percentiles are NumPy's (linear interpolation). ``low=0, high=100`` is plain min-max. When
    :math:`q_h = q_l` the result is all zeros.
    """
    image = _image(image)
    low = check_number("low", low, 0.0, 100.0)
    high = check_number("high", high, 0.0, 100.0)
    if not low < high:
        raise ArgumentError(f"low must be below high, got low={low:g}, high={high:g}")
    q_low, q_high = np.percentile(_values(image, mask).astype(np.float64), [low, high])
    if q_high == q_low:
        return np.zeros(image.shape, np.float32)
    return ((np.clip(image.astype(np.float64), q_low, q_high) - q_low) / (q_high - q_low)).astype(np.float32)


def histogram_equalise(image: np.ndarray, bins: int = 256, mask: np.ndarray | None = None) -> np.ndarray:
    """Histogram equalisation: every value replaced by the empirical CDF of the image at it.

    The histogram has ``bins`` equal bins between the minimum and the maximum of the voxels in
    ``mask``; its cumulative sum, divided by the voxel count, is the CDF at each bin, and a value
    maps to the CDF interpolated linearly between bin centres (values outside the range clip to
    the ends). The output lies in (0, 1] and its histogram is as flat as the bins allow. Equal to
    ``skimage.exposure.equalize_hist(image, nbins=bins, mask=mask)`` (the tests check it).
    """
    image = _image(image)
    bins = check_int("bins", bins, 2)
    values = _values(image, mask).astype(np.float64)
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    cdf = np.cumsum(counts) / values.size
    return np.interp(image.astype(np.float64), centres, cdf).astype(np.float32)


def median_projection(volume: np.ndarray, slice_axis: int = 2) -> np.ndarray:
    """The voxel-wise median over the slices from the 2nd to the penultimate (thesis L5655-5657).

    ``volume`` is (X, Y, Z) or (X, Y, Z, T) with the slices on ``slice_axis`` (default 2); the
    result has that axis removed: one image per frame. Leaving out the first and last slices
    drops slices that may lie outside the LV or at its extreme base and apex (L5657-5669); the
    median resists outliers. With fewer than 3 slices there is no middle, so the median is taken
    over all of them: for one slice the projection is the identity, as the thesis notes
    (L6421-6427).
    """
    volume = _image(volume, "volume")
    if volume.ndim < 3:
        raise ArgumentError(f"volume must have at least 3 axes (X, Y, Z[, T]), got shape {volume.shape}")
    axis = check_int("slice_axis", slice_axis, -volume.ndim, volume.ndim - 1) % volume.ndim
    n = volume.shape[axis]
    middle = np.take(volume, np.arange(1, n - 1), axis=axis) if n >= 3 else volume
    return np.median(middle.astype(np.float64), axis=axis).astype(np.float32)
