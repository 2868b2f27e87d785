"""BitsExplorer: SQNR against bits (2 to 8) against the 6.02 dB/bit rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from numpy.typing import ArrayLike, NDArray

from .. import plots
from .._validation import as_float_array
from ..exploration import (
    SCHEMES,
    methods_for,
)
from ._base import _Explorer, _weights_for, find_artist


@dataclass(frozen=True)
class BitsSweep:
    """SQNR against bits, with the 6.02 dB/bit line fitted to it.

    Attributes
    ----------
    bits : ndarray of int64
    sqnr : ndarray of float64
        Measured SQNR in dB.
    """

    bits: NDArray[np.int64]
    sqnr: NDArray[np.float64]

    @property
    def rule(self) -> NDArray[np.float64]:
        """The 6.02 dB/bit line with the intercept that fits best."""
        intercept = float(np.mean(self.sqnr - plots.DB_PER_BIT * self.bits))
        return plots.DB_PER_BIT * self.bits + intercept

    @property
    def slope(self) -> float:
        """Least-squares slope of the measured SQNR in dB per bit."""
        return float(np.polyfit(self.bits.astype(float), self.sqnr, 1)[0])

    def readout(self) -> str:
        """HTML summary: the measured slope against 6.02 dB/bit."""
        return (
            f"<b>measured slope</b> {self.slope:.2f} dB/bit (rule {plots.DB_PER_BIT:.2f})"
            f" &nbsp;·&nbsp; <b>SQNR</b> {self.sqnr[0]:.2f} dB at {self.bits[0]} bits, "
            f"{self.sqnr[-1]:.2f} dB at {self.bits[-1]} bits"
        )


class BitsExplorer(_Explorer):
    """SQNR against bits (2 to 8) for a scheme and method, against the 6.02 dB/bit rule.

    Parameters
    ----------
    x : array_like, optional
        The values; default :data:`quantlab.data.PARAMS`.
    w : array_like, optional
        Importance weights used when the box is ticked; default :func:`example_weights`.
    scheme, method : str
        Initial scheme and method.
    """

    figsize = (6.0, 3.4)
    ncols = 1
    margins: Mapping[str, float] = {"left": 0.12, "right": 0.97, "bottom": 0.16, "top": 0.95}

    def __init__(
        self,
        x: ArrayLike | None = None,
        w: ArrayLike | None = None,
        *,
        scheme: str = "symmetric",
        method: str = "round",
    ) -> None:
        from ..data import PARAMS

        self.x = np.array(PARAMS) if x is None else as_float_array(x, "x").ravel()
        self.w = _weights_for(self.x, w)
        controls = {
            "scheme": widgets.Dropdown(options=SCHEMES, value=scheme, description="scheme"),
            "method": widgets.Dropdown(
                options=methods_for(scheme), value=method, description="method"
            ),
            "weights": widgets.Checkbox(value=False, description="importance weights"),
        }
        super().__init__(controls)

    def constrain(self, values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Offer the scheme's methods only."""
        return self._offer_methods(values, methods_for(values["scheme"]))

    def compute(self, scheme: str, method: str, weights: bool) -> BitsSweep:
        """:func:`quantlab.plots.bits_sweep` over 2-8 bits with these control values."""
        bits, sqnr = plots.bits_sweep(
            self.x, range(2, 9), scheme=scheme, method=method, w=self.w if weights else None
        )
        return BitsSweep(bits, sqnr)

    def draw(self, state: BitsSweep) -> None:
        """Measured SQNR and the 6.02 dB/bit line."""
        plots.plot_bits(state.bits, state.sqnr, ax=self.axes[0])
        self.redraw(state)

    def redraw(self, state: BitsSweep) -> None:
        """Move the measured line and the fitted rule in place."""
        ax = self.axes[0]
        find_artist(ax, "measured").set_ydata(state.sqnr)
        find_artist(ax, f"{plots.DB_PER_BIT:.2f} dB/bit").set_ydata(state.rule)
        lo = min(float(state.sqnr.min()), float(state.rule.min()))
        hi = max(float(state.sqnr.max()), float(state.rule.max()))
        ax.set_ylim(5 * np.floor((lo - 2) / 5), 5 * np.ceil((hi + 2) / 5))  # steady limits

    def animated(self) -> list[Artist]:
        """The measured line and the rule."""
        ax = self.axes[0]
        return [find_artist(ax, "measured"), find_artist(ax, f"{plots.DB_PER_BIT:.2f} dB/bit")]
