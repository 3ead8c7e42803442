"""Tests of cmrlab.data.preprocess: SimpleITK as the resampling oracle, exact inverses, geometry."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from cmrlab.data.io import voxel_to_world
from cmrlab.data.preprocess import (
    crop_or_pad,
    crop_start,
    min_max_normalise,
    preprocess_volume,
    resample_inplane,
    resampled_size,
)
from cmrlab.errors import ArgumentError


def _sitk_resample(array: np.ndarray, spacing, new_spacing, interpolator) -> np.ndarray:
    """SimpleITK's Resample onto the grid our convention defines (same origin, FOV kept)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))   # sitk x = our axis 0
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin((12.5, -40.0, 3.0))
    size = [resampled_size(array.shape[0], spacing[0], new_spacing[0]),
            resampled_size(array.shape[1], spacing[1], new_spacing[1]), array.shape[2]]
    reference = sitk.Image(size, image.GetPixelID())
    reference.SetSpacing((new_spacing[0], new_spacing[1], float(spacing[2])))
    reference.SetOrigin(image.GetOrigin())
    out = sitk.Resample(image, reference, sitk.Transform(), interpolator, 0.0, image.GetPixelID(), True)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


def _reference_resample(array: np.ndarray, step, size, order: str) -> np.ndarray:
    """ITK's resampling rule written out in NumPy (cmrlab's own code before it called SimpleITK):
    output pixel j samples input index j·step; bilinear with edges replicated, and a sample more
    than half a pixel past the last pixel takes the nearest pixel; nearest rounds halves up."""
    def sample(a, axis, coords, order):
        n = a.shape[axis]
        coords = np.clip(coords, 0.0, n - 1.0)
        if order == "nearest":
            return np.take(a, np.minimum(np.floor(coords + 0.5).astype(np.intp), n - 1), axis=axis)
        low = np.minimum(np.floor(coords).astype(np.intp), n - 1)
        high = np.minimum(low + 1, n - 1)
        w = (coords - low).reshape([-1 if i == axis else 1 for i in range(a.ndim)])
        lo, hi = np.take(a, low, axis=axis).astype(np.float64), np.take(a, high, axis=axis).astype(np.float64)
        return lo + w * (hi - lo)

    coords = [np.arange(size[axis], dtype=np.float64) * step[axis] for axis in (0, 1)]
    out = array
    for axis in (0, 1):
        out = sample(out, axis, coords[axis], order)
    if order == "nearest":
        return out
    outside = [c >= n - 0.5 for c, n in zip(coords, array.shape[:2])]
    mask = (outside[0][:, None] | outside[1][None, :]).reshape(*size, *[1] * (array.ndim - 2))
    return np.where(mask, _reference_resample(array, step, size, "nearest"), out)


