"""Splitting cases into training, validation and test sets, in proportion to their groups.

The cardiac thesis splits its 399 cases 65 / 10 / 25 % "stratified by disease" (ch. 5,
L3635-3648): every part gets the diagnostic groups in the proportions of the whole.
:func:`stratified_order` gives one order of the cases in which *every prefix* holds the groups in
proportion, so that taking the test cases first, then validation, then training from it
stratifies all three parts at once, for any sizes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmrlab.checks import check_bool, check_int
from cmrlab.errors import ArgumentError

__all__ = ["stratified_order"]


def stratified_order(groups: Sequence[str], seed: int = 0, stratify: bool = True) -> list[int]:
    """An order of the case numbers ``0 … n-1`` in which every prefix holds the groups in proportion.

    The cases of each group are shuffled with ``numpy.random.default_rng(seed)`` and the groups
    (sorted by name) are then dealt in turn, one case each, until all are used. ``stratify=False``
    gives a plain seeded shuffle.
    """
    seed = check_int("seed", seed, 0)
    stratify = check_bool("stratify", stratify)
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
        raise ArgumentError(f"groups must be a sequence with one group name per case, got {type(groups).__name__}")
    groups = [str(g) for g in groups]
    rng = np.random.default_rng(seed)
    if not stratify:
        return [int(i) for i in rng.permutation(len(groups))]
    by_group = {g: [int(i) for i in rng.permutation([k for k, h in enumerate(groups) if h == g])]
                for g in sorted(set(groups))}
    order: list[int] = []
    while any(by_group.values()):
        for g in sorted(by_group):
            if by_group[g]:
                order.append(by_group[g].pop(0))
    return order
