"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

The explorers live in :mod:`quantlab.widgets.explorers`; this package keeps the import path
``quantlab.widgets`` of the single-module version.
"""

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
    "Exploration",
    "QuantExplorer",
    "SearchExplorer",
    "SearchView",
    "WeightComparison",
    "WeightsExplorer",
    "compare_weights",
    "example_weights",
    "explore",
    "find_artist",
    "search_view",
]
