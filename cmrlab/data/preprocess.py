"""Preprocessing of a cardiac short-axis stack as in the cardiac thesis, chapter 5, and its inverse.

::

    from cmrlab.data.preprocess import preprocess_volume
    prep = preprocess_volume(image, spacing=(1.46, 1.46, 10.0), labels=gt)   # image (X, Y, Z)
    prep.image.shape                                 # (176, 176, Z), float32 in [0, 1]
    pred = model_output_labels                       # (176, 176, Z) on the preprocessed grid
    back = prep.geometry.restore_to_original(pred)   # (X, Y, Z): the input's grid exactly

The steps (cardiac thesis, ch. 5, L3650-3670), in the order we apply them:

1. **min-max normalisation over the whole volume**, :math:`I' = (I - \\min I) / (\\max I - \\min I)`
   (a constant volume becomes all zeros). The thesis applies it last; done first it gives the
   same numbers, because bilinear interpolation is a convex combination of voxels (the map
   commutes with it) and the zero padding of step 3 then equals the volume's minimum, as it
   would for a magnitude image whose minimum is 0.
2. **in-plane resampling to 1×1 mm** (the first two axes), bilinear for images, nearest
   neighbour for labels; the slice axis and any later axis (time) are untouched. The grid keeps
   its origin, as ITK/SimpleITK do: output pixel :math:`j` lies at input index
   :math:`x = j\\, s_{new} / s_{old}`, and the output has :math:`n' = \\mathrm{round}(n\\,
   s_{old}/s_{new})` pixels, so the field of view is kept. Samples past the last input pixel
   take its value (bilinear along the other axis), and samples more than half a pixel past it
   take the nearest pixel in both axes. That is ITK's rule: the resampling *is*
   SimpleITK's ``ResampleImageFilter`` on that output grid with the nearest-neighbour
   extrapolator (``tests/test_preprocess.py`` checks it against the rule written out in NumPy).
3. **centre crop or zero pad to 176×176**: a window of 176 pixels per axis whose centre is the
   image centre (pixel :math:`\\lfloor n'/2 \\rfloor`) or a given centre, e.g. the heart's
   (the thesis keeps the heart in the centre). Pixels outside the resampled image are 0.

:class:`PreprocessGeometry` keeps everything needed to undo the steps (original shape, spacing
and affine; the resampled size; the crop offsets), so a prediction made on the preprocessed grid
goes back to the input's grid with :meth:`PreprocessGeometry.restore_to_original` (labels by
nearest neighbour, probabilities bilinearly), e.g. to write a label NIfTI with the input's
geometry. Where the input was cropped, the restored prediction is background (0).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cmrlab.checks import check_choice, check_int_tuple, check_spacing
from cmrlab.errors import ArgumentError

__all__ = [
    "PreprocessGeometry",
    "Preprocessed",
    "THESIS_SIZE",
    "THESIS_SPACING",
    "crop_or_pad",
    "crop_start",
    "min_max_normalise",
    "preprocess_volume",
    "resample_inplane",
    "resampled_size",
]

#: In-plane pixel spacing after resampling, mm (cardiac thesis ch. 5, L3650-3670).
THESIS_SPACING: tuple[float, float] = (1.0, 1.0)
#: In-plane size after cropping or padding, pixels (cardiac thesis ch. 5).
THESIS_SIZE: tuple[int, int] = (176, 176)

Interpolation = Literal["linear", "nearest"]


def _pair(name: str, value: object, *, integer: bool) -> tuple:
    """Two values (rows, columns); one number stands for both."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if integer:
        return check_int_tuple(name, value, 2)
    return check_spacing(name, value, 2)


def _spacing(spacing: object, ndim: int) -> tuple[float, ...]:
    values = check_spacing("spacing", spacing)
    if not 2 <= len(values) <= ndim:
        raise ArgumentError(f"spacing must have 2 to {ndim} values (one per axis, in-plane first), "
                            f"got {len(values)}")
    return values


def _array(name: str, array: object, min_ndim: int = 2) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise ArgumentError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.ndim < min_ndim or min(array.shape) == 0:
        raise ArgumentError(f"{name} must have at least {min_ndim} non-empty axes (X, Y, ...), "
                            f"got shape {array.shape}")
    return array


