"""The U-Net border weight map w(x) = w_c(x) + w0·exp(−(d1 + d2)²/(2σ²))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.nn.losses import BORDER_SIGMA, BORDER_W0, border_weight_map, cross_entropy


def _two_squares(gap: int):
    labels = np.zeros((30, 40), np.int64)
    labels[10:20, 5:15] = 1
    labels[10:20, 15 + gap:25 + gap] = 1
    return labels


def test_weight_between_two_objects_follows_the_formula():
    gap = 3
    labels = _two_squares(gap)
    w = border_weight_map(labels)
    assert (BORDER_W0, BORDER_SIGMA) == (10.0, 5.0)       # Ronneberger et al. 2015
    # a background pixel in the gap, row 15: d1 = distance to the left square, d2 to the right one
    for col in range(15, 15 + gap):
        d1, d2 = col - 14, 15 + gap - col
        expected = 1.0 + 10.0 * np.exp(-((d1 + d2) ** 2) / (2 * 25.0))
        assert w[15, col] == pytest.approx(expected, rel=1e-6)
    # inside the objects only w_c (= 1) with background_only; far away the border term vanishes
    assert np.all(w[labels == 1] == 1.0)
    assert w[0, 0] == pytest.approx(1.0, abs=1e-4)
    # the narrower the gap, the larger the weight in it
    assert border_weight_map(_two_squares(1))[15, 15] > border_weight_map(_two_squares(6))[15, 17]


def test_one_object_has_no_border_term_and_all_pixels_option():
    labels = np.zeros((20, 20), np.int64)
    labels[5:10, 5:10] = 2
    np.testing.assert_array_equal(border_weight_map(labels), 1.0)
    everywhere = border_weight_map(_two_squares(2), background_only=False)
    # inside the left square, next to the gap: d1 = 0, d2 = distance to the right square
    assert everywhere[15, 14] == pytest.approx(1.0 + 10.0 * np.exp(-(3**2) / 50.0), rel=1e-6)


def test_touching_labels_are_separate_objects_and_balanced_weights():
    labels = np.zeros((20, 30), np.int64)
    labels[5:15, 5:14] = 1
    labels[5:15, 14:22] = 2                                  # touches label 1
    w = border_weight_map(labels, class_weights="balanced")
    counts = np.bincount(labels.ravel())
    balanced = labels.size / (3 * counts)
    np.testing.assert_allclose(w[labels > 0], balanced[labels[labels > 0]], rtol=1e-6)
    # background just above label 2's corner at the contact line: d1 = 1 (label 2), d2 = √2
    # (label 1's corner, one row down and one column left) → w_c + w0·exp(−(1 + √2)²/50)
    assert w[4, 14] == pytest.approx(balanced[0] + 10.0 * np.exp(-((1 + np.sqrt(2)) ** 2) / 50.0), rel=1e-5)
    fixed = border_weight_map(labels, class_weights=(0.5, 2.0, 3.0), w0=0.0)
    np.testing.assert_allclose(fixed, np.array([0.5, 2.0, 3.0])[labels])


def test_grouped_labels_are_one_object():
    labels = np.zeros((40, 40), np.int64)
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(yy - 20, xx - 24)
    labels[r <= 9] = 2                                       # a wall ...
    labels[r <= 6] = 3                                       # ... around a cavity
    labels[(np.hypot(yy - 20, xx - 8) <= 5)] = 1             # a separate structure 2 px away
    separate = border_weight_map(labels)
    grouped = border_weight_map(labels, objects=((1,), (2, 3)))
    outer = (labels == 0) & (np.abs(r - 10) < 0.5) & (xx > 30)   # just outside the wall, far side
    # separately, the cavity 4 px inside the wall is a "second border" all around the wall
    assert separate[outer].min() > 4                         # (1 + 10·exp(−(d1 + d2)²/50), d1 + d2 ≈ 5–7 px)
    assert np.allclose(grouped[outer], 1.0, atol=0.05)       # grouped: only the gap to label 1 counts
    gap = (labels == 0) & (xx > 12) & (xx < 16) & (np.abs(yy - 20) < 1)
    assert grouped[gap].min() > 7
    with pytest.raises(ArgumentError, match="twice"):
        border_weight_map(labels, objects=((1, 2), (2, 3)))


def test_weight_map_feeds_cross_entropy():
    labels = _two_squares(2)
    w = torch.from_numpy(border_weight_map(labels))[None]
    logits = torch.zeros(1, 2, *labels.shape)
    target = torch.from_numpy(labels)[None]
    # uniform predictions: every pixel costs log 2, so any weighted mean is log 2
    assert float(cross_entropy(logits, target, weight_map=w)) == pytest.approx(np.log(2), rel=1e-6)
    logits[0, 1] = 2.0                                       # says "object" everywhere
    plain = cross_entropy(logits, target)
    weighted = cross_entropy(logits, target, weight_map=w)
    assert float(weighted) > float(plain)                    # the gap pixels are wrong and weigh more


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="2D or 3D"):
        border_weight_map(np.zeros(5, np.int64))
    with pytest.raises(ArgumentError, match="integers"):
        border_weight_map(np.zeros((4, 4)))
    with pytest.raises(ArgumentError, match=">= 0"):
        border_weight_map(-np.ones((4, 4), np.int64))
    with pytest.raises(ArgumentError, match="sigma"):
        border_weight_map(np.zeros((4, 4), np.int64), sigma=0)
    with pytest.raises(ArgumentError, match="one weight per label"):
        border_weight_map(_two_squares(2), class_weights=(1.0,))
