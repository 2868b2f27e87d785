"""Plots that let a learner *see* quantization (matplotlib).

Every ``plot_*`` function takes data and an optional :class:`~matplotlib.axes.Axes` and returns
the Axes it drew on (``ax.figure`` is the figure). Without ``ax`` a new pyplot figure is created,
so in a notebook the plot appears inline. The artists carry legend labels so that tests and
widgets can find them and update their data in place:

- :func:`plot_histogram`: histogram of x with the quantization levels and the clipping range;
- :func:`plot_staircase`: x against x_hat, with the quantizer's staircase transfer curve;
- :func:`plot_search`: error against the range offset of a grid search, before and after refit;
- :func:`plot_bits`: SQNR against bits, against the 6.02 dB-per-bit rule;
- :func:`plot_landscape`: the error over (scale, min) as a contour, with the least-squares
  optimum and the search candidates marked;
- :func:`plot_weighted_errors`: per-element errors of an unweighted and a weighted fit.

The numbers behind the plots come from plain functions (:func:`bits_sweep`,
:func:`error_landscape` and :mod:`quantlab.widgets`' ``explore``), tested without pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from numpy.typing import ArrayLike, NDArray

from ._validation import as_finite_float, as_float_array, as_weights, check_n_bits
from .table import Table

#: SQNR gained per extra bit by the uniform-noise model: ``20*log10(2)`` ≈ 6.02 dB.
DB_PER_BIT = float(20.0 * np.log10(2.0))

__all__ = [
    "DB_PER_BIT",
    "bar_steps",
    "bits_sweep",
    "contour_landscape",
    "error_landscape",
    "plot_bits",
    "plot_histogram",
    "plot_landscape",
    "plot_search",
    "plot_staircase",
    "plot_weighted_errors",
]


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.5)) -> Axes:
    """``ax`` itself, or the Axes of a new pyplot figure."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _finish(ax: Axes, xlabel: str, ylabel: str, legend: str | None = "upper right") -> None:
    """Axis labels and a small legend at ``legend`` (None: no legend)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(loc=legend, fontsize="small")


def _level_segments(levels: NDArray, height: float) -> list[NDArray]:
    return [np.array([[v, 0.0], [v, height]]) for v in np.ravel(levels)]


def level_style(n_levels: int) -> dict[str, float]:
    """Line width and opacity of ``n_levels`` level lines over a histogram.

    Up to 32 levels (5 bits) each line is clearly drawn; beyond, the lines get thinner and
    fainter in proportion, so that the 128-256 levels of 7-8 bits shade the histogram instead
    of hiding it.
    """
    crowd = max(1.0, n_levels / 32)
    return {"linewidths": 0.8 / crowd**0.5, "alpha": 0.7 / crowd**0.5}


def plot_histogram(
    x: ArrayLike,
    levels: ArrayLike | None = None,
    clip_range: tuple[float, float] | None = None,
    *,
    bins: int = 40,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of ``x`` with the quantization levels and the clipping range overlaid.

    Parameters
    ----------
    x : array_like
        The values.
    levels : array_like, optional
        Every value the quantizer can reproduce (drawn as thin vertical lines, label
        ``"levels"``, a :class:`~matplotlib.collections.LineCollection`).
    clip_range : tuple of float, optional
        ``(lo, hi)``: values outside are clipped (two dashed lines, label ``"clip range"``).
    bins : int, default 40
        Number of histogram bins.
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
        With the bars labelled ``"x"``.
    """
    xa = as_float_array(x, "x").ravel()
    ax = _axes(ax)
    counts, _, _ = ax.hist(xa, bins=bins, color="0.75", label="x")
    top = float(np.max(counts)) if counts.size else 1.0
    if levels is not None:
        lv = np.asarray(levels, float)
        lc = LineCollection(
            _level_segments(lv, top), colors="tab:blue", label="levels", **level_style(lv.size)
        )
        ax.add_collection(lc)
    if clip_range is not None:
        lo, hi = (float(v) for v in clip_range)
        ax.plot([lo, lo, np.nan, hi, hi], [0, top, np.nan, 0, top], "--", color="tab:red",
                label="clip range")  # fmt: skip
    _finish(ax, "x", "count", "upper right")
    return ax


