"""Private helpers shared by the brain dataset formats (iSeg-2017, MRBrainS18, BraTS, MSD).

Reading: :func:`read_volume` loads one NIfTI/Analyze file through :func:`cmrlab.data.io.load_nifti`
(so a missing, empty, truncated or non-image file is already a :class:`FileFormatError`), and the
``check_*`` functions compare a file with the reference file of its case (shape, affine) or with
the label values its dataset defines, always naming the file at fault.

Writing: :func:`write_nifti` goes through :func:`cmrlab.data.io.save_nifti` (atomic; nibabel
writes ``.nii.gz`` with a gzip header whose time stamp is 0, so identical arrays give identical
bytes) and :func:`write_analyze` writes an Analyze 7.5 ``.hdr``/``.img`` pair, each file atomically.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrlab.data._formats import DatasetReport, as_affine, require_file, require_folder
from cmrlab.data.io import load_nifti, save_nifti
from cmrlab.errors import ArgumentError, FileFormatError

PathLike = str | os.PathLike

#: Tissue classes of the course (data-common contract): the target of every brain label mapping.
TISSUE_LABELS: dict[int, str] = {0: "background", 1: "CSF", 2: "GM", 3: "WM"}

#: Largest difference (mm) allowed between the affines of files of one case.
AFFINE_TOLERANCE = 1e-3

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------
def as_root(root: PathLike, argument: str = "root") -> Path:
    """``root`` as a Path (ArgumentError if it is not a path)."""
    if not isinstance(root, (str, os.PathLike)):
        raise ArgumentError(f"{argument} must be a folder path (str or pathlib.Path), got "
                            f"{type(root).__name__}")
    return Path(root).expanduser()


def check_case_id(case_id: object, argument: str = "case_id") -> str:
    """A case name safe as a file/folder name: letters, digits, ``_`` and ``-`` only."""
    text = str(case_id) if isinstance(case_id, (int, np.integer)) and not isinstance(case_id, bool) \
        else case_id
    if not isinstance(text, str) or not _SAFE_ID.match(text):
        raise ArgumentError(
            f"{argument} must be a name of letters, digits, '_' and '-' (no path separators or "
            f"dots), got {case_id!r}"
        )
    return text


def check_spacing(spacing: Iterable[float], argument: str = "spacing") -> tuple[float, float, float]:
    """Three positive, finite voxel sizes in mm."""
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ArgumentError(f"{argument} must be 3 voxel sizes in mm, got {spacing!r}") from None
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ArgumentError(f"{argument} must be 3 positive voxel sizes in mm, got {spacing!r}")
    return values  # type: ignore[return-value]


def geometry_affine(spacing: Iterable[float], affine: np.ndarray | None) -> np.ndarray:
    """The affine to write: ``affine`` if given (its column norms must equal ``spacing``), else
    ``diag(spacing)`` — voxel (0, 0, 0) at the world origin, axes along RAS+."""
    return as_affine(affine, np.asarray(check_spacing(spacing), dtype=float))


def as_image_array(array: object, argument: str, ndim: int | tuple[int, ...] = 3) -> np.ndarray:
    """A finite float32 array of ``ndim`` dimensions (ArgumentError otherwise)."""
    try:
        out = np.asarray(array)
    except Exception as exc:  # noqa: BLE001 - e.g. a CUDA tensor
        raise ArgumentError(f"{argument} must be an array, got {type(array).__name__} ({exc})") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if out.ndim not in dims:
        raise ArgumentError(f"{argument} must have {' or '.join(map(str, dims))} dimensions, got "
                            f"shape {out.shape}")
    if out.dtype.kind not in "biuf":
        raise ArgumentError(f"{argument} must hold real numbers, got {out.dtype}")
    out = out.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ArgumentError(f"{argument} holds NaN or infinite values")
    return out


def as_label_argument(array: object, argument: str, allowed: Iterable[int],
                      shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An integer label array with values in ``allowed``, as uint8 (ArgumentError otherwise)."""
    out = np.asarray(array)
    if out.dtype == bool:
        out = out.astype(np.uint8)
    if out.dtype.kind not in "iu":
        raise ArgumentError(f"{argument} must hold integer labels, got {out.dtype}")
    if shape is not None and out.shape != shape:
        raise ArgumentError(f"{argument} has shape {out.shape}, the images have {shape}")
    allowed = sorted(set(int(v) for v in allowed))
    bad = np.setdiff1d(np.unique(out), allowed)
    if bad.size:
        raise ArgumentError(f"{argument} holds label value(s) {bad.tolist()}; allowed: {allowed}")
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volume:
    """One file's voxels and geometry."""

    path: Path
    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]


def read_volume(path: Path, *, ndim: int | tuple[int, ...] = 3) -> Volume:
    """Read a NIfTI/Analyze file; trailing singleton axes beyond ``max(ndim)`` are dropped (iSeg
    stores its 3-D volumes as X×Y×Z×1). Raises FileFormatError for a bad file or a wrong number of
    dimensions."""
    img = load_nifti(path)
    data = np.asanyarray(img.dataobj)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    while data.ndim > max(dims) and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in dims:
        raise FileFormatError(
            path, f"holds a {data.ndim}-D array of shape {data.shape}; expected "
            f"{' or '.join(map(str, dims))} dimensions"
        )
    affine = np.asarray(img.affine, dtype=float)
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Volume(Path(path), np.asarray(data), affine, spacing)  # type: ignore[arg-type]


