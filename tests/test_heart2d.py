"""The beating short-axis slice phantom: geometry, labels, contrast, k-space, coils, noise, bad input."""
import numpy as np
import pytest

from cmrlab.errors import ArgumentError
from cmrlab.phantoms import LABEL_NAMES, beating_heart_slice
from cmrlab.phantoms.heart2d import _lens_area, _rv_radius
from cmrlab.physics import cardiac, kspace, signals, tissues


@pytest.fixture(scope="module")
def clean():
    """Noise-free, uniform-coil phantom: the image is exactly the k-space's reconstruction."""
    return beating_heart_slice(n_frames=20, matrix=128, n_coils=None, snr=None)


@pytest.fixture(scope="module")
def noisy():
    return beating_heart_slice(n_frames=20, matrix=128, seed=3)


def test_shapes_types_and_labels(noisy):
    assert noisy.images.shape == (128, 128, 20) and noisy.images.dtype == np.float32
    assert noisy.labels.shape == (128, 128, 20) and noisy.labels.dtype == np.uint8
    assert noisy.kspace.shape == (20, 128, 128) and np.iscomplexobj(noisy.kspace)
    assert set(np.unique(noisy.labels)) == {0, 1, 2, 3}
    assert dict(LABEL_NAMES) == {1: "RV", 2: "MYO", 3: "LV"}
    assert noisy.spacing == (2.5, 2.5)
    assert noisy.ed_frame == 0 and noisy.es_frame == 7                      # round(0.35 · 20)
    np.testing.assert_allclose(noisy.time, np.arange(20) * 50.0)            # 60 bpm: 1000 ms / 20
    assert np.isfinite(noisy.images).all()


def test_areas_follow_the_volume_curve_and_the_ring_keeps_its_area(clean):
    curve = cardiac.lv_volume_curve(20, 1800.0, 700.0)
    np.testing.assert_allclose(clean.areas["LV"], curve.volumes)
    np.testing.assert_allclose(clean.areas["MYO"], 1600.0)
    np.testing.assert_allclose(clean.areas["RV"], cardiac.lv_volume_curve(20, 1400.0, 650.0).volumes, rtol=1e-9)
    np.testing.assert_allclose(np.pi * clean.endo_radius ** 2, clean.areas["LV"])
    np.testing.assert_allclose(np.pi * (clean.epi_radius ** 2 - clean.endo_radius ** 2), 1600.0)
    # muscle is incompressible: the wall is thickest at ES
    wt = clean.wall_thickness
    assert wt.argmin() == clean.ed_frame and wt.argmax() == clean.es_frame
    assert wt[0] == pytest.approx(np.sqrt(3400 / np.pi) - np.sqrt(1800 / np.pi))


def test_label_areas_match_the_true_areas(clean):
    pixel = clean.spacing[0] * clean.spacing[1]
    for value, name in LABEL_NAMES.items():
        measured = (clean.labels == value).sum(axis=(0, 1)) * pixel
        np.testing.assert_allclose(measured, clean.areas[name], rtol=0.05, err_msg=name)
    lv = (clean.labels == 3).sum(axis=(0, 1))
    assert lv.argmax() == clean.ed_frame and lv.argmin() == clean.es_frame


def test_bright_blood_contrast(clean):
    t = {n: tissues.get_tissue(n, 1.5) for n in ("blood", "myocardium")}
    expected = {n: signals.bssfp_signal(v.PD, v.T1, v.T2, TR=3.0, flip=60.0) for n, v in t.items()}
    assert clean.signal["blood"] == pytest.approx(expected["blood"])
    ed_img, ed_lab = clean.images[..., 0], clean.labels[..., 0]
    # the pool's mean is the blood signal, within the blur of its edge (partial volume)
    blood = ed_img[ed_lab == 3].mean()
    myo = ed_img[ed_lab == 2].mean()
    assert blood > 2 * myo
    assert blood == pytest.approx(expected["blood"], rel=0.05)


def test_kspace_reconstructs_the_images(clean):
    recon = np.abs(kspace.ifft2c(clean.kspace)).transpose(2, 1, 0)          # (T, y, x) → (X, Y, T)
    np.testing.assert_allclose(recon, clean.images, atol=1e-5)


def test_anatomy_orientation(clean):
    # RV on the image left of the LV (the patient's right), both in the middle of the FOV
    ed = clean.labels[..., 0]
    x_rv = np.argwhere(ed == 1)[:, 0].mean()
    x_lv = np.argwhere(ed == 3)[:, 0].mean()
    assert x_rv < x_lv
    assert 40 < x_lv < 90


