"""Tests of the 2D models: U-Net (Ronneberger) with overlap-tile inference, ENet, the explainable
FCN. Full-width models are only built on the meta device (shapes and counts, no memory);
forward/backward runs use small widths and inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.models.enet import ENet
from cmrlab.nn.models.fcn import FEATURE_NAMES, ExplainableFCN, bilinear_kernel
from cmrlab.nn.models.unet2d import UNet2D, mirror_pad, overlap_tile_predict
from cmrlab.nn.receptive_field import count_parameters


def _meta(build, *args, **kwargs):
    with torch.device("meta"):
        return build(*args, **kwargs)


def _assert_all_parameters_get_gradients(model: nn.Module, x: torch.Tensor) -> None:
    model.train()
    model.zero_grad()
    out = model(x)
    (out * torch.randn_like(out)).sum().backward()
    missing = [
        name for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert missing == []


# ------------------------------------------------------------------------------------ U-Net

def test_unet_paper_network_count_and_572_to_388():
    net = _meta(UNet2D)  # 1 channel in, 2 classes, 64 → 1024, valid convolutions
    assert count_parameters(net) == 31_030_658
    assert count_parameters(_meta(UNet2D, num_classes=1)) == 31_030_593
    assert count_parameters(_meta(UNet2D, in_channels=3)) == 31_030_658 + 2 * 576
    assert count_parameters(_meta(UNet2D, padding="same")) == 31_030_658
    with torch.device("meta"):
        assert net(torch.empty(1, 1, 572, 572)).shape == (1, 2, 388, 388)
        same = UNet2D(padding="same")
        assert same(torch.empty(1, 1, 256, 192)).shape == (1, 2, 256, 192)
        # the paper's tiling: 388-pixel output tiles from 572-pixel mirror-padded windows
        assert overlap_tile_predict(net, torch.empty(1, 512, 600), 388).shape == (2, 512, 600)
    # channel progression of the paper: 64, 128, 256, 512, 1024 and back
    convs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs[:10] == [64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]
    assert [m.out_channels for m in net.up] == [512, 256, 128, 64]


def test_unet_size_arithmetic_matches_real_forward_passes():
    net = UNet2D(base_filters=4)
    assert (net.border, net.context, net.size_factor) == (92, 92, 16)
    assert net.output_size(572) == 388 and net.input_size(388) == 572
    valid = [n for n in range(1, 300) if net._output_or_none(n)]
    assert valid == [188, 204, 220, 236, 252, 268, 284]  # n ≡ 12 (mod 16), n ≥ 188
    assert [net.output_size(n) for n in valid[:3]] == [4, 20, 36]
    small = UNet2D(base_filters=1, depth=2)
    assert (small.border, small.context) == (20, 20)
    net_same = UNet2D(base_filters=4, padding="same")
    assert (net_same.border, net_same.context) == (0, 96)
    with torch.no_grad():
        for n in (188, 220):
            assert net(torch.zeros(1, 1, n, 204)).shape[-2:] == (net.output_size(n), 20)
        for n in (44, 52, 60):
            assert small(torch.zeros(1, 1, n, n)).shape[-1] == small.output_size(n) == n - 40
    with pytest.raises(ArgumentError, match=r"nearest valid sizes: \[556, 572\]"):
        net.output_size(570)
    with pytest.raises(ArgumentError, match="nearest output sizes"):
        net.input_size(389)
    with pytest.raises(ArgumentError, match="multiple of 16"):
        net_same.output_size(100)


def test_unet_gradients_reach_every_parameter():
    torch.manual_seed(0)
    _assert_all_parameters_get_gradients(
        UNet2D(base_filters=4, dropout=0.5), torch.randn(2, 1, 188, 204)
    )
    _assert_all_parameters_get_gradients(
        UNet2D(in_channels=2, num_classes=3, base_filters=4, depth=3, padding="same"),
        torch.randn(1, 2, 48, 64),
    )


def test_unet_is_deterministic_in_eval_mode_and_dropout_sits_at_the_bottom():
    torch.manual_seed(1)
    net = UNet2D(base_filters=2, dropout=0.5).eval()
    x = torch.randn(1, 1, 188, 188)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    assert isinstance(net.dropout, nn.Dropout) and net.dropout.p == 0.5
    assert isinstance(UNet2D(base_filters=2).dropout, nn.Identity)


def test_unet_rejects_bad_arguments_and_inputs():
    net = UNet2D(base_filters=2)
    with pytest.raises(ArgumentError, match="input channel"):
        net(torch.zeros(1, 3, 188, 188))
    with pytest.raises(ArgumentError, match=r"\(N, C, H, W\)"):
        net(torch.zeros(1, 188, 188))
    with pytest.raises(ArgumentError, match="input W = 190"):
        net(torch.zeros(1, 1, 188, 190))
    for kwargs in ({"padding": "reflect"}, {"dropout": 1.0}, {"depth": 0}, {"base_filters": 2.5}):
        with pytest.raises(ArgumentError):
            UNet2D(**kwargs)


# ------------------------------------------------------------------------ overlap-tile

def test_mirror_pad_reflects_without_repeating_the_edge_and_mirrors_long_pads_again():
    row = torch.arange(4.0).reshape(1, 4)
    assert mirror_pad(row, (0, 0, 2, 1)).tolist() == [[2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0]]
    img = torch.arange(12.0).reshape(3, 4)
    for pad in [(1, 2, 3, 0), (7, 5, 9, 11)]:  # the second pads more than the image size
        expected = np.pad(img.numpy(), ((pad[0], pad[1]), (pad[2], pad[3])), mode="reflect")
        assert np.array_equal(mirror_pad(img, pad).numpy(), expected)
    assert mirror_pad(torch.ones(1, 1), (2, 2, 2, 2)).shape == (5, 5)  # 1 pixel: replicated
    with pytest.raises(ArgumentError):
        mirror_pad(img, (1, 1, 1))


def test_overlap_tile_equals_the_whole_image_prediction_of_a_valid_unet():
    torch.manual_seed(2)
    net = UNet2D(base_filters=2).double().eval()
    image = torch.randn(2, 1, 100, 116, dtype=torch.float64)  # 100 + 184 and 116 + 184 are valid
    whole = net(mirror_pad(image, (92, 92, 92, 92)))
    assert whole.shape == (2, 2, 100, 116)
    # 36-pixel output tiles (220-pixel windows) at steps of 32; the right-most tiles run past
    # the image; tiles of 36 × 52 too
    for tile in (36, (36, 52)):
        stitched = overlap_tile_predict(net, image, tile, batch_size=3)
        assert stitched.shape == (2, 2, 100, 116)
        assert torch.allclose(stitched, whole, rtol=0, atol=1e-10)
    # tiles that start off the 16-pixel pooling grid see other pooling windows: not exact
    misaligned = overlap_tile_predict(net, image, 36, align=1)
    assert (misaligned - whole).abs().max() > 1e-3
    # an unbatched image gives an unbatched prediction, any image size works
    single = overlap_tile_predict(net, image[0, :, :70, :45], 36)
    assert single.shape == (2, 70, 45)


def test_overlap_tile_of_a_same_padding_unet_is_exact_with_its_context_and_not_without():
    torch.manual_seed(3)
    net = UNet2D(base_filters=2, depth=2, padding="same").double().eval()
    image = torch.randn(1, 40, 56, dtype=torch.float64)
    c = net.context  # 24 = 6·2^2
    whole = net(mirror_pad(image[None], (c, c, c, c)))[0, :, c:-c, c:-c]
    stitched = overlap_tile_predict(net, image, 16)
    assert stitched.shape == (2, 40, 56)
    assert torch.allclose(stitched, whole, rtol=0, atol=1e-10)
    seams = overlap_tile_predict(net, image, 16, context=0)  # plain tiling: tile edges show
    assert (seams - whole).abs().max() > 1e-3


def test_overlap_tile_rejects_tiles_the_network_cannot_take():
    net = UNet2D(base_filters=2)
    image = torch.zeros(1, 64, 64)
    with pytest.raises(ArgumentError, match=r"nearest tile sizes: \[36, 52\]"):
        overlap_tile_predict(net, image, 40)
    with pytest.raises(ArgumentError, match="smaller than align"):
        overlap_tile_predict(net, image, 4, context=92, align=16 * 2)
    conv = nn.Conv2d(1, 2, 3)  # loses 1 pixel per side
    with pytest.raises(ArgumentError, match="context"):
        overlap_tile_predict(conv, image, 16)
    with pytest.raises(ArgumentError, match="maps a 20×20 window to 18×18"):
        overlap_tile_predict(conv, image, 16, context=2)
    out = overlap_tile_predict(conv, image, 16, context=1)  # the right context: a valid conv
    assert out.shape == (2, 64, 64)
    with pytest.raises(ArgumentError, match="pad_mode"):
        overlap_tile_predict(conv, image, 16, context=1, pad_mode="wrap")


# -------------------------------------------------------------------------------------- ENet

def test_enet_parameter_count_is_the_papers_037_million():
    paper = _meta(ENet, in_channels=3, num_classes=20)
    assert count_parameters(paper) == 364_376
    assert abs(count_parameters(paper) / 0.37e6 - 1) < 0.02
    assert count_parameters(_meta(ENet)) == 362_992  # 1 channel in, 2 classes
    assert count_parameters(_meta(ENet, in_channels=3, num_classes=21)) == 364_376 + 65
    with torch.device("meta"):
        assert paper(torch.empty(1, 3, 512, 512)).shape == (1, 20, 512, 512)
        assert paper(torch.empty(1, 3, 360, 640)).shape == (1, 20, 360, 640)  # the lecture's frame


def test_enet_structure_follows_table_1_of_the_paper():
    net = _meta(ENet, in_channels=3, num_classes=12)
    assert net.initial.conv.out_channels == 13  # 13 filters + 3 pooled input channels
    assert (net.down1.main[0].kernel_size, net.down1.main[0].stride) == ((2, 2), (2, 2))

    def middle(block):
        return [m for m in block.main if isinstance(m, nn.Conv2d)][1:-1]

    stage2 = [[(m.kernel_size, m.dilation[0]) for m in middle(b)] for b in net.stage2]
    assert stage2 == [
        [((3, 3), 1)], [((3, 3), 2)], [((1, 5), 1), ((5, 1), 1)], [((3, 3), 4)],
        [((3, 3), 1)], [((3, 3), 8)], [((1, 5), 1), ((5, 1), 1)], [((3, 3), 16)],
    ]
    assert [[(m.kernel_size, m.dilation[0]) for m in middle(b)] for b in net.stage3] == stage2
    # spatial dropout 0.01 in stage 1 (5 blocks), 0.1 in stages 2-3 (17 blocks), none in the decoder
    drops = [m.p for m in net.modules() if isinstance(m, nn.Dropout2d)]
    assert drops == [0.01] * 5 + [0.1] * 17
    # PReLU in the encoder, ReLU in the decoder; projections without bias
    assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 1 + 3 * (5 + 17)
    assert all(isinstance(m, nn.ReLU) for m in (net.up4.act, net.stage4[0].act, net.stage5.act))
    assert net.down2.main[0].bias is None and net.stage2[0].main[-3].bias is None
    assert isinstance(net.up4.main[3], nn.ConvTranspose2d)
    assert net.fullconv.kernel_size == (2, 2) and net.fullconv.stride == (2, 2)


def test_enet_downsampling_shortcut_and_unpooling_use_the_pooling_indices():
    torch.manual_seed(4)
    net = ENet(width=0.25).eval()
    down = net.down1
    with torch.no_grad():
        down.main[-2].weight.zero_()  # last BN of the main branch: the main branch gives 0
        x = torch.rand(1, 4, 8, 8)
        out, indices = down(x)
        pooled, expected_indices = nn.functional.max_pool2d(x, 2, return_indices=True)
        assert out.shape == (1, 16, 4, 4)
        assert torch.allclose(out[:, :4], pooled)  # PReLU of positive values: identity
        assert torch.all(out[:, 4:] == 0)  # the extra channels are zeros
        assert torch.equal(indices, expected_indices)
        up = net.up5  # 16 → 4 channels, unpools with the indices of down1
        up.main[-1].weight.zero_()
        y = up(torch.randn(1, 16, 4, 4), indices)
        assert y.shape == (1, 4, 8, 8)
        hit = torch.zeros(1, 4, 64)
        hit.scatter_(2, indices.flatten(2), 1.0)
        assert torch.all(y.flatten(2)[hit == 0] == 0)  # non-zero only where the maxima were


def test_enet_gradients_reach_every_parameter():
    torch.manual_seed(5)
    _assert_all_parameters_get_gradients(
        ENet(in_channels=1, num_classes=4, width=0.25), torch.randn(2, 1, 32, 48)
    )


def test_enet_rejects_bad_arguments_and_inputs():
    net = ENet(width=0.25)
    with pytest.raises(ArgumentError, match="divisible by 8"):
        net(torch.zeros(1, 1, 36, 32))
    with pytest.raises(ArgumentError, match="input channel"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ArgumentError, match="larger width"):
        ENet(in_channels=3, width=0.2)
    with pytest.raises(ArgumentError):
        ENet(width=0)


# ----------------------------------------------------------------------- explainable FCN

def test_fcn_count_layer_sizes_and_256_output():
    net = _meta(ExplainableFCN)
    assert net.channels == (100, 200, 300, 300)
    assert count_parameters(net) == 1_857_846
    assert count_parameters(_meta(ExplainableFCN, bias=False)) == 1_856_944
    with torch.device("meta"):
        logits, feats = net(torch.empty(1, 1, 256, 256), return_features=True)
    assert logits.shape == (1, 2, 256, 256)
    assert list(feats) == list(FEATURE_NAMES)
    sides = {name: (t.shape[1], t.shape[-1]) for name, t in feats.items()}
    assert sides == {
        "conv1": (100, 128), "pool1": (100, 64),  # 1/4 of the side after conv1 + pool1
        "conv2": (200, 32), "pool2": (200, 16),  # 1/16 after conv2 + pool2
        "conv3": (300, 16), "conv4": (300, 16), "score": (2, 16), "upscore": (2, 256),
    }
    up = net.upscore
    assert (up.kernel_size, up.stride, up.bias) == ((31, 31), (16, 16), None)
    assert net.crop == 10  # (16 − 1)·16 + 31 = 271 → 256: 10 cropped top/left, 5 bottom/right


def test_fcn_real_forward_at_small_width_and_features_match_the_logits():
    torch.manual_seed(6)
    net = ExplainableFCN(width=0.1).eval()
    x = torch.randn(2, 1, 256, 256)
    with torch.no_grad():
        logits, feats = net(x, return_features=True)
        assert logits.shape == (2, 2, 256, 256)
        assert torch.equal(logits, net(x)) and feats["upscore"] is logits
        assert torch.all(feats["conv1"] >= 0) and torch.all(feats["conv4"] >= 0)  # after ReLU
        # bilinear start, kernel centred on the receptive field: output 16·m + 5 is score m
        score = feats["score"]
        assert torch.allclose(logits[..., 5::16, 5::16], score, atol=1e-6)
        assert net(torch.randn(1, 1, 64, 96)).shape == (1, 2, 64, 96)


def test_bilinear_kernel_interpolates_exactly():
    assert torch.allclose(bilinear_kernel(4)[0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625]))
    k = bilinear_kernel(31)
    assert k[15, 15] == 1 and k.sum() == 256  # tent 1 − |x − 15|/16: its sum is 16 per axis
    # as a stride-16 transposed convolution it reproduces a constant map exactly (away from the
    # edges) and interpolates linearly between two pixels
    up = nn.ConvTranspose2d(1, 1, 31, stride=16, bias=False)
    with torch.no_grad():
        up.weight[0, 0] = k
        flat = up(torch.full((1, 1, 3, 4), 2.5))
        assert torch.allclose(flat[..., 15:-15, 15:-15], torch.tensor(2.5))
        ramp = up(torch.tensor([[[[0.0, 16.0]]]]))[0, 0, 15, 15:32]
        assert torch.allclose(ramp, torch.arange(17.0))


def test_fcn_gradients_reach_every_parameter():
    torch.manual_seed(7)
    _assert_all_parameters_get_gradients(ExplainableFCN(width=0.05), torch.randn(2, 1, 64, 64))


def test_fcn_rejects_bad_arguments_and_inputs():
    net = ExplainableFCN(width=0.05)
    with pytest.raises(ArgumentError, match="multiples of 16"):
        net(torch.zeros(1, 1, 250, 256))
    with pytest.raises(ArgumentError, match="input channel"):
        net(torch.zeros(1, 3, 256, 256))
    with pytest.raises(ArgumentError, match="four integers"):
        ExplainableFCN(channels=(100, 200, 300))
    with pytest.raises(ArgumentError):
        ExplainableFCN(width=-1)
    with pytest.raises(ArgumentError):
        bilinear_kernel(0)
