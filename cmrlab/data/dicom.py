"""DICOM overlays as label maps, ED/ES from the labelled frames, and a DICOM cine as one 4D image.

The cardiac thesis's data are Siemens cine series (``.IMA``) whose manual contours are stored as
**DICOM overlays**, "the 'overlay data' header (header value |6000, 3000|)" (ch. 4, L2873-2877).
The contours only mark borders and were filled into label maps (ch. 5, L3672-3680); which frame
is ED and which ES follows from which frames carry contours: ED has myocardium (an epicardial
contour), ES has contours but no myocardium (ch. 7, L5605-5609). The series were converted to
NIfTI with SimpleITK so that one acquisition is one file (ch. 4, L3032-3042).

Overlay plane module (DICOM PS3.3 C.9.2), one plane per even group ``0x6000 … 0x601E``:

* ``(60xx,0010)`` OverlayRows, ``(60xx,0011)`` OverlayColumns: the plane's size;
* ``(60xx,0050)`` OverlayOrigin: the image pixel (row, column), **1-based**, of the plane's first
  point (1\\1 is the image's upper-left pixel);
* ``(60xx,0040)`` OverlayType ``G`` (graphics) or ``R`` (region of interest);
* ``(60xx,0100)`` OverlayBitsAllocated 1 and ``(60xx,0102)`` OverlayBitPosition 0: one bit per
  point, stored in its own element (the retired "embedded" overlays hid the bits in unused high
  bits of the pixel data and are refused here);
* ``(60xx,3000)`` OverlayData: the bits packed row by row, **the first point in the least
  significant bit** of the first byte, padded to an even number of bytes;
* ``(60xx,0022)`` OverlayDescription, ``(60xx,1500)`` OverlayLabel: free text.

[assumption] The thesis does not say how the contours of its three structures are told apart in
the files. :func:`add_overlay` and :func:`read_contour_labels` store one structure per plane and
name it in OverlayDescription (:data:`CONTOUR_NAMES`: ``LV endocardium``, ``LV epicardium``,
``RV endocardium``), which is what Syngo-style exports do when each contour is its own graphic.

Label values are cmrlab's (ACDC's) everywhere: 1 RV cavity, 2 LV myocardium, 3 LV cavity. The
thesis's own codes (ED 1 LV, 2 MYO, 3 RV; ES 1 LV, 2 RV; L3674-3680) are
:data:`THESIS_ED_CODES` and :data:`THESIS_ES_CODES`, for :func:`labels_from_contours`'s
``codes``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.multival import MultiValue
from pydicom.pixels import pack_bits
from scipy import ndimage

from cmrlab.checks import check_int, metadata_number
from cmrlab.data.io import PathLike, read_dicom, sitk_to_nibabel_affine
from cmrlab.errors import ArgumentError, FileFormatError

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = [
    "ACDC_CODES",
    "CONTOUR_NAMES",
    "DicomCine",
    "Overlay",
    "THESIS_ED_CODES",
    "THESIS_ES_CODES",
    "add_overlay",
    "affine_from_tags",
    "contour_of",
    "ed_es_from_contours",
    "labels_from_contours",
    "read_contour_labels",
    "read_dicom_cine",
    "read_overlays",
    "tag_numbers",
]

#: Names of the three contours a thesis case carries (OverlayDescription of their planes).
CONTOUR_NAMES: tuple[str, str, str] = ("LV endocardium", "LV epicardium", "RV endocardium")
#: cmrlab's (ACDC's) label values.
ACDC_CODES: Mapping[str, int] = {"RV": 1, "MYO": 2, "LV": 3}
#: The thesis's values at ED (L3674-3678): 1 LV cavity, 2 LV myocardium, 3 RV cavity.
THESIS_ED_CODES: Mapping[str, int] = {"LV": 1, "MYO": 2, "RV": 3}
#: The thesis's values at ES (L3678-3680): 1 LV cavity, 2 RV cavity (no myocardium at ES).
THESIS_ES_CODES: Mapping[str, int] = {"LV": 1, "RV": 2}

_FIRST_GROUP, _LAST_GROUP = 0x6000, 0x601E


@dataclass(frozen=True)
class Overlay:
    """One overlay plane of a DICOM file.

    ``bits`` is the plane itself, (OverlayRows, OverlayColumns) booleans; ``origin`` is
    OverlayOrigin, the 1-based image (row, column) of ``bits[0, 0]``. :meth:`on_image` places the
    plane on the image's pixel grid.
    """

    group: int
    bits: np.ndarray
    origin: tuple[int, int]
    kind: str
    description: str

    def on_image(self, rows: int, columns: int) -> np.ndarray:
        """The plane as a (rows, columns) boolean mask of the image; points outside are dropped."""
        rows, columns = check_int("rows", rows), check_int("columns", columns)
        mask = np.zeros((rows, columns), dtype=bool)
        r0, c0 = self.origin[0] - 1, self.origin[1] - 1   # 1-based → 0-based
        n_r, n_c = self.bits.shape
        top, left = max(r0, 0), max(c0, 0)
        bottom, right = min(r0 + n_r, rows), min(c0 + n_c, columns)
        if bottom > top and right > left:
            mask[top:bottom, left:right] = self.bits[top - r0:bottom - r0, left - c0:right - c0]
        return mask


def _check_group(group: object) -> int:
    group = check_int("group", group, _FIRST_GROUP, _LAST_GROUP)
    if group % 2:
        raise ArgumentError(f"group must be even (overlay groups are 0x6000, 0x6002, … 0x601E), got {group:#06x}")
    return group


def add_overlay(ds: pydicom.Dataset, mask: np.ndarray, *, group: int = _FIRST_GROUP,
                origin: tuple[int, int] = (1, 1), description: str = "", kind: str = "G") -> None:
    """Store the boolean ``mask`` (rows, columns) as overlay plane ``group`` of ``ds``, in place.

    ``origin`` is the 1-based image (row, column) of ``mask[0, 0]``; the bits are packed with
    :func:`pydicom.pixels.pack_bits` (first point in the least significant bit, padded to an even
    length) and written as OB. Any existing plane in that group is replaced.
    """
    group = _check_group(group)
    if not isinstance(ds, pydicom.Dataset):
        raise ArgumentError(f"ds must be a pydicom Dataset, got {type(ds).__name__}")
    mask = np.asarray(mask)
    if mask.ndim != 2 or 0 in mask.shape:
        raise ArgumentError(f"mask must be a non-empty 2D (rows, columns) array, got shape {mask.shape}")
    if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
        raise ArgumentError("mask must hold booleans or 0/1 only")
    if kind not in ("G", "R"):
        raise ArgumentError(f"kind must be 'G' (graphics) or 'R' (region of interest), got {kind!r}")
    if len(origin) != 2:
        raise ArgumentError(f"origin must be (row, column), got {origin!r}")
    row0 = check_int("origin[0]", origin[0], -32768, 32767)
    col0 = check_int("origin[1]", origin[1], -32768, 32767)
    for element in [e.tag.element for e in ds.group_dataset(group)]:
        del ds[(group, element)]
    ds.add_new((group, 0x0010), "US", int(mask.shape[0]))
    ds.add_new((group, 0x0011), "US", int(mask.shape[1]))
    ds.add_new((group, 0x0022), "LO", description)
    ds.add_new((group, 0x0040), "CS", kind)
    ds.add_new((group, 0x0050), "SS", [row0, col0])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x1500), "LO", description)
    ds.add_new((group, 0x3000), "OB", pack_bits(mask.astype(np.uint8)))


def read_overlays(ds: pydicom.Dataset, path: PathLike | None = None) -> dict[int, Overlay]:
    """Every overlay plane of ``ds``, ``{group: Overlay}``, in group order.

    The bits are unpacked by pydicom (``ds.overlay_array(group)``). A plane whose OverlayData is
    missing or too short for its OverlayRows × OverlayColumns, or that is embedded in the pixel
    data (OverlayBitsAllocated ≠ 1, a retired form), raises FileFormatError naming ``path`` (or
    the dataset's file name).
    """
    where = Path(path) if path is not None else Path(getattr(ds, "filename", None) or "<dataset>")
    planes: dict[int, Overlay] = {}
    for group in range(_FIRST_GROUP, _LAST_GROUP + 1, 2):
        if (group, 0x0010) not in ds and (group, 0x3000) not in ds:
            continue
        def number(element: int, name: str, default: object = None) -> int:
            value = ds[(group, element)].value if (group, element) in ds else default
            if value is None:
                raise FileFormatError(where, f"overlay {group:#06x} lacks {name} ({group:04X},{element:04X})")
            return int(metadata_number(where, f"{name} of overlay {group:#06x}", value, integer=True))
        rows, columns = number(0x0010, "OverlayRows"), number(0x0011, "OverlayColumns")
        bits_allocated = number(0x0100, "OverlayBitsAllocated", 1)
        if bits_allocated != 1 or (group, 0x3000) not in ds:
            raise FileFormatError(
                where, f"overlay {group:#06x} is embedded in the pixel data (OverlayBitsAllocated "
                f"{bits_allocated}, no OverlayData): a retired form this reader does not unpack")
        n_bytes = len(ds[(group, 0x3000)].value)
        if n_bytes * 8 < rows * columns:
            raise FileFormatError(
                where, f"overlay {group:#06x} holds {n_bytes} bytes of OverlayData, too few for "
                f"{rows}×{columns} one-bit points ({(rows * columns + 7) // 8} bytes): the file is cut short")
        origin_value = ds[(group, 0x0050)].value if (group, 0x0050) in ds else (1, 1)
        origin = tuple(int(metadata_number(where, f"OverlayOrigin of overlay {group:#06x}", v, integer=True))
                       for v in origin_value)
        if len(origin) != 2:
            raise FileFormatError(where, f"OverlayOrigin of overlay {group:#06x} must hold 2 numbers")
        bits = np.asarray(ds.overlay_array(group), dtype=bool).reshape(rows, columns)
        text = str(ds[(group, 0x0022)].value) if (group, 0x0022) in ds else ""
        kind = str(ds[(group, 0x0040)].value) if (group, 0x0040) in ds else "G"
        planes[group] = Overlay(group, bits, origin, kind, text)  # type: ignore[arg-type]
    return planes


def contour_of(mask: np.ndarray) -> np.ndarray:
    """The one-pixel outline of a filled region: its pixels that have a 4-neighbour outside it.

    The outline is 8-connected and closed, so :func:`scipy.ndimage.binary_fill_holes` gives the
    region back exactly, for any region without holes (the round trip the tests check).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ArgumentError(f"mask must be 2D, got shape {mask.shape}")
    inner = ndimage.binary_erosion(mask, ndimage.generate_binary_structure(2, 1), border_value=0)
    return mask & ~inner


def labels_from_contours(contours: Mapping[str, np.ndarray], codes: Mapping[str, int] = ACDC_CODES,
                         shape: tuple[int, int] | None = None) -> np.ndarray:
    """Fill contour masks into one label map (uint8), as the thesis did (L3672-3680).

    ``contours`` maps :data:`CONTOUR_NAMES` to boolean outline masks (missing names are absent
    contours). Inside the LV endocardium is ``codes["LV"]``; inside the LV epicardium but not
    the endocardium ``codes["MYO"]``; inside the RV endocardium ``codes["RV"]`` (the RV does not
    overlap the LV here: the RV contour is its cavity). A contour whose code is not in ``codes``
    (the myocardium with :data:`THESIS_ES_CODES`) is an error, as is an unknown name.
    """
    unknown = set(contours) - set(CONTOUR_NAMES)
    if unknown:
        raise ArgumentError(f"contours has unknown name(s) {sorted(unknown)}; expected some of {list(CONTOUR_NAMES)}")
    masks = {name: np.asarray(m, dtype=bool) for name, m in contours.items()}
    shapes = {m.shape for m in masks.values()}
    if shape is not None:
        shapes.add(tuple(shape))
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ArgumentError(f"every contour must be a 2D mask of one shape, got shapes {sorted(shapes)}")
    out = np.zeros(next(iter(shapes)), dtype=np.uint8)
    regions = [("LV epicardium", "MYO"), ("LV endocardium", "LV"), ("RV endocardium", "RV")]
    for name, structure in regions:   # the epicardium first: the endocardium is painted over it
        if name not in masks:
            continue
        if structure not in codes:
            raise ArgumentError(f"codes has no value for {structure} ({name} is present); got {dict(codes)}")
        out[ndimage.binary_fill_holes(masks[name])] = codes[structure]
    return out


def ed_es_from_contours(contoured: Mapping[int, Iterable[str]]) -> tuple[int, int]:
    """(ED, ES) frame indices from which contours each frame carries (thesis L5605-5609).

    ``contoured`` maps a frame to the names of the contours found on any of its slices. ED is the
    frame with an ``LV epicardium`` (myocardium) contour, ES the frame with contours but no
    epicardium. Exactly one of each must exist; otherwise ArgumentError says what was found.
    """
    with_myo = sorted(t for t, names in contoured.items() if "LV epicardium" in set(names))
    without = sorted(t for t, names in contoured.items() if set(names) and "LV epicardium" not in set(names))
    if len(with_myo) != 1 or len(without) != 1:
        raise ArgumentError(
            f"expected one frame with myocardium (ED) and one with contours but no myocardium (ES), "
            f"found {with_myo} and {without}")
    return with_myo[0], without[0]


def tag_numbers(path: Path, ds: pydicom.Dataset, keyword: str, count: int, default: object = None, *,
                 positive: bool = False) -> np.ndarray:
    """``count`` finite numbers from the DICOM tag ``keyword`` (``default`` when it is absent).

    Each value is checked by :func:`cmrlab.checks.metadata_number` (NaN, inf, ``1e400``, empty
    and non-numeric text are refused); ``positive`` also refuses values <= 0.
    """
    value = ds.get(keyword, default)
    if value is None:
        raise FileFormatError(path, f"lacks the {keyword} tag")
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    if len(items) != count:
        raise FileFormatError(path, f"tag {keyword} should hold {count} number(s), it holds {len(items)}")
    numbers = np.array([metadata_number(path, keyword if count == 1 else f"{keyword}[{k}]", v)
                        for k, v in enumerate(items)], dtype=float)
    if positive and np.any(numbers <= 0):
        raise FileFormatError(path, f"tag {keyword} must hold numbers > 0, got {numbers.tolist()}")
    return numbers


def affine_from_tags(datasets: Sequence[pydicom.Dataset]) -> np.ndarray:
    """The RAS+ voxel → mm affine of a stack of slices, from their DICOM tags alone.

    Index (i, j, k) = (column, row, slice in the order given). In LPS+: column i steps
    ``PixelSpacing[1]·X``, row j steps ``PixelSpacing[0]·Y`` (X, Y the two halves of
    ImageOrientationPatient), slice k steps ``IPP_k+1 − IPP_k`` (the mean step; one slice gives
    the unit normal X × Y times SliceThickness), and the origin is ImagePositionPatient of the
    first slice; then ``diag(-1, -1, 1, 1)`` turns LPS+ into RAS+ (nibabel's frame).
    """
    if not datasets:
        raise ArgumentError("datasets must hold at least one slice")
    first = datasets[0]
    path = Path(getattr(first, "filename", None) or "<dataset>")
    iop = tag_numbers(path, first, "ImageOrientationPatient", 6)
    row_spacing, col_spacing = tag_numbers(path, first, "PixelSpacing", 2, positive=True)
    ipp = np.array([tag_numbers(Path(getattr(d, "filename", None) or "<dataset>"), d, "ImagePositionPatient", 3)
                    for d in datasets])
    x_dir, y_dir = iop[:3], iop[3:]
    if len(datasets) > 1:
        step = (ipp[-1] - ipp[0]) / (len(datasets) - 1)
    else:
        step = np.cross(x_dir, y_dir) * float(first.get("SliceThickness", 1.0))
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = col_spacing * x_dir, row_spacing * y_dir, step, ipp[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


@dataclass(frozen=True)
class DicomCine:
    """A cine read by :func:`read_dicom_cine`.

    ``image`` is a 4D SimpleITK image (x = column, y = row, z = slice, t = frame; time spacing in
    ms); ``frames`` the file paths per frame, slices sorted along the normal; ``trigger_times``
    (ms) per frame; ``affine`` the RAS+ affine of the 3D grid from the tags
    (:func:`affine_from_tags`).
    """

    image: sitk.Image
    frames: tuple[tuple[Path, ...], ...]
    trigger_times: tuple[float, ...]
    affine: np.ndarray

    @property
    def array(self) -> np.ndarray:
        """The voxels as (X, Y, Z, T), nibabel's order (SimpleITK's array is reversed)."""
        import SimpleITK as sitk  # noqa: PLC0415

        return sitk.GetArrayFromImage(self.image).transpose(3, 2, 1, 0)


def _dicom_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileFormatError(folder, "is not a folder of DICOM files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileFormatError(folder, "holds no files")
    return files


def _sorted_cine(folder: Path) -> tuple[list[float], list[list[tuple[Path, pydicom.Dataset]]]]:
    """The folder's slices grouped by TriggerTime (frames) and sorted along the slice normal."""
    records = []
    for path in _dicom_files(folder):
        ds = read_dicom(path)          # checked: not DICOM, truncated, undecodable → FileFormatError
        iop = tag_numbers(path, ds, "ImageOrientationPatient", 6)
        ipp = tag_numbers(path, ds, "ImagePositionPatient", 3)
        trigger = float(tag_numbers(path, ds, "TriggerTime", 1, 0.0)[0])
        records.append((trigger, float(ipp @ np.cross(iop[:3], iop[3:])), path, ds))
    times = sorted({r[0] for r in records})
    frames = [sorted((r for r in records if r[0] == t), key=lambda r: r[1]) for t in times]
    sizes = {len(f) for f in frames}
    if len(sizes) != 1:
        raise FileFormatError(folder, f"its frames hold different numbers of slices {sorted(sizes)}: "
                              "a slice file is missing")
    for frame in frames:
        positions = [r[1] for r in frame]
        if len(set(np.round(positions, 3))) != len(positions):
            raise FileFormatError(frame[0][2], "shares its slice position and trigger time with another file")
        steps = np.diff(positions)
        if steps.size and np.abs(steps - steps.mean()).max() > max(0.01, 0.01 * abs(steps.mean())):
            raise FileFormatError(folder, f"its slices are unevenly spaced along the normal (steps "
                                  f"{np.round(steps, 3).tolist()} mm): one volume with one spacing would "
                                  "misplace them; resample or split the stack first")
    return times, [[(r[2], r[3]) for r in frame] for frame in frames]


def read_dicom_cine(folder: PathLike) -> DicomCine:
    """Read a cine series (one file per slice and frame) into one 4D SimpleITK image.

    The files are grouped into frames by TriggerTime and each frame's slices sorted along the
    slice normal (ImageOrientationPatient, ImagePositionPatient); each frame is read by
    ``SimpleITK.ImageSeriesReader`` (GDCM: it applies RescaleSlope/Intercept and takes the
    geometry from the tags), and the frames are joined along a fourth axis whose spacing is the
    mean trigger-time step (ms). Write it to NIfTI with :func:`cmrlab.data.io.write_image`.
    Every frame must hold the same slices, evenly spaced along the normal (a stack with a gap
    or an uneven step is refused: one spacing cannot describe it); each file is checked with
    :func:`read_dicom` when SimpleITK fails on it.
    """
    import SimpleITK as sitk  # noqa: PLC0415

    folder = Path(folder)
    times, frames = _sorted_cine(folder)
    volumes = []
    for frame in frames:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames([str(p) for p, _ in frame])
        try:
            volumes.append(sitk.Cast(reader.Execute(), sitk.sitkFloat32))
        except RuntimeError:
            for p, _ in frame:
                read_dicom(p)   # names the damaged file
            raise FileFormatError(frame[0][0], "SimpleITK could not read this frame's slices") from None
    image = sitk.JoinSeries(volumes)
    step = float(np.mean(np.diff(times))) if len(times) > 1 else 1.0
    image.SetSpacing((*volumes[0].GetSpacing(), step))
    affine = affine_from_tags([ds for _, ds in frames[0]])
    if not np.allclose(sitk_to_nibabel_affine(image), affine, atol=1e-3):
        raise FileFormatError(folder, "SimpleITK's geometry disagrees with the DICOM tags "
                              "(an uneven slice spacing or a gantry tilt?)")
    return DicomCine(image, tuple(tuple(p for p, _ in f) for f in frames), tuple(times), affine)


def read_contour_labels(folder: PathLike, codes: Mapping[str, int] = ACDC_CODES
                        ) -> tuple[np.ndarray, int, int, dict[int, set[str]]]:
    """Label maps (X, Y, Z, T) filled from the overlay contours of a cine folder, and ED/ES.

    Returns ``(labels, ed, es, contoured)``: ``labels`` uint8 on the grid of
    :func:`read_dicom_cine` (zero on frames without contours), the ED and ES frames of
    :func:`ed_es_from_contours`, and ``contoured`` ``{frame: set of contour names}``. Each overlay
    plane is one contour, named by its OverlayDescription (:data:`CONTOUR_NAMES`); a plane with
    another name is an error naming the file.
    """
    folder = Path(folder)
    _, frames = _sorted_cine(folder)
    first = frames[0][0][1]
    rows, columns = int(first.Rows), int(first.Columns)
    labels = np.zeros((columns, rows, len(frames[0]), len(frames)), dtype=np.uint8)
    contoured: dict[int, set[str]] = {}
    for t, frame in enumerate(frames):
        for z, (path, ds) in enumerate(frame):
            contours = {}
            for overlay in read_overlays(ds, path).values():
                if overlay.description not in CONTOUR_NAMES:
                    raise FileFormatError(path, f"overlay {overlay.group:#06x} is named {overlay.description!r}, "
                                          f"not one of {list(CONTOUR_NAMES)}")
                contours[overlay.description] = overlay.on_image(rows, columns)
            if contours:
                contoured.setdefault(t, set()).update(contours)
                labels[:, :, z, t] = labels_from_contours(contours, codes).T   # (rows, cols) → (X, Y)
    ed, es = ed_es_from_contours(contoured)
    return labels, ed, es, contoured
