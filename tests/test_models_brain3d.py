"""Brain-thesis 3D models: V-Net, V-Net light, 3D U-Net (Çiçek), the 3D DenseNet family.

Full-width models are only ever built on the meta device (parameter counts cost nothing);
forward and backward passes run at reduced width on small inputs.
"""
import re
from collections import Counter

import pytest
import torch
from torch import nn

from cmrlab.errors import ArgumentError
from cmrlab.nn.models import densenet3d, unet3d, vnet
from cmrlab.nn.models.densenet3d import (
    DenseNet3D,
    DenseNet3DEarlyFusion,
    DenseNet3DLateFusion,
    densenet3d_single_path,
    densenet3d_three_stream_early_fusion,
    densenet3d_two_stream_early_fusion,
    densenet3d_two_stream_late_fusion,
)
from cmrlab.nn.models.unet3d import ShiftBatchNorm3d, UNet3D
from cmrlab.nn.models.vnet import VNet, vnet_light
from cmrlab.nn.receptive_field import count_parameters


def _meta(builder, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return builder(*args, **kwargs)


def _bn_channels(model: nn.Module) -> int:
    return sum(m.num_features for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase))


def _prelu_parameters(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.PReLU))


# --------------------------------------------------------------------------- parameter counts

def test_vnet_parameter_count_matches_thesis_era_code_and_table1():
    net = _meta(VNet)
    ours = count_parameters(net)
    assert ours == 45_609_296
    assert abs(ours - vnet.THESIS_PARAMETERS) / vnet.THESIS_PARAMETERS < 0.02  # Table 1 "~45M"
    # stage depths 1,2,3,2 / 2,2,1,1 fix the PReLU slopes: 3 620 (spec §9)
    assert _prelu_parameters(net) == 3_620
    # the thesis-era code keeps a bias in every convolution followed by BN: 45 608 336 + 3 620
    assert ours + _bn_channels(net) == 45_608_336 + 3_620


def test_vnet_light_count_and_documented_discrepancy():
    net = _meta(vnet_light)
    ours = count_parameters(net)
    assert ours == 12_246_736
    assert _prelu_parameters(net) == 1_700
    assert ours + _bn_channels(net) == 12_246_288 + 1_700
    # Table 1's "~25M" is not reproducible: dropping the deepest stage removes ~73 % of V-Net
    assert ours < 0.5 * vnet.THESIS_PARAMETERS_LIGHT
    assert count_parameters(_meta(VNet, light=True)) == ours


def test_vnet_same_layers_as_monai_vnet():
    monai_nets = pytest.importorskip("monai.networks.nets")
    ours = _meta(VNet, 1, 4)
    theirs = _meta(monai_nets.VNet, spatial_dims=3, in_channels=1, out_channels=4, act="prelu")
    mine = Counter(tuple(p.shape) for p in ours.parameters())
    peer = Counter(tuple(p.shape) for p in theirs.parameters())
    # identical parameter shapes, except the biases MONAI keeps on its 4 up-convolutions
    assert mine - peer == Counter()
    assert peer - mine == Counter({(128,): 1, (64,): 1, (32,): 1, (16,): 1})
    assert count_parameters(theirs) - count_parameters(ours) == 240


def test_unet3d_reproduces_cicek_paper_count_exactly():
    assert count_parameters(_meta(UNet3D, 3, 3)) == unet3d.PAPER_PARAMETERS == 19_069_955
    textbook = _meta(UNet3D, 3, 3, bn_scale=True)
    assert count_parameters(textbook) == 19_072_291
    assert count_parameters(textbook) - unet3d.PAPER_PARAMETERS == _bn_channels(textbook) == 2_336


@pytest.mark.parametrize("in_channels, expected", [(1, 19_068_292), (2, 19_069_156), (3, 19_070_020)])
def test_unet3d_counts_for_thesis_modalities(in_channels, expected):
    ours = count_parameters(_meta(UNet3D, in_channels, 4))
    assert ours == expected
    # documented discrepancy: Table 1 says ~10M, the described Çiçek design has 19.07 M
    assert abs(ours - 19.07e6) / 19.07e6 < 0.001
    assert ours / unet3d.THESIS_PARAMETERS > 1.9


@pytest.mark.parametrize("builder, expected, thesis_era_code", [
    (densenet3d_single_path, 2_687_649, 2_685_243),
    (densenet3d_two_stream_late_fusion, 5_375_294, 5_370_486),
    (densenet3d_two_stream_early_fusion, 2_997_544, 2_995_086),
    (densenet3d_three_stream_early_fusion, 3_307_439, 3_304_929),
])
def test_densenet_family_counts(builder, expected, thesis_era_code):
    net = _meta(builder)
    ours = count_parameters(net)
    assert ours == expected
    thesis = densenet3d.THESIS_PARAMETERS[builder.__name__]
    assert abs(ours - thesis) / thesis < 0.035  # Table 1: 2.7 / 5.2 / 2.9 / 3.4 M
    # the thesis-era code lacks the BN of the 1×1×1 stack and classifier, and the classifier bias
    pointwise = [m for m in net.modules() if isinstance(m, nn.Conv3d) and m.kernel_size == (1, 1, 1)]
    pointwise_bn = sum(2 * conv.in_channels for conv in pointwise)
    assert ours - pointwise_bn - net.num_classes == thesis_era_code


