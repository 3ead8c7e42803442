"""Sphinx extension loaded by the course's _config.yml.

It marks the build as a *static* build before any notebook is executed: kernels started by the
build inherit ``CMRLAB_STATIC=1``, so the viewers of :mod:`cmrlab.viz` render kernel-free HTML
(animation frames) instead of live ipywidgets, and progress bars print text instead of widgets.
"""
import os


def setup(app):
    os.environ["CMRLAB_STATIC"] = "1"
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
