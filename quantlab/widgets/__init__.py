"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

The explorers live in :mod:`quantlab.widgets.explorers`, the calibration explorer in
:mod:`quantlab.widgets.calibration`; this package keeps the import path
``quantlab.widgets`` of the single-module version.
"""

from .calibration import (
    CalibrationExplorer,
    CalibrationView,
    calibration_view,
    example_activations,
)
from .explorers import (
    EXPLORER_METHODS,
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
    search_view,
)

__all__ = [
    "EXPLORER_METHODS",
    "SCHEMES",
    "BitsExplorer",
    "BitsSweep",
    "CalibrationExplorer",
    "CalibrationView",
    "Exploration",
    "QuantExplorer",
    "SearchExplorer",
    "SearchView",
    "WeightComparison",
    "WeightsExplorer",
    "calibration_view",
    "compare_weights",
    "example_activations",
    "example_weights",
    "explore",
    "find_artist",
    "search_view",
]