def test_densenet_counts_stay_in_issue_ranges():
    counts = [count_parameters(_meta(b)) for b in (
        densenet3d_single_path, densenet3d_two_stream_late_fusion,
        densenet3d_two_stream_early_fusion, densenet3d_three_stream_early_fusion)]
    assert round(counts[0] / 1e6, 2) == 2.69
    assert 4.8e6 <= counts[1] <= 5.4e6
    assert round(counts[2] / 1e6, 1) == 3.0
    assert round(counts[3] / 1e6, 1) == 3.3


def test_densenet_single_path_count_for_more_modalities():
    # each extra input channel adds 2 (BN) + 27·g to every dense layer, and 2 (BN) + 400 to the
    # first 1×1×1 convolution
    per_channel = sum(2 + 27 * g for g in densenet3d.GROWTH_RATES) + 400 + 2
    one = count_parameters(_meta(DenseNet3D, 1))
    assert count_parameters(_meta(DenseNet3D, 2)) == one + per_channel == 2_700_219
    assert count_parameters(_meta(DenseNet3D, 3)) == one + 2 * per_channel


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("size", [(16, 16, 16), (32, 16, 48)])
def test_vnet_output_shape(size):
    torch.manual_seed(0)
    net = VNet(base_filters=4)
    out = net(torch.randn(2, 1, *size))
    assert out.shape == (2, 4, *size)


def test_vnet_light_and_multichannel_shapes():
    torch.manual_seed(0)
    out = vnet_light(base_filters=4)(torch.randn(2, 1, 8, 16, 24))
    assert out.shape == (2, 4, 8, 16, 24)
    out = VNet(in_channels=2, num_classes=3, base_filters=4)(torch.randn(2, 2, 16, 16, 32))
    assert out.shape == (2, 3, 16, 16, 32)


@pytest.mark.parametrize("in_channels", [1, 2, 3])
def test_unet3d_output_shape(in_channels):
    torch.manual_seed(0)
    net = UNet3D(in_channels, 4, base_filters=4)
    for size in [(8, 16, 24), (16, 8, 8)]:
        assert net(torch.randn(2, in_channels, *size)).shape == (2, 4, *size)


@pytest.mark.parametrize("model", [
    DenseNet3D(1, width=0.1), DenseNet3D(3, width=0.1),
    DenseNet3DLateFusion(2, width=0.1), DenseNet3DEarlyFusion(2, width=0.1),
    DenseNet3DEarlyFusion(3, 5, width=0.1),
], ids=["single1", "single3", "late2", "early2", "early3"])
def test_densenet_any_patch_size(model):
    for size in [(5, 7, 6), (1, 3, 2)]:
        out = model(torch.randn(2, model.in_channels, *size))
        assert out.shape == (2, model.num_classes, *size)


def test_densenet_receptive_field_is_19_voxels():
    """Nine 3³ convolutions and no pooling: an output voxel sees a 19³ cube of the input."""
    torch.manual_seed(0)
    net = DenseNet3D(1, width=0.1).eval()
    x = torch.randn(1, 1, 25, 25, 25, requires_grad=True)
    net(x)[0, 1, 12, 12, 12].backward()
    touched = x.grad[0, 0].abs() > 0
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        span = touched.any(dim=others[1]).any(dim=others[0]).nonzero().flatten()
        assert (span.min().item(), span.max().item()) == (3, 21)


# --------------------------------------------------------------------------- gradients

