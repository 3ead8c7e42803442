"""BraTS 2021 (adult glioma, multi-parametric MRI): read and write its NIfTI layout.

Layout (as published; the data root folder is ``BraTS2021/``)::

    BraTS2021/BraTS2021_00000/BraTS2021_00000_t1.nii.gz      native T1
                              BraTS2021_00000_t1ce.nii.gz    T1 after gadolinium
                              BraTS2021_00000_t2.nii.gz      T2
                              BraTS2021_00000_flair.nii.gz   T2-FLAIR
                              BraTS2021_00000_seg.nii.gz     labels (training cases only)

Real cases are co-registered, skull-stripped and resampled to 240×240×155 voxels of 1 mm; the
reader accepts any shape (synthetic cases are smaller) but requires every file of a case to lie
on the same grid. Labels (BraTS ≤ 2021): **0 background, 1 NCR (necrotic tumour core),
2 ED (peritumoral oedema), 4 ET (GD-enhancing tumour)** — there is no label 3 (BraTS 2023 uses
3 for ET). The evaluated regions are nested: whole tumour WT = {1, 2, 4}, tumour core
TC = {1, 4}, enhancing tumour ET = {4} (:func:`region_masks`). A case folder without a ``_seg``
file is a validation case.

The verbs shared by every format module: :data:`LABELS`, :func:`write_case`, :func:`read_case`,
:func:`list_cases`, :func:`check_dataset`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike, save_nifti
from cmrlab.data.volume import Volume, check_same_grid, read_volume
from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "LABELS",
    "MODALITIES",
    "REGIONS",
    "BraTSCase",
    "case_name",
    "check_dataset",
    "enhancing_tumour",
    "list_cases",
    "read_case",
    "region_masks",
    "tumour_core",
    "whole_tumour",
    "write_case",
]

#: Label values of ``_seg.nii.gz`` (BraTS ≤ 2021) and what they mean.
LABELS: dict[int, str] = {
    0: "background",
    1: "necrotic tumour core (NCR)",
    2: "peritumoral oedema (ED)",
    4: "GD-enhancing tumour (ET)",
}
#: The four scans of every case, in file-name spelling.
MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
#: The evaluated tumour regions and the labels each one unites.
REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
#: Voxel size (mm) and grid of the real data.
SPACING = (1.0, 1.0, 1.0)
SHAPE = (240, 240, 155)

_CASE = re.compile(r"^BraTS2021_(\d{5})$")


def case_name(case_id: str | int) -> str:
    """``"BraTS2021_00042"`` from ``42`` or from the name itself (ArgumentError otherwise)."""
    if isinstance(case_id, (int, np.integer)) and not isinstance(case_id, bool):
        number = check_int("case_id", case_id, 0)
        if number > 99999:
            raise ArgumentError(f"case_id must have at most 5 digits, got {case_id}")
        return f"BraTS2021_{number:05d}"
    if isinstance(case_id, str) and _CASE.match(case_id):
        return case_id
    raise ArgumentError(f"case_id must be a number or a name like 'BraTS2021_00042', got {case_id!r}")


def _labels(seg: np.ndarray) -> np.ndarray:
    return fmt.known_labels(seg, "seg", LABELS, "BraTS 2021")


def whole_tumour(seg: np.ndarray) -> np.ndarray:
    """Boolean mask of the whole tumour, labels {1, 2, 4} (NCR + ED + ET)."""
    return np.isin(_labels(seg), REGIONS["WT"])


def tumour_core(seg: np.ndarray) -> np.ndarray:
    """Boolean mask of the tumour core, labels {1, 4} (NCR + ET)."""
    return np.isin(_labels(seg), REGIONS["TC"])


def enhancing_tumour(seg: np.ndarray) -> np.ndarray:
    """Boolean mask of the enhancing tumour, label 4."""
    return _labels(seg) == 4


def region_masks(seg: np.ndarray) -> dict[str, np.ndarray]:
    """``{"WT": ..., "TC": ..., "ET": ...}`` boolean masks (nested: ET ⊆ TC ⊆ WT)."""
    arr = _labels(seg)
    return {name: np.isin(arr, labels) for name, labels in REGIONS.items()}


@dataclass(frozen=True)
class BraTSCase:
    """One BraTS 2021 case as read from disk.

    ``images``: float32 (X, Y, Z) arrays keyed ``"t1"``, ``"t1ce"``, ``"t2"``, ``"flair"``;
    ``seg``: uint8 labels 0/1/2/4, or ``None`` for a validation case. ``spacing`` (mm) and
    ``affine`` are those of the t1 file (all files agree within 1e-3 mm).
    """

    id: str
    images: dict[str, np.ndarray]
    seg: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def regions(self) -> dict[str, np.ndarray] | None:
        """:func:`region_masks` of ``seg`` (None without labels)."""
        return None if self.seg is None else region_masks(self.seg)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_case(
    root: PathLike,
    case_id: str | int,
    images: Mapping[str, np.ndarray],
    seg: np.ndarray | None = None,
    *,
    spacing: Iterable[float] = SPACING,
    affine: np.ndarray | None = None,
) -> Path:
    """Write one case to ``root/BraTS2021_XXXXX/`` (``root`` = the ``BraTS2021`` folder).

    ``images``: the four (X, Y, Z) scans keyed ``"t1"``, ``"t1ce"``, ``"t2"``, ``"flair"`` (stored
    as float32); ``seg``: labels 0/1/2/4 (uint8), or ``None`` for a validation case. ``affine``
    defaults to ``diag(spacing)``. Returns the case folder.
    """
    name = case_name(case_id)
    matrix = fmt.geometry(spacing, affine)[1]
    if not isinstance(images, Mapping) or set(images) != set(MODALITIES):
        given = sorted(images) if isinstance(images, Mapping) else type(images).__name__
        raise ArgumentError(f"images must map exactly {list(MODALITIES)} to arrays, got {given}")
    arrays = {key: fmt.as_image(images[key], f"images[{key!r}]") for key in MODALITIES}
    shape = arrays["t1"].shape
    for key, array in arrays.items():
        if array.shape != shape:
            raise ArgumentError(f"images[{key!r}] has shape {array.shape}, t1 has {shape}")
    labels = None if seg is None else fmt.as_labels(seg, "seg", LABELS, shape)
    folder = fmt.as_path(root) / name
    for key in MODALITIES:
        save_nifti(arrays[key], folder / f"{name}_{key}.nii.gz", matrix)
    if labels is not None:
        save_nifti(labels, folder / f"{name}_seg.nii.gz", matrix)
    return folder


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def read_case(path: PathLike, *, require_seg: bool = True) -> BraTSCase:
    """Read one case folder ``.../BraTS2021_XXXXX/``.

    Checks: the four scans (and, unless ``require_seg=False``, ``_seg``) present and 3-D, all on
    the grid of the t1 file (shape, affine within 1e-3 mm), labels in {0, 1, 2, 4}, no NaN.
    Raises FileFormatError naming the file at fault.
    """
    folder = fmt.require_folder(fmt.as_path(path, "path"), "a BraTS 2021 case folder")
    name = folder.name
    if not _CASE.match(name):
        raise FileFormatError(folder, "is not a BraTS 2021 case folder: its name should be "
                              "BraTS2021_ followed by 5 digits")
    volumes: dict[str, Volume] = {}
    files = {}
    for key in MODALITIES:
        file = fmt.require_file(folder / f"{name}_{key}.nii.gz", f"the {key} scan of {name}")
        volumes[key] = read_volume(fmt.inside_dataset(folder.parent, file))
        files[key] = file
    seg_file = folder / f"{name}_seg.nii.gz"
    seg = None
    if require_seg or seg_file.exists():
        fmt.require_file(seg_file, f"the label map of {name} (pass require_seg=False for a "
                         "validation case without labels)")
        volumes["seg"] = read_volume(fmt.inside_dataset(folder.parent, seg_file))
        files["seg"] = seg_file
    reference = volumes["t1"]
    for key, volume in volumes.items():
        if key != "t1":
            check_same_grid(reference, volume)
    if "seg" in volumes:
        seg = volumes["seg"].labels(LABELS, "BraTS 2021")
    return BraTSCase(
        id=name,
        images={key: volumes[key].image() for key in MODALITIES},
        seg=seg,
        spacing=reference.spacing,
        affine=reference.affine,
        files=files,
    )


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------
def _case_folders(folder: Path) -> list[Path]:
    return fmt.inside_all(folder, [p for p in fmt.visible(folder.iterdir())
                                   if p.is_dir() and _CASE.match(p.name)])


def list_cases(root: PathLike) -> list[Path]:
    """Case folders ``BraTS2021_XXXXX`` under ``root`` (the ``BraTS2021`` folder), sorted by name.
    When ``root`` holds none, its sub-folders are searched once (the official archives extract
    into e.g. ``RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021/``)."""
    root = fmt.require_folder(fmt.as_path(root), "the BraTS 2021 dataset folder")
    cases = _case_folders(root)
    if not cases:
        for sub in fmt.visible(root.iterdir()):
            if sub.is_dir():
                cases += _case_folders(sub)
    return sorted(cases, key=lambda p: (p.name, str(p)))


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the layout under ``root`` (the ``BraTS2021`` folder).

    Raises FileFormatError naming the first missing scan, or when no case folder is found. Cases
    with a ``_seg`` file count as ``training``, without as ``validation``. ``problems`` notes case
    names found twice. With ``deep=True`` every case is read (geometry, labels).
    """
    root = fmt.as_path(root)
    cases = list_cases(root)
    if not cases:
        raise FileFormatError(root, "holds no BraTS2021_XXXXX case folder (see "
                              "data_scripts/brats.py)")
    splits = {"training": 0, "validation": 0}
    problems = []
    names = [c.name for c in cases]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{dup} appears {names.count(dup)} times")
    for folder in cases:
        for key in MODALITIES:
            fmt.inside_dataset(folder.parent, fmt.require_file(
                folder / f"{folder.name}_{key}.nii.gz", f"the {key} scan of {folder.name}"))
        splits["training" if (folder / f"{folder.name}_seg.nii.gz").is_file() else "validation"] += 1
    if deep:
        for folder in fmt.deep_progress(cases, "reading BraTS 2021"):
            read_case(folder, require_seg=False)
    return fmt.DatasetReport("BraTS 2021", root, len(cases), {"split": splits}, tuple(problems), deep)