def min_max_normalise(volume: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """:math:`(I - \\min I) / (\\max I - \\min I)` over the whole array, as float32.

    Returns the normalised array and ``(min, max)``. A constant array becomes all zeros. NaN or
    infinite values are an error (they would spread to every voxel).
    """
    volume = _array("volume", volume, 1)
    if not np.all(np.isfinite(volume)):
        raise ArgumentError("volume holds NaN or infinite values; min-max normalisation needs finite ones")
    low, high = float(volume.min()), float(volume.max())
    span = high - low
    if span == 0:
        return np.zeros(volume.shape, np.float32), (low, high)
    return ((volume.astype(np.float64) - low) / span).astype(np.float32), (low, high)


def resampled_size(n: int, spacing: float, new_spacing: float) -> int:
    """Pixels along an axis of ``n`` pixels at ``spacing`` resampled to ``new_spacing``:
    :math:`\\max(1, \\mathrm{round}(n\\, s / s'))` (the field of view is kept)."""
    return max(1, int(math.floor(n * spacing / new_spacing + 0.5)))


_SITK_INTERPOLATORS = {"linear": "sitkLinear", "nearest": "sitkNearestNeighbor"}
#: dtypes SimpleITK resamples as they are; others go through the nearest one of these and back
_SITK_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                      np.uint64, np.int64, np.float32, np.float64)}


def _resample_to(array: np.ndarray, step: tuple[float, float], size: tuple[int, int],
                 order: Interpolation) -> np.ndarray:
    """Resample axes 0 and 1 with SimpleITK: output pixel ``j`` samples input index ``j * step``.

    The array becomes one 3D SimpleITK image whose third axis holds every slice and frame (the
    later axes flattened), resampled by one ``ResampleImageFilter`` call onto a grid with the same
    third axis. The input grid has spacing 1 and the output grid spacing ``step`` in-plane, both
    with origin 0: that is exactly "output pixel j is input index j·step". Samples outside the
    image take the nearest pixel (``UseNearestNeighborExtrapolator``), so none is 0-filled.
    (A 2D image with one vector component per slice gives the same numbers, twice as slowly.)
    """
    import SimpleITK as sitk  # noqa: PLC0415 — a heavy import, needed only here

    if order == "nearest" or np.issubdtype(array.dtype, np.floating):
        dtype = array.dtype
    else:
        dtype = np.dtype(np.float32)          # integer images interpolate to float32
    if dtype in _SITK_DTYPES:
        work_dtype = dtype
    elif dtype == np.bool_:
        work_dtype = np.dtype(np.uint8)
    elif np.issubdtype(dtype, np.floating):
        work_dtype = np.dtype(np.float32)     # float16: SimpleITK has no such pixel type
    else:
        work_dtype = np.dtype(np.int64)
    rest = array.shape[2:]
    planes = array.reshape(*array.shape[:2], -1).astype(work_dtype, copy=False)
    # numpy (k, rows, columns) is SimpleITK (z, y, x): sitk x = our axis 1, y = axis 0, z = the rest
    image = sitk.GetImageFromArray(np.ascontiguousarray(planes.transpose(2, 0, 1)))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((int(size[1]), int(size[0]), planes.shape[2]))
    resampler.SetOutputSpacing((float(step[1]), float(step[0]), 1.0))
    resampler.SetOutputOrigin((0.0, 0.0, 0.0))
    resampler.SetInterpolator(getattr(sitk, _SITK_INTERPOLATORS[order]))
    resampler.SetDefaultPixelValue(0.0)
    resampler.SetUseNearestNeighborExtrapolator(True)
    out = sitk.GetArrayFromImage(resampler.Execute(image)).transpose(1, 2, 0)
    return out.reshape(*size, *rest).astype(dtype, copy=False)


def resample_inplane(array: np.ndarray, spacing: Sequence[float],
                     new_spacing: float | Sequence[float] = THESIS_SPACING, *,
                     order: Interpolation = "linear") -> np.ndarray:
    """Resample the first two axes of ``array`` from ``spacing`` to ``new_spacing`` (mm).

    ``spacing`` lists the spacing of the first two axes at least (more values are ignored). The
    output grid keeps the origin: output pixel :math:`j` takes the input at index
    :math:`j\\,s'/s`, with :func:`resampled_size` pixels. ``order="linear"`` interpolates
    bilinearly (images; the result keeps a floating dtype, float32 for integer input),
    ``"nearest"`` takes the nearest pixel (labels; the dtype is kept). Other axes are untouched.
    """
    array = _array("array", array)
    old = _spacing(spacing, array.ndim)[:2]
    new = _pair("new_spacing", new_spacing, integer=False)
    order = check_choice("order", order, ("linear", "nearest"))
    size = (resampled_size(array.shape[0], old[0], new[0]), resampled_size(array.shape[1], old[1], new[1]))
    if size == array.shape[:2] and old == new:
        return array.copy()
    return _resample_to(array, (new[0] / old[0], new[1] / old[1]), size, order)


