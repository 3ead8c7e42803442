"""Private helpers shared by the cardiac dataset formats (:mod:`cmrlab.data.acdc`,
:mod:`cmrlab.data.mnms`, :mod:`cmrlab.data.sunnybrook`).

They check arguments, write small text files atomically, read NIfTI voxels with the checks of
:mod:`cmrlab.data.io`, and compare geometry, so that the three readers report problems the same
way: a :class:`~cmrlab.errors.FileFormatError` whose message names the file and the problem.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrlab.data.io import PathLike, load_nifti, save_nifti, spacing_from_affine
from cmrlab.files import atomic_write
from cmrlab.errors import ArgumentError, FileFormatError

#: Tolerance (mm) when spacings and affines of an image and its labels are compared.
GEOMETRY_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class DatasetReport:
    """What :func:`check_dataset` found under a dataset root.

    ``counts`` maps a category (``"split"``, ``"group"``, ``"vendor"``...) to the number of cases
    per value, e.g. ``counts["split"] == {"training": 100, "testing": 50}``. ``problems`` lists
    what is odd but does not make the layout wrong (an empty split folder, a stray file); a wrong
    layout raises :class:`~cmrlab.errors.FileFormatError` instead.
    """

    dataset: str
    root: Path
    n_cases: int
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    deep: bool = False

    @property
    def per_split(self) -> Mapping[str, int]:
        """Number of cases per split (folder) of the dataset."""
        return self.counts.get("split", {})

    @property
    def per_group(self) -> Mapping[str, int]:
        """Number of cases per diagnostic group (empty when the dataset has none)."""
        return self.counts.get("group", {})

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        split_text = ", ".join(f"{k}: {v}" for k, v in self.per_split.items())
        text = f"{self.dataset} at {self.root}: {self.n_cases} cases ({split_text})"
        if self.deep:
            text += ", every case read"
        if self.problems:
            text += "\n  problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        return text


def count(values: Iterable[object]) -> dict[str, int]:
    """How many times each value occurs, keys sorted (``None`` is counted as ``"unknown"``)."""
    result: dict[str, int] = {}
    for value in values:
        key = "unknown" if value is None else str(value)
        result[key] = result.get(key, 0) + 1
    return dict(sorted(result.items()))


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------
def as_path(path: PathLike, argument: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(
            f"{argument} must be a path (str or pathlib.Path), got {type(path).__name__}"
        )
    return Path(path).expanduser()


def as_spacing(spacing: Sequence[float], argument: str = "spacing") -> np.ndarray:
    """Three positive, finite voxel sizes in mm."""
    try:
        values = np.asarray(spacing, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ArgumentError(f"{argument} must be 3 numbers (mm), got {spacing!r}") from None
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ArgumentError(f"{argument} must be 3 positive numbers (mm), got {spacing!r}")
    return values


def as_affine(affine: np.ndarray | None, spacing: np.ndarray) -> np.ndarray:
    """The 4×4 voxel → RAS+ mm matrix: ``diag(spacing)`` when ``affine`` is None, else ``affine``
    after checking that its column lengths equal ``spacing`` (within 1e-3 mm)."""
    if affine is None:
        return np.diag([*spacing, 1.0])
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ArgumentError(f"affine must be a finite 4×4 matrix, got shape {matrix.shape}")
    lengths = spacing_from_affine(matrix)
    if not np.allclose(lengths, spacing, atol=GEOMETRY_TOLERANCE_MM):
        raise ArgumentError(
            f"affine and spacing disagree: the affine's voxel sizes are {np.round(lengths, 4)} mm "
            f"but spacing is {tuple(spacing)} mm"
        )
    return matrix


def as_image(array: np.ndarray, ndim: int, argument: str) -> np.ndarray:
    """A finite real array with ``ndim`` axes (stored as given, read back as float32)."""
    values = np.asarray(array)
    if values.ndim != ndim:
        raise ArgumentError(f"{argument} must have {ndim} axes, got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise ArgumentError(f"{argument} must hold real numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ArgumentError(f"{argument} holds NaN or infinite values")
    if values.dtype == bool or values.dtype == np.float16 or values.dtype.itemsize > 4:
        values = values.astype(np.float32)
    return values


def as_labels(
    array: np.ndarray, shape: tuple[int, ...], allowed: Iterable[int], argument: str
) -> np.ndarray:
    """A uint8 label array of ``shape`` whose values are all in ``allowed``."""
    values = np.asarray(array)
    if values.shape != tuple(shape):
        raise ArgumentError(f"{argument} must have shape {tuple(shape)}, got {values.shape}")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ArgumentError(f"{argument} must hold whole label numbers")
    elif values.dtype.kind not in "biu":
        raise ArgumentError(f"{argument} must hold integer labels, got dtype {values.dtype}")
    found = set(np.unique(values).tolist())
    extra = sorted(found - set(allowed))
    if extra:
        raise ArgumentError(
            f"{argument} holds label value(s) {extra}; allowed are {sorted(set(allowed))}"
        )
    return values.astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
def write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically (Unix line ends, identical bytes for identical text)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def read_text(path: Path) -> str:
    """A small text file's content; a missing, empty or non-UTF-8 file → FileFormatError."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise FileFormatError(path, what)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not text.strip():
        raise FileFormatError(path, "is empty")
    return text


