"""cmrlab.physics.contrast_explorer: MNI fraction maps, tissue signals, slice synthesis, the widget."""
import math
import re

import numpy as np
import pytest

from cmrlab.errors import ArgumentError
from cmrlab.physics.contrast_explorer import (
    BRAIN_TISSUES,
    contrast_explorer,
    mni_tissue_fractions,
    synthesize_slice,
    timing_problem,
    tissue_signal,
)
from cmrlab.physics.tissues import get_tissue

WM, GM, CSF = (get_tissue(n, 1.5) for n in BRAIN_TISSUES)


# -- fraction maps ------------------------------------------------------------------------------
def test_mni_fractions_are_a_partition_of_the_head():
    f = mni_tissue_fractions(18.0, 2)
    assert set(f) == set(BRAIN_TISSUES)
    assert all(a.shape == (116, 98) for a in f.values())  # 233 × 197 mm cropped to 2 mm blocks
    total = sum(f.values())
    assert all(a.min() >= 0 and a.max() <= 1 for a in f.values())
    assert total.max() <= 1 + 1e-12
    assert total[0, 0] == 0 and total[-1, -1] == 0  # corners lie outside the head
    inside = total > 0.999
    assert inside.sum() > 3000  # about 20 000 mm² of brain in this slice, 4 mm² per voxel
    # every tissue is present with pure voxels (deep WM, cortex, ventricles)
    for name in BRAIN_TISSUES:
        assert f[name].max() > 0.95, name


