"""Interactive explorers (ipywidgets 8): drag a slider, watch the grid and the error move.

Every explorer is a thin wire from controls to a **pure function** and back to a plot:

- :func:`explore` computes the whole state of one setting (codes, levels, MSE, SQNR, ...);
  :class:`QuantExplorer` shows it as a histogram with the levels and as a staircase;
- :func:`search_view` runs a grid search and the error landscape; :class:`SearchExplorer`;
- :func:`quantlab.plots.bits_sweep` measures SQNR against bits; :class:`BitsExplorer`;
- :func:`compare_weights` fits with and without importance weights; :class:`WeightsExplorer`.

The explorers are built on :func:`ipywidgets.interactive` (``explorer.interactive.result`` is the
last state) and draw into a :class:`matplotlib.figure.Figure` of their own, updating the artists'
data in place and sending the rendered PNG to an :class:`ipywidgets.Image`. So they work the same
in JupyterLab, in Voilà and in a plain Python process (tests set ``slider.value`` and read
``.state``, ``.readout.value`` and the figure's artists).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from numpy.typing import ArrayLike, NDArray
from PIL import Image as PILImage

from .. import plots
from .._validation import as_finite_float, as_float_array, as_weights, check_n_bits
from ..data import X_EXAMPLE
from ..lstsq import lstsq_scale
from ..metrics import max_error, mse, sqnr_db
from ..quantizer import Quantizer, QuantResult
from ..scheme import Scheme
from ..search import DEFAULT_RELATIVE_OFFSETS
from ..table import Table
from ..uniform import asymmetric_quantization, symmetric_quantization

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
    "search_view",
]

#: The schemes an explorer offers: the zero-point conventions of SPEC items 1-2 and the "min"
#: convention of weight formats (item 4), without (``"signed_max"``) and with a minimum.
SCHEMES = ("symmetric", "asymmetric", "signed_max", "use_min")
#: The methods an explorer offers (``"round"`` is round-to-nearest with the min/max range).
EXPLORER_METHODS = ("round", "refit", "search", "refine", "optimum")

_ZERO_POINT_METHODS = ("round", "refit")


# ------------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------------
def example_weights(n: int, seed: int = 0) -> NDArray[np.float64]:
    """Importance weights ``w_j = E[a_j**2]`` of simulated layer inputs ``a`` (deterministic).

    The inputs have per-feature scales drawn from a log-normal distribution, so a few features
    matter far more than the rest, as in a real layer.

    Parameters
    ----------
    n : int
        Number of weights.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray of float64
        Shape ``(n,)``, positive.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    sigma = rng.lognormal(mean=0.0, sigma=1.0, size=int(n))
    a = rng.standard_normal((64, int(n))) * sigma
    return np.mean(a**2, axis=0)


