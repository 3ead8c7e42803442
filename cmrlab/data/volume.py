"""One volume type for every dataset format: voxels plus geometry, read, compared and written.

Every format module of :mod:`cmrlab.data` (ACDC, M&Ms, iSeg-2017, MRBrainS18, BraTS, MSD) reads
its NIfTI and Analyze files into a :class:`Volume`, in the manner of TorchIO's ``Image``: the
voxel array, the 4×4 voxel → world (RAS+, mm) affine, the file it came from and the header's voxel
sizes. The files of one case (an image and its labels, the scans of one subject) are compared by
:func:`check_same_grid`, the one place where the geometry tolerance :data:`GRID_TOLERANCE_MM`
lives, like TorchIO's ``Subject.check_consistent_attribute``.

>>> import numpy as np
>>> v = Volume(np.zeros((4, 4, 2), np.float32), np.diag([1.5, 1.5, 8.0, 1.0]))
>>> v.spacing
(1.5, 1.5, 8.0)

Reading goes through :func:`cmrlab.data.io.load_nifti`, so a missing, empty, truncated or
non-image file is already a :class:`~cmrlab.errors.FileFormatError` naming the file; on top of
that :func:`read_volume` checks the number of axes and refuses NaN or infinite voxels.

:func:`write_analyze` writes an Analyze 7.5 ``.hdr``/``.img`` pair (iSeg-2017's format) with
both files first under hidden temporary names. Two files cannot be replaced in one atomic step:
see the function for what a failure between the two renames leaves behind.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrlab.checks import check_spacing
from cmrlab.data.io import PathLike, load_nifti, spacing_from_affine
from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError
from cmrlab.files import partial_name

__all__ = ["GRID_TOLERANCE_MM", "Volume", "check_same_grid", "read_volume", "write_analyze"]

#: Largest difference (mm) allowed between the affines of two files that should share a voxel
#: grid (an image and its labels, the scans of one case). The one tolerance of every format.
GRID_TOLERANCE_MM = 1e-3


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels and geometry of one image or label file.

    ``array`` holds the stored values (scaled when the header says so), at least 3-D with the
    spatial axes first (X, Y, Z[, T or channels]); ``affine`` maps voxel indices to RAS+ world
    millimetres; ``path`` is the file (None for a volume made in memory); ``zooms`` the header's
    voxel sizes, one per axis (empty: taken from the affine).
    """

    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    zooms: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim < 3:
            raise ArgumentError(f"array must have at least 3 axes (X, Y, Z), got shape {array.shape}")
        affine = np.asarray(self.affine, dtype=float)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ArgumentError(f"affine must be a finite 4×4 matrix, got shape {affine.shape}")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "zooms", tuple(float(z) for z in self.zooms))
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along X, Y, Z: the header's zooms, or the affine's column lengths."""
        if len(self.zooms) >= 3:
            return tuple(self.zooms[:3])  # type: ignore[return-value]
        return tuple(float(s) for s in spacing_from_affine(self.affine))  # type: ignore[return-value]

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The number of voxels along X, Y, Z."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def time_step(self) -> float | None:
        """The fourth zoom (``pixdim[4]``: the time between frames of a cine), None without one."""
        return self.zooms[3] if len(self.zooms) > 3 else None

    @property
    def name(self) -> str:
        """The file name, for messages (``"the array"`` for a volume made in memory)."""
        return self.path.name if self.path is not None else "the array"

    def _blame(self) -> Path | str:
        return self.path if self.path is not None else "array"

    def with_array(self, array: np.ndarray) -> Volume:
        """The same geometry and file with other voxels (e.g. a squeezed channel axis)."""
        return replace(self, array=array)

    def image(self) -> np.ndarray:
        """The voxels as float32; NaN or infinity (also from a float64 overflow) → FileFormatError."""
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            data = self.array.astype(np.float32)
        if not np.all(np.isfinite(data)):
            raise FileFormatError(self._blame(), "holds NaN or infinite voxel values")
        return data

    def labels(self, allowed: Mapping[int, str] | Iterable[int], dataset: str) -> np.ndarray:
        """The voxels as uint8 labels, after checking they are whole numbers in ``allowed``.

        A non-integer value, or one that ``dataset`` does not define, is a FileFormatError naming
        the values and how many voxels hold them.
        """
        data = self.array
        if data.dtype.kind == "f" and (not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data))):
            raise FileFormatError(self._blame(), "is a label file but holds non-integer values")
        if data.dtype.kind not in "biuf":
            raise FileFormatError(self._blame(), f"is a label file but holds {data.dtype} values")
        names = dict(allowed) if isinstance(allowed, Mapping) else {int(v): str(v) for v in allowed}
        values, counts = np.unique(data, return_counts=True)
        bad = [(int(v), int(c)) for v, c in zip(values.tolist(), counts.tolist()) if int(v) not in names]
        if bad:
            listed = ", ".join(f"{v} ({c} voxels)" for v, c in bad[:6])
            known = ", ".join(f"{k} {n}" for k, n in names.items())
            raise FileFormatError(
                self._blame(), f"holds label value(s) {listed} that {dataset} does not define "
                f"(its labels: {known})"
            )
        return data.astype(np.uint8)


def read_volume(path: PathLike, ndim: int | tuple[int, ...] = 3) -> Volume:
    """Read a NIfTI or Analyze file into a :class:`Volume`, checking its axes and values.

    ``ndim`` is the number of axes expected (or a tuple of the numbers allowed). Trailing axes of
    length 1 beyond the largest allowed number are dropped (iSeg-2017 stores its 3-D volumes as
    X×Y×Z×1). A wrong number of axes, or NaN or infinite voxels, is a FileFormatError naming the
    file; so is anything :func:`cmrlab.data.io.load_nifti` refuses.
    """
    path = Path(path)
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    img = load_nifti(path)
    data = np.asanyarray(img.dataobj)
    while data.ndim > max(dims) and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in dims:
        raise FileFormatError(
            path, f"holds a {data.ndim}-D array of shape {data.shape}; expected "
            f"{' or '.join(map(str, dims))} dimensions"
        )
    data = np.asarray(data)
    if data.dtype.kind in "fc" and not np.all(np.isfinite(data)):
        raise FileFormatError(path, "holds NaN or infinite voxel values")
    try:
        affine = np.asarray(img.affine, dtype=float)
        zooms = tuple(float(z) for z in img.header.get_zooms())
    except (TypeError, ValueError) as exc:
        raise FileFormatError(path, f"has a header without a usable geometry ({exc})") from None
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise FileFormatError(path, "its affine (voxel → world) holds NaN or infinite values")
    spatial = zooms[:3]
    if len(spatial) < 3 or not all(np.isfinite(z) and z > 0 for z in spatial):
        raise FileFormatError(path, f"its voxel sizes {spatial} are not all finite numbers > 0 (mm)")
    return Volume(data, affine, path, zooms)


def check_same_grid(reference: Volume, other: Volume, *, spatial_only: bool = False) -> None:
    """Raise FileFormatError (naming ``other``) unless it lies on the voxel grid of ``reference``.

    The shapes must be equal (with ``spatial_only``, only X, Y, Z: a 4-D cine and one 3-D frame,
    a 4-channel image and its labels) and the affines may differ by at most
    :data:`GRID_TOLERANCE_MM` in any entry.
    """
    ref_shape, shape = reference.array.shape, other.array.shape
    if spatial_only:
        ref_shape, shape = ref_shape[:3], shape[:3]
    if ref_shape != shape:
        raise FileFormatError(
            other._blame(), f"has shape {shape} but {reference.name} has {ref_shape} voxels: the files "
            "of one case must lie on the same voxel grid"
        )
    diff = float(np.max(np.abs(other.affine - reference.affine)))
    if diff > GRID_TOLERANCE_MM:
        raise FileFormatError(
            other._blame(), f"its affine (voxel → world) differs from that of {reference.name} by "
            f"up to {diff:.4g} mm (tolerance {GRID_TOLERANCE_MM} mm): spacing "
            f"{tuple(round(s, 4) for s in other.spacing)} vs "
            f"{tuple(round(s, 4) for s in reference.spacing)}; the files of one case must be aligned"
        )


def write_analyze(hdr_path: PathLike, array: np.ndarray, spacing: Iterable[float]) -> Path:
    """Write an Analyze 7.5 pair ``X.hdr`` + ``X.img`` (nibabel's ``AnalyzeImage``); return ``X.hdr``.

    Analyze stores voxel sizes (``spacing``, mm, three numbers > 0) but no orientation or origin:
    readers (nibabel, SimpleITK) assume the radiological convention, +x towards the patient's
    left, and nibabel centres the volume on the world origin. Identical arrays give identical
    bytes (Analyze has no time stamp).

    Both files are first written under hidden temporary names (``.X.<id>.partial.hdr``/``.img``)
    and then renamed, the ``.img`` (voxels) before the ``.hdr`` (header). A pair of files cannot
    be replaced in one atomic step: if the second rename fails, the new ``.img`` is removed again,
    so a reader never finds a new header with old voxels or new voxels under an old header; an
    older pair of the same name is then left without its ``.img`` (reported as missing by the
    readers), never half-written. Any failure is a FileFormatError naming ``X.hdr``.
    """
    hdr_path = Path(hdr_path)
    if hdr_path.suffix != ".hdr":
        raise ArgumentError(f"hdr_path must end in .hdr, got {hdr_path}")
    voxel = check_spacing("spacing", spacing, 3)
    array = np.asarray(array)
    if array.ndim < 3:
        raise ArgumentError(f"array must have at least 3 axes, got shape {array.shape}")
    img_path = hdr_path.with_suffix(".img")
    for target in (hdr_path, img_path):
        if target.is_dir():
            raise FileFormatError(target, "is a folder: give the name of the file to write")
    try:
        hdr_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(hdr_path, f"its folder cannot be created ({exc.strerror or exc})") from None
    header = nib.AnalyzeHeader()
    header.set_data_dtype(array.dtype)
    img = nib.AnalyzeImage(array, None, header)
    img.header.set_zooms(voxel + (1.0,) * (array.ndim - 3))
    tmp_hdr = partial_name(hdr_path)
    tmp_img = tmp_hdr.with_suffix(".img")
    try:
        try:
            img.to_filename(os.fspath(tmp_hdr))
            os.replace(tmp_img, img_path)
            try:
                os.replace(tmp_hdr, hdr_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    img_path.unlink()
                raise
        finally:
            for tmp in (tmp_hdr, tmp_img):
                with contextlib.suppress(OSError):
                    tmp.unlink()
    except (CmrlabError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - report every write failure the same way
        raise FileFormatError(hdr_path, f"could not be written ({type(exc).__name__}: {exc})") from None
    return hdr_path
