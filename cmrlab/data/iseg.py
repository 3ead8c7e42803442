"""iSeg-2017 (6-month infant brain MRI): read and write its Analyze 7.5 layout.

Layout (as published; the data root folder is ``iSeg-2017/``)::

    iSeg-2017/
      iSeg-2017-Training/subject-1-T1.hdr, subject-1-T1.img, subject-1-T2.{hdr,img},
                         subject-1-label.{hdr,img}, ... subject-10-...
      iSeg-2017-Testing/subject-11-T1.{hdr,img}, subject-11-T2.{hdr,img}, ...   (no labels)

Each file is an Analyze 7.5 pair (a 348-byte ``.hdr`` header plus raw ``.img`` voxels) holding a
144×192×256 volume stored as X×Y×Z×1, 1 mm voxels; T1 and T2 are 16-bit integers and the label
map 8-bit (public loaders read the 4-D shape and squeeze the last axis; the 2-byte / 1-byte voxel
sizes follow from the file sizes). Analyze has no orientation field that nibabel or SimpleITK
use: they assume +x towards the patient's left and nibabel centres the volume on the origin, so
the affine :func:`read_subject` returns only carries the voxel size. The label map codes tissue
as **0 background, 10 CSF, 150 GM, 250 WM** (MedicalZooPytorch ``medical_loader_utils.fix_seg_map``
maps them to 0/1/2/3 in that order), which :func:`to_tissue_labels` turns into the course's
tissue classes 0 background / 1 CSF / 2 GM / 3 WM.

The verbs shared by every format module: :data:`LABELS`, :func:`write_subject`,
:func:`read_subject`, :func:`list_cases`, :func:`check_dataset`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike
from cmrlab.data.volume import Volume, check_same_grid, read_volume, write_analyze
from cmrlab.checks import check_int, check_spacing
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "LABELS",
    "MODALITIES",
    "SPLIT_FOLDERS",
    "ISegSubject",
    "check_dataset",
    "from_tissue_labels",
    "list_cases",
    "read_subject",
    "to_tissue_labels",
    "write_subject",
]

#: Label values of the iSeg-2017 label maps and what they mean.
LABELS: dict[int, str] = {0: "background", 10: "CSF", 150: "GM", 250: "WM"}
#: The two modalities of every subject, in file-name spelling.
MODALITIES: tuple[str, ...] = ("T1", "T2")
#: Split name → folder name.
SPLIT_FOLDERS: dict[str, str] = {"training": "iSeg-2017-Training", "testing": "iSeg-2017-Testing"}

_TO_TISSUE = {0: 0, 10: 1, 150: 2, 250: 3}
_CASE_FILE = re.compile(r"^subject-(\d+)-(T1|T2|label)\.(hdr|img)$")
_CASE_NAME = re.compile(r"^subject-(\d+)(?:-(?:T1|T2|label)\.(?:hdr|img))?$")
_INT16 = np.iinfo(np.int16)


def to_tissue_labels(labels: np.ndarray) -> np.ndarray:
    """Map iSeg label values to tissue classes: 0 → 0 background, 10 → 1 CSF, 150 → 2 GM,
    250 → 3 WM (uint8). Any other value is an ArgumentError naming it."""
    return fmt.relabel(labels, "labels", _TO_TISSUE, "iSeg-2017")


def from_tissue_labels(tissue: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_tissue_labels`: 0/1/2/3 → 0/10/150/250 (uint8)."""
    arr = fmt.as_labels(tissue, "tissue", fmt.TISSUE_LABELS)
    return np.array([0, 10, 150, 250], dtype=np.uint8)[arr]


@dataclass(frozen=True)
class ISegSubject:
    """One iSeg-2017 subject as read from disk.

    ``t1``, ``t2``: float32 (X, Y, Z); ``labels``: uint8 with the file's values 0/10/150/250, or
    ``None`` for a testing subject; :attr:`tissue_labels` gives 0/1/2/3. ``spacing`` in mm,
    ``affine`` voxel → world as nibabel reports it for Analyze (see the module docstring).
    """

    id: str
    number: int
    split: str
    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def tissue_labels(self) -> np.ndarray | None:
        """Labels as tissue classes 0 background / 1 CSF / 2 GM / 3 WM (None without labels)."""
        return None if self.labels is None else to_tissue_labels(self.labels)

    @property
    def images(self) -> dict[str, np.ndarray]:
        """``{"T1": t1, "T2": t2}``."""
        return {"T1": self.t1, "T2": self.t2}


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def _as_int16(image: np.ndarray, argument: str) -> np.ndarray:
    """Round to 16-bit integers, as iSeg stores T1/T2, refusing a lossy conversion."""
    lo, hi = float(image.min()), float(image.max())
    if lo < _INT16.min or hi > _INT16.max:
        raise ArgumentError(f"{argument}: values {lo:g}..{hi:g} do not fit the 16-bit integers "
                            "iSeg-2017 stores; rescale them")
    if hi - lo < 50:
        raise ArgumentError(
            f"{argument}: iSeg-2017 stores 16-bit integers and the values span only {lo:g}..{hi:g}, "
            "so rounding would lose more than 1 % of the range; scale them up first (e.g. ×1000)"
        )
    return np.rint(image).astype(np.int16)


