"""Datasets by name: the real one under the data root when it is there, else a synthetic one.

A chapter asks for a dataset by name and gets a folder in the dataset's own published layout::

    from cmrlab.data.datasets import get_dataset
    acdc = get_dataset("acdc", run=run)        # run = cmrlab.config.setup(...)
    acdc.path, acdc.synthetic                  # .../ACDC, False   or   .../synthetic/ACDC/..., True
    patient = acdc.reader.read_patient(acdc.cases()[0])

The rule (DESIGN §5): with ``synthetic=None`` the profile decides. The ``fast`` profile always uses
the synthetic data (small, quick, the same on every machine); the ``full`` profile uses the real
dataset when its folder exists under the data root (``ACDC/``, ``MnM/`` … as the scripts in
``data_scripts/`` put them there) and falls back to the synthetic one otherwise, saying so.
A real folder that is present but broken is reported, never silently replaced.

Synthetic datasets are generated on first use by :mod:`cmrlab.data.synthetic` and cached under
``<data root>/synthetic/<folder>/n<cases>-seed<seed>-<profile>-v<version>/`` (the ``fast``
profile makes laptop-sized cases, ``full`` the published sizes: :mod:`cmrlab.data.synthetic`).
:func:`synthesize` writes one into a folder of your choice (``cmrlab data synth``). Generation
writes into a hidden temporary folder (:func:`cmrlab.files.atomic_folder`) and renames it into
place when every case is written, so an interrupted generation leaves no half dataset behind and
two processes asking at once both end up with one complete copy.
"""
from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cmrlab.checks import check_bool, check_choice, check_int, did_you_mean
from cmrlab.config import RunConfig, data_root as _data_root, get_profile
from cmrlab.errors import ArgumentError, CmrlabError
from cmrlab.files import atomic_folder, atomic_write_text

__all__ = [
    "DATASETS", "SIZES", "DatasetInfo", "DatasetLocation", "dataset_info", "get_dataset", "synthesize",
    "synthetic_folder",
]

#: Case sizes of the synthetic generators (the profile names): laptop-sized or the published sizes.
SIZES = ("fast", "full")
_ALIASES = {"m&ms": "mnms", "iseg": "iseg2017", "mrbrains": "mrbrains18", "brats": "brats2021",
            "task01": "msd-task01", "msd": "msd-task01"}

#: Marker written last into a complete synthetic dataset (its parameters, for provenance).
MARKER = "cmrlab_synthetic.json"


