"""Tests of cmrlab.data.sunnybrook: contour tracing and filling, DICOM geometry round trip,
identical bytes, and clean errors for damaged DICOM and contour files."""
from __future__ import annotations


import numpy as np
import pydicom
import pytest

from cmrlab.data import io, sunnybrook as sb
from cmrlab.errors import FileFormatError

SHAPE = (48, 40, 3, 5)  # X (DICOM columns), Y (rows), Z, T
SPACING = (1.37, 1.25, 8.0)


def right_handed_oblique() -> np.ndarray:
    a = np.deg2rad(30.0)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    tilt = np.deg2rad(15.0)
    rotation = rotation @ np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(SPACING)
    affine[:3, 3] = [40.0, -110.0, 60.0]
    return affine


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def ellipse(shape, centre, axes, angle):
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    u = (x - centre[0]) * c + (y - centre[1]) * s
    v = -(x - centre[0]) * s + (y - centre[1]) * c
    return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1


def lv_labels(shape=SHAPE):
    """LV cavity (3) in a myocardial ring (2), contracting over the cycle, off-centre, tilted."""
    labels = np.zeros(shape, np.uint8)
    for z in range(shape[2]):
        for t in range(shape[3]):
            k = 1 - 0.25 * np.sin(np.pi * t / (shape[3] - 1)) - 0.1 * z
            epi = ellipse(shape[:2], (23.4, 19.7), (13 * k + 2, 11 * k + 2), 0.4)
            endo = ellipse(shape[:2], (23.4, 19.7), (9 * k, 7 * k), 0.4)
            labels[..., z, t][epi] = 2
            labels[..., z, t][endo] = 3
    return labels


def cine(labels):
    rng = np.random.default_rng(3)
    return (300 * (labels == 3) + 120 * (labels == 2) + 60 + rng.normal(0, 5, labels.shape)).astype(np.float32)


@pytest.fixture
def written(tmp_path):
    labels = lv_labels()
    image = cine(labels)
    series = sb.write_case(tmp_path, "SCD0000201", image, labels, SPACING, contour_frames=(0, 2),
                           group="HYP", affine=right_handed_oblique(), time_step=45.0)
    return tmp_path, series, image, labels


# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_fill_of_traced_outline_reproduces_the_mask(angle):
    shape = (64, 56)
    cavity = ellipse(shape, (30.3, 25.8), (9.5, 6.2), angle)
    wall = ellipse(shape, (30.3, 25.8), (14.0, 10.5), angle)
    endo, epi = sb.trace_outline(cavity), sb.trace_outline(wall)
    assert np.any(endo != np.round(endo))  # sub-pixel points, not pixel centres
    mask = sb.fill_contours(shape, endo, epi)
    assert dice(mask == 3, cavity) >= 0.95
    assert dice(mask == 2, wall & ~cavity) >= 0.95
    assert abs(sb._polygon_area(endo) - cavity.sum()) / cavity.sum() < 0.05
    assert sb.trace_outline(np.zeros(shape, bool)) is None


def test_contour_coordinates_are_x_column_y_row(tmp_path):
    path = tmp_path / "IM-0001-0001-icontour-manual.txt"
    path.write_text("9.5 4.5\n19.5 4.5\n19.5 9.5\n9.5 9.5\n")
    points = sb.read_contour(path, (30, 20))
    mask = sb.fill_contours((30, 20), points, None)
    expected = np.zeros((30, 20), np.uint8)
    expected[10:20, 5:10] = 3  # X = column 10..19, Y = row 5..9
    np.testing.assert_array_equal(mask, expected)


def test_round_trip_geometry_pixels_and_masks(written):
    root, series, image, labels = written
    assert series == root / "SCD_IMAGES_01" / "SCD0000201" / "CINESAX_300"
    assert len(list(series.glob("IM-0001-*.dcm"))) == 15
    case = sb.read_case(root, "SCD0000201")
    assert (case.id, case.original_id, case.group) == ("SCD0000201", "SC-HYP-2", "HYP")
    np.testing.assert_allclose(case.affine, right_handed_oblique(), atol=1e-4)
    np.testing.assert_allclose(case.spacing, SPACING, atol=1e-6)
    slope = (image.max() - image.min()) / 65535
    assert np.abs(case.image4d - image).max() <= slope
    np.testing.assert_allclose(case.trigger_times, [0, 45, 90, 135, 180])
    np.testing.assert_array_equal(case.image_numbers, np.arange(1, 16).reshape(3, 5))
    assert case.contour_frames == (0, 2) and case.ed_es() == (0, 2)
    for z in range(3):
        for t in (0, 2):
            assert dice(case.labels4d[..., z, t] == 3, labels[..., z, t] == 3) >= 0.95
            assert dice(case.labels4d[..., z, t] == 2, labels[..., z, t] == 2) >= 0.95
    assert not case.labels4d[..., 1].any()  # no contours at phase 1
    # the same patient by its original id and by its folder
    assert sb.read_case(root, "SC-HYP-02").id == "SCD0000201"
    assert sb.read_case(series.parent).image4d.shape == SHAPE


