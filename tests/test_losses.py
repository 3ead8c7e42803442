"""Tests of cmrlab.nn.losses: every loss against MONAI (or torch) with identical settings on random
inputs, the thesis's losses (Eq 6.1, 7.1, 7.2, the fixed-weight GDL) against hand-computed values on
tiny examples, reductions, gradients and bad input."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cmrlab.errors import ArgumentError
from cmrlab.nn import losses as L

monai_losses = pytest.importorskip("monai.losses")


def _data(shape=(2, 4, 6, 5, 3), seed=0, empty_class_in_sample0=False):
    """Random logits (N, C, *spatial) and integer labels (N, *spatial)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if empty_class_in_sample0:
        labels[0][labels[0] == shape[1] - 1] = 0  # the last class is absent from sample 0
    return logits, labels


def _one_hot(labels, c):
    return F.one_hot(labels, c).movedim(-1, 1).double()


def _close(a, b, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(a, b.to(a.dtype), rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------ against MONAI
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_loss_matches_monai(activation, include_background, squared, batch):
    logits, labels = _data()
    ref = monai_losses.DiceLoss(include_background=include_background, to_onehot_y=True,
                                softmax=activation == "softmax", sigmoid=activation == "sigmoid",
                                squared_pred=squared, batch=batch, reduction="none")
    expected = ref(logits, labels[:, None])
    ours = L.dice_loss(logits, labels, activation=activation, include_background=include_background,
                       squared=squared, batch=batch, reduction="none")
    _close(ours, expected.reshape(ours.shape))
    n_kept = 4 if include_background else 3
    assert ours.shape == ((n_kept,) if batch else (2, n_kept))
    for reduction in ("mean", "sum"):  # and with one-hot targets
        ref.reduction = reduction
        _close(L.dice_loss(logits, _one_hot(labels, 4), activation=activation, include_background=include_background,
                           squared=squared, batch=batch, reduction=reduction), ref(logits, labels[:, None]))


def test_binary_dice_with_one_sigmoid_channel_matches_monai():
    logits, labels = _data((3, 1, 8, 8), seed=1)
    labels = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2)) > 0.7).long()
    expected = monai_losses.DiceLoss(sigmoid=True)(logits, labels[:, None].double())
    for target in (labels, labels[:, None], labels.bool(), labels.double()):
        _close(L.dice_loss(logits, target, activation="sigmoid"), expected)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_generalized_dice_loss_matches_monai(w_type, include_background, batch):
    logits, labels = _data(empty_class_in_sample0=True)  # hits the rule for a class absent from the target
    expected = monai_losses.GeneralizedDiceLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                                w_type=w_type, batch=batch, reduction="none")(logits, labels[:, None])
    ours = L.generalized_dice_loss(logits, labels, weights=w_type, include_background=include_background,
                                   batch=batch, reduction="none")
    _close(ours, expected.reshape(ours.shape))
    assert ours.shape == (() if batch else (2,))


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.9, 0.1)])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_tversky_loss_matches_monai(alpha, beta, activation):
    logits, labels = _data(seed=3)
    for include_background, batch in ((True, False), (False, True)):
        ref = monai_losses.TverskyLoss(include_background=include_background, to_onehot_y=True,
                                       softmax=activation == "softmax", sigmoid=activation == "sigmoid",
                                       alpha=alpha, beta=beta, batch=batch, reduction="none")
        expected = ref(logits, labels[:, None])
        ours = L.tversky_loss(logits, labels, alpha=alpha, beta=beta, activation=activation,
                              include_background=include_background, batch=batch, reduction="none")
        _close(ours, expected)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_loss_matches_monai(gamma, alpha):
    logits, labels = _data(seed=4)
    for include_background in (True, False):
        for reduction in ("mean", "sum", "none"):
            ref = monai_losses.FocalLoss(include_background=include_background, to_onehot_y=True, gamma=gamma,
                                         alpha=alpha, use_softmax=False, reduction=reduction)
            ours = L.focal_loss(logits, labels, gamma=gamma, alpha=alpha, activation="sigmoid",
                                include_background=include_background, reduction=reduction)
            expected = ref(logits, labels[:, None])  # MONAI's FocalLoss computes in float32
            if reduction == "sum":  # MONAI's "sum" averages over the spatial axes first (kept for its back-compat)
                expected = expected * labels[0].numel()
            _close(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("alpha", [None, (0.1, 0.2, 0.3, 0.4)])
def test_softmax_focal_loss_is_monai_times_the_number_of_classes(gamma, alpha):
    logits, labels = _data(seed=5)
    ref = monai_losses.FocalLoss(to_onehot_y=True, gamma=gamma, alpha=alpha, use_softmax=True)
    expected = ref(logits, labels[:, None])
    _close(L.focal_loss(logits, labels, gamma=gamma, alpha=alpha), 4 * expected, rtol=1e-5)  # MONAI: float32
    none = L.focal_loss(logits, labels, gamma=gamma, alpha=alpha, reduction="none")
    assert none.shape == labels.shape  # one value per voxel


def test_dice_ce_loss_matches_monai_softmax_and_bce_plus_dice():
    logits, labels = _data(seed=6)
    for lambda_dice, lambda_ce in ((1.0, 1.0), (0.3, 2.0)):
        expected = monai_losses.DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=lambda_dice,
                                           lambda_ce=lambda_ce)(logits, labels[:, None])
        _close(L.dice_ce_loss(logits, labels, lambda_dice=lambda_dice, lambda_ce=lambda_ce), expected)
        _close(L.DiceCELoss(lambda_dice=lambda_dice, lambda_ce=lambda_ce)(logits, _one_hot(labels, 4)), expected)
    # BCE + Dice on a single sigmoid channel
    binary = (labels == 2).double()[:, None]
    expected = monai_losses.DiceCELoss(sigmoid=True)(logits[:, :1], binary)
    _close(L.dice_ce_loss(logits[:, :1], binary, activation="sigmoid"), expected)
    expected_sum = monai_losses.DiceCELoss(sigmoid=True, reduction="sum")(logits[:, :1], binary)
    _close(L.dice_ce_loss(logits[:, :1], binary, activation="sigmoid", reduction="sum"), expected_sum)