@dataclass(frozen=True)
class DatasetInfo:
    """What the course knows about one public dataset.

    ``folder`` is where ``data_scripts/`` put the real data under the data root; ``reader`` the
    module of :mod:`cmrlab.data` that reads (and writes) its layout; ``generator`` the function of
    :mod:`cmrlab.data.synthetic` that writes a synthetic copy; ``cases`` the number of synthetic
    cases each profile generates by default.
    """

    name: str
    title: str
    folder: str
    reader: str
    generator: str
    script: str
    cases: dict[str, int] = field(default_factory=lambda: {"fast": 10, "full": 100})
    description: str = ""


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("acdc", "ACDC (MICCAI 2017)", "ACDC", "cmrlab.data.acdc", "write_acdc",
                    "data_scripts/acdc.py", {"fast": 15, "full": 150},
                    "cine SAX, 5 groups, labels 1 RV / 2 MYO / 3 LV at ED and ES"),
        DatasetInfo("mnms", "M&Ms (2020)", "MnM", "cmrlab.data.mnms", "write_mnms",
                    "data_scripts/mnms.py", {"fast": 8, "full": 150},
                    "multi-vendor cine SAX, labels 1 LV / 2 MYO / 3 RV at ED and ES"),
        DatasetInfo("sunnybrook", "Sunnybrook Cardiac Data (2009)", "Sunnybrook",
                    "cmrlab.data.sunnybrook", "write_sunnybrook", "data_scripts/sunnybrook.py",
                    {"fast": 6, "full": 45}, "cine SAX DICOM, LV endo/epi contours at ED and ES"),
        DatasetInfo("iseg2017", "iSeg-2017 (6-month infant brain)", "iSeg-2017",
                    "cmrlab.data.iseg", "write_iseg", "data_scripts/iseg.py",
                    {"fast": 4, "full": 10}, "T1 + T2 Analyze, labels 10 CSF / 150 GM / 250 WM"),
        DatasetInfo("mrbrains18", "MRBrainS18", "MRBrainS18", "cmrlab.data.mrbrains",
                    "write_mrbrains18", "data_scripts/mrbrains18.py", {"fast": 4, "full": 7},
                    "T1, T1-IR, FLAIR; 10 labels merged to CSF/GM/WM"),
        DatasetInfo("brats2021", "BraTS 2021", "BraTS2021", "cmrlab.data.brats", "write_brats",
                    "data_scripts/brats.py", {"fast": 4, "full": 60},
                    "T1, T1ce, T2, FLAIR; labels 1 NCR / 2 ED / 4 ET"),
        DatasetInfo("msd-task01", "MSD Task01 BrainTumour", "MSD/Task01_BrainTumour",
                    "cmrlab.data.msd", "write_msd_task01", "data_scripts/msd.py",
                    {"fast": 4, "full": 60}, "4-channel 4D NIfTI + dataset.json"),
    )
}


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset was found or generated, and the module that reads it."""

    name: str
    path: Path
    synthetic: bool
    reader: ModuleType
    n_cases: int | None = None
    seed: int | None = None
    variant: str | None = None

    def cases(self) -> list:
        """The cases under :attr:`path`, as the reader's ``list_cases`` returns them."""
        return list(self.reader.list_cases(self.path))

    def __str__(self) -> str:
        kind = (f"synthetic{', ' + self.variant if self.variant else ''}, {self.n_cases} cases, "
                f"seed {self.seed}" if self.synthetic else "real")
        return f"{DATASETS[self.name].title} ({kind}) at {self.path}"


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of the dataset called ``name``.

    Case and ``_``/``-`` do not matter, and a few aliases are known (``"iseg"``, ``"brats"``,
    ``"msd"``, ``"m&ms"``...). An unknown name is an ArgumentError listing the known ones, with a
    "did you mean" when one is close.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ArgumentError(
            f"name: unknown dataset {str(name)[:80]!r}{did_you_mean(key, DATASETS)}; known: "
            f"{', '.join(sorted(DATASETS))}"
        )
    return DATASETS[key]


def _reader(info: DatasetInfo) -> ModuleType:
    return importlib.import_module(info.reader)


def _generator(info: DatasetInfo) -> Callable[..., Any]:
    from cmrlab.data import synthetic

    return getattr(synthetic, info.generator)


def synthetic_folder(name: str, n_cases: int, seed: int = 0, root: str | os.PathLike | None = None,
                     size: str = "fast", variant: str | None = None) -> Path:
    """The cache folder of the synthetic ``name`` dataset with ``n_cases`` cases, ``seed``, case
    ``size`` (``"fast"``: laptop-sized cases, ``"full"``: the published sizes) and ``variant``
    (``None``, or a name of :data:`cmrlab.data.synthetic.VARIANTS`)."""
    from cmrlab.data import synthetic

    info = dataset_info(name)
    n_cases = check_int("n_cases", n_cases, 1)
    seed = check_int("seed", seed, 0)
    size = check_choice("size", size, SIZES)
    variant = synthetic.check_variant(info.name, variant)
    base = _data_root(root) / "synthetic" / info.folder
    tag = f"-{variant}" if variant else ""
    return base / f"n{n_cases}-seed{seed}-{size}{tag}-v{synthetic.GENERATOR_VERSION}"


def _is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _write(info: DatasetInfo, out: Path, n_cases: int, seed: int, size: str, progress: bool, *,
           exist_ok_if: Callable[[Path], bool] | None = None, variant: str | None = None) -> Path:
    """Generate into a hidden sibling of ``out``, write :data:`MARKER` last, rename (atomic)."""
    from cmrlab.data import synthetic

    with atomic_folder(out, exist_ok_if=exist_ok_if) as tmp:
        extra = {"variant": variant} if variant else {}
        _generator(info)(tmp, n_cases=n_cases, seed=seed, progress=progress, size=size, **extra)
        marker = {"dataset": info.name, "n_cases": n_cases, "seed": seed, "size": size, **extra,
                  "generator_version": synthetic.GENERATOR_VERSION,
                  "note": "synthetic data made by cmrlab.phantoms; not patient data"}
        atomic_write_text(tmp / MARKER, json.dumps(marker, indent=2) + "\n")
    return out


