"""The LGE scar phantom: contrast (TI nulls myocardium), scar geometry, labels, noise, dataset, bad input."""
import math

import numpy as np
import pytest
from scipy import ndimage

from cmrlab.errors import ArgumentError
from cmrlab.phantoms.lge2d import LGE_LABEL_NAMES, TERRITORIES, lge_slice, lge_slice_dataset
from cmrlab.physics import signals, tissues


@pytest.fixture(scope="module")
def clean():
    """Uniform coil, no noise, uniform scar: intensities are the signal equation's."""
    return lge_slice(matrix=64, territory="LAD", scar_extent=120.0, transmurality=1.0, wall_thickness=10.0,
                     grey_zone=0.0, patchiness=0.0, n_coils=None, snr=None)


def test_ti_nulls_myocardium_and_scar_is_brightest(clean):
    myo = tissues.with_gadolinium(tissues.get_tissue("myocardium", 1.5), 0.3)
    assert clean.TI == pytest.approx(float(signals.ir_null_time(myo.T1, 1600.0, 1.5)))
    # TR ≫ T1: close to the textbook T1·ln 2, a little earlier because Mz has not fully recovered
    assert 0.95 * myo.T1 * math.log(2) < clean.TI < myo.T1 * math.log(2)
    assert clean.signal["myocardium"] == pytest.approx(0.0, abs=1e-6)
    assert clean.T1["scar"] < clean.T1["LV blood"] < clean.T1["myocardium"]
    assert clean.signal["scar"] > clean.signal["LV blood"] > 4 * clean.signal["lung"]
    # by hand: S = PD·|1 − 2e^{−TI/T1} + e^{−TR/T1}|·e^{−TE/T2*} (spin-echo refocusing term < 0.1 %)
    blood = tissues.with_gadolinium(tissues.get_tissue("blood", 1.5), 0.6)
    by_hand = blood.PD * abs(1 - 2 * math.exp(-clean.TI / blood.T1) + math.exp(-1600.0 / blood.T1)) \
        * math.exp(-1.5 / blood.T2star)
    assert clean.signal["LV blood"] == pytest.approx(by_hand, rel=1e-3)


def test_image_intensities_follow_the_labels(clean):
    img, lab = clean.image, clean.labels
    assert img.shape == lab.shape == (64, 64) and img.dtype == np.float32 and lab.dtype == np.int64
    assert set(np.unique(lab)) == {0, 1, 2}
    assert dict(LGE_LABEL_NAMES) == {1: "myocardium", 2: "scar"}
    # away from edges (partial volume, ringing) healthy myocardium is dark and scar bright
    healthy, scar = ndimage.binary_erosion(lab == 1), ndimage.binary_erosion(lab == 2)
    assert healthy.sum() > 20 and scar.sum() > 10
    assert np.median(img[healthy]) < 0.15 * clean.signal["scar"]
    assert np.median(img[scar]) == pytest.approx(clean.signal["scar"], rel=0.1)


def test_scar_geometry_and_territory(clean):
    pixel = clean.spacing[0] * clean.spacing[1]
    r_epi, r_endo = clean.epi_radius, clean.endo_radius
    assert clean.scar_area == pytest.approx(120 / 360 * math.pi * (r_epi**2 - r_endo**2))
    assert (clean.labels == 2).sum() * pixel == pytest.approx(clean.scar_area, rel=0.1)
    assert ((clean.labels > 0).sum()) * pixel == pytest.approx(clean.scar_area + clean.myocardium_area, rel=0.1)
    # the LAD scar is anterior-septal: its centroid lies at 120° from the LV centre (y up, x left→right)
    ys, xs = np.nonzero(clean.labels == 2)
    x_mm = (xs - 32) * clean.spacing[1] - clean.centre[0]
    y_mm = (ys - 32) * clean.spacing[0] - clean.centre[1]
    angle = math.degrees(math.atan2(y_mm.mean(), x_mm.mean()))
    assert angle == pytest.approx(TERRITORIES["LAD"], abs=5)
    # other territories move the scar
    for name, centre in TERRITORIES.items():
        s = lge_slice(territory=name, n_coils=None, snr=None, oversample=1)
        ys, xs = np.nonzero(s.labels == 2)
        a = math.degrees(math.atan2(((ys - 32) * 2.0).mean(), ((xs - 32) * 2.0).mean()))
        assert (a - centre + 180) % 360 - 180 == pytest.approx(0, abs=8), name


