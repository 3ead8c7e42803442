"""Kaggle Second Annual Data Science Bowl (2015/16, LV volumes from cine MRI): steps, then check.

    python data_scripts/kaggle_dsb.py [--data-root DIR] [--verify-only] [--deep]

Registration-only: Kaggle requires an account and acceptance of the competition rules, so this
script prints the steps and, once the files are in place, checks the layout itself (the data
have no segmentation masks, so there is no cmrlab format module for them):

- ``train/<id>/study/sax_*/*.dcm``: every study folder has at least one short-axis series with
  DICOM files (without ``--deep`` only the first 20 studies' series are opened);
- ``train.csv`` (and ``validate.csv`` if present): header ``Id,Systole,Diastole``, integer ids,
  volumes in mL as positive numbers, and an entry for every study folder of the split.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import _common
from cmrlab.errors import FileFormatError

INSTRUCTIONS = """
Kaggle Second Annual Data Science Bowl: 1140 cine MRI studies (500 train, 200 validate, 440
test) as DICOM, with the end-systolic and end-diastolic LV volumes (mL) for train and validate:
no masks, so it serves the course's volume-regression task (scored with the CRPS). Terms: the
competition rules on Kaggle (no redistribution).

1. Create a Kaggle account, then open
       https://www.kaggle.com/c/second-annual-data-science-bowl/rules
   and accept the competition rules (downloads are refused until you do).
2. Create an API token (Kaggle > Settings > API > "Create New Token") and save it as
   ~/.kaggle/kaggle.json (chmod 600 ~/.kaggle/kaggle.json).
3. pip install kaggle
   kaggle competitions download -c second-annual-data-science-bowl -p {folder}
4. Unzip the download in {folder}, and the train/validate archives inside it, so that:
       {folder}/train/<id>/study/sax_<n>/IM-xxxx-yyyy.dcm   (also 2ch_<n>, 4ch_<n>)
       {folder}/train.csv          (columns Id,Systole,Diastole)
       {folder}/validate/<id>/study/...   and   {folder}/validate.csv (optional)
5. Check it:
       python data_scripts/kaggle_dsb.py --data-root {root}
"""

HEADER = ["Id", "Systole", "Diastole"]


@dataclass(frozen=True)
class DSBReport:
    """What the layout check found: studies per split and volume rows per csv file."""

    root: Path
    studies: dict[str, int] = field(default_factory=dict)
    csv_rows: dict[str, int] = field(default_factory=dict)


def read_volumes(path: Path) -> dict[int, tuple[float, float]]:
    """Read ``Id,Systole,Diastole`` rows into ``{id: (systole_ml, diastole_ml)}``."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"cannot be read ({exc})") from None
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        found = rows[0] if rows else "nothing"
        raise FileFormatError(path, f"the header must be {','.join(HEADER)}, found {found}")
    volumes: dict[int, tuple[float, float]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            study, systole, diastole = int(row[0]), float(row[1]), float(row[2])
        except (ValueError, IndexError):
            raise FileFormatError(path, f"line {line}: expected an integer id and two volumes, "
                                        f"found {row}") from None
        if not (0 < systole <= diastole):
            raise FileFormatError(path, f"line {line}: volumes must satisfy 0 < Systole <= "
                                        f"Diastole, found {row}")
        volumes[study] = (systole, diastole)
    if not volumes:
        raise FileFormatError(path, "has a header but no rows")
    return volumes


def check_study(study: Path) -> None:
    """Raise :class:`FileFormatError` unless ``study`` has ``study/sax_*/`` with DICOM files."""
    series = sorted((study / "study").glob("sax_*"))
    if not series:
        raise FileFormatError(study, "has no study/sax_* short-axis series folder")
    for folder in series:
        if not any(folder.glob("*.dcm")):
            raise FileFormatError(folder, "has no .dcm files")


def check_dataset(root: Path, *, deep: bool = False) -> DSBReport:
    """Check the Kaggle DSB layout under ``root`` (``<data root>/KaggleDSB``); see the module doc."""
    if not (root / "train").is_dir():
        raise FileFormatError(root / "train", "is missing: unzip train.zip here")
    if not (root / "train.csv").is_file():
        raise FileFormatError(root / "train.csv", "is missing: it comes with the competition data")
    studies: dict[str, int] = {}
    rows: dict[str, int] = {}
    for split in ("train", "validate"):
        folder = root / split
        table = root / f"{split}.csv"
        if not folder.is_dir():
            continue
        ids = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)
        if not ids:
            raise FileFormatError(folder, "has no study folders")
        for index, study in enumerate(ids):
            if not study.name.isdigit():
                raise FileFormatError(study, "study folders must be named by their integer id")
            if deep or index < 20:
                check_study(study)
        studies[split] = len(ids)
        if table.is_file():
            volumes = read_volumes(table)
            missing = [p.name for p in ids if int(p.name) not in volumes]
            if missing:
                raise FileFormatError(table, f"has no volumes for studies {missing[:10]} "
                                             f"({len(missing)} in all)")
            rows[split] = len(volumes)
    return DSBReport(root=root, studies=studies, csv_rows=rows)


def main() -> int:
    args = _common.make_parser(__doc__, downloads=False).parse_args()
    root = _common.resolve_root(args)
    folder = root / "KaggleDSB"
    return _common.registration_only(
        "Kaggle DSB", folder, INSTRUCTIONS.format(folder=folder, root=root),
        lambda path: check_dataset(path, deep=args.deep), verify_only=args.verify_only)


if __name__ == "__main__":
    _common.run(main)
