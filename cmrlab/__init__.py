"""cmrlab: the support library of the course "Deep learning for MRI".

Layers import downward only (a lower layer never imports a higher one)::

    labs, notebooks  student versions of labs; notebook output stripping
    nn               receptive fields, blocks, the model zoo and its registry, losses, metrics
    data             readers and writers for medical image files
    phantoms         synthetic anatomy (a beating short-axis heart slice)
    physics          Bloch simulation, signal equations, tissues, k-space, coils, noise,
                     artifacts, cardiac biomarkers, and the physics explorers
    viz              viewers, explorers and monitors (numpy/matplotlib/ipywidgets only)
    config           profiles, device, seeds, data root
    errors           the exceptions every layer raises

Import what you need from its module, e.g. ``from cmrlab.config import setup``.
"""
from cmrlab.errors import CmrlabError

__version__ = "0.1.0"
__all__ = ["CmrlabError", "__version__"]