def synthesize(name: str, out: str | os.PathLike, *, n_cases: int | None = None, seed: int = 0,
               size: str = "fast", progress: bool = True, variant: str | None = None) -> Path:
    """Write a synthetic copy of the dataset ``name`` into the new folder ``out``; return ``out``.

    ``out`` must not exist or be an empty folder (ArgumentError otherwise). ``n_cases`` defaults
    to the number of :data:`DATASETS` for ``size`` (``"fast"``: laptop-sized cases, ``"full"``:
    the published sizes); ``seed`` makes the bytes reproducible; ``variant`` picks one of
    :data:`cmrlab.data.synthetic.VARIANTS` (``None``: the standard copy). The dataset is built in a hidden
    temporary folder beside ``out`` and renamed to ``out`` only once complete, with
    :data:`MARKER` (its parameters) inside, so an interrupted run leaves nothing behind.
    """
    info = dataset_info(name)
    size = check_choice("size", size, SIZES)
    n_cases = check_int("n_cases", info.cases[size] if n_cases is None else n_cases, 1)
    seed = check_int("seed", seed, 0)
    progress = check_bool("progress", progress)
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentError(f"out must be a folder path, got {type(out).__name__}")
    folder = Path(out).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ArgumentError(f"out: {folder} exists and is not an empty folder; choose a new folder")
    from cmrlab.data import synthetic

    variant = synthetic.check_variant(info.name, variant)
    return _write(info, folder, n_cases, seed, size, progress, variant=variant)


def get_dataset(
    name: str,
    *,
    run: RunConfig | None = None,
    data_root: str | os.PathLike | None = None,
    synthetic: bool | None = None,
    n_cases: int | None = None,
    seed: int = 0,
    progress: bool = True,
    variant: str | None = None,
    fallback: bool = True,
) -> DatasetLocation:
    """Find the dataset called ``name`` (``"acdc"``, ``"mnms"``, ``"sunnybrook"``, ``"iseg2017"``,
    ``"mrbrains18"``, ``"brats2021"``, ``"msd-task01"``), generating the synthetic copy if needed.

    ``run`` (from :func:`cmrlab.config.setup`) supplies the profile and data root; ``data_root``
    overrides the latter. ``synthetic``: ``True`` always synthetic, ``False`` the real one or an
    error saying how to get it, ``None`` the profile's rule (module docstring). ``n_cases``: how
    many synthetic cases (default: the profile's number in :data:`DATASETS`); ``seed`` makes them
    reproducible; ``variant`` picks a synthetic variant (:data:`cmrlab.data.synthetic.VARIANTS`,
    e.g. ACDC's ``"long-cines"``; the real data has none). ``fallback=False`` turns the ``full``
    profile's fall-back to the synthetic copy into an error saying how to get the real data (what
    a thesis-scale training run wants). The real dataset's layout is checked (``check_dataset``)
    before it is returned.
    """
    from cmrlab.data import synthetic as _synthetic

    info = dataset_info(name)
    variant = _synthetic.check_variant(info.name, variant)
    fallback = check_bool("fallback", fallback)
    profile = run.profile if run is not None else get_profile(None)
    root = _data_root(data_root if data_root is not None else (run.data_root if run else None))
    seed = check_int("seed", seed, 0)
    reader = _reader(info)
    real = root / info.folder
    if synthetic is None:
        synthetic = profile.synthetic_data or (not real.exists() and fallback)
        if not profile.synthetic_data and not real.exists() and fallback:
            print(f"{info.title}: no real data at {real}; using the synthetic copy "
                  f"(python {info.script} fetches the real one)")
    if not synthetic:
        if not real.exists():
            raise CmrlabError(
                f"{info.title} is not under the data root: {real} does not exist. "
                f"Run `python {info.script} --data-root {root}` (it explains how to get it), "
                "or give the data root that holds it (--data-root DIR or $CMRLAB_DATA_ROOT), "
                "or ask for the synthetic copy (synthetic=True, or the fast profile)."
            )
        reader.check_dataset(real)
        return DatasetLocation(info.name, real, False, reader)
    n_cases = check_int("n_cases", n_cases if n_cases is not None else info.cases[profile.name], 1)
    folder = synthetic_folder(info.name, n_cases, seed, root, profile.name, variant)
    if not _is_complete(folder):  # another process may finish it first: its copy is as good
        _write(info, folder, n_cases, seed, profile.name, progress, exist_ok_if=_is_complete,
               variant=variant)
    return DatasetLocation(info.name, folder, True, reader, n_cases, seed, variant)
