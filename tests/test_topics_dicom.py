"""DICOM overlays (6000,3000) → label maps, ED/ES from the labelled frames, a cine → NIfTI."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from cmrlab.data import dicom, sunnybrook
from cmrlab.data.io import load_nifti, write_image
from cmrlab.errors import ArgumentError, FileFormatError


def _slice_dataset(rows: int = 12, columns: int = 10) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((rows, columns), "<u2").tobytes()
    return ds


def _disc(shape, centre, radius):
    r, c = np.ogrid[: shape[0], : shape[1]]
    return (r - centre[0]) ** 2 + (c - centre[1]) ** 2 <= radius**2


def test_overlay_bits_are_packed_little_endian_and_read_back(tmp_path):
    ds = _slice_dataset()
    plane = np.zeros((3, 5), bool)
    plane[0, 0] = plane[1, 2] = plane[2, 4] = True            # points 0, 7 and 14 of the plane
    dicom.add_overlay(ds, plane, group=0x6002, origin=(4, 3), description="LV endocardium")
    data = ds[0x6002, 0x3000].value
    # 15 bits → 2 bytes: point 0 is bit 0 of byte 0, point 7 bit 7 of byte 0, point 14 bit 6 of byte 1
    assert data == bytes([0b1000_0001, 0b0100_0000])
    path = tmp_path / "slice.dcm"
    ds.save_as(path, enforce_file_format=True)
    planes = dicom.read_overlays(pydicom.dcmread(path))
    assert list(planes) == [0x6002]
    overlay = planes[0x6002]
    assert overlay.origin == (4, 3) and overlay.description == "LV endocardium"
    np.testing.assert_array_equal(overlay.bits, plane)
    on_image = overlay.on_image(12, 10)
    assert on_image.sum() == 3
    assert on_image[3, 2] and on_image[4, 4] and on_image[5, 6]   # 1-based origin (4, 3) → [3, 2]


def test_overlay_partly_outside_the_image_is_cropped():
    ds = _slice_dataset(6, 6)
    dicom.add_overlay(ds, np.ones((4, 4), bool), origin=(5, -1))
    mask = dicom.read_overlays(ds)[0x6000].on_image(6, 6)
    expected = np.zeros((6, 6), bool)
    expected[4:6, 0:2] = True
    np.testing.assert_array_equal(mask, expected)


def test_bad_overlays_are_refused(tmp_path):
    ds = _slice_dataset()
    with pytest.raises(ArgumentError, match="even"):
        dicom.add_overlay(ds, np.ones((2, 2), bool), group=0x6001)
    with pytest.raises(ArgumentError, match="group"):
        dicom.add_overlay(ds, np.ones((2, 2), bool), group=0x6020)
    dicom.add_overlay(ds, np.ones((8, 8), bool))
    ds[0x6000, 0x3000].value = ds[0x6000, 0x3000].value[:4]          # cut short
    with pytest.raises(FileFormatError, match="cut short"):
        dicom.read_overlays(ds, tmp_path / "x.dcm")
    ds[0x6000, 0x0100].value = 16                                    # embedded (retired) overlay
    with pytest.raises(FileFormatError, match="embedded"):
        dicom.read_overlays(ds, tmp_path / "x.dcm")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contour_fills_back_to_its_region(seed):
    rng = np.random.default_rng(seed)
    region = _disc((40, 40), rng.uniform(12, 28, 2), rng.uniform(4, 10))
    outline = dicom.contour_of(region)
    assert outline.sum() < region.sum() / 2               # an outline, not the region
    np.testing.assert_array_equal(dicom.labels_from_contours({"LV endocardium": outline}) > 0, region)


def test_labels_from_contours_uses_either_coding():
    shape = (40, 40)
    lv, epi, rv = _disc(shape, (20, 24), 6), _disc(shape, (20, 24), 9), _disc(shape, (20, 8), 5)
    contours = {"LV endocardium": dicom.contour_of(lv), "LV epicardium": dicom.contour_of(epi),
                "RV endocardium": dicom.contour_of(rv)}
    acdc = dicom.labels_from_contours(contours)
    assert set(np.unique(acdc)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(acdc == 3, lv)
    np.testing.assert_array_equal(acdc == 2, epi & ~lv)
    np.testing.assert_array_equal(acdc == 1, rv)
    thesis = dicom.labels_from_contours(contours, dicom.THESIS_ED_CODES)
    np.testing.assert_array_equal(thesis == 1, lv)
    np.testing.assert_array_equal(thesis == 3, rv)
    es = {k: v for k, v in contours.items() if k != "LV epicardium"}
    thesis_es = dicom.labels_from_contours(es, dicom.THESIS_ES_CODES)
    assert set(np.unique(thesis_es)) == {0, 1, 2}
    with pytest.raises(ArgumentError, match="MYO"):
        dicom.labels_from_contours(contours, dicom.THESIS_ES_CODES)
    with pytest.raises(ArgumentError, match="unknown"):
        dicom.labels_from_contours({"LV wall": contours["LV endocardium"]})


def test_ed_es_follow_the_myocardium_contour():
    both = {"LV endocardium", "RV endocardium"}
    assert dicom.ed_es_from_contours({3: both | {"LV epicardium"}, 11: both, 7: set()}) == (3, 11)
    with pytest.raises(ArgumentError, match="found"):
        dicom.ed_es_from_contours({0: both, 5: both})                   # two frames without myocardium
    with pytest.raises(ArgumentError, match="found"):
        dicom.ed_es_from_contours({0: both | {"LV epicardium"}})        # no ES


def _write_cine(tmp_path, affine):
    """A 4-slice, 6-frame cine of discs in the Sunnybrook layout, with overlay contours at ED (1)
    and ES (4)."""
    nx, ny, nz, nt = 30, 26, 4, 6
    image = np.zeros((nx, ny, nz, nt), np.float32)
    labels = np.zeros((nx, ny, nz, nt), np.uint8)
    for t in range(nt):
        radius = 6 - abs(t - 1) * 0.8                   # LV largest at t = 1, smallest at t = 4
        for z in range(nz):
            lv = _disc((nx, ny), (15, 14), radius)
            epi = _disc((nx, ny), (15, 14), radius + 3)
            rv = _disc((nx, ny), (5, 14), 3)
            labels[epi, z, t], labels[lv, z, t], labels[rv, z, t] = 2, 3, 1
            image[..., z, t] = 100.0 * (labels[..., z, t] == 3) + 40.0 * (labels[..., z, t] == 2) + z + t
    series = sunnybrook.write_case(tmp_path, "SCD0000101", image, labels, (1.5, 1.25, 8.0),
                                   contour_frames=[1], affine=affine)
    cine = dicom.read_dicom_cine(series)
    for t, with_myo in ((1, True), (4, False)):
        for z, path in enumerate(cine.frames[t]):
            ds = pydicom.dcmread(path)
            lab = labels[:, :, z, t].T                          # (rows, columns)
            regions = {"LV endocardium": lab == 3, "RV endocardium": lab == 1}
            if with_myo:
                regions["LV epicardium"] = np.isin(lab, (2, 3))
            for k, (name, region) in enumerate(regions.items()):
                rows, cols = np.nonzero(region)
                r0, c0 = rows.min(), cols.min()
                outline = dicom.contour_of(region)[r0:rows.max() + 1, c0:cols.max() + 1]
                dicom.add_overlay(ds, outline, group=0x6000 + 2 * k, origin=(r0 + 1, c0 + 1), description=name)
            ds.save_as(path)
    return series, image, labels


def test_cine_overlays_give_labels_ed_es_and_nifti_geometry(tmp_path):
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.5, 1.25, 8.0])
    affine[:3, 3] = (-20.0, 35.0, 12.5)
    series, image, labels = _write_cine(tmp_path, affine)

    got, ed, es, contoured = dicom.read_contour_labels(series)
    assert (ed, es) == (1, 4) and set(contoured) == {1, 4}
    np.testing.assert_array_equal(got[..., 1], labels[..., 1])
    es_truth = np.where(labels[..., 4] == 2, 0, labels[..., 4])         # no myocardium at ES
    np.testing.assert_array_equal(got[..., 4], es_truth)
    assert not got[..., [0, 2, 3, 5]].any()

    cine = dicom.read_dicom_cine(series)
    np.testing.assert_allclose(cine.affine, affine, atol=1e-4)
    np.testing.assert_allclose(cine.array, image, atol=0.01)          # 16-bit storage with rescale
    out = write_image(cine.image, tmp_path / "cine.nii.gz")
    nifti = load_nifti(out)
    assert nifti.shape == image.shape
    np.testing.assert_allclose(nifti.affine, affine, atol=1e-4)
    assert nifti.header.get_zooms()[3] == pytest.approx(1000.0 / 6, rel=1e-4)   # ms per frame
    reread = sitk.ReadImage(str(out))
    np.testing.assert_allclose(reread.GetDirection(), cine.image.GetDirection(), atol=1e-5)


def test_cine_with_a_missing_slice_is_refused(tmp_path):
    series, _, _ = _write_cine(tmp_path, np.diag([1.5, 1.25, 8.0, 1.0]))
    sorted(series.iterdir())[5].unlink()
    with pytest.raises(FileFormatError, match="missing"):
        dicom.read_dicom_cine(series)


def test_cine_with_uneven_slice_spacing_is_refused(tmp_path):
    series, _, _ = _write_cine(tmp_path, np.diag([1.5, 1.25, 8.0, 1.0]))
    cine = dicom.read_dicom_cine(series)
    for frame in cine.frames:                      # move every frame's last slice 3 mm further
        ds = pydicom.dcmread(frame[-1])
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1], ipp[2] + 3.0]
        ds.save_as(frame[-1])
    with pytest.raises(FileFormatError, match="unevenly spaced"):
        dicom.read_dicom_cine(series)


def test_an_overlay_with_an_unknown_name_is_refused(tmp_path):
    series, _, _ = _write_cine(tmp_path, np.diag([1.5, 1.25, 8.0, 1.0]))
    path = dicom.read_dicom_cine(series).frames[1][0]
    ds = pydicom.dcmread(path)
    dicom.add_overlay(ds, np.ones((2, 2), bool), group=0x601E, description="scar")
    ds.save_as(path)
    with pytest.raises(FileFormatError, match="scar"):
        dicom.read_contour_labels(series)


@pytest.mark.parametrize("content", [b"", b"not a DICOM file\n", b"\0" * 128 + b"DICM" + b"\x02\x00"])
def test_a_damaged_file_in_a_cine_folder_is_named(tmp_path, content):
    series, _, _ = _write_cine(tmp_path, np.diag([1.5, 1.25, 8.0, 1.0]))
    bad = sorted(series.iterdir())[3]
    bad.write_bytes(content)
    for read in (dicom.read_dicom_cine, dicom.read_contour_labels):
        with pytest.raises(FileFormatError, match=bad.name):
            read(series)
