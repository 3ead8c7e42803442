"""Medical Segmentation Decathlon (MSD): read and write a task folder with its ``dataset.json``.

Layout of a task (as published; under the data root ``MSD/Task01_BrainTumour/``,
``MSD/Task02_Heart/``)::

    Task01_BrainTumour/dataset.json
                       imagesTr/BRATS_001.nii.gz    training images
                       labelsTr/BRATS_001.nii.gz    their labels (same grid)
                       imagesTs/BRATS_485.nii.gz    test images (no labels published)

The archives also hold macOS AppleDouble files ``._BRATS_001.nii.gz``; they are not images and
every function here skips them (and any other hidden file).

``dataset.json`` describes the task and lists its files (keys as in the published files and as
MONAI's ``load_decathlon_datalist``/``DecathlonDataset`` read them): ``name``, ``description``,
``reference``, ``licence``, ``release``, ``tensorImageSize`` (``"4D"`` for multi-channel tasks),
``modality`` (channel index → name, e.g. Task01 ``{"0": "FLAIR", "1": "T1w", "2": "t1gd",
"3": "T2w"}``), ``labels`` (value → name, Task01 ``{"0": "background", "1": "edema",
"2": "non-enhancing tumor", "3": "enhancing tumour"}``), ``numTraining``, ``numTest``,
``training`` (a list of ``{"image": "./imagesTr/BRATS_001.nii.gz", "label":
"./labelsTr/BRATS_001.nii.gz"}``) and ``test`` (a list of ``"./imagesTs/BRATS_485.nii.gz"``).
Multi-channel images are 4-D, X×Y×Z×C with the channels in ``modality`` order; labels are 3-D.

Task01 holds the BraTS 2016/2017 cases relabelled: MSD 1 edema = BraTS 2 ED, MSD 2 non-enhancing
tumour = BraTS 1 NCR/NET, MSD 3 enhancing tumour = BraTS 4 ET (:func:`brats_to_msd_labels`,
:func:`msd_to_brats_labels`), channels FLAIR, T1w, T1gd, T2w = BraTS flair, t1, t1ce, t2
(:func:`brats_to_msd_image`).

The verbs shared by every format module: :data:`LABELS` (Task01's), :func:`write_case` plus
:func:`write_dataset_json`, :func:`read_case`, :func:`list_cases`, :func:`check_dataset`.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from cmrlab.data import _formats as fmt
from cmrlab.data.io import PathLike, save_nifti
from cmrlab.data.volume import check_same_grid, read_volume
from cmrlab.files import atomic_write_text, inside, load_json
from cmrlab.errors import ArgumentError, FileFormatError

__all__ = [
    "BRATS_TO_MSD_CHANNELS",
    "BRATS_TO_MSD_LABELS",
    "LABELS",
    "MSD_TO_BRATS_LABELS",
    "TASKS",
    "MSDCase",
    "MSDTask",
    "brats_to_msd_image",
    "brats_to_msd_labels",
    "check_dataset",
    "list_cases",
    "msd_to_brats_labels",
    "read_case",
    "read_dataset_json",
    "write_case",
    "write_dataset_json",
]

#: Labels of Task01_BrainTumour (its dataset.json "labels").
LABELS: dict[int, str] = {0: "background", 1: "edema", 2: "non-enhancing tumor",
                          3: "enhancing tumour"}

#: The descriptive keys of the published dataset.json of the two tasks the course uses, in
#: their published order. Task01 as in its dataset.json; Task02's name/description/reference/
#: release are quoted from memory of the published file and are not verified here.
TASKS: dict[str, dict[str, Any]] = {
    "Task01_BrainTumour": {
        "name": "BRATS",
        "description": "Gliomas segmentation tumour and oedema in on brain images",
        "reference": "https://www.med.upenn.edu/sbia/brats2017.html",
        "licence": "CC-BY-SA 4.0",
        "release": "2.0 04/05/2018",
        "tensorImageSize": "4D",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {str(k): v for k, v in LABELS.items()},
    },
    "Task02_Heart": {
        "name": "LeftAtrium",
        "description": "Left atrium segmentation",
        "reference": "King's College London",
        "licence": "CC-BY-SA 4.0",
        "release": "1.0 06/08/2018",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "left atrium"},
    },
}

#: BraTS (≤ 2021) label → MSD Task01 label: NCR 1 → 2, ED 2 → 1, ET 4 → 3.
BRATS_TO_MSD_LABELS: dict[int, int] = {0: 0, 1: 2, 2: 1, 4: 3}
#: MSD Task01 label → BraTS label (the inverse).
MSD_TO_BRATS_LABELS: dict[int, int] = {v: k for k, v in BRATS_TO_MSD_LABELS.items()}
#: BraTS scan name of each MSD Task01 channel, in channel order (FLAIR, T1w, t1gd, T2w).
BRATS_TO_MSD_CHANNELS: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")

_REQUIRED_KEYS = ("name", "modality", "labels", "numTraining", "numTest", "training", "test")
_SUFFIX = ".nii.gz"


def _relabel(labels: np.ndarray, mapping: Mapping[int, int], source: str) -> np.ndarray:
    return fmt.relabel(labels, "labels", mapping, source)


def brats_to_msd_labels(seg: np.ndarray) -> np.ndarray:
    """BraTS labels (0, 1 NCR, 2 ED, 4 ET) → MSD Task01 labels (0, 2, 1, 3), uint8."""
    return _relabel(seg, BRATS_TO_MSD_LABELS, "BraTS")


def msd_to_brats_labels(labels: np.ndarray) -> np.ndarray:
    """MSD Task01 labels (0, 1 edema, 2 non-enhancing, 3 enhancing) → BraTS (0, 2, 1, 4), uint8."""
    return _relabel(labels, MSD_TO_BRATS_LABELS, "MSD Task01")


def brats_to_msd_image(images: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stack BraTS scans ``{"t1", "t1ce", "t2", "flair"}`` into a Task01 image X×Y×Z×4 (float32)
    with channels FLAIR, T1w, t1gd, T2w."""
    missing = [k for k in BRATS_TO_MSD_CHANNELS if k not in images]
    if missing:
        raise ArgumentError(f"images lacks BraTS scan(s) {missing}")
    arrays = [fmt.as_image(images[k], f"images[{k!r}]") for k in BRATS_TO_MSD_CHANNELS]
    if len({a.shape for a in arrays}) != 1:
        raise ArgumentError(f"images: the scans differ in shape {[a.shape for a in arrays]}")
    return np.stack(arrays, axis=-1)