@dataclass(frozen=True)
class Exploration:
    """The state of one explorer setting, computed by :func:`explore`.

    Attributes
    ----------
    x : ndarray
        The values (flattened).
    x_hat : ndarray
        Dequantized values.
    q : ndarray of int64
        Codes.
    levels : ndarray
        Every value the quantizer can reproduce, ascending.
    clip_range : tuple of float
        Smallest and largest level: values outside are clipped.
    scale : float
        ``S`` (zero-point schemes), ``d`` (``"signed_max"``) or ``scale`` (``"use_min"``).
    min : float or None
        The float minimum of ``"use_min"``.
    zero_point : int or None
        The integer zero-point of ``"asymmetric"``.
    n_bits, scheme, method : int, str, str
        The setting.
    offset : float or None
        Relative range offset used (chosen by the search for ``"search"``; None for
        ``"refine"`` and ``"optimum"``).
    mse, sqnr_db, max_error : float
        Unweighted error measures.
    weighted_mse : float or None
        ``mean(w * (x - x_hat)**2)`` when weights were given.
    curve : tuple of ndarray
        ``(t, t_hat)``: the staircase on a dense grid covering x.
    table : Table or None
        The search table (``"search"`` with the min convention).
    """

    x: NDArray[np.float64]
    x_hat: NDArray[np.float64]
    q: NDArray[np.int64]
    levels: NDArray[np.float64]
    clip_range: tuple[float, float]
    scale: float
    min: float | None
    zero_point: int | None
    n_bits: int
    scheme: str
    method: str
    offset: float | None
    mse: float
    sqnr_db: float
    max_error: float
    weighted_mse: float | None
    curve: tuple[NDArray[np.float64], NDArray[np.float64]] = field(repr=False)
    table: Table | None = field(default=None, repr=False)

    def readout(self) -> str:
        """A one-line HTML summary: MSE, weighted MSE, SQNR, max error and the parameters."""
        parts = [
            f"<b>MSE</b> {self.mse:.4g}",
            f"<b>SQNR</b> {self.sqnr_db:.2f} dB",
            f"<b>max error</b> {self.max_error:.4g}",
        ]
        if self.weighted_mse is not None:
            parts.insert(1, f"<b>weighted MSE</b> {self.weighted_mse:.4g}")
        params = f"scale {self.scale:.5g}"
        if self.min is not None:
            params += f", min {self.min:.5g}"
        if self.zero_point is not None:
            params += f", zero-point {self.zero_point}"
        if self.offset is not None:
            params += f", range offset {self.offset:+.3g}"
        parts.append(params)
        return " &nbsp;·&nbsp; ".join(parts)


def _curve_grid(x: NDArray, points: int) -> NDArray:
    lo, hi = float(x.min()), float(x.max())
    pad = 0.15 * (hi - lo) if hi > lo else max(1.0, abs(lo))
    return np.linspace(lo - pad, hi + pad, points)


def _zero_point(
    x: NDArray, n_bits: int, symmetric: bool, offset: float, method: str, w: NDArray | None
) -> dict[str, Any]:
    """Items 1-2 of the SPEC with the range scaled by ``1 + offset`` and an optional refit."""
    if symmetric:
        amax = float(np.max(np.abs(x)))
        alpha = None if amax == 0 else (1.0 + offset) * amax
        q, s = symmetric_quantization(x, alpha, n_bits)
        k = 2 ** (n_bits - 1) - 1
        lo_code, hi_code, z = -k, k, 0
    else:
        hi, lo = float(np.max(x)), float(np.min(x))
        if hi > lo:
            centre, half = (hi + lo) / 2, (1.0 + offset) * (hi - lo) / 2
            q, s, zp = asymmetric_quantization(x, centre + half, centre - half, n_bits)
        else:
            q, s, zp = asymmetric_quantization(x, None, None, n_bits)
        lo_code, hi_code, z = 0, 2**n_bits - 1, int(zp)
    scale = float(s)
    if method == "refit":
        refitted = float(lstsq_scale(x, q - z, w))
        if refitted > 0:  # all codes on the zero-point: keep the range's scale
            scale = refitted
    codes = np.arange(lo_code, hi_code + 1)
    return {
        "q": q,
        "x_hat": (q - z) * scale,
        "levels": (codes - z) * scale,
        "scale": scale,
        "min": None,
        "zero_point": None if symmetric else z,
        "offset": offset,
        "round": lambda t: (np.clip(np.round(t / scale) + z, lo_code, hi_code) - z) * scale,
        "table": None,
    }


