"""cmrlab.nn.metrics: hand-computed values, and cross-checks against SimpleITK, MONAI and SciPy."""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from cmrlab.errors import ArgumentError
from cmrlab.nn import metrics as M
from cmrlab.physics import cardiac


def _blob(shape, seed, fraction=0.45, sigma=2.0):
    """A random smooth binary blob filling about ``fraction`` of the array."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return field > np.quantile(field, 1 - fraction)


def _ellipsoid(shape, centre, radii):
    grid = np.indices(shape, dtype=float)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def _labels(shape, seed, n_classes=4):
    """A random smooth label map with labels 0 … n_classes − 1."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random((n_classes, *shape)), (0, 2, 2, 2))
    return field.argmax(0)


# ------------------------------------------------------------------ Dice and accuracy
def test_dice_hand_computed():
    p = np.zeros((4, 4), bool)
    t = np.zeros((4, 4), bool)
    p[0, :4] = True                 # |P| = 4
    t[0, 1:4] = True
    t[1, :3] = True                 # |T| = 6, |P ∩ T| = 3
    assert M.dice(p, t) == pytest.approx(2 * 3 / (4 + 6))
    assert M.dice(p, p) == 1.0
    assert M.dice(p.astype(np.uint8), t.astype(np.int64)) == pytest.approx(0.6)   # 0/1 masks
    assert M.dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0    # documented: both empty → 1
    assert M.dice(p, np.zeros_like(p)) == 0.0


def test_dice_per_class_matches_monai():
    from monai.metrics import compute_dice
    from monai.networks.utils import one_hot

    pred = _labels((6, 20, 20), 1)
    target = np.roll(pred, 2, axis=2)                      # the same regions, shifted by 2 pixels
    ours = M.dice_per_class(pred, target, labels=(0, 1, 2, 3))
    ref = compute_dice(one_hot(torch.tensor(pred)[None, None], 4), one_hot(torch.tensor(target)[None, None], 4),
                       include_background=True)[0]
    np.testing.assert_allclose([ours[c] for c in range(4)], ref.numpy(), rtol=1e-6)
    assert 0.3 < min(ours.values()) and max(ours.values()) < 0.95      # a non-trivial example
    # default labels: the non-zero labels present; the mean is the macro average
    assert list(M.dice_per_class(pred, target)) == [1, 2, 3]
    assert M.mean_dice(pred, target) == pytest.approx(np.mean([ours[c] for c in (1, 2, 3)]))


def test_global_dice_is_pooled_over_classes():
    # 1D label maps: class 1 has |P|=4, |T|=2, overlap 2; class 2 has |P|=1, |T|=3, overlap 1
    pred = np.array([1, 1, 1, 1, 2, 0, 0, 0])
    target = np.array([1, 1, 0, 0, 2, 2, 2, 0])
    per = M.dice_per_class(pred, target)
    assert per == {1: pytest.approx(4 / 6), 2: pytest.approx(2 / 4)}
    assert M.global_dice(pred, target) == pytest.approx(2 * (2 + 1) / (4 + 2 + 1 + 3))   # 0.6
    assert M.mean_dice(pred, target) == pytest.approx((4 / 6 + 2 / 4) / 2)
    assert M.global_dice(pred, target, labels=(1,)) == pytest.approx(per[1])
    # the same label counts; a voxel with the wrong tissue label is no overlap
    assert M.global_dice(np.array([1, 2]), np.array([2, 1])) == 0.0
    assert M.global_dice(np.zeros(5, int), np.zeros(5, int)) == 1.0
    assert M.mean_dice(np.zeros(5, int), np.zeros(5, int)) == 1.0


def test_pixel_accuracy_and_the_accuracy_trap():
    target = np.zeros((20, 20), int)
    target[5:9, 5:10] = 1                       # an LV of 20 pixels = 5 % of the image
    all_background = np.zeros_like(target)
    assert M.pixel_accuracy(all_background, target) == pytest.approx(0.95)
    assert M.dice(all_background, target) == 0.0
    assert M.pixel_accuracy(target, target) == 1.0


