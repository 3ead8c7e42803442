"""Tests of cmrlab.viz: the volume viewer (widgets, rendering, static HTML), monitor, progress."""
import os

import matplotlib

# Agg for this process only (tests/conftest.py does the same): an MPLBACKEND environment variable
# would leak into the notebook kernels nbval starts from this process.
matplotlib.use("Agg")

import base64
import csv
import io
import re

import numpy as np
import pytest
from PIL import Image

import cmrlab.viz.monitor as monitor_mod
import cmrlab.viz.volume as volume_mod
from cmrlab.errors import ArgumentError, CmrlabError
from cmrlab.viz import TrainingMonitor, VolumeViewer, progress, show_volume
from cmrlab.viz import _render

FRAME = re.compile(r'frames\[(\d+)\] = "data:image/png;base64,([^"]+)"')


@pytest.fixture
def live(monkeypatch):
    monkeypatch.delenv("CMRLAB_STATIC", raising=False)


@pytest.fixture
def static(monkeypatch):
    monkeypatch.setenv("CMRLAB_STATIC", "1")


def ramp(shape):
    """An image whose every voxel value is distinct (its flat index)."""
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def decode_frames(markup):
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            for _, data in FRAME.findall(markup)]


# ------------------------------------------------------------------ slices and widget state
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_current_slice_is_the_transposed_plane_along_the_axis(axis):
    img = ramp((7, 5, 4))
    viewer = VolumeViewer(img, axis=axis)
    assert viewer.slice_index == img.shape[axis] // 2
    for i in range(img.shape[axis]):
        viewer.slice_index = i
        expected = np.take(img, i, axis=axis).T
        np.testing.assert_array_equal(viewer.current_slice(), expected)
    if axis == 2:
        np.testing.assert_array_equal(viewer.current_slice(), img[:, :, 3].T)


def test_properties_and_widgets_stay_in_sync(live):
    img = ramp((7, 5, 4))
    viewer = VolumeViewer(img)
    ctl = viewer.controls
    assert set(ctl) == {"image", "axis", "slice", "window", "level"}
    assert (ctl["slice"].min, ctl["slice"].max, ctl["slice"].value) == (0, 3, 2)

    viewer.slice_index = 1  # property → widget
    assert ctl["slice"].value == 1
    ctl["slice"].value = 3  # widget → property
    assert viewer.slice_index == 3
    np.testing.assert_array_equal(viewer.current_slice(), img[:, :, 3].T)

    png_before = ctl["image"].value
    ctl["axis"].value = 0  # new axis: slider range follows, middle slice
    assert viewer.axis == 0 and viewer.slice_index == 3 and ctl["slice"].max == 6
    np.testing.assert_array_equal(viewer.current_slice(), img[3].T)
    assert ctl["image"].value != png_before  # the picture was redrawn

    viewer.axis = 1
    assert ctl["axis"].value == 1 and ctl["slice"].max == 4 and ctl["slice"].value == 2
    np.testing.assert_array_equal(viewer.current_slice(), img[:, 2, :].T)
    # The displayed PNG is the rendered array.
    shown = np.asarray(Image.open(io.BytesIO(ctl["image"].value)).convert("RGB"))
    np.testing.assert_array_equal(shown, viewer.render())

    viewer.window, viewer.level = 40.0, 70.0
    assert (ctl["window"].value, ctl["level"].value) == (40.0, 70.0)
    ctl["level"].value = 80.0
    assert viewer.level == 80.0


def test_4d_has_time_slider_linked_to_play_and_3d_has_none(live):
    img = ramp((6, 5, 3, 8))
    viewer = VolumeViewer(img)
    ctl = viewer.controls
    assert {"time", "play"} <= set(ctl)
    link = viewer._widgets["link"]
    assert link.source == (ctl["play"], "value") and link.target == (ctl["time"], "value")
    assert (ctl["time"].max, ctl["play"].max) == (7, 7)
    ctl["time"].value = 5
    assert viewer.time_index == 5
    np.testing.assert_array_equal(viewer.current_slice(), img[:, :, 1, 5].T)
    viewer.time_index = 2
    assert ctl["time"].value == 2
    np.testing.assert_array_equal(viewer.current_slice(), img[:, :, 1, 2].T)

    three_d = VolumeViewer(img[..., 0])
    assert "time" not in three_d.controls and "play" not in three_d.controls
    assert three_d.time_count == 1