# ----------------------------------------------------------------------------------------------
# dataset.json
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MSDTask:
    """A validated ``dataset.json``: the task's description and its files (absolute paths).

    ``modality``: channel index → name; ``labels``: value → name; ``training``: (image, label)
    pairs; ``test``: images; ``metadata``: every other key as published (name, licence, ...).
    """

    root: Path
    name: str
    modality: dict[int, str]
    labels: dict[int, str]
    training: tuple[tuple[Path, Path], ...]
    test: tuple[Path, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        """Number of image channels (entries of ``modality``)."""
        return len(self.modality)


def _json_problem(path: Path, problem: str) -> FileFormatError:
    return FileFormatError(path, f"{problem} (fix dataset.json or fetch the task again)")


def _index_map(path: Path, raw: object, key: str, consecutive: bool) -> dict[int, str]:
    if not isinstance(raw, dict) or not raw:
        raise _json_problem(path, f'"{key}" must be a non-empty object such as {{"0": "..."}}')
    out: dict[int, str] = {}
    for k, v in raw.items():
        if not (isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 6) or not isinstance(v, str):
            raise _json_problem(path, f'"{key}" must map index strings to names, found '
                                f'{str(k)[:40]!r}: {str(v)[:40]!r}')
        if int(k) in out:
            raise _json_problem(path, f'"{key}" gives index {int(k)} twice (as {k!r})')
        out[int(k)] = v
    if consecutive and sorted(out) != list(range(len(out))):
        raise _json_problem(path, f'"{key}" indices must be 0..{len(out) - 1}, found {sorted(out)}')
    if not consecutive and (0 not in out or max(out) > 255):
        raise _json_problem(path, f'"{key}" must include 0 (background) and values up to 255, '
                            f"found {sorted(out)}")
    return dict(sorted(out.items()))


def _entry_path(path: Path, root: Path, value: object, where: str, folder: str) -> Path:
    """Resolve a dataset.json path entry safely: relative, inside ``folder``, a .nii.gz file."""
    if not isinstance(value, str) or not value:
        raise _json_problem(path, f"{where} must be a file path string, found {value!r}")
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or \
            PureWindowsPath(value).drive:
        raise _json_problem(path, f"{where} = {value!r} is an absolute path; dataset.json entries "
                            "must be relative to the task folder")
    parts = [p for p in PurePosixPath(value.replace("\\", "/")).parts if p != "."]
    if ".." in parts:
        raise _json_problem(path, f"{where} = {value!r} contains '..' and could point outside the "
                            "task folder; refused")
    if len(parts) != 2 or parts[0] != folder or not parts[1].endswith(_SUFFIX) \
            or parts[1].startswith("."):
        raise _json_problem(path, f"{where} = {value!r} should be ./{folder}/<case>{_SUFFIX}")
    return inside(root, Path(folder, parts[1]), source=path, what=where)


def read_dataset_json(root: PathLike) -> MSDTask:
    """Read and validate ``root/dataset.json`` (``root`` = the task folder, e.g.
    ``MSD/Task01_BrainTumour``).

    Checks: a JSON object read strictly (:func:`cmrlab.files.load_json`: UTF-8, no NaN, inf or
    ``1e400``, limited nesting); keys ``name``, ``modality``, ``labels``, ``numTraining``,
    ``numTest``, ``training``, ``test`` present; ``modality`` indices 0..C−1; ``labels`` include
    0; ``numTraining``/``numTest`` equal the list lengths; every path relative, without ``..``,
    of the form ``./imagesTr/<case>.nii.gz`` (``labelsTr``, ``imagesTs``), listed once, and
    inside the task folder once symbolic links are followed (:func:`cmrlab.files.inside`).
    Files are not opened here (see :func:`check_dataset`). Raises FileFormatError naming
    dataset.json and the entry at fault.
    """
    root = fmt.require_folder(fmt.as_path(root), "an MSD task folder (e.g. MSD/Task01_BrainTumour)")
    path = root / "dataset.json"
    fmt.require_file(path, "every MSD task folder has a dataset.json describing its files")
    try:
        raw = load_json(path)
    except FileFormatError as exc:
        raise _json_problem(path, exc.problem) from None
    if not isinstance(raw, dict):
        raise _json_problem(path, f"must hold a JSON object, found {type(raw).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise _json_problem(path, f"lacks the key(s) {missing}")
    modality = _index_map(path, raw["modality"], "modality", consecutive=True)
    labels = _index_map(path, raw["labels"], "labels", consecutive=False)
    if not isinstance(raw["training"], list) or not isinstance(raw["test"], list):
        raise _json_problem(path, '"training" and "test" must be lists')
    training = []
    for i, entry in enumerate(raw["training"]):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise _json_problem(path, f'training[{i}] must be an object with "image" and "label", '
                                f"found {entry!r}")
        training.append((
            _entry_path(path, root, entry["image"], f"training[{i}].image", "imagesTr"),
            _entry_path(path, root, entry["label"], f"training[{i}].label", "labelsTr"),
        ))
    test = []
    for i, entry in enumerate(raw["test"]):
        value = entry.get("image") if isinstance(entry, dict) else entry
        test.append(_entry_path(path, root, value, f"test[{i}]", "imagesTs"))
    for key, items in (("numTraining", training), ("numTest", test)):
        count = raw[key]
        if isinstance(count, bool) or not isinstance(count, int) or count != len(items):
            raise _json_problem(path, f'"{key}" is {count!r} but the list holds {len(items)} '
                                "entries")
    listed = [p for pair in training for p in pair] + test
    seen: set[Path] = set()
    for p in listed:
        if p in seen:
            raise _json_problem(path, f"lists {p.relative_to(root).as_posix()} more than once")
        seen.add(p)
    if not isinstance(raw["name"], str):
        raise _json_problem(path, f'"name" must be a string, found {raw["name"]!r}')
    metadata = {k: v for k, v in raw.items() if k not in ("training", "test")}
    return MSDTask(root, raw["name"], modality, labels, tuple(training), tuple(test), metadata)


def write_dataset_json(root: PathLike, metadata: Mapping[str, Any]) -> Path:
    """Write ``root/dataset.json`` listing the cases found in ``imagesTr``/``labelsTr``/``imagesTs``.

    ``metadata``: the descriptive keys (``name``, ``description``, ``reference``, ``licence``,
    ``release``, ``tensorImageSize``, ``modality``, ``labels`` ... — e.g. a copy of
    ``TASKS["Task01_BrainTumour"]`` with a description saying the data are synthetic), written
    in the given order; ``numTraining``, ``numTest``, ``training`` and ``test`` follow, computed
    from the files (sorted by name). Every training image needs its label file of the same name.
    Call it after the last :func:`write_case`. The file is written atomically and is
    byte-identical for identical inputs. Returns its path.
    """
    root = fmt.require_folder(fmt.as_path(root), "the MSD task folder to describe")
    if not isinstance(metadata, Mapping):
        raise ArgumentError(f"metadata must be a mapping, got {type(metadata).__name__}")
    reserved = {"numTraining", "numTest", "training", "test"} & set(metadata)
    if reserved:
        raise ArgumentError(f"metadata: {sorted(reserved)} are computed from the files; leave "
                            "them out")
    for key in ("name", "modality", "labels"):
        if key not in metadata:
            raise ArgumentError(f"metadata lacks {key!r} (see TASKS for the published values)")
    if not isinstance(metadata["name"], str):
        raise ArgumentError(f"metadata['name'] must be a string, got {metadata['name']!r}")
    try:
        _index_map(root / "dataset.json", metadata["modality"], "modality", consecutive=True)
        _index_map(root / "dataset.json", metadata["labels"], "labels", consecutive=False)
    except FileFormatError as exc:
        raise ArgumentError(f"metadata: {exc.problem}") from None

    def names(folder: str) -> list[str]:
        where = root / folder
        if not where.is_dir():
            return []
        return [p.name for p in fmt.visible(where.iterdir()) if p.name.endswith(_SUFFIX)]

    images_tr, labels_tr, images_ts = names("imagesTr"), set(names("labelsTr")), names("imagesTs")
    for name in images_tr:
        if name not in labels_tr:
            raise FileFormatError(root / "labelsTr" / name, "is missing: every training image "
                                  "needs its label file of the same name")
    document: dict[str, Any] = {k: copy.deepcopy(v) for k, v in metadata.items()}
    document["numTraining"] = len(images_tr)
    document["numTest"] = len(images_ts)
    document["training"] = [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"}
                            for n in images_tr]
    document["test"] = [f"./imagesTs/{n}" for n in images_ts]
    try:
        text = json.dumps(document, indent=4, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"metadata must hold JSON values only ({exc})") from None
    return atomic_write_text(root / "dataset.json", text)


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MSDCase:
    """One MSD case as read from disk.

    ``image``: float32, X×Y×Z for a one-channel task or X×Y×Z×C (channels named by
    ``channels``); ``labels``: uint8 X×Y×Z with values in ``label_names``, or ``None`` for a test
    case. ``spacing`` (mm) and ``affine`` of the spatial axes.
    """

    id: str
    split: str
    image: np.ndarray
    labels: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray
    channels: tuple[str, ...]
    label_names: dict[int, str]
    files: dict[str, Path] = field(default_factory=dict)


def write_case(
    root: PathLike,
    case_id: str,
    image: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    spacing: Iterable[float],
    affine: np.ndarray | None = None,
    split: str = "training",
    label_values: Iterable[int] | None = None,
) -> Path:
    """Write one case's files under the task folder ``root``: ``imagesTr/<case_id>.nii.gz`` and
    ``labelsTr/<case_id>.nii.gz`` (``split="training"``, labels required) or
    ``imagesTs/<case_id>.nii.gz`` (``split="test"``, no labels).

    ``image``: X×Y×Z, or X×Y×Z×C with channels last (float32); ``labels``: X×Y×Z uint8 with
    values in ``label_values`` (default: Task01's 0..3). ``affine`` defaults to
    ``diag(spacing)``. Then call :func:`write_dataset_json`. Returns the image path.
    """
    name = fmt.check_case_id(case_id)
    if split not in ("training", "test"):
        raise ArgumentError(f"split must be 'training' or 'test', got {split!r}")
    matrix = fmt.geometry(spacing, affine)[1]
    img = fmt.as_image(image, "image", (3, 4))
    root = fmt.as_path(root)
    if split == "test":
        if labels is not None:
            raise ArgumentError("labels: MSD test cases have no labels; leave it None")
        return save_nifti(img, root / "imagesTs" / f"{name}{_SUFFIX}", matrix)
    if labels is None:
        raise ArgumentError("labels: a training case needs its label map")
    allowed = LABELS if label_values is None else label_values
    lab = fmt.as_labels(labels, "labels", allowed, img.shape[:3])
    image_path = save_nifti(img, root / "imagesTr" / f"{name}{_SUFFIX}", matrix)
    save_nifti(lab, root / "labelsTr" / f"{name}{_SUFFIX}", matrix)
    return image_path


def read_case(path: PathLike) -> MSDCase:
    """Read one case: ``path`` is its image ``<task>/imagesTr/<case>.nii.gz`` (or ``imagesTs``),
    as :func:`list_cases` returns it. The task's ``dataset.json`` must list it.

    Checks: the image has one channel per ``modality`` entry (3-D for one, X×Y×Z×C for C); the
    label (training) is 3-D on the image's grid (shape, affine within 1e-3 mm) with values among
    ``labels``; no NaN. Raises FileFormatError naming the file at fault.
    """
    image_path = fmt.as_path(path, "path")
    if image_path.parent.name not in ("imagesTr", "imagesTs"):
        raise ArgumentError(f"path must be an image in a task's imagesTr/ or imagesTs/, got "
                            f"{image_path}")
    task = read_dataset_json(image_path.parent.parent)
    label_of = dict(task.training)
    if image_path in label_of:
        split, label_path = "training", label_of[image_path]
    elif image_path in task.test:
        split, label_path = "test", None
    else:
        raise FileFormatError(image_path, f"is not listed in {task.root / 'dataset.json'}")
    n = task.n_channels
    image = read_volume(fmt.require_file(image_path, f"listed in dataset.json ({split})"), ndim=(3, 4))
    if n == 1 and image.array.ndim == 4 and image.array.shape[3] == 1:  # X×Y×Z×1: one channel
        image = image.with_array(image.array[..., 0])
    shape = image.array.shape
    if (n == 1 and len(shape) != 3) or (n > 1 and (len(shape) != 4 or shape[3] != n)):
        expected = "X×Y×Z" if n == 1 else f"X×Y×Z×{n}"
        raise FileFormatError(image_path, f"has shape {shape}, but dataset.json lists {n} "
                              f"modalit{'y' if n == 1 else 'ies'} {list(task.modality.values())}"
                              f", so it should be {expected}")
    labels = None
    files = {"image": image_path}
    if label_path is not None:
        label = read_volume(fmt.require_file(label_path, "the label file listed in dataset.json"))
        check_same_grid(image, label, spatial_only=True)
        labels = label.labels(task.labels, f"dataset.json of {task.root.name}")
        files["label"] = label_path
    return MSDCase(
        id=image_path.name[: -len(_SUFFIX)],
        split=split,
        image=image.image(),
        labels=labels,
        spacing=image.spacing,
        affine=image.affine,
        channels=tuple(task.modality.values()),
        label_names=task.labels,
        files=files,
    )


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------
def list_cases(root: PathLike, split: str = "training") -> list[Path]:
    """Image paths of the cases dataset.json lists under the task folder ``root``, sorted by
    name: ``split`` ``"training"``, ``"test"`` or ``"all"`` (training first)."""
    if split not in ("training", "test", "all"):
        raise ArgumentError(f"split must be 'training', 'test' or 'all', got {split!r}")
    task = read_dataset_json(root)
    training = sorted(image for image, _ in task.training)
    test = sorted(task.test)
    return {"training": training, "test": test, "all": training + test}[split]


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check a task folder against its ``dataset.json``.

    Raises FileFormatError for a bad dataset.json (:func:`read_dataset_json`) or a listed file
    that is missing. ``problems`` lists ``.nii.gz`` files in imagesTr/labelsTr/imagesTs that
    dataset.json does not list (AppleDouble ``._*`` files are ignored). With ``deep=True`` every
    listed case is read (channels, geometry, label values).
    """
    task = read_dataset_json(root)
    for i, (image, label) in enumerate(task.training):
        fmt.require_file(image, f"listed in dataset.json as training[{i}].image")
        fmt.require_file(label, f"listed in dataset.json as training[{i}].label")
    for i, image in enumerate(task.test):
        fmt.require_file(image, f"listed in dataset.json as test[{i}]")
    listed = {p for pair in task.training for p in pair} | set(task.test)
    problems = []
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        where = task.root / folder
        if where.is_dir():
            for p in fmt.visible(where.iterdir()):
                if p.name.endswith(_SUFFIX) and p not in listed:
                    problems.append(f"{folder}/{p.name} is not listed in dataset.json")
    if deep:
        images = [i for i, _ in task.training] + list(task.test)
        for image in fmt.deep_progress(images, f"reading {task.root.name}"):
            read_case(image)
    splits = {"training": len(task.training), "test": len(task.test)}
    return fmt.DatasetReport(f"MSD {task.root.name}", task.root, sum(splits.values()), {"split": splits},
                             tuple(problems), deep)
