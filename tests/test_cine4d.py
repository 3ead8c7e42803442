"""The 4D cine phantom: geometry, volumes, groups, contrast, determinism, bad input, difficulty."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from cmrlab.errors import ArgumentError
from cmrlab.phantoms import cine4d
from cmrlab.phantoms.cine4d import ACDC_GROUPS, ANATOMY_NAMES, GROUP_DEFINITIONS, cine_case, cine_cases
from cmrlab.physics import kspace

FAST = dict(matrix=112, spacing=2.0, n_frames=12)


@pytest.fixture(scope="module")
def case():
    return cine_case("NOR", seed=5, **FAST)


@pytest.fixture(scope="module")
def cases():
    return {g: cine_case(g, seed=2, **FAST) for g in ACDC_GROUPS}


def _analytic(group, seed):
    """The sampled parameters and analytic per-frame geometry, without drawing any image."""
    p = cine4d._sample_params(group, seed, None, None, None, None, None, None)
    fr = cine4d._frames(p)
    dz = p["slice_spacing"]
    return p, fr, {k: v.sum(0) * dz / 1000.0 for k, v in fr["areas"].items()}


def test_shapes_types_affine(case):
    X, Y, Z, T = case.image.shape
    assert (X, Y, T) == (112, 112, 12) and 8 <= Z <= 14
    assert case.image.dtype == np.float32 and case.labels.dtype == np.uint8
    assert case.labels.shape == case.image.shape and case.anatomy.shape == (X, Y, Z)
    assert (case.image >= 0).all() and np.isfinite(case.image).all()
    assert case.spacing[:2] == (2.0, 2.0) and 5.0 <= case.spacing[2] <= 10.0
    assert case.slice_thickness <= case.spacing[2]
    np.testing.assert_allclose(np.diag(case.affine)[:3], case.spacing)
    # the affine maps voxel (i, j, k) to the mm position the phantom drew it at
    centre = case.affine @ np.array([X // 2, Y // 2, 0, 1.0])
    np.testing.assert_allclose(centre[:2], case.params["fov_centre"], atol=1e-9)
    assert centre[2] == pytest.approx(case.params["slice_z"][0])
    assert case.temporal_resolution == pytest.approx(60000.0 / case.params["heart_rate"] / T)
    assert set(np.unique(case.labels)) == {0, 1, 2, 3}
    assert set(np.unique(case.anatomy)) <= set(ANATOMY_NAMES)


def test_labels_on_every_frame_ed_largest_es_smallest(case):
    for t in range(case.labels.shape[3]):
        assert {1, 2, 3} <= set(np.unique(case.labels[..., t]))
    for vols in (case.volumes, case.label_volumes()):
        assert vols["LV"].argmax() == case.ed == 0
        assert vols["LV"].argmin() == case.es
    assert 1 <= case.es < case.labels.shape[3] - 1


def test_label_volumes_match_the_analytic_volumes(cases):
    # pixelation of the boundaries only: < 1 % at 2 mm pixels for every structure (measured ~0.5 %)
    for g, c in cases.items():
        lab = c.label_volumes()
        for name in ("LV", "RV", "MYO"):
            np.testing.assert_allclose(lab[name], c.volumes[name], rtol=0.015, err_msg=f"{g} {name}")


def test_myocardial_volume_is_conserved(cases):
    for g, c in cases.items():
        np.testing.assert_allclose(c.volumes["MYO"], c.volumes["MYO"][0], rtol=1e-12, err_msg=g)
        lab = c.label_volumes()["MYO"]
        assert np.ptp(lab) / lab.mean() < 0.02, g


def test_each_group_matches_its_definition_over_ten_seeds():
    rv_edv = {}
    for g in ACDC_GROUPS:
        lo, hi = GROUP_DEFINITIONS[g].ranges["lv_ef"]
        efs, rv_efs, rv_edv[g] = [], [], []
        for seed in range(10):
            p, fr, vol = _analytic(g, seed)
            ed, es = fr["ed"], fr["es"]
            ef = 100 * (vol["LV"][ed] - vol["LV"][es]) / vol["LV"][ed]
            efs.append(ef)
            rv_efs.append(100 * (vol["RV"][ed] - vol["RV"][es]) / vol["RV"][ed])
            rv_edv[g].append(vol["RV"][ed] / p["bsa"])
            assert ef == pytest.approx(p["lv_ef"], abs=1e-6)          # every labelled slice ejects EF
        efs = np.array(efs)
        assert (efs >= lo - 1e-6).all() and (efs <= hi + 1e-6).all(), g
        if g == "NOR":
            assert (efs > 50).all()
        if g in ("MINF", "DCM"):
            assert (efs < 40).all()
        if g == "HCM":
            assert (efs > 55).all()
        if g == "RV":
            assert np.mean(rv_efs) < 40
    assert min(rv_edv["RV"]) > max(rv_edv["NOR"])                     # dilated RV


def test_hcm_wall_is_thick_and_minf_territory_thin(cases):
    def thickness(c):
        z = int(np.argmax((c.labels[..., c.ed] == 3).sum((0, 1))))
        a = c.spacing[0] * c.spacing[1]
        lv = (c.labels[:, :, z, c.ed] == 3).sum() * a
        myo = (c.labels[:, :, z, c.ed] == 2).sum() * a
        return np.sqrt((lv + myo) / np.pi) - np.sqrt(lv / np.pi)      # mean wall thickness, mm
    assert thickness(cases["HCM"]) >= 14.0
    assert thickness(cases["NOR"]) < 11.0
    assert cases["HCM"].params["wall"] >= 15.0
    p, fr, _ = _analytic("MINF", 3)
    assert p["territory"] in ("LAD", "RCA", "LCx") and p["thinning"] >= 0.35


def test_blood_bright_myocardium_dark_lungs_darkest(cases):
    for g, c in cases.items():
        img, anat = c.image[..., c.ed], c.anatomy
        mean = {ANATOMY_NAMES[k]: img[anat == k].mean() for k in np.unique(anat)}
        assert mean["LV cavity"] > 1.5 * mean["LV myocardium"], g
        tissue = {k: v for k, v in mean.items() if k not in ("air", "cortical bone")}
        assert min(tissue, key=tissue.get) == "lung", (g, tissue)


def test_same_seed_same_arrays_different_seed_differs(case):
    again = cine_case("NOR", seed=5, **FAST)
    assert np.array_equal(again.image, case.image) and np.array_equal(again.labels, case.labels)
    other = cine_case("NOR", seed=6, **FAST)
    assert other.image.shape != case.image.shape or not np.array_equal(other.image, case.image)
    assert other.params["lv_ef"] != case.params["lv_ef"]


def test_cine_cases_streams_and_cycles_groups():
    it = cine_cases(3, seed=1, groups=("HCM", "RV"), matrix=64, spacing=4.0, n_frames=6, n_slices=4)
    assert iter(it) is it
    got = [c.group for c in it]
    assert got == ["HCM", "RV", "HCM"]
    first = next(cine_cases(1, seed=1, groups=("HCM",), matrix=64, spacing=4.0, n_frames=6, n_slices=4))
    again = next(cine_cases(5, seed=1, groups=("HCM",), matrix=64, spacing=4.0, n_frames=6, n_slices=4))
    assert np.array_equal(first.image, again.image)        # a case does not depend on n


def test_bandlimit_is_kspace_sampling():
    rng = np.random.default_rng(0)
    fine = torch.from_numpy(ndimage.gaussian_filter(rng.random((96, 96)), 1.5).astype(np.float64))
    ours = cine4d._bandlimit(fine, 48).numpy()
    ref = kspace.sample_object(fine.numpy(), 96.0, 48, object_fov=96.0).image
    np.testing.assert_allclose(ours, ref.real, atol=5e-3 * np.abs(ref).max())   # the Nyquist column only


@pytest.mark.parametrize("kwargs, name", [
    (dict(group="XYZ"), "group"), (dict(group=3), "group"), (dict(seed=-1), "seed"),
    (dict(n_slices=1), "n_slices"), (dict(n_frames=2), "n_frames"), (dict(matrix=63), "matrix"),
    (dict(matrix=16), "matrix"), (dict(spacing=0), "spacing"), (dict(slice_spacing=-5), "slice_spacing"),
    (dict(slice_spacing=5.0, slice_thickness=8.0), "slice_thickness"), (dict(oversample=0), "oversample"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ArgumentError, match=name):
        cine_case(**kwargs)


def test_bad_cine_cases_arguments():
    with pytest.raises(ArgumentError, match="groups"):
        cine_cases(2, groups=("NOR", "XX"))
    with pytest.raises(ArgumentError, match="n"):
        cine_cases(-1)


def otsu_myocardium_dice(image, labels):
    """The threshold baseline of benchmarks/calibrate_cine.py on one slice, in its kinder form: Otsu's
    threshold of a square around the true LV centre (half-side 2 epicardial radii); blood = the bright
    component at the true LV centre, holes filled; myocardium = the band of the true mean wall thickness
    around it."""
    from skimage.filters import threshold_otsu

    lv, myo = labels == 3, labels == 2
    centre = tuple(np.round(np.argwhere(lv).mean(0)).astype(int))
    r_epi = np.sqrt((lv.sum() + myo.sum()) / np.pi)
    h = int(np.ceil(2 * r_epi))
    box = image[max(centre[0] - h, 0):centre[0] + h + 1, max(centre[1] - h, 0):centre[1] + h + 1]
    comp, _ = ndimage.label(image > threshold_otsu(box))
    blood = ndimage.binary_fill_holes(comp == comp[centre]) if comp[centre] else np.zeros_like(lv)
    blood[centre] = True
    band = (ndimage.distance_transform_edt(~blood) <= r_epi - np.sqrt(lv.sum() / np.pi)) & ~blood
    return 2 * (band & myo).sum() / (band.sum() + myo.sum())


def test_threshold_baseline_does_poorly_on_the_myocardium():
    # 10 fast-size cases (two per group), one mid-ventricular ED slice each plus the next one
    dice = []
    for i in range(10):
        c = cine_case(ACDC_GROUPS[i % 5], seed=100 + i, matrix=128, spacing=2.0, n_frames=12)
        zs = np.flatnonzero((c.labels[..., c.ed] == 3).any((0, 1)))
        for z in zs[len(zs) // 3: len(zs) // 3 + 2]:
            dice.append(otsu_myocardium_dice(c.image[:, :, z, c.ed], c.labels[:, :, z, c.ed]))
    print("Otsu myocardium Dice:", np.round(dice, 2))
    assert len(dice) >= 10
    assert np.mean(dice) <= 0.6


def test_epicardial_fat_is_patchy_and_varies_per_case():
    theta = torch.linspace(-np.pi, np.pi, 721)[:-1]
    thick = []
    for seed in range(4):
        p = cine4d._sample_params("NOR", seed, None, None, None, None, None, None)
        mid = cine4d._fat_lv(theta, p, 0.5 * p["lv_length"]).numpy()
        thick.append(mid)
        assert mid.max() - mid.min() >= 2.0 and mid.min() <= 3.0               # thin somewhere, thick elsewhere
        rv = np.deg2rad(p["rv_direction"])
        groove = np.argmin(np.abs(np.angle(np.exp(1j * (theta.numpy() - rv - np.deg2rad(65))))))
        assert mid[groove] >= p["fat_base"] + p["fat_grooves"] - 1e-6           # the interventricular groove
        # more AV-groove fat at the base than at mid-ventricle, more at the apex too
        lateral = 360                                                             # θ = 0
        base = cine4d._fat_lv(theta, p, 0.0).numpy()
        assert base[lateral] - mid[lateral] >= p["fat_av"] - 0.25 * p["fat_apex"] - 1e-5
        assert float(cine4d._fat_lv(theta, p, p["lv_length"]).mean()) > float(mid.mean())
    assert not np.allclose(thick[0], thick[1])


def test_myocardium_like_neighbours_touch_the_heart(cases):
    for g, c in cases.items():
        anat, dx = c.anatomy, c.spacing[0]
        heart = np.isin(anat, [v for v, n in ANATOMY_NAMES.items()
                               if n in ("LV myocardium", "RV wall", "epicardial fat", "RV cavity", "LV cavity")])
        # the liver comes within the diaphragm gap (+ the apical fat and a pixel) of the apical heart
        z_apex = int(np.flatnonzero((c.labels[..., c.ed] == 2).any((0, 1)))[-1])
        dist = ndimage.distance_transform_edt(~heart[:, :, z_apex]) * dx
        liver = anat[:, :, z_apex] == [k for k, n in ANATOMY_NAMES.items() if n == "liver"][0]
        assert dist[liver].min() <= c.params["diaphragm_gap"] + 2 * dx, g
        # the chest wall comes within chest_gap (+ fat and a pixel) of the heart at mid-ventricle
        z_mid = int(np.flatnonzero((c.labels[..., c.ed] == 3).any((0, 1))).mean())
        dist = ndimage.distance_transform_edt(~heart[:, :, z_mid]) * dx
        wall = anat[:, :, z_mid] == [k for k, n in ANATOMY_NAMES.items() if n == "chest wall"][0]
        assert dist[wall].min() <= c.params["chest_gap"] + 2 * dx, g


def test_blood_myocardium_contrast_varies_per_case():
    ratios = []
    for seed in range(8):
        c = cine_case("NOR", seed=seed, matrix=64, spacing=4.0, n_frames=6, n_slices=4)
        sig = c.params["signal"]
        ratios.append(sig["blood"] / sig["myocardium"])
    assert min(ratios) < 2.6 and max(ratios) > 2.9 and all(1.8 < r < 4.0 for r in ratios)
