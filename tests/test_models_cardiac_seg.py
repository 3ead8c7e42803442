"""Tests of the cardiac segmentation models (3D U-Net, PSPU-net) and the shared blocks.

Full-width models are only built on the meta device (counts and shapes, no memory); forward and
backward passes run at small width on small inputs.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.blocks import ConvBNAct, DoubleConv, PyramidPooling, UpConv, make_activation
from cmrlab.nn.models.pspunet import THESIS_PARAMETERS as PSP_THESIS
from cmrlab.nn.models.pspunet import PSPSkip, PSPUNet
from cmrlab.nn.models.unet3d_cardiac import THESIS_PARAMETERS as UNET_THESIS
from cmrlab.nn.models.unet3d_cardiac import CardiacUNet3D
from cmrlab.nn.receptive_field import count_parameters


def cba(c_in: int, c_out: int, k: int = 9) -> int:
    """Conv (k weights per pair, bias) + BN (γ, β), counted by hand."""
    return k * c_in * c_out + c_out + 2 * c_out


def textbook_unet(widths: list[int], k: int, in_channels: int = 1, classes: int = 4) -> int:
    """Two conv+BN per level, 2×2(×1) transposed convs with bias, concat skips, 1×1 head."""
    total, c = 0, in_channels
    for w in widths:
        total += cba(c, w, k) + cba(w, w, k)
        c = w
    for w in reversed(widths[:-1]):
        total += 4 * c * w + w + cba(2 * w, w, k) + cba(w, w, k)
        c = w
    return total + c * classes + classes


@pytest.fixture(scope="module")
def full_width():
    with torch.device("meta"):
        return CardiacUNet3D(), PSPUNet()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_input(n: int = 2, d: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.randn(n, 1, d, h, w)


# ------------------------------------------------------------------------ parameter counts

def test_cardiac_unet3d_parameter_count_matches_textbook_build_and_thesis(full_width):
    unet, _ = full_width
    n = count_parameters(unet)
    assert n == 87_519_364
    assert n == textbook_unet([64, 128, 256, 512, 1024], 27)
    assert abs(n - UNET_THESIS) / UNET_THESIS < 1e-3  # thesis: "87.51 million"
    assert int(n / 1e4) / 100 == 87.51  # the thesis's number is ours cut to two decimals
    # BN running statistics are buffers, not parameters: Keras's total would add them.
    stats = sum(b.numel() for name, b in unet.named_buffers() if "running" in name)
    assert stats == 11_776 and n + stats == 87_531_140


def test_pspunet_parameter_count_within_two_percent_of_thesis(full_width):
    _, psp = full_width
    n = count_parameters(psp)
    assert n == 30_837_732
    assert abs(n - PSP_THESIS) / PSP_THESIS < 0.02
    assert int(n / 1e4) / 100 == 30.83
    # Decomposition by hand: bare 32→512 U-Net + PSP modules + wider decoder inputs.
    bare = textbook_unet([32, 64, 128, 256, 512], 9)
    assert bare == 7_765_508
    psp_modules = 0
    for level, c in enumerate([32, 64, 128, 256]):
        paths = 4 - level
        for i in range(1, paths + 1):
            ch = c * 2**i
            psp_modules += cba(c, ch) + cba(ch, ch)
            for _ in range(i):  # transposed 2×2 steps halving the channels
                psp_modules += 4 * ch * (ch // 2) + ch // 2
                ch //= 2
        psp_modules += cba((paths + 1) * c, (paths + 1) * c)
    assert psp_modules == sum(count_parameters(s) for s in psp.skips) == 22_040_032
    wider = sum(9 * c * (4 - level) * c for level, c in enumerate([32, 64, 128, 256]))
    assert n == bare + psp_modules + wider


def test_width_multiplier_scales_the_count():
    with torch.device("meta"):
        small_unet = CardiacUNet3D(base_filters=8)
        small_psp = PSPUNet(base_filters=4)
    assert count_parameters(small_unet) == textbook_unet([8, 16, 32, 64, 128], 27)
    assert count_parameters(small_psp) < count_parameters(small_unet) < 1_500_000


def test_full_width_thesis_input_shapes_on_meta(full_width):
    unet, psp = full_width
    x = torch.empty(2, 1, 3, 176, 176, device="meta")
    assert unet(x).shape == (2, 4, 3, 176, 176)
    assert psp(x).shape == (2, 4, 3, 176, 176)


# ------------------------------------------------------------------------ architecture facts

def test_thesis_layer_order_and_keras_batch_norm(full_width):
    for model, conv_type, bn_type in ((full_width[0], nn.Conv3d, nn.BatchNorm3d),
                                      (full_width[1], nn.Conv2d, nn.BatchNorm2d)):
        first = model.encoder[0][0]
        assert [type(m) for m in first] == [conv_type, nn.ReLU, bn_type]  # Conv → ReLU → BN
        bns = [m for m in model.modules() if isinstance(m, bn_type)]
        assert bns and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    unet = full_width[0]
    assert unet.encoder[0][0].conv.kernel_size == (3, 3, 3)
    assert unet.pool.kernel_size == (1, 2, 2)
    assert all(up.conv.kernel_size == (1, 2, 2) == up.conv.stride for up in unet.up)
    assert [block.out_channels for block in unet.encoder] == [64, 128, 256, 512, 1024]


def test_unet3d_never_pools_across_slices():
    model = CardiacUNet3D(base_filters=2).eval()
    seen = []
    model.encoder[-1].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    model(small_input(1, 3, 48, 32))
    assert seen == [(1, 32, 3, 3, 2)]  # slices kept, in-plane size / 16


def test_pspunet_psp_modules_have_4_3_2_1_paths_with_doubling_filters(full_width):
    _, psp = full_width
    assert [len(s.pyramid.paths) for s in psp.skips] == [4, 3, 2, 1]
    assert [s.pyramid.factors for s in psp.skips] == [[2, 4, 8, 16], [2, 4, 8], [2, 4], [2]]
    filters = [[path[0].out_channels for path in s.pyramid.paths] for s in psp.skips]
    assert filters == [[64, 128, 256, 512], [128, 256, 512], [256, 512], [512]]
    assert [s.out_channels for s in psp.skips] == [160, 256, 384, 512]  # (paths + 1)·C
    assert [block.out_channels for block in psp.encoder] == [32, 64, 128, 256, 512]  # halved


# ------------------------------------------------------------------------ forward / backward

@pytest.mark.parametrize("d", [1, 3, 5])
@pytest.mark.parametrize("model_cls", [CardiacUNet3D, PSPUNet])
def test_output_shape_for_any_number_of_slices(model_cls, d):
    model = model_cls(base_filters=2)
    assert model(small_input(2, d, 32, 48)).shape == (2, 4, d, 32, 48)


def test_pspunet_accepts_2d_images_and_other_settings():
    model = PSPUNet(in_channels=2, num_classes=3, base_filters=2, depth=3)
    assert model(torch.randn(2, 2, 24, 16)).shape == (2, 3, 24, 16)
    assert [len(s.pyramid.paths) for s in model.skips] == [3, 2, 1]


@pytest.mark.parametrize("model_cls", [CardiacUNet3D, PSPUNet])
def test_gradients_reach_every_parameter(model_cls):
    model = model_cls(base_filters=4)
    out = model(small_input())
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("model_cls", [CardiacUNet3D, PSPUNet])
def test_softmax_output_is_softmax_of_the_logits(model_cls):
    torch.manual_seed(1)
    logits_model = model_cls(base_filters=2).eval()
    torch.manual_seed(1)
    prob_model = model_cls(base_filters=2, softmax=True).eval()
    x = small_input(1)
    probs = prob_model(x)
    torch.testing.assert_close(probs, torch.softmax(logits_model(x), dim=1))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1, 3, 32, 32))


def test_pspunet_is_2d_slice_by_slice_and_unet3d_is_not():
    psp = PSPUNet(base_filters=2).eval()
    x = small_input(2, 3)
    with torch.no_grad():
        whole = psp(x)
        for k in range(3):
            torch.testing.assert_close(whole[:, :, k], psp(x[:, :, k]), rtol=1e-5, atol=1e-5)
        unet = CardiacUNet3D(base_filters=2).eval()
        changed = x.clone()
        changed[:, :, 0] += 1.0
        # 3×3×3 kernels carry slice 0 to slice 2, 3×3×1 kernels do not
        assert not torch.allclose(unet(x)[:, :, 2], unet(changed)[:, :, 2])
        torch.testing.assert_close(psp(x)[:, :, 2], psp(changed)[:, :, 2])  # 3×3×1 does not


@pytest.mark.parametrize("model_cls", [CardiacUNet3D, PSPUNet])
def test_deterministic_given_the_seed(model_cls):
    x = small_input(1)
    torch.manual_seed(3)
    a = model_cls(base_filters=2).eval()
    torch.manual_seed(3)
    b = model_cls(base_filters=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
        torch.testing.assert_close(a(x), a(x), rtol=0, atol=0)


# ------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("model_cls", [CardiacUNet3D, PSPUNet])
def test_bad_input_raises_argument_error(model_cls):
    model = model_cls(base_filters=2)
    with pytest.raises(ArgumentError, match="channels"):
        model(torch.zeros(1, 2, 3, 32, 32))
    with pytest.raises(ArgumentError, match="divisible by 2\\*\\*depth = 16"):
        model(torch.zeros(1, 1, 3, 40, 32))
    with pytest.raises(ArgumentError, match="shape"):
        model(torch.zeros(1, 32, 32))
    if model_cls is CardiacUNet3D:
        with pytest.raises(ArgumentError, match="D, H, W"):
            model(torch.zeros(1, 1, 32, 32))
    for kwargs in ({"base_filters": 0}, {"depth": 0}, {"num_classes": 2.5}, {"in_channels": True}):
        with pytest.raises(ArgumentError):
            model_cls(**kwargs)


# ------------------------------------------------------------------------ blocks

def test_conv_bn_act_counts_order_and_same_padding():
    block = ConvBNAct(3, 4, 8, (1, 3, 3), order="conv-act-bn", activation="prelu")
    assert [type(m) for m in block] == [nn.Conv3d, nn.PReLU, nn.BatchNorm3d]
    assert count_parameters(block) == 9 * 4 * 8 + 8 + 2 * 8 + 8
    assert block(torch.zeros(2, 4, 3, 10, 12)).shape == (2, 8, 3, 10, 12)
    plain = ConvBNAct(2, 3, 5, 5, batch_norm=False, bias=False, activation=None)
    assert [type(m) for m in plain] == [nn.Conv2d, nn.Identity]
    assert count_parameters(plain) == 25 * 3 * 5
    assert ConvBNAct(2, 1, 1, 3, dilation=2)(torch.zeros(1, 1, 9, 9)).shape == (1, 1, 9, 9)
    strided = ConvBNAct(2, 1, 1, 3, stride=2)
    assert strided(torch.zeros(1, 1, 8, 8)).shape == (1, 1, 4, 4)
    assert isinstance(make_activation(lambda c: nn.PReLU(1), 7), nn.PReLU)


def test_double_conv_and_upconv():
    block = DoubleConv(2, 3, 8, mid_channels=4)
    assert (block.in_channels, block.out_channels) == (3, 8)
    assert count_parameters(block) == cba(3, 4) + cba(4, 8)
    up = UpConv(3, 8, 4, (1, 2, 2))
    assert count_parameters(up) == 4 * 8 * 4 + 4
    assert up(torch.zeros(1, 8, 3, 5, 6)).shape == (1, 4, 3, 10, 12)
    # kernel = stride: each input voxel paints its own tile, nothing overlaps
    one = UpConv(2, 1, 1, 2, bias=False)
    with torch.no_grad():
        one.conv.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
        y = one(torch.tensor([[[[1.0, 10.0]]]]))
    assert y.tolist() == [[[[1.0, 2.0, 10.0, 20.0], [3.0, 4.0, 30.0, 40.0]]]]


def test_pyramid_pooling_pspnet_head_and_variants():
    head = PyramidPooling(2048, 512, bins=(1, 2, 3, 6), bias=False)
    assert head.out_channels == 4096
    assert count_parameters(head) == 4 * (2048 * 512 + 2 * 512)
    small = PyramidPooling(6, 3, bins=(1, 2, 3, 6))
    x = torch.randn(2, 6, 12, 12)
    y = small(x)
    assert y.shape == (2, 6 + 4 * 3, 12, 12)
    torch.testing.assert_close(y[:, :6], x)  # the input is kept as the first channels
    small.eval()
    # the 1-bin path sees only the global mean, so it is constant over the image
    assert torch.allclose(small(x)[:, 6:9], small(x)[:, 6:9, :1, :1].expand(-1, -1, 12, 12))
    vol = PyramidPooling(4, [2, 4], factors=(2, 4), nd=3, pool="max", upsample="nearest",
                         keep_input=False)
    assert vol.out_channels == 6 and vol(torch.randn(1, 4, 8, 8, 8)).shape == (1, 6, 8, 8, 8)
    tr = PyramidPooling(4, [8, 16], factors=(2, 4), upsample="transposed", kernel_size=3)
    assert tr.out_channels == 4 + 4 + 4
    assert tr(torch.randn(2, 4, 8, 8)).shape == (2, 12, 8, 8)


def test_pspskip_output_width():
    skip = PSPSkip(4, 2)
    assert skip.out_channels == 12
    assert skip(torch.randn(2, 4, 8, 8)).shape == (2, 12, 8, 8)


def test_block_errors():
    with pytest.raises(ArgumentError, match="nd"):
        ConvBNAct(1, 1, 1)
    with pytest.raises(ArgumentError, match="even"):
        ConvBNAct(2, 1, 1, 2)
    with pytest.raises(ArgumentError, match="3 entries"):
        ConvBNAct(3, 1, 1, (3, 3))
    with pytest.raises(ArgumentError, match="order"):
        ConvBNAct(2, 1, 1, order="bn-conv")
    with pytest.raises(ArgumentError, match="activation"):
        make_activation("swishy", 3)
    with pytest.raises(ArgumentError, match="exactly one"):
        PyramidPooling(4, 2, factors=(2,), bins=(1,))
    with pytest.raises(ArgumentError, match="needs factors"):
        PyramidPooling(4, 2, bins=(1,), upsample="transposed")
    with pytest.raises(ArgumentError, match="power-of-two"):
        PyramidPooling(4, 6, factors=(3,), upsample="transposed")
    with pytest.raises(ArgumentError, match="divisible by the factor"):
        PyramidPooling(4, 6, factors=(4,), upsample="transposed")
    with pytest.raises(ArgumentError, match="2 entries for 1 paths"):
        PyramidPooling(4, [2, 2], factors=(2,))
    pp = PyramidPooling(4, 2, factors=(4,))
    with pytest.raises(ArgumentError, match="not divisible"):
        pp(torch.zeros(1, 4, 6, 8))
    with pytest.raises(ArgumentError, match="C = 4"):
        pp(torch.zeros(1, 3, 8, 8))