# ------------------------------------------------------------------------------ cross-entropy vs torch
def test_cross_entropy_matches_torch_with_and_without_class_weights():
    logits, labels = _data(seed=7)
    weights = torch.tensor([0.1, 0.3, 0.3, 0.3], dtype=torch.float64)
    for w in (None, weights):
        for reduction in ("mean", "sum", "none"):
            expected = F.cross_entropy(logits, labels, weight=w, reduction=reduction)
            _close(L.cross_entropy(logits, labels, class_weights=w, reduction=reduction), expected)
            _close(L.cross_entropy(logits, _one_hot(labels, 4), class_weights=w, reduction=reduction), expected)
    # (N, C) classification logits
    _close(L.cross_entropy(logits[:, :, 0, 0, 0], labels[:, 0, 0, 0]), F.cross_entropy(logits[:, :, 0, 0, 0],
                                                                                      labels[:, 0, 0, 0]))


def test_binary_cross_entropy_matches_torch_and_class_weights_give_a_weighted_mean():
    logits, labels = _data(seed=8)
    target = _one_hot(labels, 4)
    _close(L.cross_entropy(logits, labels, activation="sigmoid"),
           F.binary_cross_entropy_with_logits(logits, target))
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    elementwise = F.binary_cross_entropy_with_logits(logits, target, weight=w.view(1, 4, 1, 1, 1), reduction="none")
    _close(L.cross_entropy(logits, labels, activation="sigmoid", class_weights=w, reduction="none"), elementwise)
    _close(L.cross_entropy(logits, labels, activation="sigmoid", class_weights=w),
           elementwise.sum() / (w.sum() * labels.numel()))


def test_cross_entropy_weight_map_and_probability_input_by_hand():
    # one sample, 2 classes, 2 pixels: p = (0.8, 0.2) and (0.4, 0.6); labels 0 and 1
    probs = torch.tensor([[[0.8, 0.4], [0.2, 0.6]]], dtype=torch.float64)
    labels = torch.tensor([[0, 1]])
    weight_map = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    expected = -(math.log(0.8) + 3 * math.log(0.6)) / 4
    got = L.cross_entropy(probs, labels, activation="none", weight_map=weight_map)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    logits = probs.log()  # softmax(log p) = p
    assert L.cross_entropy(logits, labels, weight_map=weight_map).item() == pytest.approx(expected, rel=1e-12)
    with_classes = L.cross_entropy(logits, labels, class_weights=[2.0, 0.5], weight_map=weight_map)
    assert with_classes.item() == pytest.approx(-(2 * math.log(0.8) + 1.5 * math.log(0.6)) / 3.5, rel=1e-12)