def require_folder(path: Path, what: str, hint: str = "") -> Path:
    if not path.exists():
        raise FileFormatError(path, f"{what} not found{hint}")
    if not path.is_dir():
        raise FileFormatError(path, f"is a file, but the {what} should be a folder{hint}")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileFormatError(path, f"{what} is missing")
    if not path.is_file():
        raise FileFormatError(path, f"{what} should be a file, found a folder")
    return path


def visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder``, sorted, without hidden ones and macOS ``._*`` leftovers."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def nifti_image(
    array: np.ndarray, affine: np.ndarray, time_step: float | None = None
) -> nib.Nifti1Image:
    """A NIfTI-1 image with qform and sform set (code 1, scanner) and mm units.

    For a 4-D array the fourth zoom (``pixdim[4]``) is ``time_step`` in milliseconds, with time
    units ``msec``; ``time_step=None`` leaves it at 1 with unknown time units.
    """
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if array.ndim == 4:
        zooms = list(img.header.get_zooms()[:3]) + [1.0 if time_step is None else float(time_step)]
        img.header.set_zooms(zooms)
        img.header.set_xyzt_units("mm", "unknown" if time_step is None else "msec")
    else:
        img.header.set_xyzt_units("mm")
    return img


def save_image(path: Path, array: np.ndarray, affine: np.ndarray, time_step: float | None = None) -> Path:
    """Save ``array`` as ``.nii.gz`` atomically (nibabel writes gzip with mtime 0: same bytes)."""
    return save_nifti(nifti_image(array, affine, time_step), path)


@dataclass(frozen=True)
class NiftiVolume:
    """Voxels (stored values, scaled when the header says so) and geometry of one NIfTI file."""

    path: Path
    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, ...]


def read_volume(path: Path, ndim: int, what: str) -> NiftiVolume:
    """Read a NIfTI file with :func:`cmrlab.data.io.load_nifti` and check axes and NaN."""
    img = load_nifti(path)
    data = np.asanyarray(img.dataobj)
    if data.ndim != ndim:
        raise FileFormatError(
            path, f"the {what} should have {ndim} axes, it has shape {data.shape}"
        )
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise FileFormatError(path, f"the {what} holds NaN or infinite values")
    return NiftiVolume(path, np.asarray(data), np.asarray(img.affine, dtype=float),
                       tuple(float(z) for z in img.header.get_zooms()))


def check_label_values(volume: NiftiVolume, allowed: Iterable[int], what: str) -> np.ndarray:
    """The labels of ``volume`` as uint8, after checking they are whole numbers in ``allowed``."""
    data = volume.data
    if data.dtype.kind == "f" and np.any(data != np.round(data)):
        raise FileFormatError(volume.path, f"the {what} holds non-integer values; labels are whole numbers")
    found = set(np.unique(data).astype(int).tolist())
    extra = sorted(found - set(allowed))
    if extra:
        raise FileFormatError(
            volume.path,
            f"the {what} holds label value(s) {extra}; this dataset defines {sorted(set(allowed))}",
        )
    return data.astype(np.uint8)


def check_same_grid(reference: NiftiVolume, other: NiftiVolume, what: str) -> None:
    """Shapes (first three axes) and affines of two volumes must agree (1e-3 mm)."""
    if reference.data.shape[:3] != other.data.shape[:3]:
        raise FileFormatError(
            other.path,
            f"the {what} has {other.data.shape[:3]} voxels per volume but "
            f"{reference.path.name} has {reference.data.shape[:3]}",
        )
    if not np.allclose(reference.affine, other.affine, atol=GEOMETRY_TOLERANCE_MM):
        worst = float(np.max(np.abs(reference.affine - other.affine)))
        raise FileFormatError(
            other.path,
            f"the {what}'s affine differs from that of {reference.path.name} by up to "
            f"{worst:.4g} mm (tolerance {GEOMETRY_TOLERANCE_MM} mm): image and labels are not on "
            "the same voxel grid",
        )
