"""The library pieces behind the ch. 6 and ch. 7 tasks: the long-cine synthetic variant, the frame
detector's options, the loss across frames, thresholded Dice, float maps with a reference's
geometry, and get_dataset's strict full profile."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch

from cmrlab.config import setup
from cmrlab.data.acdc import read_patient
from cmrlab.data.datasets import get_dataset, synthetic_folder
from cmrlab.data.io import save_map_like
from cmrlab.errors import ArgumentError, CmrlabError
from cmrlab.nn.losses import FrameCrossEntropyLoss, frame_cross_entropy
from cmrlab.nn.metrics import largest_component, thresholded_dice
from cmrlab.nn.models.frame_detector import FrameDetector
from cmrlab.nn.models.regression_unet import RegressionUNet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def long_cines(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, get_dataset("acdc", data_root=root, synthetic=True, n_cases=4, seed=3, variant="long-cines",
                             progress=False)


def test_long_cines_have_thesis_frame_counts_and_ed_anywhere(long_cines):
    root, location = long_cines
    assert location.variant == "long-cines" and "long-cines" in location.path.name
    assert location.path == synthetic_folder("acdc", 4, 3, root, "fast", "long-cines")
    eds = []
    for folder in location.cases():
        p = read_patient(folder)                           # checks the ED/ES files are those 4-D frames
        assert 20 <= p.n_frames <= 35 and p.image4d.shape[:2] == (96, 96)
        delay = p.truth["params"]["trigger_delay"]
        assert p.ed - 1 == delay % p.n_frames                # the phantom's ED (frame 0) rolled by the delay
        lv = np.asarray(p.truth["volumes_ml"]["LV"])
        assert int(np.argmax(lv)) == p.ed - 1 and int(np.argmin(lv)) == p.es - 1
        labels = p.all_frame_labels
        assert np.array_equal(labels[..., p.ed - 1], p.ed_labels)
        eds.append(p.ed - 1)
    assert len(set(eds)) > 1


def test_variants_and_the_strict_full_profile(tmp_path):
    with pytest.raises(ArgumentError, match="did you mean 'long-cines'"):
        get_dataset("acdc", data_root=tmp_path, synthetic=True, n_cases=1, variant="long-cine")
    with pytest.raises(ArgumentError, match="no variants"):
        get_dataset("mnms", data_root=tmp_path, synthetic=True, n_cases=1, variant="long-cines")
    run = setup(profile="full", seed=0, device="cpu", data_root=tmp_path)
    with pytest.raises(CmrlabError, match=r"is not under the data root: .*ACDC does not exist"):
        get_dataset("acdc", run=run, fallback=False)
    assert not any(tmp_path.iterdir())                       # nothing generated


def test_frame_detector_options():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 40, 16, 16)                        # the widest path reaches 12 frames each way
    plain = FrameDetector(base_filters=2, levels=2, image_size=16)
    circular = FrameDetector(base_filters=2, levels=2, image_size=16, temporal_padding="circular")
    circular.load_state_dict(plain.state_dict())             # same weights: only the padding differs
    plain.eval(), circular.eval()
    a, b = plain(x), circular(x)
    assert a.shape == b.shape == (2, 3, 40) and torch.allclose(a.sum(1), torch.ones(2, 40))
    assert torch.allclose(a[..., 12:28], b[..., 12:28], atol=1e-6)      # frames 12-27 see no padding
    assert not torch.allclose(a[..., 0], b[..., 0])
    # circular padding is periodic: rolling the input rolls the output
    assert torch.allclose(circular(torch.roll(x, 3, dims=2)), torch.roll(b, 3, dims=2), atol=1e-5)
    frames = FrameDetector(base_filters=2, levels=2, image_size=16, head="frames")
    out = frames(x)
    assert out.shape == (2, 2, 40) and torch.allclose(out.sum(2), torch.ones(2, 2))
    assert frames.classes == ("ES", "ED") and FrameDetector.classes == ("ES", "ED", "background")
    for kwargs, pattern in (({"temporal_padding": "reflect"}, "temporal_padding"), ({"head": "softmax"}, "head"),
                            ({"bn_momentum": 1.5}, "bn_momentum")):
        with pytest.raises(ArgumentError, match=pattern):
            FrameDetector(base_filters=2, levels=2, image_size=16, **kwargs)
    assert sum(p.numel() for p in FrameDetector(temporal_padding="circular").parameters()) == 4_692_642


def test_regression_unet_trainable_scanner_is_an_ablation_only():
    fixed = RegressionUNet(base_filters=2, depth=2, area_kernel=5)
    trainable = RegressionUNet(base_filters=2, depth=2, area_kernel=5, trainable_scanner=True)
    n_fixed = sum(p.numel() for p in fixed.parameters())
    assert sum(p.numel() for p in trainable.parameters()) == n_fixed + 25
    assert "scanner.area_weight" not in fixed.state_dict() and "scanner.area_weight" in trainable.state_dict()
    assert sum(p.numel() for p in fixed.scanner.parameters()) == 0
    with pytest.raises(ArgumentError, match="bn_momentum"):
        RegressionUNet(base_filters=2, depth=2, area_kernel=5, bn_momentum=-0.1)


def test_frame_cross_entropy_matches_its_definition():
    logits = torch.randn(3, 2, 9, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([[1, 4], [0, 8], [5, 2]])
    log_p = logits.log_softmax(dim=2)
    expected = -(log_p.gather(2, index[..., None]).squeeze(2)).sum(1)
    assert torch.allclose(frame_cross_entropy(logits, index, reduction="none"), expected)
    one_hot = torch.zeros(3, 3, 9)
    for n, (es, ed) in enumerate(index.tolist()):
        one_hot[n, 0, es] = one_hot[n, 1, ed] = 1
    one_hot[:, 2] = 1 - one_hot[:, :2].sum(1)
    assert torch.isclose(FrameCrossEntropyLoss()(logits, one_hot), expected.mean())
    assert torch.isclose(FrameCrossEntropyLoss(activation="none")(logits.softmax(2), one_hot), expected.mean(), atol=1e-5)
    logits.requires_grad_(True)
    frame_cross_entropy(logits, index).backward()
    assert torch.allclose(logits.grad.sum(2), torch.zeros(3, 2), atol=1e-6)     # softmax gradients sum to 0
    with pytest.raises(ArgumentError, match="frame indices"):
        frame_cross_entropy(logits.detach(), index.float())
    with pytest.raises(ArgumentError, match=r"\(N, E, T\)"):
        frame_cross_entropy(logits.detach()[0], index)


def test_thresholded_dice_and_largest_component():
    mask = np.zeros((10, 10, 3), bool)
    mask[2:6, 2:6, :] = True
    cam = np.zeros((10, 10, 3))
    cam[2:6, 2:6, :] = 0.95
    cam[8, 8, 0] = 1.0                                        # a stray voxel: not the largest object
    assert largest_component(cam > 0.9).sum() == 48
    assert thresholded_dice(cam, mask) == 1.0
    assert thresholded_dice(cam, mask, largest_component=False) == pytest.approx(2 * 48 / (49 + 48))
    grown = thresholded_dice(cam, mask, dilation=(3, 3, 1))
    assert grown == pytest.approx(2 * 48 / (6 * 6 * 3 + 48))
    assert thresholded_dice(np.zeros((4, 4)), np.zeros((4, 4), bool)) == 1.0
    with pytest.raises(ArgumentError):
        thresholded_dice(cam, mask[..., :2])
    with pytest.raises(ArgumentError, match="dilation"):
        thresholded_dice(cam, mask, dilation=(3, 3))
    with pytest.raises(ArgumentError, match="finite"):
        thresholded_dice(cam, mask, threshold=math.nan)


def test_save_map_like_keeps_the_geometry_and_refuses_bad_values(tmp_path):
    affine = np.array([[0, -1.5, 0, 10], [1.5, 0, 0, -4], [0, 0, 8, 2], [0, 0, 0, 1.0]])
    ref = nib.Nifti1Image(np.zeros((6, 5, 4), np.int16), affine)
    ref.set_qform(affine, code=1)
    values = np.random.default_rng(0).random((6, 5, 4))
    path = save_map_like(values, ref, tmp_path / "cam.nii.gz")
    back = nib.load(path)
    assert back.get_data_dtype() == np.float32 and np.allclose(back.affine, affine)
    assert int(back.header["qform_code"]) == 1 and np.allclose(np.asarray(back.dataobj), values, atol=1e-6)
    bad = values.copy()
    bad[0, 0, 0] = np.nan
    for data, pattern in ((bad, "finite"), (values[:, :, :3], "shape"), (values.astype(complex), "finite real")):
        with pytest.raises(ArgumentError, match=pattern):
            save_map_like(data, ref, tmp_path / "bad.nii.gz")
    with pytest.raises(CmrlabError):
        save_map_like(values, ref, tmp_path / "cam.mha")
    assert not (tmp_path / "bad.nii.gz").exists()


def test_cli_writes_a_synthetic_variant_and_names_a_wrong_one(tmp_path, capsys):
    from cmrlab.cli import main

    assert main(["data", "synth", "acdc", "--cases", "1", "--variant", "long-cines", "--out", str(tmp_path / "a")]) == 0
    assert "(long-cines)" in capsys.readouterr().out
    patient = read_patient(next((tmp_path / "a").glob("database/*/patient*")))
    assert 20 <= patient.n_frames <= 35
    assert main(["data", "synth", "acdc", "--cases", "1", "--variant", "short", "--out", str(tmp_path / "b")]) == 2
    assert "has the variants long-cines" in capsys.readouterr().err and not (tmp_path / "b").exists()