def crop_start(shape: Sequence[int], size: Sequence[int], centre: Sequence[float] | None = None) -> tuple[int, int]:
    """First pixel of a ``size`` window centred on ``centre`` (default: the image centre).

    Per axis :math:`\\lfloor c + 1/2 \\rfloor - \\lfloor size/2 \\rfloor` with
    :math:`c = \\lfloor n/2 \\rfloor` by default; negative values mean zero padding before the
    image. ``centre`` is in pixels of ``shape``'s grid.
    """
    if centre is None:
        centre = (shape[0] // 2, shape[1] // 2)
    return tuple(int(math.floor(float(c) + 0.5)) - int(s) // 2 for c, s in zip(centre[:2], size[:2]))  # type: ignore[return-value]


def crop_or_pad(array: np.ndarray, start: Sequence[int], size: Sequence[int], fill: float = 0) -> np.ndarray:
    """The window ``array[start0 : start0 + size0, start1 : start1 + size1, ...]``, with ``fill``
    wherever it lies outside ``array`` (negative ``start`` or a window past the end pads).
    Other axes are untouched."""
    array = _array("array", array)
    size = _pair("size", tuple(size), integer=True)
    out = np.full((*size, *array.shape[2:]), fill, dtype=array.dtype)
    src, dst = [], []
    for axis in (0, 1):
        lo = max(int(start[axis]), 0)
        hi = min(int(start[axis]) + size[axis], array.shape[axis])
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - int(start[axis]), hi - int(start[axis])))
    out[tuple(dst)] = array[tuple(src)]
    return out


