"""Private helpers shared by every dataset format module of :mod:`cmrlab.data`.

The cardiac formats (:mod:`~cmrlab.data.acdc`, :mod:`~cmrlab.data.mnms`,
:mod:`~cmrlab.data.sunnybrook`) and the brain formats (:mod:`~cmrlab.data.iseg`,
:mod:`~cmrlab.data.mrbrains`, :mod:`~cmrlab.data.brats`, :mod:`~cmrlab.data.msd`) check their
arguments, walk their folders, read their CSV tables and report what they found through these
functions, so that all of them report problems the same way: an
:class:`~cmrlab.errors.ArgumentError` naming the argument, or a
:class:`~cmrlab.errors.FileFormatError` naming the file and the problem.

Volumes (reading, comparing grids, writing Analyze pairs) live in :mod:`cmrlab.data.volume`;
numbers read from metadata are checked by :func:`cmrlab.checks.metadata_number`; text, JSON and
paths named in metadata by :mod:`cmrlab.files`.
"""
from __future__ import annotations

import csv
import io as _io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrlab.checks import check_number, check_spacing
from cmrlab.data.io import PathLike, save_nifti, spacing_from_affine
from cmrlab.data.volume import GRID_TOLERANCE_MM
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import atomic_write_text, inside, read_text

#: Tissue classes of the course (data-common contract): the target of every brain label mapping.
TISSUE_LABELS: dict[int, str] = {0: "background", 1: "CSF", 2: "GM", 3: "WM"}

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class DatasetReport:
    """What a format module's ``check_dataset`` found under a dataset root.

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


def deep_progress(items: list, desc: str) -> Iterable:
    """``items`` wrapped in the course's progress bar (for ``check_dataset(deep=True)``, which
    reads every case). cmrlab.viz is imported only here, as it loads matplotlib and ipywidgets."""
    from cmrlab.viz.progress import progress

    return progress(items, desc=desc, leave=False)


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------
def as_path(path: PathLike, argument: str = "root") -> Path:
    """``path`` as a Path, ``~`` expanded (ArgumentError if it is not a str or PathLike)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(
            f"{argument} must be a path (str or pathlib.Path), got {type(path).__name__}"
        )
    return Path(path).expanduser()


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


