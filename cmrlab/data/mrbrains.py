"""MRBrainS18 (brain MRI of older adults, 3 T): read and write its NIfTI layout.

Layout (as published; the data root folder is ``MRBrainS18/``)::

    MRBrainS18/training/<id>/pre/FLAIR.nii.gz     T2-FLAIR                      (labelled grid)
                             pre/reg_IR.nii.gz    T1-IR registered to the FLAIR (labelled grid)
                             pre/reg_T1.nii.gz    3-D T1 registered to the FLAIR (labelled grid)
                             pre/T1.nii.gz        3-D T1 in its own geometry (optional here)
                             pre/IR.nii.gz        T1-IR before registration   (optional here)
                             segm.nii.gz          manual labels on the FLAIR grid

The seven training subjects have ids 1, 4, 5, 7, 14, 070 and 148; the labelled grid is
240×240×48 voxels of 0.958×0.958×3.0 mm. ``pre/`` holds the bias-corrected scans.

Labels of ``segm.nii.gz`` (challenge web site, mrbrains18.isi.uu.nl/data): 0 background,
1 cortical grey matter, 2 basal ganglia, 3 white matter, 4 white-matter lesions, 5 CSF in the
extracerebral space, 6 ventricles, 7 cerebellum, 8 brain stem, 9 infarction, 10 other. The
challenge evaluates labels 1–8 only; voxels labelled 9 or 10 "have no effect on the scores".

Two documented merges:

* :func:`to_tissue_labels` → the course's 4 classes 0 background / 1 CSF / 2 GM / 3 WM:
  GM = {1, 2}, WM = {3, 4}, CSF = {5, 6} — the merge the challenge organisers prescribe for
  GM/WM/CSF work (MRBrainS13 data page: "merge labels 1 and 2, 3 and 4, and 5 and 6") and that
  MedicalZooPytorch's ``mrbrains4`` uses. Cerebellum (7) and brain stem (8) → background, as
  MRBrainS13's ``LabelsForTesting`` does ("brainstem and cerebellum are excluded from the
  evaluation and therefore labeled as background"); MedicalZooPytorch leaves 7–10 unmapped (its
  ``> 6 → 0`` line is commented out), which would put values ≥ 4 into a 4-class target.
  Infarction (9) and other lesions (10) → ``excluded`` (default 0, background); pass e.g.
  ``excluded=255`` to mark them for a loss's ``ignore_index``, which matches the challenge's rule
  that these voxels do not count.
* :func:`to_nine_classes` → MedicalZooPytorch's ``mrbrains9`` classes (background, cortical GM,
  basal ganglia, WM, WM lesions, CSF, ventricles, cerebellum, brain stem): labels 0–8 unchanged,
  9 and 10 → ``excluded`` (default 0).

The synthetic writer :func:`write_subject` takes tissue classes and stores CSF as 5
(extracerebral CSF), GM as 1 (cortical GM) and WM as 3 (white matter); the caller may add finer
structures (ventricles 6, basal ganglia 2, lesions 4, ...) as masks.

The verbs shared by every format module: :data:`LABELS`, :func:`write_subject`,
:func:`read_subject`, :func:`list_cases`, :func:`check_dataset`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike, save_nifti
from cmrlab.data.volume import check_same_grid, read_volume
from cmrlab.checks import check_int
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "ALIGNED_MODALITIES",
    "LABELS",
    "MODALITIES",
    "NINE_CLASSES",
    "MRBrainSSubject",
    "check_dataset",
    "list_cases",
    "read_subject",
    "to_nine_classes",
    "to_tissue_labels",
    "write_subject",
]

#: Label values of ``segm.nii.gz`` and what they mean (challenge data page).
LABELS: dict[int, str] = {
    0: "background",
    1: "cortical gray matter",
    2: "basal ganglia",
    3: "white matter",
    4: "white matter lesions",
    5: "cerebrospinal fluid in the extracerebral space",
    6: "ventricles",
    7: "cerebellum",
    8: "brain stem",
    9: "infarction",
    10: "other",
}
#: The scans on the labelled grid (required): FLAIR, registered T1-IR, registered T1.
ALIGNED_MODALITIES: tuple[str, ...] = ("FLAIR", "reg_IR", "reg_T1")
#: Every scan name the writer produces in ``pre/`` (T1 in its own geometry as well).
MODALITIES: tuple[str, ...] = ("FLAIR", "reg_IR", "reg_T1", "T1")
#: Class names of :func:`to_nine_classes` (MedicalZooPytorch ``mrbrains9``).
NINE_CLASSES: dict[int, str] = {k: LABELS[k] for k in range(9)}
#: Default voxel size of the labelled grid, mm.
SPACING = (0.958, 0.958, 3.0)

#: Segmentation value → tissue class (0 bg, 1 CSF, 2 GM, 3 WM); 9 and 10 are handled apart.
_TISSUE_OF = {0: 0, 1: 2, 2: 2, 3: 3, 4: 3, 5: 1, 6: 1, 7: 0, 8: 0}
#: Tissue class → segmentation value written by the synthetic writer.
_SEGM_OF_TISSUE = {0: 0, 1: 5, 2: 1, 3: 3}
_EXCLUDED = (9, 10)


def _excluded_value(excluded: int) -> int:
    value = check_int("excluded", excluded, 0)
    if value > 255:
        raise ArgumentError(f"excluded must be a label value 0..255 (uint8), got {value}")
    return value


def to_tissue_labels(segm: np.ndarray, *, excluded: int = 0) -> np.ndarray:
    """Merge MRBrainS18 labels into tissue classes 0 background / 1 CSF / 2 GM / 3 WM (uint8).

    1, 2 → 2 GM; 3, 4 → 3 WM; 5, 6 → 1 CSF; 7, 8 → 0 background; 9, 10 → ``excluded``
    (0..255; 0 = background, or e.g. 255 for a loss's ``ignore_index``). Why: module docstring.
    """
    value = _excluded_value(excluded)
    return fmt.relabel(segm, "segm", {**_TISSUE_OF, **{k: value for k in _EXCLUDED}}, "MRBrainS18")


def to_nine_classes(segm: np.ndarray, *, excluded: int = 0) -> np.ndarray:
    """MedicalZooPytorch's 9 classes: labels 0–8 unchanged, 9 and 10 → ``excluded`` (uint8)."""
    value = _excluded_value(excluded)
    return fmt.relabel(segm, "segm", {**{k: k for k in range(9)}, **{k: value for k in _EXCLUDED}},
                       "MRBrainS18")


@dataclass(frozen=True)
class MRBrainSSubject:
    """One MRBrainS18 subject as read from disk.

    ``images``: float32 (X, Y, Z) arrays keyed ``"FLAIR"``, ``"reg_IR"``, ``"reg_T1"``, all on the
    grid of ``segm`` (uint8, values 0..10); :attr:`tissue_labels` merges them to 4 classes.
    ``files`` also lists ``pre/T1.nii.gz`` and ``pre/IR.nii.gz`` when present (not loaded: they
    lie in their own geometry).
    """

    id: str
    images: dict[str, np.ndarray]
    segm: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def tissue_labels(self) -> np.ndarray:
        """:func:`to_tissue_labels` of ``segm`` (9 and 10 → background)."""
        return to_tissue_labels(self.segm)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write_subject(
    root: PathLike,
    subject_id: str | int,
    images: Mapping[str, np.ndarray],
    tissue_labels: np.ndarray,
    *,
    spacing: Iterable[float] = SPACING,
    affine: np.ndarray | None = None,
    structures: Mapping[int, np.ndarray] | None = None,
) -> Path:
    """Write one subject to ``root/training/<subject_id>/`` (``root`` = the ``MRBrainS18`` folder).

    ``images``: (X, Y, Z) arrays keyed ``"FLAIR"``, ``"reg_IR"``, ``"reg_T1"`` (required) and
    optionally ``"T1"``; without ``"T1"`` the registered T1 is written as ``pre/T1.nii.gz`` too
    (for synthetic data the native and the registered grid are the same). ``tissue_labels``:
    0 background / 1 CSF / 2 GM / 3 WM, stored in ``segm.nii.gz`` as 0 / 5 / 1 / 3.
    ``structures``: optional ``{label value: boolean mask}`` painted on top in increasing label
    order (e.g. ``{6: ventricles, 2: basal_ganglia}``; values 1..10). ``affine`` defaults to
    ``diag(spacing)``. Images are stored as float32, ``segm`` as uint8. Returns the subject folder.
    """
    name = fmt.check_case_id(subject_id, "subject_id")
    matrix = fmt.geometry(spacing, affine)[1]
    if not isinstance(images, Mapping):
        raise ArgumentError(f"images must be a mapping name → array, got {type(images).__name__}")
    unknown = set(images) - set(MODALITIES)
    missing = set(ALIGNED_MODALITIES) - set(images)
    if unknown or missing:
        raise ArgumentError(f"images: needs {list(ALIGNED_MODALITIES)} (and optionally 'T1'); "
                            f"missing {sorted(missing)}, unknown {sorted(unknown)}")
    arrays = {key: fmt.as_image(images[key], f"images[{key!r}]") for key in MODALITIES
              if key in images}
    shape = arrays["FLAIR"].shape
    for key, array in arrays.items():
        if array.shape != shape:
            raise ArgumentError(f"images[{key!r}] has shape {array.shape}, FLAIR has {shape}")
    arrays.setdefault("T1", arrays["reg_T1"])
    tissue = fmt.as_labels(tissue_labels, "tissue_labels", fmt.TISSUE_LABELS, shape)
    segm = np.array([_SEGM_OF_TISSUE[t] for t in range(4)], dtype=np.uint8)[tissue]
    for value in sorted(structures or {}):
        if not isinstance(value, (int, np.integer)) or not 1 <= value <= 10:
            raise ArgumentError(f"structures: keys must be MRBrainS18 labels 1..10, got {value!r}")
        mask = np.asarray(structures[value])  # type: ignore[index]
        if mask.dtype != bool or mask.shape != shape:
            raise ArgumentError(f"structures[{value}] must be a boolean mask of shape {shape}, "
                                f"got {mask.dtype} {mask.shape}")
        segm[mask] = value
    folder = fmt.as_path(root) / "training" / name
    for key in MODALITIES:
        save_nifti(arrays[key], folder / "pre" / f"{key}.nii.gz", matrix)
    save_nifti(segm, folder / "segm.nii.gz", matrix)
    return folder


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def read_subject(path: PathLike) -> MRBrainSSubject:
    """Read one subject folder ``.../training/<id>/``.

    Checks: ``segm.nii.gz`` and ``pre/{FLAIR,reg_IR,reg_T1}.nii.gz`` present and 3-D, the three
    scans on the grid of ``segm`` (same shape, affine within 1e-3 mm), label values 0..10, no NaN.
    Raises FileFormatError naming the file at fault.
    """
    folder = fmt.require_folder(fmt.as_path(path, "path"), "an MRBrainS18 subject folder (training/<id>)")
    segm_file = fmt.require_file(folder / "segm.nii.gz", "the label map of an MRBrainS18 subject")
    root = folder.parent if folder.parent.name == "training" else folder
    fmt.inside_dataset(root, segm_file)
    segm_volume = read_volume(segm_file)
    images = {}
    files = {"segm": segm_file}
    for key in ALIGNED_MODALITIES:
        file = fmt.require_file(folder / "pre" / f"{key}.nii.gz",
                                f"the {key} scan of MRBrainS18 subject {folder.name}")
        volume = read_volume(fmt.inside_dataset(root, file))
        check_same_grid(segm_volume, volume)
        images[key] = volume.image()
        files[key] = file
    for key in ("T1", "IR"):
        if (folder / "pre" / f"{key}.nii.gz").is_file():
            files[key] = folder / "pre" / f"{key}.nii.gz"
    return MRBrainSSubject(
        id=folder.name,
        images=images,
        segm=segm_volume.labels(LABELS, "MRBrainS18"),
        spacing=segm_volume.spacing,
        affine=segm_volume.affine,
        files=files,
    )


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------
def _training_folder(root: Path) -> Path:
    fmt.require_folder(root, "the MRBrainS18 dataset folder")
    if root.name == "training":
        return root
    training = root / "training"
    if not training.is_dir():
        raise FileFormatError(training, "folder not found: MRBrainS18 keeps its subjects in "
                              "training/<id>/ (see data_scripts/mrbrains18.py)")
    return training


def list_cases(root: PathLike) -> list[Path]:
    """Subject folders under ``root`` (the ``MRBrainS18`` folder or its ``training``), sorted by
    id (numerically where the ids are numbers: 1, 4, 5, 7, 14, 070, 148)."""
    training = _training_folder(fmt.as_path(root))
    folders = fmt.inside_all(training, [p for p in fmt.visible(training.iterdir()) if p.is_dir()])
    return sorted(folders, key=lambda p: (0, int(p.name), p.name) if p.name.isdigit()
                  else (1, 0, p.name))


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the layout under ``root`` (the ``MRBrainS18`` folder or its ``training``).

    Raises FileFormatError naming the first missing file (``segm.nii.gz`` or one of
    ``pre/{FLAIR,reg_IR,reg_T1}.nii.gz``) or when no subject is found. ``problems`` notes subjects
    without ``pre/T1.nii.gz``. With ``deep=True`` every subject is read (geometry, labels).
    """
    root = fmt.as_path(root)
    cases = list_cases(root)
    if not cases:
        raise FileFormatError(_training_folder(root), "holds no subject folder")
    problems = []
    for folder in cases:
        fmt.inside_dataset(folder.parent, fmt.require_file(
            folder / "segm.nii.gz", f"the label map of MRBrainS18 subject {folder.name}"))
        for key in ALIGNED_MODALITIES:
            fmt.inside_dataset(folder.parent, fmt.require_file(
                folder / "pre" / f"{key}.nii.gz", f"the {key} scan of MRBrainS18 subject {folder.name}"))
        if not (folder / "pre" / "T1.nii.gz").is_file():
            problems.append(f"{folder.name}: pre/T1.nii.gz (native-space T1) is missing")
    if deep:
        for folder in fmt.deep_progress(cases, "reading MRBrainS18"):
            read_subject(folder)
    return fmt.DatasetReport("MRBrainS18", root, len(cases), {"split": {"training": len(cases)}},
                             tuple(problems), deep)