def _min_convention(
    x: NDArray, n_bits: int, use_min: bool, offset: float, method: str, w: NDArray | None
) -> dict[str, Any]:
    """Item 4 of the SPEC (:class:`quantlab.Quantizer`) with every method of items 5-7."""
    quantizer = Quantizer(n_bits, use_min)
    scheme = Scheme(n_bits, use_min)
    used: float | None = offset
    table = None
    if method in ("round", "refit"):
        width = float(scheme.data_range(x[None, :])[0, 0])
        q, scale, minimum = quantizer.quantize(x, offset * width)
        if method == "refit":
            scale, minimum = quantizer.refit(x, q, w)
    else:
        res: QuantResult = quantizer.fit(x, w, method=method)
        q, scale, minimum, table = res.q, res.scale, res.min, res.table
        used = None
        if table is not None and table.best is not None:
            used = float(table["offset"][table.best])
    s = float(scale)
    m = None if minimum is None else float(minimum)
    codes = np.arange(scheme.qmin, scheme.qmax + 1)
    s_col = np.array([[s]])
    m_col = None if m is None else np.array([[m]])

    def rounder(t: NDArray) -> NDArray:
        codes_t = scheme.round(t[None, :], s_col, m_col)
        return scheme.dequantize(codes_t, s_col, m_col)[0]

    return {
        "q": q,
        "x_hat": scheme.dequantize(q, s, m),
        "levels": np.sort(scheme.dequantize(codes, s, m)),
        "scale": s,
        "min": m,
        "zero_point": None,
        "offset": used,
        "round": rounder,
        "table": table,
    }


def explore(
    x: ArrayLike,
    n_bits: int = 4,
    *,
    scheme: str = "use_min",
    method: str = "round",
    offset: float = 0.0,
    w: ArrayLike | None = None,
    curve_points: int = 256,
) -> Exploration:
    """Quantize ``x`` one way and measure everything an explorer shows.

    Parameters
    ----------
    x : array_like
        The values (flattened; one set of parameters for all of them).
    n_bits : int, default 4
        Bit width, 2 to 16.
    scheme : {"symmetric", "asymmetric", "signed_max", "use_min"}, default "use_min"
        ``"symmetric"``/``"asymmetric"``: the integer zero-point conventions (SPEC items 1-2);
        ``"signed_max"``/``"use_min"``: the "min" convention of weight formats (item 4,
        :class:`quantlab.Quantizer` with ``use_min`` False/True).
    method : {"round", "refit", "search", "refine", "optimum"}, default "round"
        ``"round"``: round to nearest with the (offset) min/max range; ``"refit"``: the same
        codes with least-squares parameters (the zero-point schemes refit ``S`` with ``Z``
        fixed); ``"search"``, ``"refine"``, ``"optimum"``: :meth:`quantlab.Quantizer.fit`
        (min convention only; ``"optimum"`` for ``"signed_max"`` only).
    offset : float, default 0.0
        Widen (> 0) or narrow (< 0, clipping) the range by this fraction of itself before the
        scale is computed. Used by ``"round"`` and ``"refit"``; must be > -1.
    w : array_like, optional
        Importance weights (shape of x) for the least-squares methods and the weighted MSE.
    curve_points : int, default 256
        Points of the staircase curve.

    Returns
    -------
    Exploration

    Raises
    ------
    ValueError
        For an unknown scheme or method, a method the scheme does not support, an offset
        ≤ -1, and the bad input :mod:`quantlab` rejects everywhere.

    Examples
    --------
    >>> from quantlab.data import X_EXAMPLE
    >>> s = explore(X_EXAMPLE, 4, scheme="signed_max")
    >>> s.q
    array([ 6, -1, -4, -6, -8,  4,  0,  3])
    >>> round(s.scale, 5)  # d = m / -2**(n-1) = -8.02601077 / -8
    1.00325
    >>> round(s.sqnr_db, 2)  # 10*log10(sum(x**2) / sum((x - d*q)**2)) = 10*log10(169.105 / 0.942)
    22.54
    """
    xa = as_float_array(x, "x").ravel()
    n = check_n_bits(n_bits, 2)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if method not in EXPLORER_METHODS:
        raise ValueError(f"method must be one of {EXPLORER_METHODS}, got {method!r}")
    off = as_finite_float(offset, "offset")
    if off <= -1:
        raise ValueError(f"offset must be greater than -1, got {off}")
    wa = None if w is None else as_weights(w, np.shape(x)).ravel()
    if scheme in ("symmetric", "asymmetric"):
        if method not in _ZERO_POINT_METHODS:
            raise ValueError(
                f"method {method!r} needs the min convention (scheme 'signed_max' or "
                f"'use_min'); scheme {scheme!r} supports {_ZERO_POINT_METHODS}"
            )
        parts = _zero_point(xa, n, scheme == "symmetric", off, method, wa)
    else:
        if method == "optimum" and scheme != "signed_max":
            raise ValueError("method 'optimum' is implemented for scheme 'signed_max' only")
        parts = _min_convention(xa, n, scheme == "use_min", off, method, wa)
    x_hat = np.asarray(parts["x_hat"], float)
    levels = np.asarray(parts["levels"], float)
    t = _curve_grid(xa, curve_points)
    return Exploration(
        x=xa,
        x_hat=x_hat,
        q=np.asarray(parts["q"], np.int64),
        levels=levels,
        clip_range=(float(levels.min()), float(levels.max())),
        scale=parts["scale"],
        min=parts["min"],
        zero_point=parts["zero_point"],
        n_bits=n,
        scheme=scheme,
        method=method,
        offset=parts["offset"],
        mse=float(mse(xa, x_hat)),
        sqnr_db=float(sqnr_db(xa, x_hat)),
        max_error=float(max_error(xa, x_hat)),
        weighted_mse=None if wa is None else float(mse(xa, x_hat, wa)),
        curve=(t, np.asarray(parts["round"](t), float)),
        table=parts["table"],
    )


