"""Sunnybrook Cardiac Data (2009 LV segmentation challenge): write and read its on-disk layout.

Layout (``root`` is the ``Sunnybrook`` folder)::

    scd_patientdata.csv                          PatientID (SCD0000101) ↔ OriginalID (SC-HF-I-1), ...
    SCD_IMAGES_01/SCD0000101/CINESAX_300/IM-0001-0001.dcm ... IM-0001-0200.dcm
    SCD_ManualContours/SC-HF-I-01/contours-manual/IRCCI-expert/IM-0001-0048-icontour-manual.txt
                                                              IM-0001-0048-ocontour-manual.txt

The cine is one DICOM file per slice and phase (20 phases over the heart cycle, scanned from
end-diastole). A contour file holds one closed outline, one ``x y`` point per line, in pixel
coordinates of the image ``IM-…-NNNN.dcm`` with the same number NNNN: ``x`` along the columns and
``y`` along the rows of the DICOM pixel matrix. ``i`` files trace the endocardium (inner outline
of the LV myocardium; papillary muscles and trabeculations are inside it), ``o`` files the
epicardium (outer outline). Contours exist at ED and ES. The contour prefix ``IM-0001`` is the
original series number and may differ from that of the DICOM files, so images and contours are
matched by NNNN alone. ``scd_patientdata.csv`` maps the image ids to the original ids, whose
trailing number the contour folder zero-pads (SC-HF-I-1 → SC-HF-I-01).

What was checked against public loaders (search tool): the contour folder path and naming, the
``x = column, y = row`` order, matching by NNNN only, the id-mapping CSV with columns
``PatientID, OriginalID, Gender, Age, Pathology``. What is **assumed** (could not be confirmed):
that NNNN = slice × 20 + phase + 1 (slice-major; the writer numbers files so, the reader does not
rely on it: it sorts the DICOM files by position along the slice normal and by trigger time), the
exact wording of the CSV's ``Pathology`` column (the reader takes the group from ``OriginalID``),
which SCD_IMAGES_0n folder holds which patient (the writer puts nine per folder), and the
integer-pixel-centre origin of the contour coordinates (as for ``skimage``).

Masks filled from the contours use the ACDC values: 3 LV cavity (inside the endocardium),
2 LV myocardium (inside the epicardium, outside the endocardium).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import DSfloat
from skimage.draw import polygon2mask
from skimage.measure import find_contours

from cmrlab.checks import check_choice, check_number
from cmrlab.data import _formats as fmt
from cmrlab.data.dicom import tag_numbers
from cmrlab.data.io import PathLike, read_dicom, spacing_from_affine
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import atomic_write, atomic_write_text, read_text

__all__ = [
    "GROUPS",
    "LABELS",
    "PATIENT_CSV",
    "SunnybrookCase",
    "check_dataset",
    "fill_contours",
    "list_cases",
    "read_case",
    "read_contour",
    "trace_outline",
    "write_case",
]

#: Values of the masks filled from the contours (ACDC values; Sunnybrook has no RV).
LABELS: dict[int, str] = {0: "background", 2: "LV myocardium", 3: "LV cavity"}
#: Patient groups (Radau et al. 2009): heart failure with / without infarction, hypertrophy, normal.
GROUPS: dict[str, str] = {
    "HF-I": "heart failure with infarction",
    "HF-NI": "heart failure without infarction",
    "HYP": "LV hypertrophy",
    "N": "normal",
}
PATIENT_CSV = "scd_patientdata.csv"
CSV_COLUMNS = ("PatientID", "OriginalID", "Gender", "Age", "Pathology")
CONTOURS_DIR = "SCD_ManualContours"
EXPERT_DIR = ("contours-manual", "IRCCI-expert")
_CASE_RE = re.compile(r"^SCD\d{7}$")
_ORIGINAL_RE = re.compile(r"^SC-(HF-I|HF-NI|HYP|N)-(\d+)$")
_DICOM_RE = re.compile(r"^IM-(\d{4})-(\d{4,})\.dcm$", re.IGNORECASE)
_CONTOUR_RE = re.compile(r"^IM-(\d{4})-(\d{4,})-([a-z0-9]+)contour-manual\.txt$")
_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS+ <-> LPS+ (its own inverse)


@dataclass(frozen=True, eq=False)
class SunnybrookCase:
    """One Sunnybrook patient as read from disk (arrays in (X, Y, Z, T) order, X = DICOM column).

    ``image4d`` float32 (rescale slope/intercept applied); ``labels4d`` uint8 masks filled from
    the contours (:data:`LABELS`; zero at frames without contours); ``contours`` maps
    ``(slice, phase)`` to ``{"i": (N, 2) array, "o": ...}`` of ``x y`` pixel coordinates (= X, Y
    array indices); ``contour_frames`` the phases that have contours; ``image_numbers`` (Z, T) the
    NNNN of each DICOM file; ``trigger_times`` (T,) ms; ``affine`` voxel → RAS+ mm.
    """

    id: str
    original_id: str
    group: str
    folder: Path
    image4d: np.ndarray
    labels4d: np.ndarray
    spacing: np.ndarray
    affine: np.ndarray
    trigger_times: np.ndarray
    image_numbers: np.ndarray
    contours: Mapping[tuple[int, int], Mapping[str, np.ndarray]]
    contour_frames: tuple[int, ...]
    info: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.image4d.shape[3])

    def ed_es(self) -> tuple[int, int]:
        """(ED, ES) 0-based phases among :attr:`contour_frames`: the largest and the smallest LV
        cavity volume (the dataset stores no ED/ES numbers; cines start at ED)."""
        if not self.contour_frames:
            raise ArgumentError(f"{self.id} has no contours, so no ED/ES")
        volumes = {t: int((self.labels4d[..., t] == 3).sum()) for t in self.contour_frames}
        return max(volumes, key=volumes.get), min(volumes, key=volumes.get)


# ----------------------------------------------------------------------------------------------
# Contours
# ----------------------------------------------------------------------------------------------
def _polygon_area(points: np.ndarray) -> float:
    """Area of a closed polygon by the shoelace formula, ½|Σ (x_k y_{k+1} − x_{k+1} y_k)|."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def trace_outline(mask: np.ndarray) -> np.ndarray | None:
    """The outline of a 2-D binary mask at sub-pixel precision, as an (N, 2) array of (X, Y) index
    coordinates (None for an empty mask).

    ``skimage.measure.find_contours`` traces the 0.5 iso-line of the mask, half-way between pixel
    centres inside and outside; the mask is padded by one pixel first so that outlines touching the
    border close. When the mask has several pieces the outline enclosing the largest area is kept
    (a contour file holds one outline).
    """
    binary = np.asarray(mask, dtype=bool)
    if binary.ndim != 2:
        raise ArgumentError(f"mask must be 2-D, got shape {binary.shape}")
    if not binary.any():
        return None
    outlines = find_contours(np.pad(binary, 1).astype(np.float64), 0.5)
    best = max(outlines, key=_polygon_area) - 1.0
    if len(best) > 1 and np.allclose(best[0], best[-1]):
        best = best[:-1]  # closed outline: the first point is repeated at the end
    return best


