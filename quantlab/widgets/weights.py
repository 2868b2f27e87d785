"""WeightsExplorer: per-element errors of an unweighted and a weighted fit."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from numpy.typing import ArrayLike

from .. import plots
from .._validation import check_bool
from ..exploration import (
    WeightComparison,
    compare_weights,
    methods_for,
)
from ._base import _data, _Explorer, _nice_top, _weights_for, find_artist


class WeightsExplorer(_Explorer):
    """Per-element errors of an unweighted and a weighted fit as the weights get stronger.

    Parameters
    ----------
    x : array_like, optional
        The values; default :data:`quantlab.data.X_EXAMPLE`. Meant for small examples (one bar
        per element).
    w : array_like, optional
        Importance weights; default :func:`example_weights`.
    n_bits : int, default 4
        Initial bit width.
    use_min : bool, default False
        With or without a minimum.
    """

    figsize = (7.0, 3.4)
    ncols = 1
    margins: Mapping[str, float] = {"left": 0.11, "right": 0.9, "bottom": 0.16, "top": 0.95}

    def __init__(
        self,
        x: ArrayLike | None = None,
        w: ArrayLike | None = None,
        *,
        n_bits: int = 4,
        use_min: bool = False,
    ) -> None:
        self.x = _data(x)
        self.w = _weights_for(self.x, w)
        self.use_min = check_bool(use_min, "use_min")
        controls = {
            "n_bits": widgets.IntSlider(n_bits, min=2, max=8, description="bits"),
            "strength": widgets.FloatSlider(1.0, min=0.0, max=2.0, step=0.1, description="w**γ"),
            "method": widgets.Dropdown(
                options=self._methods(), value="refit", description="method"
            ),
        }
        super().__init__(controls)

    def _methods(self) -> tuple[str, ...]:
        """The fits that use weights: every method but round-to-nearest."""
        return methods_for("use_min" if self.use_min else "signed_max")[1:]

    def compute(self, n_bits: int, strength: float, method: str) -> WeightComparison:
        """:func:`compare_weights` of the explorer's data with these control values."""
        return compare_weights(
            self.x, self.w, n_bits, use_min=self.use_min, method=method, strength=strength
        )

    def draw(self, state: WeightComparison) -> None:
        """Bars of squared error per element for both fits, weights on a second axis.

        The weights are shown relative to the largest (``w / max(w)``), so their axis stays put
        while the strength slider moves.
        """
        plots.plot_weighted_errors(
            state.x, state.unweighted.x_hat, state.weighted.x_hat, state.w, ax=self.axes[0]
        )
        self._twin().set_ylabel("weight / largest")
        self.redraw(state)

    def _twin(self) -> Axes:
        ax = self.axes[0]
        return next(a for a in self.figure.axes if a is not ax)

    def redraw(self, state: WeightComparison) -> None:
        """Set the bar heights and the weight markers in place."""
        ax = self.axes[0]
        e0 = (state.x - state.unweighted.x_hat) ** 2
        e1 = (state.x - state.weighted.x_hat) ** 2
        for label, heights in (("unweighted fit", e0), ("weighted fit", e1)):
            patch = find_artist(ax, label)
            patch.set_data(values=plots.bar_steps(patch.get_data().edges[::2], 0.4, heights)[1])
        ax.set_ylim(0, _nice_top(max(float(e0.max()), float(e1.max()))))
        twin = self._twin()
        top = float(state.w.max())
        find_artist(twin, "weight").set_ydata(state.w / top if top > 0 else state.w)
        twin.set_ylim(0, 1.1)

    def animated(self) -> list[Artist]:
        """Both bar series and the weights."""
        ax = self.axes[0]
        return [
            find_artist(ax, "unweighted fit"),
            find_artist(ax, "weighted fit"),
            find_artist(self._twin(), "weight"),
        ]
