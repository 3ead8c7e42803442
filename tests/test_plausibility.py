"""Tests of cmrlab.nn.plausibility: each rule fires on the anatomy it describes, and only there."""
import numpy as np
import pytest
import torch

from cmrlab.errors import ArgumentError
from cmrlab.nn.plausibility import CRITERIA, anatomical_errors, count_anatomical_errors, is_plausible
from cmrlab.phantoms.heart2d import heart_slice_dataset


def heart(size: int = 40) -> np.ndarray:
    """A schematic short-axis slice: LV disc, closed myocardial ring, RV crescent on its left."""
    rows, cols = np.indices((size, size))
    r_lv = np.hypot(rows - 20, cols - 24)
    r_rv = np.hypot(rows - 20, cols - 12)
    labels = np.zeros((size, size), dtype=np.int64)
    labels[r_rv <= 9] = 1
    labels[r_lv <= 9] = 2
    labels[r_lv <= 5] = 3
    return labels


def broken(labels: np.ndarray, **kwargs) -> list[str]:
    return [name for name, value in anatomical_errors(labels, **kwargs).items() if value]


def test_schematic_heart_is_plausible_and_reports_every_criterion_in_order():
    errors = anatomical_errors(heart())
    assert list(errors) == list(CRITERIA) and len(CRITERIA) == 12
    assert not any(errors.values())
    assert is_plausible(heart()) and count_anatomical_errors(heart()) == 0


def test_missing_structure_breaks_only_its_rule():
    labels = heart()
    labels[labels == 1] = 0
    assert broken(labels) == ["missing_rv"]


def test_island_fragments_the_lv_unless_smaller_than_min_size():
    labels = heart()
    labels[2:4, 2:4] = 3                             # a 4-pixel LV island in the corner
    assert broken(labels) == ["fragmented_lv", "lv_touches_background"]
    assert broken(labels, min_size=5) == ["lv_touches_background"]
    assert count_anatomical_errors(labels) == 2


def test_diagonal_neighbours_are_one_component():
    labels = heart()
    labels[labels == 1] = 0
    labels[1, 1] = labels[2, 2] = labels[3, 3] = 1   # a diagonal line: one 8-connected RV piece
    assert "fragmented_rv" not in broken(labels)


def test_hole_in_the_lv():
    labels = heart()
    labels[20, 24] = 0
    assert broken(labels) == ["holes_in_lv", "lv_touches_background"]


def test_gap_between_cavity_and_wall_is_a_myocardial_hole():
    labels = heart()
    rows, cols = np.indices(labels.shape)
    labels[np.abs(np.hypot(rows - 20, cols - 24) - 5.5) < 0.5] = 0   # a background ring inside the wall
    assert "holes_in_myo" in broken(labels)
    assert "holes_in_lv" not in broken(labels)


def test_open_wall_lets_the_lv_touch_the_background():
    labels = heart()
    labels[19:22, 29:34] = 0                         # cut the lateral wall
    assert broken(labels) == ["lv_touches_background"]


def test_lv_through_the_septum_touches_the_rv():
    labels = heart()
    labels[19:22, 15:20][labels[19:22, 15:20] == 2] = 3
    assert "lv_touches_rv" in broken(labels)


def test_rv_away_from_the_septum_is_detached():
    labels = heart()
    labels[labels == 1] = 0
    labels[2:6, 2:6] = 1
    assert broken(labels) == ["rv_detached"]


def test_hole_in_the_rv():
    labels = heart()
    labels[20, 8] = 0                                # inside the RV crescent, away from the wall
    assert broken(labels) == ["holes_in_rv"]


def test_accepts_tensors_and_float_labels():
    labels = heart()
    assert is_plausible(torch.from_numpy(labels)) and is_plausible(labels.astype(np.float32))


@pytest.mark.parametrize("bad", [np.zeros((2, 8, 8), int), np.full((8, 8), 4), np.full((8, 8), -1),
                                 np.full((8, 8), 1.5), np.zeros((8, 8), bool), np.full((8, 8), np.nan)])
def test_bad_input_raises(bad):
    with pytest.raises(ArgumentError, match="labels"):
        anatomical_errors(bad)


@pytest.mark.parametrize("min_size", [0, 1.5, True])
def test_bad_min_size_raises(min_size):
    with pytest.raises(ArgumentError, match="min_size"):
        anatomical_errors(heart(), min_size=min_size)


def test_phantom_ground_truth_is_plausible_up_to_single_pixel_specks():
    labels = heart_slice_dataset(n_cases=6, frames_per_case=4, matrix=48, seed=0).labels
    assert all(is_plausible(m, min_size=3) for m in labels)
    for m in labels:                                 # the only strict failures: RV specks
        assert set(broken(m)) <= {"fragmented_rv"}
