"""Read and write medical image files with clear errors, plus the voxel/world geometry helpers.

Every reader of the course goes through these functions, so that bad input always ends in one
kind of error, :class:`cmrlab.errors.FileFormatError`, whose message reads ``"<path>: <problem>"``
(a missing file, a folder where a file was expected, an empty, truncated or non-image file, an
unsupported extension) instead of a deep nibabel, SimpleITK or pydicom traceback.

Readers
    :func:`load_nifti` (nibabel: NIfTI-1/2 ``.nii``/``.nii.gz``, Analyze 7.5 and NIfTI pairs
    ``.hdr``/``.img``), :func:`read_image` (SimpleITK: the same plus MetaImage ``.mha``/``.mhd``,
    NRRD ``.nrrd``/``.nhdr`` and one DICOM file), :func:`read_dicom` (pydicom: one DICOM file, its
    pixel data checked) and :func:`read_dicom_series` (SimpleITK: a folder of DICOM slices).

Writers
    :func:`save_nifti` and :func:`write_image` write to a hidden temporary file in the destination
    folder and then rename it over the destination (``os.replace``, atomic on one file system), so
    a failed or interrupted write never leaves a half-written file behind.

Geometry
    An image is an array plus a 4×4 *affine* matrix :math:`A` that maps a voxel index
    :math:`(i, j, k)` to a position :math:`(x, y, z)` in millimetres in the scanner's world frame,
    :math:`[x, y, z, 1]^T = A\\,[i, j, k, 1]^T`. nibabel (like NIfTI) uses the **RAS+** world
    frame: +x points to the patient's Right, +y to Anterior, +z to Superior. SimpleITK (like
    DICOM) uses **LPS+**: +x to Left, +y to Posterior, +z to Superior. The two differ by the sign
    of x and y. :func:`voxel_to_world`, :func:`world_to_voxel`, :func:`orientation_codes`,
    :func:`spacing_from_affine` and :func:`sitk_to_nibabel_affine` are the one place the course does
    this arithmetic.
"""
from __future__ import annotations

import contextlib
import difflib
import gzip
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from nibabel.spatialimages import SpatialImage
from pydicom.errors import InvalidDicomError

from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import atomic_write

__all__ = [
    "load_nifti",
    "orientation_codes",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "save_nifti",
    "sitk_to_nibabel_affine",
    "spacing_from_affine",
    "voxel_to_world",
    "world_to_voxel",
    "write_image",
]

PathLike = Union[str, os.PathLike]

#: Extensions :func:`load_nifti` reads (nibabel).
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img")
#: Extensions :func:`read_image` reads (SimpleITK), with the format's name. A file without an
#: extension is read as DICOM, as scanners often write them.
SITK_FORMATS = {
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
    ".hdr": "Analyze/NIfTI-pair",
    ".img": "Analyze/NIfTI-pair",
    ".mha": "MetaImage",
    ".mhd": "MetaImage",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD",
    ".dcm": "DICOM",
    ".ima": "DICOM",
    "": "DICOM",
}
#: Extensions the atomic writers accept: single-file formats only (a .hdr/.img or .mhd/.raw pair
#: is two files, which cannot be replaced in one atomic step).
SAVE_NIFTI_SUFFIXES = (".nii", ".nii.gz")
WRITE_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".nrrd")

_NIFTI1_HEADER_BYTES = 348  # also the size of an Analyze 7.5 header
_NIFTI2_HEADER_BYTES = 540
_DATA_ROOT_HINT = "the data root ($CMRLAB_DATA_ROOT, default ~/cmrlab-data)"


