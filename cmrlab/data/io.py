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

Header checks before any voxel is read
    Every reader parses the header first and refuses, before it allocates memory, an image whose
    voxels would take more than ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 2 GiB; pass a
    larger value for a genuinely bigger image), a ``.nii.gz`` whose stream expands beyond that
    limit, sizes of zero or below, and voxel spacings (NIfTI ``pixdim``, MetaImage
    ``ElementSpacing``, NRRD ``spacings``/``space directions``) that are zero, negative, NaN or
    infinite, and affines or origins that are not finite. NIfTI files that do not hold a volume
    (CIFTI-2 ``.dtseries.nii``/``.dscalar.nii``... files, intent codes 3000–3099, surfaces,
    matrices) are refused with a pointer to the right tool.

NaN and infinite voxels
    Every reader keeps NaN and ±inf voxel values exactly as stored, and none warns about them: NaN
    is routine in neuroimaging (outside-the-brain voxels of statistical maps). Pass
    ``require_finite=True`` to :func:`load_nifti` or :func:`read_image` to have such a file refused
    with a FileFormatError that counts the NaN and infinite voxels instead. (SimpleITK's own NIfTI
    reader silently turns them into 0; :func:`read_image` puts them back.)

Compressed DICOM
    RLE, deflate, JPEG baseline/extended 8-bit and JPEG 2000 are decoded by pydicom (natively and
    with Pillow). What pydicom cannot decode with the installed plugins (JPEG-LS, lossless JPEG,
    12-bit JPEG) is decoded by GDCM, which ships inside SimpleITK; what neither can decode is
    refused with a message naming the decoder package to install.

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
    this arithmetic (with nibabel's ``apply_affine``, ``voxel_sizes`` and ``aff2axcodes``).
"""
from __future__ import annotations

import contextlib
import difflib
import gzip
import locale
import math
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from nibabel.affines import apply_affine, voxel_sizes
from nibabel.cifti2 import Cifti2Image
from nibabel.nifti1 import intent_codes
from nibabel.orientations import aff2axcodes
from nibabel.spatialimages import SpatialImage
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from cmrlab.checks import check_bool, check_int, metadata_number
from cmrlab.errors import ArgumentError, FileFormatError
from cmrlab.files import atomic_write, inside

__all__ = [
    "load_nifti",
    "orientation_codes",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "save_labels_like",
    "save_map_like",
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

#: The most bytes a reader lets one image's voxels take in memory unless told otherwise (2 GiB):
#: a header that promises more (or a ``.nii.gz`` that expands to more) is refused before any
#: allocation. Every reader takes ``max_bytes=`` to raise or lower it.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: CIFTI-2 file types (``<name>.<type>.nii``): matrices over brain models, not volumes.
CIFTI_TYPES = (
    "dconn", "dtseries", "pconn", "ptseries", "dscalar", "dlabel", "pscalar", "pdconn", "dpconn",
    "pconnseries", "pconnscalar",
)
#: NIfTI intent codes whose data are not a volume of voxels (surfaces, matrices), refused by the
#: readers; CIFTI-2's 3000–3099 are refused too.
NON_VOLUME_INTENTS = {
    1004: "a general matrix", 1005: "a symmetric matrix", 1008: "a point set (surface vertices)",
    1009: "a triangle list (surface faces)", 2002: "surface node indices",
    2005: "a surface shape",
}

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
    """Silence ITK's warnings printed on stderr (e.g. 'Analyze file is deprecated') for a while.

    Also restores the C locale afterwards: GDCM (SimpleITK's DICOM decoder) switches the process
    to the "C" locale, after which Python's default text encoding is ASCII and every later
    ``open()`` of a UTF-8 file without an explicit encoding fails.
    """
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    saved_locale = locale.setlocale(locale.LC_ALL)
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)
        with contextlib.suppress(locale.Error):
            locale.setlocale(locale.LC_ALL, saved_locale)


# ----------------------------------------------------------------------------------------------
# Limits and special values shared by every reader
# ----------------------------------------------------------------------------------------------
def _check_max_bytes(max_bytes: object) -> int:
    return check_int("max_bytes", max_bytes, minimum=1)


def _refuse_too_big(path: Path, described: str, n_bytes: int, max_bytes: int) -> None:
    """FileFormatError when ``n_bytes`` of voxels (what the header promises) exceed the limit."""
    if n_bytes > max_bytes:
        raise FileFormatError(
            path,
            f"its header describes {described} ({n_bytes:,} bytes), more than the max_bytes limit "
            f"of {max_bytes:,} bytes: a damaged header? If the image really is that big, pass a "
            "larger max_bytes=",
        )


def _shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _refuse_non_finite(path: Path, data: np.ndarray) -> None:
    """FileFormatError counting the NaN and infinite values in ``data``, if it holds any."""
    if data.dtype.kind not in "fc":
        return
    n_nan = int(np.count_nonzero(np.isnan(data)))
    n_inf = int(np.count_nonzero(np.isinf(data)))
    if n_nan or n_inf:
        raise FileFormatError(
            path,
            f"holds {n_nan:,} NaN and {n_inf:,} infinite voxel value(s) of {data.size:,}; refused "
            "because require_finite=True (replace them, e.g. with np.nan_to_num, or read with "
            "require_finite=False)",
        )


def _spacing_value(path: Path, field: str, text: str) -> float:
    """One voxel spacing read from a header: a finite number > 0, else FileFormatError."""
    value = metadata_number(path, field, text)
    if value <= 0:
        raise FileFormatError(
            path, f"field {field!r} must be a voxel spacing > 0 (mm), got {text!r}"
        )
    return value


# ----------------------------------------------------------------------------------------------
# NIfTI / Analyze (nibabel)
# ----------------------------------------------------------------------------------------------
def _pair_partner(path: Path) -> Path:
    """The other half of an Analyze or NIfTI pair: ``x.hdr`` ↔ ``x.img`` (same letter case)."""
    other = ".img" if path.suffix.lower() == ".hdr" else ".hdr"
    return path.with_suffix(other.upper() if path.suffix.isupper() else other)


def _gunzipped_size(path: Path, limit: int | None = None) -> int:
    """Decompress ``path`` as a stream and return its length; truncation or corruption → error.

    Nothing is kept in memory. Past ``limit`` bytes the stream is refused (a damaged file or a
    "zip bomb" that would expand without end).
    """
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                total += len(chunk)
                if limit is not None and total > limit:
                    raise FileFormatError(
                        path,
                        f"expands to more than {limit:,} bytes when decompressed, more than its "
                        "header describes plus the max_bytes limit allows (a damaged file or a "
                        "zip bomb?); pass a larger max_bytes= if the image really is that big",
                    )
    except EOFError:
        raise FileFormatError(
            path,
            "is truncated: its compressed data stop before the end-of-stream marker (an "
            "interrupted download or copy? Fetch it again)",
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(path, f"has corrupt compressed data ({exc})") from None
    return total


def _open_raw(path: Path):
    """The file opened for reading bytes, through gzip for ``.nii.gz``."""
    return gzip.open(path, "rb") if _suffix(path) == ".nii.gz" else open(path, "rb")


def _read_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a file, decompressed first when it is gzip-compressed."""
    try:
        with _open_raw(path) as f:
            return f.read(n)
    except EOFError:
        return b""  # the compressed stream ends before n bytes: reported as too short
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise FileFormatError(path, f"has corrupt compressed data ({exc})") from None


def _raw_header_problem(head: bytes) -> str | None:
    """What is wrong with the stored ``dim[0]`` or intent code, read straight from the bytes.

    nibabel cannot be asked: it guesses the byte order from ``dim[0]`` (so misreads a header whose
    ``dim[0]`` is out of range) and opens a NIfTI-2 file with a CIFTI intent code as CIFTI, failing
    when the CIFTI extension is missing. Here the byte order is the one in which the first field
    reads as the header size. Returns None when both fields are fine (or this is not NIfTI).
    """
    for order, byteorder in (("<", "little"), (">", "big")):
        size = int.from_bytes(head[:4], byteorder)
        if size == _NIFTI1_HEADER_BYTES and len(head) >= _NIFTI1_HEADER_BYTES:
            dim0 = struct.unpack_from(order + "h", head, 40)[0]
            is_nifti = head[344:347] in (b"n+1", b"ni1")  # else Analyze 7.5: no intent field
            intent = struct.unpack_from(order + "h", head, 68)[0] if is_nifti else 0
        elif size == _NIFTI2_HEADER_BYTES and len(head) >= _NIFTI2_HEADER_BYTES:
            dim0 = struct.unpack_from(order + "q", head, 16)[0]
            intent = struct.unpack_from(order + "i", head, 504)[0]
        else:
            continue
        if not 1 <= dim0 <= 7:
            return (
                f"has dim[0] = {dim0} in its header, the number of dimensions, which must be 1 "
                "to 7: a damaged header, or not an image"
            )
        if 3000 <= intent <= 3099:
            return _cifti_problem(f"intent code {intent}, a CIFTI-2 connectivity code")
        return None
    return None


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
    raw = _raw_header_problem(head)
    if raw:
        return raw
    return f"has a NIfTI/Analyze header that nibabel cannot read ({type(exc).__name__}: {exc})"


def _cifti_type(path: Path) -> str | None:
    """The CIFTI-2 type named by the file name (``x.dscalar.nii`` → ``"dscalar"``), or None."""
    name = path.name.lower()
    for kind in CIFTI_TYPES:
        if name.endswith((f".{kind}.nii", f".{kind}.nii.gz")):
            return kind
    return None


def _cifti_problem(why: str) -> str:
    return (
        f"is a CIFTI-2 file ({why}): it holds a matrix over brain models (surface vertices and "
        "voxels), not an image volume; read it with nibabel.load (nibabel.cifti2) or Connectome "
        "Workbench"
    )


def _refuse_cifti(path: Path, why: str) -> None:
    raise FileFormatError(path, _cifti_problem(why))


def _stored_header(path: Path, img: SpatialImage):
    """The header exactly as stored: nibabel's load quietly "fixes" some fields (a zero pixdim
    becomes 1), which the checks must see unfixed."""
    try:
        with _open_raw(path) as f:
            return img.header_class.from_fileobj(f, check=False)
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        raise FileFormatError(path, _explain_header_failure(path, exc)) from None


def _check_nifti_header(header_path: Path, img: SpatialImage, max_bytes: int) -> None:
    """Refuse non-volume NIfTI, impossible sizes, bad spacings/affines and too-big images."""
    if isinstance(img, Cifti2Image):
        _refuse_cifti(header_path, "nibabel recognises its CIFTI-2 header extension")
    header = _stored_header(header_path, img)
    fields = header.keys()
    if "intent_code" in fields:
        intent = int(header["intent_code"])
        if 3000 <= intent <= 3099:
            _refuse_cifti(header_path, f"intent code {intent}, a CIFTI-2 connectivity code")
        if intent in NON_VOLUME_INTENTS:
            name = intent_codes.niistring[intent] if intent in intent_codes.niistring else intent
            raise FileFormatError(
                header_path,
                f"has intent code {intent} ({name}): it holds {NON_VOLUME_INTENTS[intent]}, not an "
                "image volume (surfaces are GIFTI's business: read it with nibabel directly)",
            )
        if any(ext.get_code() == 32 for ext in getattr(header, "extensions", ())):
            _refuse_cifti(header_path, "it carries a CIFTI-2 header extension, code 32")
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise FileFormatError(
            header_path,
            f"has dim[0] = {dim[0]} in its header, the number of dimensions, which must be 1 to 7",
        )
    shape = dim[1 : dim[0] + 1]
    for axis, size in enumerate(shape, start=1):
        if size < 1:
            raise FileFormatError(
                header_path,
                f"has dim[{axis}] = {size} in its header: every axis must hold at least 1 voxel "
                f"(shape {shape}), so the file holds no image",
            )
    pixdim = [float(v) for v in header["pixdim"]]
    for axis in range(1, min(dim[0], 3) + 1):
        value = pixdim[axis]
        if not math.isfinite(value) or value <= 0:
            raise FileFormatError(
                header_path,
                f"has pixdim[{axis}] = {value:g} in its header, the voxel spacing along axis "
                f"{axis}: it must be a finite number > 0 mm (an axis' direction belongs in the "
                "qform/sform, not in the sign of its spacing)",
            )
    for key in ("scl_slope", "scl_inter"):
        if key in fields and math.isinf(float(header[key])):
            raise FileFormatError(
                header_path, f"has {key} = {float(header[key])} in its header: the voxel values "
                "would all be infinite",
            )
    n_spatial = min(len(img.shape), 3)
    affine = np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise FileFormatError(
            header_path, "has an affine (qform/sform) holding NaN or infinity in its header"
        )
    sizes = voxel_sizes(affine)[:n_spatial]
    if np.any(sizes == 0):
        axis = int(np.argmin(sizes))
        raise FileFormatError(
            header_path,
            f"has an affine (qform/sform) whose voxel axis {axis} has length 0: the voxels would "
            "have no extent along it",
        )
    dtype = img.get_data_dtype()
    _refuse_too_big(
        header_path, f"{_shape_text(shape)} voxels of {dtype}", math.prod(shape) * dtype.itemsize,
        max_bytes,
    )


def _open_nifti(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SpatialImage:
    """Check a NIfTI/Analyze file thoroughly and return it opened by nibabel (data not yet read).

    Checks: the file (and the other half of a .hdr/.img pair) exists and is not empty, a ``.gz``
    file really is gzip data, the header parses, describes a volume (not CIFTI, a surface or a
    matrix) with sane sizes, spacings and affine within ``max_bytes``, and the file holds all the
    voxel bytes the header promises (offset + voxel count × bytes per voxel). SimpleITK reads a
    truncated NIfTI file without complaint, filling the missing voxels, hence this check before
    either reader runs.
    """
    _check_file(path)
    suffix = _check_suffix(
        path, NIFTI_SUFFIXES, "load_nifti", " (read_image reads MetaImage, NRRD and DICOM too)"
    )
    kind = _cifti_type(path)
    if kind:
        _refuse_cifti(path, f"its name ends in .{kind}.nii")
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
    raw = _raw_header_problem(_read_head(header_path, _NIFTI2_HEADER_BYTES))
    if raw:
        raise FileFormatError(header_path, raw)
    try:
        img = nib.load(os.fspath(path), mmap=False)  # reads the header only
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        if suffix == ".nii.gz":
            _gunzipped_size(path)  # a stream cut short inside the header is reported as such
        raise FileFormatError(header_path, _explain_header_failure(header_path, exc)) from None
    _check_nifti_header(header_path, img, max_bytes)

    data_path = Path(img.file_map["image"].filename)
    dtype = img.get_data_dtype()
    n_voxels = math.prod(img.shape)
    offset = int(getattr(img.dataobj, "offset", 0))
    expected = offset + n_voxels * dtype.itemsize
    if suffix == ".nii.gz":
        available = _gunzipped_size(path, limit=offset + max_bytes)
        what = "decompressed data hold"
    else:
        available, what = data_path.stat().st_size, "file holds"
    if available < expected:
        with_header = f" including the {offset}-byte header" if offset else ""
        raise FileFormatError(
            data_path,
            f"is truncated: the header describes {_shape_text(img.shape)} voxels of {dtype} "
            f"({expected:,} bytes{with_header}) but the {what} only {available:,} bytes",
        )
    return img


def load_nifti(
    path: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, require_finite: bool = False
) -> SpatialImage:
    """Read a NIfTI-1/2 (``.nii``, ``.nii.gz``) or Analyze 7.5 / NIfTI pair (``.hdr``/``.img``) file.

    Returns the nibabel image **with its voxels already in memory**, so every problem with the file
    shows up here as a :class:`~cmrlab.errors.FileFormatError` and not later, deep inside a
    training loop. ``np.asanyarray(img.dataobj)`` gives the voxels in their stored type (scaled by
    ``scl_slope``/``scl_inter`` when the header asks for it, then floating point);
    ``img.get_fdata()`` gives them as float64. ``img.affine`` maps voxel indices to RAS+
    millimetres and ``img.header.get_zooms()`` gives the voxel spacing (and TR for 4-D series).

    NaN and ±inf voxels are kept as stored, without a warning; with ``require_finite=True`` a file
    holding any is refused instead (the message counts them). ``max_bytes`` caps the memory the
    voxels may take (default :data:`DEFAULT_MAX_BYTES`); the header is checked against it before
    anything is allocated, and a ``.nii.gz`` stream against it while it is decompressed.

    Raises FileFormatError for a missing file, a folder, an empty file, an unsupported extension,
    a file that is not NIfTI/Analyze, a CIFTI-2, surface or matrix file, a header with ``dim[0]``
    outside 1–7, an axis of size 0, a zero/negative/NaN/infinite ``pixdim`` spacing, a
    non-finite or degenerate affine, an image larger than ``max_bytes``, or a truncated or
    corrupt file.
    """
    path = _as_path(path)
    max_bytes = _check_max_bytes(max_bytes)
    require_finite = check_bool("require_finite", require_finite)
    img = _open_nifti(path, max_bytes)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        raise FileFormatError(
            path, f"voxel data cannot be read, the file is damaged ({type(exc).__name__}: {exc})"
        ) from None
    if require_finite:
        _refuse_non_finite(path, data)
    loaded = img.__class__(data, img.affine, img.header, extra=img.extra)
    loaded.set_filename(os.fspath(path))
    return loaded


# ----------------------------------------------------------------------------------------------
# DICOM (pydicom) and every format SimpleITK reads
# ----------------------------------------------------------------------------------------------
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: Samples per pixel that each DICOM photometric interpretation stores.
_PHOTOMETRIC_SAMPLES = {
    "MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "YBR_FULL": 3,
    "YBR_FULL_422": 3, "YBR_PARTIAL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3,
    "HSV": 3, "ARGB": 4, "CMYK": 4,
}
#: Photometric interpretations that only exist inside compressed (JPEG/JPEG 2000) pixel data.
_COMPRESSED_ONLY_PHOTOMETRIC = ("YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT")
#: Photometric interpretations whose uncompressed pixel data subsample the chroma 2:1 across a
#: row: two pixels are stored as Y Y Cb Cr, i.e. 2 samples' worth of bytes for 3 samples.
_CHROMA_422 = ("YBR_FULL_422", "YBR_PARTIAL_422")


def _has_dicom_marker(path: Path) -> bool:
    """True when bytes 128–131 spell ``DICM``, the marker of a DICOM Part 10 file."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _decoder_packages(syntax: pydicom.uid.UID) -> str:
    """The packages that let pydicom decode pixel data of this compressed transfer syntax."""
    name = syntax.name
    if "JPEG-LS" in name:
        return "pylibjpeg with pylibjpeg-libjpeg, or pyjpegls, or python-gdcm"
    if "JPEG 2000" in name or "HTJ2K" in name:
        return "pylibjpeg with pylibjpeg-openjpeg, or python-gdcm"
    if "JPEG" in name:
        return "pylibjpeg with pylibjpeg-libjpeg, or python-gdcm"
    if "RLE" in name:
        return "pylibjpeg with pylibjpeg-rle (pydicom's own RLE decoder normally suffices)"
    return "pylibjpeg or python-gdcm"


def _dicom_int(path: Path, ds: pydicom.Dataset, keyword: str, default: int | None = None,
               minimum: int = 1) -> int:
    """An integer tag of the image pixel module, checked (FileFormatError naming the tag)."""
    value = ds.get(keyword, None)
    if value is None or value == "":
        if default is None:
            raise FileFormatError(
                path, f"has pixel data but no {keyword} tag, so the image size is unknown"
            )
        return default
    return int(metadata_number(path, keyword, value, integer=True, minimum=minimum))


def _check_dicom_pixels(path: Path, ds: pydicom.Dataset, max_bytes: int) -> tuple[int, ...]:
    """Check the image pixel module against the pixel data before decoding; returns
    (rows, columns, frames, samples, bits allocated)."""
    syntax = ds.file_meta.TransferSyntaxUID
    rows = _dicom_int(path, ds, "Rows")
    columns = _dicom_int(path, ds, "Columns")
    bits = _dicom_int(path, ds, "BitsAllocated")
    frames = _dicom_int(path, ds, "NumberOfFrames", default=1)
    samples = _dicom_int(path, ds, "SamplesPerPixel", default=1)
    if bits not in (1, 8, 16, 32, 64):
        raise FileFormatError(
            path, f"has BitsAllocated = {bits}: DICOM pixels take 1, 8, 16, 32 or 64 bits"
        )
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if photometric:
        if photometric not in _PHOTOMETRIC_SAMPLES:
            raise FileFormatError(
                path, f"has an unknown PhotometricInterpretation {photometric!r} (known: "
                f"{', '.join(_PHOTOMETRIC_SAMPLES)})",
            )
        if _PHOTOMETRIC_SAMPLES[photometric] != samples:
            raise FileFormatError(
                path,
                f"has PhotometricInterpretation {photometric}, which stores "
                f"{_PHOTOMETRIC_SAMPLES[photometric]} sample(s) per pixel, but SamplesPerPixel "
                f"= {samples}",
            )
        if photometric in _COMPRESSED_ONLY_PHOTOMETRIC and not syntax.is_compressed:
            raise FileFormatError(
                path, f"has PhotometricInterpretation {photometric}, which exists only in "
                f"compressed pixel data, but its transfer syntax is {syntax.name}",
            )
    if samples not in (1, 3):
        raise FileFormatError(
            path, f"has SamplesPerPixel = {samples}: readable images hold 1 (grey) or 3 (colour)"
        )
    decoded = rows * columns * frames * samples * max(1, bits // 8)
    _refuse_too_big(
        path, f"{frames} frame(s) of {rows}×{columns} pixels × {samples} sample(s) at {bits} bits",
        decoded, max_bytes,
    )
    tag = next(t for t in _PIXEL_TAGS if t in ds)
    if tag != "PixelData" or not syntax.is_compressed:
        n_pixels = rows * columns * frames
        stored_samples = 2 if photometric in _CHROMA_422 else samples
        expected = math.ceil(n_pixels * stored_samples * bits / 8)
        available = len(ds[tag].value)
        if available < expected:
            chroma = (
                f" ({photometric}: 2 samples' worth of bytes per pixel for its 3 samples)"
                if photometric in _CHROMA_422 else ""
            )
            raise FileFormatError(
                path,
                f"is truncated: its pixel data hold {available:,} bytes but {rows}×{columns} "
                f"pixels × {frames} frame(s) × {samples} sample(s) at {bits} bits need "
                f"{expected:,}{chroma}",
            )
    return rows, columns, frames, samples, bits


def _check_dicom_geometry(path: Path, ds: pydicom.Dataset) -> None:
    """PixelSpacing must hold two finite numbers > 0 and the position/orientation finite numbers.

    GDCM (and so SimpleITK) silently replaces a zero or infinite spacing by 1 mm, hence the check.
    """
    checks = (("PixelSpacing", 2, True), ("ImagePositionPatient", 3, False),
              ("ImageOrientationPatient", 6, False))
    for keyword, count, spacing in checks:
        value = ds.get(keyword, None)
        if value is None or value == "":
            continue
        values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
        if len(values) != count:
            raise FileFormatError(
                path,
                f"tag {keyword} holds {len(values)} value(s), DICOM defines {count}: {value!r}",
            )
        for item in values:
            if spacing:
                _spacing_value(path, keyword, str(item))
            else:
                metadata_number(path, keyword, str(item))


def _decode_with_gdcm(
    path: Path, ds: pydicom.Dataset, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, str]:
    """Decode compressed pixel data with GDCM (inside SimpleITK) as the *stored* values.

    Returns ``(array, "")`` shaped like ``ds.pixel_array`` would be, or ``(None, reason)``.
    GDCM applies RescaleSlope/RescaleIntercept, which is undone here to give stored values.
    """
    rows, columns, frames, samples, bits = shape
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if samples == 3 and photometric != "RGB":
        return None, f"GDCM's colour conversion of {photometric} pixels is not relied on here"
    if bits not in (8, 16, 32):
        return None, f"GDCM fallback reads 8, 16 or 32-bit pixels, not {bits}-bit"
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(os.fspath(path))
    with _quiet_sitk():
        try:
            image = reader.Execute()
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines() or ["unknown error"]
            return None, f"GDCM (bundled with SimpleITK) failed too: {lines[-1].strip()}"
    array = sitk.GetArrayFromImage(image)
    want = (frames, rows, columns) + ((samples,) if samples > 1 else ())
    if array.shape != want:
        return None, f"GDCM decoded shape {array.shape}, the header describes {want}"
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if (slope, intercept) != (1.0, 0.0):
        stored = (array.astype(np.float64) - intercept) / slope
        array = np.rint(stored)
        if array.size and np.max(np.abs(array - stored)) > 1e-3:
            return None, "GDCM's rescaled values do not map back to whole stored values"
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        return None, f"GDCM decoded values outside the {dtype} range of the stored pixels"
    array = array.astype(dtype)
    return (array[0] if frames == 1 else array), ""


def read_dicom(path: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> pydicom.Dataset:
    """Read one DICOM file with pydicom and check that its pixel data decode.

    The returned :class:`pydicom.Dataset` gives the tags by keyword (``ds.Modality``,
    ``ds.PixelSpacing``, ``ds.ImagePositionPatient``...) and the decoded pixels as
    ``ds.pixel_array`` (already decoded once here, and cached). Any extension is accepted, since
    scanners often write DICOM files with none.

    Compressed pixel data: RLE and deflate decode natively, JPEG baseline/extended (8-bit) and
    JPEG 2000 through Pillow. When pydicom cannot decode them for want of a plugin (JPEG-LS,
    lossless JPEG, 12-bit JPEG), grey-scale and RGB pixels are decoded by GDCM, bundled with
    SimpleITK, and the dataset is returned *decompressed*, as ``ds.decompress()`` would leave it
    (Explicit VR Little Endian, the stored values in ``PixelData``). When that fails too, the
    error names the decoder package to install.

    Raises FileFormatError for a missing file, a folder, an empty file, a file that is not DICOM
    (no ``DICM`` marker after the 128-byte preamble), a DICOM file without pixel data, an image
    pixel module that does not add up (a PhotometricInterpretation with the wrong
    SamplesPerPixel, impossible BitsAllocated, zero Rows), an image whose decoded pixels would
    exceed ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`; checked before decoding), a file cut
    short (fewer pixel bytes than Rows × Columns × Frames × stored samples × BitsAllocated/8,
    where YBR_FULL_422 stores 2 samples' worth for its 3) and pixel data that cannot be decoded.
    """
    path = _as_path(path)
    max_bytes = _check_max_bytes(max_bytes)
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
    shape = _check_dicom_pixels(path, ds, max_bytes)
    _check_dicom_geometry(path, ds)
    try:
        ds.pixel_array  # noqa: B018 - decodes and caches the pixels
    except Exception as exc:  # noqa: BLE001 - any failure here is a file problem
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not syntax.is_compressed:
            raise FileFormatError(
                path, f"pixel data ({syntax.name}) cannot be decoded: {first}"
            ) from None
        array, reason = _decode_with_gdcm(path, ds, shape)
        if array is None:
            raise FileFormatError(
                path,
                f"pixel data ({syntax.name}) cannot be decoded: pydicom says {first!r}, and "
                f"{reason}. The data may be damaged; if not, install a decoder: "
                f"{_decoder_packages(syntax)}",
            ) from None
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        bits_stored = _dicom_int(path, ds, "BitsStored", default=shape[4])
        ds.set_pixel_data(array, photometric, min(bits_stored, array.dtype.itemsize * 8))
        ds.pixel_array  # noqa: B018 - decodes (now natively) and caches the pixels
    return ds


# ----------------------------------------------------------------------------------------------
# MetaImage and NRRD headers, checked before SimpleITK allocates anything
# ----------------------------------------------------------------------------------------------
_HEADER_SCAN_BYTES = 1 << 16  # MetaImage and NRRD headers are a few hundred bytes
_MET_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
_NRRD_BYTES = {
    name: size
    for names, size in (
        (("signed char", "int8", "int8_t"), 1),
        (("uchar", "unsigned char", "uint8", "uint8_t"), 1),
        (("short", "short int", "signed short", "signed short int", "int16", "int16_t"), 2),
        (("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
        (("int", "signed int", "int32", "int32_t"), 4),
        (("uint", "unsigned int", "uint32", "uint32_t"), 4),
        (("longlong", "long long", "long long int", "signed long long", "signed long long int",
          "int64", "int64_t"), 8),
        (("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), 8),
        (("float",), 4),
        (("double",), 8),
    )
    for name in names
}
#: NRRD axis kinds that are axes of the image grid; any other kind (vector, RGB-color, list...)
#: is the axis of a pixel's components, which may have NaN spacing.
_NRRD_GRID_KINDS = ("domain", "space", "time", "???", "none")


def _check_data_file(path: Path, name: str, field: str) -> None:
    """A detached data file named in a header must stay beside it and exist."""
    if name.upper() == "LOCAL":
        return  # MetaImage: the voxels follow the header in the same file
    if name.upper().startswith("LIST") or "%" in name or len(name.split()) != 1:
        return  # a list of files or a numbered pattern: SimpleITK resolves those itself
    target = inside(path.parent, name, source=path, what=f"data file ({field})")
    if not target.is_file():
        raise FileFormatError(
            path, f"names its voxel data file {name!r} ({field}) but {target} is missing: the "
            "header and its data file must be copied together",
        )


def _check_metaimage_header(path: Path, max_bytes: int) -> None:
    """Check a MetaImage header's sizes, spacings and geometry (see :func:`read_image`)."""
    fields: dict[str, tuple[str, str]] = {}
    for line in _raw_head(path, _HEADER_SCAN_BYTES).split(b"\n"):
        key, sep, value = line.decode("latin-1").partition("=")
        if not sep:
            continue
        fields[key.strip().lower()] = (key.strip(), value.strip())
        if key.strip().lower() == "elementdatafile":
            break
    if "elementdatafile" not in fields or "dimsize" not in fields:
        return  # not a MetaImage header: SimpleITK's parser says so
    label, text = fields["dimsize"]
    sizes = [metadata_number(path, label, t, integer=True, minimum=1) for t in text.split()]
    if "ndims" in fields:
        label, value = fields["ndims"]
        ndims = metadata_number(path, label, value, integer=True, minimum=1)
        if ndims != len(sizes):
            raise FileFormatError(
                path, f"lists {len(sizes)} sizes in DimSize ({text!r}) but NDims = {ndims}"
            )
    etype = fields.get("elementtype", ("ElementType", "?"))[1].upper()
    per_value = _MET_BYTES.get(etype.removesuffix("_ARRAY"), 1)
    channels = 1
    if "elementnumberofchannels" in fields:
        label, value = fields["elementnumberofchannels"]
        channels = metadata_number(path, label, value, integer=True, minimum=1)
    _refuse_too_big(
        path, f"{_shape_text(sizes)} voxels of {etype} × {channels} channel(s)",
        math.prod(sizes) * channels * per_value, max_bytes,
    )
    for key in ("elementspacing", "elementsize"):
        if key in fields:
            label, value = fields[key]
            for token in value.split():
                _spacing_value(path, label, token)
    for key in ("offset", "origin", "position", "transformmatrix", "rotation", "orientation",
                "centerofrotation"):
        if key in fields:
            label, value = fields[key]
            for token in value.split():
                metadata_number(path, label, token)
    _check_data_file(path, fields["elementdatafile"][1], "ElementDataFile")


def _nrrd_vectors(path: Path, field: str, text: str) -> list[tuple[float, ...] | None]:
    """``(1,0,0) none (0,1,0)`` → a list of vectors (None for ``none``), finite numbers only."""
    out: list[tuple[float, ...] | None] = []
    for vector, none in re.findall(r"\(([^)]*)\)|(none)", text):
        if none:
            out.append(None)
        else:
            out.append(tuple(metadata_number(path, field, t) for t in vector.split(",")))
    return out


def _check_nrrd_header(path: Path, max_bytes: int) -> None:
    """Check a NRRD header's sizes, type, spacings and geometry (see :func:`read_image`)."""
    head = _raw_head(path, _HEADER_SCAN_BYTES)
    if not head.startswith(b"NRRD000"):
        return  # not NRRD: SimpleITK's parser says so
    end = re.search(rb"\r?\n\r?\n", head)
    if end is None and len(head) == _HEADER_SCAN_BYTES:
        raise FileFormatError(
            path, f"has a NRRD header that does not end (with a blank line) within its first "
            f"{_HEADER_SCAN_BYTES:,} bytes: a damaged file, or not NRRD",
        )
    text = head[: end.start() if end else len(head)].decode("latin-1")
    fields: dict[str, tuple[str, str]] = {}
    for line in text.splitlines()[1:]:
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep or ":=" in key:
            continue  # a key/value comment pair (key:=value), not a field
        fields[key.strip().lower()] = (key.strip(), value.strip())
    for required in ("dimension", "type", "sizes"):
        if required not in fields:
            raise FileFormatError(
                path, f"has a NRRD header without the required {required!r} field"
            )
    label, value = fields["dimension"]
    dimension = metadata_number(path, label, value, integer=True, minimum=1, maximum=16)
    label, value = fields["sizes"]
    sizes = [metadata_number(path, label, t, integer=True, minimum=1) for t in value.split()]
    if len(sizes) != dimension:
        raise FileFormatError(
            path, f"lists {len(sizes)} sizes ({value!r}) but its dimension is {dimension}"
        )
    label, value = fields["type"]
    kind = " ".join(value.lower().split())
    if kind not in _NRRD_BYTES:
        raise FileFormatError(
            path, f"field {label!r} is {value!r}, not a NRRD voxel type SimpleITK reads (e.g. "
            "'short', 'float', 'double')",
        )
    _refuse_too_big(path, f"{_shape_text(sizes)} values of {kind}",
                    math.prod(sizes) * _NRRD_BYTES[kind], max_bytes)
    kinds = fields.get("kinds", ("kinds", ""))[1].split()
    grid = [not kinds or len(kinds) != dimension or k.lower() in _NRRD_GRID_KINDS
            for k in (kinds if len(kinds) == dimension else [""] * dimension)]
    if "space directions" in fields:
        label, value = fields["space directions"]
        vectors = _nrrd_vectors(path, label, value)
        if len(vectors) != dimension:
            raise FileFormatError(
                path, f"field {label!r} gives {len(vectors)} axes ({value!r}) for dimension "
                f"{dimension}",
            )
        for axis, vector in enumerate(vectors):
            if vector is None:
                grid[axis] = False
            elif not any(vector):
                raise FileFormatError(
                    path, f"field {label!r} gives axis {axis} the zero vector {vector}: its "
                    "voxels would have no extent",
                )
    if "spacings" in fields:
        label, value = fields["spacings"]
        tokens = value.split()
        if len(tokens) != dimension:
            raise FileFormatError(
                path, f"field {label!r} gives {len(tokens)} spacings ({value!r}) for dimension "
                f"{dimension}",
            )
        for axis, token in enumerate(tokens):
            if token.lower() == "nan" and not grid[axis]:
                continue  # NRRD's "no spacing" for an axis of pixel components
            _spacing_value(path, label, token)
    if "space origin" in fields:
        label, value = fields["space origin"]
        _nrrd_vectors(path, label, value)
    for key in ("data file", "datafile"):
        if key in fields:
            _check_data_file(path, fields[key][1], fields[key][0])


def _check_image_information(path: Path, reader: sitk.ImageFileReader, fmt: str,
                             max_bytes: int) -> None:
    """What SimpleITK parsed from any header, checked before it allocates the voxels."""
    size = reader.GetSize()
    try:
        probe = sitk.Image([1] * len(size), reader.GetPixelID(), reader.GetNumberOfComponents())
        per_component = probe.GetSizeOfPixelComponent()
    except RuntimeError:
        per_component = 1
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    _refuse_too_big(
        path, f"{_shape_text(size)} voxels of {pixel}",
        math.prod(size) * reader.GetNumberOfComponents() * per_component, max_bytes,
    )
    spacing = reader.GetSpacing()
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise FileFormatError(
            path, f"has a {fmt} header whose voxel spacing reads as {tuple(spacing)}: every "
            "spacing must be a finite number > 0 mm",
        )
    if not all(math.isfinite(v) for v in (*reader.GetOrigin(), *reader.GetDirection())):
        raise FileFormatError(
            path, f"has a {fmt} header whose origin or direction holds NaN or infinity"
        )


def _restore_non_finite(path: Path, image: sitk.Image, nifti: SpatialImage) -> sitk.Image:
    """Put back the NaN/±inf voxels that SimpleITK's NIfTI reader turned into 0.

    The zeroing happens inside ITK's bundled niftilib (``nifti_read_buffer`` replaces every
    non-finite float by 0; ITK pull request 6683 fixes it for ITK 6), so the values are taken
    from nibabel, which reads them as stored.
    """
    if nifti.get_data_dtype().kind not in "fc":
        return image  # integers cannot be NaN or infinite
    data = np.asanyarray(nifti.dataobj)
    if np.all(np.isfinite(data)):
        return image
    vector = image.GetNumberOfComponentsPerPixel() > 1
    if vector and data.ndim == 5 and data.shape[3] == 1:  # NIfTI vectors: (x, y, z, 1, c)
        values = data[:, :, :, 0, :].transpose(2, 1, 0, 3)
    else:
        values = data.transpose(tuple(reversed(range(data.ndim))))
    array = sitk.GetArrayFromImage(image)
    if values.shape != array.shape:
        raise FileFormatError(
            path, "holds NaN or infinite voxels, which SimpleITK's NIfTI reader turns into 0 and "
            "which cannot be put back for this layout; read it with load_nifti",
        )
    mask = ~np.isfinite(values)
    array[mask] = values[mask]
    restored = sitk.GetImageFromArray(array, isVector=vector)
    restored.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        restored.SetMetaData(key, image.GetMetaData(key))
    return restored


def read_image(
    path: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES, require_finite: bool = False
) -> sitk.Image:
    """Read an image with SimpleITK: NIfTI, Analyze, MetaImage, NRRD or one DICOM file.

    Supported extensions: ``.nii``, ``.nii.gz``, ``.hdr``/``.img``, ``.mha``, ``.mhd`` (header
    with a separate ``.raw``), ``.nrrd``, ``.nhdr``, and ``.dcm``/``.ima``/none for DICOM. The
    returned :class:`SimpleITK.Image` carries the geometry in SimpleITK's LPS+ world frame:
    ``GetSpacing()``, ``GetOrigin()`` (world position of voxel 0), ``GetDirection()`` (the unit
    axis directions, row-major); :func:`sitk_to_nibabel_affine` turns them into nibabel's RAS+
    affine. Note that ``SimpleITK.GetArrayFromImage`` returns the axes in reverse order
    (z, y, x) compared with nibabel's (x, y, z).

    NaN and ±inf voxels are kept as stored, as :func:`load_nifti` keeps them, for every format
    (SimpleITK alone turns those of NIfTI files into 0); with ``require_finite=True`` a file
    holding any is refused instead. ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`) caps the
    memory the voxels may take; the header is checked against it before anything is allocated.

    NIfTI/Analyze files are first checked like :func:`load_nifti` does and DICOM files like
    :func:`read_dicom` does, because SimpleITK reads some truncated files of those formats without
    an error. MetaImage and NRRD headers are parsed here first: sizes must be whole numbers ≥ 1
    whose voxels fit ``max_bytes``, the voxel type known, spacings (``ElementSpacing``,
    ``spacings``, ``space directions``) finite and > 0 (NRRD's ``nan`` is allowed only on an axis
    of pixel components), origins and directions finite, and a detached data file must sit in the
    header's folder (no ``..``, no absolute path) and exist. Raises FileFormatError as those do;
    for MetaImage/NRRD it separates "not an image of this format" (the header does not parse) from
    "truncated or damaged" (the header parses, the voxels do not).
    """
    path = _as_path(path)
    max_bytes = _check_max_bytes(max_bytes)
    require_finite = check_bool("require_finite", require_finite)
    _check_file(path)
    suffix = _check_suffix(path, SITK_FORMATS, "read_image")
    fmt = SITK_FORMATS[suffix]
    nifti = None
    if suffix in NIFTI_SUFFIXES:
        nifti = _open_nifti(path, max_bytes)
    elif fmt == "DICOM":
        read_dicom(path, max_bytes=max_bytes)
    elif fmt == "MetaImage":
        _check_metaimage_header(path, max_bytes)
    elif fmt == "NRRD":
        _check_nrrd_header(path, max_bytes)
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
        _check_image_information(path, reader, fmt, max_bytes)
        try:
            image = reader.Execute()
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
    if nifti is not None:
        image = _restore_non_finite(path, image, nifti)
    if require_finite:
        _refuse_non_finite(path, sitk.GetArrayViewFromImage(image))
    return image


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


def save_labels_like(labels: np.ndarray, reference: SpatialImage, path: PathLike) -> Path:
    """Save a label map with exactly the geometry of the NIfTI image ``reference``, atomically.

    ``labels`` must have the reference's shape and hold whole numbers 0–255; it is stored as
    ``uint8`` with scaling off. Everything else comes from the reference's header: affine, qform
    and sform with their codes, pixdim (including a 4-D cine's time step) and units, so viewers
    overlay the labels on the image voxel for voxel. ``path`` ends in ``.nii`` or ``.nii.gz``.
    Returns the path written.
    """
    path, arr = _like(labels, reference, path, "labels", "save_labels_like")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr))):
        raise ArgumentError(f"labels must hold whole numbers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ArgumentError(f"labels must lie in 0..255 to be stored as uint8, got {arr.min()}..{arr.max()}")
    return _save_like(arr.astype(np.uint8), reference, path)


def _like(data: object, reference: SpatialImage, path: PathLike, what: str, caller: str) -> tuple[Path, np.ndarray]:
    """``(path, array)`` after the checks that every ``save_*_like`` makes: a NIfTI file name, a
    NIfTI reference, and the reference's shape."""
    path = _as_path(path)
    _check_suffix(path, SAVE_NIFTI_SUFFIXES, caller)
    if not isinstance(reference, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ArgumentError(f"reference must be a NIfTI image (nibabel), got {type(reference).__name__}")
    arr = np.asarray(data)
    if arr.shape != reference.shape:
        raise ArgumentError(f"{what} have shape {arr.shape}, the reference image {reference.shape}")
    return path, arr


def _save_like(arr: np.ndarray, reference: SpatialImage, path: Path) -> Path:
    header = reference.header.copy()
    header.set_data_dtype(arr.dtype)
    out = type(reference)(arr, reference.affine, header=header)
    out.header.set_slope_inter(1.0, 0.0)
    out.set_qform(reference.header.get_qform(), code=int(reference.header["qform_code"]))
    out.set_sform(reference.header.get_sform(), code=int(reference.header["sform_code"]))
    return atomic_write(path, lambda tmp: nib.save(out, os.fspath(tmp)))


def save_map_like(values: np.ndarray, reference: SpatialImage, path: PathLike) -> Path:
    """Save a real-valued map (a CAM, a probability map) as float32 with exactly the geometry of
    the NIfTI image ``reference``, atomically (as :func:`save_labels_like` does for labels).

    ``values`` must have the reference's shape and be finite. Returns the path written.
    """
    path, arr = _like(values, reference, path, "values", "save_map_like")
    if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all():
        raise ArgumentError("values must be finite real numbers")
    return _save_like(arr.astype(np.float32), reference, path)


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

    compress = check_bool("compress", compress)

    def write(tmp: Path) -> None:
        with _quiet_sitk():
            sitk.WriteImage(image, os.fspath(tmp), compress)

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
    return apply_affine(_as_affine(affine), _as_points(ijk, "ijk"))


def world_to_voxel(affine: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Voxel indices (fractional) of world points (mm): :math:`(i, j, k)^T = M^{-1}(x - t)`.

    The inverse of :func:`voxel_to_world`. Round with ``np.rint(...).astype(int)`` for the nearest
    voxel, and check the result lies inside the array before indexing with it. ``xyz`` has shape
    (3,) or (..., 3).
    """
    matrix = _as_affine(affine).copy()
    matrix[3] = (0.0, 0.0, 0.0, 1.0)  # only the 3×4 part is the mapping (as in apply_affine)
    points = _as_points(xyz, "xyz")
    try:
        inverse = np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        raise ArgumentError(
            "affine is singular (a zero voxel spacing?), so world points have no voxel index"
        ) from None
    return apply_affine(inverse, points)


def orientation_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """The anatomical direction each voxel axis points to, e.g. ``('R', 'A', 'S')``.

    Letter n says towards which side of the patient index n grows, in nibabel's RAS+ world:
    R/L (right/left), A/P (anterior/posterior), S/I (superior/inferior). An oblique axis gets the
    letter of the world axis it is closest to (nibabel's ``aff2axcodes``).
    """
    return tuple(aff2axcodes(_as_affine(affine)))  # type: ignore[return-value]


def spacing_from_affine(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing (mm) along each voxel axis: :math:`s_n = \\lVert A_{1:3,\\,n} \\rVert`.

    The length of the world step made when index n grows by one, i.e. the norm of column n of
    the affine's 3×3 part. It equals the header's zooms for a consistent NIfTI file.
    """
    return voxel_sizes(_as_affine(affine))


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
