"""The multi-modal brain phantom: geometry, labels, contrast per modality, infant, tumour, determinism, errors."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from cmrlab.errors import ArgumentError
from cmrlab.phantoms.brain3d import BRATS_LABELS, MODALITIES, SEQUENCES, TISSUE_LABELS, brain_case
from cmrlab.physics import signals, tissues


@pytest.fixture(scope="module")
def adult():
    return brain_case(seed=0)


@pytest.fixture(scope="module")
def clean():
    """No bias field and almost no noise: intensities are the signal equations' partial-volume mix."""
    return brain_case(seed=0, snr=1e6, bias_strength=0.0)


@pytest.fixture(scope="module")
def infant():
    return brain_case(seed=0, infant=True)


@pytest.fixture(scope="module")
def glioma():
    return brain_case(seed=3, tumour=True)


def _core(labels, value):
    """Voxels of one label away from its border (no partial volume)."""
    return ndimage.binary_erosion(labels == value)


def _medians(case, modality):
    img = case.images[modality]
    return {k: float(np.median(img[_core(case.labels, k)])) for k in (1, 2, 3)}


def test_shapes_dtypes_and_affine(adult):
    assert tuple(adult.images) == MODALITIES == ("t1", "t1ce", "t2", "flair", "t1ir")
    for img in adult.images.values():
        assert img.shape == (99, 117, 95) and img.dtype == np.float32 and np.isfinite(img).all()
    assert adult.labels.shape == (99, 117, 95) and adult.labels.dtype == np.uint8
    assert adult.tumour_labels is None
    assert adult.spacing == (2.0, 2.0, 2.0)
    np.testing.assert_allclose(adult.affine, [[2, 0, 0, -98], [0, 2, 0, -134], [0, 0, 2, -72], [0, 0, 0, 1]])
    # the brain lies about the MNI origin: its centroid within 20 mm of (0, -18, 18) in RAS mm
    centroid = np.argwhere(adult.labels > 0).mean(axis=0)
    world = adult.affine[:3, :3] @ centroid + adult.affine[:3, 3]
    assert np.linalg.norm(world - np.array([0.0, -18.0, 18.0])) < 20.0


def test_other_spacings_keep_the_field_of_view():
    case = brain_case(seed=0, spacing=(1.5, 1.5, 4.0), snr=20.0)
    assert case.labels.shape == (131, 155, 48)
    np.testing.assert_allclose(np.diag(case.affine)[:3], [1.5, 1.5, 4.0])
    np.testing.assert_allclose(case.affine[:3, 3], [-98, -134, -72])


def test_labels_and_plausible_volumes(adult):
    assert dict(TISSUE_LABELS) == {0: "background", 1: "CSF", 2: "GM", 3: "WM"}
    assert set(np.unique(adult.labels)) == {0, 1, 2, 3}
    ml = {k: (adult.labels == k).sum() * 8.0 / 1000.0 for k in (1, 2, 3)}          # 2 mm voxels: 8 mm³
    # the MNI152 template is a large brain with a blurred GM map: about 1.1 L GM, 0.65 L WM, 0.15 L CSF
    assert 1400.0 < ml[2] + ml[3] < 2200.0
    assert ml[2] > ml[3] > ml[1] > 50.0


def test_signals_are_the_signal_equations(clean):
    sig, tis = clean.params["signals"], clean.params["tissues"]
    wm = tis["white_matter"]
    t2 = SEQUENCES["t2"]
    assert sig["t2"]["white_matter"] == pytest.approx(
        wm["PD"] * (1 - math.exp(-t2["TR"] / wm["T1"])) * math.exp(-t2["TE"] / wm["T2"]), rel=1e-5)
    # jitter stays within ±4 % of the table
    table = tissues.get_tissue("white_matter", 3.0)
    assert abs(wm["T1"] / table.T1 - 1) <= 0.04 and abs(wm["PD"] / table.PD - 1) <= 0.04
    # deep inside a tissue the image is that tissue's signal
    for m in ("t1", "t2", "flair"):
        med = _medians(clean, m)
        for k, name in ((2, "grey_matter"), (3, "white_matter")):
            assert med[k] == pytest.approx(sig[m][name], rel=0.15), (m, name)
    # FLAIR nulls the table's CSF: the subject's jittered CSF keeps only a small residue
    ti = float(signals.ir_null_time(tissues.get_tissue("csf", 3.0).T1, 8000.0, 140.0))
    assert 2000 < ti < 2500
    assert sig["flair"]["csf"] < 0.2 * sig["flair"]["white_matter"]