@pytest.mark.parametrize("shape", [(23, 31), (23, 31, 5), (17, 12, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_resampling_follows_the_written_out_rule(shape, dtype):
    """Any number of later axes, any dtype: the same numbers as the rule written out, the
    documented dtypes (float kept, integers → float32; labels keep theirs)."""
    rng = np.random.default_rng(sum(shape))
    image = (rng.random(shape) * 200).astype(dtype)
    for spacing in ((1.46, 0.83), (2.5, 2.5), (0.61, 1.9)):
        size = (resampled_size(shape[0], spacing[0], 1.0), resampled_size(shape[1], spacing[1], 1.0))
        step = (1.0 / spacing[0], 1.0 / spacing[1])
        ours = resample_inplane(image, spacing, 1.0)
        assert ours.shape == (*size, *shape[2:])
        assert ours.dtype == (dtype if np.issubdtype(dtype, np.floating) else np.float32)
        np.testing.assert_allclose(ours, _reference_resample(image, step, size, "linear"), rtol=1e-6, atol=1e-4)
        labels = image.astype(np.int64) % 5
        for ldtype in (np.uint8, np.int32, np.bool_):
            lab = labels.astype(ldtype) if ldtype is not np.bool_ else labels > 2
            got = resample_inplane(lab, spacing, 1.0, order="nearest")
            assert got.dtype == lab.dtype
            np.testing.assert_array_equal(got, _reference_resample(lab, step, size, "nearest"))


@pytest.mark.parametrize("shape, spacing", [((37, 30, 4), (1.46, 1.25, 8.0)),   # last sample past n - 1/2
                                            ((37, 29, 3), (1.37, 1.68, 5.0)),   # ACDC's range
                                            ((40, 33, 2), (0.7, 0.8, 10.0))])   # downsampling
def test_resampling_equals_simpleitk(shape, spacing):
    rng = np.random.default_rng(1)
    image = rng.random(shape).astype(np.float32)
    labels = rng.integers(0, 4, shape).astype(np.uint8)
    ours = resample_inplane(image, spacing, (1.0, 1.0), order="linear")
    oracle = _sitk_resample(image, spacing, (1.0, 1.0), sitk.sitkLinear)
    assert ours.shape == oracle.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, oracle, atol=2e-6)
    ours_lab = resample_inplane(labels, spacing, (1.0, 1.0), order="nearest")
    assert ours_lab.dtype == np.uint8
    np.testing.assert_array_equal(ours_lab, _sitk_resample(labels, spacing, (1.0, 1.0), sitk.sitkNearestNeighbor))


def test_resampling_worked_example():
    # 3 pixels at 2 mm → 6 pixels at 1 mm: samples at input index 0, 0.5, 1, 1.5, 2, 2.5 (clamped)
    row = np.array([0.0, 10.0, 30.0], np.float32)[:, None]
    out = resample_inplane(row, (2.0, 1.0), (1.0, 1.0))
    np.testing.assert_allclose(out[:, 0], [0, 5, 10, 20, 30, 30])
    lab = resample_inplane(np.array([[1], [2], [3]], np.uint8), (2.0, 1.0), (1.0, 1.0), order="nearest")
    np.testing.assert_array_equal(lab[:, 0], [1, 2, 2, 3, 3, 3])     # halves round up, as in ITK


def test_min_max_and_crop_pad():
    vol = np.array([[2.0, 4.0], [6.0, 10.0]])
    norm, (lo, hi) = min_max_normalise(vol)
    np.testing.assert_allclose(norm, [[0, 0.25], [0.5, 1.0]])
    assert (lo, hi) == (2.0, 10.0)
    assert not min_max_normalise(np.full((3, 3), 7.0))[0].any()
    with pytest.raises(ArgumentError, match="NaN"):
        min_max_normalise(np.array([[1.0, np.nan]]))
    a = np.arange(20).reshape(4, 5)
    assert crop_start((4, 5), (2, 2)) == (1, 1)
    np.testing.assert_array_equal(crop_or_pad(a, (1, 1), (2, 2)), [[6, 7], [11, 12]])
    padded = crop_or_pad(a, crop_start((4, 5), (6, 7)), (6, 7))
    assert padded.shape == (6, 7) and padded.sum() == a.sum()
    np.testing.assert_array_equal(padded[1:5, 1:6], a)


def test_thesis_preprocessing_shapes_and_range():
    rng = np.random.default_rng(0)
    image = rng.random((216, 256, 10)) * 800 + 20
    labels = rng.integers(0, 4, image.shape).astype(np.uint8)
    prep = preprocess_volume(image, (1.5625, 1.5625, 10.0), labels)
    assert prep.image.shape == (176, 176, 10) and prep.image.dtype == np.float32
    assert prep.labels.shape == (176, 176, 10) and prep.labels.dtype == np.uint8
    assert prep.geometry.resampled_shape == (338, 400)          # round(216 · 1.5625), round(256 · 1.5625)
    assert prep.geometry.start == (338 // 2 - 88, 400 // 2 - 88)
    assert 0.0 <= prep.image.min() and prep.image.max() <= 1.0
    assert prep.geometry.spacing == (1.0, 1.0, 10.0)
    # a small image is padded: the padding is 0, the image sits in the centre
    small = preprocess_volume(np.ones((100, 90, 2)) * np.arange(2), (1.0, 1.0, 8.0), normalise=False)
    assert small.geometry.start == (50 - 88, 45 - 88)
    assert small.image[:38].sum() == 0 and small.image[38:138, 43:133, 1].min() == 1


def test_label_round_trip_is_identity_at_1mm():
    rng = np.random.default_rng(2)
    for shape in [(150, 190, 7), (200, 180, 5), (176, 176, 3)]:     # pad, crop, exact
        labels = np.zeros(shape, np.uint8)
        labels[40:110, 50:120] = rng.integers(0, 4, (70, 70, shape[2]))   # inside any 176 window
        image = rng.random(shape).astype(np.float32)
        prep = preprocess_volume(image, (1.0, 1.0, 10.0), labels)
        back = prep.geometry.restore_to_original(prep.labels)
        assert back.shape == shape and back.dtype == np.uint8
        np.testing.assert_array_equal(back, labels)
        np.testing.assert_allclose(prep.geometry.restore_to_original(prep.image, order="linear"),
                                   prep.image.dtype.type(1) * (image - image.min()) / (image.max() - image.min())
                                   * _inside_window(shape, prep.geometry), atol=1e-6)


def _inside_window(shape, geometry) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    (a0, a1), (s0, s1) = geometry.start, geometry.size
    mask[max(a0, 0):a0 + s0, max(a1, 0):a1 + s1] = 1
    return mask


def test_round_trip_at_other_spacing_keeps_geometry_and_most_labels():
    labels = np.zeros((120, 110, 4), np.uint8)
    yy, xx = np.mgrid[:120, :110]
    for k, r in enumerate((30, 20, 12), start=1):
        labels[(yy - 60) ** 2 + (xx - 55) ** 2 < r**2] = k
    affine = np.array([[0.0, -1.37, 0, 100], [1.37, 0, 0, -50], [0, 0, 8.0, 20], [0, 0, 0, 1]])
    prep = preprocess_volume(labels.astype(np.float32), (1.37, 1.37, 8.0), labels, affine=affine)
    back = prep.geometry.restore_to_original(prep.labels)
    assert back.shape == labels.shape
    assert (back == labels).mean() > 0.99                  # only boundary pixels may move
    for k in (1, 2, 3):
        assert abs((back == k).sum() - (labels == k).sum()) / (labels == k).sum() < 0.03
    # the preprocessed affine maps a preprocessed voxel where the original grid has it
    g = prep.geometry
    ijk = np.array([[0, 0, 0], [88, 88, 2], [175, 10, 3]], float)
    original_index = np.stack([(ijk[:, 0] + g.start[0]) * g.step[0], (ijk[:, 1] + g.start[1]) * g.step[1],
                               ijk[:, 2]], 1)
    np.testing.assert_allclose(voxel_to_world(g.affine, ijk), voxel_to_world(affine, original_index), atol=1e-9)
    assert np.allclose(np.linalg.norm(g.affine[:3, :3], axis=0), [1.0, 1.0, 8.0])


def test_given_centre_keeps_the_heart_centred():
    labels = np.zeros((300, 300, 2), np.uint8)
    labels[200:240, 60:100] = 3                              # "heart" far from the image centre
    prep = preprocess_volume(labels.astype(np.float32), (1.0, 1.0, 8.0), labels, size=(64, 64),
                             centre=(220, 80))
    rows, cols = np.nonzero(prep.labels[..., 0])
    assert abs(rows.mean() - 32) <= 1 and abs(cols.mean() - 32) <= 1
    np.testing.assert_array_equal(prep.geometry.restore_to_original(prep.labels), labels)


def test_bad_input_names_the_argument():
    img = np.zeros((10, 10, 3), np.float32)
    with pytest.raises(ArgumentError, match="spacing"):
        preprocess_volume(img, (1.0, -1.0, 5.0))
    with pytest.raises(ArgumentError, match="labels"):
        preprocess_volume(img, (1.0, 1.0, 5.0), np.zeros((10, 9, 3), np.uint8))
    with pytest.raises(ArgumentError, match="integer"):
        preprocess_volume(img, (1.0, 1.0, 5.0), np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ArgumentError, match="size"):
        preprocess_volume(img, (1.0, 1.0, 5.0), size=(0, 4))
    prep = preprocess_volume(img, (1.0, 1.0, 5.0))
    with pytest.raises(ArgumentError, match="in-plane shape"):
        prep.geometry.restore_to_original(np.zeros((10, 10, 3), np.uint8))