def test_transmurality_grows_the_scar_outwards():
    areas = [lge_slice(transmurality=t, n_coils=None, snr=None).scar_area for t in (0.3, 0.6, 1.0)]
    assert areas[0] < areas[1] < areas[2]
    thin = lge_slice(transmurality=0.3, wall_thickness=12.0, n_coils=None, snr=None)
    ys, xs = np.nonzero(thin.labels == 2)
    r = np.hypot((xs - 32) * 2.0, (ys - 32) * 2.0)
    assert r.max() < thin.endo_radius + 0.3 * 12.0 + 1.5        # subendocardial: stays near the cavity


def test_grey_zone_and_patches_lower_the_scar_signal():
    kw = dict(scar_extent=120.0, transmurality=1.0, wall_thickness=10.0, n_coils=None, snr=None)
    uniform = lge_slice(grey_zone=0.0, patchiness=0.0, **kw)
    patchy = lge_slice(grey_zone=3.0, patchiness=0.8, **kw)
    assert np.array_equal(uniform.labels, patchy.labels)        # the outline (the label) is the same
    scar = uniform.labels == 2
    assert patchy.image[scar].mean() < 0.85 * uniform.image[scar].mean()
    assert patchy.image[scar].std() > uniform.image[scar].std()


def test_mistimed_ti_leaves_myocardium_bright():
    nulled = lge_slice(n_coils=None, snr=None)
    off = lge_slice(gd_myocardium=0.2, ti_concentration=0.3, n_coils=None, snr=None)
    assert off.TI == pytest.approx(nulled.TI)
    assert off.signal["myocardium"] > 0.05


def test_noise_is_seeded_and_scales_with_snr():
    a = lge_slice(snr=20.0, seed=3)
    b = lge_slice(snr=20.0, seed=3)
    c = lge_slice(snr=20.0, seed=4)
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    low = lge_slice(snr=5.0, seed=3)
    assert low.sigma == pytest.approx(4 * a.sigma, rel=1e-5)


def test_dataset_is_varied_and_deterministic():
    d = lge_slice_dataset(6, seed=5)
    again = lge_slice_dataset(6, seed=5)
    assert d.images.shape == d.labels.shape == (6, 64, 64)
    assert d.images.dtype == np.float32 and d.labels.dtype == np.int64
    assert np.array_equal(d.images, again.images) and np.array_equal(d.labels, again.labels)
    assert d.images.min() == 0.0 and d.images.max() == 1.0
    assert d.spacing == (2.0, 2.0)
    assert all(set(np.unique(lab)) == {0, 1, 2} for lab in d.labels)
    assert len(set(np.round(d.scar_area, 3))) == 6
    assert set(d.territory) <= set(TERRITORIES)
    assert ((d.transmurality >= 0.3) & (d.transmurality <= 1.0)).all()
    assert not np.array_equal(lge_slice_dataset(6, seed=6).labels, d.labels)


@pytest.mark.parametrize("kwargs", [
    dict(territory="LM"), dict(scar_extent=0.0), dict(scar_extent=400.0), dict(transmurality=1.5),
    dict(transmurality=0.0), dict(snr=-1.0), dict(matrix=8), dict(gd_scar=-0.1), dict(patchiness=2.0),
    dict(endo_radius=60.0), dict(centre=(1.0,)), dict(n_coils=-2), dict(fov=float("nan")),
])
def test_bad_arguments(kwargs):
    with pytest.raises(ArgumentError):
        lge_slice(**kwargs)


def test_bad_dataset_arguments():
    with pytest.raises(ArgumentError, match="n_cases"):
        lge_slice_dataset(0)
