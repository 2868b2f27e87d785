"""One notebook, two views: JupyterLab with the code, or a Voilà app without it.

Voilà runs a notebook and shows its outputs and markdown without the code. Instructions for
JupyterLab ("Run All Cells") and cells that are only worth reading with their code make no sense
in the app. Such cells carry the tag ``voila-hide``; Voilà's page template turns a cell's tags
into CSS classes (``celltag_voila-hide``), and :func:`app_view`, run in a cell near the top,
adds the style that hides them — in a Voilà kernel only, so JupyterLab and the docs show every
cell. Voilà marks the kernels it starts with environment variables (``VOILA_BASE_URL``,
``VOILA_REQUEST_URL``, ...), which is how :func:`in_voila` tells the two apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from IPython.display import HTML

__all__ = ["HIDE_TAG", "app_view", "in_voila"]

#: Environment variables Voilà (0.4 and later) sets in the kernels it starts.
VOILA_VARIABLES = ("VOILA_BASE_URL", "VOILA_REQUEST_URL", "VOILA_SERVER_URL", "VOILA_PREHEAT")
#: The cell tag of cells the app does not show.
HIDE_TAG = "voila-hide"


def in_voila(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this kernel was started by Voilà (default: look at ``os.environ``)."""
    env = os.environ if environ is None else environ
    return any(name in env for name in VOILA_VARIABLES)


def app_view(environ: Mapping[str, str] | None = None) -> HTML | None:
    """In a Voilà kernel, the style that hides the cells tagged ``voila-hide``; else None.

    The last expression of a cell is displayed, so a cell holding ``widgets.app_view()`` hides
    those cells in the app and shows nothing anywhere else.

    Examples
    --------
    >>> app_view({}) is None
    True
    >>> "celltag_voila-hide" in app_view({"VOILA_BASE_URL": "/"}).data
    True
    """
    if not in_voila(environ):
        return None
    return HTML(f"<style>.celltag_{HIDE_TAG} {{ display: none !important; }}</style>")