# ----------------------------------------------------------------------------------------------
# Checks shared by every reader
# ----------------------------------------------------------------------------------------------
def _as_path(path: PathLike, argument: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(
            f"{argument} must be a file path (str or pathlib.Path), got {type(path).__name__}"
        )
    return Path(path).expanduser()


def _suffix(path: Path, known: tuple[str, ...] | None = None) -> str:
    """The file's extension in lower case, recognising double ones such as ``.nii.gz``."""
    name = path.name.lower()
    for suffix in sorted(known or SITK_FORMATS, key=len, reverse=True):
        if suffix and name.endswith(suffix):
            return suffix
    return Path(name).suffix


def _not_found_problem(path: Path, what: str = "file") -> str:
    parent = path.parent
    if not parent.is_dir():
        return (
            f"{what} not found, and its folder {parent} does not exist either: check the path "
            f"and {_DATA_ROOT_HINT}"
        )
    problem = f"{what} not found: check the path and {_DATA_ROOT_HINT}"
    try:
        siblings = [p.name for p in parent.iterdir()]
    except OSError:
        siblings = []
    close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.75)
    if close:
        problem += f"; did you mean {close[0]!r}?"
    return problem


def _check_file(path: Path) -> None:
    """Raise FileFormatError unless ``path`` is an existing, non-empty, readable file."""
    if not path.exists():
        raise FileFormatError(path, _not_found_problem(path))
    if path.is_dir():
        raise FileFormatError(
            path,
            "is a folder, not a file (a folder of DICOM slices is read with read_dicom_series)",
        )
    if not path.is_file():
        raise FileFormatError(path, "is not a regular file")
    try:
        with open(path, "rb") as f:
            first = f.read(1)
    except OSError as exc:
        raise FileFormatError(path, f"cannot be opened: {exc.strerror or exc}") from None
    if not first:
        raise FileFormatError(
            path, "is empty (0 bytes): an interrupted download or copy? Fetch it again"
        )


def _check_suffix(
    path: Path, allowed: tuple[str, ...] | dict, reader: str, hint: str = ""
) -> str:
    suffix = _suffix(path, tuple(allowed))
    if suffix not in allowed:
        listed = ", ".join(s for s in allowed if s) + (", or no extension" if "" in allowed else "")
        shown = suffix or "(none)"
        raise FileFormatError(
            path, f"unsupported file extension {shown!r}: {reader} reads {listed}{hint}"
        )
    return suffix


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable >= 0.95 * len(head)


def _text_hint(head: bytes) -> str:
    return "; it starts like a text file" if _looks_like_text(head) else ""


def _raw_head(path: Path, n: int = 256) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


@contextlib.contextmanager
def _quiet_sitk() -> Iterator[None]:
    """Silence ITK's warnings printed on stderr (e.g. 'Analyze file is deprecated') for a while."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


# ----------------------------------------------------------------------------------------------
# NIfTI / Analyze (nibabel)
# ----------------------------------------------------------------------------------------------
def _pair_partner(path: Path) -> Path:
    """The other half of an Analyze or NIfTI pair: ``x.hdr`` ↔ ``x.img`` (same letter case)."""
    other = ".img" if path.suffix.lower() == ".hdr" else ".hdr"
    return path.with_suffix(other.upper() if path.suffix.isupper() else other)


def _gunzipped_size(path: Path) -> int:
    """Decompress ``path`` as a stream and return its length; truncation or corruption → error."""
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                total += len(chunk)
    except EOFError:
        raise FileFormatError(
            path,
            "is truncated: its compressed data stop before the end-of-stream marker (an "
            "interrupted download or copy? Fetch it again)",
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise FileFormatError(path, f"has corrupt compressed data ({exc})") from None
    return total


def _read_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a file, decompressed first when it is gzip-compressed."""
    try:
        if _suffix(path) == ".nii.gz":
            with gzip.open(path, "rb") as f:
                return f.read(n)
        with open(path, "rb") as f:
            return f.read(n)
    except EOFError:
        return b""  # the compressed stream ends before n bytes: reported as too short
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise FileFormatError(path, f"has corrupt compressed data ({exc})") from None


