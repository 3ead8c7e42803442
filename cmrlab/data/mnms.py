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

import csv
import io as _io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike
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
    """The information CSV as {External code: row}; checks columns, ED/ES integers, duplicates."""
    if not path.exists():
        raise FileFormatError(path, "the M&Ms information CSV is missing (it gives ED, ES, vendor, centre)")
    text = fmt.read_text(path)
    reader = csv.DictReader(_io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FileFormatError(path, f"column(s) {', '.join(missing)} missing; found {columns}")
    rows: dict[str, dict[str, str]] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        code = row["External code"]
        if not code:
            raise FileFormatError(path, f"line {number}: empty External code")
        if code in rows:
            raise FileFormatError(path, f"line {number}: External code {code} appears twice")
        for key in ("ED", "ES"):
            try:
                value = float(row[key])
                if value != int(value) or value < 0:
                    raise ValueError
            except ValueError:
                raise FileFormatError(
                    path, f"line {number} ({code}): {key} should be a 0-based frame index, got {row[key]!r}"
                ) from None
            row[key] = str(int(value))
        rows[code] = row
    return rows


def _write_info(path: Path, rows: Mapping[str, Mapping[str, str]]) -> None:
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for code in sorted(rows):
        writer.writerow({k: rows[code].get(k, "") for k in writer.fieldnames})
    fmt.write_text(path, buffer.getvalue())


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
    if split not in SPLITS:
        raise ArgumentError(f"split must be one of {SPLITS}, got {split!r}")
    if label_convention not in ("acdc", "mnms"):
        raise ArgumentError(f"label_convention must be 'acdc' or 'mnms', got {label_convention!r}")
    for name, value in (("vendor", vendor), ("vendor_name", vendor_name), ("centre", centre)):
        if not str(value).strip() or any(c in str(value) for c in "\n\r"):
            raise ArgumentError(f"{name} must be a non-empty one-line value, got {value!r}")
    if time_step is not None and not (np.isfinite(time_step) and time_step > 0):
        raise ArgumentError(f"time_step must be a positive number of ms, got {time_step!r}")
    image = fmt.as_image(image4d, 4, "image4d")
    n_frames = image.shape[3]
    for name, value in (("ed", ed), ("es", es)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n_frames:
            raise ArgumentError(
                f"{name} must be a 0-based frame index in 0..{n_frames - 1}, got {value!r}"
            )
    if ed == es:
        raise ArgumentError(f"ed and es must be different frames, both are {ed}")
    spacing_mm = fmt.as_spacing(spacing)
    matrix = fmt.as_affine(affine, spacing_mm)
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
            values = fmt.as_labels(labels[frame], image.shape[:3], LABELS, f"labels[{frame}]")
            labels4d[..., frame] = from_acdc_labels(values) if label_convention == "acdc" else values

    base = fmt.as_path(root, "root")
    if base.exists() and not base.is_dir():
        raise FileFormatError(base, "is a file; give the OpenDataset folder to write into")
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
    Training/Unlabeled) have the cine's shape and affine (1e-3 mm), values in {0, 1, 2, 3}, labels
    at ED and ES and nowhere else. Any problem → FileFormatError naming the file.
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
    cine = fmt.read_volume(image_path, 4, "cine")
    n_frames = cine.data.shape[3]
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
        gt = fmt.read_volume(gt_path, 4, "labels")
        fmt.check_same_grid(cine, gt, "labels")
        if gt.data.shape[3] != n_frames:
            raise FileFormatError(gt_path, f"has {gt.data.shape[3]} frames, the cine {n_frames}")
        labels4d = fmt.check_label_values(gt, LABELS, "labels")
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
        image4d=cine.data.astype(np.float32),
        labels4d=labels4d,
        spacing=np.asarray(cine.zooms[:3], dtype=float),
        affine=cine.affine,
        ed_index=ed,
        es_index=es,
        vendor=row["Vendor"],
        vendor_name=row["VendorName"],
        centre=row["Centre"],
        pathology=row.get("Pathology") or None,
        n_frames=n_frames,
        time_step=float(cine.zooms[3]),
        info=dict(row),
    )


def list_cases(root: PathLike) -> list[Path]:
    """Subject folders under ``root`` (OpenDataset or the folder holding it), by split then ID."""
    base = _open_dataset(root)
    return [
        folder for split in SPLITS if (base / split).is_dir()
        for folder in fmt.visible_dirs(base / split)
    ]


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the M&Ms layout under ``root``; count subjects per split, vendor, centre, pathology.

    The quick check reads the CSV and checks each subject has a row and its files; ``deep=True``
    reads every subject with :func:`read_case`. Raises FileFormatError naming the first bad file.
    """
    from cmrlab.viz.progress import progress

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
    iterator = progress(cases, desc="M&Ms check", leave=False) if deep else cases
    for folder in iterator:
        if deep:
            case = read_case(folder, rows)
            split, row = case.split, case.info
        else:
            _, split = _split_of(folder)
            if folder.name not in rows:
                raise FileFormatError(base / INFO_CSV, f"has no row for External code {folder.name}")
            row = rows[folder.name]
            fmt.require_file(folder / f"{folder.name}_sa.nii.gz", "the cine image (<ID>_sa.nii.gz)")
            if split != "Training/Unlabeled":
                fmt.require_file(folder / f"{folder.name}_sa_gt.nii.gz", "the label file (<ID>_sa_gt.nii.gz)")
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
