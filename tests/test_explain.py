"""cmrlab.explain: scores against masks by hand, bad input, every zoo model, and the sanity checks.

The agreement with captum and MONAI is in test_explain_oracles.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.explain import (
    FeatureRecorder,
    explained_score,
    feature_maps,
    grad_cam,
    grad_cam_pp,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    layer_names,
    occlusion,
    saliency,
    smoothgrad,
)
from cmrlab.explain.scores import (
    cascade_layers,
    curve_auc,
    deletion_curve,
    energy_in_mask,
    insertion_curve,
    map_dice,
    pointing_game,
    randomise_weights,
    rank_correlation,
)
from cmrlab.nn.registry import MODELS, build_model


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


# ------------------------------------------------------------------------------------------------
# What is explained
# ------------------------------------------------------------------------------------------------
def test_explained_score_for_each_kind_of_output():
    logits = torch.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    assert explained_score(logits, 1).tolist() == [5.0, 0.0]
    assert explained_score(logits, [2, 0]).tolist() == [2.0, 3.0]
    assert explained_score(logits).tolist() == [5.0, 4.0]                     # most probable class
    dense = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    region = torch.tensor([[True, False], [False, True]])
    assert explained_score(dense, 2, region).tolist() == [8.0 + 11.0, 20.0 + 23.0]
    assert explained_score(dense, 0).tolist() == [0 + 1 + 2 + 3.0, 12 + 13 + 14 + 15.0]
    assert explained_score(torch.tensor([[2.5], [1.0]])).tolist() == [2.5, 1.0]   # a regressor
    out = {"volume": torch.tensor([120.0, 80.0])}
    assert explained_score(out, lambda o: o["volume"]).tolist() == [120.0, 80.0]


@pytest.mark.parametrize("output, target, region, message", [
    (torch.zeros(2, 3), 3, None, "0..2"),
    (torch.zeros(2, 3), -1, None, "0..2"),
    (torch.zeros(2, 3), [0, 1, 2], None, "one per sample"),
    (torch.zeros(2, 3), 1.5, None, "class number"),
    (torch.zeros(2, 3), True, None, "class number"),
    (torch.zeros(2, 3), 0, torch.ones(2), "segmentation output"),
    (torch.zeros(2, 3, 4, 4), 1, torch.ones(3, 3), "spatial shape"),
    (torch.zeros(2, 3, 4, 4), 1, torch.full((4, 4), float("nan")), "NaN"),
    (torch.zeros(2), 1, None, "regressor"),
    ((torch.zeros(2), torch.zeros(2)), None, None, "function that picks"),
    (torch.zeros(2, 3), lambda o: o, None, r"tensor \(N,\)"),
])
def test_explained_score_refuses_what_it_cannot_explain(output, target, region, message):
    with pytest.raises(ArgumentError, match=message):
        explained_score(output, target, region)


@pytest.mark.parametrize("method", [saliency, gradient_x_input, smoothgrad, integrated_gradients, guided_backprop])
@pytest.mark.parametrize("x, message", [
    ("image", "torch.Tensor"), (torch.zeros(4, 4), "batch"), (torch.zeros(1, 1, 4, 4, dtype=torch.long), "floating"),
    (torch.full((1, 1, 4, 4), float("nan")), "NaN"), (torch.full((1, 1, 4, 4), float("inf")), "NaN or infinite"),
])
def test_gradient_methods_refuse_bad_inputs(method, x, message):
    with pytest.raises(ArgumentError, match=message):
        method(_tiny_cnn(), x, 0)


def test_bad_options_are_named():
    model, x = _tiny_cnn(), torch.randn(1, 1, 8, 8)
    for call, name in [(lambda: smoothgrad(model, x, 0, n_samples=0), "n_samples"),
                       (lambda: smoothgrad(model, x, 0, stdev=-1), "stdev"),
                       (lambda: smoothgrad(model, x, 0, stdev=float("nan")), "stdev"),
                       (lambda: integrated_gradients(model, x, 0, steps=0), "steps"),
                       (lambda: integrated_gradients(model, x, 0, baseline=torch.zeros(3)), "baseline"),
                       (lambda: saliency(model, x, 0, absolute="yes"), "absolute"),
                       (lambda: grad_cam(model, x, 0, layer="nope"), "no layer 'nope'"),
                       (lambda: grad_cam(model, x, 0, layer="5"), "feature maps"),
                       (lambda: grad_cam_pp(model, x, 0, layer="2", eps=-1.0), "eps"),
                       (lambda: occlusion(model, x, 0, window=9), "larger than the image"),
                       (lambda: occlusion(model, x, 0, window=2, stride=3), "stride"),
                       (lambda: occlusion(model, x, 0, window=(2, 2, 2)), "window"),
                       (lambda: saliency("model", x, 0), "nn.Module")]:
        with pytest.raises(ArgumentError, match=name):
            call()
    no_relu = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.LazyLinear(2))
    no_relu(x)
    with pytest.raises(ArgumentError, match="nn.ReLU"):
        guided_backprop(no_relu, x, 0)


def test_methods_leave_the_model_and_its_training_flag_as_they_were():
    model = _tiny_cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 8, 8)
    for run in (lambda: saliency(model, x, 1), lambda: guided_backprop(model, x, 1),
                lambda: grad_cam(model, x, 1, layer="2"), lambda: occlusion(model, x, 1, window=4, stride=4),
                lambda: feature_maps(model, x, ["0"])):
        run()
        assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not m._forward_hooks for m in model.modules())          # every hook removed
    assert x.grad is None and not x.requires_grad


def test_feature_maps_and_layer_names():
    model, x = _tiny_cnn(), torch.randn(2, 1, 8, 8)
    assert layer_names(model, nn.Conv2d) == ["0", "2"]
    maps = feature_maps(model, x, ["1", model[3]])
    assert set(maps) == {"1", "3"} and maps["1"].shape == (2, 4, 8, 8)
    assert bool((maps["1"] >= 0).all()) and not maps["1"].requires_grad
    torch.testing.assert_close(maps["1"], torch.relu(model[0](x)))
    with pytest.raises(ArgumentError, match="no layer '7'"):
        feature_maps(model, x, ["7"])
    with pytest.raises(ArgumentError, match="not a sub-module"):
        FeatureRecorder(model, [nn.ReLU()])
    with pytest.raises(ArgumentError, match="at least one layer"):
        FeatureRecorder(model, [])


def test_integrated_gradients_are_exact_for_a_linear_model():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    x = torch.randn(3, 2, 2, 2)
    attr, delta = integrated_gradients(lin, x, 1, steps=1, return_delta=True)
    torch.testing.assert_close(attr, (x * lin[1].weight[1].view(2, 2, 2)))
    assert delta.abs().max() < 1e-5


def test_occlusion_by_hand():
    # the score is the sum of the top-left 2x2 block: hiding a window lowers it by what it covers there
    class TopLeft(nn.Module):
        def forward(self, x):
            return x[:, :, :2, :2].sum((1, 2, 3)).unsqueeze(1)

    x = torch.ones(1, 1, 4, 4)
    occ = occlusion(TopLeft(), x, None, window=2, stride=2)
    assert occ[0, 0].tolist() == [[4.0, 4.0, 0.0, 0.0], [4.0, 4.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4]


# ------------------------------------------------------------------------------------------------
# Scores against masks
# ------------------------------------------------------------------------------------------------
def test_energy_pointing_and_dice_by_hand():
    maps = torch.tensor([[[0.0, 1.0], [3.0, -2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True], [False, False]])
    energy = energy_in_mask(maps, mask)
    assert energy[0].item() == pytest.approx(1.0 / 4.0) and math.isnan(energy[1].item())
    assert pointing_game(maps[:1], mask).tolist() == [0.0]                    # max 3.0 at (1, 0)
    assert pointing_game(maps[:1], mask, tolerance=1).tolist() == [1.0]
    assert pointing_game(maps[:1], torch.zeros(2, 2)).isnan().all()
    # (N, 1, *s) maps with per-sample masks work the same
    assert energy_in_mask(maps[:1, None], mask[None]).tolist() == pytest.approx([0.25])
    cam = torch.zeros(1, 6, 6)
    cam[0, 1:3, 1:3] = 0.95          # a 2x2 object ...
    cam[0, 5, 5] = 0.99              # ... and a stray voxel
    truth = torch.zeros(6, 6, dtype=torch.bool)
    truth[1:3, 1:4] = True
    assert map_dice(cam, truth).item() == pytest.approx(2 * 4 / (4 + 6))
    assert map_dice(cam, truth, largest_component=False).item() == pytest.approx(2 * 4 / (5 + 6))
    assert map_dice(cam, truth, dilation=(1, 3)).item() == pytest.approx(2 * 6 / (8 + 6))   # one column each side
    assert map_dice(torch.zeros(1, 3, 3), torch.zeros(3, 3)).item() == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: energy_in_mask(torch.ones(1, 2, 2), torch.ones(3, 3)), "does not fit"),
    (lambda: energy_in_mask(torch.ones(1, 2, 2), torch.full((2, 2), 2.0)), "only 0 and 1"),
    (lambda: energy_in_mask(torch.full((1, 2, 2), float("nan")), torch.ones(2, 2)), "NaN"),
    (lambda: energy_in_mask(torch.ones(4), torch.ones(4)), "batch"),
    (lambda: map_dice(torch.ones(1, 2, 2), torch.ones(2, 2), dilation=(3,)), "one size per spatial axis"),
    (lambda: pointing_game(torch.ones(1, 2, 2), torch.ones(2, 2), tolerance=-1), "tolerance"),
    (lambda: rank_correlation(torch.ones(1, 4), torch.ones(1, 5)), "same shape"),
    (lambda: curve_auc([0.0, 0.5], [1.0, 2.0, 3.0]), "one value per fraction"),
    (lambda: curve_auc([0.5, 0.0], [1.0, 2.0]), "increase"),
])
def test_scores_refuse_bad_input(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


def test_rank_correlation_is_spearman():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 50)), rng.normal(size=(3, 50))
    b[1] = a[1] * 3 + 0.1 * b[1]
    a[2, :10] = 1.0                                              # ties
    ours = rank_correlation(torch.tensor(a), torch.tensor(b), absolute=False)
    for i in range(3):
        assert ours[i].item() == pytest.approx(scipy_stats.spearmanr(a[i], b[i]).statistic, abs=1e-6)
    assert rank_correlation(torch.ones(1, 5), torch.arange(5.0)[None]).isnan().all()


def test_deletion_and_insertion_curves_by_hand():
    class Sum(nn.Module):                                  # the score is the sum of the image
        def forward(self, x):
            return x.sum((1, 2, 3))

    x = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]])
    fractions, deleted = deletion_curve(Sum(), x, x, None, steps=4)
    assert fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert deleted[0].tolist() == [10.0, 6.0, 3.0, 1.0, 0.0]          # the largest voxels go first
    _, inserted = insertion_curve(Sum(), x, x, None, steps=4)
    assert inserted[0].tolist() == [0.0, 4.0, 7.0, 9.0, 10.0]
    assert curve_auc(fractions, deleted).item() == pytest.approx(0.25 * (5 + 6 + 3 + 1 + 0))
    assert curve_auc(fractions, inserted).item() > curve_auc(fractions, deleted).item()
    _, reverse = deletion_curve(Sum(), x, -x, None, steps=4)           # the worst map deletes small voxels first
    assert curve_auc(fractions, reverse).item() > curve_auc(fractions, deleted).item()


def test_randomise_weights_copies_and_cascades():
    model = _tiny_cnn()
    assert cascade_layers(model) == ["6", "2", "0"]
    top = randomise_weights(model, ["6"], seed=1)
    assert not torch.equal(top[6].weight, model[6].weight) and torch.equal(top[0].weight, model[0].weight)
    again = randomise_weights(model, ["6"], seed=1)
    assert torch.equal(again[6].weight, top[6].weight)                       # seeded
    state = torch.random.get_rng_state()
    randomise_weights(model, seed=2)
    assert torch.equal(state, torch.random.get_rng_state())                  # global RNG untouched
    with pytest.raises(ArgumentError, match="no weights"):
        randomise_weights(model, ["1"])


# ------------------------------------------------------------------------------------------------
# Every network of the zoo
# ------------------------------------------------------------------------------------------------
#: A small input per zoo model (the registry's shapes scaled down) and the keyword arguments
#: that the smaller input needs beyond the fast width.
_ZOO = {
    "cardiac_unet3d": ((1, 1, 3, 32, 32), {}), "pspunet": ((1, 1, 3, 64, 64), {}),
    "regression_unet": ((1, 1, 2, 32, 32), {}), "frame_detector": ((1, 1, 4, 32, 32), {"image_size": 32}),
    "explainable_fcn": ((1, 1, 64, 64), {}), "unet2d": ((1, 1, 188, 188), {}), "enet": ((1, 1, 64, 64), {}),
    "vnet": ((1, 1, 16, 16, 16), {}), "vnet_light": ((1, 1, 16, 16, 16), {}), "unet3d": ((1, 1, 16, 16, 16), {}),
    "densenet3d_single_path": ((1, 1, 12, 12, 12), {}),
    "densenet3d_two_stream_late_fusion": ((1, 2, 12, 12, 12), {}),
    "densenet3d_two_stream_early_fusion": ((1, 2, 12, 12, 12), {}),
    "densenet3d_three_stream_early_fusion": ((1, 3, 12, 12, 12), {}),
}


def test_the_zoo_list_is_complete():
    assert set(_ZOO) == set(MODELS)


@pytest.mark.parametrize("name", sorted(_ZOO))
def test_every_zoo_model_can_be_explained(name):
    shape, extra = _ZOO[name]
    torch.manual_seed(0)
    model = build_model(name, **{**MODELS[name].fast, **extra})
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.eval()(x)
    if not isinstance(out, torch.Tensor):
        target = lambda o: o.volume if hasattr(o, "volume") else o[0].reshape(o[0].shape[0], -1).sum(1)  # noqa: E731
    else:
        target = 1 if out.ndim > 1 and out.shape[1] > 1 else None
    sal = saliency(model, x, target)
    assert sal.shape == x.shape and bool(torch.isfinite(sal).all()) and float(sal.abs().sum()) > 0
    convs = layer_names(model, (nn.Conv2d, nn.Conv3d))
    cam = grad_cam(model, x, target, layer=convs[len(convs) // 2])
    assert cam.shape == (1, 1, *x.shape[2:]) and bool(torch.isfinite(cam).all())


# ------------------------------------------------------------------------------------------------
# Sanity checks (Adebayo et al. 2018) on a trained classifier
# ------------------------------------------------------------------------------------------------
def _disk_data(n, generator):
    """Two classes: a bright disk in the upper-left (1) or the lower-right (0) quarter, with noise."""
    y = torch.randint(0, 2, (n,), generator=generator)
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    centre = torch.where(y == 1, 7.0, 16.0)
    cy = centre + torch.randint(-2, 3, (n,), generator=generator)
    cx = centre + torch.randint(-2, 3, (n,), generator=generator)
    disk = ((yy - cy.view(-1, 1, 1)) ** 2 + (xx - cx.view(-1, 1, 1)) ** 2 < 16).float()
    return 0.3 * torch.randn(n, 1, 24, 24, generator=generator) + disk[:, None], y


def _vgg_like():
    layers, c = [], 1
    for i, w in enumerate((16, 16, 32, 32, 64, 64)):
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
        c = w
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c, 2))


def _train(x, y, steps=200, seed=0):
    torch.manual_seed(seed)
    model = _vgg_like()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, len(y), (32,), generator=g)
        loss = nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def sanity():
    g = torch.Generator().manual_seed(1)
    x_train, y_train = _disk_data(256, g)
    x_test, y_test = _disk_data(16, g)
    with torch.random.fork_rng():
        trained = _train(x_train, y_train)
        shuffled = y_train[torch.randperm(256, generator=torch.Generator().manual_seed(9))]
        label_random = _train(x_train, shuffled, seed=1)       # trained from scratch, as in the paper
    return x_test, y_test, trained, randomise_weights(trained, seed=3), label_random


@pytest.mark.slow
def test_sanity_checks_pass_for_gradients_and_fail_for_guided_backprop(sanity):
    x, y, trained, model_random, label_random = sanity
    assert (trained(x).argmax(1) == y).float().mean() == 1.0                 # the model learned the task
    methods = {
        "saliency": lambda m: saliency(m, x, y),
        "smoothgrad": lambda m: smoothgrad(m, x, y, n_samples=16, stdev=0.15, generator=torch.Generator().manual_seed(0)),
        "guided backprop": lambda m: guided_backprop(m, x, y),
    }
    rho, like_input = {}, {}
    for name, method in methods.items():
        ours = method(trained)
        rho[name, "model"] = float(rank_correlation(ours, method(model_random)).nanmean())
        rho[name, "labels"] = float(rank_correlation(ours, method(label_random)).nanmean())
        like_input[name] = float(rank_correlation(method(model_random), x).nanmean())
    print({k: round(v, 2) for k, v in rho.items()}, {k: round(v, 2) for k, v in like_input.items()})
    for name in ("saliency", "smoothgrad"):           # the maps follow the weights and the labels learned
        assert rho[name, "model"] < 0.35 and rho[name, "labels"] < 0.4, (name, rho)
    # guided backprop of a network with random weights still draws the image: it fails the check
    assert like_input["guided backprop"] > 0.4 > max(like_input["saliency"], like_input["smoothgrad"]), like_input
    for test in ("model", "labels"):
        assert rho["guided backprop", test] > max(rho["saliency", test], rho["smoothgrad", test]), rho


# ------------------------------------------------------------------------------------------------
# The viewer
# ------------------------------------------------------------------------------------------------
def test_explain_viewer_draws_methods_regions_and_slices(monkeypatch):
    from cmrlab.explain.viewer import explain_viewer
    from cmrlab.viz.explorer import Explorer

    rng = np.random.default_rng(0)
    image = rng.normal(size=(24, 20, 3))
    mask = np.zeros((24, 20, 3), bool)
    mask[5:12, 6:14] = True
    maps = {"LV": {"Grad-CAM": rng.random((24, 20, 3)), "saliency": rng.normal(size=(24, 20, 3))},
            "RV": {"Grad-CAM": torch.rand(1, 1, 24, 20, 3)}}
    viewer = explain_viewer(image, maps, mask={"LV": mask})
    assert isinstance(viewer, Explorer) and set(viewer.controls) == {"method", "region", "slice_", "alpha"}
    for method in ("Grad-CAM", "saliency"):
        for region in ("LV", "RV"):
            png = viewer.png(method=method, region=region, slice_=2)
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setenv("CMRLAB_STATIC", "1")
    html = viewer.to_html()
    assert html.count("data:image/png") >= 2                         # one frame per method
    flat = explain_viewer(image[:, :, 0], {"occlusion": image[:, :, 0] ** 2}, mask=mask[:, :, 0])
    assert set(flat.controls) == {"method", "alpha"}
    assert flat.png()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kwargs, message", [
    (dict(maps={}), "non-empty"),
    (dict(maps={"a": np.zeros((3, 3))}), "has shape"),
    (dict(maps={"a": np.full((8, 8), np.nan)}), "NaN"),
    (dict(maps={"a": np.zeros((8, 8))}, mask=np.zeros((4, 4))), "mask has shape"),
    (dict(maps={"LV": {"a": np.zeros((8, 8))}}, mask={"RV": np.zeros((8, 8))}), "region 'RV'"),
    (dict(maps={"a": np.zeros((8, 8))}, opacity=2.0), "opacity"),
    (dict(maps={"a": "map"}), "numbers"),
])
def test_explain_viewer_refuses_bad_input(kwargs, message):
    from cmrlab.explain.viewer import explain_viewer

    with pytest.raises(ArgumentError, match=message):
        explain_viewer(np.zeros((8, 8)), **kwargs)


def test_recorded_maps_survive_in_place_operations_after_the_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 1, 10, 10)
    conv = feature_maps(net, x, ["0"])["0"]
    torch.testing.assert_close(conv, net[0](x))                      # pre-ReLU, negatives kept
    assert bool((conv < 0).any())
    # Grad-CAM of the convolution uses its own (pre-ReLU) activations, and the output is unchanged
    with torch.no_grad():
        plain = net(x)
    from cmrlab.explain.features import FeatureRecorder as Recorder
    with Recorder(net, ["0"]), torch.no_grad():
        torch.testing.assert_close(net(x), plain)
    acts = net[0](x).detach()
    xg = x.clone().requires_grad_(True)
    a = net[0](xg)
    (g,) = torch.autograd.grad(net[2:](torch.relu(a))[:, 1].sum(), a)
    expected = torch.relu((g.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    torch.testing.assert_close(grad_cam(net, x, 1, layer="0", upsample=False), expected)


def test_target_none_means_the_inputs_own_class_for_every_perturbed_copy():
    # a classifier whose bias makes class 0 win on an empty image while the inputs are class 2 or 1:
    # the baseline, noisy, occluded and deleted copies must still be scored on the input's class
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, :2] = 3.0
    x[1, 0, 2:] = 3.0
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[2, :8] = 1.0
        model[1].weight[1, 8:] = 1.0
        own = model(x).argmax(1)
        assert own.tolist() == [2, 1] and model(torch.zeros_like(x)).argmax(1).tolist() == [0, 0]
    torch.testing.assert_close(integrated_gradients(model, x, None, steps=8),
                               integrated_gradients(model, x, own, steps=8))
    torch.testing.assert_close(occlusion(model, x, None, window=2, stride=2), occlusion(model, x, own, window=2, stride=2))
    torch.testing.assert_close(smoothgrad(model, x, None, n_samples=4, stdev=3.0, generator=torch.Generator().manual_seed(1)),
                               smoothgrad(model, x, own, n_samples=4, stdev=3.0, generator=torch.Generator().manual_seed(1)))
    _, scores_none = deletion_curve(model, x, x, None, steps=2)
    _, scores_own = deletion_curve(model, x, x, own, steps=2)
    torch.testing.assert_close(scores_none, scores_own)


def test_a_shared_region_is_not_mistaken_for_per_sample_regions():
    # two samples and a region whose first axis also has length 2: it is one (H, W) region for both
    model = nn.Sequential(nn.Conv2d(1, 3, 1))
    x = torch.randn(2, 1, 2, 5)
    region = torch.zeros(2, 5, dtype=torch.bool)
    region[0, 1:3] = True
    whole = integrated_gradients(model, x, 1, region=region, steps=4)
    one_by_one = torch.cat([integrated_gradients(model, x[i:i + 1], 1, region=region, steps=4) for i in range(2)])
    torch.testing.assert_close(whole, one_by_one)
    per_sample = torch.stack([region, ~region])
    both = occlusion(model, x, 1, region=per_sample, window=1)
    torch.testing.assert_close(both[1:], occlusion(model, x[1:], 1, region=~region, window=1))