@dataclass(frozen=True)
class SearchView:
    """A grid search and the error landscape around it, computed by :func:`search_view`.

    Attributes
    ----------
    result : QuantResult
        The search's best candidate (``.table`` has one row per candidate).
    scales : ndarray
        The landscape's scale grid.
    mins : ndarray or None
        The landscape's min grid (``use_min``); None for the symmetric scale.
    errors : ndarray
        Weighted MSE over the grid: ``(len(scales), len(mins))``, or ``(len(scales),)``.
    candidates : tuple of ndarray
        ``(scales, mins)`` of the refitted candidates (``use_min``) or ``(scales, errors)``.
    optimum : tuple of float
        ``(scale, min)`` (``use_min``) or ``(scale, error)`` of the best candidate.
    """

    result: QuantResult
    scales: NDArray[np.float64]
    mins: NDArray[np.float64] | None
    errors: NDArray[np.float64]
    candidates: tuple[NDArray[np.float64], NDArray[np.float64]]
    optimum: tuple[float, float]

    def readout(self) -> str:
        """HTML summary: best offset and parameters, error before/after refit."""
        t = self.result.table
        assert t is not None
        b = int(t.best) if t.best is not None else 0
        parts = [
            f"<b>best offset</b> {float(t['offset'][b]):+.4g}",
            f"<b>error before refit</b> {float(t['error_before'][b]):.4g}",
            f"<b>after refit</b> {float(self.result.error):.4g}",
            f"scale {float(self.result.scale):.5g}",
        ]
        if self.result.min is not None:
            parts.append(f"min {float(self.result.min):.5g}")
        return " &nbsp;·&nbsp; ".join(parts)


