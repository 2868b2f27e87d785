"""SearchExplorer: a grid search, its errors before/after refit and its error landscape."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.axes import Axes
from matplotlib.contour import ContourSet
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from numpy.typing import ArrayLike

from .. import plots
from ..exploration import (
    SearchView,
    search_view,
)
from ._base import _data, _Explorer, _weights_for, find_artist


def _log_axis(ax: Axes) -> None:
    """A log y axis ticked at 1, 2 and 5 times powers of ten, in plain text.

    No mathtext labels and no minor ticks: they made up a third of the drawing time.
    """
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
    ax.yaxis.set_minor_locator(NullLocator())


class SearchExplorer(_Explorer):
    """Grid search: error against offset before/after refit, and the error landscape.

    Parameters
    ----------
    x : array_like, optional
        The values; default :data:`quantlab.data.X_EXAMPLE`.
    w : array_like, optional
        Importance weights used when the box is ticked; default :func:`example_weights`.
    n_bits : int, default 4
        Initial bit width (slider 2 to 8).
    use_min : bool, default True
        Initially with a minimum (2-D landscape) or the signed scale (1-D).
    relative : bool, default True
        Initially quantlab's relative grid (else the reference grid in units of x).
    """

    def __init__(
        self,
        x: ArrayLike | None = None,
        w: ArrayLike | None = None,
        *,
        n_bits: int = 4,
        use_min: bool = True,
        relative: bool = True,
    ) -> None:
        self.x = _data(x)
        self.w = _weights_for(self.x, w)
        controls = {
            "n_bits": widgets.IntSlider(n_bits, min=2, max=8, description="bits"),
            "use_min": widgets.Checkbox(value=use_min, description="use_min"),
            "relative": widgets.Checkbox(value=relative, description="relative grid"),
            "weights": widgets.Checkbox(value=False, description="importance weights"),
        }
        super().__init__(controls)

    def compute(self, n_bits: int, use_min: bool, relative: bool, weights: bool) -> SearchView:
        """:func:`search_view` of the explorer's data with these control values."""
        return search_view(
            self.x, n_bits, use_min=use_min, relative=relative, w=self.w if weights else None
        )

    def draw(self, state: SearchView) -> None:
        """Error vs offset (left), landscape (right)."""
        left, right = self.axes
        assert state.result.table is not None
        plots.plot_search(state.result.table, ax=left)
        if state.mins is not None:
            plots.plot_landscape(
                state.scales,
                state.mins,
                state.errors,
                optimum=state.optimum,
                candidates=state.candidates,
                ax=right,
            )
        else:
            right.plot(state.scales, state.errors, "-", color="0.3", label="error of d")
            right.plot(*state.candidates, "o", markersize=4, label="candidates")
            right.plot([state.optimum[0]], [state.optimum[1]], "*", color="tab:red",
                       markersize=12, label="best candidate")  # fmt: skip
            _log_axis(right)
            plots._finish(right, "d", "error (MSE)")
        self._two_d = state.mins is not None
        for axis in (left.xaxis, left.yaxis, right.xaxis, right.yaxis if self._two_d else None):
            if axis is not None:
                axis.set_major_locator(MaxNLocator(5))  # fewer labels: faster redraws
        self._contours = [c for c in right.collections if isinstance(c, ContourSet)]

    def redraw(self, state: SearchView) -> None:
        """Give the lines and markers their new data and draw the contours again."""
        if (state.mins is not None) != self._two_d:  # the other kind of landscape
            super().redraw(state)
            return
        self._background = None  # the contours are part of the background: draw it all
        left, right = self.axes
        table = state.result.table
        assert table is not None and table.best is not None
        off, after, b = table["offset"], table["error_after"], int(table.best)
        find_artist(left, "before refit").set_data(off, table["error_before"])
        find_artist(left, "after refit").set_data(off, after)
        find_artist(left, "best").set_data([off[b]], [after[b]])
        left.relim()
        left.autoscale_view()
        find_artist(right, "candidates").set_data(*state.candidates)
        find_artist(right, "best candidate").set_data([state.optimum[0]], [state.optimum[1]])
        if state.mins is None:
            find_artist(right, "error of d").set_data(state.scales, state.errors)
            right.relim()
            right.autoscale_view()
            return
        for contours in self._contours:
            contours.remove()
        self._contours = plots.contour_landscape(right, state.scales, state.mins, state.errors)
        right.set_xlim(float(state.scales[0]), float(state.scales[-1]))
        right.set_ylim(float(state.mins[0]), float(state.mins[-1]))