def test_2d_image_has_no_slice_controls(live):
    img = ramp((6, 4))
    viewer = VolumeViewer(img)
    assert {"slice", "axis", "time"}.isdisjoint(viewer.controls)
    np.testing.assert_array_equal(viewer.current_slice(), img.T)


def test_channel_dropdown_only_for_several_channels(live):
    t1, flair = ramp((5, 4, 3)), 1000.0 - 2.0 * ramp((5, 4, 3))
    single = VolumeViewer(t1)
    assert "channel" not in single.controls

    viewer = VolumeViewer({"T1": t1, "FLAIR": flair})
    ctl = viewer.controls
    assert ctl["channel"].options == ("T1", "FLAIR")
    t1_window = viewer.window
    viewer.channel = "FLAIR"
    assert ctl["channel"].value == "FLAIR"
    np.testing.assert_array_equal(viewer.current_slice(), flair[:, :, 1].T)
    # Each channel keeps its own window, from its own percentiles.
    p1, p99 = np.percentile(flair, [1, 99])
    assert viewer.window == pytest.approx(p99 - p1)
    assert ctl["window"].value == pytest.approx(p99 - p1)
    ctl["channel"].value = "T1"
    assert viewer.channel == "T1" and viewer.window == t1_window
    viewer.channel = 1
    assert viewer.channel == "FLAIR"

    listed = VolumeViewer([t1, flair], channel_names=["a", "b"])
    assert listed.channel_names == ["a", "b"]


# ------------------------------------------------------------------ rendering
def test_window_level_maps_known_values_to_grey_levels():
    values = np.array([[-10.0, 0.0, 25.0], [50.0, 100.0, 130.0]])  # (X=2, Y=3)
    viewer = VolumeViewer(values, window=100.0, level=50.0, display_size=1)
    rgb = viewer.render()
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 2, 3)
    # g = clip((x - (level - window/2)) / window, 0, 1), grey = floor(255 g + 0.5)
    expected = {(0, 0): 0, (0, 1): 0, (0, 2): 64, (1, 0): 128, (1, 1): 255, (1, 2): 255}
    rows = rgb.shape[0]
    for (x, y), grey in expected.items():
        assert tuple(rgb[rows - 1 - y, x]) == (grey, grey, grey)  # origin lower left
    viewer.window = 200.0
    assert tuple(viewer.render()[rows - 1 - 1, 0]) == (64, 64, 64)  # x=0, y=1: 0 → 0.25 → 64


def test_window_defaults_to_robust_percentiles_and_nan_is_black():
    rng = np.random.default_rng(0)
    img = rng.normal(100.0, 20.0, (16, 16, 5))
    img[0, 0, 2] = np.nan
    viewer = VolumeViewer(img)
    p1, p99 = np.nanpercentile(img, [1, 99])
    assert viewer.window == pytest.approx(p99 - p1)
    assert viewer.level == pytest.approx((p99 + p1) / 2)
    assert tuple(viewer.render()[-1, 0]) == (0, 0, 0)


def test_overlay_blends_label_colour_by_opacity(live):
    img = np.full((4, 3, 2), 50.0)
    labels = np.zeros((4, 3, 2), dtype=np.int16)
    labels[2, 1, :] = 2
    viewer = VolumeViewer(img, labels, window=100.0, level=50.0, label_colors={2: "red"},
                          opacity=0.0, display_size=1)
    np.testing.assert_array_equal(viewer.current_labels(), labels[:, :, 1].T)
    rows = viewer.render().shape[0]
    pixel = (rows - 1 - 1, 2)  # x=2, y=1
    assert tuple(viewer.render()[pixel]) == (128, 128, 128)
    viewer.opacity = 1.0
    assert tuple(viewer.render()[pixel]) == (255, 0, 0)
    assert tuple(viewer.render()[rows - 1, 0]) == (128, 128, 128)  # background untouched
    viewer.controls["opacity"].value = 0.5
    assert viewer.opacity == 0.5
    # (1 - a) grey + a colour, rounded: 0.5·128 + 0.5·255 = 191.5 → 192; 0.5·128 = 64
    assert tuple(viewer.render()[pixel]) == (192, 64, 64)