def _all_parameters_get_gradients(net: nn.Module, x: torch.Tensor) -> None:
    out = net(x)
    (out * torch.randn_like(out)).sum().backward()
    missing = [name for name, p in net.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert missing == []


@pytest.mark.parametrize("build, shape", [
    (lambda: VNet(base_filters=4, dropout=0.0), (2, 1, 16, 16, 16)),
    (lambda: vnet_light(2, 3, base_filters=4, dropout=0.0), (2, 2, 8, 8, 16)),
    (lambda: UNet3D(2, 4, base_filters=4), (2, 2, 8, 8, 16)),
    (lambda: UNet3D(1, 3, base_filters=4, bn_scale=True), (2, 1, 8, 8, 8)),
    (lambda: DenseNet3D(2, width=0.1, dropout=0.0), (2, 2, 6, 6, 6)),
    (lambda: DenseNet3DLateFusion(2, width=0.1, dropout=0.0), (2, 2, 6, 6, 6)),
    (lambda: DenseNet3DEarlyFusion(3, width=0.1, dropout=0.0), (2, 3, 6, 6, 6)),
], ids=["vnet", "vnet_light", "unet3d", "unet3d_bn_scale", "densenet", "late", "early3"])
def test_gradients_reach_every_parameter(build, shape):
    torch.manual_seed(0)
    _all_parameters_get_gradients(build(), torch.randn(shape))


# --------------------------------------------------------------------------- determinism, dropout

@pytest.mark.parametrize("build, shape", [
    (lambda: VNet(base_filters=4), (2, 1, 16, 16, 16)),
    (lambda: UNet3D(2, base_filters=4), (2, 2, 8, 8, 8)),
    (lambda: DenseNet3DEarlyFusion(2, width=0.1, dropout=0.5), (2, 2, 6, 6, 6)),
], ids=["vnet", "unet3d", "densenet"])
def test_same_seed_same_model_and_eval_is_deterministic(build, shape):
    torch.manual_seed(3)
    a = build()
    torch.manual_seed(3)
    b = build()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    x = torch.randn(shape)
    a.eval()
    with torch.no_grad():
        assert torch.equal(a(x), a(x))
        assert torch.equal(a(x), b.eval()(x))


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    net = VNet(base_filters=4, dropout=0.5)
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))      # training: Dropout3d draws differ
        net.eval()
        assert torch.equal(net(x), net(x))
    no_dropout = VNet(base_filters=4, dropout=0.0)
    assert not any(isinstance(m, nn.Dropout3d) for m in no_dropout.modules())
    assert sum(isinstance(m, nn.Dropout3d) for m in VNet(base_filters=4).modules()) == 8


# --------------------------------------------------------------------------- building blocks

def test_vnet_input_stage_adds_the_repeated_input():
    """With a zero convolution and identity BN, the input stage is PReLU(x repeated)."""
    torch.manual_seed(0)
    net = VNet(in_channels=2, base_filters=8).eval()
    stage = net.input
    with torch.no_grad():
        stage.conv.conv.weight.zero_()
        x = torch.randn(1, 2, 4, 4, 4)
        expected = stage.act(x.repeat(1, 4, 1, 1, 1))  # channel j gets input channel j mod 2
        assert torch.equal(stage(x), expected)


def test_shift_batchnorm_formula():
    torch.manual_seed(0)
    bn = ShiftBatchNorm3d(3)
    assert [name for name, _ in bn.named_parameters()] == ["bias"]
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = 3.0 * torch.randn(4, 3, 2, 3, 5) + 7.0
    mean = x.mean(dim=(0, 2, 3, 4), keepdim=True)
    var = x.var(dim=(0, 2, 3, 4), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + bn.eps) + bn.bias.view(1, 3, 1, 1, 1)
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)


def test_early_fusion_streams_are_separate_per_modality():
    net = DenseNet3DEarlyFusion(2, width=0.2)
    assert len(net.streams) == 2
    assert net.streams[0].unit[-1].weight is not net.streams[1].unit[-1].weight
    # a change of modality 2 leaves stream 1's features alone
    x = torch.randn(1, 2, 4, 4, 4)
    y = x.clone()
    y[:, 1] += 1.0
    net.eval()
    torch.testing.assert_close(net.streams[0](x[:, :1]), net.streams[0](y[:, :1]))
    assert not torch.allclose(net(x), net(y))


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("build, kwargs", [
    (VNet, {"in_channels": 3}),               # 3 does not divide 16
    (VNet, {"base_filters": 0}),
    (VNet, {"dropout": 1.0}),
    (VNet, {"num_classes": 2.5}),
    (UNet3D, {"in_channels": 0}),
    (UNet3D, {"base_filters": True}),
    (DenseNet3D, {"width": 0}),
    (DenseNet3D, {"dropout": -0.1}),
    (DenseNet3DLateFusion, {"in_channels": 1}),
    (DenseNet3DEarlyFusion, {"in_channels": 1}),
])
def test_bad_arguments(build, kwargs):
    with pytest.raises(ArgumentError):
        build(**kwargs)


@pytest.mark.parametrize("net, x, words", [
    (VNet(base_filters=4), torch.zeros(1, 1, 16, 16, 24), "divisible by 2**4 = 16"),
    (vnet_light(base_filters=4), torch.zeros(1, 1, 8, 8, 12), "divisible by 2**3 = 8"),
    (VNet(base_filters=4), torch.zeros(1, 2, 16, 16, 16), "in_channels=1"),
    (UNet3D(2, base_filters=4), torch.zeros(1, 2, 8, 8, 4), "divisible by 2**3 = 8"),
    (UNet3D(2, base_filters=4), torch.zeros(2, 8, 8, 8), "(N, C, D, H, W)"),
    (DenseNet3D(2, width=0.1), torch.zeros(1, 3, 4, 4, 4), "in_channels=2"),
    (DenseNet3DLateFusion(2, width=0.1), torch.zeros(1, 2, 4, 4), "(N, C, D, H, W)"),
])
def test_bad_input_is_explained(net, x, words):
    with pytest.raises(ArgumentError, match=re.escape(words)):
        net(x)
