"""Viewers and monitors: volume/cine viewer with labels, explorers, training curves, progress bars.

This layer knows numpy, matplotlib and ipywidgets only (no MRI or model code). In JupyterLab the
viewers are live widgets; while the website is built (``CMRLAB_STATIC=1``, see
:func:`cmrlab.config.is_static_build`) they render kernel-free HTML and plain figures instead.
"""
from cmrlab.viz.explorer import Choice, Explorer, Slider, Toggle
from cmrlab.viz.monitor import TrainingMonitor
from cmrlab.viz.progress import progress
from cmrlab.viz.volume import VolumeViewer, show_volume

__all__ = [
    "Choice", "Explorer", "Slider", "Toggle", "TrainingMonitor", "VolumeViewer", "progress",
    "show_volume",
]