def test_brain_dice_average_includes_background():
    target = np.repeat(np.arange(4), 10)            # 10 voxels of each class
    pred = target.copy()
    pred[10:12] = 0                                  # 2 CSF voxels called background
    pred[20:25] = 3                                  # 5 GM voxels called WM
    res = M.brain_dice(pred, target)
    expected = {0: 2 * 10 / 22, 1: 2 * 8 / 18, 2: 2 * 5 / 15, 3: 2 * 10 / 25}
    assert res.per_class == pytest.approx(expected)
    assert res.average == pytest.approx(np.mean(list(expected.values())))
    assert res.tissue_mean == pytest.approx(np.mean([expected[1], expected[2], expected[3]]))
    assert res.average > res.tissue_mean             # the background flatters the average
    assert M.BRAIN_CLASSES[3] == "WM"
    with pytest.raises(ArgumentError, match="background"):
        M.brain_dice(pred, target, labels=(0,))


# ------------------------------------------------------------------ surfaces and distances
def test_surface_voxels():
    square = np.zeros((7, 7), bool)
    square[1:6, 1:6] = True                          # 5×5 square: 16 boundary pixels
    assert M.surface_voxels(square).sum() == 16
    cube = np.ones((3, 3, 3), bool)                  # touches the array border: all but the centre
    surface = M.surface_voxels(cube)
    assert surface.sum() == 26 and not surface[1, 1, 1]
    assert not M.surface_voxels(np.zeros((4, 4))).any()


def test_hausdorff_hand_computed_and_spacing():
    a = np.zeros((8, 8), bool)
    b = np.zeros((8, 8), bool)
    a[0, 0] = True
    b[3, 4] = True
    assert M.hausdorff_distance(a, b, spacing=1.0) == pytest.approx(5.0)
    assert M.hausdorff_distance(a, b, spacing=(2.0, 1.0)) == pytest.approx(math.sqrt(6**2 + 4**2))
    assert M.average_surface_distance(a, b, spacing=(2.0, 1.0)) == pytest.approx(math.sqrt(52))
    # directed distances: pred {0,1,2} vs target {0} along a line, spacing 1.5 mm
    p = np.array([1, 1, 1, 0, 0, 0], bool)
    t = np.array([1, 0, 0, 0, 0, 0], bool)
    d_pt, d_tp = M.surface_distances(p, t, spacing=1.5)
    np.testing.assert_allclose(d_pt, [0.0, 3.0])          # surface of p: voxels 0 and 2
    np.testing.assert_allclose(d_tp, [0.0])
    assert M.hausdorff_distance(p, t, 1.5) == pytest.approx(3.0)
    assert M.average_surface_distance(p, t, 1.5) == pytest.approx(3.0 / 3)
    assert M.average_surface_distance(p, t, 1.5, symmetric=False) == pytest.approx(1.5)
    assert M.hausdorff_distance(p, t, 1.5, percentile=50) == pytest.approx(1.5)   # median of [0, 3]
    assert M.hausdorff_distance(p, p, 1.5) == 0.0


def _sitk_hd(a, b, spacing):
    import SimpleITK as sitk

    def image(m):
        img = sitk.GetImageFromArray(m.astype(np.uint8))
        img.SetSpacing([float(s) for s in spacing[::-1]])    # SimpleITK orders axes x, y, z
        return img

    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(image(a), image(b))
    return f.GetHausdorffDistance()


def test_hausdorff_matches_simpleitk_anisotropic():
    spacing = (10.0, 1.5, 1.25)                               # (dz, dy, dx): cine-like slices
    shape = (10, 48, 48)
    # two overlapping ellipsoids: the set Hausdorff distance (SimpleITK) equals the surface one
    a = _ellipsoid(shape, (4.5, 22, 24), (3.5, 12, 10))
    b = _ellipsoid(shape, (5.0, 26, 21), (3.0, 9, 13))
    ours = M.hausdorff_distance(a, b, spacing)
    assert ours == pytest.approx(_sitk_hd(a, b, spacing), rel=1e-9)
    # any shapes: SimpleITK on the two surfaces gives exactly our surface Hausdorff distance
    a, b = _blob(shape, 3), _blob(shape, 4)
    assert M.hausdorff_distance(a, b, spacing) == pytest.approx(
        _sitk_hd(M.surface_voxels(a), M.surface_voxels(b), spacing), rel=1e-9)
    # spacing matters: the same masks in voxel units give another number
    assert M.hausdorff_distance(a, b, 1.0) != pytest.approx(M.hausdorff_distance(a, b, spacing))