@dataclass(frozen=True)
class PreprocessGeometry:
    """What :func:`preprocess_volume` did to the grid, so that it can be undone.

    ``original_shape``, ``original_spacing`` (mm, one per axis given) and ``original_affine``
    (4×4, voxel → world; ``diag(spacing)`` if none was given) describe the input;
    ``target_spacing`` is the in-plane spacing after resampling, ``resampled_shape`` the in-plane
    size then, ``start`` the first resampled pixel of the crop window (negative: padding) and
    ``size`` the window's size. ``intensity_range`` is the input's ``(min, max)`` used by the
    normalisation (None if it was not normalised).
    """

    original_shape: tuple[int, ...]
    original_spacing: tuple[float, ...]
    original_affine: np.ndarray
    target_spacing: tuple[float, float]
    resampled_shape: tuple[int, int]
    start: tuple[int, int]
    size: tuple[int, int]
    intensity_range: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the preprocessed array."""
        return (*self.size, *self.original_shape[2:])

    @property
    def spacing(self) -> tuple[float, ...]:
        """Spacing of the preprocessed array (the slice axis keeps its own)."""
        return (*self.target_spacing, *self.original_spacing[2:])

    @property
    def step(self) -> tuple[float, float]:
        """Original pixels per preprocessed pixel along the in-plane axes, :math:`s'/s`."""
        return (self.target_spacing[0] / self.original_spacing[0],
                self.target_spacing[1] / self.original_spacing[1])

    @property
    def affine(self) -> np.ndarray:
        """4×4 voxel → world matrix of the preprocessed array.

        Preprocessed pixel :math:`(i, j, k)` is original index
        :math:`((i + a_0)\\,r_0, (j + a_1)\\,r_1, k)` with :math:`a` = ``start`` and :math:`r` =
        :attr:`step`, so :math:`A' = A\\,M` with
        :math:`M = [[r_0, 0, 0, a_0 r_0], [0, r_1, 0, a_1 r_1], [0, 0, 1, 0], [0, 0, 0, 1]]`.
        """
        r, a = self.step, self.start
        m = np.eye(4)
        m[0, 0], m[1, 1] = r
        m[0, 3], m[1, 3] = a[0] * r[0], a[1] * r[1]
        return self.original_affine @ m

    def undo_crop(self, array: np.ndarray) -> np.ndarray:
        """Put a preprocessed-grid array back on the resampled (uncropped) grid; 0 outside."""
        array = self._check(array, self.size, "array")
        return crop_or_pad(array, (-self.start[0], -self.start[1]), self.resampled_shape)

    def undo_resample(self, array: np.ndarray, order: Interpolation = "nearest") -> np.ndarray:
        """Resample a resampled-grid array back to the original in-plane grid.

        Original pixel :math:`j` takes the resampled array at index :math:`j\\,s/s'`
        (``"nearest"`` for labels, ``"linear"`` for probabilities or images).
        """
        array = self._check(array, self.resampled_shape, "array")
        order = check_choice("order", order, ("linear", "nearest"))
        r = self.step
        return _resample_to(array, (1.0 / r[0], 1.0 / r[1]), self.original_shape[:2], order)

    def restore_to_original(self, pred: np.ndarray, order: Interpolation = "nearest") -> np.ndarray:
        """A prediction on the preprocessed grid, back on the input's grid (shape ``original_shape``
        in-plane; later axes as given). Labels: ``order="nearest"`` (default), dtype kept."""
        return self.undo_resample(self.undo_crop(pred), order=order)

    def _check(self, array: object, inplane: tuple[int, int], name: str) -> np.ndarray:
        array = _array(name, array)
        if tuple(array.shape[:2]) != tuple(inplane):
            raise ArgumentError(f"{name} must have in-plane shape {tuple(inplane)}, got {array.shape}")
        return array


@dataclass(frozen=True)
class Preprocessed:
    """The output of :func:`preprocess_volume`: the image (float32), the labels (or None) and the
    :class:`PreprocessGeometry` that undoes it."""

    image: np.ndarray
    labels: np.ndarray | None
    geometry: PreprocessGeometry


def preprocess_volume(
    image: np.ndarray,
    spacing: Sequence[float],
    labels: np.ndarray | None = None,
    *,
    affine: np.ndarray | None = None,
    target_spacing: float | Sequence[float] = THESIS_SPACING,
    size: int | Sequence[int] = THESIS_SIZE,
    centre: Sequence[float] | None = None,
    normalise: bool = True,
) -> Preprocessed:
    """The thesis's chapter-5 preprocessing of ``image`` (X, Y, Z[, T]) and its ``labels``.

    Min-max normalisation over the whole volume (``normalise=True``), in-plane resampling to
    ``target_spacing`` (bilinear; labels nearest), then a crop or zero pad of the in-plane axes
    to ``size`` around the image centre or ``centre`` (given in pixels of the **input** grid, e.g.
    the centre of mass of the heart's labels). ``spacing`` gives mm per axis, in-plane first
    (later values are kept in the geometry); ``affine`` is the input's voxel → world matrix
    (default ``diag(spacing)``). See the module docstring for the conventions.
    """
    image = _array("image", image)
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise ArgumentError(f"image must hold real numbers, got dtype {image.dtype}")
    spacing = _spacing(spacing, image.ndim)
    if labels is not None:
        labels = _array("labels", labels)
        if labels.shape != image.shape:
            raise ArgumentError(f"labels must have the image's shape {image.shape}, got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ArgumentError(f"labels must be an integer array, got dtype {labels.dtype}")
    target = _pair("target_spacing", target_spacing, integer=False)
    size = _pair("size", size, integer=True)
    if affine is None:
        affine = np.diag([*(list(spacing) + [1.0] * 3)[:3], 1.0])
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ArgumentError(f"affine must be a finite 4×4 matrix, got shape {affine.shape}")
    if centre is not None:
        try:
            c = tuple(float(v) for v in centre)
        except (TypeError, ValueError):
            c = ()
        if len(c) != 2 or not all(math.isfinite(v) for v in c):
            raise ArgumentError(f"centre must be two finite numbers (row, column), got {centre!r}")
        centre = c

    if normalise:
        work, intensity_range = min_max_normalise(image)
    else:
        work, intensity_range = image.astype(np.float32), None
    resampled = resample_inplane(work, spacing, target, order="linear").astype(np.float32)
    shape = resampled.shape[:2]
    if centre is not None:
        centre = (centre[0] * spacing[0] / target[0], centre[1] * spacing[1] / target[1])
    start = crop_start(shape, size, centre)
    geometry = PreprocessGeometry(
        original_shape=tuple(image.shape), original_spacing=tuple(spacing), original_affine=affine,
        target_spacing=target, resampled_shape=tuple(shape), start=start, size=size,
        intensity_range=intensity_range,
    )
    out_labels = None
    if labels is not None:
        out_labels = crop_or_pad(resample_inplane(labels, spacing, target, order="nearest"), start, size)
    return Preprocessed(crop_or_pad(resampled, start, size), out_labels, geometry)