def test_tissue_ordering_per_modality(adult):
    t1, t2, fl, ir = (_medians(adult, m) for m in ("t1", "t2", "flair", "t1ir"))
    assert t1[3] > 1.1 * t1[2] > 1.1 * t1[1]                   # T1w: WM > GM > CSF
    assert t2[1] > 1.2 * t2[2] > 1.2 * t2[3]                   # T2w: CSF > GM > WM
    assert fl[1] < 0.6 * min(fl[2], fl[3])                      # FLAIR: CSF dark
    assert ir[3] > ir[2] > ir[1]                                # T1-IR (real, offset): WM > GM > CSF
    bg = adult.labels == 0
    assert np.median(adult.images["t1ir"][bg]) == pytest.approx(1.0, abs=0.02)   # S = 0 stored as 1
    assert np.median(adult.images["t1"][bg]) < 0.2 * t1[1]                        # Rician noise floor only


def test_bias_field_and_noise_are_present(adult, clean):
    # noise: background SD > 0; bias: the WM signal varies more than noise alone explains
    wm = _core(adult.labels, 3)
    bg = adult.labels == 0
    sd_bg = adult.images["t1"][bg].std() / math.sqrt(2 - math.pi / 2)        # Rayleigh → σ
    assert sd_bg > 0
    assert 12.0 <= adult.params["snr"] <= 30.0 and 0.1 <= adult.params["bias_strength"] <= 0.15
    from scipy.ndimage import uniform_filter
    smooth = uniform_filter(adult.images["t1"], 5)[wm]
    lo, hi = np.percentile(smooth, [2, 98])
    assert hi / lo > 1.15                                                     # bias of ±10-20 %
    clean_smooth = uniform_filter(clean.images["t1"], 5)[_core(clean.labels, 3)]
    lo_c, hi_c = np.percentile(clean_smooth, [2, 98])
    assert hi_c / lo_c < hi / lo


def test_infant_is_isointense(adult, infant):
    a, i = _medians(adult, "t1"), _medians(infant, "t1")
    adult_contrast = abs(a[3] - a[2]) / a[2]
    infant_contrast = abs(i[3] - i[2]) / i[2]
    assert adult_contrast > 0.12
    assert infant_contrast < 0.25 * adult_contrast
    a2, i2 = _medians(adult, "t2"), _medians(infant, "t2")
    assert abs(i2[3] - i2[2]) / i2[2] < 0.4 * abs(a2[3] - a2[2]) / a2[2]
    # the model: WM/GM T1 ratio 0.97 (before the ±4 % subject jitter); infant brain smaller
    tis = infant.params["tissues"]
    assert 0.97 * 0.96 / 1.04 <= tis["white_matter"]["T1"] / tis["grey_matter"]["T1"] <= 0.97 * 1.04 / 0.96
    assert (infant.labels > 0).sum() < 0.85 * (adult.labels > 0).sum()
    assert set(np.unique(infant.labels)) == {0, 1, 2, 3}