def write_subject(
    root: PathLike,
    subject: int,
    t1: np.ndarray,
    t2: np.ndarray,
    tissue_labels: np.ndarray | None = None,
    *,
    spacing: Iterable[float] = (1.0, 1.0, 1.0),
    split: str = "training",
) -> Path:
    """Write one subject in the published layout under ``root`` (the ``iSeg-2017`` folder).

    ``t1``, ``t2``: (X, Y, Z) arrays, rounded to 16-bit integers (their range must span at least
    50 so that rounding stays below 1 % of it). ``tissue_labels``: (X, Y, Z) tissue classes
    0 background / 1 CSF / 2 GM / 3 WM, stored as 0/10/150/250 in ``subject-N-label``; required
    for ``split="training"``, absent for ``"testing"`` (as in the real data). Every file is stored
    X×Y×Z×1 like the originals. Returns the subject's path prefix, as :func:`list_cases` gives it.
    """
    number = check_int("subject", subject, 1)
    if split not in SPLIT_FOLDERS:
        raise ArgumentError(f"split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}")
    spacing = check_spacing("spacing", spacing, 3)
    t1_arr = fmt.as_image(t1, "t1")
    t2_arr = fmt.as_image(t2, "t2")
    if t2_arr.shape != t1_arr.shape:
        raise ArgumentError(f"t2 has shape {t2_arr.shape}, t1 has {t1_arr.shape}")
    if split == "training" and tissue_labels is None:
        raise ArgumentError("tissue_labels: a training subject needs its label map")
    if split == "testing" and tissue_labels is not None:
        raise ArgumentError("tissue_labels: testing subjects have no label map in iSeg-2017; "
                            "leave it None or use split='training'")
    arrays = {"T1": _as_int16(t1_arr, "t1"), "T2": _as_int16(t2_arr, "t2")}
    if tissue_labels is not None:
        tissue = fmt.as_labels(tissue_labels, "tissue_labels", fmt.TISSUE_LABELS, t1_arr.shape)
        arrays["label"] = from_tissue_labels(tissue)
    folder = fmt.as_path(root) / SPLIT_FOLDERS[split]
    for kind, array in arrays.items():
        write_analyze(folder / f"subject-{number}-{kind}.hdr", array[..., np.newaxis], spacing)
    return folder / f"subject-{number}"


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def _split_of(folder: Path) -> str:
    for split, name in SPLIT_FOLDERS.items():
        if folder.name == name:
            return split
    return "unknown"


def _case_prefix(path: PathLike) -> tuple[Path, int]:
    path = fmt.as_path(path, "path")
    match = _CASE_NAME.match(path.name)
    if not match:
        raise ArgumentError(
            f"path must name an iSeg subject, e.g. .../iSeg-2017-Training/subject-1 or one of its "
            f"files (subject-1-T1.hdr), got {path}"
        )
    number = int(match.group(1))
    return path.parent / f"subject-{number}", number


