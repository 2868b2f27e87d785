"""The pure functions behind the explorers and the plots: one setting in, every number out.

:func:`explore` quantizes an array one way (scheme, method, bits, range offset, weights) and
measures everything an explorer shows; :func:`search_view` runs a grid search with the error
landscape around it; :func:`compare_weights` fits with and without importance weights;
:func:`bits_sweep` measures SQNR against bits; :func:`error_landscape` evaluates the error over a
grid of (scale, min). They import neither matplotlib nor ipywidgets: :mod:`quantlab.plots` draws
their results and :mod:`quantlab.widgets` wires them to controls, and both import this module
(not each other), so the course layer has no import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import (
    MAX_ABS,
    as_finite_float,
    as_float_array,
    as_weights,
    check_bool,
    check_n_bits,
)
from .lstsq import lstsq_scale
from .metrics import max_error, mse, sqnr_db
from .quantizer import Quantizer, QuantResult
from .scheme import Scheme
from .search import DEFAULT_RELATIVE_OFFSETS
from .table import Table
from .uniform import asymmetric_quantization, symmetric_quantization

__all__ = [
    "DB_PER_BIT",
    "EXPLORER_METHODS",
    "OFFSET_METHODS",
    "SCHEMES",
    "Exploration",
    "SearchView",
    "WeightComparison",
    "bits_sweep",
    "compare_weights",
    "error_landscape",
    "example_weights",
    "explore",
    "methods_for",
    "search_view",
]

#: SQNR gained per extra bit by the uniform-noise model: ``20*log10(2)`` ≈ 6.02 dB.
DB_PER_BIT = float(20.0 * np.log10(2.0))

#: The schemes an explorer offers: the zero-point conventions of SPEC items 1-2 and the "min"
#: convention of weight formats (item 4), without (``"signed_max"``) and with a minimum.
SCHEMES = ("symmetric", "asymmetric", "signed_max", "use_min")
#: The methods an explorer offers (``"round"`` is round-to-nearest with the min/max range).
EXPLORER_METHODS = ("round", "refit", "search", "refine", "optimum")

_ZERO_POINT_METHODS = ("round", "refit")
#: The methods whose range the "range offset" control sets (the others choose their own range).
OFFSET_METHODS = ("round", "refit")


def methods_for(scheme: str) -> tuple[str, ...]:
    """The methods :func:`explore` implements for ``scheme`` (what an explorer offers).

    The zero-point schemes (SPEC items 1-2) round with their range, optionally refitting ``S``;
    the search, refinement and optimum of items 5-7 belong to the min convention (item 4), and
    the exact optimum to its symmetric form (``"signed_max"``).

    Examples
    --------
    >>> methods_for("asymmetric")
    ('round', 'refit')
    >>> methods_for("signed_max")
    ('round', 'refit', 'search', 'refine', 'optimum')
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme in ("symmetric", "asymmetric"):
        return _ZERO_POINT_METHODS
    if scheme == "use_min":
        return tuple(m for m in EXPLORER_METHODS if m != "optimum")
    return EXPLORER_METHODS


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
    if method not in methods_for(scheme):
        needs = "the min convention (scheme 'signed_max' or 'use_min')"
        if scheme not in ("symmetric", "asymmetric"):
            needs = "scheme 'signed_max'"
        raise ValueError(
            f"method {method!r} needs {needs}; scheme {scheme!r} supports {methods_for(scheme)}"
        )
    if scheme in ("symmetric", "asymmetric"):
        parts = _zero_point(xa, n, scheme == "symmetric", off, method, wa)
    else:
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
    use_min = check_bool(use_min, "use_min")
    relative = check_bool(relative, "relative")
    if isinstance(grid, (bool, np.bool_)) or not isinstance(grid, (int, np.integer)):
        raise TypeError(f"grid must be an integer, got {grid!r}")
    if grid < 2:
        raise ValueError(f"grid must be at least 2 points, got {grid}")
    quantizer = Quantizer(n, use_min)
    # The explorer plots error against offset: a fixed grid (the relative one of +-25 %).
    offsets = DEFAULT_RELATIVE_OFFSETS if relative else None
    res = quantizer.search(xa, wa, offsets=offsets, relative=relative)
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
        errors = error_landscape(xa, n, scales, mins, wa)
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
    with np.errstate(over="ignore"):
        wg = np.where(wa > 0, wa, 0.0) ** gamma if gamma > 0 else np.ones_like(wa)
    if not np.all(wg <= MAX_ABS):
        raise ValueError(
            f"strength={gamma:g} makes w**strength overflow (max w = {wa.max():.3g}): use a "
            "smaller strength or rescale w"
        )
    quantizer = Quantizer(check_n_bits(n_bits, 2), check_bool(use_min, "use_min"))
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