def geometry(spacing: Iterable[float], affine: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(spacing, affine)`` to write: three voxel sizes > 0 in mm (:func:`cmrlab.checks.check_spacing`)
    and the 4×4 voxel → RAS+ mm matrix, ``diag(spacing)`` when ``affine`` is None (voxel (0, 0, 0)
    at the world origin). A given ``affine`` must be finite and its column lengths must equal
    ``spacing`` (within :data:`~cmrlab.data.volume.GRID_TOLERANCE_MM`)."""
    voxel = np.asarray(check_spacing("spacing", spacing, 3), dtype=float)
    if affine is None:
        return voxel, np.diag([*voxel, 1.0])
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ArgumentError(f"affine must be a finite 4×4 matrix, got shape {matrix.shape}")
    lengths = spacing_from_affine(matrix)
    if not np.allclose(lengths, voxel, rtol=0.0, atol=GRID_TOLERANCE_MM):
        raise ArgumentError(
            f"affine and spacing disagree: the affine's voxel sizes are {np.round(lengths, 4)} mm "
            f"but spacing is {tuple(voxel.tolist())} mm"
        )
    return voxel, matrix


def as_image(array: object, argument: str, ndim: int | tuple[int, ...] = 3, *,
             keep_dtype: bool = False) -> np.ndarray:
    """A finite real array with ``ndim`` axes (or one of the numbers in a tuple).

    Returned as float32, or with ``keep_dtype`` in its own type when that is one NIfTI stores
    compactly (integers up to 32 bits, float32; booleans, float16 and 64-bit types become float32).
    NaN and infinity, also from a float64 value too large for float32, are refused.
    """
    try:
        values = np.asarray(array)
    except Exception as exc:  # noqa: BLE001 - e.g. a CUDA tensor
        raise ArgumentError(f"{argument} must be an array, got {type(array).__name__} ({exc})") from None
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if values.ndim not in dims:
        raise ArgumentError(f"{argument} must have {' or '.join(map(str, dims))} axes, got shape "
                            f"{values.shape}")
    if values.dtype.kind not in "biuf":
        raise ArgumentError(f"{argument} must hold real numbers, got dtype {values.dtype}")
    if not keep_dtype or values.dtype == bool or values.dtype == np.float16 or values.dtype.itemsize > 4:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            values = values.astype(np.float32)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ArgumentError(f"{argument} holds NaN or infinite values (or values beyond float32)")
    return values


def as_labels(array: object, argument: str, allowed: Iterable[int],
              shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A uint8 label array (of ``shape``, if given) whose values are whole numbers in ``allowed``."""
    try:
        values = np.asarray(array)
    except Exception as exc:  # noqa: BLE001
        raise ArgumentError(f"{argument} must be an array, got {type(array).__name__} ({exc})") from None
    if shape is not None and values.shape != tuple(shape):
        raise ArgumentError(f"{argument} has shape {values.shape}, the images have {tuple(shape)}")
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ArgumentError(f"{argument} must hold whole label numbers")
    elif values.dtype.kind not in "iu":
        raise ArgumentError(f"{argument} must hold integer labels, got dtype {values.dtype}")
    allowed = sorted({int(v) for v in allowed})
    bad = np.setdiff1d(np.unique(values), allowed)
    if bad.size:
        raise ArgumentError(
            f"{argument} holds label value(s) {[int(v) for v in bad]}; allowed are {allowed}"
        )
    return values.astype(np.uint8)


def known_labels(array: object, argument: str, allowed: Iterable[int], dataset: str) -> np.ndarray:
    """``array`` as given (an ndarray) after checking that every value is one of ``allowed``.

    Any other value (also NaN, 0.5 or a non-numeric type) is an ArgumentError naming it and the
    values ``dataset`` uses.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise ArgumentError(f"{argument} must hold label numbers, got dtype {arr.dtype}")
    allowed = sorted({int(v) for v in allowed})
    bad = np.setdiff1d(np.unique(arr), allowed)
    if bad.size:
        raise ArgumentError(f"{argument} holds value(s) {bad.tolist()[:10]} that {dataset} does not "
                            f"use ({', '.join(map(str, allowed))})")
    return arr


def relabel(array: object, argument: str, mapping: Mapping[int, int], dataset: str) -> np.ndarray:
    """``array``'s labels mapped through ``mapping`` (source value → new value 0..255), as uint8.

    A value that is not a key of ``mapping`` is an ArgumentError (:func:`known_labels`).
    """
    arr = known_labels(array, argument, mapping, dataset)
    lut = np.zeros(max(mapping) + 1, dtype=np.uint8)
    for source, target in mapping.items():
        lut[source] = target
    return lut[arr.astype(np.intp)]


def check_frames(ed: object, es: object, n_frames: int, *, one_based: bool) -> None:
    """ED and ES must be different frames of a cine with ``n_frames`` frames (ArgumentError).

    ``one_based``: frame numbers 1..T (ACDC); else frame indices 0..T−1 (M&Ms).
    """
    low = 1 if one_based else 0
    kind = "1-based frame number" if one_based else "0-based frame index"
    for name, value in (("ed", ed), ("es", es)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not low <= value < low + n_frames:
            raise ArgumentError(
                f"{name} must be a {kind} in {low}..{low + n_frames - 1} (image4d has {n_frames} "
                f"frames), got {value!r}"
            )
    if ed == es:
        raise ArgumentError(f"ed and es must be different frames, both are {ed}")


def as_time_step(time_step: object, argument: str = "time_step") -> float | None:
    """``None``, or the time between frames in ms: a finite number > 0."""
    if time_step is None:
        return None
    return check_number(argument, time_step, 0.0, low_open=True)


def folder_to_write(root: PathLike, what: str) -> Path:
    """``root`` as a Path that is not an existing file (FileFormatError naming ``what`` otherwise)."""
    base = as_path(root, "root")
    if base.exists() and not base.is_dir():
        raise FileFormatError(base, f"is a file; give the {what} to write into")
    return base


# ----------------------------------------------------------------------------------------------
# Folders and files
# ----------------------------------------------------------------------------------------------
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


def visible(paths: Iterable[Path]) -> list[Path]:
    """``paths`` sorted, without hidden files, AppleDouble ``._*`` files and ``.partial`` files."""
    return sorted(p for p in paths if not p.name.startswith("."))


def visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder``, sorted, without hidden ones and macOS ``._*`` leftovers."""
    return [p for p in visible(folder.iterdir()) if p.is_dir()]


def inside_dataset(root: Path, path: Path) -> Path:
    """``path``, unless it (or a folder on its way) is a symbolic link leading outside ``root``.

    A case folder or an image file of a dataset that links to ``/etc`` or to another dataset is
    refused with a FileFormatError naming it (:func:`cmrlab.files.inside`); ``root`` itself may be
    a link.
    """
    try:
        relative: str | Path = path.relative_to(root)
    except ValueError:
        relative = os.path.relpath(path, root)
    inside(root, relative, source=path, what="link")
    return path


def inside_all(root: Path, paths: Iterable[Path]) -> list[Path]:
    """:func:`inside_dataset` for each of ``paths``; returns them as a list."""
    return [inside_dataset(root, p) for p in paths]


# ----------------------------------------------------------------------------------------------
# CSV tables
# ----------------------------------------------------------------------------------------------
def read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV table with a header line, as ``(line number, {column: stripped text})``.

    The file is read strictly (:func:`cmrlab.files.read_text`: UTF-8, a BOM dropped); columns in
    ``required`` must be present. A malformed table (an over-long field, a stray quote) is a
    FileFormatError naming the file, never a ``csv.Error``.
    """
    text = read_text(path, what="CSV file")
    try:
        reader = csv.DictReader(_io.StringIO(text))
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in columns]
        if missing:
            raise FileFormatError(path, f"column(s) {', '.join(missing)} missing; found {columns}")
        rows = []
        for number, raw in enumerate(reader, start=2):
            rows.append((number, {(k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
                                  for k, v in raw.items() if k is not None}))
    except csv.Error as exc:
        raise FileFormatError(path, f"is not a valid CSV table ({exc})") from None
    return rows


def write_csv(path: Path, columns: Sequence[str], rows: Mapping[str, Mapping[str, str]]) -> Path:
    """Write ``rows`` (sorted by key) under a header of ``columns``, atomically, ``\\n`` line ends."""
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow({c: rows[key].get(c, "") for c in columns})
    return atomic_write_text(path, buffer.getvalue())


# ----------------------------------------------------------------------------------------------
# NIfTI writing (cardiac formats: scanner coordinates, a time step)
# ----------------------------------------------------------------------------------------------
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