# ------------------------------------------------------------------------------ hand-computed values
def test_dice_loss_by_hand():
    # binary, one 4-pixel sample: p = (0.9, 0.6, 0.2, 0.1), y = (1, 1, 0, 0)
    p = torch.tensor([[[0.9, 0.6, 0.2, 0.1]]], dtype=torch.float64)
    y = torch.tensor([[1, 1, 0, 0]])
    dice = 2 * 1.5 / (1.8 + 2)
    got = L.dice_loss(p, y, activation="none", smooth_nr=0, smooth_dr=0)
    assert got.item() == pytest.approx(1 - dice, rel=1e-12)
    squared = 2 * 1.5 / (0.81 + 0.36 + 0.04 + 0.01 + 2)
    got = L.dice_loss(p, y, activation="none", squared=True, smooth_nr=0, smooth_dr=0)
    assert got.item() == pytest.approx(1 - squared, rel=1e-12)
    # the default smooth terms move it by less than 1e-5
    assert abs(L.dice_loss(p, y, activation="none").item() - (1 - dice)) < 1e-5


def _frame_toy():
    """A 3-frame sequence: frame 0 is ES, frame 1 background, frame 2 ED ([ES, ED, background] order)."""
    probs = torch.tensor([[[0.7, 0.1, 0.2],     # p(ES) per frame
                           [0.1, 0.2, 0.6],     # p(ED)
                           [0.2, 0.7, 0.2]]],   # p(background)
                         dtype=torch.float64)
    labels = torch.tensor([[0, 2, 1]])
    return probs, labels


def test_frame_weighted_cross_entropy_eq_7_1_by_hand():
    probs, labels = _frame_toy()
    expected = -(100 * math.log(0.7) + 1 * math.log(0.7) + 100 * math.log(0.6))  # = 87.1067…
    got = L.frame_weighted_cross_entropy(probs, labels, activation="none")
    assert got.item() == pytest.approx(expected, rel=1e-6)  # log of clipped probabilities: |Δ| ≲ 1e-7
    assert got.item() == pytest.approx(87.1067, abs=1e-4)
    # same from logits, from one-hot targets, and through the module
    logits = probs.log()
    assert L.frame_weighted_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    one_hot = _one_hot(labels, 3)
    assert L.FrameWeightedCrossEntropyLoss()(logits, one_hot).item() == pytest.approx(expected, rel=1e-12)
    # event_weight=1 gives the plain CE summed over frames
    plain = L.frame_weighted_cross_entropy(logits, labels, event_weight=1.0)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, labels, reduction="sum").item(), rel=1e-12)
    # a batch of two: mean over sequences; "none" gives one value per sequence
    batch = L.frame_weighted_cross_entropy(torch.cat([logits, logits.flip(-1)]), torch.cat([labels, labels.flip(-1)]),
                                           reduction="none")
    assert batch.shape == (2,)
    torch.testing.assert_close(batch, torch.full((2,), expected, dtype=torch.float64))


