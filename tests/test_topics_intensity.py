"""Intensity normalisation (z-score, percentile clipping, histogram equalisation) and the median
projection over slices 2…n−1."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import exposure

from cmrlab.data.intensity import histogram_equalise, median_projection, percentile_clip, z_score
from cmrlab.errors import ArgumentError


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    img = np.zeros((40, 30), np.float32)
    img[5:35, 5:25] = rng.gamma(4.0, 25.0, (30, 20))      # an object on an empty background
    img[10, 10] = 5000.0                                   # one bright outlier
    return img


def test_z_score_on_all_or_non_zero_voxels(image):
    z = z_score(image)
    assert z.dtype == np.float32 and z.shape == image.shape
    assert abs(z.mean()) < 1e-5 and z.std() == pytest.approx(1.0, abs=1e-5)
    foreground = image != 0
    zf = z_score(image, mask=foreground)
    assert abs(zf[foreground].mean()) < 1e-5 and zf[foreground].std() == pytest.approx(1.0, abs=1e-5)
    # the background is then a negative constant, -mu/sigma of the foreground
    mu, sigma = image[foreground].mean(), image[foreground].std()
    np.testing.assert_allclose(zf[~foreground], -mu / sigma, rtol=1e-5)
    np.testing.assert_array_equal(z_score(np.full((3, 3), 7.0)), 0.0)


def test_percentile_clip(image):
    out = percentile_clip(image, 1, 99)
    assert out.min() == 0.0 and out.max() == 1.0
    q1, q99 = np.percentile(image, [1, 99])
    np.testing.assert_allclose(out, (np.clip(image, q1, q99) - q1) / (q99 - q1), rtol=1e-6)
    plain = percentile_clip(image, 0, 100)
    np.testing.assert_allclose(plain, (image - image.min()) / (image.max() - image.min()), rtol=1e-6)
    # the outlier no longer squashes the object's values into a narrow band
    inside = (image > 0) & (image < 5000)
    assert out[inside].std() > 5 * plain[inside].std()
    with pytest.raises(ArgumentError, match="below"):
        percentile_clip(image, 60, 40)


@pytest.mark.parametrize("bins", [16, 256])
def test_histogram_equalisation_equals_skimage(image, bins):
    ours = histogram_equalise(image, bins)
    np.testing.assert_allclose(ours, exposure.equalize_hist(image, nbins=bins), atol=1e-6)
    mask = image > 0
    np.testing.assert_allclose(histogram_equalise(image, bins, mask=mask),
                               exposure.equalize_hist(image, nbins=bins, mask=mask), atol=1e-6)


def test_histogram_equalisation_flattens_the_histogram():
    rng = np.random.default_rng(1)
    skewed = rng.exponential(1.0, 100_000)
    counts, _ = np.histogram(histogram_equalise(skewed, 1024), bins=10, range=(0, 1))
    # uniform: each tenth holds ~10 %; the exponential's first tenth of its range held ~60 %
    assert np.all(np.abs(counts / skewed.size - 0.1) < 0.01), counts


def test_median_projection_skips_first_and_last_slice():
    rng = np.random.default_rng(2)
    volume = rng.normal(size=(6, 5, 7, 3))
    volume[:, :, 0] = 1e6            # first and last slices: outliers that must not count
    volume[:, :, -1] = -1e6
    out = median_projection(volume)
    assert out.shape == (6, 5, 3)
    np.testing.assert_allclose(out, np.median(volume[:, :, 1:6], axis=2), rtol=1e-6)
    # with an odd number of middle slices the median is one of them, at each voxel
    assert np.all(np.any(np.isclose(volume[:, :, 1:6], out[:, :, None]), axis=2))
    one = volume[:, :, 3:4]
    np.testing.assert_allclose(median_projection(one), one[:, :, 0], rtol=1e-6)   # one slice: identity
    np.testing.assert_allclose(median_projection(np.moveaxis(volume, 2, 0), slice_axis=0), out, rtol=1e-6)


def test_bad_input_is_refused(image):
    with pytest.raises(ArgumentError, match="NaN"):
        z_score(np.array([1.0, np.nan]))
    with pytest.raises(ArgumentError, match="mask"):
        z_score(image, mask=np.zeros_like(image, bool))
    with pytest.raises(ArgumentError, match="mask"):
        histogram_equalise(image, mask=image)
    with pytest.raises(ArgumentError, match="3 axes"):
        median_projection(image)