@pytest.mark.filterwarnings("ignore::FutureWarning")   # MONAI's own deprecation notice
@pytest.mark.parametrize("shape, spacing", [((10, 40, 40), (10.0, 1.5, 1.25)), ((50, 60), (0.7, 1.3))])
def test_surface_metrics_match_monai(shape, spacing):
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    a, b = _blob(shape, 5), _blob(shape, 6)
    ta, tb = torch.tensor(a)[None, None].float(), torch.tensor(b)[None, None].float()
    kw = dict(include_background=True, spacing=spacing)
    assert M.hausdorff_distance(a, b, spacing) == pytest.approx(compute_hausdorff_distance(ta, tb, **kw).item(), rel=1e-5)
    assert M.hd95(a, b, spacing) == pytest.approx(
        compute_hausdorff_distance(ta, tb, percentile=95, **kw).item(), rel=1e-5)
    assert M.average_surface_distance(a, b, spacing) == pytest.approx(
        compute_average_surface_distance(ta, tb, symmetric=True, **kw).item(), rel=1e-5)
    assert M.average_surface_distance(a, b, spacing, symmetric=False) == pytest.approx(
        compute_average_surface_distance(ta, tb, symmetric=False, **kw).item(), rel=1e-5)
    assert 0 < M.average_surface_distance(a, b, spacing) < M.hd95(a, b, spacing) < M.hausdorff_distance(a, b, spacing)


def test_per_class_surface_metric_on_label_maps():
    pred, target = _labels((6, 24, 24), 7), _labels((6, 24, 24), 8)
    spacing = (8.0, 1.4, 1.4)
    hd = M.per_class(M.hausdorff_distance, pred, target, labels=(1, 2, 3), spacing=spacing)
    assert list(hd) == [1, 2, 3]
    for c in (1, 2, 3):
        assert hd[c] == pytest.approx(M.hausdorff_distance(pred == c, target == c, spacing))


def test_empty_masks_documented_values():
    from monai.metrics import compute_hausdorff_distance

    empty = np.zeros((5, 6, 6), bool)
    full = empty.copy()
    full[1:4, 2:5, 2:5] = True
    for metric in (M.hausdorff_distance, M.hd95, M.average_surface_distance):
        assert metric(empty, empty, 1.0) == 0.0                  # both empty: perfect agreement
        assert metric(full, empty, 1.0) == math.inf              # one empty: infinitely far
        assert metric(empty, full, 1.0) == math.inf
    assert M.average_surface_distance(empty, full, 1.0, symmetric=False) == math.inf
    # MONAI agrees on the Hausdorff distance of an empty vs a non-empty mask
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monai_hd = compute_hausdorff_distance(torch.tensor(full)[None, None].float(),
                                              torch.tensor(empty)[None, None].float(), include_background=True)
    assert monai_hd.item() == math.inf


# ------------------------------------------------------------------ volumes and cardiac function
def test_mask_volume_is_the_method_of_disks():
    mask = np.zeros((4, 20, 20), bool)
    mask[1:4, 5:15, 5:15] = True                      # 3 slices of 10×10 pixels
    spacing = (10.0, 1.5, 1.5)
    assert M.mask_volume(mask, spacing) == pytest.approx(3 * 100 * 1.5 * 1.5 * 10 / 1000)   # 6.75 ml
    # slices on the last axis
    assert M.mask_volume(np.moveaxis(mask, 0, -1), (1.5, 1.5, 10.0), slice_axis=-1) == pytest.approx(6.75)
    labels = _labels((5, 16, 16), 9)
    s = (8.0, 1.25, 1.5)
    for c in range(4):
        assert M.mask_volume(labels, s, label=c) == pytest.approx((labels == c).sum() * np.prod(s) / 1000)
    assert sum(M.mask_volume(labels, s, label=c) for c in range(4)) == pytest.approx(labels.size * np.prod(s) / 1000)