def _span(values: NDArray, centre: float, half: float) -> tuple[float, float]:
    lo = min(float(np.min(values)), centre - half)
    hi = max(float(np.max(values)), centre + half)
    pad = 0.1 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def search_view(
    x: ArrayLike,
    n_bits: int = 4,
    *,
    use_min: bool = True,
    w: ArrayLike | None = None,
    relative: bool = True,
    grid: int = 32,
) -> SearchView:
    """Grid search (SPEC item 7) with the landscape of the error around its candidates.

    Parameters
    ----------
    x : array_like
        The values (one set of parameters).
    n_bits : int, default 4
        Bit width.
    use_min : bool, default True
        The min convention with a minimum (2-D landscape over scale and min) or the signed
        scale (1-D: error against ``d``).
    w : array_like, optional
        Importance weights.
    relative : bool, default True
        quantlab's relative grid, or the reference grid in units of x (``relative=False``).
    grid : int, default 32
        Points per axis of the landscape.

    Returns
    -------
    SearchView
    """
    xa = as_float_array(x, "x").ravel()
    wa = None if w is None else as_weights(w, np.shape(x)).ravel()
    n = check_n_bits(n_bits, 2)
    quantizer = Quantizer(n, bool(use_min))
    # The explorer plots error against offset: a fixed grid (the relative one of +-25 %).
    offsets = DEFAULT_RELATIVE_OFFSETS if relative else None
    res = quantizer.search(xa, wa, offsets=offsets, relative=bool(relative))
    table = res.table
    assert table is not None
    cand_s = table["scale"]
    best_s = float(res.scale)
    if use_min:
        cand_m = table["min"]
        s_lo, s_hi = _span(cand_s, best_s, 0.3 * abs(best_s))
        m_lo, m_hi = _span(cand_m, float(res.min), 1.5 * abs(best_s))
        scales = np.linspace(max(s_lo, 1e-3 * abs(best_s) or 1e-12), s_hi, grid)
        mins = np.linspace(m_lo, m_hi, grid)
        errors = plots.error_landscape(xa, n, scales, mins, wa)
        return SearchView(res, scales, mins, errors, (cand_s, cand_m), (best_s, float(res.min)))
    # Symmetric: 1-D, the error of d (either sign, as in the min convention) on a grid.
    scheme = Scheme(n, False)
    s_lo, s_hi = _span(cand_s, best_s, 0.3 * abs(best_s))
    scales = np.linspace(s_lo, s_hi, grid * 4)
    scales = scales[scales != 0]
    wfull = np.ones_like(xa) if wa is None else wa
    q = scheme.round(xa[None, :], scales[:, None], None)
    errors = np.mean(wfull * (xa - scales[:, None] * q) ** 2, axis=1)
    return SearchView(
        res, scales, None, errors, (cand_s, table["error_after"]), (best_s, float(res.error))
    )


@dataclass(frozen=True)
class WeightComparison:
    """An unweighted and a weighted fit of the same values, by :func:`compare_weights`.

    Attributes
    ----------
    x, w : ndarray
        The values and the weights used.
    unweighted, weighted : QuantResult
        The fits without and with the weights.
    mse : tuple of float
        Plain MSE of (unweighted, weighted) fit.
    weighted_mse : tuple of float
        Weighted MSE ``mean(w*(x - x_hat)**2)`` of (unweighted, weighted) fit.
    """

    x: NDArray[np.float64]
    w: NDArray[np.float64]
    unweighted: QuantResult
    weighted: QuantResult
    mse: tuple[float, float]
    weighted_mse: tuple[float, float]

    def readout(self) -> str:
        """HTML summary comparing both fits on both measures."""
        return (
            f"<b>weighted MSE</b> unweighted fit {self.weighted_mse[0]:.4g} → weighted fit "
            f"{self.weighted_mse[1]:.4g} &nbsp;·&nbsp; <b>plain MSE</b> "
            f"{self.mse[0]:.4g} → {self.mse[1]:.4g}"
        )