def _explain_header_failure(path: Path, exc: Exception) -> str:
    """Say in plain words why nibabel could not read a NIfTI/Analyze header."""
    head = _read_head(path, _NIFTI2_HEADER_BYTES)
    after = " after decompression" if _suffix(path) == ".nii.gz" else ""
    if len(head) < _NIFTI1_HEADER_BYTES:
        return (
            f"is too short to be a NIfTI/Analyze image: it holds {len(head)} bytes{after}, fewer "
            f"than the {_NIFTI1_HEADER_BYTES}-byte header (truncated, or not an image file)"
            + _text_hint(head)
        )
    sizes = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
    if not sizes & {_NIFTI1_HEADER_BYTES, _NIFTI2_HEADER_BYTES}:
        return (
            "is not a NIfTI/Analyze image: its first 4 bytes should hold the header size "
            f"{_NIFTI1_HEADER_BYTES} (or {_NIFTI2_HEADER_BYTES} for NIfTI-2)" + _text_hint(head)
        )
    return f"has a NIfTI/Analyze header that nibabel cannot read ({type(exc).__name__}: {exc})"


def _open_nifti(path: Path) -> SpatialImage:
    """Check a NIfTI/Analyze file thoroughly and return it opened by nibabel (data not yet read).

    Checks: the file (and the other half of a .hdr/.img pair) exists and is not empty, a ``.gz``
    file really is gzip data, the header parses, and the file holds all the voxel bytes the header
    promises (offset + voxel count × bytes per voxel). SimpleITK reads a truncated NIfTI file
    without complaint, filling the missing voxels, hence this check before either reader runs.
    """
    _check_file(path)
    suffix = _check_suffix(
        path, NIFTI_SUFFIXES, "load_nifti", " (read_image reads MetaImage, NRRD and DICOM too)"
    )
    if suffix in (".hdr", ".img"):
        partner = _pair_partner(path)
        if not partner.exists():
            raise FileFormatError(
                path,
                f"the other half of this Analyze/NIfTI pair, {partner.name}, is missing: a .hdr "
                "header and its .img voxel data must sit side by side",
            )
        _check_file(partner)
    header_path = path if suffix != ".img" else _pair_partner(path)
    if suffix == ".nii.gz":
        head = _raw_head(path)
        if head[:2] != b"\x1f\x8b":
            raise FileFormatError(
                path,
                "is not gzip-compressed although its name ends in .gz" + _text_hint(head)
                + " (rename an uncompressed NIfTI file to .nii)",
            )
        decompressed_size = _gunzipped_size(path)  # a cut-short stream is reported here
    try:
        img = nib.load(os.fspath(path), mmap=False)
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        raise FileFormatError(header_path, _explain_header_failure(header_path, exc)) from None

    data_path = Path(img.file_map["image"].filename)
    dtype = img.get_data_dtype()
    n_voxels = math.prod(img.shape)
    offset = int(getattr(img.dataobj, "offset", 0))
    expected = offset + n_voxels * dtype.itemsize
    if suffix == ".nii.gz":
        available, what = decompressed_size, "decompressed data hold"
    else:
        available, what = data_path.stat().st_size, "file holds"
    if available < expected:
        shape = "×".join(str(s) for s in img.shape)
        with_header = f" including the {offset}-byte header" if offset else ""
        raise FileFormatError(
            data_path,
            f"is truncated: the header describes {shape} voxels of {dtype} ({expected:,} bytes"
            f"{with_header}) but the {what} only {available:,} bytes",
        )
    return img


def load_nifti(path: PathLike) -> SpatialImage:
    """Read a NIfTI-1/2 (``.nii``, ``.nii.gz``) or Analyze 7.5 / NIfTI pair (``.hdr``/``.img``) file.

    Returns the nibabel image **with its voxels already in memory**, so every problem with the file
    shows up here as a :class:`~cmrlab.errors.FileFormatError` and not later, deep inside a
    training loop. ``np.asanyarray(img.dataobj)`` gives the voxels in their stored type (scaled by
    ``scl_slope``/``scl_inter`` when the header asks for it, then floating point);
    ``img.get_fdata()`` gives them as float64. ``img.affine`` maps voxel indices to RAS+
    millimetres and ``img.header.get_zooms()`` gives the voxel spacing (and TR for 4-D series).

    Raises FileFormatError for a missing file, a folder, an empty file, an unsupported extension,
    a file that is not NIfTI/Analyze, or a truncated or corrupt one.
    """
    path = _as_path(path)
    img = _open_nifti(path)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        raise FileFormatError(
            path, f"voxel data cannot be read, the file is damaged ({type(exc).__name__}: {exc})"
        ) from None
    loaded = img.__class__(data, img.affine, img.header, extra=img.extra)
    loaded.set_filename(os.fspath(path))
    return loaded