def test_tumour_labels_and_contrast(glioma):
    tl = glioma.tumour_labels
    assert dict(BRATS_LABELS).keys() == {0, 1, 2, 4}
    assert tl.dtype == np.uint8 and tl.shape == glioma.labels.shape
    assert set(np.unique(tl)) == {0, 1, 2, 4}
    counts = {k: int((tl == k).sum()) for k in (1, 2, 4)}
    assert all(c > 20 for c in counts.values())
    # nested: the core is enclosed by the rim, the rim by rim + oedema (no core voxel touches healthy tissue)
    core_grown = ndimage.binary_dilation(tl == 1)
    assert not (core_grown & (tl == 0)).any()
    # placed in white matter: the tissue it grew into is mostly WM
    assert np.mean(glioma.labels[tl > 0] == 3) > 0.6
    # ET bright on T1ce compared with T1w, and compared with WM on T1ce
    t1, t1ce, flair = (glioma.images[m] for m in ("t1", "t1ce", "flair"))
    et, ed, ncr = tl == 4, tl == 2, tl == 1
    wm = _core(glioma.labels, 3) & (tl == 0)
    assert np.median(t1ce[et]) > 1.5 * np.median(t1[et])
    assert np.median(t1ce[et]) > 1.3 * np.median(t1ce[wm])
    # ED bright on FLAIR and T2; the necrotic core dark on T1ce
    assert np.median(flair[ed]) > 1.3 * np.median(flair[wm])
    assert np.median(glioma.images["t2"][ed]) > 1.3 * np.median(glioma.images["t2"][wm])
    assert np.median(t1ce[ncr]) < 0.8 * np.median(t1ce[wm])
    p = glioma.params["tumour"]
    assert p["radius_NCR"] < p["radius_ET"] < p["radius_ED"]


def test_tumour_pushes_tissue_but_leaves_the_far_brain(glioma):
    healthy = brain_case(seed=3)           # the same subject without the tumour (geometry drawn first)
    c = np.array(glioma.params["tumour"]["centre"])
    idx = np.indices(glioma.labels.shape).reshape(3, -1).T
    world = idx @ glioma.affine[:3, :3].T + glioma.affine[:3, 3]
    far = (np.linalg.norm(world - c, axis=1) > 3 * glioma.params["tumour"]["radius_ED"]).reshape(glioma.labels.shape)
    assert np.mean(glioma.labels[far] == healthy.labels[far]) > 0.995
    assert (glioma.labels != healthy.labels).sum() > 50


def test_determinism(adult):
    again = brain_case(seed=0)
    for m in MODALITIES:
        np.testing.assert_array_equal(adult.images[m], again.images[m])
    np.testing.assert_array_equal(adult.labels, again.labels)
    other = brain_case(seed=1)
    assert not np.array_equal(adult.labels, other.labels)
    assert other.params["scale"] != adult.params["scale"]


@pytest.mark.parametrize("kwargs, word", [
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(spacing=0.1), "spacing"),
    (dict(spacing=(1.0, 2.0)), "spacing"),
    (dict(spacing="x"), "spacing"),
    (dict(tumour="yes"), "tumour"),
    (dict(infant=1), "infant"),
    (dict(field_strength=7.0), "field_strength"),
    (dict(snr=0.0), "snr"),
    (dict(snr=float("nan")), "snr"),
    (dict(bias_strength=-0.1), "bias_strength"),
    (dict(deformation=50.0), "deformation"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ArgumentError, match=word):
        brain_case(**kwargs)
def test_mni152_tissue_maps_are_fresh_checked_copies():
    from cmrlab.errors import ArgumentError
    from cmrlab.phantoms.brain3d import mni152_tissue_maps

    probs, affine = mni152_tissue_maps(2)
    assert probs.shape[0] == 3 and probs.dtype == torch.float32
    assert abs(affine[0, 0]) == 2.0 and abs(affine[1, 1]) == 2.0
    total = probs.sum(0)
    assert float(total.max()) <= 1.0 + 1e-5 and float(probs.min()) >= 0.0   # probabilities of 3 tissues
    probs.zero_()
    affine[:] = 0
    again, affine2 = mni152_tissue_maps(2)
    assert float(again.sum()) > 0 and abs(affine2[0, 0]) == 2.0          # the cache was not changed
    for bad in (0, 3, "2", [2]):
        with pytest.raises(ArgumentError, match="block"):
            mni152_tissue_maps(bad)
