"""Cardiac function formulas (thesis Eqs 2.1-2.6, LV mass), normal ranges, the LV volume curve, cine timing."""
import math

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.physics import cardiac


# ------------------------------------------------------------------ biomarkers
def test_thesis_worked_example_cardiac_output():
    # thesis L1420-1426: 75 beats/min with a 70 ml stroke volume give 5250 ml/min
    assert cardiac.cardiac_output(70.0, 75.0) == pytest.approx(5250.0)
    sv = cardiac.stroke_volume(130.0, 60.0)
    assert sv == pytest.approx(70.0)
    assert cardiac.cardiac_output(sv, 75) == pytest.approx(5250.0)


def test_stroke_volume_and_ejection_fraction():
    assert cardiac.stroke_volume(150.0, 60.0) == pytest.approx(90.0)
    assert cardiac.ejection_fraction(150.0, 60.0) == pytest.approx(60.0)
    assert cardiac.ejection_fraction(100.0, 100.0) == pytest.approx(0.0)
    assert cardiac.ejection_fraction(80.0, 0.0) == pytest.approx(100.0)
    # EF = 100 SV / EDV (Eq 2.3 with Eq 2.1)
    edv, esv = 173.0, 81.0
    assert cardiac.ejection_fraction(edv, esv) == pytest.approx(100 * cardiac.stroke_volume(edv, esv) / edv)


def test_mosteller_body_surface_area():
    assert cardiac.body_surface_area(175.0, 70.0) == pytest.approx(math.sqrt(175 * 70 / 3600))
    assert cardiac.body_surface_area(180.0, 80.0) == pytest.approx(2.0)     # 180·80 = 4·3600
    assert cardiac.body_surface_area(175.0, 70.0) == pytest.approx(1.8447, abs=1e-4)


def test_volume_index_wall_thickening_and_mass():
    assert cardiac.volume_index(150.0, 2.0) == pytest.approx(75.0)
    assert cardiac.wall_thickening(12.0, 9.0) == pytest.approx(3.0)          # ES first (Eq 2.6)
    assert cardiac.wall_thickening(8.0, 9.0) == pytest.approx(-1.0)          # thinning
    assert cardiac.MYOCARDIAL_DENSITY == 1.055
    assert cardiac.myocardial_mass(100.0) == pytest.approx(105.5)
    assert cardiac.myocardial_mass(100.0, density=1.05) == pytest.approx(105.0)


def test_stack_volume_is_the_method_of_disks():
    areas = np.array([1000.0, 2000.0, 1500.0])            # mm²
    assert cardiac.stack_volume(areas, 10.0) == pytest.approx(45.0)   # 10 mm · 4500 mm² = 45 ml
    per_frame = np.stack([areas, areas / 2])               # (frames, slices)
    np.testing.assert_allclose(cardiac.stack_volume(per_frame, 10.0), [45.0, 22.5])