def test_legend_lists_label_values_present_with_names_and_colours(live):
    labels = np.zeros((6, 6, 3), dtype=np.uint8)
    labels[1, 1, 0], labels[4, 4, 2] = 1, 3
    viewer = VolumeViewer(np.ones((6, 6, 3)), labels,
                          label_names={1: "RV", 2: "MYO", 3: "LV"}, label_colors={3: "#00ff00"})
    assert viewer.legend_entries == [(1, "RV", _render.LABEL_PALETTE[0]), (3, "LV", "#00ff00")]
    legend = viewer.controls["legend"].value
    assert "RV" in legend and "LV" in legend and "MYO" not in legend
    assert "#00ff00" in legend and _render.LABEL_PALETTE[0] in legend
    unnamed = VolumeViewer(np.ones((6, 6, 3)), labels)
    assert [name for _, name, _ in unnamed.legend_entries] == ["label 1", "label 3"]


def test_spacing_sets_aspect_by_pixel_repetition():
    img = ramp((4, 3, 2))
    viewer = VolumeViewer(img, spacing=(1.0, 2.0, 5.0), display_size=1)
    assert viewer.render().shape == (6, 4, 3)  # y voxels are twice as tall
    viewer.axis = 0  # plane (y, z): 2 mm across, 5 mm up
    assert viewer.render().shape == (5, 3, 3)
    big = VolumeViewer(img, display_size=40)  # enlarged by a whole factor: 4 × 10 = 40
    assert big.render().shape == (30, 40, 3)
    small = VolumeViewer(img, display_size=1).render()
    np.testing.assert_array_equal(big.render()[::10, ::10], small)


def test_accepts_torch_tensors_and_float_labels_with_whole_values():
    torch = pytest.importorskip("torch")
    img = torch.arange(60, dtype=torch.float32).reshape(5, 4, 3)
    labels = np.zeros((5, 4, 3))
    labels[0, 0, 1] = 2.0  # as nibabel's get_fdata returns label maps
    viewer = VolumeViewer(img, labels)
    np.testing.assert_array_equal(viewer.current_slice(), img.numpy()[:, :, 1].T)
    assert [v for v, _, _ in viewer.legend_entries] == [2]


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        ((np.zeros(5),), {}, "2D (X, Y)"),
        ((np.zeros((2, 2, 2, 2, 2)),), {}, "4D"),
        ((np.zeros((0, 4, 4)),), {}, "empty"),
        ((np.full((3, 3), np.nan),), {}, "no finite value"),
        ((np.zeros((3, 3), dtype=complex),), {}, "complex"),
        ((np.zeros((4, 4, 2)), np.zeros((4, 4, 3), int)), {}, "does not match"),
        ((np.zeros((4, 4)), np.full((4, 4), 0.5)), {}, "non-integer"),
        ((np.zeros((4, 4)), np.full((4, 4), -1)), {}, ">= 0"),
        (({"T1": np.zeros((4, 4)), "T2": np.zeros((4, 5))},), {}, "same shape"),
        (({},), {}, "empty dict"),
        (({"T1": np.zeros((4, 4))},), {"channel_names": ["x"]}, "channel_names"),
        (([np.zeros((4, 4))] * 2,), {"channel_names": ["x"]}, "channel_names"),
        ((np.zeros((4, 4, 4)),), {"axis": 3}, "axis"),
        ((np.zeros((4, 4)),), {"axis": 0}, "axis must be 2"),
        ((np.zeros((4, 4, 4)),), {"spacing": (1.0, 1.0)}, "spacing"),
        ((np.zeros((4, 4, 4)),), {"spacing": (1.0, -1.0, 1.0)}, "positive"),
        ((np.zeros((4, 4, 4)),), {"opacity": 1.5}, "opacity"),
        ((np.zeros((4, 4, 4)),), {"window": 0.0}, "window"),
        ((np.zeros((4, 4, 4)),), {"cmap": "no-such-map"}, "cmap"),
        ((np.zeros((4, 4)), np.ones((4, 4), int)), {"label_colors": {1: "nope"}}, "label_colors"),
    ],
)
def test_bad_input_raises_argument_error(args, kwargs, words):
    with pytest.raises(ArgumentError, match=re.escape(words)):
        VolumeViewer(*args, **kwargs)


def test_bad_state_values_raise_argument_error():
    viewer = VolumeViewer({"T1": np.zeros((4, 5, 6)), "T2": np.ones((4, 5, 6))})
    with pytest.raises(ArgumentError, match="slice_index"):
        viewer.slice_index = 6
    with pytest.raises(ArgumentError, match="time_index"):
        viewer.time_index = 1
    with pytest.raises(ArgumentError, match="channel"):
        viewer.channel = "FLAIR"
    with pytest.raises(ArgumentError, match="window"):
        viewer.window = -1.0
    with pytest.raises(ArgumentError, match="axis"):
        viewer.axis = True