def fill_contours(shape: tuple[int, int], endo: np.ndarray | None, epi: np.ndarray | None) -> np.ndarray:
    """The (X, Y) uint8 mask of one slice: 2 inside ``epi``, 3 inside ``endo`` (endo wins).

    Points are (X, Y) coordinates; a pixel is inside when its centre is inside the polygon
    (``skimage.draw.polygon2mask``).
    """
    mask = np.zeros(shape, dtype=np.uint8)
    if epi is not None:
        mask[polygon2mask(shape, epi)] = 2
    if endo is not None:
        mask[polygon2mask(shape, endo)] = 3
    return mask


def read_contour(path: PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read one contour file → (N, 2) float array of ``x y`` points.

    Each non-empty line must hold two numbers; at least 3 points; with ``shape`` (columns, rows
    of the image = X, Y sizes) every point must lie within the image (half a pixel of slack).
    A bad line → FileFormatError naming the file and the line.
    """
    path = fmt.as_path(path, "path")
    points = []
    for number, line in enumerate(read_text(path, what="contour file").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
        except ValueError:
            raise FileFormatError(
                path, f"line {number} {line.strip()[:80]!r} should hold two numbers 'x y' (pixel coordinates)"
            ) from None
        if shape is not None and not (-1.0 <= x <= shape[0] and -1.0 <= y <= shape[1]):
            raise FileFormatError(
                path, f"line {number}: point ({x}, {y}) lies outside the {shape[0]}×{shape[1]} image"
            )
        points.append((x, y))
    if len(points) < 3:
        raise FileFormatError(path, f"holds {len(points)} point(s); an outline needs at least 3")
    return np.asarray(points, dtype=float)


def _contour_text(points: np.ndarray) -> str:
    return "".join(f"{x:.2f} {y:.2f}\n" for x, y in points)


# ----------------------------------------------------------------------------------------------
# Paths and the id CSV
# ----------------------------------------------------------------------------------------------
def _contour_folder_name(original_id: str) -> str:
    """'SC-HF-I-1' → 'SC-HF-I-01': the contour folders zero-pad the trailing number to 2 digits."""
    return re.sub(r"(\d+)$", lambda m: m.group(1).zfill(2), original_id)


def _contour_dir(root: Path, original_id: str) -> Path:
    """``SCD_ManualContours/<SC-…-NN>/contours-manual/IRCCI-expert`` of one patient."""
    return root / CONTOURS_DIR / _contour_folder_name(original_id) / EXPERT_DIR[0] / EXPERT_DIR[1]


def _read_patients(root: Path) -> dict[str, dict[str, str]]:
    path = root / PATIENT_CSV
    if not path.exists():
        raise FileFormatError(path, "the id table is missing (it maps SCD image ids to the SC-* contour ids)")
    rows: dict[str, dict[str, str]] = {}
    for number, row in fmt.read_csv(path, ("PatientID", "OriginalID")):
        if not _ORIGINAL_RE.match(row["OriginalID"]):
            raise FileFormatError(
                path, f"line {number}: OriginalID {row['OriginalID'][:40]!r} is not like SC-HF-I-1, "
                "SC-HF-NI-3, SC-HYP-1 or SC-N-2"
            )
        if row["PatientID"] in rows:
            raise FileFormatError(path, f"line {number}: PatientID {row['PatientID'][:40]} appears twice")
        rows[row["PatientID"]] = row
    return rows


def _image_folders(root: Path) -> list[Path]:
    parts = sorted(p for p in root.glob("SCD_IMAGES_*") if p.is_dir())
    return [root, *parts]


def _series_folder(case_folder: Path) -> Path:
    series = sorted(p for p in case_folder.glob("CINESAX*") if p.is_dir())
    if not series:
        raise FileFormatError(case_folder, "holds no CINESAX_* folder (the short-axis cine series)")
    if len(series) > 1:
        raise FileFormatError(case_folder, f"holds {len(series)} CINESAX folders; expected one")
    return series[0]


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------
def _ds(value: float) -> DSfloat:
    return DSfloat(float(value), auto_format=True)


def _scaling(image: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) so that stored = round((value − intercept) / slope) fits in uint16."""
    low, high = float(image.min()), float(image.max())
    if image.dtype.kind in "iu" and low >= 0 and high <= 65535:
        return 1.0, 0.0
    if high == low:
        return 1.0, low
    return (high - low) / 65535.0, low


def write_case(
    root: PathLike,
    case_id: str,
    image4d: np.ndarray,
    lv_labels: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    contour_frames: Sequence[int],
    group: str = "N",
    original_id: str | None = None,
    affine: np.ndarray | None = None,
    time_step: float | None = None,
    slice_thickness: float | None = None,
    series_number: int = 300,
    images_folder: str | None = None,
    gender: str = "",
    age: str = "",
) -> Path:
    """Write one patient in the Sunnybrook layout under ``root``; return its CINESAX folder.

    ``image4d`` (X, Y, Z, T) becomes one 16-bit DICOM MR file per slice and phase, named
    ``IM-0001-NNNN.dcm`` with NNNN = z·T + t + 1, with the geometry of ``affine`` (voxel → RAS+
    mm, default ``diag(spacing)``; X runs along the DICOM columns, Y along the rows):
    PixelSpacing, SliceThickness (default the slice spacing), SpacingBetweenSlices,
    ImagePositionPatient, ImageOrientationPatient, SliceLocation, InstanceNumber = NNNN,
    TriggerTime = t·``time_step`` (ms; default 1000/T), CardiacNumberOfImages = T, and
    RescaleSlope/RescaleIntercept when the values are not already 16-bit integers.
    ``lv_labels`` (X, Y, Z, T) holds 3 = LV cavity and 2 = LV myocardium at the 0-based phases
    ``contour_frames`` (1 = RV is allowed and ignored; other frames are not read): for every slice
    with a cavity an ``i`` contour (its outline) and with myocardium an ``o`` contour (the outline
    of cavity + myocardium) are traced at sub-pixel precision. ``case_id`` looks like SCD0000101;
    ``original_id`` (default SC-<group>-<patient number>) names the contour folder; both go to
    scd_patientdata.csv. Every file is written atomically; identical inputs give identical bytes.
    """
    if not isinstance(case_id, str) or not _CASE_RE.match(case_id):
        raise ArgumentError(f"case_id must look like 'SCD0000101', got {case_id!r}")
    check_choice("group", group, GROUPS)
    patient_number = int(case_id[3:8])
    original_id = original_id or f"SC-{group}-{patient_number}"
    match = _ORIGINAL_RE.match(original_id) if isinstance(original_id, str) else None
    if match is None or match.group(1) != group:
        raise ArgumentError(
            f"original_id must look like 'SC-{group}-1' (its group must be {group}), got {original_id!r}"
        )
    image = fmt.as_image(image4d, "image4d", 4, keep_dtype=True)
    n_x, n_y, n_z, n_t = image.shape
    if n_z * n_t > 9999:
        raise ArgumentError(
            f"image4d has {n_z}×{n_t} slices×phases; file numbers NNNN allow at most 9999"
        )
    labels = fmt.as_labels(lv_labels, "lv_labels", (0, 1, 2, 3), image.shape)
    frames = sorted({int(t) for t in contour_frames})
    if not frames or any(not 0 <= t < n_t for t in frames):
        raise ArgumentError(
            f"contour_frames must be 0-based phases in 0..{n_t - 1}, got {list(contour_frames)}"
        )
    spacing_mm, matrix = fmt.geometry(spacing, affine)
    time_step = 1000.0 / n_t if time_step is None else fmt.as_time_step(time_step)
    thickness = spacing_mm[2] if slice_thickness is None else check_number(
        "slice_thickness", slice_thickness, 0.0, low_open=True)

    base = fmt.folder_to_write(root, "Sunnybrook folder")
    part = images_folder or f"SCD_IMAGES_{(patient_number - 1) // 9 + 1:02d}"
    series_dir = base / part / case_id / f"CINESAX_{int(series_number)}"

    # geometry: LPS+ directions of the voxel axes (X = DICOM columns, Y = DICOM rows)
    lps = _LPS @ matrix[:3, :3]
    row_dir = lps[:, 0] / spacing_mm[0]  # direction in which the column index (X) grows
    col_dir = lps[:, 1] / spacing_mm[1]  # direction in which the row index (Y) grows
    normal = np.cross(row_dir, col_dir)
    origin = _LPS @ matrix[:3, 3]
    slope, intercept = _scaling(image)
    stored = np.clip(np.rint((image.astype(np.float64) - intercept) / slope), 0, 65535).astype("<u2")
    def uid(*parts: object) -> str:  # deterministic UIDs: identical bytes for identical inputs
        return generate_uid(entropy_srcs=["cmrlab", "sunnybrook", case_id, *map(str, parts)])

    study_uid, frame_uid = uid("study"), uid("frame-of-reference")
    series_uid = uid("series", series_number)

    for z in range(n_z):
        position = origin + z * (lps[:, 2])
        for t in range(n_t):
            number = z * n_t + t + 1
            sop_uid = uid(series_number, number)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = sop_uid
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_uid
            ds.Modality = "MR"
            ds.Manufacturer = "cmrlab (synthetic)"
            ds.PatientID = case_id
            ds.PatientName = case_id
            ds.SeriesDescription = "CINESAX"
            ds.SeriesNumber = int(series_number)
            ds.InstanceNumber = number
            ds.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC"]
            ds.ImagePositionPatient = [_ds(v) for v in position]
            ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
            ds.PixelSpacing = [_ds(spacing_mm[1]), _ds(spacing_mm[0])]  # [row spacing, column spacing]
            ds.SliceThickness = _ds(thickness)
            ds.SpacingBetweenSlices = _ds(spacing_mm[2])
            ds.SliceLocation = _ds(float(np.dot(position, normal)))
            ds.TriggerTime = _ds(t * time_step)
            ds.CardiacNumberOfImages = n_t
            ds.Rows, ds.Columns = n_y, n_x
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = 0
            ds.RescaleSlope = _ds(slope)
            ds.RescaleIntercept = _ds(intercept)
            ds.RescaleType = "US"
            ds.PixelData = np.ascontiguousarray(stored[:, :, z, t].T).tobytes()  # rows = Y
            path = series_dir / f"IM-0001-{number:04d}.dcm"
            atomic_write(path, lambda tmp, ds=ds: ds.save_as(tmp, enforce_file_format=True))

    contour_dir = _contour_dir(base, original_id)
    for z in range(n_z):
        for t in frames:
            number = z * n_t + t + 1
            slice_labels = labels[:, :, z, t]
            for kind, mask in (("i", slice_labels == 3), ("o", np.isin(slice_labels, (2, 3)))):
                if kind == "o" and not (slice_labels == 2).any():
                    continue  # no myocardium drawn on this slice: no epicardium
                outline = trace_outline(mask)
                if outline is not None:
                    atomic_write_text(contour_dir / f"IM-0001-{number:04d}-{kind}contour-manual.txt",
                                      _contour_text(outline))

    rows = _read_patients(base) if (base / PATIENT_CSV).exists() else {}
    rows[case_id] = {"PatientID": case_id, "OriginalID": original_id, "Gender": gender, "Age": str(age),
                     "Pathology": GROUPS[group]}
    fmt.write_csv(base / PATIENT_CSV, CSV_COLUMNS, rows)
    return series_dir


# ----------------------------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------------------------
def _locate(root_or_folder: PathLike, case_id: str | None) -> tuple[Path, Path]:
    """(dataset root, patient image folder) from a root + id or from the patient folder."""
    path = fmt.as_path(root_or_folder, "root_or_folder")
    if case_id is None:
        fmt.require_folder(path, "Sunnybrook patient folder")
        if not _CASE_RE.match(path.name):
            raise FileFormatError(path, "is not a Sunnybrook patient folder (name like SCD0000101); "
                                  "or pass the dataset root and case_id")
        root = path.parent.parent if path.parent.name.startswith("SCD_IMAGES") else path.parent
        return root, path
    root = fmt.require_folder(path, "Sunnybrook folder")
    if not _CASE_RE.match(case_id):  # an original id such as SC-HF-I-01
        wanted = _contour_folder_name(case_id)
        matches = [pid for pid, row in _read_patients(root).items()
                   if _contour_folder_name(row["OriginalID"]) == wanted]
        if not matches:
            raise FileFormatError(root / PATIENT_CSV, f"has no patient with OriginalID {case_id}")
        case_id = matches[0]
    for folder in _image_folders(root):
        if (folder / case_id).is_dir():
            return root, folder / case_id
    raise FileFormatError(
        root / "SCD_IMAGES_01" / case_id, "patient folder not found under any SCD_IMAGES_* folder"
    )


def _read_series(series_dir: Path, root: Path):
    files = sorted(p for p in series_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() == ".dcm")
    if not files:
        raise FileFormatError(series_dir, "holds no .dcm files")
    records = []
    reference = None
    for path in files:
        ds = read_dicom(fmt.inside_dataset(root, path))
        iop = tag_numbers(path, ds, "ImageOrientationPatient", 6)
        ipp = tag_numbers(path, ds, "ImagePositionPatient", 3)
        pixel_spacing = tag_numbers(path, ds, "PixelSpacing", 2, positive=True)
        rows, columns = (int(n) for n in (*tag_numbers(path, ds, "Rows", 1),
                                          *tag_numbers(path, ds, "Columns", 1)))
        geometry = (rows, columns, *np.round(iop, 4), *np.round(pixel_spacing, 4))
        instance = int(tag_numbers(path, ds, "InstanceNumber", 1, 0)[0])
        trigger = float(tag_numbers(path, ds, "TriggerTime", 1, instance)[0])
        between = float(tag_numbers(path, ds, "SpacingBetweenSlices", 1,
                                     ds.get("SliceThickness", 1.0), positive=True)[0])
        if reference is None:
            reference = (path, geometry)
        elif geometry != reference[1]:
            raise FileFormatError(
                path, f"has a different size, orientation or pixel spacing than {reference[0].name}"
            )
        slope = float(tag_numbers(path, ds, "RescaleSlope", 1, 1.0)[0])
        intercept = float(tag_numbers(path, ds, "RescaleIntercept", 1, 0.0)[0])
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            pixels = ds.pixel_array.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        if not np.all(np.isfinite(pixels)):
            raise FileFormatError(path, f"RescaleSlope {slope:g} and RescaleIntercept {intercept:g} "
                                  "make the pixel values overflow float32")
        match = _DICOM_RE.match(path.name)
        number = int(match.group(2)) if match else instance
        records.append({
            "path": path, "ipp": ipp, "iop": iop, "spacing": pixel_spacing, "trigger": trigger,
            "instance": instance, "between": between, "number": number, "pixels": pixels.T,
        })
    return records


def read_case(root_or_folder: PathLike, case_id: str | None = None) -> SunnybrookCase:
    """Read one Sunnybrook patient → :class:`SunnybrookCase`.

    Give the dataset root and ``case_id`` (SCD0000101, or the original id SC-HF-I-01), or the
    patient folder ``…/SCD_IMAGES_0n/SCD0000101`` alone. The cine is built from the DICOM files of
    the CINESAX series sorted by position along the slice normal, then by trigger time; each
    slice must have the same number of phases and the slices must be evenly spaced. Contours are
    matched to images by the file number NNNN and filled into masks (3 LV cavity inside the
    endocardium, 2 myocardium between epi- and endocardium). Problems → FileFormatError naming
    the file (a damaged DICOM header, a geometry or rescale tag that is NaN, infinite or not a
    number, a bad contour line, a contour for a missing image, a file or folder that is a link
    leading out of the dataset folder...).
    """
    root, case_folder = _locate(root_or_folder, case_id)
    case_id = case_folder.name
    patients = _read_patients(root)
    if case_id not in patients:
        raise FileFormatError(root / PATIENT_CSV, f"has no row for PatientID {case_id}")
    row = patients[case_id]
    original_id = row["OriginalID"]
    fmt.inside_dataset(root, case_folder)
    series_dir = _series_folder(case_folder)
    records = _read_series(series_dir, root)

    first = records[0]
    row_dir, col_dir = first["iop"][:3], first["iop"][3:]
    normal = np.cross(row_dir, col_dir)
    # group the files into slices by their position along the normal (0.1 mm tolerance)
    by_slice: dict[float, list[dict]] = {}
    for record in sorted(records, key=lambda r: float(np.dot(r["ipp"], normal))):
        location = float(np.dot(record["ipp"], normal))
        if by_slice and location - max(by_slice) <= 0.1:
            by_slice[max(by_slice)].append(record)
        else:
            by_slice[round(location, 3)] = [record]
    locations = sorted(by_slice)
    counts = {len(by_slice[loc]) for loc in locations}
    if len(counts) != 1:
        detail = ", ".join(f"{loc} mm: {len(by_slice[loc])}" for loc in locations)
        raise FileFormatError(series_dir, f"slices have different numbers of phases ({detail})")
    n_t = counts.pop()
    n_z = len(locations)
    if n_z > 1:
        steps = np.diff(locations)
        if np.ptp(steps) > 0.05:
            raise FileFormatError(
                series_dir, f"slices are not evenly spaced (steps {np.round(steps, 2).tolist()} mm)"
            )
    slices = [sorted(by_slice[loc], key=lambda r: (r["trigger"], r["instance"])) for loc in locations]
    n_x, n_y = first["pixels"].shape
    image = np.empty((n_x, n_y, n_z, n_t), dtype=np.float32)
    numbers = np.empty((n_z, n_t), dtype=int)
    for z, phases in enumerate(slices):
        for t, record in enumerate(phases):
            image[:, :, z, t] = record["pixels"]
            numbers[z, t] = record["number"]
    triggers = np.array([r["trigger"] for r in slices[0]], dtype=float)

    spacing_x, spacing_y = float(first["spacing"][1]), float(first["spacing"][0])
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing_x
    lps[:3, 1] = col_dir * spacing_y
    if n_z > 1:
        lps[:3, 2] = (slices[-1][0]["ipp"] - slices[0][0]["ipp"]) / (n_z - 1)
    else:
        lps[:3, 2] = normal * first["between"]
    lps[:3, 3] = slices[0][0]["ipp"]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    spacing = spacing_from_affine(affine)

    where = {int(numbers[z, t]): (z, t) for z in range(n_z) for t in range(n_t)}
    contour_dir = _contour_dir(root, original_id)
    fmt.require_folder(contour_dir, "contour folder", f" (for {case_id} = {original_id})")
    contours: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for path in sorted(contour_dir.iterdir()):
        match = _CONTOUR_RE.match(path.name)
        if match is None or not path.is_file():
            continue
        number, kind = int(match.group(2)), match.group(3)
        if number not in where:
            raise FileFormatError(path, f"refers to image number {number:04d}, which {series_dir} does not hold")
        fmt.inside_dataset(root, path)
        contours.setdefault(where[number], {})[kind] = read_contour(path, (n_x, n_y))
    labels = np.zeros(image.shape, dtype=np.uint8)
    for (z, t), outlines in contours.items():
        labels[:, :, z, t] = fill_contours((n_x, n_y), outlines.get("i"), outlines.get("o"))
    frames = tuple(sorted({t for (_, t), outlines in contours.items() if {"i", "o"} & set(outlines)}))
    group = _ORIGINAL_RE.match(original_id).group(1)
    return SunnybrookCase(
        id=case_id, original_id=original_id, group=group, folder=series_dir, image4d=image,
        labels4d=labels, spacing=spacing, affine=affine, trigger_times=triggers,
        image_numbers=numbers, contours=contours, contour_frames=frames, info=dict(row),
    )


def list_cases(root: PathLike) -> list[Path]:
    """Patient image folders (SCD…) under ``root`` and its SCD_IMAGES_* folders, sorted by id."""
    base = fmt.require_folder(fmt.as_path(root, "root"), "Sunnybrook folder")
    found = [
        p for folder in _image_folders(base) for p in fmt.visible_dirs(folder)
        if _CASE_RE.match(p.name)
    ]
    return fmt.inside_all(base, sorted(found, key=lambda p: p.name))


def check_dataset(root: PathLike, *, deep: bool = False) -> fmt.DatasetReport:
    """Check the Sunnybrook layout under ``root``; count patients per images folder and group.

    The quick check reads the id CSV and checks each patient's CINESAX folder holds DICOM files
    and its contour folder exists; ``deep=True`` reads every patient with :func:`read_case`.
    Raises FileFormatError naming the first bad file.
    """
    base = fmt.require_folder(fmt.as_path(root, "root"), "Sunnybrook folder")
    patients = _read_patients(base)
    cases = list_cases(base)
    if not cases:
        raise FileFormatError(base, "holds no SCD_IMAGES_*/SCD* patient folders")
    problems = []
    unmatched = sorted(set(patients) - {c.name for c in cases})
    if unmatched:
        problems.append(f"{len(unmatched)} row(s) of {PATIENT_CSV} without images, e.g. {unmatched[0]}")
    parts, groups = [], []
    for folder in fmt.deep_progress(cases, "Sunnybrook check") if deep else cases:
        if deep:
            case = read_case(folder)
            group = case.group
        else:
            if folder.name not in patients:
                raise FileFormatError(base / PATIENT_CSV, f"has no row for PatientID {folder.name}")
            original_id = patients[folder.name]["OriginalID"]
            series = fmt.inside_dataset(base, _series_folder(folder))
            dicoms = [p for p in series.iterdir() if p.suffix.lower() == ".dcm"]
            if not dicoms:
                raise FileFormatError(series, "holds no .dcm files")
            fmt.inside_all(base, dicoms)
            contour_dir = _contour_dir(base, original_id)
            fmt.require_folder(contour_dir, "contour folder", f" (for {folder.name} = {original_id})")
            fmt.inside_dataset(base, contour_dir)
            group = _ORIGINAL_RE.match(original_id).group(1)
        parts.append(folder.parent.name if folder.parent != base else "(root)")
        groups.append(group)
    return fmt.DatasetReport(
        dataset="Sunnybrook", root=base, n_cases=len(cases),
        counts={"split": fmt.count(parts), "group": fmt.count(groups)},
        problems=tuple(problems), deep=deep,
    )