def test_volume_errors():
    assert M.relative_volume_error(102.5, 100.0) == pytest.approx(0.025)
    assert M.relative_volume_error(97.5, 100.0) == pytest.approx(0.025)
    np.testing.assert_allclose(M.relative_volume_error([110.0, 45.0], [100.0, 50.0]), [0.1, 0.1])
    assert M.absolute_volume_error(90.0, 100.0) == pytest.approx(10.0)
    np.testing.assert_allclose(M.absolute_volume_error(np.array([1.0, 5.0]), np.array([2.0, 2.0])), [1.0, 3.0])
    assert isinstance(M.relative_volume_error(1.0, 2.0), float)
    with pytest.raises(ArgumentError, match="positive"):
        M.relative_volume_error(1.0, 0.0)
    with pytest.raises(ArgumentError, match="predicted"):
        M.absolute_volume_error(-1.0, 2.0)
    with pytest.raises(ArgumentError, match="same shape"):
        M.relative_volume_error([1.0, 2.0, 3.0], [1.0, 2.0])


def test_cardiac_function_from_masks():
    spacing = (10.0, 1.25, 1.25)                      # one voxel = 15.625 mm³
    ed = np.zeros((8, 32, 32), int)
    ed[1:7, 6:26, 6:26] = 2                           # myocardium ring …
    ed[1:7, 10:22, 10:22] = 1                         # … around the LV cavity: 6·144 voxels
    es = np.zeros_like(ed)
    es[2:6, 12:20, 12:20] = 1                         # 4·64 voxels
    es[2:6, 0:4, 0:4] = 2                             # ES label 2 (RV in the thesis) is ignored
    res = M.cardiac_function(ed, es, spacing)
    voxel_ml = 10 * 1.25 * 1.25 / 1000
    edv, esv = 6 * 144 * voxel_ml, 4 * 64 * voxel_ml
    assert res.edv == pytest.approx(edv) and res.esv == pytest.approx(esv)
    assert res.sv == pytest.approx(edv - esv)
    assert res.ef == pytest.approx(100 * (edv - esv) / edv)
    assert res.ef == pytest.approx(cardiac.ejection_fraction(edv, esv))
    assert res.lv_mass == pytest.approx(6 * (400 - 144) * voxel_ml * 1.055)
    assert M.cardiac_function(ed, es, spacing, myocardium_label=None).lv_mass is None
    with pytest.raises(ArgumentError, match="swapped"):
        M.cardiac_function(es, ed, spacing)


# ------------------------------------------------------------------ ES/ED frames
def test_naive_and_central_frame_selection():
    p = np.array([0.1, 0.5, 0.92, 0.95, 0.97, 0.93, 0.4])
    assert M.select_frame(p, "naive") == 4
    assert M.select_frame(p, "central") == 3          # run 2…5: the earlier middle frame
    assert M.select_frame(np.array([0.2, 0.91, 0.99, 0.95, 0.3]), "central") == 2
    assert M.select_frame(np.array([0.2, 0.95, 0.91, 0.99, 0.3]), "central") == 2   # odd run 1…3
    # nothing above 0.9: the central method falls back to the naive frame
    assert M.select_frame(np.array([0.1, 0.6, 0.8, 0.7]), "central") == 2
    # two runs: the one holding the most probable frame wins
    two_runs = np.array([0.95, 0.96, 0.94, 0.1, 0.1, 0.99, 0.91, 0.92, 0.93, 0.2])
    assert M.select_frame(two_runs, "naive") == 5
    assert M.select_frame(two_runs, "central") == 6   # run 5…8
    assert M.select_frame(two_runs, "central", threshold=0.5) == 6
    assert M.select_frame(two_runs, "central", threshold=0.0) == 4   # one run over all 10 frames


