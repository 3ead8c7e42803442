"""ACDC (MICCAI 2017 Automated Cardiac Diagnosis Challenge): write and read its on-disk layout.

Layout (as published; ``root`` is the ``ACDC`` folder or its ``database`` folder)::

    database/{training,testing}/patient001/
        Info.cfg                      ED: 1 / ES: 12 / Group: DCM / Height: 184.0 / NbFrame: 30 / Weight: 95.0
        MANDATORY_CITATION.md         (real data)  or  SYNTHETIC.md (+ cmrlab_truth.json) (made by cmrlab)
        patient001_4d.nii.gz          the cine, (X, Y, Z, T); pixdim[4] = time step
        patient001_frame01.nii.gz     the ED frame, copied out of the 4-D file
        patient001_frame01_gt.nii.gz  its labels: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity
        patient001_frame12.nii.gz     the ES frame and
        patient001_frame12_gt.nii.gz  its labels

Frame numbers in ``Info.cfg`` and in the file names are **1-based** (frame 1 is the first volume
of the 4-D file); :class:`ACDCPatient` keeps them so and adds 0-based ``ed_index``/``es_index``
for array indexing. Synthetic cases can carry a ``cmrlab_truth.json`` with what real data lack
(analytic volumes per frame, the seed and parameters, the name of a file with labels for every
frame), exposed as :attr:`ACDCPatient.truth`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cmrlab.checks import check_choice, check_number, did_you_mean, metadata_number
from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike
from cmrlab.data.volume import check_same_grid, read_volume
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import atomic_write_text, inside, load_json, read_text

__all__ = [
    "GROUPS",
    "LABELS",
    "SPLITS",
    "ACDCPatient",
    "check_dataset",
    "list_cases",
    "read_patient",
    "write_patient",
]

#: Label values of the ACDC ground truth.
LABELS: dict[int, str] = {0: "background", 1: "RV cavity", 2: "LV myocardium", 3: "LV cavity"}
#: Diagnostic groups: normal, previous myocardial infarction, dilated cardiomyopathy,
#: hypertrophic cardiomyopathy, abnormal right ventricle.
GROUPS: dict[str, str] = {
    "NOR": "normal",
    "MINF": "myocardial infarction (systolic heart failure with infarction)",
    "DCM": "dilated cardiomyopathy",
    "HCM": "hypertrophic cardiomyopathy",
    "RV": "abnormal right ventricle",
}
SPLITS = ("training", "testing")
#: Keys of Info.cfg and the type of their values.
INFO_KEYS: dict[str, type] = {
    "ED": int, "ES": int, "Group": str, "Height": float, "NbFrame": int, "Weight": float,
}
TRUTH_FILE = "cmrlab_truth.json"
_PATIENT_RE = re.compile(r"^patient\d{3,}$")


@dataclass(frozen=True, eq=False)
class ACDCPatient:
    """One ACDC patient as read from disk (arrays in NIfTI (X, Y, Z[, T]) order).

    ``image4d`` float32 (X, Y, Z, T); ``ed_image``/``es_image`` float32 (X, Y, Z);
    ``ed_labels``/``es_labels`` uint8 with :data:`LABELS` values; ``spacing`` (3,) in mm;
    ``affine`` 4×4 voxel → RAS+ mm; ``ed``/``es`` 1-based frame numbers as in Info.cfg;
    ``height`` in cm, ``weight`` in kg; ``time_step`` the 4-D file's ``pixdim[4]``;
    ``truth`` the content of ``cmrlab_truth.json`` (None for real data) and ``all_frame_labels``
    the (X, Y, Z, T) labels it points to (None when absent).
    """

    id: str
    split: str | None
    folder: Path
    image4d: np.ndarray
    ed_image: np.ndarray
    es_image: np.ndarray
    ed_labels: np.ndarray
    es_labels: np.ndarray
    spacing: np.ndarray
    affine: np.ndarray
    ed: int
    es: int
    group: str | None
    height: float
    weight: float
    n_frames: int
    time_step: float
    truth: dict[str, Any] | None = None
    all_frame_labels: np.ndarray | None = None
    synthetic: bool = False

    @property
    def ed_index(self) -> int:
        """0-based index of the ED frame along the last axis of :attr:`image4d`."""
        return self.ed - 1

    @property
    def es_index(self) -> int:
        """0-based index of the ES frame along the last axis of :attr:`image4d`."""
        return self.es - 1


# ----------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------
def _database(root: PathLike) -> Path:
    """The ``database`` folder, given the ``ACDC`` folder or ``database`` itself."""
    root = fmt.as_path(root, "root")
    if root.name != "database" and (root / "database").is_dir():
        return root / "database"
    if root.name == "database" or any((root / s).is_dir() for s in SPLITS):
        return fmt.require_folder(root, "ACDC database folder")
    fmt.require_folder(root, "ACDC folder")
    raise FileFormatError(
        root,
        "is not an ACDC folder: it holds neither database/ nor training/ or testing/ "
        "(expected ACDC/database/{training,testing}/patientXXX/)",
    )


def _frame_name(patient_id: str, frame: int, gt: bool = False) -> str:
    return f"{patient_id}_frame{frame:02d}{'_gt' if gt else ''}.nii.gz"


# ----------------------------------------------------------------------------------------------
# Info.cfg
# ----------------------------------------------------------------------------------------------
def _format_number(value: float) -> str:
    return repr(float(value))  # 184.0, 72.5: as in the real files


def _parse_info(path: Path, split: str | None) -> dict[str, Any]:
    """Parse ``Info.cfg`` ("Key: value" lines) into typed values; problems name file, line and key.

    The file must be UTF-8 (a BOM is dropped); numbers are checked by
    :func:`cmrlab.checks.metadata_number`, so an empty value, ``nan``, ``inf`` or an overflowing
    ``1e400`` is a FileFormatError, as is a key given twice. Unknown keys are ignored.
    """
    values: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(read_text(path, what="Info.cfg file").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, raw = line.partition(":")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise FileFormatError(path, f"line {number} {line[:80]!r} is not of the form 'Key: value'")
        if key not in INFO_KEYS:
            continue  # unknown keys are tolerated (later releases may add some)
        if key in values:
            raise FileFormatError(path, f"line {number}: {key} is given twice (first on line {first_line[key]})")
        kind = INFO_KEYS[key]
        field = f"{key} (line {number})"
        if kind is str:
            values[key] = raw
        else:
            value = metadata_number(path, field, raw)
            if kind is int:
                if not float(value).is_integer():
                    raise FileFormatError(path, f"field {field!r} must be a whole number, got {raw!r}")
                value = int(value)
            values[key] = value
        first_line[key] = number
    required = [k for k in INFO_KEYS if not (k == "Group" and split == "testing")]
    missing = [k for k in required if k not in values]
    if missing:
        raise FileFormatError(path, f"key(s) {', '.join(missing)} missing (expected {', '.join(INFO_KEYS)})")
    group = values.get("Group")
    if group is not None and group not in GROUPS:
        raise FileFormatError(path, f"Group {group[:40]!r} is not an ACDC group ({', '.join(GROUPS)})"
                              f"{did_you_mean(group, GROUPS)}")
    n = values["NbFrame"]
    if n < 1:
        raise FileFormatError(path, f"NbFrame must be at least 1, got {n}")
    for key in ("ED", "ES"):
        if not 1 <= values[key] <= n:
            raise FileFormatError(
                path, f"{key} = {values[key]} is outside 1..NbFrame = 1..{n} (ACDC frames are 1-based)"
            )
    if values["ED"] == values["ES"]:
        raise FileFormatError(path, f"ED and ES are the same frame ({values['ED']})")
    for key in ("Height", "Weight"):
        if not values[key] > 0:
            raise FileFormatError(path, f"{key} must be a positive number, got {values[key]}")
    return values


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------
def _synthetic_note(patient_id: str, truth: Mapping[str, Any] | None) -> str:
    seed = None if truth is None else truth.get("seed")
    params = None if truth is None else truth.get("params")
    lines = [
        f"# {patient_id}: synthetic data",
        "",
        "This case is **synthetic**: it was made by cmrlab (a physics-based cardiac cine phantom),",
        "not acquired from a patient. It follows the ACDC layout so that the same readers work on",
        "real and synthetic data. Do not cite ACDC for it; cite cmrlab.",
        "",
        f"- seed: {seed if seed is not None else 'not recorded'}",
        "- parameters: " + (json.dumps(params, sort_keys=True) if params is not None else "not recorded"),
        f"- ground truth the real data lack: {TRUTH_FILE if truth is not None else 'none written'}",
        "",
    ]
    return "\n".join(lines)


def write_patient(
    root: PathLike,
    patient_id: str,
    image4d: np.ndarray,
    labels: Mapping[int, np.ndarray],
    spacing: tuple[float, float, float],
    *,
    ed: int,
    es: int,
    group: str,
    height: float,
    weight: float,
    split: str = "training",
    affine: np.ndarray | None = None,
    all_frame_labels: np.ndarray | None = None,
    truth: Mapping[str, Any] | None = None,
    time_step: float | None = None,
) -> Path:
    """Write one patient in the ACDC layout under ``root`` and return its folder.

    ``root`` is the ``ACDC`` folder (the case goes to ``root/database/<split>/<patient_id>/``).
    ``image4d`` is the cine (X, Y, Z, T), stored in its own dtype (int16 or float32 as the real
    files); ``labels`` maps the 1-based ED and ES frame numbers to (X, Y, Z) label arrays with
    :data:`LABELS` values (ACDC has ground truth at those two frames only: pass labels for every
    frame as ``all_frame_labels``, (X, Y, Z, T), which goes to a ``cmrlab_labels4d`` file named
    in ``cmrlab_truth.json``). ``spacing`` (mm) and ``affine`` (voxel → RAS+ mm, default
    ``diag(spacing)``) must agree; ``time_step`` (ms) goes to ``pixdim[4]``. ``truth`` is a
    JSON-serialisable dict of ground truth (e.g. ``seed``, ``params``, volumes per frame).

    Writes ``Info.cfg``, the 4-D file, the ED/ES frame files (copied from the 4-D volume), their
    ``_gt`` files and ``SYNTHETIC.md`` (+ ``cmrlab_truth.json``), each atomically; identical
    inputs give identical bytes.
    """
    if not isinstance(patient_id, str) or not _PATIENT_RE.match(patient_id):
        raise ArgumentError(f"patient_id must look like 'patient001', got {patient_id!r}")
    check_choice("split", split, SPLITS)
    check_choice("group", group, GROUPS)
    height = check_number("height", height, 0.0, low_open=True)
    weight = check_number("weight", weight, 0.0, low_open=True)
    time_step = fmt.as_time_step(time_step)
    image = fmt.as_image(image4d, "image4d", 4, keep_dtype=True)
    n_frames = image.shape[3]
    fmt.check_frames(ed, es, n_frames, one_based=True)
    _, matrix = fmt.geometry(spacing, affine)
    if not isinstance(labels, Mapping):
        raise ArgumentError("labels must be a dict {frame_number: (X, Y, Z) label array}")
    if set(labels) != {ed, es}:
        raise ArgumentError(
            f"labels must have exactly the ED and ES frames {sorted({ed, es})} as keys (1-based), "
            f"got {sorted(labels)}; labels for every frame go in all_frame_labels"
        )
    frame_labels = {
        int(frame): fmt.as_labels(labels[frame], f"labels[{frame}]", LABELS, image.shape[:3])
        for frame in (ed, es)
    }
    labels4d = None
    if all_frame_labels is not None:
        labels4d = fmt.as_labels(all_frame_labels, "all_frame_labels", LABELS, image.shape)
        for frame in (ed, es):
            if not np.array_equal(labels4d[..., frame - 1], frame_labels[frame]):
                raise ArgumentError(
                    f"all_frame_labels[..., {frame - 1}] differs from labels[{frame}] (frame {frame})"
                )
    truth_dict = None
    if truth is not None or labels4d is not None:
        truth_dict = dict(truth or {})
        if labels4d is not None:
            truth_dict["all_frame_labels_file"] = f"{patient_id}_cmrlab_labels4d.nii.gz"
        try:
            truth_text = json.dumps(truth_dict, indent=2, sort_keys=True, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"truth must be JSON-serialisable (numbers, strings, lists, dicts): {exc}") from None

    folder = _database_for_writing(root) / split / patient_id
    info = (
        f"ED: {ed}\nES: {es}\nGroup: {group}\nHeight: {_format_number(height)}\n"
        f"NbFrame: {n_frames}\nWeight: {_format_number(weight)}\n"
    )
    fmt.save_image(folder / f"{patient_id}_4d.nii.gz", image, matrix, time_step)
    for frame in (ed, es):
        fmt.save_image(folder / _frame_name(patient_id, frame), image[..., frame - 1], matrix)
        fmt.save_image(folder / _frame_name(patient_id, frame, gt=True), frame_labels[frame], matrix)
    if labels4d is not None:
        fmt.save_image(folder / truth_dict["all_frame_labels_file"], labels4d, matrix, time_step)
    if truth_dict is not None:
        atomic_write_text(folder / TRUTH_FILE, truth_text)
    atomic_write_text(folder / "SYNTHETIC.md", _synthetic_note(patient_id, truth_dict))
    atomic_write_text(folder / "Info.cfg", info)  # last: a folder with Info.cfg is complete
    return folder


def _database_for_writing(root: PathLike) -> Path:
    root = fmt.folder_to_write(root, "ACDC folder")
    return root if root.name == "database" else root / "database"


# ----------------------------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------------------------
def _case_files(folder: Path, patient_id: str, info: Mapping[str, Any], root: Path) -> dict[str, Path]:
    files = {"4d": folder / f"{patient_id}_4d.nii.gz"}
    for key in ("ED", "ES"):
        files[key] = folder / _frame_name(patient_id, info[key])
        files[f"{key}_gt"] = folder / _frame_name(patient_id, info[key], gt=True)
    for key, path in files.items():
        what = "the 4-D cine" if key == "4d" else f"the {key.replace('_gt', '')} frame" + (
            " ground truth" if key.endswith("_gt") else " image"
        )
        if not path.exists():
            raise FileFormatError(path, f"{what} is missing (Info.cfg gives ED={info['ED']}, ES={info['ES']})")
        fmt.inside_dataset(root, path)
    return files


def _check_patient_folder(folder: PathLike) -> tuple[Path, str, str | None, dict[str, Any], Path]:
    """(folder, patient id, split, parsed Info.cfg, the root its files must stay inside)."""
    folder = fmt.as_path(folder, "folder")
    fmt.require_folder(folder, "ACDC patient folder")
    patient_id = folder.name
    if not _PATIENT_RE.match(patient_id):
        raise FileFormatError(folder, "is not an ACDC patient folder (its name should look like patient001)")
    split = folder.parent.name if folder.parent.name in SPLITS else None
    root = folder.parent.parent if split is not None else folder
    fmt.inside_dataset(root, folder)
    info_path = folder / "Info.cfg"
    if not info_path.is_file():
        raise FileFormatError(info_path, "is missing: every ACDC patient folder holds an Info.cfg")
    fmt.inside_dataset(root, info_path)
    return folder, patient_id, split, _parse_info(info_path, split), root


def _read_truth(folder: Path, root: Path) -> dict[str, Any] | None:
    """The content of ``cmrlab_truth.json`` (None when absent), read strictly."""
    truth_path = folder / TRUTH_FILE
    if not truth_path.exists():
        return None
    fmt.inside_dataset(root, truth_path)
    truth = load_json(truth_path)
    if not isinstance(truth, dict):
        raise FileFormatError(truth_path, f"should hold a JSON object, found {type(truth).__name__}")
    name = truth.get("all_frame_labels_file")
    if name is not None and (not isinstance(name, str) or not name):
        raise FileFormatError(truth_path, f"field 'all_frame_labels_file' must be a file name, got {name!r}")
    return truth


def read_patient(folder: PathLike) -> ACDCPatient:
    """Read and check one ACDC patient folder (real or synthetic) → :class:`ACDCPatient`.

    Checks: Info.cfg has ED, ES, Group, Height, NbFrame, Weight with the right types (Group may be
    absent in the testing split; NaN, inf and empty values are refused); ED and ES in 1..NbFrame;
    the 4-D file has NbFrame frames; the ED/ES frame files exist and equal those 4-D frames; image
    and labels lie on one voxel grid (:func:`cmrlab.data.volume.check_same_grid`); labels are in
    {0, 1, 2, 3}; no NaN; no file is a link leading out of the dataset, and the labels file that
    ``cmrlab_truth.json`` names lies inside the patient folder. Any problem → FileFormatError
    naming the file.
    """
    folder, patient_id, split, info, root = _check_patient_folder(folder)
    files = _case_files(folder, patient_id, info, root)
    cine = read_volume(files["4d"], 4)
    if cine.array.shape[3] != info["NbFrame"]:
        raise FileFormatError(
            files["4d"],
            f"holds {cine.array.shape[3]} frames but Info.cfg says NbFrame: {info['NbFrame']}",
        )
    frames: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for key in ("ED", "ES"):
        frame = read_volume(files[key], 3)
        check_same_grid(cine, frame, spatial_only=True)
        expected = cine.array[..., info[key] - 1].astype(np.float64)
        if not np.allclose(frame.array.astype(np.float64), expected, rtol=1e-5, atol=1e-5):
            raise FileFormatError(
                files[key],
                f"differs from frame {info[key]} of {files['4d'].name} (is {key} in Info.cfg right? "
                "frames are 1-based)",
            )
        gt = read_volume(files[f"{key}_gt"], 3)
        check_same_grid(frame, gt)
        labels[key] = gt.labels(LABELS, "ACDC")
        frames[key] = frame.image()

    truth = _read_truth(folder, root)
    all_frame_labels = None
    if truth is not None and truth.get("all_frame_labels_file") is not None:
        path = inside(folder, truth["all_frame_labels_file"], source=folder / TRUTH_FILE,
                      what="all_frame_labels_file")
        volume = read_volume(path, 4)
        check_same_grid(cine, volume)
        all_frame_labels = volume.labels(LABELS, "ACDC")

    time_step = cine.time_step
    return ACDCPatient(
        id=patient_id,
        split=split,
        folder=folder,
        image4d=cine.image(),
        ed_image=frames["ED"],
        es_image=frames["ES"],
        ed_labels=labels["ED"],
        es_labels=labels["ES"],
        spacing=np.asarray(cine.spacing, dtype=float),
        affine=cine.affine,
        ed=info["ED"],
        es=info["ES"],
        group=info.get("Group"),
        height=info["Height"],
        weight=info["Weight"],
        n_frames=info["NbFrame"],
        time_step=float(time_step) if time_step is not None else 1.0,
        truth=truth,
        all_frame_labels=all_frame_labels,
        synthetic=(folder / "SYNTHETIC.md").exists(),
    )


def list_cases(root: PathLike) -> list[Path]:
    """Patient folders under ``root`` (the ``ACDC`` folder or its ``database``), sorted by split
    (training, testing) and name. A patient folder that is a link leading outside the database
    is refused (FileFormatError naming it)."""
    database = _database(root)
    return fmt.inside_all(database, [
        folder
        for split in SPLITS
        if (database / split).is_dir()
        for folder in fmt.visible_dirs(database / split)
        if _PATIENT_RE.match(folder.name)
    ])


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the ACDC layout under ``root`` and count cases per split and group.

    The quick check parses every Info.cfg and checks that the files it implies exist and stay
    inside the dataset; with ``deep=True`` every case is read with :func:`read_patient` (all
    checks, all voxels). Raises FileFormatError naming the first bad file.
    """
    database = _database(root)
    problems: list[str] = []
    for split in SPLITS:
        split_dir = database / split
        if not split_dir.is_dir():
            problems.append(f"{split_dir}: split folder missing")
            continue
        for entry in sorted(split_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if not (entry.is_dir() and _PATIENT_RE.match(entry.name)):
                problems.append(f"{entry}: not a patientXXX folder, ignored")
    cases = list_cases(database)
    if not cases:
        raise FileFormatError(database, "holds no patientXXX folders under training/ or testing/")
    splits, groups = [], []
    for folder in fmt.deep_progress(cases, "ACDC check") if deep else cases:
        if deep:
            patient = read_patient(folder)
            splits.append(patient.split)
            groups.append(patient.group)
        else:
            _, patient_id, split, info, case_root = _check_patient_folder(folder)
            _case_files(folder, patient_id, info, case_root)
            _read_truth(folder, case_root)
            splits.append(split)
            groups.append(info.get("Group"))
    return fmt.DatasetReport(
        dataset="ACDC",
        root=database,
        n_cases=len(cases),
        counts={"split": fmt.count(splits), "group": fmt.count(groups)},
        problems=tuple(problems),
        deep=deep,
    )