# ----------------------------------------------------------------------------------------------
# DICOM (pydicom) and every format SimpleITK reads
# ----------------------------------------------------------------------------------------------
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _has_dicom_marker(path: Path) -> bool:
    """True when bytes 128–131 spell ``DICM``, the marker of a DICOM Part 10 file."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_dicom(path: PathLike) -> pydicom.Dataset:
    """Read one DICOM file with pydicom and check that its pixel data decode.

    The returned :class:`pydicom.Dataset` gives the tags by keyword (``ds.Modality``,
    ``ds.PixelSpacing``, ``ds.ImagePositionPatient``...) and the decoded pixels as
    ``ds.pixel_array`` (already decoded once here, and cached). Any extension is accepted, since
    scanners often write DICOM files with none.

    Raises FileFormatError for a missing file, a folder, an empty file, a file that is not DICOM
    (no ``DICM`` marker after the 128-byte preamble), a DICOM file without pixel data, a file cut
    short (fewer pixel bytes than Rows × Columns × Samples × Frames × BitsAllocated/8) and pixel
    data that cannot be decoded.
    """
    path = _as_path(path)
    _check_file(path)
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise FileFormatError(
            path,
            "is not a DICOM file: the 'DICM' marker after the 128-byte preamble is missing"
            + _text_hint(_raw_head(path))
            + " (an old DICOM file written without the preamble opens with "
            "pydicom.dcmread(path, force=True))",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        raise FileFormatError(
            path,
            f"DICOM tags cannot be parsed, the file is truncated or damaged "
            f"({type(exc).__name__}: {exc})",
        ) from None
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        raise FileFormatError(
            path, "is truncated: it ends inside the DICOM file meta information (no Transfer "
            "Syntax UID)"
        )
    if not any(tag in ds for tag in _PIXEL_TAGS):
        raise FileFormatError(
            path,
            "has no pixel data: the file is truncated (cut short before the pixels) or is a "
            "DICOM object that holds no image (e.g. a report)",
        )
    syntax = ds.file_meta.TransferSyntaxUID
    if "PixelData" in ds and not syntax.is_compressed and all(
        tag in ds for tag in ("Rows", "Columns", "BitsAllocated")
    ):
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        n_values = int(ds.Rows) * int(ds.Columns) * frames * samples
        expected = math.ceil(n_values * int(ds.BitsAllocated) / 8)
        available = len(ds.PixelData)
        if available < expected:
            raise FileFormatError(
                path,
                f"is truncated: its pixel data hold {available:,} bytes but {ds.Rows}×"
                f"{ds.Columns} pixels × {frames} frame(s) × {samples} sample(s) at "
                f"{ds.BitsAllocated} bits need {expected:,}",
            )
    try:
        ds.pixel_array  # noqa: B018 - decodes and caches the pixels
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        hint = (
            " (a decoder plugin such as pylibjpeg or python-gdcm may be missing)"
            if syntax.is_compressed
            else ""
        )
        raise FileFormatError(
            path, f"pixel data ({syntax.name}) cannot be decoded: {exc}{hint}"
        ) from None
    return ds


def read_image(path: PathLike) -> sitk.Image:
    """Read an image with SimpleITK: NIfTI, Analyze, MetaImage, NRRD or one DICOM file.

    Supported extensions: ``.nii``, ``.nii.gz``, ``.hdr``/``.img``, ``.mha``, ``.mhd`` (header
    with a separate ``.raw``), ``.nrrd``, ``.nhdr``, and ``.dcm``/``.ima``/none for DICOM. The
    returned :class:`SimpleITK.Image` carries the geometry in SimpleITK's LPS+ world frame:
    ``GetSpacing()``, ``GetOrigin()`` (world position of voxel 0), ``GetDirection()`` (the unit
    axis directions, row-major); :func:`sitk_to_nibabel_affine` turns them into nibabel's RAS+
    affine. Note that ``SimpleITK.GetArrayFromImage`` returns the axes in reverse order
    (z, y, x) compared with nibabel's (x, y, z).

    NIfTI/Analyze files are first checked like :func:`load_nifti` does and DICOM files like
    :func:`read_dicom` does, because SimpleITK reads some truncated files of those formats without
    an error. Raises FileFormatError as those do; for MetaImage/NRRD it separates "not an image of
    this format" (the header does not parse) from "truncated or damaged" (the header parses, the
    voxels do not).
    """
    path = _as_path(path)
    _check_file(path)
    suffix = _check_suffix(path, SITK_FORMATS, "read_image")
    fmt = SITK_FORMATS[suffix]
    if suffix in NIFTI_SUFFIXES:
        _open_nifti(path)
    elif fmt == "DICOM":
        read_dicom(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    with _quiet_sitk():
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise FileFormatError(
                path,
                f"is not a valid {fmt} file: SimpleITK cannot parse its header"
                + _text_hint(_raw_head(path)),
            ) from None
        try:
            return reader.Execute()
        except RuntimeError:
            size = "×".join(str(s) for s in reader.GetSize())
            pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
            separate = (
                " (with a .mhd/.nhdr header the voxels live in the separate data file it names)"
                if suffix in (".mhd", ".nhdr")
                else ""
            )
            raise FileFormatError(
                path,
                f"is truncated or damaged: its {fmt} header describes {size} voxels of {pixel} "
                f"but the voxel data cannot be read in full{separate}",
            ) from None


def read_dicom_series(folder: PathLike, series_id: str | None = None) -> sitk.Image:
    """Read the DICOM slices in ``folder`` as one SimpleITK volume, sorted along the slice normal.

    ``series_id`` chooses a series (its Series Instance UID) when the folder holds several; with
    ``None`` the folder must hold exactly one. Files that carry the DICOM marker but that GDCM
    (SimpleITK's DICOM library) could not read are checked with :func:`read_dicom`, because GDCM
    silently leaves damaged slices out, which would return a volume with a slice missing.

    Raises FileFormatError when the folder is missing, is a file, holds no DICOM series, holds
    several and none was chosen, holds a damaged slice, or its series cannot be read;
    ArgumentError when ``series_id`` is not in the folder.
    """
    folder = _as_path(folder, "folder")
    if not folder.exists():
        raise FileFormatError(folder, _not_found_problem(folder, "folder"))
    if not folder.is_dir():
        raise FileFormatError(
            folder,
            "is a file, not a folder: read_dicom_series takes the folder that holds one series' "
            "slice files (read one file with read_dicom or read_image)",
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    with _quiet_sitk():
        ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(os.fspath(folder)))
        names = {sid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(os.fspath(folder), sid)
                 for sid in ids}
    listed = {Path(n).name for file_names in names.values() for n in file_names}
    for file in files:
        if file.name not in listed and _has_dicom_marker(file):
            read_dicom(file)  # raises a FileFormatError naming the damaged slice
    if not ids:
        raise FileFormatError(
            folder, f"holds no DICOM series: none of its {len(files)} file(s) is a DICOM image"
        )
    if series_id is None:
        if len(ids) > 1:
            raise FileFormatError(
                folder,
                f"holds {len(ids)} DICOM series ({', '.join(ids)}): pass series_id= to choose one",
            )
        series_id = ids[0]
    elif series_id not in ids:
        raise ArgumentError(
            f"series_id {series_id!r} is not in {folder}: it holds {', '.join(ids)}"
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names[series_id])
    with _quiet_sitk():
        try:
            return reader.Execute()
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1].strip()
            raise FileFormatError(
                folder, f"DICOM series {series_id} cannot be read as a volume ({reason})"
            ) from None


# ----------------------------------------------------------------------------------------------
# Atomic writers
# ----------------------------------------------------------------------------------------------
def _nifti_safe_array(array: np.ndarray) -> np.ndarray:
    """Bring an array to a data type NIfTI stores portably (bool → uint8, 64-bit ints → int32)."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype in (np.int64, np.uint64):
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ArgumentError(
                f"img_or_array: {array.dtype} values outside the int32 range cannot be stored "
                "portably in NIfTI; convert them to float first"
            )
        return array.astype(np.int32)
    if array.dtype.kind not in "biufc":
        raise ArgumentError(f"img_or_array: NIfTI cannot store values of type {array.dtype}")
    return array


def save_nifti(
    img_or_array: SpatialImage | np.ndarray,
    path: PathLike,
    affine: np.ndarray | None = None,
) -> Path:
    """Save a nibabel image, or an array plus an affine, as ``.nii`` or ``.nii.gz``, atomically.

    For an array, ``affine`` is the 4×4 voxel → RAS+ millimetre matrix (``None``: the identity,
    i.e. 1 mm voxels with voxel (0, 0, 0) at the world origin); booleans are stored as uint8 and
    64-bit integers as int32. A nibabel image carries its own affine, so ``affine`` must then stay
    ``None``. Analyze and other nibabel images are converted to NIfTI-1. Missing folders are
    created. Returns the path written.
    """
    path = _as_path(path)
    _check_suffix(path, SAVE_NIFTI_SUFFIXES, "save_nifti")
    if isinstance(img_or_array, SpatialImage):
        if affine is not None:
            raise ArgumentError(
                "affine: leave it None when saving a nibabel image, which carries its own affine"
            )
        img = img_or_array
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            img = nib.Nifti1Image.from_image(img)
    else:
        try:
            array = np.asarray(img_or_array)
        except Exception as exc:  # noqa: BLE001 - e.g. a CUDA tensor
            raise ArgumentError(
                f"img_or_array must be a nibabel image or an array, got {type(img_or_array).__name__}"
                f" ({exc})"
            ) from None
        if not 1 <= array.ndim <= 7:
            raise ArgumentError(
                f"img_or_array: NIfTI stores arrays of 1 to 7 dimensions, got shape {array.shape}"
            )
        matrix = np.eye(4) if affine is None else _as_affine(affine)
        img = nib.Nifti1Image(_nifti_safe_array(array), matrix)
        img.header.set_xyzt_units("mm", "sec")
    return atomic_write(path, lambda tmp: nib.save(img, os.fspath(tmp)))


def write_image(image: sitk.Image, path: PathLike, compress: bool = False) -> Path:
    """Write a SimpleITK image as ``.nii``, ``.nii.gz``, ``.mha`` or ``.nrrd``, atomically.

    ``compress`` compresses the voxels of ``.mha``/``.nrrd`` files (``.nii.gz`` is always
    compressed). Two-file formats (``.mhd``/``.raw``, ``.hdr``/``.img``, ``.nhdr``) are refused:
    two files cannot be replaced in one atomic step. Missing folders are created. Returns the
    path written.
    """
    if not isinstance(image, sitk.Image):
        raise ArgumentError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    path = _as_path(path)
    suffix = _suffix(path)
    if suffix in (".mhd", ".hdr", ".img", ".nhdr"):
        raise FileFormatError(
            path,
            f"unsupported file extension {suffix!r} for writing: it makes two files (header and "
            "data), which cannot be written atomically; use .mha, .nrrd, .nii or .nii.gz",
        )
    _check_suffix(path, WRITE_IMAGE_SUFFIXES, "write_image")

    def write(tmp: Path) -> None:
        with _quiet_sitk():
            sitk.WriteImage(image, os.fspath(tmp), bool(compress))

    return atomic_write(path, write)


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------
def _as_affine(affine: np.ndarray) -> np.ndarray:
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4):
        raise ArgumentError(f"affine must be a 4×4 matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ArgumentError("affine must hold finite numbers only (it has NaN or infinity)")
    return matrix


def _as_points(points: np.ndarray, argument: str) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ArgumentError(
            f"{argument} must hold 3 coordinates along its last axis (shape (3,) or (N, 3)), "
            f"got shape {array.shape}"
        )
    return array


def voxel_to_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of voxel indices: :math:`x = M\\,(i, j, k)^T + t`.

    ``M = affine[:3, :3]`` holds the voxel axes (direction × spacing) as columns and
    ``t = affine[:3, 3]`` is the world position of voxel (0, 0, 0). ``ijk`` has shape (3,) or
    (..., 3) and may hold fractional indices; the result has the same shape.
    """
    matrix = _as_affine(affine)
    points = _as_points(ijk, "ijk")
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def world_to_voxel(affine: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Voxel indices (fractional) of world points (mm): :math:`(i, j, k)^T = M^{-1}(x - t)`.

    The inverse of :func:`voxel_to_world`. Round with ``np.rint(...).astype(int)`` for the nearest
    voxel, and check the result lies inside the array before indexing with it. ``xyz`` has shape
    (3,) or (..., 3).
    """
    matrix = _as_affine(affine)
    points = _as_points(xyz, "xyz")
    flat = points.reshape(-1, 3) - matrix[:3, 3]
    try:
        ijk = np.linalg.solve(matrix[:3, :3], flat.T).T
    except np.linalg.LinAlgError:
        raise ArgumentError(
            "affine is singular (a zero voxel spacing?), so world points have no voxel index"
        ) from None
    return ijk.reshape(points.shape)


def orientation_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """The anatomical direction each voxel axis points to, e.g. ``('R', 'A', 'S')``.

    Letter n says towards which side of the patient index n grows, in nibabel's RAS+ world:
    R/L (right/left), A/P (anterior/posterior), S/I (superior/inferior). An oblique axis gets the
    letter of the world axis it is closest to (nibabel's ``aff2axcodes``).
    """
    return tuple(nib.aff2axcodes(_as_affine(affine)))  # type: ignore[return-value]


def spacing_from_affine(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing (mm) along each voxel axis: :math:`s_n = \\lVert A_{1:3,\\,n} \\rVert`.

    The length of the world step made when index n grows by one, i.e. the norm of column n of
    the affine's 3×3 part. It equals the header's zooms for a consistent NIfTI file.
    """
    matrix = _as_affine(affine)
    return np.sqrt((matrix[:3, :3] ** 2).sum(axis=0))


def sitk_to_nibabel_affine(image: sitk.Image) -> np.ndarray:
    """nibabel's RAS+ affine of a SimpleITK image, from its LPS+ origin, spacing and direction.

    SimpleITK maps index :math:`p` to the LPS+ point :math:`o + D\\,\\mathrm{diag}(s)\\,p`
    (origin o, direction D, spacing s). Flipping the first two world axes gives RAS+:
    :math:`A = \\mathrm{diag}(-1, -1, 1, 1) \\begin{bmatrix} D\\,\\mathrm{diag}(s) & o \\\\ 0 & 1
    \\end{bmatrix}`. For a 4-D image the first three axes are used (the fourth is time); a 2-D
    image gets a third axis of spacing 1 at z = 0. The voxel indices are SimpleITK's (i, j, k),
    which are nibabel's array indices; ``GetArrayFromImage`` reverses them.
    """
    if not isinstance(image, sitk.Image):
        raise ArgumentError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    dim = image.GetDimension()
    if dim not in (2, 3, 4):
        raise ArgumentError(f"image must have 2, 3 or 4 dimensions, got {dim}")
    n = min(dim, 3)
    direction = np.eye(3)
    direction[:n, :n] = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)[:n, :n]
    spacing = np.ones(3)
    spacing[:n] = image.GetSpacing()[:n]
    origin = np.zeros(3)
    origin[:n] = image.GetOrigin()[:n]
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing  # scales column n by spacing n
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
