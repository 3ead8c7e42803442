"""cmrlab: the support library of the course "Deep learning for MRI".

Layers import downward only (a lower layer never imports a higher one)::

    cli, labs   the `cmrlab` command; lab answer checks and student versions
    nn          blocks, models, losses, metrics, receptive fields
    data        readers and writers for medical image files
    viz         viewers and monitors (numpy/matplotlib/ipywidgets only)
    config      profiles, device, seeds, data root
    errors      the exceptions every layer raises

Import what you need from its module, e.g. ``from cmrlab.config import setup``.
"""
from cmrlab.errors import CmrlabError

__version__ = "0.1.0"
__all__ = ["CmrlabError", "__version__"]
