"""Synthetic anatomy imaged through :mod:`cmrlab.physics`: phantoms with exact ground truth.

``heart2d``  :func:`~cmrlab.phantoms.heart2d.beating_heart_slice`, a bSSFP cine of a beating
             mid-ventricular short-axis slice with ACDC labels (1 RV, 2 MYO, 3 LV) and exact areas

This layer sits above ``physics`` (it uses the tissue table, signal equations, k-space, coils and
noise) and below ``data``, which writes phantoms in the real datasets' file formats.
"""
from cmrlab.phantoms.heart2d import LABEL_NAMES, HeartSlice, beating_heart_slice

__all__ = ["LABEL_NAMES", "HeartSlice", "beating_heart_slice"]