def test_mni_fractions_downsample_by_block_averaging():
    fine = mni_tissue_fractions(18.0, 1)
    coarse = mni_tissue_fractions(18.0, 2)
    assert fine["csf"].shape == (233, 197)
    block = fine["white_matter"][:232, :196].reshape(116, 2, 98, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(coarse["white_matter"], block)
    # the cache must not hand out arrays a caller can corrupt
    fine["csf"][:] = 0.5
    assert mni_tissue_fractions(18.0, 1)["csf"].min() == 0.0


def test_mni_fractions_orientation_is_radiological():
    import nibabel as nib

    from cmrlab.physics.contrast_explorer import _MNI_FILE, _mni_folder

    img = nib.load(_mni_folder() / _MNI_FILE.format("wm"))
    wm = np.asarray(img.dataobj[:, :, 18 + 72], dtype=float) / 255.0
    f = mni_tissue_fractions(18.0, 1)["white_matter"]
    # row 0 / column 0 of the display array is voxel (i = 196, j = 232) of the volume:
    i, j = 196, 232
    x, y, z, _ = img.affine @ [i, j, 18 + 72, 1]
    assert (x, y, z) == (98.0, 98.0, 18.0)  # subject's right (+x), anterior (+y) in RAS
    np.testing.assert_allclose(f, wm[::-1, ::-1].T)
    # an asymmetric probe: the display column grows towards the subject's left
    assert f[50, 10] == wm[196 - 10, 232 - 50]


@pytest.mark.parametrize("z, voxel, match", [(200.0, 2, "z_mm"), (float("nan"), 2, "z_mm"), ("18", 2, "z_mm"),
                                             (18.0, 0, "voxel_mm"), (18.0, 1.5, "voxel_mm")])
def test_mni_fractions_bad_arguments(z, voxel, match):
    with pytest.raises(ArgumentError, match=match):
        mni_tissue_fractions(z, voxel)


# -- signals ---------------------------------------------------------------------------------------
def test_tissue_signal_matches_the_closed_forms():
    e = math.exp
    assert tissue_signal(WM, "SE", 340, 13) == pytest.approx(0.65 * (1 - e(-340 / 656)) * e(-13 / 72))
    a = math.radians(20)
    e1 = e(-10 / 656)
    gre = 0.65 * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * e(-4 / WM.T2star)
    assert tissue_signal(WM, "GRE", 10, 4, flip=20) == pytest.approx(gre)
    ir = 0.97 * (1 - 2 * e(-2000 / 4070) + 2 * e(-(8000 - 70) / 4070) - e(-8000 / 4070)) * e(-140 / 2200)
    assert tissue_signal(CSF, "IR", 8000, 140, TI=2000) == pytest.approx(abs(ir))
    # IR gives the magnitude: WM at a very short TI is still inverted, yet the signal is positive
    assert tissue_signal(WM, "IR", 8000, 10, TI=10) > 0.5


def test_thesis_protocols_give_the_textbook_contrast():
    t1w = [tissue_signal(t, "SE", 340, 13) for t in (WM, GM, CSF)]
    t2w = [tissue_signal(t, "SE", 3500, 120) for t in (WM, GM, CSF)]
    assert t1w[0] > t1w[1] > t1w[2]
    assert t2w[2] > t2w[1] > t2w[0]


def test_tissue_signal_bad_arguments():
    with pytest.raises(ArgumentError, match="sequence"):
        tissue_signal(WM, "FSE", 3500, 120)
    with pytest.raises(ArgumentError, match="tissue"):
        tissue_signal("white_matter", "SE", 3500, 120)
    with pytest.raises(ArgumentError, match="TE"):
        tissue_signal(WM, "SE", 100, 120)


def test_timing_problem():
    assert timing_problem("SE", 500, 20) is None
    assert "TE" in timing_problem("GRE", 10, 20)
    assert timing_problem("IR", 8000, 140, 2300) is None
    assert "TI + TE" in timing_problem("IR", 2000, 140, 2300)
    assert timing_problem("SE", 2000, 140, 2300) is None  # TI plays no part in a spin echo


def test_synthesize_slice_is_the_fraction_weighted_sum():
    f = {"white_matter": np.array([[1.0, 0.25], [0.0, 0.0]]), "csf": np.array([[0.0, 0.75], [1.0, 0.0]])}
    image = synthesize_slice(f, {"white_matter": 0.4, "csf": 0.8, "grey_matter": 9.0})
    np.testing.assert_allclose(image, [[0.4, 0.25 * 0.4 + 0.75 * 0.8], [0.8, 0.0]])
    with pytest.raises(ArgumentError, match="no value"):
        synthesize_slice(f, {"white_matter": 0.4})
    with pytest.raises(ArgumentError, match="one shape"):
        synthesize_slice({"white_matter": np.zeros((2, 2)), "csf": np.zeros((3, 2))}, {"white_matter": 1, "csf": 1})
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        synthesize_slice({"csf": np.full((2, 2), 1.5)}, {"csf": 1.0})
    with pytest.raises(ArgumentError, match="2D"):
        synthesize_slice({"csf": np.zeros(4)}, {"csf": 1.0})


# -- the explorer ----------------------------------------------------------------------------------
def small_fractions():
    wm = np.zeros((6, 6))
    gm = np.zeros((6, 6))
    csf = np.zeros((6, 6))
    wm[:, :2] = 1.0
    gm[:, 2:4] = 1.0
    csf[:, 4:] = 1.0
    return {"white_matter": wm, "grey_matter": gm, "csf": csf}


def drawn(fig):
    """(bar heights, image array) of a drawn explorer figure."""
    bar_ax, img_ax = fig.axes
    heights = [p.get_height() for p in bar_ax.patches]
    return np.array(heights), np.asarray(img_ax.images[0].get_array())


def test_explorer_draws_the_signals_and_the_slice():
    ex = contrast_explorer("SE", TR=340, TE=13, fractions=small_fractions())
    heights, image = drawn(ex.figure())
    expected = [tissue_signal(t, "SE", 340, 13) for t in (WM, GM, CSF)]
    np.testing.assert_allclose(heights, expected)
    np.testing.assert_allclose(image[0], np.repeat(expected, 2))


def test_explorer_state_changes_change_the_drawing():
    ex = contrast_explorer("SE", TR=3500, TE=13, TI=2270, fractions=small_fractions())
    before, _ = drawn(ex.figure())
    ex.set(TE=120)
    t2w, image = drawn(ex.figure())
    assert not np.allclose(before, t2w)
    assert t2w[2] > t2w[1] > t2w[0]  # CSF > GM > WM
    ex.set(sequence="IR", TR=8000, TE=140, TI=2270)  # FLAIR at the CSF null time (2270 ms)
    flair, image = drawn(ex.figure())
    assert flair[2] < 1e-3 < flair[0] < flair[1]
    assert image[:, 4:].max() < 1e-3
    ex.set(sequence="GRE", TR=10, TE=4, flip=15)
    gre, _ = drawn(ex.figure())
    np.testing.assert_allclose(gre, [tissue_signal(t, "GRE", 10, 4, flip=15) for t in (WM, GM, CSF)])


def test_explorer_live_widget_redraws():
    ex = contrast_explorer(fractions=small_fractions())
    ex.widget
    first = ex._image.value
    ex._widgets["TE"].value = 100
    assert ex.params["TE"] == 100 and ex._image.value != first


def test_explorer_shows_a_message_for_impossible_timings():
    ex = contrast_explorer("IR", TR=2000, TE=140, TI=2300, fractions=small_fractions())
    fig = ex.figure()
    texts = [t.get_text() for t in fig.texts]
    assert any("TI + TE = 2440 ms exceeds TR = 2000 ms" in t for t in texts)
    assert all(not ax.images and not ax.patches for ax in fig.axes)


def test_explorer_static_animation_sweeps_te_and_ti():
    ex = contrast_explorer(fractions=small_fractions(), frames=4)
    assert ex.sweep_values() == [1, 84, 167, 250]
    html = ex.to_html()
    assert len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html)) == 4
    assert ex.params["TE"] == 13  # the sweep leaves the state alone
    flair = contrast_explorer("IR", TR=8000, TE=140, animate="TI", fractions=small_fractions(), frames=3)
    assert flair.sweep_values() == [0, 2000, 4000]


def test_explorer_on_the_mni_slice():
    ex = contrast_explorer("SE", TR=3500, TE=120)
    heights, image = drawn(ex.figure())
    assert image.shape == (116, 98)
    assert heights[2] == pytest.approx(tissue_signal(CSF, "SE", 3500, 120))
    assert image.max() == pytest.approx(heights[2], rel=0.01)  # the brightest voxels are pure CSF


@pytest.mark.parametrize("kwargs, match", [
    ({"sequence": "FSE"}, "sequence"),
    ({"TR": -1}, "TR"),
    ({"TE": float("nan")}, "TE"),
    ({"TI": 5000}, "TI"),
    ({"flip": "30"}, "flip"),
    ({"animate": "B0"}, "animate"),
    ({"field_strength": 7.0}, "field_strength"),
    ({"fractions": {"white_matter": np.zeros((2, 2)), "csf": np.zeros((3, 3))}}, "one shape"),
    ({"fractions": {"bone": np.zeros((2, 2))}}, "unknown tissue"),
])
def test_explorer_bad_arguments(kwargs, match):
    kwargs.setdefault("fractions", small_fractions())
    with pytest.raises(ArgumentError, match=match):
        contrast_explorer(**kwargs)