def test_central_selection_wraps_round_a_circular_cycle():
    p = np.full(35, 0.05)
    p[[33, 34, 0, 1, 2]] = [0.92, 0.97, 0.99, 0.95, 0.91]
    assert M.select_frame(p, "central") == 1          # run 0…2 only
    assert M.select_frame(p, "central", circular=True) == 0   # run 33…2 wraps, centre 0
    p = np.full(10, 0.05)
    p[[9, 0]] = [0.99, 0.95]
    assert M.select_frame(p, "central", circular=True) == 9   # run 9, 0 → earlier middle 9
    assert M.select_frame(np.full(5, 0.95), "central", circular=True) == 0


def test_es_ed_frames_from_frame_detector_output():
    logits = torch.full((3, 12), -4.0)
    logits[2] = 4.0                                   # background everywhere …
    logits[0, 5:9] = torch.tensor([7.0, 7.5, 9.0, 7.0])   # … except an ES plateau at 5-8 (p > 0.95)
    logits[1, 0] = 9.0                                # and ED at frame 0
    probs = logits.softmax(dim=0)
    assert M.es_ed_frames(probs, "naive") == (7, 0)
    assert M.es_ed_frames(probs, "central") == (6, 0)
    assert M.es_ed_frames(probs.numpy()) == (6, 0)
    with pytest.raises(ArgumentError, match="softmax"):
        M.es_ed_frames(logits)
    with pytest.raises(ArgumentError, match=r"\(classes, frames\)"):
        M.es_ed_frames(probs[None])
    with pytest.raises(ArgumentError, match="method"):
        M.select_frame(probs[0], "middle")
    with pytest.raises(ArgumentError, match="threshold"):
        M.select_frame(probs[0], threshold=1.0)


def test_frame_differences():
    assert M.frame_difference(12, 9) == 3
    assert isinstance(M.frame_difference(12, 9), int)
    np.testing.assert_array_equal(M.frame_difference([10, 3, 0], [12, 3, 1]), [2, 0, 1])
    # the thesis's test set mixes 35-, 25- and 22-frame cases
    rel = M.relative_frame_difference([10, 3, 0], [12, 3, 1], n_frames=[35, 25, 22])
    np.testing.assert_allclose(rel, [2 / 35, 0.0, 1 / 22])
    assert M.relative_frame_difference(1, 0, 25) == pytest.approx(0.04)
    assert M.frame_difference(34, 0) == 34
    assert M.frame_difference(34, 0, n_frames=35, circular=True) == 1
    assert M.relative_frame_difference(34, 0, 35, circular=True) == pytest.approx(1 / 35)
    with pytest.raises(ArgumentError, match="n_frames"):
        M.frame_difference(3, 1, circular=True)
    with pytest.raises(ArgumentError, match="below n_frames"):
        M.frame_difference(35, 0, n_frames=35)
    with pytest.raises(ArgumentError, match="whole frame"):
        M.frame_difference(2.5, 1)


