"""Tests of cmrlab.data.patches: windows and their exact reassembly, batching, augmentation, patches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cmrlab.data.patches import (
    PairedAugment,
    RandomPatchDataset,
    SameShapeBatchSampler,
    SliceWindowDataset,
    assemble_windows,
    augmentation_plan,
    random_patches,
    slice_windows,
    window_starts,
)
from cmrlab.errors import ArgumentError


def test_window_starts_and_thesis_count():
    assert window_starts(10) == list(range(8))
    assert window_starts(3) == [0]
    assert window_starts(10, size=3, stride=4) == [0, 4, 7]          # a last window covers slice 9
    # 260 volumes of 8-14 slices with stride 1: Z - 2 windows each (2045 in the thesis for its volumes)
    slices = [8, 9, 10, 11, 12, 13, 14] * 37 + [10]
    assert sum(len(window_starts(z)) for z in slices) == sum(z - 2 for z in slices)
    with pytest.raises(ArgumentError, match="too thin"):
        window_starts(2)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_windows_of_an_identity_model_reassemble_to_the_volume(as_tensor):
    rng = np.random.default_rng(0)
    volume = rng.random((6, 5, 9))
    if as_tensor:
        volume = torch.from_numpy(volume)
    windows, index = slice_windows(volume)
    assert windows.shape == (7, 3, 6, 5) and index.shape == (7, 3)
    for n, k in [(0, 0), (3, 1), (6, 2)]:
        assert np.array_equal(np.asarray(windows[n, k]), np.asarray(volume[:, :, index[n, k]]))
    out, counts = assemble_windows(windows, 9, index, return_counts=True)
    assert type(out) is type(volume)
    np.testing.assert_allclose(np.asarray(out), np.asarray(volume), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.asarray(counts), [1, 2, 3, 3, 3, 3, 3, 2, 1])
    # with a class axis, as a model outputs (N, C, 3, X, Y); stride 2 adds the final window
    windows2, index2 = slice_windows(volume, stride=2)
    probs = torch.stack([torch.as_tensor(windows2), 1 - torch.as_tensor(windows2)], 1)
    merged = assemble_windows(probs, 9, index2)
    assert merged.shape == (2, 6, 5, 9)
    torch.testing.assert_close(merged[0], torch.as_tensor(volume), rtol=0, atol=1e-12)


def test_assembly_averages_overlapping_windows():
    # window n predicts the constant n: slice z gets the mean of the windows that hold it
    preds = torch.arange(4, dtype=torch.float64)[:, None, None, None].expand(4, 3, 2, 2)
    out = assemble_windows(preds, 6)
    np.testing.assert_allclose(out[0, 0].numpy(), [0, 0.5, 1, 2, 2.5, 3])
    with pytest.raises(ArgumentError, match="index"):
        assemble_windows(preds, 6, np.zeros((3, 3), int))
    with pytest.raises(ArgumentError, match="in no window"):
        assemble_windows(preds[:2], 6, np.array([[0, 1, 2], [1, 2, 3]]))


def test_slice_window_dataset_items_and_loader():
    vols = [np.random.default_rng(i).random((8, 8, z)).astype(np.float32) for i, z in enumerate((5, 4))]
    labs = [(v > 0.5).astype(np.uint8) for v in vols]
    ds = SliceWindowDataset(vols, labs)
    assert len(ds) == 3 + 2 and ds.index[3] == (1, 0)
    image, label = ds[4]
    assert image.shape == (1, 3, 8, 8) and image.dtype == torch.float32
    assert label.shape == (3, 8, 8) and label.dtype == torch.int64
    np.testing.assert_array_equal(image[0, 2].numpy(), vols[1][:, :, 3])
    np.testing.assert_array_equal(label[1].numpy(), labs[1][:, :, 2])
    batches = list(DataLoader(ds, batch_size=2))
    assert batches[0][0].shape == (2, 1, 3, 8, 8)
    with pytest.raises(ArgumentError, match="integers"):
        SliceWindowDataset(vols, [v.astype(np.float32) for v in labs])


def test_same_shape_batch_sampler_buckets_and_is_deterministic():
    shapes = [(1, 10)] * 5 + [(1, 12)] * 3 + [(1, 10)] * 2          # 7 and 3 items of two shapes
    sampler = SameShapeBatchSampler(shapes, 3, seed=7)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 1
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert all(len({shapes[i] for i in b}) == 1 for b in batches)
    assert batches == list(SameShapeBatchSampler(shapes, 3, seed=7))   # same seed, same epoch
    sampler.set_epoch(1)
    assert list(sampler) != batches                                     # a new epoch reshuffles
    sampler.set_epoch(0)
    assert list(sampler) == batches
    ordered = SameShapeBatchSampler(shapes, 3, shuffle=False, drop_last=True)
    assert list(ordered) == [[0, 1, 2], [3, 4, 8], [5, 6, 7]] and len(ordered) == 3
    ds = SliceWindowDataset([np.zeros((4, 4, 5)), np.zeros((6, 6, 4))])
    assert {len({ds.item_shapes[i] for i in b}) for b in SameShapeBatchSampler(ds, 2)} == {1}


def test_paired_augment_moves_image_and_labels_together():
    # labels are the image's own thresholded copy: after the shared transform they still agree
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc = (((rows - 12) ** 2 + (cols - 20) ** 2) < 36).float()
    images = disc.expand(4, 1, 3, 32, 32).clone()
    labels = disc.long().expand(4, 3, 32, 32).clone()
    out, lab = PairedAugment()(images, labels, generator=torch.Generator().manual_seed(3))
    assert out.shape == images.shape and lab.dtype == torch.int64
    assert not torch.equal(lab, labels)                                   # it did move
    assert ((out[:, 0] > 0.5).long() != lab).float().mean() < 0.01            # image and labels aligned
    assert torch.equal(lab[:, 0], lab[:, 1]) and torch.equal(lab[:, 1], lab[:, 2])   # same for the slices
    assert set(lab.unique().tolist()) <= {0, 1}
    again, _ = PairedAugment()(images, labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, out)
    single, single_lab = PairedAugment(seed=0)(images[0], labels[0])     # one dataset item
    assert single.shape == (1, 3, 32, 32) and single_lab.shape == (3, 32, 32)


def test_augmentation_plan_respects_max_uses():
    plan = augmentation_plan(2045, 6295, max_uses=4, seed=0)
    assert plan.shape == (6295,) and np.bincount(plan).max() <= 4 and plan.max() < 2045
    np.testing.assert_array_equal(plan, augmentation_plan(2045, 6295, max_uses=4, seed=0))
    with pytest.raises(ArgumentError, match="exceeds"):
        augmentation_plan(10, 41, max_uses=4)


def test_random_patches_positions_and_foreground_ratio():
    rng = np.random.default_rng(0)
    volume = rng.random((2, 40, 30, 20)).astype(np.float32)             # 2 modalities
    labels = np.zeros((40, 30, 20), np.uint8)
    labels[30:34, 3:6, 15:18] = 2                                         # a small labelled region
    patches, lab, starts = random_patches(volume, labels, (8, 8, 8), 200, foreground_ratio=1.0, rng=1)
    assert patches.shape == (200, 2, 8, 8, 8) and lab.shape == (200, 8, 8, 8)
    assert all((lab[i] > 0).any() for i in range(200))                   # every patch holds the label
    s = starts[17]
    np.testing.assert_array_equal(patches[17], volume[:, s[0]:s[0] + 8, s[1]:s[1] + 8, s[2]:s[2] + 8])
    assert starts.min() >= 0 and (starts <= np.array([32, 22, 12])).all()
    _, lab0, starts0 = random_patches(volume[0], labels, (8, 8, 8), 400, foreground_ratio=0.0, rng=2)
    assert (lab0.reshape(400, -1).max(1) > 0).mean() < 0.2                 # uniform: mostly empty
    assert set(starts0[:, 0]) == set(range(33))                           # every start is reachable
    a = random_patches(torch.from_numpy(volume), torch.from_numpy(labels), (8, 8, 8), 3, rng=5)
    b = random_patches(volume, labels, (8, 8, 8), 3, rng=5)
    assert isinstance(a[0], torch.Tensor) and np.array_equal(a[0].numpy(), b[0])
    with pytest.raises(ArgumentError, match="larger"):
        random_patches(volume, labels, (41, 8, 8), 1)


def test_random_patch_dataset_is_deterministic_per_epoch():
    rng = np.random.default_rng(0)
    vols = [rng.random((20, 20, 20)).astype(np.float32) for _ in range(2)]
    labs = [(v > 0.9).astype(np.uint8) for v in vols]
    ds = RandomPatchDataset(vols, labs, (8, 8, 8), samples_per_volume=3, seed=4)
    assert len(ds) == 6
    image, label = ds[4]
    assert image.shape == (1, 8, 8, 8) and label.shape == (8, 8, 8) and label.dtype == torch.int64
    assert torch.equal(ds[4][0], image)
    ds.set_epoch(1)
    assert not torch.equal(ds[4][0], image)