def test_weighted_dice_loss_eq_7_2_by_hand():
    probs, labels = _frame_toy()
    # per class: Σ y p and Σ (y + p) over the 3 frames
    dice_es = 2 * 0.7 / (1 + 1.0)
    dice_ed = 2 * 0.6 / (1 + 0.9)
    dice_bg = 2 * 0.7 / (1 + 1.1)
    expected = 1 - (0.45 * dice_es + 0.45 * dice_ed + 0.1 * dice_bg)  # = 0.33412…
    got = L.weighted_dice_loss(probs, labels, activation="none", smooth_nr=0, smooth_dr=0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert got.item() == pytest.approx(0.33412, abs=1e-5)
    assert L.WeightedDiceLoss(activation="none", smooth_nr=0, smooth_dr=0)(probs, labels).item() == pytest.approx(
        expected, rel=1e-12)
    # a perfect prediction gives 0 (the weights sum to 1)
    perfect = _one_hot(labels, 3)
    assert L.weighted_dice_loss(perfect, labels, activation="none").item() == pytest.approx(0.0, abs=1e-9)


def test_fixed_weight_generalized_dice_by_hand_and_how_it_differs_from_eq_7_2():
    # 4 classes (background, LV, myocardium, RV) over 8 pixels of one sample, probabilities given
    labels = torch.tensor([[0, 0, 0, 0, 1, 1, 2, 3]])
    probs = torch.full((1, 4, 8), 0.1, dtype=torch.float64)
    probs[0, :, :] = torch.tensor([[0.7, 0.7, 0.7, 0.7, 0.1, 0.1, 0.1, 0.1],
                                   [0.1, 0.1, 0.1, 0.1, 0.7, 0.7, 0.1, 0.1],
                                   [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1],
                                   [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.7]], dtype=torch.float64)
    w = L.SEGMENTATION_CLASS_WEIGHTS
    intersection = [4 * 0.7, 2 * 0.7, 0.7, 0.7]
    union = [4 + 3.2, 2 + 2.0, 1 + 1.4, 1 + 1.4]
    pooled = 1 - 2 * sum(wc * i for wc, i in zip(w, intersection)) / sum(wc * u for wc, u in zip(w, union))
    got = L.generalized_dice_loss(probs, labels, weights=w, activation="none", smooth_nr=0, smooth_dr=0)
    assert got.item() == pytest.approx(pooled, rel=1e-12)
    per_class = 1 - sum(wc * 2 * i / u for wc, i, u in zip(w, intersection, union))
    eq72 = L.weighted_dice_loss(probs, labels, w, activation="none", smooth_nr=0, smooth_dr=0)
    assert eq72.item() == pytest.approx(per_class, rel=1e-12)
    assert abs(pooled - per_class) > 0.01  # the two readings of "GDL with fixed weights" differ
    # equal weights for all classes = the "uniform" generalised Dice
    logits, lab = _data(seed=9)
    _close(L.generalized_dice_loss(logits, lab, weights=[1.0] * 4), L.generalized_dice_loss(logits, lab,
                                                                                            weights="uniform"))


def test_volume_regression_loss_eq_6_1_by_hand():
    volume_pred = torch.tensor([100.0, 150.0], dtype=torch.float64, requires_grad=True)
    volume_true = torch.tensor([110.0, 140.0], dtype=torch.float64)
    pi_pred = torch.tensor([[3.0], [3.5]], dtype=torch.float64)
    bottleneck = torch.tensor([[[-1.0, 2.0], [3.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    cam = torch.full((2, 1, 3, 4, 4), 0.5, dtype=torch.float64)
    mae_v = 10.0
    mae_pi = (abs(3.0 - math.pi) + abs(3.5 - math.pi)) / 2
    l1_bn = (6.0 + 4.0) / 2          # per-sample sums 6 and 4, averaged over the batch
    l1_cam = 0.5 * 48                # 48 voxels of 0.5 in each sample
    expected = mae_v + 100 * mae_pi + 1e-3 * (l1_bn + l1_cam)
    terms = L.volume_regression_loss(volume_pred, volume_true, pi_pred, bottleneck, cam, return_terms=True)
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-12)
    assert terms["mae_volume"].item() == pytest.approx(mae_v)
    assert terms["mae_pi"].item() == pytest.approx(mae_pi)
    assert terms["l1_bottleneck"].item() == pytest.approx(l1_bn)
    assert terms["l1_cam"].item() == pytest.approx(l1_cam)
    module = L.VolumeRegressionLoss()
    loss = module(volume_pred, volume_true, pi_pred, bottleneck, cam)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert module.last_terms["mae_pi"].item() == pytest.approx(mae_pi)
    loss.backward()
    torch.testing.assert_close(volume_pred.grad, torch.tensor([-0.5, 0.5], dtype=torch.float64))


# ------------------------------------------------------------------------------ identities
def test_identities_between_losses():
    logits, labels = _data(seed=10)
    # Tversky with α = β = 0.5 is Dice
    _close(L.tversky_loss(logits, labels), L.dice_loss(logits, labels))
    # focal with γ = 0 is cross-entropy (softmax) and BCE (sigmoid)
    _close(L.focal_loss(logits, labels, gamma=0.0), L.cross_entropy(logits, labels))
    _close(L.focal_loss(logits, labels, gamma=0.0, activation="sigmoid"),
           L.cross_entropy(logits, labels, activation="sigmoid"))
    # weighted Dice with weights 1/C is the mean per-class Dice loss
    _close(L.weighted_dice_loss(logits, labels, [0.25] * 4), L.dice_loss(logits, labels))
    # focal down-weights confident voxels: never above CE voxel by voxel
    focal = L.focal_loss(logits, labels, reduction="none")
    ce = L.cross_entropy(logits, labels, reduction="none")
    assert bool((focal <= ce + 1e-12).all()) and bool((focal < ce).any())


def test_perfect_predictions_give_zero_overlap_losses():
    _, labels = _data(seed=11)
    perfect = _one_hot(labels, 4)
    for fn in (L.dice_loss, L.generalized_dice_loss, L.tversky_loss, L.weighted_dice_loss):
        kwargs = {"class_weights": [0.25] * 4} if fn is L.weighted_dice_loss else {}
        assert fn(perfect, labels, activation="none", **kwargs).item() == pytest.approx(0.0, abs=1e-9), fn.__name__


def test_reductions_and_unreduced_shapes():
    logits, labels = _data(seed=12)
    cases = {
        "cross_entropy": (L.cross_entropy, {}, (2, 6, 5, 3)),
        "dice_loss": (L.dice_loss, {}, (2, 4)),
        "generalized_dice_loss": (L.generalized_dice_loss, {}, (2,)),
        "weighted_dice_loss": (L.weighted_dice_loss, {"class_weights": L.SEGMENTATION_CLASS_WEIGHTS}, (2,)),
        "tversky_loss": (L.tversky_loss, {}, (2, 4)),
        "focal_loss": (L.focal_loss, {}, (2, 6, 5, 3)),
        "focal_loss_sigmoid": (L.focal_loss, {"activation": "sigmoid"}, (2, 4, 6, 5, 3)),
    }
    for name, (fn, kw, shape) in cases.items():
        none = fn(logits, labels, reduction="none", **kw)
        assert none.shape == shape, name
        _close(fn(logits, labels, reduction="sum", **kw), none.sum())
        _close(fn(logits, labels, reduction="mean", **kw), none.mean())
    wce = L.frame_weighted_cross_entropy(logits[:, :3, :, 0, 0], labels[:, :, 0, 0] % 3, reduction="none")
    assert wce.shape == (2,)
    _close(L.frame_weighted_cross_entropy(logits[:, :3, :, 0, 0], labels[:, :, 0, 0] % 3, reduction="sum"), wce.sum())


def test_modules_equal_functions_and_weights_follow_the_module():
    logits, labels = _data(seed=13)
    pairs = [
        (L.CrossEntropyLoss(class_weights=[1, 2, 3, 4]), L.cross_entropy(logits, labels, class_weights=[1, 2, 3, 4])),
        (L.DiceLoss(include_background=False, squared=True), L.dice_loss(logits, labels, include_background=False,
                                                                         squared=True)),
        (L.GeneralizedDiceLoss(weights=L.SEGMENTATION_CLASS_WEIGHTS),
         L.generalized_dice_loss(logits, labels, weights=L.SEGMENTATION_CLASS_WEIGHTS)),
        (L.GeneralizedDiceLoss(weights="simple", batch=True), L.generalized_dice_loss(logits, labels, weights="simple",
                                                                                      batch=True)),
        (L.WeightedDiceLoss(L.SEGMENTATION_CLASS_WEIGHTS), L.weighted_dice_loss(logits, labels,
                                                                                L.SEGMENTATION_CLASS_WEIGHTS)),
        (L.TverskyLoss(alpha=0.3, beta=0.7), L.tversky_loss(logits, labels, alpha=0.3, beta=0.7)),
        (L.FocalLoss(alpha=[0.1, 0.2, 0.3, 0.4]), L.focal_loss(logits, labels, alpha=[0.1, 0.2, 0.3, 0.4])),
        (L.FocalLoss(alpha=0.25, activation="sigmoid"), L.focal_loss(logits, labels, alpha=0.25, activation="sigmoid")),
        (L.DiceCELoss(activation="sigmoid"), L.dice_ce_loss(logits, labels, activation="sigmoid")),
    ]
    for module, expected in pairs:
        _close(module(logits, labels), expected)
    module = L.GeneralizedDiceLoss(weights=torch.tensor(L.SEGMENTATION_CLASS_WEIGHTS, dtype=torch.float64))
    assert module.weights == (0.1, 0.3, 0.3, 0.3) and module.state_dict() == {}  # plain floats, nothing saved
    assert "weights=(0.1, 0.3, 0.3, 0.3)" in repr(module)
    # float32 input: weights made in float32 on the input's device
    expected = L.generalized_dice_loss(logits, labels, weights=L.SEGMENTATION_CLASS_WEIGHTS)
    _close(module(logits.float(), labels), expected, rtol=1e-5)


def test_half_precision_input_is_computed_in_float32():
    logits, labels = _data(seed=14)
    got = L.dice_loss(logits.half(), labels)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(L.dice_loss(logits, labels).item(), abs=2e-3)


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_sigmoid", "dice", "gdl", "gdl_fixed", "wdl",
                                  "tversky", "focal", "focal_gamma_below_1", "focal_sigmoid", "dice_ce", "bce_dice",
                                  "wce"])
def test_gradients_are_finite_even_for_saturated_logits(name):
    _, labels = _data((2, 3, 7, 4), seed=15)
    logits = (_one_hot(labels, 3) * 2 - 1) * 40.0  # confident, correct…
    logits[0, :, 0, 0] = torch.tensor([-40.0, 40.0, -40.0]) if labels[0, 0, 0] != 1 else torch.tensor([40.0, -40, -40])
    logits.requires_grad_(True)  # …except one confidently wrong pixel
    fns = {
        "cross_entropy": lambda x: L.cross_entropy(x, labels, class_weights=[0.2, 1, 1]),
        "cross_entropy_sigmoid": lambda x: L.cross_entropy(x, labels, activation="sigmoid"),
        "dice": lambda x: L.dice_loss(x, labels, include_background=False),
        "gdl": lambda x: L.generalized_dice_loss(x, labels),
        "gdl_fixed": lambda x: L.generalized_dice_loss(x, labels, weights=[0.1, 0.45, 0.45]),
        "wdl": lambda x: L.weighted_dice_loss(x, labels),
        "tversky": lambda x: L.tversky_loss(x, labels, alpha=0.3, beta=0.7),
        "focal": lambda x: L.focal_loss(x, labels),
        "focal_gamma_below_1": lambda x: L.focal_loss(x, labels, gamma=0.5),
        "focal_sigmoid": lambda x: L.focal_loss(x, labels, activation="sigmoid", alpha=0.25),
        "dice_ce": lambda x: L.dice_ce_loss(x, labels),
        "bce_dice": lambda x: L.dice_ce_loss(x, labels, activation="sigmoid"),
        "wce": lambda x: L.frame_weighted_cross_entropy(x.flatten(2), labels.flatten(1)),
    }
    loss = fns[name](logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_gradient_of_dice_loss_points_towards_the_target():
    logits, labels = _data((1, 2, 16, 16), seed=16)
    logits = logits.float().requires_grad_(True)
    before = L.dice_loss(logits, labels)
    before.backward()
    with torch.no_grad():
        after = L.dice_loss(logits - 1.0 * logits.grad / logits.grad.abs().max(), labels)
    assert after < before


# ------------------------------------------------------------------------------ bad input
_LOGITS, _LABELS = _data((2, 3, 5, 5), seed=17)
_NAN = _LOGITS.clone()
_NAN[0, 0, 0, 0] = float("nan")

# (what is wrong, the call, a piece of the message: it names the argument or the problem)
_BAD_CALLS = [
    ("shape mismatch", lambda: L.dice_loss(_LOGITS, _LABELS[:, :4]), "does not fit input shape"),
    ("one-hot of wrong width", lambda: L.dice_loss(_LOGITS, _one_hot(_LABELS, 3)[:, :2]), "does not fit"),
    ("label out of range", lambda: L.dice_loss(_LOGITS, _LABELS + 1), "labels must lie in 0..2"),
    ("negative label", lambda: L.cross_entropy(_LOGITS, _LABELS - 1), "labels must lie in 0..2"),
    ("NaN input", lambda: L.cross_entropy(_NAN, _LABELS), "input contains NaN"),
    ("inf input", lambda: L.tversky_loss(_LOGITS / 0.0, _LABELS), "input contains NaN or infinite"),
    ("NaN target", lambda: L.dice_loss(_LOGITS, _one_hot(_LABELS, 3) * float("nan")), "target contains NaN"),
    ("fractional label", lambda: L.dice_loss(_LOGITS, _LABELS.double() + 0.5), "whole numbers"),
    ("one-hot outside [0, 1]", lambda: L.dice_loss(_LOGITS, _one_hot(_LABELS, 3) * 2), r"must lie in \[0, 1\]"),
    ("probabilities outside [0, 1]", lambda: L.dice_loss(_LOGITS, _LABELS, activation="none"), "probabilities"),
    ("softmax of one channel", lambda: L.dice_loss(_LOGITS[:, :1], _LABELS.clamp(max=1)), "at least 2 channels"),
    ("no spatial axis", lambda: L.dice_loss(_LOGITS[:, :, 0, 0], _LABELS[:, 0, 0]), "spatial axis"),
    ("integer input", lambda: L.dice_loss(_LABELS[:, None].expand(-1, 3, -1, -1), _LABELS), "floating-point"),
    ("not a tensor", lambda: L.dice_loss(_LOGITS.numpy(), _LABELS), "torch.Tensor"),
    ("target on another device", lambda: L.dice_loss(_LOGITS, _LABELS.to("meta")), "one device"),
    ("unknown activation", lambda: L.dice_loss(_LOGITS, _LABELS, activation="tanh"), "activation"),
    ("unknown reduction", lambda: L.dice_loss(_LOGITS, _LABELS, reduction="avg"), "reduction"),
    ("negative smooth", lambda: L.dice_loss(_LOGITS, _LABELS, smooth_dr=-1.0), "smooth_dr"),
    ("background of one channel", lambda: L.dice_loss(_LOGITS[:, :1], _LABELS.clamp(max=1), activation="sigmoid",
                                                      include_background=False), "include_background"),
    ("wrong number of class weights", lambda: L.cross_entropy(_LOGITS, _LABELS, class_weights=[1.0, 2.0]),
     "class_weights"),
    ("negative class weight", lambda: L.weighted_dice_loss(_LOGITS, _LABELS, [0.5, -0.1, 0.6]), "class_weights"),
    ("unknown GDL weight type", lambda: L.generalized_dice_loss(_LOGITS, _LABELS, weights="squared"), "weights"),
    ("wrong number of GDL weights",
     lambda: L.generalized_dice_loss(_LOGITS, _LABELS, weights=L.SEGMENTATION_CLASS_WEIGHTS), "one weight per class"),
    ("weight map of wrong shape", lambda: L.cross_entropy(_LOGITS, _LABELS, weight_map=torch.ones(2, 5)),
     "weight_map"),
    ("negative weight map", lambda: L.cross_entropy(_LOGITS, _LABELS, weight_map=-torch.ones(2, 5, 5)), "weight_map"),
    ("scalar alpha with softmax focal", lambda: L.focal_loss(_LOGITS, _LABELS, alpha=0.25), "alpha"),
    ("alpha above 1", lambda: L.focal_loss(_LOGITS, _LABELS, alpha=1.5, activation="sigmoid"), "alpha"),
    ("negative gamma", lambda: L.focal_loss(_LOGITS, _LABELS, gamma=-1.0), "gamma"),
    ("sigmoid in frame WCE", lambda: L.frame_weighted_cross_entropy(_LOGITS, _LABELS, activation="sigmoid"),
     "activation"),
    ("background index out of range",
     lambda: L.frame_weighted_cross_entropy(_LOGITS, _LABELS, background_index=3), "background_index"),
    ("negative lambda", lambda: L.dice_ce_loss(_LOGITS, _LABELS, lambda_ce=-1.0), "lambda_ce"),
    ("DiceCE without reduction", lambda: L.dice_ce_loss(_LOGITS, _LABELS, reduction="none"), "reduction"),
    ("empty input", lambda: L.dice_loss(_LOGITS[:0], _LABELS[:0]), "empty"),
    ("module: bad weights", lambda: L.WeightedDiceLoss([0.5, float("nan"), 0.5]), "class_weights"),
    ("module: bad option", lambda: L.DiceLoss(batch="yes"), "batch"),
]


@pytest.mark.parametrize("what,call,match", _BAD_CALLS, ids=[c[0] for c in _BAD_CALLS])
def test_bad_input_raises_argument_error(what, call, match):
    with L.debug_checks(), pytest.raises(ArgumentError, match=match):  # value checks need debug mode
        call()


def test_bad_input_to_the_regression_loss():
    v = torch.tensor([100.0, 120.0])
    pi = torch.tensor([3.1, 3.2])
    bn, cam = torch.ones(2, 8, 11, 11, 4), torch.ones(2, 1, 88, 88, 4)
    with pytest.raises(ArgumentError, match="volume_true has 3 values"):
        L.volume_regression_loss(v, torch.ones(3), pi, bn, cam)
    with pytest.raises(ArgumentError, match="cam has batch size 1"):
        L.volume_regression_loss(v, v, pi, bn, cam[:1])
    with pytest.raises(ArgumentError, match="pi_pred must hold one value per sample"):
        L.volume_regression_loss(v, v, torch.ones(2, 2), bn, cam)
    with L.debug_checks(), pytest.raises(ArgumentError, match="NaN"):
        L.volume_regression_loss(v, v, pi * float("nan"), bn, cam)
    with L.debug_checks(), pytest.raises(ArgumentError, match=">= 0"):
        L.volume_regression_loss(v, -v, pi, bn, cam)
    with pytest.raises(ArgumentError):
        L.VolumeRegressionLoss(pi_weight=-1)


@pytest.mark.parametrize("module, function, tensors, call_only", [
    (L.CrossEntropyLoss, L.cross_entropy, 2, ("weight_map",)), (L.DiceLoss, L.dice_loss, 2, ()),
    (L.GeneralizedDiceLoss, L.generalized_dice_loss, 2, ()), (L.WeightedDiceLoss, L.weighted_dice_loss, 2, ()),
    (L.TverskyLoss, L.tversky_loss, 2, ()), (L.FocalLoss, L.focal_loss, 2, ()),
    (L.DiceCELoss, L.dice_ce_loss, 2, ()),
    (L.FrameWeightedCrossEntropyLoss, L.frame_weighted_cross_entropy, 2, ()),
    (L.VolumeRegressionLoss, L.volume_regression_loss, 5, ("return_terms",)),
])
def test_module_constructors_take_the_functions_options(module, function, tensors, call_only):
    import inspect
    options = [p for p in list(inspect.signature(function).parameters.values())[tensors:] if p.name not in call_only]
    params = list(inspect.signature(module).parameters.values())
    assert [(p.name, p.kind, p.default) for p in params] == [(p.name, p.kind, p.default) for p in options]
    built = module()
    assert all(getattr(built, p.name) == (tuple(p.default) if isinstance(p.default, list) else p.default)
               for p in options)
    with pytest.raises(TypeError, match="unexpected keyword"):
        module(no_such_option=1)


def test_module_options_are_checked_at_construction():
    assert L.WeightedDiceLoss([0.2, 0.8]).class_weights == (0.2, 0.8)  # positional, as in the function
    with pytest.raises(ArgumentError, match=r"class_weights\[1\]"):
        L.WeightedDiceLoss([0.5, -1.0])
    with pytest.raises(ArgumentError, match="reduction must be one of 'mean', 'sum', got 'none'"):
        L.DiceCELoss(reduction="none")
    with pytest.raises(ArgumentError, match="alpha must be one number"):
        L.FocalLoss(alpha=[0.5, 0.5], activation="sigmoid")
    with pytest.raises(ArgumentError, match="alpha must be a sequence"):
        L.FocalLoss(alpha=0.5)
    with pytest.raises(ArgumentError, match="background_index must be an integer >= 0"):
        L.FrameWeightedCrossEntropyLoss(background_index=-1)
    with pytest.raises(ArgumentError, match="pi_weight must be a finite number >= 0"):
        L.VolumeRegressionLoss(pi_weight=float("inf"))
    assert L.GeneralizedDiceLoss(weights="simple").weight_type == "simple"
    assert L.GeneralizedDiceLoss(weights=[1, 2]).weight_type == "fixed"