def test_dicom_tags(written):
    _, series, image, _ = written
    ds = pydicom.dcmread(series / "IM-0001-0008.dcm")  # slice 1, phase 2
    assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert ds.InstanceNumber == 8 and ds.CardiacNumberOfImages == 5
    assert float(ds.TriggerTime) == 90.0
    assert [float(v) for v in ds.PixelSpacing] == [1.25, 1.37]
    assert float(ds.SliceThickness) == 8.0 and ds.BitsAllocated == 16
    assert (ds.Rows, ds.Columns) == (40, 48)
    pixels = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.abs(pixels.T - image[:, :, 1, 2]).max() <= float(ds.RescaleSlope)
    position = np.asarray(ds.ImagePositionPatient, float)
    expected = np.diag([-1, -1, 1]) @ (right_handed_oblique() @ [0, 0, 1, 1])[:3]
    np.testing.assert_allclose(position, expected, atol=1e-4)
    normal = np.cross(np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float))
    assert float(ds.SliceLocation) == pytest.approx(position @ normal, abs=1e-3)
    sitk_image = io.read_image(series / "IM-0001-0008.dcm")
    assert sitk_image.GetSpacing()[:2] == pytest.approx((1.37, 1.25))
    first = pydicom.dcmread(series / "IM-0001-0001.dcm")
    assert first.SeriesInstanceUID == ds.SeriesInstanceUID != ds.SOPInstanceUID


def test_identical_bytes(tmp_path):
    labels = lv_labels()
    for name in ("a", "b"):
        sb.write_case(tmp_path / name, "SCD0000101", cine(labels), labels, SPACING, contour_frames=[0, 3])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 15 + 1 + 2 * 3 * 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_list_and_check(written):
    root = written[0]
    labels = lv_labels()
    sb.write_case(root, "SCD0001301", cine(labels), labels, SPACING, contour_frames=(0,), group="HF-NI")
    assert [p.name for p in sb.list_cases(root)] == ["SCD0000201", "SCD0001301"]
    for deep in (False, True):
        report = sb.check_dataset(root, deep=deep)
        assert report.n_cases == 2
        assert report.per_group == {"HF-NI": 1, "HYP": 1}
        assert report.per_split == {"SCD_IMAGES_01": 1, "SCD_IMAGES_02": 1}
    assert "SC-HF-NI-13" in (root / sb.PATIENT_CSV).read_text()


# ----------------------------------------------------------------------------------------------
def test_damaged_dicom_header(written):
    root, series, _, _ = written
    path = series / "IM-0001-0007.dcm"
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(raw[:200]))  # cut inside the header
    with pytest.raises(FileFormatError) as info:
        sb.read_case(root, "SCD0000201")
    assert info.value.path == str(path)


def test_dicom_with_different_geometry(written):
    root, series, _, _ = written
    path = series / "IM-0001-0004.dcm"
    ds = pydicom.dcmread(path)
    ds.PixelSpacing = [1.0, 1.0]
    ds.save_as(path)
    with pytest.raises(FileFormatError, match="different size, orientation or pixel spacing"):
        sb.read_case(root, "SCD0000201")


def _contour(root):
    return root / "SCD_ManualContours" / "SC-HYP-02" / "contours-manual" / "IRCCI-expert"


def test_contour_file_with_a_bad_line(written):
    root = written[0]
    path = _contour(root) / "IM-0001-0001-icontour-manual.txt"
    lines = path.read_text().splitlines()
    lines[2] = "12.5;13.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match=r"line 3 '12\.5;13\.0' should hold two numbers") as info:
        sb.read_case(root, "SCD0000201")
    assert info.value.path == str(path)


def test_contour_problems(written, tmp_path):
    root = written[0]
    path = _contour(root) / "IM-0001-0001-ocontour-manual.txt"
    path.write_text("10 10\n500 10\n10 20\n")
    with pytest.raises(FileFormatError, match="outside the 48×40 image"):
        sb.read_case(root, "SCD0000201")
    path.write_text("10 10\n20 10\n")
    with pytest.raises(FileFormatError, match="needs at least 3"):
        sb.read_case(root, "SCD0000201")
    path.unlink()
    orphan = _contour(root) / "IM-0001-0099-icontour-manual.txt"
    orphan.write_text("10 10\n20 10\n10 20\n")
    with pytest.raises(FileFormatError, match="image number 0099") as info:
        sb.read_case(root, "SCD0000201")
    assert info.value.path == str(orphan)


def test_missing_pieces(written):
    root, series, _, _ = written
    csv = root / sb.PATIENT_CSV
    text = csv.read_text()
    csv.write_text(text.replace("SC-HYP-2", "SC-XX-2"))
    with pytest.raises(FileFormatError, match="OriginalID 'SC-XX-2'"):
        sb.read_case(root, "SCD0000201")
    csv.write_text(text)
    for dcm in series.glob("*.dcm"):
        if dcm.name.endswith("0005.dcm"):
            dcm.unlink()
    with pytest.raises(FileFormatError, match="different numbers of phases"):
        sb.read_case(root, "SCD0000201")
    with pytest.raises(FileFormatError, match="not found"):
        sb.read_case(root, "SCD0009901")
