"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

Every explorer is a thin wire from controls to a **pure function** of
:mod:`quantlab.exploration` (no widgets there) and back to a plot, one file per explorer:

- :class:`QuantExplorer` (``quant.py``) shows :func:`explore` (codes, levels, MSE, SQNR of one
  setting) as a histogram with the levels and as a staircase;
- :class:`SearchExplorer` (``search.py``): :func:`search_view`, a grid search and its landscape;
- :class:`BitsExplorer` (``sweep.py``): :func:`quantlab.plots.bits_sweep`, SQNR against bits;
- :class:`WeightsExplorer` (``weights.py``): :func:`compare_weights`, with and without importance
  weights;
- :class:`CalibrationExplorer` (``calibration.py``): activation ranges, clipping against rounding;
- :class:`FloatBitsExplorer` (``bits.py``): the bits of a minifloat value;
- ``app.py``: one notebook shown as a JupyterLab notebook or as a Voilà app.

The explorers share ``_base.py``: they are built on :func:`ipywidgets.interactive`
(``explorer.interactive.result`` is the last state) and draw into a
:class:`matplotlib.figure.Figure` of their own, updating the artists' data in place and sending
the rendered PNG to an :class:`ipywidgets.Image`. So they work the same in JupyterLab, in Voilà
and in a plain Python process (tests set ``slider.value`` and read ``.state``,
``.readout.value`` and the figure's artists).
"""

from ..exploration import (
    EXPLORER_METHODS,
    OFFSET_METHODS,
    SCHEMES,
    Exploration,
    SearchView,
    WeightComparison,
    compare_weights,
    example_weights,
    explore,
    methods_for,
    search_view,
)
from ._base import find_artist
from .app import HIDE_TAG, app_view, in_voila
from .bits import FORMAT_CHOICES, BitPattern, FloatBitsExplorer, bit_pattern
from .calibration import (
    CalibrationExplorer,
    CalibrationView,
    calibration_view,
    example_activations,
)
from .quant import QuantExplorer
from .search import SearchExplorer
from .sweep import BitsExplorer, BitsSweep
from .weights import WeightsExplorer

__all__ = [
    "EXPLORER_METHODS",
    "FORMAT_CHOICES",
    "HIDE_TAG",
    "OFFSET_METHODS",
    "SCHEMES",
    "BitPattern",
    "BitsExplorer",
    "BitsSweep",
    "CalibrationExplorer",
    "CalibrationView",
    "Exploration",
    "FloatBitsExplorer",
    "QuantExplorer",
    "SearchExplorer",
    "SearchView",
    "WeightComparison",
    "WeightsExplorer",
    "app_view",
    "bit_pattern",
    "calibration_view",
    "compare_weights",
    "example_activations",
    "example_weights",
    "explore",
    "find_artist",
    "in_voila",
    "methods_for",
    "search_view",
]
