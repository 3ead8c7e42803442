"""Tests of cmrlab.viz.network: U-Net and pyramid-pooling diagrams drawn from channel counts."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import FancyBboxPatch, Rectangle

from cmrlab.errors import ArgumentError
from cmrlab.viz.network import (CONV_COLOR, SKIP_COLOR, UP_COLOR, _bar_width, draw_pyramid_module,
                                draw_unet)
from matplotlib.colors import to_rgba

ENC = [[8, 8], [16, 16], [32, 32]]
UP = [8, 16]
DEC = [[8, 8], [16, 16]]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_unet_draws_one_bar_per_feature_map_in_computation_order():
    ax = draw_unet(ENC, UP, DEC, in_channels=1, out_channels=4)
    rects = bars(ax)
    # input + 6 encoder maps + per decoder level (skip copy + up output + 2 convs) + output
    assert len(rects) == 1 + 6 + 2 * 4 + 1
    xs = [r.get_x() for r in rects]
    assert xs == sorted(xs)                                  # left to right as computed
    colors = [to_rgba(r.get_facecolor()) for r in rects]
    assert colors.count(to_rgba(SKIP_COLOR)) == 2 and colors.count(to_rgba(UP_COLOR)) == 2
    assert colors.count(to_rgba(CONV_COLOR)) == 6 + 4
    # the channel counts are written on the bars, in order
    numbers = [t for t in texts(ax) if t.isdigit()]
    assert numbers == ["1", "8", "8", "16", "16", "32", "32",
                       "16", "16", "16", "16", "8", "8", "8", "8", "4"]


def test_unet_bar_size_follows_channels_and_level():
    ax = draw_unet(ENC, UP, DEC, in_channels=1, out_channels=4)
    rects = bars(ax)
    enc_rects = rects[1:7]
    widths = [r.get_width() for r in enc_rects]
    assert widths[0] == pytest.approx(_bar_width(8)) and widths[4] == pytest.approx(_bar_width(32))
    assert widths[0] < widths[2] < widths[4]
    heights = [r.get_height() for r in enc_rects]
    assert heights[0] > heights[2] > heights[4]              # deeper levels are smaller
    ys = [r.get_y() + r.get_height() / 2 for r in enc_rects]
    assert ys[0] > ys[2] > ys[4]                             # and lower: the U


def test_unet_skip_channels_and_labels_are_shown():
    ax = draw_unet(ENC, UP, DEC, in_channels=1, out_channels=4, skips=[40, 48],
                   skip_labels=["PSP ×2 ×4", None], sizes=["64×64", "32×32", "16×16"],
                   labels={"conv": "3×3 conv"})
    shown = texts(ax)
    assert "PSP ×2 ×4" in shown and shown.count("PSP ×2 ×4") == 1
    assert {"40", "48"} <= set(shown) and {"64×64", "32×32", "16×16"} <= set(shown)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "3×3 conv" in legend


def test_unet_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    assert draw_unet(ENC, UP, DEC, in_channels=1, out_channels=4, ax=ax, title="t") is ax
    assert ax.get_title() == "t"


@pytest.mark.parametrize("kwargs, message", [
    (dict(encoder=[[8, 8]]), "at least two levels"),
    (dict(encoder=[]), "non-empty"),
    (dict(encoder="abc"), "non-empty"),
    (dict(encoder=[[8, 0], [16]]), "encoder\\[0\\]"),
    (dict(decoder=[[8]]), "decoder must have 2 levels"),
    (dict(up=[8]), "up must have 2 entries"),
    (dict(up=[8, -1]), "up"),
    (dict(skips=[8]), "skips must have 2 entries"),
    (dict(skip_labels=["a"]), "skip_labels"),
    (dict(skip_labels=["a", 3]), "skip_labels\\[1\\]"),
    (dict(sizes=["a", "b"]), "sizes"),
    (dict(in_channels=0), "in_channels"),
    (dict(out_channels=2.5), "out_channels"),
    (dict(labels={"cnv": "x"}), "labels must map"),
])
def test_unet_rejects_bad_numbers(kwargs, message):
    args = dict(encoder=ENC, up=UP, decoder=DEC, in_channels=1, out_channels=4)
    args.update(kwargs)
    with pytest.raises(ArgumentError, match=message):
        draw_unet(args.pop("encoder"), args.pop("up"), args.pop("decoder"), **args)


PATHS = [(2, [64, 64], [32]), (4, [128, 128], [64, 32])]


def test_pyramid_module_boxes_and_concatenated_width():
    ax = draw_pyramid_module(32, PATHS, [96], size=64)
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    # input, concat, copy, (pool + 2 convs + ups) per path, 1 mix conv
    assert len(boxes) == 3 + (1 + 2 + 1) + (1 + 2 + 2) + 1
    shown = texts(ax)
    assert "concat\n96 ch\n64²" in shown                      # 32 (copy) + 32 + 32
    assert "max-pool ×4\n16²" in shown and "up ×2\n64 ch\n32²" in shown
    assert "conv 3×3\n128 ch\n16²" in shown
    no_copy = draw_pyramid_module(32, PATHS, [64], keep_input=False)
    assert "concat\n64 ch" in texts(no_copy)
    assert not any(t.startswith("copy") for t in texts(no_copy))


def test_pyramid_module_path_without_up_steps_contributes_its_conv_width():
    ax = draw_pyramid_module(8, [(1, [16], [])], [24], conv_label="conv 1×1")
    assert "concat\n24 ch" in texts(ax) and "conv 1×1\n16 ch" in texts(ax)


@pytest.mark.parametrize("args, message", [
    ((32, [(4, [128], [64])], [96]), "comes back at 32×32, not 64×64"),
    ((32, [(3, [96], [48])], [96]), "not divisible by the pooling factor 3"),
    ((32, [], [96]), "non-empty"),
    ((32, [(2, [64])], [96]), "paths\\[0\\] must be"),
    ((32, [(2, [64], 5)], [96]), "ups must be a list"),
    ((32, [(0, [64], [32])], [96]), "factor"),
    ((32, [(2, [], [32])], [96]), "convs"),
    ((0, PATHS, [96]), "in_channels"),
    ((32, PATHS, []), "mix"),
])
def test_pyramid_module_rejects_bad_paths(args, message):
    with pytest.raises(ArgumentError, match=message):
        draw_pyramid_module(*args, size=64)


def test_pyramid_module_rejects_bad_options():
    with pytest.raises(ArgumentError, match="keep_input"):
        draw_pyramid_module(32, PATHS, [96], keep_input="yes")
    with pytest.raises(ArgumentError, match="conv_label"):
        draw_pyramid_module(32, PATHS, [96], conv_label=3)
    with pytest.raises(ArgumentError, match="size"):
        draw_pyramid_module(32, PATHS, [96], size=0)
