"""Sphinx extension loaded by the course's _config.yml.

It does two things for the website build:

1. It marks the build as a *static* build before any notebook is executed: kernels started by
   the build inherit ``CMRLAB_STATIC=1``, so the viewers of :mod:`cmrlab.viz` render kernel-free
   HTML (animation frames) instead of live ipywidgets, and progress bars print text instead of
   widgets.
2. It keeps the pages offline-safe. Notebook outputs are pasted into the page as raw HTML, and
   some of them pull assets from a CDN: matplotlib's ``Animation.to_jshtml()`` starts with a
   ``<link>`` to Font Awesome 4 on maxcdn for its play/pause icons. That link is removed; the
   theme's own local Font Awesome draws those icons. Any other output that still loads a script
   or stylesheet from another site is reported as a warning naming the page (``-W`` makes it
   fail the build), because such a page breaks without network.

The JavaScript the site needs (require.js, the ipywidgets embed manager, MathJax) is vendored
under ``book/_static/vendor`` by ``tools/vendor_web_assets.sh`` and wired in by ``_config.yml``.
"""
from __future__ import annotations

import os
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: ``<link>`` tags that load Font Awesome from a CDN (matplotlib's ``to_jshtml`` writes one).
CDN_FONT_AWESOME_LINK = re.compile(
    r"""<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//[^"'\s>]*font-?awesome[^"'\s>]*["']?[^>]*>\s*""",
    re.IGNORECASE,
)

#: ``<script src=...>`` and ``<link href=...>`` tags whose URL is on another site (http, https, //).
OFFSITE_ASSET = re.compile(
    r"""<(?:script\b[^>]*\bsrc|link\b[^>]*\bhref)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""",
    re.IGNORECASE,
)


def strip_cdn_font_awesome(html: str) -> str:
    """Return ``html`` without ``<link>`` tags that fetch Font Awesome from a CDN."""
    return CDN_FONT_AWESOME_LINK.sub("", html)


def offsite_assets(html: str) -> list[str]:
    """Return the URLs of scripts and stylesheet links in ``html`` that point to another site."""
    return OFFSITE_ASSET.findall(html)


def make_outputs_offline(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Strip CDN Font Awesome links from raw HTML in ``doctree``; warn of other off-site assets."""
    for node in list(doctree.findall(nodes.raw)):
        if "html" not in node.get("format", "").split():
            continue
        html = node.astext()
        cleaned = strip_cdn_font_awesome(html)
        if cleaned != html:
            node.replace(node.children[0], nodes.Text(cleaned))
            node.rawsource = cleaned
        for url in offsite_assets(cleaned):
            logger.warning(
                "output loads %s from another site; the page will break without network "
                "(vendor the file under book/_static/vendor instead)",
                url,
                location=(docname, node.line),
                type="cmrlab",
                subtype="offsite",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    os.environ["CMRLAB_STATIC"] = "1"
    app.connect("doctree-resolved", make_outputs_offline)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "2"}
