"""QuantExplorer: bits, scheme, method, range offset and weights → histogram and staircase."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from numpy.typing import ArrayLike

from .. import plots
from ..exploration import (
    OFFSET_METHODS,
    SCHEMES,
    Exploration,
    explore,
    methods_for,
)
from ._base import _data, _Explorer, _weights_for, find_artist


class QuantExplorer(_Explorer):
    """Bits, scheme, method, range offset and weights → histogram with levels and staircase.

    Parameters
    ----------
    x : array_like, optional
        The values; default the course's 4-bit example :data:`quantlab.data.X_EXAMPLE`.
    w : array_like, optional
        Importance weights used when the "weights" box is ticked; default
        :func:`example_weights`.
    n_bits : int, default 4
        Initial bit width (slider 2 to 8).
    scheme : str, default "use_min"
        Initial scheme, one of :data:`SCHEMES`.
    method : str, default "round"
        Initial method, one of :data:`EXPLORER_METHODS`.
    offset : float, default 0.0
        Initial relative range offset (slider -0.5 to 0.5).
    weights : bool, default False
        Initially use the weights.

    Examples
    --------
    >>> ex = QuantExplorer(n_bits=4, scheme="signed_max")
    >>> ex.controls["n_bits"].value = 3
    >>> ex.state.n_bits, len(ex.state.levels)
    (3, 8)
    """

    def __init__(
        self,
        x: ArrayLike | None = None,
        w: ArrayLike | None = None,
        *,
        n_bits: int = 4,
        scheme: str = "use_min",
        method: str = "round",
        offset: float = 0.0,
        weights: bool = False,
    ) -> None:
        self.x = _data(x)
        self.w = _weights_for(self.x, w)
        style = {"description_width": "initial"}
        controls = {
            "n_bits": widgets.IntSlider(n_bits, min=2, max=8, description="bits", style=style),
            "offset": widgets.FloatSlider(
                offset, min=-0.5, max=0.5, step=0.025, description="range offset", style=style
            ),
            "scheme": widgets.Dropdown(options=SCHEMES, value=scheme, description="scheme"),
            "method": widgets.Dropdown(
                options=methods_for(scheme), value=method, description="method"
            ),
            "weights": widgets.Checkbox(value=weights, description="importance weights"),
        }
        super().__init__(controls)

    def constrain(self, values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Offer the scheme's methods only; the range offset only where a method uses it."""
        values, note = self._offer_methods(values, methods_for(values["scheme"]))
        unused = values["method"] not in OFFSET_METHODS
        self._set_quietly(
            "offset",
            disabled=unused,
            tooltip=f"not used by {values['method']}: it chooses its own range" if unused else "",
        )
        if unused:
            hint = f"range offset not used: {values['method']} chooses its own range"
            note = hint if note is None else f"{note}; {hint}"
        return values, note

    def compute(
        self, n_bits: int, offset: float, scheme: str, method: str, weights: bool
    ) -> Exploration:
        """:func:`explore` of the explorer's data with these control values."""
        return explore(
            self.x,
            n_bits,
            scheme=scheme,
            method=method,
            offset=offset,
            w=self.w if weights else None,
        )

    def draw(self, state: Exploration) -> None:
        """Histogram with levels and clip range (left), staircase (right)."""
        left, right = self.axes
        plots.plot_histogram(state.x, state.levels, state.clip_range, ax=left)
        plots.plot_staircase(state.x, state.x_hat, curve=state.curve, ax=right)
        self._top = max(p.get_height() for p in left.patches)
        self._frames: dict[str, tuple[float, float]] = {}
        self.redraw(state)

    def frame(self, state: Exploration) -> tuple[float, float]:
        """The x range of the histogram (and y range of the staircase) for ``state``.

        It covers the data and the clip ranges of round-to-nearest at every bit width and at
        the extreme range offsets of the slider, for the state's scheme, so the axes stay put
        while bits, offset and method change (and the plot only needs its moving artists
        redrawn); a clip range beyond it (e.g. of a search) widens it.
        """
        if state.scheme not in self._frames:
            ctl = self.controls
            ends = [float(self.x.min()), float(self.x.max())]
            for n in range(ctl["n_bits"].min, ctl["n_bits"].max + 1):
                for off in (ctl["offset"].min, ctl["offset"].max):
                    ends.extend(explore(self.x, n, scheme=state.scheme, offset=off).clip_range)
            self._frames[state.scheme] = (min(ends), max(ends))
        lo, hi = self._frames[state.scheme]
        lo, hi = min(lo, state.clip_range[0]), max(hi, state.clip_range[1])
        pad = 0.04 * (hi - lo or 1.0)
        return lo - pad, hi + pad

    def animated(self) -> list[Artist]:
        """Levels, clip lines, staircase, values and both titles."""
        left, right = self.axes
        return [
            find_artist(left, "levels"),
            find_artist(left, "clip range"),
            find_artist(right, "staircase"),
            find_artist(right, "values"),
            left.title,
            right.title,
        ]

    def redraw(self, state: Exploration) -> None:
        """Move the levels, the clip lines, the staircase and the points in place."""
        left, right = self.axes
        top = self._top
        find_artist(left, "levels").set_segments(plots._level_segments(state.levels, top))
        lo, hi = state.clip_range
        find_artist(left, "clip range").set_data([lo, lo, np.nan, hi, hi], [0, top, np.nan, 0, top])
        frame = self.frame(state)
        left.set_xlim(*frame)
        t, t_hat = state.curve
        find_artist(right, "staircase").set_data(t, t_hat)
        order = np.argsort(state.x, kind="stable")
        find_artist(right, "values").set_ydata(state.x_hat[order])
        right.set_ylim(min(frame[0], float(t[0])), max(frame[1], float(t[-1])))
        right.set_xlim(float(t[0]), float(t[-1]))
        lines = plots.level_style(len(state.levels))
        style = {"linewidth": lines["linewidths"], "alpha": lines["alpha"]}
        find_artist(left, "levels").set(**style)
        legend = left.get_legend()
        for handle, text in zip(legend.legend_handles, legend.texts, strict=True):
            if text.get_text() == "levels":  # the legend's copy of the lines, as a redraw has it
                handle.set(**style)
        title = f"{state.scheme}, {state.method}, {state.n_bits} bits"
        left.set_title(title, fontsize="medium")
        right.set_title(f"SQNR {state.sqnr_db:.2f} dB", fontsize="medium")