def compare_weights(
    x: ArrayLike,
    w: ArrayLike,
    n_bits: int = 4,
    *,
    use_min: bool = False,
    method: str = "refit",
    strength: float = 1.0,
) -> WeightComparison:
    """Fit ``x`` without and with importance weights ``w**strength`` (SPEC item 6).

    Parameters
    ----------
    x : array_like
        The values.
    w : array_like
        Non-negative importance weights, shape of x.
    n_bits : int, default 4
        Bit width.
    use_min : bool, default False
        The min convention with or without a minimum.
    method : {"refit", "search", "refine", "optimum"}, default "refit"
        How both fits choose their parameters.
    strength : float, default 1.0
        Exponent applied to the weights: 0 gives uniform weights (both fits then agree exactly),
        1 the weights as given.

    Returns
    -------
    WeightComparison
    """
    xa = as_float_array(x, "x").ravel()
    wa = as_weights(w, np.shape(x)).ravel()
    gamma = as_finite_float(strength, "strength")
    if gamma < 0:
        raise ValueError(f"strength must be non-negative, got {gamma}")
    if method not in EXPLORER_METHODS or method == "round":
        raise ValueError(f"method must be one of {EXPLORER_METHODS[1:]}, got {method!r}")
    wg = np.where(wa > 0, wa, 0.0) ** gamma if gamma > 0 else np.ones_like(wa)
    quantizer = Quantizer(check_n_bits(n_bits, 2), bool(use_min))
    plain = quantizer.fit(xa, None, method=method)
    weighted = quantizer.fit(xa, wg, method=method)
    return WeightComparison(
        x=xa,
        w=wg,
        unweighted=plain,
        weighted=weighted,
        mse=(float(mse(xa, plain.x_hat)), float(mse(xa, weighted.x_hat))),
        weighted_mse=(float(mse(xa, plain.x_hat, wg)), float(mse(xa, weighted.x_hat, wg))),
    )


# ------------------------------------------------------------------------------------------------
# Widgets
# ------------------------------------------------------------------------------------------------
def find_artist(ax: Axes, label: str) -> Artist:
    """The artist of ``ax`` with this legend label (lines, collections, bar containers).

    Raises
    ------
    KeyError
        If no artist has the label.
    """
    for group in (ax.lines, ax.collections, ax.containers, ax.patches):
        for artist in group:
            if artist.get_label() == label:
                return artist
    raise KeyError(label)


def _nice_top(value: float) -> float:
    """An upper axis limit above ``value`` on an eighth-decade grid (1, 1.33, 1.78, 2.37, ...).

    Limits from this grid stay the same while ``value`` moves a little, so the plot's static
    part need not be redrawn.
    """
    if not value > 0:
        return 1.0
    return float(10 ** (np.ceil(8 * np.log10(1.05 * value)) / 8))


def _error_html(message: str) -> str:
    return f'<span style="color:#b00">{html.escape(message)}</span>'


