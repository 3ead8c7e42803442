"""Tests of cmrlab.data.io: real files in every format, geometry, clear errors, atomic writes."""
from __future__ import annotations

import copy
import gzip
import importlib.util
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pydicom.data
import pytest
import SimpleITK as sitk
from nibabel.affines import apply_affine
from nibabel.testing import data_path as nibabel_data_path
from pydicom.uid import generate_uid

from cmrlab.data import io
from cmrlab.errors import ArgumentError, CmrlabError, FileFormatError

# nilearn ships the MNI152 template; find it without importing nilearn (slow: it loads sklearn)
NILEARN_DATA = Path(importlib.util.find_spec("nilearn").origin).parent / "datasets" / "data"
MNI_T1 = NILEARN_DATA / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
EXAMPLE4D = Path(nibabel_data_path) / "example4d.nii.gz"
MR_SMALL = Path(pydicom.data.get_testdata_file("MR_small.dcm"))


def oblique_affine() -> np.ndarray:
    """A voxel → world matrix with rotation, anisotropic spacing and translation."""
    angle = np.deg2rad(20.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 1.2, 3.0])
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    return affine


def cut(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def write_dicom_series(folder: Path, n_slices: int = 4, gap: float = 2.0) -> list[Path]:
    """Write ``n_slices`` MR slices (pixels of MR_small + 10·k) of one series into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(MR_SMALL)
    series = generate_uid()
    paths = []
    for k in range(n_slices):
        ds = copy.deepcopy(base)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        x, y, z = (float(v) for v in base.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + gap * k]
        ds.SliceLocation = gap * k
        ds.PixelData = (base.pixel_array + 10 * k).astype(np.int16).tobytes()
        # write in reverse order so that sorting by position, not by name, is tested
        path = folder / f"IM{n_slices - k:04d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------
# reading and writing real formats
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_save_and_load_nifti_round_trip(tmp_path, name):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = io.save_nifti(data, tmp_path / name, affine=oblique_affine())
    img = io.load_nifti(path)
    assert isinstance(img.dataobj, np.ndarray)  # voxels already in memory
    assert np.asanyarray(img.dataobj).dtype == np.int16
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, oblique_affine(), atol=1e-6)
    np.testing.assert_allclose(img.header.get_zooms(), [0.8, 1.2, 3.0], rtol=1e-6)
    assert img.get_filename() == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left over


def test_save_nifti_types_and_image_input(tmp_path):
    mask = np.zeros((3, 3, 2), dtype=bool)
    mask[1, 1, 0] = True
    assert io.load_nifti(io.save_nifti(mask, tmp_path / "m.nii")).get_data_dtype() == np.uint8
    labels = np.array([[[0, 10], [150, 250]]], dtype=np.int64)
    img = io.load_nifti(io.save_nifti(labels, tmp_path / "l.nii.gz"))
    assert img.get_data_dtype() == np.int32
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), labels)
    np.testing.assert_array_equal(img.affine, np.eye(4))  # no affine: 1 mm at the origin
    # a nibabel image saves with its own affine; giving another one too is an error
    io.save_nifti(img, tmp_path / "copy.nii")
    np.testing.assert_array_equal(io.load_nifti(tmp_path / "copy.nii").get_fdata(), labels)
    with pytest.raises(ArgumentError, match="affine"):
        io.save_nifti(img, tmp_path / "x.nii", affine=np.eye(4))
    with pytest.raises(ArgumentError, match="int32 range"):
        io.save_nifti(np.array([[[2**40]]]), tmp_path / "big.nii")
    with pytest.raises(ArgumentError, match="4×4"):
        io.save_nifti(labels, tmp_path / "bad.nii", affine=np.eye(3))


def test_analyze_pair_read_by_both_readers(tmp_path):
    data = np.random.default_rng(0).integers(0, 250, size=(6, 7, 5)).astype(np.uint8)
    analyze = nib.AnalyzeImage(data, np.diag([1.5, 2.0, 2.5, 1.0]))
    nib.save(analyze, tmp_path / "subject-1-T1.hdr")
    assert (tmp_path / "subject-1-T1.img").exists()
    from_hdr = io.load_nifti(tmp_path / "subject-1-T1.hdr")
    from_img = io.load_nifti(tmp_path / "subject-1-T1.img")
    assert isinstance(from_hdr, nib.AnalyzeImage)
    np.testing.assert_array_equal(np.asanyarray(from_hdr.dataobj), data)
    np.testing.assert_array_equal(np.asanyarray(from_img.dataobj), data)
    assert from_hdr.header.get_zooms() == (1.5, 2.0, 2.5)
    image = io.read_image(tmp_path / "subject-1-T1.hdr")
    assert image.GetSize() == (6, 7, 5)
    assert image.GetSpacing() == (1.5, 2.0, 2.5)
    # SimpleITK arrays are indexed (z, y, x): reverse the axes to compare with nibabel's (x, y, z)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), data)
    # an Analyze image is converted to NIfTI-1 when saved as .nii
    io.save_nifti(from_hdr, tmp_path / "converted.nii.gz")
    converted = io.load_nifti(tmp_path / "converted.nii.gz")
    assert isinstance(converted, nib.Nifti1Image)
    np.testing.assert_array_equal(converted.get_fdata(), data)


@pytest.mark.parametrize(("name", "compress"), [("vol.mha", False), ("vol.mha", True),
                                                ("vol.nrrd", True), ("vol.nii.gz", False)])
def test_write_and_read_image_round_trip(tmp_path, name, compress):
    array = np.random.default_rng(1).normal(size=(5, 6, 7)).astype(np.float32)  # (z, y, x)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.9, 1.1, 2.5))
    image.SetOrigin((-10.0, 20.0, 5.0))
    rotation = oblique_affine()[:3, :3] / [0.8, 1.2, 3.0]  # unit columns: a direction matrix
    image.SetDirection(tuple(rotation.reshape(-1)))
    path = io.write_image(image, tmp_path / name, compress=compress)
    back = io.read_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), array)
    np.testing.assert_allclose(back.GetSpacing(), (0.9, 1.1, 2.5), rtol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), (-10.0, 20.0, 5.0), atol=1e-5)
    np.testing.assert_allclose(back.GetDirection(), rotation.reshape(-1), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_read_dicom_tags_and_pixels():
    ds = io.read_dicom(MR_SMALL)
    assert ds.Modality == "MR"
    assert (ds.Rows, ds.Columns) == (64, 64)
    assert [float(v) for v in ds.PixelSpacing] == [0.3125, 0.3125]
    assert ds.pixel_array.shape == (64, 64)
    assert ds.pixel_array.dtype == np.int16
    image = io.read_image(MR_SMALL)  # one DICOM file through SimpleITK: a 64×64×1 volume
    assert image.GetSize() == (64, 64, 1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image)[0], ds.pixel_array)
    np.testing.assert_allclose(image.GetOrigin(), [float(v) for v in ds.ImagePositionPatient])


def test_read_dicom_series_sorts_slices_by_position(tmp_path):
    write_dicom_series(tmp_path / "series", n_slices=4, gap=2.0)
    volume = io.read_dicom_series(tmp_path / "series")
    assert volume.GetSize() == (64, 64, 4)
    np.testing.assert_allclose(volume.GetSpacing(), (0.3125, 0.3125, 2.0), rtol=1e-6)
    base = pydicom.dcmread(MR_SMALL).pixel_array.astype(np.int32)
    array = sitk.GetArrayFromImage(volume)  # (z, y, x)
    for k in range(4):
        np.testing.assert_array_equal(array[k], base + 10 * k)


def test_read_dicom_series_errors(tmp_path):
    folder = tmp_path / "series"
    paths = write_dicom_series(folder, n_slices=3)
    with pytest.raises(FileFormatError, match="is a file, not a folder"):
        io.read_dicom_series(paths[0])
    with pytest.raises(FileFormatError, match="folder not found"):
        io.read_dicom_series(tmp_path / "nowhere")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here\n")
    with pytest.raises(FileFormatError, match="no DICOM series"):
        io.read_dicom_series(tmp_path / "notes")
    with pytest.raises(ArgumentError, match="series_id"):
        io.read_dicom_series(folder, series_id="1.2.3")
    # a second series in the same folder: the caller must choose
    write_dicom_series(tmp_path / "other", n_slices=2)
    for p in (tmp_path / "other").iterdir():
        shutil.move(p, folder / ("B" + p.name))
    with pytest.raises(FileFormatError, match="holds 2 DICOM series"):
        io.read_dicom_series(folder)
    chosen = pydicom.dcmread(folder / "BIM0001.dcm").SeriesInstanceUID
    assert io.read_dicom_series(folder, series_id=chosen).GetSize() == (64, 64, 2)


def test_read_dicom_series_reports_a_damaged_slice(tmp_path):
    paths = write_dicom_series(tmp_path / "series", n_slices=5)
    cut(paths[2], paths[2], keep=0.5)  # GDCM alone would silently drop this slice
    with pytest.raises(FileFormatError) as info:
        io.read_dicom_series(tmp_path / "series")
    assert paths[2].name in str(info.value)
    assert "truncated" in str(info.value)


# ----------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [MNI_T1, EXAMPLE4D], ids=["mni152", "example4d"])
def test_sitk_affine_agrees_with_nibabel(path):
    nib_img = io.load_nifti(path)
    sitk_img = io.read_image(path)
    np.testing.assert_allclose(io.sitk_to_nibabel_affine(sitk_img), nib_img.affine, atol=1e-4)
    array = sitk.GetArrayFromImage(sitk_img)
    np.testing.assert_array_equal(array.transpose(*reversed(range(array.ndim))),
                                  np.asanyarray(nib_img.dataobj))


def test_real_volumes_geometry_facts():
    mni = io.load_nifti(MNI_T1)
    assert mni.shape == (197, 233, 189)
    assert io.orientation_codes(mni.affine) == ("R", "A", "S")
    np.testing.assert_allclose(io.spacing_from_affine(mni.affine), [1.0, 1.0, 1.0])
    # the MNI origin (0, 0, 0) mm lies in voxel (98, 134, 72)
    np.testing.assert_allclose(io.world_to_voxel(mni.affine, [0.0, 0.0, 0.0]), [98, 134, 72])
    ex4d = io.load_nifti(EXAMPLE4D)
    assert ex4d.shape == (128, 96, 24, 2)
    assert io.orientation_codes(ex4d.affine) == ("L", "A", "S")
    np.testing.assert_allclose(io.spacing_from_affine(ex4d.affine), ex4d.header.get_zooms()[:3],
                               rtol=1e-5)


def test_voxel_world_round_trip_matches_nibabel():
    affine = oblique_affine()
    ijk = np.random.default_rng(2).uniform(0, 50, size=(10, 3))
    xyz = io.voxel_to_world(affine, ijk)
    np.testing.assert_allclose(xyz, apply_affine(affine, ijk), atol=1e-10)
    np.testing.assert_allclose(io.world_to_voxel(affine, xyz), ijk, atol=1e-10)
    # worked example: voxel (1, 0, 0) moves by the first column of the affine
    np.testing.assert_allclose(io.voxel_to_world(affine, [1, 0, 0]) - affine[:3, 3], affine[:3, 0])
    # any leading shape, (3,) included
    grid = ijk.reshape(2, 5, 3)
    assert io.voxel_to_world(affine, grid).shape == (2, 5, 3)
    assert io.world_to_voxel(affine, xyz[0]).shape == (3,)
    np.testing.assert_allclose(io.spacing_from_affine(affine), [0.8, 1.2, 3.0])


def test_sitk_to_nibabel_affine_by_hand():
    image = sitk.Image(4, 5, 6, sitk.sitkUInt8)
    image.SetSpacing((2.0, 3.0, 4.0))
    image.SetOrigin((10.0, 20.0, 30.0))  # LPS: 10 mm left, 20 mm posterior, 30 mm superior
    expected = np.array([[-2.0, 0, 0, -10.0], [0, -3.0, 0, -20.0], [0, 0, 4.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(io.sitk_to_nibabel_affine(image), expected)
    assert io.orientation_codes(expected) == ("L", "P", "S")
    # the affine maps an index to the same point as SimpleITK, once x and y are negated
    lps = np.array(image.TransformIndexToPhysicalPoint((1, 2, 3)))
    np.testing.assert_allclose(io.voxel_to_world(expected, [1, 2, 3]), lps * [-1, -1, 1])
    flat = sitk.Image(4, 5, sitk.sitkUInt8)
    flat.SetSpacing((0.5, 0.25))
    np.testing.assert_array_equal(np.diag(io.sitk_to_nibabel_affine(flat)), [-0.5, -0.25, 1, 1])


def test_geometry_argument_errors():
    with pytest.raises(ArgumentError, match="4×4"):
        io.voxel_to_world(np.eye(3), [0, 0, 0])
    with pytest.raises(ArgumentError, match="3 coordinates"):
        io.voxel_to_world(np.eye(4), np.zeros((5, 2)))
    with pytest.raises(ArgumentError, match="singular"):
        io.world_to_voxel(np.diag([1.0, 0.0, 1.0, 1.0]), [0, 0, 0])
    with pytest.raises(ArgumentError, match="finite"):
        io.orientation_codes(np.full((4, 4), np.nan))
    with pytest.raises(ArgumentError, match="SimpleITK.Image"):
        io.sitk_to_nibabel_affine(np.zeros((3, 3, 3)))


# ----------------------------------------------------------------------------------------------
# bad input: every case is a FileFormatError naming the file and the problem
# ----------------------------------------------------------------------------------------------
@pytest.fixture()
def bad_files(tmp_path):
    """A folder of broken files, keyed by case name: (path, problem words)."""
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(32, 32, 32)).astype(np.float32)  # incompressible, ~128 KiB
    good_gz = io.save_nifti(noise, tmp_path / "good.nii.gz")
    good_nii = io.save_nifti(noise, tmp_path / "good.nii")
    good_mha = io.write_image(sitk.GetImageFromArray(noise), tmp_path / "good.mha")
    files = {
        "missing": (tmp_path / "missing.nii.gz", "not found"),
        "folder": (tmp_path / "subject01.nii.gz", "is a folder"),
        "empty": (tmp_path / "empty.nii.gz", "empty"),
        "gz cut in half": (cut(good_gz, tmp_path / "half.nii.gz"), "truncated"),
        "nii short data": (cut(good_nii, tmp_path / "short.nii", keep=0.9), "truncated"),
        "mha short data": (cut(good_mha, tmp_path / "short.mha", keep=0.6), "truncated"),
        "text as nii": (tmp_path / "notes.nii", "not a NIfTI"),
        "text as nii.gz": (tmp_path / "notes2.nii.gz", "not gzip-compressed"),
        "text as mha": (tmp_path / "notes.mha", "not a valid MetaImage"),
        "unsupported": (tmp_path / "volume.xyz", "unsupported file extension"),
    }
    (tmp_path / "subject01.nii.gz").mkdir()
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    text = "This is a text file, not an image.\n" * 20
    for name in ("notes.nii", "notes2.nii.gz", "notes.mha", "volume.xyz"):
        (tmp_path / name).write_text(text)
    # a gzip stream that is complete but holds fewer voxels than the header promises
    header_and_half = (tmp_path / "good.nii").read_bytes()[: 352 + noise.nbytes // 2]
    (tmp_path / "shortgz.nii.gz").write_bytes(gzip.compress(header_and_half))
    files["gz complete but short"] = (tmp_path / "shortgz.nii.gz", "truncated")
    return files


NIFTI_CASES = ["missing", "folder", "empty", "gz cut in half", "nii short data", "text as nii",
               "text as nii.gz", "unsupported", "gz complete but short"]


@pytest.mark.parametrize("case", NIFTI_CASES)
@pytest.mark.parametrize("reader", [io.load_nifti, io.read_image], ids=["load_nifti", "read_image"])
def test_bad_nifti_files(bad_files, case, reader):
    path, words = bad_files[case]
    with pytest.raises(FileFormatError) as info:
        reader(path)
    message = str(info.value)
    assert path.name in message
    assert words in message
    assert message.startswith(str(path))
    assert isinstance(info.value, CmrlabError)


@pytest.mark.parametrize("case", ["mha short data", "text as mha"])
def test_bad_metaimage_files(bad_files, case):
    path, words = bad_files[case]
    with pytest.raises(FileFormatError, match=words) as info:
        io.read_image(path)
    assert path.name in str(info.value)


def test_truncated_nifti_is_caught_although_simpleitk_reads_it(bad_files):
    path, _ = bad_files["nii short data"]
    sitk.ReadImage(str(path))  # SimpleITK alone returns an image with made-up voxels...
    with pytest.raises(FileFormatError, match="truncated"):
        io.read_image(path)  # ...read_image refuses it


def test_missing_file_message_suggests_the_data_root(bad_files):
    path, _ = bad_files["missing"]
    with pytest.raises(FileFormatError, match=r"check the path and the data root"):
        io.load_nifti(path)
    with pytest.raises(FileFormatError, match="did you mean 'good.nii.gz'"):
        io.load_nifti(path.with_name("god.nii.gz"))


def test_analyze_pair_with_missing_img(tmp_path):
    nib.save(nib.AnalyzeImage(np.zeros((2, 2, 2), np.uint8), np.eye(4)), tmp_path / "s.hdr")
    (tmp_path / "s.img").unlink()
    with pytest.raises(FileFormatError, match=r"s\.img, is missing"):
        io.load_nifti(tmp_path / "s.hdr")


@pytest.mark.parametrize("reader", [io.read_dicom, io.read_image], ids=["read_dicom", "read_image"])
def test_bad_dicom_files(tmp_path, reader):
    cases = {
        "cut in the pixels": (cut(MR_SMALL, tmp_path / "pixels.dcm", keep=0.6), "truncated"),
        "cut before the pixels": (cut(MR_SMALL, tmp_path / "tags.dcm", keep=0.08), "truncated"),
        "cut in the meta header": (cut(MR_SMALL, tmp_path / "meta.dcm", keep=0.015), "truncated"),
        "text": (tmp_path / "notes.dcm", "not a DICOM file"),
        "empty": (tmp_path / "empty.dcm", "empty"),
        "missing": (tmp_path / "missing.dcm", "not found"),
    }
    (tmp_path / "notes.dcm").write_text("not a DICOM file\n" * 20)
    (tmp_path / "empty.dcm").write_bytes(b"")
    for path, words in cases.values():
        with pytest.raises(FileFormatError) as info:
            reader(path)
        assert path.name in str(info.value)
        assert words in str(info.value)


# ----------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------
def test_failed_save_nifti_leaves_nothing_behind(tmp_path, monkeypatch):
    existing = io.save_nifti(np.ones((2, 2, 2), np.float32), tmp_path / "keep.nii.gz")
    before = existing.read_bytes()

    def broken_save(img, filename):
        Path(filename).write_bytes(b"half a file")  # the writer got part way...
        raise OSError("No space left on device")  # ...then failed

    monkeypatch.setattr(io.nib, "save", broken_save)
    with pytest.raises(FileFormatError, match="No space left") as info:
        io.save_nifti(np.zeros((2, 2, 2)), tmp_path / "new.nii.gz")
    assert "new.nii.gz" in str(info.value)
    with pytest.raises(FileFormatError):
        io.save_nifti(np.zeros((2, 2, 2)), existing)
    assert sorted(os.listdir(tmp_path)) == ["keep.nii.gz"]  # no partial, no temporary
    assert existing.read_bytes() == before  # the old file is untouched


def test_failed_write_image_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_write(image, filename, *args):
        Path(filename).write_bytes(b"partial")
        raise RuntimeError("ITK ERROR: write failed")

    monkeypatch.setattr(io.sitk, "WriteImage", broken_write)
    with pytest.raises(FileFormatError, match="could not be written"):
        io.write_image(sitk.Image(3, 3, 3, sitk.sitkUInt8), tmp_path / "sub" / "x.mha")
    assert list((tmp_path / "sub").iterdir()) == []


def test_writer_argument_errors(tmp_path):
    image = sitk.Image(3, 3, 3, sitk.sitkUInt8)
    with pytest.raises(FileFormatError, match="two files"):
        io.write_image(image, tmp_path / "x.mhd")
    with pytest.raises(FileFormatError, match="unsupported file extension"):
        io.save_nifti(np.zeros((2, 2, 2)), tmp_path / "x.mha")
    (tmp_path / "dir.nii").mkdir()
    with pytest.raises(FileFormatError, match="is a folder"):
        io.save_nifti(np.zeros((2, 2, 2)), tmp_path / "dir.nii")
    with pytest.raises(ArgumentError, match="SimpleITK.Image"):
        io.write_image(np.zeros((2, 2, 2)), tmp_path / "x.mha")
    with pytest.raises(ArgumentError, match="path"):
        io.load_nifti(42)


def test_save_labels_like_copies_the_reference_geometry(tmp_path):
    import nibabel as nib

    from cmrlab.data.io import save_labels_like
    from cmrlab.errors import ArgumentError

    affine = np.array([[0, -1.5, 0, 90], [1.25, 0, 0, -40], [0, 0, 8, 12], [0, 0, 0, 1]], float)
    ref = nib.Nifti1Image(np.zeros((6, 5, 4, 3), np.int16), affine)
    ref.header.set_zooms((1.25, 1.5, 8.0, 33.3))
    ref.set_qform(affine, code=1)
    ref.set_sform(affine, code=2)
    labels = np.random.default_rng(0).integers(0, 4, (6, 5, 4, 3))
    out = save_labels_like(labels, ref, tmp_path / "seg.nii.gz")
    back = nib.load(out)
    assert back.get_data_dtype() == np.uint8 and np.array_equal(np.asarray(back.dataobj), labels)
    np.testing.assert_allclose(back.affine, affine)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 2
    np.testing.assert_allclose(back.header.get_zooms(), (1.25, 1.5, 8.0, 33.3), rtol=1e-6)
    for bad, message in [(labels[..., 0], "shape"), (labels + 300, "0..255"), (labels - 1, "0..255"),
                         (labels + 0.5, "whole numbers")]:
        with pytest.raises(ArgumentError, match=message):
            save_labels_like(bad, ref, tmp_path / "bad.nii.gz")
    with pytest.raises(ArgumentError, match="NIfTI image"):
        save_labels_like(labels, np.zeros((6, 5, 4, 3)), tmp_path / "bad.nii.gz")
    assert not (tmp_path / "bad.nii.gz").exists()
