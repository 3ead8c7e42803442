"""Synthetic anatomy imaged through :mod:`cmrlab.physics`: phantoms with exact ground truth.

``heart2d``  :func:`~cmrlab.phantoms.heart2d.beating_heart_slice`, a bSSFP cine of a beating
             mid-ventricular short-axis slice with ACDC labels (1 RV, 2 MYO, 3 LV) and exact areas;
             :func:`~cmrlab.phantoms.heart2d.heart_slice_dataset`, varied 2D training slices
``lge2d``    :func:`~cmrlab.phantoms.lge2d.lge_slice`, a late-gadolinium-enhancement short-axis
             slice with a scar in a coronary territory (labels 1 myocardium, 2 scar), and
             :func:`~cmrlab.phantoms.lge2d.lge_slice_dataset`

This layer sits above ``physics`` (it uses the tissue table, signal equations, k-space, coils and
noise) and below ``data``, which writes phantoms in the real datasets' file formats.
"""
from cmrlab.phantoms.heart2d import (
    LABEL_NAMES,
    HeartSlice,
    SliceSet,
    beating_heart_slice,
    heart_slice_dataset,
)
from cmrlab.phantoms.lge2d import LGESet, LGESlice, lge_slice, lge_slice_dataset

__all__ = [
    "LABEL_NAMES", "HeartSlice", "LGESet", "LGESlice", "SliceSet", "beating_heart_slice",
    "heart_slice_dataset", "lge_slice", "lge_slice_dataset",
]