# ------------------------------------------------------------------ static fallback
def test_to_html_embeds_evenly_spread_frames_first_and_last_included():
    img = np.zeros((20, 16, 50), dtype=np.float32)
    img[:, :, 0] = img[:, :, -1] = 1.0  # only the first and last slices are white
    viewer = VolumeViewer(img, window=1.0, level=0.5, title="Bright ends & <tags>")
    assert viewer.frame_indices(10) == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49]
    markup = viewer.to_html(max_frames=10)
    assert [int(i) for i, _ in FRAME.findall(markup)] == list(range(10))
    assert "Bright ends &amp; &lt;tags&gt;" in markup
    frames = decode_frames(markup)
    white = [int((f.min(axis=2) > 250).sum()) for f in frames]
    # Panel pixels are white in the first and last frame, black in between (the figure's
    # white margins are the same in every frame; only the caption text differs).
    assert abs(white[0] - white[-1]) < 200
    assert all(white[0] > w + 1000 for w in white[1:-1])


def test_to_html_frames_for_4d_and_channels_and_size():
    rng = np.random.default_rng(1)
    cine = rng.normal(size=(32, 32, 3, 12)).astype(np.float32)
    viewer = VolumeViewer(cine)
    assert viewer.frame_indices(40) == list(range(12))
    assert len(FRAME.findall(viewer.to_html())) == 12
    assert len(FRAME.findall(VolumeViewer(cine[:, :, 0, 0]).to_html())) == 1

    # A noisy ellipsoid "head" in three contrasts, with a "lesion" label, 40 of 120 slices.
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (120, 144, 80)), indexing="ij")
    r = np.sqrt(x**2 + (y / 1.1) ** 2 + (z / 0.9) ** 2)
    head = np.where(r < 0.9, 1.0 - 0.4 * r, 0.0)
    brain = {name: gain * head + rng.normal(0, 0.03, head.shape).astype(np.float32)
             for name, gain in (("T1", 1.0), ("T2", 0.6), ("FLAIR", 0.8))}
    labels = (np.abs(r - 0.5) < 0.05).astype(np.uint8)
    markup = VolumeViewer(brain, labels, label_names={1: "lesion"}).to_html(max_frames=40)
    frames = decode_frames(markup)
    assert len(frames) == 40
    assert frames[0].shape[1] > 2.5 * frames[0].shape[0]  # three panels side by side
    assert len(markup) < 3_000_000  # noisy frames are the worst case for PNG
    with pytest.raises(ArgumentError, match="max_frames"):
        viewer.to_html(max_frames=1)


def test_show_volume_in_static_build_returns_html_and_builds_no_widget(static, monkeypatch):
    from IPython.display import HTML

    shown = []
    monkeypatch.setattr(volume_mod, "display", lambda obj, **kw: shown.append(obj))

    def no_widgets(self):
        raise AssertionError("a widget was built during a static build")

    monkeypatch.setattr(VolumeViewer, "_build_widgets", no_widgets)
    result = show_volume(np.zeros((8, 8, 4)), title="static one", max_frames=3)
    assert isinstance(result, HTML) and not isinstance(result, VolumeViewer)
    assert shown == [result]
    assert "static one" in result.data and len(FRAME.findall(result.data)) == 3


def test_show_volume_live_returns_viewer_displayed_once_per_cell(live, monkeypatch):
    shown = []
    monkeypatch.setattr(volume_mod, "display", lambda obj, **kw: shown.append(obj))
    cell = {"count": 7}
    monkeypatch.setattr(volume_mod, "_execution_count", lambda: cell["count"])
    viewer = show_volume(np.zeros((8, 8, 4)))
    assert isinstance(viewer, VolumeViewer)
    assert shown == [viewer]
    viewer._ipython_display_()  # Jupyter showing the cell's value: swallowed
    assert shown == [viewer]
    viewer._ipython_display_()  # an explicit display afterwards shows it
    assert shown == [viewer, viewer.widget]
    cell["count"] = 8
    viewer._ipython_display_()
    assert shown[-1] is viewer.widget and len(shown) == 3


