"""Calibration explorer: move the top of an activation range, watch clipping trade for rounding.

:func:`calibration_view` is the pure function: for an activation sample, a bit width and the top
of the range, the clipping and rounding parts of the MSE (:func:`quantlab.calibration.error_split`)
at that top and along a grid of tops, and the ranges the four calibration methods choose.
:class:`CalibrationExplorer` shows it: the histogram of the activations with the range and the
methods' choices (left), the two error curves with the current point (right).

Non-negative data (after a ReLU) gets the range ``[0, top]``; data with negative values the
symmetric range ``[−top, top]``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from numpy.typing import ArrayLike, NDArray

from .. import calibration as cal
from .._validation import as_finite_float, as_float_array, check_n_bits
from .explorers import _Explorer, _nice_top, find_artist

__all__ = ["CalibrationExplorer", "CalibrationView", "calibration_view", "example_activations"]

#: How many tops the error curves are evaluated at (from max/40 to max).
CURVE_POINTS = 60


def example_activations(n: int = 20000, seed: int = 0) -> NDArray[np.float64]:
    """ReLU outputs of heavy-tailed pre-activations (Student t, 4 degrees of freedom): a long
    right tail of rare large values, as real activations have."""
    return np.maximum(np.random.default_rng(seed).standard_t(4, n), 0.0)


def _method_tops(x: NDArray, n_bits: int, signed: bool) -> dict[str, float]:
    """The top of the range each calibration method chooses for ``x``."""
    tops = {
        "min/max": float(np.abs(x).max()),
        "percentile 99.9": float(cal.percentile_range(x, 99.9, symmetric=signed)[1]),
    }
    lo, hi = cal.mse_range(x, n_bits, symmetric=signed)
    tops["MSE search"] = float(max(-lo, hi)) if signed else float(hi)
    tops["KL"] = float(cal.kl_range(x, n_bits, signed=signed)[1])
    return tops


def _point(x: NDArray, n_bits: int, top: float, signed: bool) -> tuple[float, float, float, float]:
    """``(clip, rounding, clipped fraction, scale)`` for the range of ``top``."""
    lo = -top if signed else 0.0
    clip, rounding = cal.error_split(x, lo, top, n_bits)
    scale = (top - lo) / (2**n_bits - 1)
    zp = np.rint(-lo / scale)
    clipped = float(np.mean((x < -zp * scale) | (x > (2**n_bits - 1 - zp) * scale)))
    return clip, rounding, clipped, float(scale)


@dataclass
class CalibrationView:
    """One setting of the explorer.

    Attributes
    ----------
    n_bits, top : int, float
        The bit width and the top of the range (``[0, top]`` or ``[−top, top]``).
    signed : bool
        Whether the range is symmetric (the data has negative values).
    clip, rounding : float
        The two parts of the MSE at ``top``; ``clipped`` the fraction of values beyond the grid.
    scale : float
        The grid step ``S``.
    tops, clip_curve, rounding_curve : ndarray
        The same two parts along a grid of tops.
    methods : dict of str to float
        The top each calibration method chooses.
    method_mse : dict of str to float
        The MSE (clipping + rounding) of the range each method chooses.
    """

    n_bits: int
    top: float
    signed: bool
    clip: float
    rounding: float
    clipped: float
    scale: float
    tops: NDArray[np.float64]
    clip_curve: NDArray[np.float64]
    rounding_curve: NDArray[np.float64]
    methods: dict[str, float] = field(default_factory=dict)
    method_mse: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """The MSE: clipping plus rounding."""
        return self.clip + self.rounding

    def readout(self) -> str:
        """A one-line HTML summary."""
        parts = [
            f"<b>top</b> {self.top:.4g}",
            f"<b>S</b> {self.scale:.3g}",
            f"<b>clipped</b> {100 * self.clipped:.3g} %",
            f"<b>clip MSE</b> {self.clip:.3g}",
            f"<b>round MSE</b> {self.rounding:.3g}",
            f"<b>MSE</b> {self.total:.3g}",
        ]
        methods = ", ".join(
            f"{html.escape(k)} {v:.3g} (MSE {self.method_mse[k]:.3g})"
            for k, v in self.methods.items()
        )
        return " &nbsp; ".join(parts) + f"<br>calibrated tops: {methods}"


def calibration_view(
    x: ArrayLike,
    n_bits: int = 8,
    top: float | None = None,
    *,
    methods: Mapping[str, float] | None = None,
) -> CalibrationView:
    """The clipping/rounding split of ``x`` quantized with the range of ``top`` (default: max).

    Parameters
    ----------
    x : array_like
        Activation sample.
    n_bits : int, default 8
        Unsigned codes ``0 … 2**n − 1`` over the range (2 to 16 bits).
    top : float, optional
        Top of the range, > 0; default ``max|x|``.
    methods : mapping, optional
        Precomputed method tops (the explorer caches them per bit width).
    """
    xa = as_float_array(x, "x").ravel()
    n = check_n_bits(n_bits, 2)
    amax = float(np.abs(xa).max())
    t = amax if top is None else as_finite_float(top, "top")
    if not t > 0:
        raise ValueError(f"top must be positive, got {t}")
    if amax == 0:
        raise ValueError("x is all zero: there is no range to calibrate")
    signed = bool(np.any(xa < 0))
    tops = np.linspace(amax / 40, amax, CURVE_POINTS)
    curves = np.array([cal.error_split(xa, -v if signed else 0.0, v, n) for v in tops])
    found = dict(methods) if methods is not None else _method_tops(xa, n, signed)
    found_mse = {k: sum(_point(xa, n, v, signed)[:2]) for k, v in found.items()}
    return CalibrationView(
        n, t, signed, *_point(xa, n, t, signed), tops, curves[:, 0], curves[:, 1], found,
        found_mse,
    )  # fmt: skip


class CalibrationExplorer(_Explorer):
    """Histogram of activations with a draggable range top, and the clipping/rounding errors.

    Parameters
    ----------
    x : array_like, optional
        Activations (e.g. a hidden layer's outputs on a calibration batch); default
        :func:`example_activations`.
    n_bits : int, default 4
        Initial bit width.
    """

    def __init__(self, x: ArrayLike | None = None, *, n_bits: int = 4) -> None:
        self.x = example_activations() if x is None else as_float_array(x, "x").ravel()
        n = check_n_bits(n_bits, 2)
        if not np.any(self.x != 0):
            raise ValueError("x is all zero: there is no range to calibrate")
        self.amax = float(np.abs(self.x).max())
        self._cache: dict[int, CalibrationView] = {}
        controls = {
            "n_bits": widgets.IntSlider(value=n, min=2, max=8, description="bits"),
            "top": widgets.FloatSlider(
                value=self.amax,
                min=self.amax / 40,
                max=self.amax,
                step=self.amax / 400,
                description="range top",
                readout_format=".3g",
            ),
        }
        super().__init__(controls)

    def compute(self, n_bits: int, top: float) -> CalibrationView:
        """:func:`calibration_view` with the method tops and curves cached per bit width."""
        if n_bits not in self._cache:
            self._cache[n_bits] = calibration_view(self.x, n_bits, self.amax)
        full = self._cache[n_bits]
        point = _point(self.x, n_bits, float(top), full.signed)
        return CalibrationView(
            n_bits, float(top), full.signed, *point, full.tops, full.clip_curve,
            full.rounding_curve, full.methods, full.method_mse,
        )  # fmt: skip

    def draw(self, state: CalibrationView) -> None:
        """Histogram with the methods' tops; the error curves; then the moving parts."""
        ax0, ax1 = self.axes
        ax0.hist(np.abs(self.x) if state.signed else self.x, bins=80, color="0.75", log=True)
        ax0.set(xlabel="|activation|" if state.signed else "activation", ylabel="count (log)")
        colors = ["C3", "C4", "C5", "C9"]
        for color, (name, value) in zip(colors, state.methods.items(), strict=True):
            ax0.axvline(value, color=color, lw=1.2, ls="--", label=name)
        ax0.axvline(state.top, color="k", lw=2, label="range top")
        ax0.legend(fontsize=9, loc="upper right")
        ax1.plot(state.tops, state.clip_curve, label="clipping")
        ax1.plot(state.tops, state.rounding_curve, label="rounding")
        ax1.plot(state.tops, state.clip_curve + state.rounding_curve, "k", label="total")
        ax1.plot([state.top], [state.total], "o", color="k", ms=7, label="current")
        ax1.set(xlabel="range top", ylabel="MSE", yscale="log")
        ax1.legend(fontsize=9, loc="upper right")
        self.redraw(state)

    def redraw(self, state: CalibrationView) -> None:
        """Move the range top and the current point; new curves and method tops for new bits."""
        ax0, ax1 = self.axes
        find_artist(ax0, "range top").set_xdata([state.top, state.top])
        for name, value in state.methods.items():
            find_artist(ax0, name).set_xdata([value, value])
        find_artist(ax1, "clipping").set_ydata(state.clip_curve)
        find_artist(ax1, "rounding").set_ydata(state.rounding_curve)
        find_artist(ax1, "total").set_ydata(state.clip_curve + state.rounding_curve)
        find_artist(ax1, "current").set_data([state.top], [state.total])
        curves = np.concatenate([state.clip_curve, state.rounding_curve])
        positive = curves[curves > 0]
        low = float(positive.min()) if positive.size else 1e-12
        ax1.set_ylim(_nice_top(low) / 10, _nice_top(float(curves.max()) * 2))

    def animated(self) -> list[Artist]:
        """The methods' tops, the range top, the three curves and the current point."""
        ax0, ax1 = self.axes
        tops = [find_artist(ax0, name) for name in self.state.methods] if self.state else []
        return [*tops, find_artist(ax0, "range top")] + [
            find_artist(ax1, k) for k in ("clipping", "rounding", "total", "current")
        ]
