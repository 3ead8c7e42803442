"""The 3D LGE stack: nulled myocardium, bright scar in its territory, transmurality, taper, exact scar fraction."""
import math

import numpy as np
import pytest
from scipy import ndimage

from cmrlab.errors import ArgumentError
from cmrlab.phantoms.lge2d import TERRITORIES
from cmrlab.phantoms.lge3d import LGE_LABEL_NAMES, lge_volume
from cmrlab.physics import signals, tissues


@pytest.fixture(scope="module")
def vol():
    return lge_volume(seed=0, territory="LAD", transmurality=0.6)


def _polar(v, k):
    """Distance (mm) and angle (degrees, from +x towards +y) of every pixel of slice k from the LV centre."""
    n = v.labels.shape[0]
    cx, cy = v.params["centre"][k]
    x = (np.arange(n) - n // 2) * v.spacing[0] - cx
    y = (np.arange(n) - n // 2) * v.spacing[1] - cy
    xx, yy = np.meshgrid(x, y, indexing="ij")                      # (X, Y) like the volume
    return np.hypot(xx, yy), np.degrees(np.arctan2(yy, xx))


def test_shapes_labels_and_affine(vol):
    assert vol.image.shape == vol.labels.shape == (96, 96, 10)
    assert vol.image.dtype == np.float32 and vol.labels.dtype == np.uint8
    assert set(np.unique(vol.labels)) == {0, 1, 2}
    assert dict(LGE_LABEL_NAMES) == {1: "myocardium", 2: "scar"}
    assert vol.spacing == (1.5, 1.5, 8.0)
    np.testing.assert_allclose(np.diag(vol.affine), [-1.5, 1.5, -8.0, 1.0])
    assert np.linalg.det(vol.affine[:3, :3]) > 0                   # a proper (RAS) orientation
    # every slice has myocardium; scar only in the listed, contiguous slices
    for k in range(10):
        assert (vol.labels[..., k] > 0).sum() > 100
        assert ((vol.labels[..., k] == 2).any()) == (k in vol.scar_slices)
    assert vol.scar_slices == tuple(range(vol.scar_slices[0], vol.scar_slices[-1] + 1))
    assert vol.scar_slices[-1] == 9                                 # LAD: reaches the apex


def test_base_to_apex_taper(vol):
    endo = np.array(vol.params["endo_radius"])
    assert np.all(np.diff(endo) < 0) and endo[-1] < 0.6 * endo[0]
    myo_area = (vol.labels > 0).sum(axis=(0, 1))
    cavity = [ndimage.binary_fill_holes(vol.labels[..., k] > 0).sum() - myo_area[k] for k in range(10)]
    assert cavity[0] > 2.5 * cavity[-1]


def test_ti_nulls_healthy_myocardium(vol):
    p = vol.params
    myo = tissues.with_gadolinium(tissues.get_tissue("myocardium", 1.5), p["ti_concentration"])
    assert vol.TI == pytest.approx(float(signals.ir_null_time(myo.T1, 1600.0, 1.5)))
    sig = p["signal"][vol.scar_slices[0]]
    # the TI is chosen within ±8 % of the true concentration: myocardium is nearly nulled
    assert sig["myocardium"] < 0.2 * sig["LV blood"]
    assert sig["scar"] > sig["LV blood"] > sig["myocardium"]
    img, lab = vol.image, vol.labels
    healthy = np.stack([ndimage.binary_erosion(lab[..., k] == 1) for k in range(10)], -1)
    scar = lab == 2
    r_all = [(_polar(vol, k)[0] < vol.params["endo_radius"][k] - 3.0) for k in range(10)]
    blood = np.stack(r_all, -1)
    m_myo, m_blood = np.median(img[healthy]), np.median(img[blood])
    m_scar_hi = np.percentile(img[scar], 75)
    assert m_myo < 0.5 * m_blood                                     # healthy myocardium darkest of the heart
    assert np.median(img[scar]) > 2.0 * m_myo                        # scar bright
    assert m_scar_hi > m_blood                                       # enhanced scar core brighter than blood


def test_scar_in_its_territory_with_its_transmurality(vol):
    half = vol.params["scar_extent"] / 2
    centre = vol.params["scar_centre"]
    for k in vol.scar_slices:
        r, angle = _polar(vol, k)
        s = vol.labels[..., k] == 2
        off = (angle[s] - centre + 180.0) % 360.0 - 180.0
        assert np.all(np.abs(off) <= half + 6.0)                    # pixel-centre tolerance
        endo, wall = vol.params["endo_radius"][k], vol.params["wall_thickness"][k]
        assert r[s].min() >= endo - 1e-6
        assert r[s].max() <= endo + 0.6 * wall + 1e-6                 # only the inner 60 % of the wall
        assert r[vol.labels[..., k] == 1].max() > endo + 0.8 * wall  # healthy epicardial rim remains
    # the territory centre: LAD at 120° (anterior-septal), moved by the drawn offset and rotation
    assert centre == pytest.approx(TERRITORIES["LAD"] + vol.params["scar_offset"] + vol.params["rotation"])


def test_transmural_scar_reaches_the_epicardium():
    v = lge_volume(seed=4, territory="RCA", transmurality=1.0)
    k = v.scar_slices[len(v.scar_slices) // 2]
    r, _ = _polar(v, k)
    s = v.labels[..., k] == 2
    assert r[s].max() > v.params["endo_radius"][k] + v.params["wall_thickness"][k] - 1.5
    assert v.territory == "RCA" and v.transmurality == 1.0


def test_scar_fraction_is_exact_for_the_model(vol):
    p = vol.params
    scar = sum(p["scar_extent"] / 360 * math.pi * ((p["endo_radius"][k] + 0.6 * p["wall_thickness"][k]) ** 2
                                                     - p["endo_radius"][k] ** 2) for k in vol.scar_slices)
    myo = sum(math.pi * ((e + w) ** 2 - e ** 2) for e, w in zip(p["endo_radius"], p["wall_thickness"]))
    assert vol.scar_fraction == pytest.approx(scar / myo, rel=1e-9)
    voxels = (vol.labels == 2).sum() / (vol.labels > 0).sum()
    assert voxels == pytest.approx(vol.scar_fraction, rel=0.15)


def test_drawn_cases_vary_and_repeat():
    a, b = lge_volume(seed=7), lge_volume(seed=7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.territory in TERRITORIES and 0.25 <= a.transmurality <= 1.0
    cases = [lge_volume(seed=s, n_slices=4, matrix=80) for s in range(6)]
    assert len({c.territory for c in cases}) >= 2
    assert len({round(c.transmurality, 6) for c in cases}) == 6
    assert all(0 < c.scar_fraction < 0.5 for c in cases)


@pytest.mark.parametrize("kwargs, word", [
    (dict(seed=-1), "seed"),
    (dict(n_slices=2), "n_slices"),
    (dict(matrix=16), "matrix"),
    (dict(spacing=(1.5, 2.0, 8.0)), "square"),
    (dict(spacing=(1.5, 1.5)), "spacing"),
    (dict(spacing=(1.5, 1.5, -1.0)), "spacing"),
    (dict(territory="LM"), "territory"),
    (dict(transmurality=0.0), "transmurality"),
    (dict(transmurality=1.5), "transmurality"),
    (dict(snr=-3.0), "snr"),
    (dict(matrix=40, spacing=(1.5, 1.5, 8.0)), "field of view"),
    (dict(field_strength=2.0), "field_strength"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ArgumentError, match=word):
        lge_volume(**kwargs)