def read_subject(path: PathLike) -> ISegSubject:
    """Read one subject: ``path`` is its prefix ``.../iSeg-2017-Training/subject-1`` (what
    :func:`list_cases` returns) or any of its files.

    Checks: T1 and T2 (and, in the training folder, the label map) present as complete Analyze
    pairs; every file 3-D (X×Y×Z or X×Y×Z×1); same shape and affine (1e-3 mm) as T1; label values
    in {0, 10, 150, 250}; no NaN. Raises FileFormatError naming the file at fault.
    """
    prefix, number = _case_prefix(path)
    folder = prefix.parent
    fmt.require_folder(folder, "the folder of the iSeg subject")
    split = _split_of(folder)
    files = {m: folder / f"subject-{number}-{m}.hdr" for m in MODALITIES}
    label_file = folder / f"subject-{number}-label.hdr"
    if split == "training" or label_file.exists() or label_file.with_suffix(".img").exists():
        files["label"] = label_file
    for kind, file in files.items():  # every file present before any is read
        if not file.exists() and not file.with_suffix(".img").exists():
            what = "label map" if kind == "label" else f"{kind} image"
            raise FileFormatError(file, f"is missing: the {what} of iSeg subject {number} "
                                        f"(expected subject-{number}-{kind}.hdr and .img)")
    root = folder.parent if split != "unknown" else folder
    for file in files.values():
        fmt.inside_all(root, [file, file.with_suffix(".img")])
    volumes: dict[str, Volume] = {kind: read_volume(file) for kind, file in files.items()}
    reference = volumes["T1"]
    for kind, volume in volumes.items():
        if kind != "T1":
            check_same_grid(reference, volume)
    labels = volumes["label"].labels(LABELS, "iSeg-2017") if "label" in volumes else None
    return ISegSubject(
        id=f"subject-{number}",
        number=number,
        split=split,
        t1=volumes["T1"].image(),
        t2=volumes["T2"].image(),
        labels=labels,
        spacing=reference.spacing,
        affine=reference.affine,
        files=files,
    )


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------
def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders under ``root`` (or ``root`` itself when it is one)."""
    fmt.require_folder(root, "the iSeg-2017 dataset folder")
    if _split_of(root) != "unknown":
        return {_split_of(root): root}
    found = {split: fmt.inside_dataset(root, root / name) for split, name in SPLIT_FOLDERS.items()
             if (root / name).is_dir()}
    if not found:
        raise FileFormatError(
            root, f"holds neither {SPLIT_FOLDERS['training']}/ nor {SPLIT_FOLDERS['testing']}/: "
            "put the extracted iSeg-2017 folders here (see data_scripts/iseg.py)"
        )
    return found


def _files_by_subject(folder: Path) -> dict[int, set[str]]:
    subjects: dict[int, set[str]] = {}
    for file in fmt.visible(folder.iterdir()):
        match = _CASE_FILE.match(file.name)
        if match:
            subjects.setdefault(int(match.group(1)), set()).add(file.name)
    return subjects


def list_cases(root: PathLike) -> list[Path]:
    """Path prefixes (``.../subject-N``) of the subjects under ``root`` (the ``iSeg-2017`` folder
    or one split folder), training first, by subject number. A subject counts when its T1
    header is there."""
    cases = []
    for folder in _split_folders(fmt.as_path(root)).values():
        subjects = _files_by_subject(folder)
        cases += [folder / f"subject-{n}" for n in sorted(subjects)
                  if f"subject-{n}-T1.hdr" in subjects[n]]
    return cases


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the layout under ``root`` (the ``iSeg-2017`` folder or one split folder).

    Raises FileFormatError naming the first missing file (each subject needs T1 and T2, and in
    training the label map, each as ``.hdr`` + ``.img``), or when no subject is found. With
    ``deep=True`` every subject is read with :func:`read_subject` (geometry and label values).
    """
    root = fmt.as_path(root)
    splits: dict[str, int] = {}
    problems: list[str] = []
    prefixes: list[Path] = []
    for split, folder in _split_folders(root).items():
        subjects = _files_by_subject(folder)
        kinds = list(MODALITIES) + (["label"] if split == "training" else [])
        for number in sorted(subjects):
            for kind in kinds:
                for ext in ("hdr", "img"):
                    name = f"subject-{number}-{kind}.{ext}"
                    if name not in subjects[number]:
                        raise FileFormatError(folder / name, f"is missing: subject {number} of "
                                              f"the {split} split needs its {kind} .hdr and .img")
                    fmt.inside_dataset(folder, folder / name)
            prefixes.append(folder / f"subject-{number}")
        splits[split] = len(subjects)
        if not subjects:
            problems.append(f"{folder.name}/ holds no subject")
    n_cases = sum(splits.values())
    if n_cases == 0:
        raise FileFormatError(root, "holds no iSeg subject (files subject-N-T1.hdr, ...)")
    if deep:
        for prefix in fmt.deep_progress(prefixes, "reading iSeg-2017"):
            read_subject(prefix)
    return fmt.DatasetReport("iSeg-2017", root, n_cases, {"split": splits}, tuple(problems), deep)