def plot_staircase(
    x: ArrayLike,
    x_hat: ArrayLike,
    *,
    curve: tuple[ArrayLike, ArrayLike] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """``x`` against ``x_hat``: the staircase of a uniform quantizer.

    Parameters
    ----------
    x, x_hat : array_like
        Original and dequantized values (drawn as points, label ``"values"``, sorted by x).
    curve : tuple of array_like, optional
        ``(t, t_hat)``: the transfer curve on a dense grid (label ``"staircase"``).
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
        Also with the identity line ``x_hat = x`` (label ``"x̂ = x"``).
    """
    xa = as_float_array(x, "x").ravel()
    xh = as_float_array(x_hat, "x_hat").ravel()
    if xa.shape != xh.shape:
        raise ValueError(f"x and x_hat must have the same size, got {xa.size} and {xh.size}")
    ax = _axes(ax)
    order = np.argsort(xa, kind="stable")
    lo, hi = float(xa.min()), float(xa.max())
    ax.plot([lo, hi], [lo, hi], ":", color="0.5", label="x̂ = x")
    if curve is not None:
        t, t_hat = (np.asarray(c, float) for c in curve)
        ax.plot(t, t_hat, "-", color="tab:blue", linewidth=1.2, label="staircase")
    ax.plot(xa[order], xh[order], "o", color="tab:orange", markersize=3, label="values")
    _finish(ax, "x", "x̂", "upper left")
    return ax


def plot_search(table: Table, *, ax: Axes | None = None) -> Axes:
    """Error against the range offset of a grid search, before and after the refit.

    Parameters
    ----------
    table : Table
        A search table (``Quantizer.search(...).table``) with columns ``"offset"``,
        ``"error_before"`` and ``"error_after"``; its ``best`` row is marked.
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
        Lines labelled ``"before refit"`` and ``"after refit"``, the marker ``"best"``.
    """
    for name in ("offset", "error_before", "error_after"):
        if name not in table.columns:
            raise ValueError(f"table must have a column {name!r}, got {table.columns}")
    ax = _axes(ax)
    off = table["offset"]
    ax.plot(off, table["error_before"], "o-", markersize=3, label="before refit")
    ax.plot(off, table["error_after"], "s-", markersize=3, label="after refit")
    if table.best is not None:
        b = int(table.best)
        ax.plot([off[b]], [table["error_after"][b]], "*", color="tab:red", markersize=12,
                label="best")  # fmt: skip
    _finish(ax, "offset", "error (MSE)", "upper right")
    return ax


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
        As in :func:`quantlab.widgets.explore`.
    w : array_like, optional
        Importance weights for the methods that use them.

    Returns
    -------
    bits : ndarray of int64
    sqnr : ndarray of float64
        SQNR in dB for each bit width.
    """
    from .widgets import explore  # the widgets' pure function; imported late (no cycle)

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


def plot_bits(
    bits: ArrayLike,
    sqnr: ArrayLike,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Measured SQNR against bits, with the 6.02 dB-per-bit rule.

    The rule's line has slope :data:`DB_PER_BIT` and the intercept that fits the measured points
    best (least squares), so the eye compares slopes.

    Parameters
    ----------
    bits, sqnr : array_like
        Bit widths and SQNR in dB (e.g. from :func:`bits_sweep`).
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
        Lines labelled ``"measured"`` and ``"6.02 dB/bit"``.
    """
    b = as_float_array(bits, "bits").ravel()
    s = as_float_array(sqnr, "sqnr").ravel()
    if b.shape != s.shape:
        raise ValueError(f"bits and sqnr must have the same size, got {b.size} and {s.size}")
    ax = _axes(ax)
    intercept = float(np.mean(s - DB_PER_BIT * b))
    ax.plot(b, DB_PER_BIT * b + intercept, "--", color="0.4", label=f"{DB_PER_BIT:.2f} dB/bit")
    ax.plot(b, s, "o-", color="tab:blue", label="measured")
    _finish(ax, "bits", "SQNR (dB)", "upper left")
    return ax


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


def contour_landscape(ax: Axes, scales: NDArray, mins: NDArray, errors: NDArray) -> list[Artist]:
    """Filled contours of ``log10(errors)`` (20 levels) with thin contour lines; returns both.

    ``errors`` has shape ``(len(scales), len(mins))``; zeros are drawn at the smallest float.
    """
    z = np.log10(np.maximum(errors, np.finfo(float).tiny)).T
    return [
        ax.contourf(scales, mins, z, levels=20, cmap="viridis", zorder=1),
        ax.contour(scales, mins, z, levels=20, colors="k", linewidths=0.3, alpha=0.5, zorder=2),
    ]


def plot_landscape(
    scales: ArrayLike,
    mins: ArrayLike,
    errors: ArrayLike,
    *,
    optimum: tuple[float, float] | None = None,
    candidates: tuple[ArrayLike, ArrayLike] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Contour of the error over ``(scale, min)`` with the optimum and candidates marked.

    Parameters
    ----------
    scales, mins : array_like
        The grid (x and y axes of the plot).
    errors : array_like
        Shape ``(len(scales), len(mins))``, e.g. from :func:`error_landscape`; drawn on a log
        scale.
    optimum : tuple of float, optional
        ``(scale, min)`` of the best candidate (label ``"best candidate"``): the lowest
        error among the refitted candidates, not necessarily the global optimum.
    candidates : tuple of array_like, optional
        ``(scales, mins)`` of the search candidates after refit (label ``"candidates"``).
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
    """
    s = as_float_array(scales, "scales").ravel()
    m = as_float_array(mins, "mins").ravel()
    e = as_float_array(errors, "errors")
    if e.shape != (s.size, m.size):
        raise ValueError(f"errors must have shape {(s.size, m.size)}, got {e.shape}")
    ax = _axes(ax)
    contour_landscape(ax, s, m, e)
    if candidates is not None:
        cs, cm = (np.asarray(c, float).ravel() for c in candidates)
        ax.plot(cs, cm, "o", color="white", markeredgecolor="k", markersize=4, label="candidates",
                zorder=3)  # fmt: skip
    if optimum is not None:
        ax.plot([optimum[0]], [optimum[1]], "*", color="tab:red", markersize=14,
                label="best candidate", zorder=3)  # fmt: skip
    ax.set_title("log10 error", fontsize="small")
    marked = optimum is not None or candidates is not None
    _finish(ax, "scale", "min", "upper right" if marked else None)
    return ax


def bar_steps(
    left: ArrayLike, width: float, heights: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Edges and values of a step patch that draws one bar per element.

    Bar ``i`` spans ``[left[i], left[i] + width]`` with height ``heights[i]``; the gaps between
    bars are steps of height 0. One :meth:`~matplotlib.axes.Axes.stairs` patch draws thousands
    of bars as fast as one (a bar container holds one rectangle per element).

    Returns
    -------
    edges : ndarray
        ``2n`` increasing edges.
    values : ndarray
        ``2n - 1`` step heights: ``values[::2]`` are the bar heights.
    """
    lo = as_float_array(left, "left").ravel()
    h = as_float_array(heights, "heights").ravel()
    if lo.size != h.size:
        raise ValueError(
            f"left and heights must have the same size (one bar each), got {lo.size} and {h.size}"
        )
    wd = as_finite_float(width, "width")
    if wd <= 0:
        raise ValueError(f"width must be positive, got {wd}")
    edges = np.column_stack([lo, lo + wd]).ravel()
    values = np.zeros(max(2 * h.size - 1, 0))
    values[::2] = h
    return edges, values


def plot_weighted_errors(
    x: ArrayLike,
    x_hat: ArrayLike,
    x_hat_weighted: ArrayLike,
    w: ArrayLike,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Per-element squared error ``(x - x_hat)**2`` of an unweighted and a weighted fit.

    Parameters
    ----------
    x : array_like
        The values.
    x_hat, x_hat_weighted : array_like
        Reconstructions by the unweighted and the weighted fit.
    w : array_like
        The importance weights (drawn on a second y axis, label ``"weight"``).
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
        Two bars per element: element ``i``'s bars span ``[i - 0.4, i]`` (label
        ``"unweighted fit"``) and ``[i, i + 0.4]`` (label ``"weighted fit"``). Each series is one
        :class:`~matplotlib.patches.StepPatch` (see :func:`bar_steps`):
        ``patch.get_data().values[::2]`` are the bar heights.
    """
    xa = as_float_array(x, "x").ravel()
    xh0 = as_float_array(x_hat, "x_hat").ravel()
    xh1 = as_float_array(x_hat_weighted, "x_hat_weighted").ravel()
    if xh0.shape != xa.shape or xh1.shape != xa.shape:
        raise ValueError(
            f"x, x_hat and x_hat_weighted must have the same size, got {xa.size}, {xh0.size} "
            f"and {xh1.size}"
        )
    e0, e1 = (xa - xh0) ** 2, (xa - xh1) ** 2
    wa = as_weights(w, xa.shape)
    ax = _axes(ax)
    idx = np.arange(xa.size, dtype=float)
    for left, err, color, label in (
        (idx - 0.4, e0, "tab:gray", "unweighted fit"),
        (idx, e1, "tab:green", "weighted fit"),
    ):
        edges, values = bar_steps(left, 0.4, err)
        ax.stairs(values, edges, fill=True, color=color, linewidth=0, label=label)
    ax.set_xlim(-0.6, xa.size - 0.4)
    ax.set_ylim(0, 1.1 * max(float(e0.max()), float(e1.max())) or 1.0)
    ax.set_xlabel("element")
    ax.set_ylabel("squared error")
    twin = ax.twinx()
    twin.plot(idx, wa, "d", color="tab:purple", markersize=4 if xa.size <= 64 else 1.5,
              label="weight")  # fmt: skip
    twin.set_ylim(0, 1.1 * float(wa.max()) or 1.0)
    twin.set_ylabel("weight")
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right", fontsize="small")
    return ax
