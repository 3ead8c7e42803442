"""cmrlab.data.splits: a stratified order of cases (the thesis's split by disease)."""
from __future__ import annotations

from collections import Counter

import pytest

from cmrlab.data.splits import stratified_order
from cmrlab.errors import ArgumentError


def test_every_prefix_holds_the_groups_in_proportion():
    groups = ["NOR"] * 20 + ["DCM"] * 20 + ["HCM"] * 20 + ["MINF"] * 20 + ["RV"] * 20
    order = stratified_order(groups, seed=3)
    assert sorted(order) == list(range(100)) and order == stratified_order(groups, seed=3)
    for n in (5, 25, 50):                                  # e.g. the test part, then validation
        counts = Counter(groups[i] for i in order[:n])
        assert set(counts.values()) == {n // 5}, (n, counts)
    assert stratified_order(groups, seed=4) != order
    unequal = ["A"] * 6 + ["B"] * 3
    assert [unequal[i] for i in stratified_order(unequal, seed=1)[:3]] == ["A", "B", "A"]   # dealt in turn
    assert sorted(stratified_order(unequal, seed=1, stratify=False)) == list(range(9))
    assert stratified_order([], seed=0) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(groups="AAB"), "sequence"), (dict(groups=["A"], seed=-1), "seed"),
    (dict(groups=["A"], seed=1.5), "seed"), (dict(groups=["A"], stratify="yes"), "stratify"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        stratified_order(**kwargs)