def image_data(volume: Volume) -> np.ndarray:
    """The voxels as float32; NaN or infinity → FileFormatError."""
    data = volume.data.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise FileFormatError(volume.path, "holds NaN or infinite voxel values")
    return data


def label_data(volume: Volume, allowed: Mapping[int, str], dataset: str) -> np.ndarray:
    """The voxels as uint8 labels; a non-integer value or one outside ``allowed`` →
    FileFormatError naming the values and how many voxels hold them."""
    data = volume.data
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise FileFormatError(volume.path, "is a label file but holds non-integer values")
    values, counts = np.unique(data, return_counts=True)
    bad = [(v, c) for v, c in zip(values.tolist(), counts.tolist()) if int(v) not in allowed]
    if bad:
        listed = ", ".join(f"{int(v)} ({c} voxels)" for v, c in bad[:6])
        known = ", ".join(f"{k} {n}" for k, n in allowed.items())
        raise FileFormatError(
            volume.path, f"holds label value(s) {listed} that {dataset} does not define "
            f"(its labels: {known})"
        )
    return data.astype(np.uint8)


def check_same_grid(reference: Volume, other: Volume, spatial_only: bool = False) -> None:
    """Raise FileFormatError (naming ``other``) unless it has the reference's shape and affine.

    With ``spatial_only`` only the first three axes of the shapes are compared (a 4-D image and
    its 3-D label map)."""
    ref_shape, shape = reference.data.shape, other.data.shape
    if spatial_only:
        ref_shape, shape = ref_shape[:3], shape[:3]
    if ref_shape != shape:
        raise FileFormatError(
            other.path, f"has shape {shape} but {reference.path.name} has {ref_shape}: the files "
            "of one case must lie on the same voxel grid"
        )
    diff = float(np.max(np.abs(other.affine - reference.affine)))
    if diff > AFFINE_TOLERANCE:
        raise FileFormatError(
            other.path, f"its affine (voxel → world) differs from that of {reference.path.name} by "
            f"up to {diff:.4g} mm (tolerance {AFFINE_TOLERANCE} mm): spacing "
            f"{tuple(round(s, 4) for s in other.spacing)} vs "
            f"{tuple(round(s, 4) for s in reference.spacing)}; the files of one case must be aligned"
        )


def deep_progress(items: list, desc: str) -> Iterable:
    """``items`` wrapped in the course's progress bar (for ``check_dataset(deep=True)``, which
    reads every case). cmrlab.viz is imported only here, as it loads matplotlib and ipywidgets."""
    from cmrlab.viz import progress

    return progress(items, desc=desc, leave=False)


def visible(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without hidden files, AppleDouble ``._*`` files and our own ``.partial`` files."""
    return sorted(p for p in paths if not p.name.startswith("."))


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Save ``array`` with ``affine`` as NIfTI-1 (``.nii.gz``), atomically, with mm units."""
    return save_nifti(array, path, affine)


def write_analyze(hdr_path: Path, array: np.ndarray, spacing: tuple[float, float, float]) -> Path:
    """Write an Analyze 7.5 pair ``X.hdr`` + ``X.img`` (nibabel's ``AnalyzeImage``).

    Analyze stores voxel sizes but no orientation or origin: readers (nibabel, SimpleITK) assume
    the radiological convention, +x towards the patient's left, and nibabel centres the volume on
    the world origin. Both files are first written under hidden temporary names and then renamed,
    the ``.img`` (voxels) before the ``.hdr`` (header), so a reader never sees a new header next to
    missing or old voxel data. Identical arrays give identical bytes (Analyze has no time stamp).
    """
    header = nib.AnalyzeHeader()
    header.set_data_dtype(array.dtype)
    img = nib.AnalyzeImage(array, None, header)
    zooms = tuple(spacing) + (1.0,) * (array.ndim - 3)
    img.header.set_zooms(zooms)
    folder = hdr_path.parent
    if hdr_path.is_dir():
        raise FileFormatError(hdr_path, "is a folder: give the name of the file to write")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(hdr_path, f"its folder cannot be created ({exc.strerror or exc})") from None
    stem = hdr_path.name[:-4]
    tmp_hdr = folder / f".{stem}.{uuid.uuid4().hex[:8]}.partial.hdr"
    tmp_img = tmp_hdr.with_suffix(".img")
    img_path = hdr_path.with_suffix(".img")
    try:
        try:
            img.to_filename(os.fspath(tmp_hdr))
            os.replace(tmp_img, img_path)
            os.replace(tmp_hdr, hdr_path)
        finally:
            for tmp in (tmp_hdr, tmp_img):
                with contextlib.suppress(OSError):
                    tmp.unlink()
    except Exception as exc:  # noqa: BLE001 - report every write failure the same way
        raise FileFormatError(hdr_path, f"could not be written ({type(exc).__name__}: {exc})") from None
    return hdr_path
