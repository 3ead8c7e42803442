"""M&Ms (2020 Multi-Centre, Multi-Vendor & Multi-Disease Cardiac Segmentation challenge): write and
read its on-disk layout.

Layout (as published; ``root`` is the ``OpenDataset`` folder, or the ``MnM`` folder holding it)::

    OpenDataset/
        211230_M&Ms_Dataset_information_diagnosis_opendataset.csv
        Training/Labeled/<ID>/<ID>_sa.nii.gz       the cine, (X, Y, Z, T)
        Training/Labeled/<ID>/<ID>_sa_gt.nii.gz    4-D labels, non-zero at the ED and ES frames only
        Training/Unlabeled/<ID>/<ID>_sa.nii.gz     (no labels)
        Validation/<ID>/...   Testing/<ID>/...

The information CSV has one row per subject with (at least) the columns ``External code`` (the
<ID>), ``VendorName`` (e.g. Siemens), ``Vendor`` (letter A–D), ``Centre`` (number), ``ED`` and
``ES``; the published file also has ``Pathology``, ``Age``, ``Sex``, ``Height``, ``Weight``
(kept when present). **ED and ES are 0-based frame indices** in M&Ms (public loaders index the
4-D arrays with them directly), unlike ACDC's 1-based frame numbers.

**Labels: 1 LV cavity, 2 LV myocardium, 3 RV cavity** — LV and RV are swapped with respect to
ACDC (1 RV, 2 MYO, 3 LV). :func:`to_acdc_labels` converts, so chapters use one convention.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrlab.checks import check_choice, metadata_number
from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike
from cmrlab.data.volume import check_same_grid, read_volume
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "INFO_CSV",
    "LABELS",
    "SPLITS",
    "MnMsCase",
    "check_dataset",
    "from_acdc_labels",
    "list_cases",
    "read_case",
    "to_acdc_labels",
    "write_case",
]

#: Label values of the M&Ms ground truth (note: LV and RV are the reverse of ACDC).
LABELS: dict[int, str] = {0: "background", 1: "LV cavity", 2: "LV myocardium", 3: "RV cavity"}
#: M&Ms value → ACDC value (the map is its own inverse).
_TO_ACDC = np.array([0, 3, 2, 1], dtype=np.uint8)
#: Split folders under OpenDataset (Training/Unlabeled has no labels).
SPLITS = ("Training/Labeled", "Training/Unlabeled", "Validation", "Testing")
INFO_CSV = "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
REQUIRED_COLUMNS = ("External code", "VendorName", "Vendor", "Centre", "ED", "ES")
OPTIONAL_COLUMNS = ("Pathology", "Age", "Sex", "Height", "Weight")
_ID_RE = re.compile(r"^[A-Za-z0-9]+$")


def to_acdc_labels(labels: np.ndarray) -> np.ndarray:
    """M&Ms labels (1 LV, 2 MYO, 3 RV) → ACDC labels (1 RV, 2 MYO, 3 LV), as uint8."""
    values = np.asarray(labels)
    if values.dtype.kind not in "biu" or (values.size and (values.min() < 0 or values.max() > 3)):
        raise ArgumentError("labels must be integer M&Ms labels in {0, 1, 2, 3}")
    return _TO_ACDC[values.astype(np.intp)]


def from_acdc_labels(labels: np.ndarray) -> np.ndarray:
    """ACDC labels (1 RV, 2 MYO, 3 LV) → M&Ms labels (1 LV, 2 MYO, 3 RV): the same swap."""
    return to_acdc_labels(labels)


@dataclass(frozen=True, eq=False)
class MnMsCase:
    """One M&Ms subject as read from disk (arrays in NIfTI (X, Y, Z, T) order).

    ``image4d`` float32; ``labels4d`` uint8 **M&Ms values** (None in Training/Unlabeled);
    ``ed_index``/``es_index`` 0-based frames as in the CSV; ``ed_labels``/``es_labels`` the
    (X, Y, Z) labels there (M&Ms values; ``ed_labels_acdc``/``es_labels_acdc`` in the ACDC
    convention); ``info`` the subject's CSV row as strings.
    """

    id: str
    split: str
    folder: Path
    image4d: np.ndarray
    labels4d: np.ndarray | None
    spacing: np.ndarray
    affine: np.ndarray
    ed_index: int
    es_index: int
    vendor: str
    vendor_name: str
    centre: str
    pathology: str | None
    n_frames: int
    time_step: float
    info: Mapping[str, str]

    @property
    def ed_image(self) -> np.ndarray:
        return self.image4d[..., self.ed_index]

    @property
    def es_image(self) -> np.ndarray:
        return self.image4d[..., self.es_index]

    @property
    def ed_labels(self) -> np.ndarray | None:
        return None if self.labels4d is None else self.labels4d[..., self.ed_index]

    @property
    def es_labels(self) -> np.ndarray | None:
        return None if self.labels4d is None else self.labels4d[..., self.es_index]

    @property
    def ed_labels_acdc(self) -> np.ndarray | None:
        return None if self.labels4d is None else to_acdc_labels(self.ed_labels)

    @property
    def es_labels_acdc(self) -> np.ndarray | None:
        return None if self.labels4d is None else to_acdc_labels(self.es_labels)


# ----------------------------------------------------------------------------------------------
# Paths and the information CSV
# ----------------------------------------------------------------------------------------------
def _open_dataset(root: PathLike) -> Path:
    """The ``OpenDataset`` folder, given it or the folder that holds it."""
    root = fmt.as_path(root, "root")
    if root.name != "OpenDataset" and (root / "OpenDataset").is_dir():
        return root / "OpenDataset"
    fmt.require_folder(root, "M&Ms OpenDataset folder")
    if not (root / INFO_CSV).exists() and not any((root / s).is_dir() for s in SPLITS):
        raise FileFormatError(
            root,
            f"is not an M&Ms OpenDataset folder: it holds neither {INFO_CSV} nor Training/, "
            "Validation/ or Testing/",
        )
    return root


def _read_info(path: Path) -> dict[str, dict[str, str]]:
    """The information CSV as {External code: row}; checks columns, ED/ES, duplicates.

    ED and ES must be whole numbers >= 0 (:func:`cmrlab.checks.metadata_number`: empty values,
    ``nan``, ``inf`` and ``1e400`` are refused); they are stored back as ``"12"``.
    """
    if not path.exists():
        raise FileFormatError(path, "the M&Ms information CSV is missing (it gives ED, ES, vendor, centre)")
    rows: dict[str, dict[str, str]] = {}
    for number, row in fmt.read_csv(path, REQUIRED_COLUMNS):
        code = row["External code"]
        if not code:
            raise FileFormatError(path, f"line {number}: empty External code")
        if code in rows:
            raise FileFormatError(path, f"line {number}: External code {code} appears twice")
        for key in ("ED", "ES"):
            try:
                value = metadata_number(path, key, row[key], minimum=0)
            except FileFormatError:
                value = None
            if value is None or not float(value).is_integer():
                raise FileFormatError(
                    path, f"line {number} ({code[:40]}): {key} should be a 0-based frame index (a whole "
                    f"number >= 0), got {row[key][:40]!r}"
                )
            row[key] = str(int(value))
        rows[code] = row
    return rows


def _write_info(path: Path, rows: Mapping[str, Mapping[str, str]]) -> None:
    fmt.write_csv(path, [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], rows)


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------
def write_case(
    root: PathLike,
    case_id: str,
    image4d: np.ndarray,
    labels: Mapping[int, np.ndarray] | None,
    spacing: tuple[float, float, float],
    *,
    ed: int,
    es: int,
    vendor: str,
    vendor_name: str,
    centre: str | int,
    split: str = "Training/Labeled",
    pathology: str | None = None,
    affine: np.ndarray | None = None,
    time_step: float | None = None,
    label_convention: str = "acdc",
) -> Path:
    """Write one subject in the M&Ms layout under ``root`` (the ``OpenDataset`` folder) and add or
    replace its row in the information CSV. Returns the subject's folder.

    ``labels`` maps the **0-based** ED and ES frame indices to (X, Y, Z) label arrays, in the ACDC
    convention by default (``label_convention="acdc"``: 1 RV, 2 MYO, 3 LV; they are stored in M&Ms
    values) or already in M&Ms values (``"mnms"``). They go to a 4-D ``_sa_gt`` file that is zero at
    every other frame. ``labels=None`` only for ``Training/Unlabeled``, which has no ``_sa_gt``.
    ``vendor`` (letter), ``vendor_name`` and ``centre`` are the caller's choice. Writes are atomic;
    the CSV is rewritten whole, so write cases one after the other (not from parallel processes).
    """
    if not isinstance(case_id, str) or not _ID_RE.match(case_id):
        raise ArgumentError(f"case_id must be letters and digits (like 'A0S9V9'), got {case_id!r}")
    check_choice("split", split, SPLITS)
    check_choice("label_convention", label_convention, ("acdc", "mnms"))
    for name, value in (("vendor", vendor), ("vendor_name", vendor_name), ("centre", centre)):
        if not str(value).strip() or any(c in str(value) for c in "\n\r"):
            raise ArgumentError(f"{name} must be a non-empty one-line value, got {value!r}")
    time_step = fmt.as_time_step(time_step)
    image = fmt.as_image(image4d, "image4d", 4, keep_dtype=True)
    n_frames = image.shape[3]
    fmt.check_frames(ed, es, n_frames, one_based=False)
    _, matrix = fmt.geometry(spacing, affine)
    labels4d = None
    if labels is None:
        if split != "Training/Unlabeled":
            raise ArgumentError(f"labels are required for split {split!r} (only Training/Unlabeled has none)")
    else:
        if split == "Training/Unlabeled":
            raise ArgumentError("Training/Unlabeled subjects have no labels: pass labels=None")
        if not isinstance(labels, Mapping) or set(labels) != {ed, es}:
            raise ArgumentError(
                f"labels must be a dict with exactly the 0-based ED and ES frames {sorted({ed, es})} "
                f"as keys, got {sorted(labels) if isinstance(labels, Mapping) else type(labels).__name__}"
            )
        labels4d = np.zeros(image.shape, dtype=np.uint8)
        for frame in (ed, es):
            values = fmt.as_labels(labels[frame], f"labels[{frame}]", LABELS, image.shape[:3])
            labels4d[..., frame] = from_acdc_labels(values) if label_convention == "acdc" else values

    base = fmt.folder_to_write(root, "OpenDataset folder")
    csv_path = base / INFO_CSV
    rows = _read_info(csv_path) if csv_path.exists() else {}
    folder = base / split / case_id
    fmt.save_image(folder / f"{case_id}_sa.nii.gz", image, matrix, time_step)
    if labels4d is not None:
        fmt.save_image(folder / f"{case_id}_sa_gt.nii.gz", labels4d, matrix, time_step)
    rows[case_id] = {
        "External code": case_id,
        "VendorName": str(vendor_name).strip(),
        "Vendor": str(vendor).strip(),
        "Centre": str(centre).strip(),
        "ED": str(int(ed)),
        "ES": str(int(es)),
        "Pathology": "" if pathology is None else str(pathology),
    }
    _write_info(csv_path, rows)
    return folder


# ----------------------------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------------------------
def _split_of(folder: Path) -> tuple[Path, str]:
    """(OpenDataset folder, split) of a subject folder, from its position in the tree."""
    parent = folder.parent
    if parent.name in ("Labeled", "Unlabeled") and parent.parent.name == "Training":
        return parent.parent.parent, f"Training/{parent.name}"
    if parent.name in ("Validation", "Testing"):
        return parent.parent, parent.name
    raise FileFormatError(
        folder,
        "is not inside an M&Ms split folder (OpenDataset/Training/Labeled, Training/Unlabeled, "
        "Validation or Testing)",
    )


def read_case(folder: PathLike, info: Mapping[str, Mapping[str, str]] | None = None) -> MnMsCase:
    """Read and check one M&Ms subject folder (``OpenDataset/<split>/<ID>``) → :class:`MnMsCase`.

    ``info`` is the parsed CSV (read from the OpenDataset folder when None). Checks: the CSV has
    the subject with integer ED/ES inside 0..T-1; the cine is 4-D without NaN; the labels (except in
    Training/Unlabeled) lie on the cine's voxel grid (:func:`cmrlab.data.volume.check_same_grid`),
    values in {0, 1, 2, 3}, labels at ED and ES and nowhere else; no file is a link leading out of
    the OpenDataset folder. Any problem → FileFormatError naming the file.
    """
    folder = fmt.as_path(folder, "folder")
    fmt.require_folder(folder, "M&Ms subject folder")
    case_id = folder.name
    base, split = _split_of(folder)
    rows = _read_info(base / INFO_CSV) if info is None else info
    row = rows.get(case_id)
    if row is None:
        raise FileFormatError(base / INFO_CSV, f"has no row for External code {case_id}")
    image_path = folder / f"{case_id}_sa.nii.gz"
    fmt.require_file(image_path, "the cine image (<ID>_sa.nii.gz)")
    fmt.inside_dataset(base, image_path)
    cine = read_volume(image_path, 4)
    n_frames = cine.array.shape[3]
    ed, es = int(row["ED"]), int(row["ES"])
    for key, value in (("ED", ed), ("ES", es)):
        if value >= n_frames:
            raise FileFormatError(
                base / INFO_CSV,
                f"{case_id}: {key} = {value} but {image_path.name} has {n_frames} frames "
                "(M&Ms frames are 0-based: 0..T-1)",
            )
    labels4d = None
    gt_path = folder / f"{case_id}_sa_gt.nii.gz"
    if split != "Training/Unlabeled" or gt_path.exists():
        fmt.require_file(gt_path, "the label file (<ID>_sa_gt.nii.gz)")
        fmt.inside_dataset(base, gt_path)
        gt = read_volume(gt_path, 4)
        check_same_grid(cine, gt, spatial_only=True)
        if gt.array.shape[3] != n_frames:
            raise FileFormatError(gt_path, f"has {gt.array.shape[3]} frames, the cine {n_frames}")
        labels4d = gt.labels(LABELS, "M&Ms")
        labelled = np.flatnonzero(labels4d.reshape(-1, n_frames).any(axis=0)).tolist()
        for key, value in (("ED", ed), ("ES", es)):
            if value not in labelled:
                raise FileFormatError(
                    gt_path,
                    f"frame {value} ({key} in the CSV, 0-based) holds no labels; labelled frames "
                    f"are {labelled}",
                )
        stray = sorted(set(labelled) - {ed, es})
        if stray:
            raise FileFormatError(
                gt_path, f"frames {stray} hold labels but M&Ms labels only ED={ed} and ES={es}"
            )
    return MnMsCase(
        id=case_id,
        split=split,
        folder=folder,
        image4d=cine.image(),
        labels4d=labels4d,
        spacing=np.asarray(cine.spacing, dtype=float),
        affine=cine.affine,
        ed_index=ed,
        es_index=es,
        vendor=row["Vendor"],
        vendor_name=row["VendorName"],
        centre=row["Centre"],
        pathology=row.get("Pathology") or None,
        n_frames=n_frames,
        time_step=float(cine.time_step),
        info=dict(row),
    )


def list_cases(root: PathLike) -> list[Path]:
    """Subject folders under ``root`` (OpenDataset or the folder holding it), by split then ID."""
    base = _open_dataset(root)
    return fmt.inside_all(base, [
        folder for split in SPLITS if (base / split).is_dir()
        for folder in fmt.visible_dirs(base / split)
    ])


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the M&Ms layout under ``root``; count subjects per split, vendor, centre, pathology.

    The quick check reads the CSV and checks each subject has a row and its files; ``deep=True``
    reads every subject with :func:`read_case`. Raises FileFormatError naming the first bad file.
    """
    base = _open_dataset(root)
    rows = _read_info(base / INFO_CSV)
    cases = list_cases(base)
    if not cases:
        raise FileFormatError(base, f"holds no subject folders under {', '.join(SPLITS)}")
    problems = [f"{base / s}: split folder missing" for s in SPLITS if not (base / s).is_dir()]
    seen = {c.name for c in cases}
    missing_rows = sorted(set(rows) - seen)
    if missing_rows:
        problems.append(f"{len(missing_rows)} CSV row(s) without a subject folder, e.g. {missing_rows[0]}")
    splits, vendors, centres, groups = [], [], [], []
    for folder in fmt.deep_progress(cases, "M&Ms check") if deep else cases:
        if deep:
            case = read_case(folder, rows)
            split, row = case.split, case.info
        else:
            _, split = _split_of(folder)
            if folder.name not in rows:
                raise FileFormatError(base / INFO_CSV, f"has no row for External code {folder.name}")
            row = rows[folder.name]
            image = fmt.require_file(folder / f"{folder.name}_sa.nii.gz", "the cine image (<ID>_sa.nii.gz)")
            fmt.inside_dataset(base, image)
            if split != "Training/Unlabeled":
                gt = fmt.require_file(folder / f"{folder.name}_sa_gt.nii.gz", "the label file (<ID>_sa_gt.nii.gz)")
                fmt.inside_dataset(base, gt)
        splits.append(split)
        vendors.append(row["Vendor"])
        centres.append(row["Centre"])
        groups.append(row.get("Pathology") or None)
    return fmt.DatasetReport(
        dataset="M&Ms",
        root=base,
        n_cases=len(cases),
        counts={
            "split": fmt.count(splits),
            "vendor": fmt.count(vendors),
            "centre": fmt.count(centres),
            "group": fmt.count(groups),
        },
        problems=tuple(problems),
        deep=deep,
    )
