"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

The explorers live in :mod:`quantlab.widgets.explorers`; this package keeps the import path
``quantlab.widgets`` of the single-module version.
"""

from .app import HIDE_TAG, app_view, in_voila
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
    "HIDE_TAG",
    "OFFSET_METHODS",
    "SCHEMES",
    "BitsExplorer",
    "BitsSweep",
    "Exploration",
    "QuantExplorer",
    "SearchExplorer",
    "SearchView",
    "WeightComparison",
    "WeightsExplorer",
    "app_view",
    "compare_weights",
    "example_weights",
    "explore",
    "find_artist",
    "in_voila",
    "methods_for",
    "search_view",
]