def test_array_rule_numpy_and_torch():
    out = cardiac.ejection_fraction(np.array([100.0, 200.0]), np.array([40.0, 50.0]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [60.0, 75.0])
    assert isinstance(cardiac.stroke_volume(2.0, 1.0), np.floating)
    edv = torch.tensor(150.0, dtype=torch.float64)
    esv = torch.tensor(60.0, dtype=torch.float64, requires_grad=True)
    ef = cardiac.ejection_fraction(edv, esv)
    assert isinstance(ef, torch.Tensor) and ef.dtype == torch.float64
    ef.backward()
    assert esv.grad.item() == pytest.approx(-100.0 / 150.0)   # dEF/dESV = −100/EDV


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cardiac.stroke_volume(60.0, 150.0), "esv must not exceed edv"),
        (lambda: cardiac.stroke_volume(-1.0, -2.0), "edv"),
        (lambda: cardiac.ejection_fraction(0.0, 0.0), "edv must be positive"),
        (lambda: cardiac.ejection_fraction(float("nan"), 10.0), "edv contains NaN"),
        (lambda: cardiac.cardiac_output(70.0, 0.0), "heart_rate"),
        (lambda: cardiac.cardiac_output(-70.0, 75.0), "stroke_volume"),
        (lambda: cardiac.body_surface_area(1.75, 70.0), "metres"),
        (lambda: cardiac.body_surface_area(175.0, -70.0), "weight"),
        (lambda: cardiac.volume_index(100.0, 0.0), "bsa"),
        (lambda: cardiac.wall_thickening(-1.0, 9.0), "thickness_es"),
        (lambda: cardiac.myocardial_mass(100.0, density=0.0), "density"),
        (lambda: cardiac.myocardial_mass(-5.0), "myocardial_volume"),
        (lambda: cardiac.stack_volume(1000.0, 10.0), "slice axis"),
        (lambda: cardiac.stack_volume([1000.0], 0.0), "slice_spacing"),
        (lambda: cardiac.stack_volume([1000.0, -1.0], 10.0), "areas"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


# ------------------------------------------------------------------ normal ranges
def test_normal_ranges_are_the_thesis_values():
    r = cardiac.NORMAL_RANGES
    assert r["ESV"].women == (22.0, 66.0) and r["ESV"].men == (26.0, 86.0)
    assert r["EDV"].women == (86.0, 178.0) and r["EDV"].men == (106.0, 214.0)
    assert r["EF"].bounds("M") == (57.0, 77.0) and r["EF"].typical == 60.0
    assert r["SV"].typical == 70.0 and r["CO"].typical == 5250.0
    assert r["LV mass"].bounds("women") == (56.0, 140.0) and r["LV mass"].bounds("male") == (92.0, 176.0)
    assert r["LV mass index"].women == (41.0, 85.0) and r["LV mass index"].men == (49.0, 85.0)
    assert r["WTh"].bounds("F")[0] == 2.0
    assert all(v.lines.startswith("L1") for v in r.values())
    # the quoted typical SV and CO agree with Eq 2.2 at the quoted 75 beats/min
    assert cardiac.cardiac_output(r["SV"].typical, 75) == pytest.approx(r["CO"].typical)


def test_classify_against_a_range():
    edv = cardiac.NORMAL_RANGES["EDV"]
    assert edv.classify(100.0, "women") == "within"
    assert edv.classify(100.0, "men") == "below"
    assert edv.classify(214.0, "men") == "within"
    assert edv.classify(230.0, "M") == "above"
    assert cardiac.NORMAL_RANGES["WTh"].classify(1.5, "men") == "below"
    with pytest.raises(ArgumentError, match="sex"):
        edv.classify(100.0, "x")
    with pytest.raises(ArgumentError, match="no normal range"):
        cardiac.NORMAL_RANGES["SV"].classify(70.0, "men")
    with pytest.raises(ArgumentError, match="finite"):
        edv.classify(float("nan"), "men")


# ------------------------------------------------------------------ volume curve
def test_lv_volume_shape_of_the_cycle():
    edv, esv, es = 150.0, 60.0, 0.35
    sv = edv - esv
    phase = np.linspace(0.0, 1.0, 20001)
    v = cardiac.lv_volume(phase, edv, esv, es_phase=es)
    assert v[0] == pytest.approx(edv) and v[-1] == pytest.approx(edv)          # periodic, ED at the R wave
    assert v.max() == pytest.approx(edv) and v.min() == pytest.approx(esv)
    assert phase[v.argmin()] == pytest.approx(es, abs=1e-3)
    systole, diastole = phase <= es, phase >= es
    assert np.all(np.diff(v[systole]) <= 1e-12)                                  # only ejection
    assert np.all(np.diff(v[diastole]) >= -1e-12)                                # only filling
    # about 2/3 of the stroke volume leaves in the first half of systole (rapid ejection)
    half = cardiac.lv_volume(es / 2, edv, esv, es_phase=es)
    assert (edv - half) / sv == pytest.approx(0.5 * (1 - math.cos(math.pi * 0.5 ** 0.75)))
    assert 0.6 < (edv - half) / sv < 0.7
    # the diastolic phases: rapid filling returns 70 %, the atrial kick the last 20 % of SV
    d = 1 - es
    assert cardiac.lv_volume(es + 0.35 * d, edv, esv, es_phase=es) == pytest.approx(esv + 0.7 * sv)
    assert cardiac.lv_volume(es + 0.75 * d, edv, esv, es_phase=es) == pytest.approx(edv - 0.2 * sv)
    # smooth: the slope is continuous (on this fine grid it never jumps by 2 % of its peak) and
    # starts and ends near 0 (flat at ED)
    slope = np.diff(v) / np.diff(phase)
    peak = np.abs(slope).max()
    assert np.abs(np.diff(slope)).max() < 0.02 * peak
    assert abs(slope[0]) < 0.02 * peak and abs(slope[-1]) < 0.02 * peak


def test_lv_volume_wraps_and_follows_torch():
    a = cardiac.lv_volume(np.array([0.2, 1.2, -0.8]), 150.0, 60.0)
    np.testing.assert_allclose(a, a[0])
    t = cardiac.lv_volume(torch.tensor([0.1, 0.5], dtype=torch.float32), 150.0, 60.0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32


def test_lv_volume_curve_frames():
    for n in (12, 20, 25, 30, 35):
        c = cardiac.lv_volume_curve(n, 140.0, 55.0)
        assert c.n_frames == n and c.ed_frame == 0
        assert c.es_frame == round(0.35 * n)
        assert c.volumes.argmax() == 0 and c.volumes.argmin() == c.es_frame
        assert c.volumes[0] == pytest.approx(140.0) and c.volumes[c.es_frame] == pytest.approx(55.0)
        np.testing.assert_allclose(c.phase, np.arange(n) / n)
    assert cardiac.lv_volume_curve(20, 140.0, 55.0, es_fraction=0.4).es_frame == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_frames=1, edv=100.0, esv=50.0), "n_frames"),
        (dict(n_frames=10.0, edv=100.0, esv=50.0), "n_frames"),
        (dict(n_frames=20, edv=50.0, esv=100.0), "esv must not exceed edv"),
        (dict(n_frames=20, edv=100.0, esv=50.0, es_fraction=1.0), "es_fraction"),
        (dict(n_frames=4, edv=100.0, esv=50.0, es_fraction=0.05), "use more frames"),
        (dict(n_frames=20, edv=100.0, esv=50.0, rapid_filling=0.9, atrial_kick=0.2), "must not exceed 1"),
        (dict(n_frames=20, edv=np.array([100.0, 90.0]), esv=50.0), "single number"),
    ],
)
def test_lv_volume_curve_bad_input(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        cardiac.lv_volume_curve(**kwargs)


# ------------------------------------------------------------------ segmented cine timing
def test_segmented_cine_timing_worked_example():
    t = cardiac.segmented_cine_timing(TR=3.0, views_per_segment=12, n_phase_encodes=192, heart_rate=60.0,
                                      acquisition_window=0.9)
    assert t.temporal_resolution == pytest.approx(36.0)
    assert t.heartbeats == 16
    assert t.n_phases == 25
    assert t.rr_interval == pytest.approx(1000.0)
    assert t.breath_hold == pytest.approx(16.0)
    retro = cardiac.segmented_cine_timing(3.0, 12, 192, 60.0)                   # whole R-R: ⌊1000/36⌋
    assert retro.n_phases == 27
    assert cardiac.segmented_cine_timing(3.0, 10, 192, 75.0).heartbeats == 20   # ⌈192/10⌉


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.0, 12, 192, 60.0), "TR"),
        ((3.0, 0, 192, 60.0), "views_per_segment"),
        ((3.0, 12, 19.5, 60.0), "n_phase_encodes"),
        ((3.0, 12, 192, -60.0), "heart_rate"),
        ((3.0, 12, 192, 60.0, 1.5), "acquisition_window"),
        ((3.0, 400, 192, 60.0), "fewer views_per_segment"),
    ],
)
def test_segmented_cine_timing_bad_input(args, message):
    with pytest.raises(ArgumentError, match=message):
        cardiac.segmented_cine_timing(*args)
