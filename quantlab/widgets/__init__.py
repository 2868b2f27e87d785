"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

The explorers live in :mod:`quantlab.widgets.explorers`, the calibration explorer in
:mod:`quantlab.widgets.calibration`, the minifloat bit-pattern explorer in
:mod:`quantlab.widgets.bits`; this package keeps the import path
``quantlab.widgets`` of the single-module version.
"""

from .app import HIDE_TAG, app_view, in_voila
from .bits import FORMAT_CHOICES, BitPattern, FloatBitsExplorer, bit_pattern
from .calibration import (
    CalibrationExplorer,
    CalibrationView,
    calibration_view,
    example_activations,
)
from .explorers import (
    EXPLORER_METHODS,
    OFFSET_METHODS,
    SCHEMES,
    BitsExplorer,
    BitsSweep,
    Exploration,
    QuantExplorer,
    SearchExplorer,
    SearchView,
    WeightComparison,
    WeightsExplorer,
    compare_weights,
    example_weights,
    explore,
    find_artist,
    methods_for,
    search_view,
)

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
