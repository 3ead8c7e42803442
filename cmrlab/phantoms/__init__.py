"""Synthetic anatomy imaged through :mod:`cmrlab.physics`: phantoms with exact ground truth.

``heart2d``  :func:`~cmrlab.phantoms.heart2d.beating_heart_slice`, a bSSFP cine of a beating
             mid-ventricular short-axis slice with ACDC labels (1 RV, 2 MYO, 3 LV) and exact areas;
             :func:`~cmrlab.phantoms.heart2d.heart_slice_dataset`, varied 2D training slices
``cine4d``   :func:`~cmrlab.phantoms.cine4d.cine_case`, a 4D short-axis bSSFP cine of a whole
             heart (base to apex, every frame labelled) for the five ACDC groups, and
             :func:`~cmrlab.phantoms.cine4d.cine_cases`, many cases streamed one at a time
``brain3d``  :func:`~cmrlab.phantoms.brain3d.brain_case`, a multi-modal brain (T1w, T1ce, T2w,
             FLAIR, T1-IR) from the MNI152 maps, with tissue labels, an optional tumour (BraTS
             labels) and an infant "isointense" variant
``lge3d``    :func:`~cmrlab.phantoms.lge3d.lge_volume`, a 3D LGE short-axis stack with a scar in a
             coronary territory (labels 1 myocardium, 2 scar)
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
from cmrlab.phantoms.cine4d import (
    ACDC_GROUPS, ANATOMY_NAMES, GROUP_DEFINITIONS, CineCase, GroupDefinition, cine_case, cine_cases,
)
from cmrlab.phantoms.brain3d import BRATS_LABELS, MODALITIES, TISSUE_LABELS, BrainCase, brain_case
from cmrlab.phantoms.lge2d import LGESet, LGESlice, lge_slice, lge_slice_dataset
from cmrlab.phantoms.lge3d import LGEVolume, lge_volume

__all__ = [
    "ACDC_GROUPS", "ANATOMY_NAMES", "GROUP_DEFINITIONS", "CineCase", "GroupDefinition", "cine_case",
    "cine_cases",
    "BRATS_LABELS", "MODALITIES", "TISSUE_LABELS", "BrainCase", "LGEVolume", "brain_case", "lge_volume",
    "LABEL_NAMES", "HeartSlice", "LGESet", "LGESlice", "SliceSet", "beating_heart_slice",
    "heart_slice_dataset", "lge_slice", "lge_slice_dataset",
]