def test_coil_shading_and_noise(clean, noisy):
    shaded = beating_heart_slice(n_frames=20, matrix=128, snr=None)          # 8 coils, no noise
    body = clean.images[..., 0] > 0.05
    ratio = shaded.images[..., 0][body] / clean.images[..., 0][body]
    assert ratio.max() / ratio.min() > 1.5                                     # brighter near the coils
    # the noise has the requested SNR in the ED LV blood pool: σ = mean signal / SNR
    lv = noisy.labels[..., 0] == 3
    assert noisy.sigma == pytest.approx(shaded.images[..., 0][lv].mean() / 30.0, rel=1e-4)
    # in the air outside the body the RSS of 8 coils' noise (16 Gaussian channels of SD σ)
    # follows a chi distribution with 16 degrees of freedom: mean ≈ σ·√(16 − 1/2)
    air = np.zeros((128, 128), bool)
    air[:, :4] = True
    expected = noisy.sigma * np.sqrt(15.5)
    assert noisy.images[..., 0][air].mean() == pytest.approx(expected, rel=0.1)
    again = beating_heart_slice(n_frames=20, matrix=128, seed=3)
    np.testing.assert_array_equal(again.images, noisy.images)
    other = beating_heart_slice(n_frames=20, matrix=128, seed=4)
    assert not np.array_equal(other.images, noisy.images)


def test_field_strength_and_sizes():
    h = beating_heart_slice(n_frames=8, matrix=64, field_strength=3.0, snr=None, oversample=3)
    assert h.images.shape == (64, 64, 8) and h.spacing == (5.0, 5.0)
    assert h.signal["myocardium"] == pytest.approx(
        signals.bssfp_signal(*(getattr(tissues.get_tissue("myocardium", 3.0), k) for k in ("PD", "T1", "T2")),
                             TR=3.0, flip=60.0))


def test_rv_crescent_geometry_helpers():
    # lens area limits: disjoint → 0, nested → the small disc, equal discs half apart by formula
    assert _lens_area(np.array([1.0]), 1.0, 3.0)[0] == 0.0
    assert _lens_area(np.array([1.0]), 3.0, 0.5)[0] == pytest.approx(np.pi)
    r = 1.0
    d = 1.0   # two unit discs a radius apart: 2π/3 − √3/2
    assert _lens_area(np.array([r]), r, d)[0] == pytest.approx(2 * np.pi / 3 - np.sqrt(3) / 2)
    target = np.array([1400.0, 650.0])
    r_epi, dist = np.array([32.9, 27.1]), np.array([19.7, 16.3])
    radius = _rv_radius(target, r_epi, dist)
    np.testing.assert_allclose(np.pi * radius ** 2 - _lens_area(radius, r_epi, dist), target, rtol=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lv_ed_area=700.0, lv_es_area=1800.0), "lv_es_area"),
        (dict(rv_ed_area=600.0, rv_es_area=650.0), "rv_es_area"),
        (dict(rv_ed_area=20000.0), "rv_ed_area is too large"),
        (dict(matrix=8), "matrix"),
        (dict(fov=-320.0), "fov"),
        (dict(myo_area=0.0), "myo_area"),
        (dict(n_frames=1), "n_frames"),
        (dict(n_coils=-2), "n_coils"),
        (dict(snr=0.0), "snr"),
        (dict(flip=float("nan")), "flip"),
        (dict(flip=200.0), "flip"),
        (dict(oversample=0), "oversample"),
        (dict(field_strength=2.0), "field_strength"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        beating_heart_slice(n_frames=kwargs.pop("n_frames", 4), matrix=kwargs.pop("matrix", 32), **kwargs)


def test_heart_slice_dataset_is_varied_deterministic_and_labelled():
    from cmrlab.phantoms.heart2d import heart_slice_dataset

    a = heart_slice_dataset(3, 3, matrix=32, seed=5)
    b = heart_slice_dataset(3, 3, matrix=32, seed=5)
    assert a.images.shape == a.labels.shape == (9, 32, 32)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.images.min() == 0.0 and a.images.max() == 1.0
    assert set(np.unique(a.labels)) == {0, 1, 2, 3}
    assert list(a.case) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for i in range(len(a.images)):  # bright blood, darker myocardium, in every sample
        img, lab = a.images[i], a.labels[i]
        assert img[lab == 3].mean() > img[lab == 2].mean()
    assert len({img.tobytes() for img in a.images}) == len(a.images)  # every sample differs
    lv_ed_area = (a.labels[::3] == 3).sum(axis=(1, 2))  # ED frames of the three subjects
    assert len(set(lv_ed_area.tolist())) == 3
    c = heart_slice_dataset(3, 3, matrix=32, seed=6)
    assert not np.array_equal(a.images, c.images)
    with pytest.raises(ArgumentError, match="crop"):
        heart_slice_dataset(1, 1, crop=400.0)