# ------------------------------------------------------------------ training monitor
def test_monitor_records_history_and_plots_it(live):
    mon = TrainingMonitor(title="run", live=False)
    mon.update(1, loss=0.9, val_loss=1.0)
    mon.update(loss=0.5, val_loss=float("nan"), val_dice=0.6)  # epoch 2; a new metric appears
    mon.update(loss=np.float32(0.25), val_loss=0.7, val_dice=0.8)
    assert mon.history["loss"] == [(1, 0.9), (2, 0.5), (3, 0.25)]
    assert mon.history["val_dice"] == [(2, 0.6), (3, 0.8)]
    assert np.isnan(mon.history["val_loss"][1][1])

    fig = mon.figure()
    loss_ax, metric_ax = fig.axes[:2]
    lines = {line.get_label(): line for line in loss_ax.lines}
    assert set(lines) == {"loss", "val_loss"}
    np.testing.assert_array_equal(lines["loss"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines["loss"].get_ydata(), [0.9, 0.5, 0.25])
    np.testing.assert_array_equal(lines["val_loss"].get_xdata(), [1, 3])  # NaN not drawn
    np.testing.assert_allclose(lines["val_loss"].get_ydata(), [1.0, 0.7])
    assert lines["loss"].get_color() == lines["val_loss"].get_color()
    assert lines["loss"].get_linestyle() == "-" and lines["val_loss"].get_linestyle() == "--"
    assert [line.get_label() for line in metric_ax.lines] == ["val_dice"]
    assert fig._suptitle.get_text() == "run"

    only = TrainingMonitor(["val_dice"], live=False)
    only.update(1, loss=0.3, val_dice=0.5)
    assert [ln.get_label() for ax in only.figure().axes for ln in ax.lines] == ["val_dice"]
    assert set(only.history) == {"loss", "val_dice"}


def test_monitor_in_static_build_shows_nothing_until_close(static, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(monitor_mod, "_in_ipython", lambda: True)
    with TrainingMonitor() as mon:
        assert mon.live is False
        for epoch in range(5):
            mon.update(epoch, loss=1.0 / (epoch + 1))
        assert shown == []
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
    assert shown[0].data.startswith(b"\x89PNG")
    mon.close()
    assert len(shown) == 1
    with pytest.raises(CmrlabError, match="closed"):
        mon.update(6, loss=0.1)


def test_monitor_live_redraws_in_place_every_n_updates(monkeypatch):
    import IPython.display

    class Handle:
        updates = 0

        def update(self, obj):
            Handle.updates += 1

    shown = []

    def fake_display(obj, display_id=False, **kw):
        shown.append(obj)
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    mon = TrainingMonitor(live=True, every=2)
    for epoch in range(1, 6):
        mon.update(epoch, loss=1.0 / epoch)
    assert len(shown) == 1 and Handle.updates == 1  # drawn after updates 2 and 4
    mon.close()
    assert len(shown) == 1 and Handle.updates == 2  # the final state, same output


def test_monitor_outside_ipython_is_not_live(live):
    mon = TrainingMonitor()
    assert mon.live is False  # pytest is not an IPython shell


def test_monitor_to_csv(tmp_path):
    mon = TrainingMonitor(live=False)
    mon.update(1, loss=0.5)
    mon.update(2, loss=0.25, val_dice=float("nan"))
    mon.update(3, val_dice=0.75)
    path = mon.to_csv(tmp_path / "logs" / "history.csv")
    assert path == tmp_path / "logs" / "history.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "loss", "val_dice"], ["1", "0.5", ""], ["2", "0.25", "nan"],
                    ["3", "", "0.75"]]
    assert os.listdir(tmp_path / "logs") == ["history.csv"]  # no temporary file left


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda m: m.update(1, loss="high"), "loss"),
        (lambda m: m.update(True, loss=0.1), "epoch"),
        (lambda m: m.update(1.5, loss=0.1), "epoch"),
        (lambda m: m.update(1), "at least one"),
    ],
)
def test_monitor_bad_updates(call, words):
    with pytest.raises(ArgumentError, match=words):
        call(TrainingMonitor(live=False))


def test_monitor_bad_arguments():
    with pytest.raises(ArgumentError, match="every"):
        TrainingMonitor(every=0)
    with pytest.raises(ArgumentError, match="metrics"):
        TrainingMonitor(metrics="loss")


# ------------------------------------------------------------------ progress bars
def test_progress_is_plain_text_on_stdout_in_static_build(static, capsys):
    import tqdm

    bar = progress(range(3), desc="static")
    assert type(bar) is tqdm.std.tqdm
    assert list(bar) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert "static" in out and "3/3" in out and err == ""


def test_progress_is_tqdm_auto_when_live(live):
    from tqdm.auto import tqdm as auto_tqdm

    bar = progress(total=4, file=io.StringIO())
    assert isinstance(bar, auto_tqdm)
    bar.update(4)
    bar.close()
    assert bar.n == 4
