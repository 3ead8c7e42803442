"""cmrlab.explain against captum and MONAI, the two libraries that implement the same methods.

Each method is run by cmrlab and by the peer on the same model, input and target, and the maps
must agree to float tolerance. The models are small (CPU, milliseconds) but have what the zoo's
networks have: convolutions, batch norm (eval mode), in-place ReLU modules, pooling, a dense
(segmentation) head and a 3D variant.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

captum_attr = pytest.importorskip("captum.attr")
monai_visualize = pytest.importorskip("monai.visualize")

from cmrlab.explain import (  # noqa: E402
    grad_cam,
    grad_cam_pp,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    normalise_map,
    occlusion,
    saliency,
    smoothgrad,
)


def _classifier(nd: int = 2, in_ch: int = 2, classes: int = 4) -> nn.Module:
    conv, bn, pool = (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d) if nd == 2 else \
        (nn.Conv3d, nn.BatchNorm3d, nn.AdaptiveAvgPool3d)
    torch.manual_seed(0)
    model = nn.Sequential(
        conv(in_ch, 6, 3, padding=1), bn(6), nn.ReLU(inplace=True),
        conv(6, 8, 3, padding=1, stride=2), bn(8), nn.ReLU(inplace=True),
        conv(8, 8, 3, padding=1), nn.ReLU(),
        pool(1), nn.Flatten(), nn.Linear(8, classes))
    for m in model.modules():            # non-trivial running statistics for eval mode
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _segmenter(classes: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU(inplace=True),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(8, classes, 1)).eval()


@pytest.fixture
def x2d():
    return torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(2))


TARGET = [1, 3, 0]


def test_saliency_and_gradient_x_input_match_captum(x2d):
    model = _classifier()
    ours = saliency(model, x2d, TARGET)
    peer = captum_attr.Saliency(model).attribute(x2d, target=TARGET, abs=True)
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)
    ours = gradient_x_input(model, x2d, TARGET)
    peer = captum_attr.InputXGradient(model).attribute(x2d, target=TARGET)
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_match_captum_and_are_complete(x2d):
    model = _classifier()
    ours, delta = integrated_gradients(model, x2d, TARGET, steps=32, baseline=0.0, return_delta=True)
    peer = captum_attr.IntegratedGradients(model).attribute(x2d, target=TARGET, n_steps=32,
                                                            method="riemann_middle", baselines=0.0)
    torch.testing.assert_close(ours, peer, rtol=1e-4, atol=1e-6)
    # completeness: the attributions add up to S(x) - S(0), up to the quadrature error
    scores = model(x2d)[torch.arange(3), torch.tensor(TARGET)]
    assert delta.abs().max() < 0.02 * scores.abs().max() + 1e-3
    chunked = integrated_gradients(model, x2d, TARGET, steps=32, batch_size=7)
    torch.testing.assert_close(chunked, ours, rtol=1e-5, atol=1e-6)


def test_smoothgrad_matches_captum_noise_tunnel_with_the_same_noise(x2d):
    model = _classifier()
    torch.manual_seed(5)
    peer = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        x2d, nt_type="smoothgrad", nt_samples=8, stdevs=0.2, target=TARGET, abs=False)
    torch.manual_seed(5)
    ours = smoothgrad(model, x2d, TARGET, n_samples=8, stdev=0.2)
    torch.testing.assert_close(ours, peer, rtol=1e-4, atol=1e-6)
    # batches of noisy copies and a private generator give the same kind of map, reproducibly
    a = smoothgrad(model, x2d, TARGET, n_samples=8, stdev=0.2, batch_size=5, generator=torch.Generator().manual_seed(3))
    b = smoothgrad(model, x2d, TARGET, n_samples=8, stdev=0.2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # no noise: the plain gradient
    torch.testing.assert_close(smoothgrad(model, x2d, TARGET, n_samples=3, stdev=0.0),
                               saliency(model, x2d, TARGET, absolute=False), rtol=1e-5, atol=1e-7)


def test_guided_backprop_matches_captum(x2d):
    model = _classifier()
    ours = guided_backprop(model, x2d, TARGET)
    peer = captum_attr.GuidedBackprop(model).attribute(x2d, target=TARGET)
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(ours, saliency(model, x2d, TARGET, absolute=False))


@pytest.mark.parametrize("nd", [2, 3])
def test_grad_cam_matches_captum_layer_grad_cam_and_monai(nd):
    model = _classifier(nd)
    shape = (2, 2, 16, 16) if nd == 2 else (2, 2, 8, 12, 12)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    layer = model[5]                                    # the second ReLU: (N, 8, *s/2)
    raw = grad_cam(model, x, [2, 1], layer=layer, upsample=False)
    peer = captum_attr.LayerGradCam(model, layer).attribute(x, target=[2, 1], relu_attributions=True)
    torch.testing.assert_close(raw, peer, rtol=1e-5, atol=1e-7)
    for c in (0, 3):
        ours = grad_cam(model, x, c, layer="5", normalise=True)
        monai = monai_visualize.GradCAM(nn_module=model, target_layers="5")(x, class_idx=c)
        torch.testing.assert_close(ours, 1.0 - monai, rtol=1e-4, atol=1e-5)   # MONAI maps max to 0
        # MONAI's Grad-CAM++ broadcasts its (N,) score over the last axis: one sample at a time
        ours_pp = grad_cam_pp(model, x[:1], c, layer="5", normalise=True, eps=1e-7)   # MONAI's epsilon
        monai_pp = monai_visualize.GradCAMpp(nn_module=model, target_layers="5")(x[:1], class_idx=c)
        torch.testing.assert_close(ours_pp, 1.0 - monai_pp, rtol=1e-4, atol=1e-5)
    # without the epsilon (the paper's formula) the map differs visibly on these small gradients
    paper = grad_cam_pp(model, x[:1], 0, layer="5", normalise=True)
    assert (paper - grad_cam_pp(model, x[:1], 0, layer="5", normalise=True, eps=1e-7)).abs().max() > 1e-3


def test_grad_cam_of_a_segmentation_region_matches_captum_on_a_wrapped_score():
    model = _segmenter()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(6))
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[4:10, 3:12] = True

    def region_score(inp):
        return (model(inp)[:, 2] * region).sum((1, 2))

    layer = model[3]
    ours = grad_cam(model, x, 2, layer=layer, region=region, upsample=False)
    peer = captum_attr.LayerGradCam(region_score, layer).attribute(x, relu_attributions=True)
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)
    ours = saliency(model, x, 2, region=region)
    peer = captum_attr.Saliency(region_score).attribute(x)
    torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-7)
    # the whole image as the region is MONAI's reduction of a dense output
    for c in (0, 2):                      # (class 1's map is flat zero here: both give a constant)
        whole = grad_cam(model, x, c, layer="3", normalise=True)
        assert float(whole.amax()) == 1.0
        monai = monai_visualize.GradCAM(nn_module=model, target_layers="3")(x, class_idx=c)
        torch.testing.assert_close(whole, 1.0 - monai, rtol=1e-4, atol=1e-5)


def test_occlusion_matches_captum_and_monai(x2d):
    model = _classifier()
    ours = occlusion(model, x2d, TARGET, window=5, stride=3, baseline=0.0, batch_size=7)
    peer = captum_attr.Occlusion(model).attribute(x2d, sliding_window_shapes=(2, 5, 5), strides=(1, 3, 3),
                                                  baselines=0.0, target=TARGET)
    torch.testing.assert_close(ours, peer, rtol=1e-4, atol=1e-6)
    # MONAI: occluded outputs averaged over the covering windows (stride 1) = S(x) - our map
    one = x2d[:1]
    ours = occlusion(model, one, 2, window=5, stride=1, baseline=0.25)
    occ, _ = monai_visualize.OcclusionSensitivity(model, mask_size=5, n_batch=64, mode=0.25, overlap=0.9,
                                                  activate=False, verbose=False)(one)
    s0 = model(one)[0, 2]
    assert occ.shape == (1, 4, 16, 16)                  # (N, classes, H, W)
    torch.testing.assert_close(ours[0, 0], s0 - occ[0, 2], rtol=1e-4, atol=1e-5)


def test_normalise_map_is_min_max_per_sample_and_zero_when_flat():
    cam = torch.stack([torch.arange(6.0).view(1, 2, 3), torch.full((1, 2, 3), 4.0)])
    out = normalise_map(cam)
    torch.testing.assert_close(out[0], torch.arange(6.0).view(1, 2, 3) / 5)
    assert torch.equal(out[1], torch.zeros(1, 2, 3))