def error_landscape(
    x: ArrayLike,
    n_bits: int,
    scales: ArrayLike,
    mins: ArrayLike,
    w: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Weighted MSE of the min convention over a grid of ``(scale, min)``.

    At each point the codes are rounded for those parameters,
    ``l = clip(round((x - min)/scale), 0, 2**n - 1)``, and the error is
    ``mean(w * (x - scale*l - min)**2)``: the real, piecewise landscape a search explores.

    Parameters
    ----------
    x : array_like
        The values.
    n_bits : int
        Bit width.
    scales : array_like
        Positive scales (the grid's first axis).
    mins : array_like
        Minimums (the grid's second axis).
    w : array_like, optional
        Importance weights, shape of x.

    Returns
    -------
    ndarray of float64
        Shape ``(len(scales), len(mins))``.
    """
    xa = as_float_array(x, "x").ravel()
    wa = as_weights(w, np.shape(as_float_array(x, "x"))).ravel()
    n = check_n_bits(n_bits, 2)
    s = as_float_array(scales, "scales").ravel()
    m = as_float_array(mins, "mins").ravel()
    if np.any(s <= 0):
        raise ValueError("scales must be positive")
    qmax = 2**n - 1
    out = np.empty((s.size, m.size))
    shifted = xa[None, :] - m[:, None]  # (mins, N)
    weighted = w is not None
    # Batches of scales bound the temporary (batch, mins, N) array; the work is vectorized.
    step = max(1, (1 << 20) // max(1, m.size * xa.size))
    for i in range(0, s.size, step):
        sc = s[i : i + step, None, None]
        with np.errstate(over="ignore"):  # a quotient beyond float64 is clipped to qmax below
            r = shifted / sc
        np.round(r, out=r)
        np.clip(r, 0, qmax, out=r)
        r *= sc
        np.subtract(shifted, r, out=r)
        np.square(r, out=r)
        if weighted:
            r *= wa
        np.mean(r, axis=-1, out=out[i : i + step])
    return out


def bits_sweep(
    x: ArrayLike,
    bits: Sequence[int] = tuple(range(2, 9)),
    *,
    scheme: str = "symmetric",
    method: str = "round",
    w: ArrayLike | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Measured SQNR of ``x`` for each bit width.

    Parameters
    ----------
    x : array_like
        The values.
    bits : sequence of int, default 2..8
        Bit widths to try.
    scheme, method : str
        As in :func:`explore`.
    w : array_like, optional
        Importance weights for the methods that use them.

    Returns
    -------
    bits : ndarray of int64
    sqnr : ndarray of float64
        SQNR in dB for each bit width.
    """
    if isinstance(bits, (str, bytes)) or not isinstance(bits, (Sequence, np.ndarray, range)):
        raise TypeError(f"bits must be a sequence of integers, got {bits!r}")
    items = list(np.ravel(np.asarray(bits, dtype=object)))
    if not items:
        raise ValueError("bits must not be empty")
    for n in items:  # 2.5 is refused, not truncated; each width as the quantizers check it
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"bits must hold integers, got {n!r}")
        if not 2 <= n <= 16:
            raise ValueError(f"bits must hold widths between 2 and 16, got {n}")
    b = np.array([int(n) for n in items], dtype=np.int64)
    states = [explore(x, int(n), scheme=scheme, method=method, w=w) for n in b]
    return b, np.array([s.sqnr_db for s in states], dtype=float)