# ------------------------------------------------------------------ agreement
def test_pearson_and_linear_fit_match_scipy():
    rng = np.random.default_rng(0)
    manual = rng.uniform(60, 300, 40)
    predicted = 0.8 * manual + 20 + rng.normal(0, 12, 40)
    ref = stats.linregress(manual, predicted)
    assert M.pearson_r(manual, predicted) == pytest.approx(stats.pearsonr(manual, predicted)[0], rel=1e-12)
    fit = M.linear_fit(manual, predicted)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-12)
    assert M.pearson_r([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert M.linear_fit([0, 1, 2], [1, 3, 5]) == M.LinearFit(slope=2.0, intercept=1.0)
    with pytest.raises(ArgumentError, match="vary"):
        M.pearson_r([1, 1, 1], [1, 2, 3])
    with pytest.raises(ArgumentError, match="same length"):
        M.linear_fit([1, 2, 3], [1, 2])


def test_bland_altman_hand_computed():
    method = np.array([102.0, 98.0, 110.0, 95.0])
    reference = np.array([100.0, 100.0, 104.0, 97.0])
    ba = M.bland_altman(method, reference)        # differences 2, −2, 6, −2: mean 1, SD √(44/3)
    sd = math.sqrt(((1**2) + (3**2) + (5**2) + (3**2)) / 3)
    assert ba.bias == pytest.approx(1.0)
    assert ba.sd == pytest.approx(sd)
    assert (ba.lower, ba.upper) == (pytest.approx(1 - 1.96 * sd), pytest.approx(1 + 1.96 * sd))
    np.testing.assert_allclose(ba.differences, [2, -2, 6, -2])
    np.testing.assert_allclose(ba.means, [101, 99, 107, 96])
    with pytest.raises(ArgumentError, match="at least 2"):
        M.bland_altman([1.0], [1.0])


# ------------------------------------------------------------------ inputs
def test_torch_inputs_give_the_numpy_results():
    a, b = _blob((6, 20, 20), 11), _blob((6, 20, 20), 12)
    ta, tb = torch.tensor(a), torch.tensor(b).float().requires_grad_()
    spacing = torch.tensor([6.0, 1.2, 1.2])
    assert M.dice(ta, tb) == M.dice(a, b)
    assert M.hausdorff_distance(ta, tb, spacing) == pytest.approx(M.hausdorff_distance(a, b, (6.0, 1.2, 1.2)))
    assert M.mask_volume(ta, spacing) == pytest.approx(M.mask_volume(a, (6.0, 1.2, 1.2)))
    la, lb = _labels((4, 12, 12), 13), _labels((4, 12, 12), 14)
    assert M.dice_per_class(torch.tensor(la), torch.tensor(lb)) == M.dice_per_class(la, lb)
    assert M.pearson_r(torch.arange(5.0), torch.tensor([1.0, 3, 2, 5, 4])) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: M.dice(np.ones((3, 3)), np.ones((3, 4))), "same shape"),
        (lambda: M.dice(np.array([0.0, np.nan]), np.array([0.0, 1.0])), "pred contains NaN"),
        (lambda: M.dice(np.array([0, 2, 1]), np.array([0, 1, 1])), "binary mask"),
        (lambda: M.dice(np.zeros(0), np.zeros(0)), "no elements"),
        (lambda: M.pixel_accuracy(np.array([0.5, 1.0]), np.array([0, 1])), "integer labels"),
        (lambda: M.dice_per_class(np.array([0, 1]), np.array([0, 1]), labels=(1, 1)), "repeat"),
        (lambda: M.hausdorff_distance(np.ones((3, 3)), np.ones((3, 3)), spacing=(1.0, 2.0, 3.0)), "per axis"),
        (lambda: M.hausdorff_distance(np.ones((3, 3)), np.ones((3, 3)), spacing=(1.0, -2.0)), "positive"),
        (lambda: M.hausdorff_distance(np.ones((3, 3)), np.ones((3, 3)), spacing=float("nan")), "spacing"),
        (lambda: M.hausdorff_distance(np.ones((3, 3)), np.ones((3, 3)), 1.0, percentile=101), "percentile"),
        (lambda: M.mask_volume(np.ones((3, 3)), 1.0), "3D"),
        (lambda: M.mask_volume(np.ones((3, 3, 3)), 1.0, slice_axis=3), "slice_axis"),
        (lambda: M.pearson_r([1.0, float("inf")], [1.0, 2.0]), "infinite"),
        (lambda: M.pearson_r(np.ones((2, 2)), np.ones((2, 2))), "one-dimensional"),
        (lambda: M.dice(torch.zeros(2, dtype=torch.complex64), torch.zeros(2)), "complex"),
    ],
)
def test_bad_input_raises_argument_error(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


def test_foreground_dice_checks_its_tensors():
    import torch

    from cmrlab.errors import ArgumentError
    from cmrlab.nn.metrics import foreground_dice

    logits = torch.zeros(2, 3, 4, 4)
    logits[:, 1] = 1.0
    target = torch.ones(2, 4, 4, dtype=torch.long)
    assert float(foreground_dice(logits, target)) == pytest.approx((1.0 + 1.0) / 2)   # class 2 absent from both
    for bad_output, bad_target, message in [
        (logits.numpy(), target, "tensors"), (torch.zeros(2, 1, 4, 4), target, "C >= 2"),
        (logits, torch.ones(2, 4, 5, dtype=torch.long), "target must be"),
    ]:
        with pytest.raises(ArgumentError, match=message):
            foreground_dice(bad_output, bad_target)