class _Explorer(widgets.VBox):
    """Controls → pure function → in-place plot update → PNG in an Image, plus an HTML readout.

    Subclasses define :meth:`compute` (the pure function of the control values),
    :meth:`draw` (first drawing) and :meth:`redraw` (in-place update).
    """

    figsize: tuple[float, float] = (9.0, 3.4)
    dpi: int = 80
    ncols: int = 2
    margins: Mapping[str, float] = {"left": 0.09, "right": 0.97, "bottom": 0.16, "top": 0.92}

    def __init__(self, controls: Mapping[str, widgets.ValueWidget]) -> None:
        super().__init__()
        self.figure = Figure(figsize=self.figsize, dpi=self.dpi)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(wspace=0.28, **self.margins)
        axes = self.figure.subplots(1, self.ncols, squeeze=False)[0]
        self.axes: list[Axes] = list(axes)
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        self.state: Any = None
        self.error: str | None = None
        self._drawn = False
        self._background: Any = None
        self._background_key: tuple | None = None
        width = int(self.figsize[0] * self.dpi)
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        self.image.add_class("quantlab-plot")
        self.readout = widgets.HTML()
        self.readout.add_class("quantlab-readout")
        self.interactive = widgets.interactive(self._update, clear_output=False, **self.controls)
        box = widgets.HBox(
            list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.children = (box, self.image, self.readout)
        self.add_class("quantlab-explorer")

    # -- to be defined by subclasses --------------------------------------------------------
    def compute(self, **values: Any) -> Any:  # pragma: no cover - abstract
        """The pure function of the control values."""
        raise NotImplementedError

    def draw(self, state: Any) -> None:  # pragma: no cover - abstract
        """Draw the first state."""
        raise NotImplementedError

    def redraw(self, state: Any) -> None:
        """Update the drawing for a new state (default: clear and draw again)."""
        for ax in self.figure.axes:
            ax.clear()
        self._background = None
        self.draw(state)

    def animated(self) -> list[Artist]:
        """The artists :meth:`redraw` changes in place (default none: every render is full).

        :meth:`render` draws everything else once, keeps that background while no axis limit
        changes, and then only draws these artists on top of it (matplotlib "blitting").
        """
        return []

    # -- machinery ----------------------------------------------------------------------------
    def _update(self, **values: Any) -> Any:
        try:
            state = self.compute(**values)
        except ValueError as exc:  # e.g. a method the scheme does not support
            self.error = str(exc)
            self.readout.value = _error_html(self.error)
            return None
        self.error = None
        if self._drawn:
            self.redraw(state)
        else:
            self.draw(state)
            self._drawn = True
        self.state = state
        self.readout.value = state.readout()
        self.image.value = self.render()
        return state

    def render(self) -> bytes:
        """The figure as PNG bytes.

        The static part (axes, ticks, labels, fixed artists) is drawn only when it changes:
        when an axis limit differs from the cached background's, or after a full
        :meth:`redraw`. The :meth:`animated` artists, then the legends of their axes, are drawn
        over it.
        """
        canvas = self.figure.canvas
        moving = self.animated()
        # Legends stay on top of what moves in their axes (as in a full drawing, zorder 5).
        with_moving = {artist.axes for artist in moving}
        moving += [
            ax.get_legend()
            for ax in self.figure.axes
            if ax in with_moving and ax.get_legend() is not None
        ]
        key = tuple((ax.get_xlim(), ax.get_ylim()) for ax in self.figure.axes)
        if self._background is None or key != self._background_key:
            for artist in moving:
                artist.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_key = key
        else:
            canvas.restore_region(self._background)
        for artist in moving:
            self.figure.draw_artist(artist)
        image = PILImage.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])  # opaque: RGB
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def update(self, **values: Any) -> Any:
        """Set several controls at once (one update) and return the new state."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown controls {sorted(unknown)}; have {sorted(self.controls)}")
        with self.interactive.hold_sync():
            for name, value in values.items():
                ctl = self.controls[name]
                ctl.unobserve(self.interactive.update, names="value")
                try:
                    ctl.value = value
                finally:
                    ctl.observe(self.interactive.update, names="value")
        self.interactive.update()
        return self.interactive.result


def _weights_for(x: NDArray, w: ArrayLike | None) -> NDArray[np.float64]:
    return example_weights(x.size) if w is None else as_weights(w, x.shape)


def _data(x: ArrayLike | None) -> NDArray[np.float64]:
    return np.array(X_EXAMPLE) if x is None else as_float_array(x, "x").ravel()


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
                options=EXPLORER_METHODS, value=method, description="method"
            ),
            "weights": widgets.Checkbox(value=weights, description="importance weights"),
        }
        super().__init__(controls)

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
        title = f"{state.scheme}, {state.method}, {state.n_bits} bits"
        left.set_title(title, fontsize="small")
        right.set_title(f"SQNR {state.sqnr_db:.2f} dB", fontsize="small")


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
                       markersize=12, label="optimum")  # fmt: skip
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
        find_artist(right, "optimum").set_data([state.optimum[0]], [state.optimum[1]])
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
                options=EXPLORER_METHODS, value=method, description="method"
            ),
            "weights": widgets.Checkbox(value=False, description="importance weights"),
        }
        super().__init__(controls)

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
        self.use_min = bool(use_min)
        controls = {
            "n_bits": widgets.IntSlider(n_bits, min=2, max=8, description="bits"),
            "strength": widgets.FloatSlider(1.0, min=0.0, max=2.0, step=0.1, description="w**γ"),
            "method": widgets.Dropdown(
                options=EXPLORER_METHODS[1:], value="refit", description="method"
            ),
        }
        super().__init__(controls)

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
