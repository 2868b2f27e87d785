"""Least-squares refit of the parameters for fixed codes (SPEC items 5 and 6).

With the codes fixed, the (weighted) squared error is a quadratic in the parameters, so the best
parameters have a closed form. Symmetric, minimising ``sum(w * (x - d*q)**2)``::

    d = sum(w*x*q) / sum(w*q**2)

With a minimum, minimising ``sum(w * (scale*l + min - x)**2)`` gives the 2x2 normal equations::

    D     = sum(w) * sum(w*l**2) - sum(w*l)**2
    scale = (sum(w) * sum(w*l*x) - sum(w*x) * sum(w*l)) / D
    min   = (sum(w*x) * sum(w*l**2) - sum(w*x*l) * sum(w*l)) / D

Without weights, ``w = 1`` and ``sum(w)`` is ``N``. The notebooks derive both with sympy
(:mod:`quantlab.symbolic`).

Degenerate cases get the minimiser, never NaN:

- every weight zero: the weighted error is zero whatever the parameters, and the unweighted
  solution is returned;
- symmetric, every (weighted) code zero: ``x_hat = 0`` whatever ``d``; ``d = 0`` is returned;
- with a minimum, all (weighted) codes equal: the normal equations are singular; ``scale = 0``
  and ``min = `` the weighted mean of ``x`` (the best constant) is returned.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_codes, as_float_array, as_weights, check_same_shape
from .grouping import Grouping


def effective_weights(wg: NDArray) -> NDArray:
    """Per-group weights with all-zero groups replaced by uniform weights."""
    return np.where(wg.sum(axis=1, keepdims=True) > 0, wg, 1.0)


def _refit_weights(wg: NDArray) -> NDArray:
    """Effective weights divided by their largest value per group.

    The least-squares solution does not change when the weights are scaled, and uniform weights
    become exactly 1: they reproduce the unweighted result bit for bit (SPEC item 6).
    """
    wg = effective_weights(wg)
    return wg / wg.max(axis=1, keepdims=True)


def scale_groups(xg: NDArray, qg: NDArray, wg: NDArray) -> NDArray:
    """``d = sum(w*x*q) / sum(w*q**2)`` per row of ``(n_groups, group_size)`` arrays.

    Returns a ``(n_groups, 1)`` column; ``d = 0`` where every weighted code is zero.
    """
    wg = _refit_weights(wg)
    sxq = np.sum(wg * xg * qg, axis=1, keepdims=True)
    sqq = np.sum(wg * qg * qg, axis=1, keepdims=True)
    return np.divide(sxq, sqq, out=np.zeros_like(sxq), where=sqq > 0)


def scale_min_groups(xg: NDArray, lg: NDArray, wg: NDArray) -> tuple[NDArray, NDArray]:
    """Weighted normal equations for ``(scale, min)`` per row; ``(n_groups, 1)`` columns.

    Singular rows (all codes with positive weight equal) get ``scale = 0`` and ``min`` equal to
    the weighted mean of ``x``.

    Computed in the centred form of the same solution: with the weighted means
    ``l_bar = sum(w*l)/sum(w)`` and ``x_bar = sum(w*x)/sum(w)``,
    ``scale = sum(w*(l - l_bar)*(x - x_bar)) / sum(w*(l - l_bar)**2)`` and
    ``min = x_bar - scale*l_bar`` (dividing the numerators and ``D`` above by ``sum(w)``). It
    avoids the cancellation in ``D`` (which can round to 0 for very unequal weights) and in the
    numerators (data far from 0).
    """
    wg = _refit_weights(wg)
    sw = wg.sum(axis=1, keepdims=True)  # >= 1: the largest weight is 1
    l_bar = np.sum(wg * lg, axis=1, keepdims=True) / sw
    # x_bar about a reference value of the group: exact for a constant group.
    x_ref = np.take_along_axis(xg, np.argmax(wg, axis=1)[:, None], axis=1)
    x_bar = x_ref + np.sum(wg * (xg - x_ref), axis=1, keepdims=True) / sw
    used = wg > 0
    lmax = np.where(used, lg, -np.inf).max(axis=1, keepdims=True)
    lmin = np.where(used, lg, np.inf).min(axis=1, keepdims=True)
    dl = np.where(lmax > lmin, lg - l_bar, 0.0)  # exactly 0 in singular rows
    sll = np.sum(wg * dl * dl, axis=1, keepdims=True)
    slx = np.sum(wg * dl * (xg - x_bar), axis=1, keepdims=True)
    scale = np.divide(slx, sll, out=np.zeros_like(slx), where=sll > 0)
    minimum = x_bar - scale * l_bar
    return scale, minimum


def _prepare(x, q, w, channel_axis, block_size):
    xa = as_float_array(x, "x")
    codes = as_codes(q, "q")
    check_same_shape(xa, codes, "x", "q")
    wa = as_weights(w, xa.shape)
    g = Grouping(channel_axis, block_size)
    return g, xa.shape, g.to_groups(xa), g.to_groups(codes).astype(np.float64), g.to_groups(wa)


def lstsq_scale(
    x: ArrayLike,
    q: ArrayLike,
    w: ArrayLike | None = None,
    *,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> NDArray[np.float64]:
    """Least-squares scale for fixed codes: ``d = sum(w*x*q) / sum(w*q**2)``.

    Minimises ``sum(w * (x - d*q)**2)`` over ``d`` for each group.

    Parameters
    ----------
    x : array_like
        Original values.
    q : array_like of int
        Codes, same shape as ``x``.
    w : array_like, optional
        Non-negative importance weights, same shape as ``x``; default uniform.
    channel_axis, block_size : int, optional
        Per-channel or per-block scales.

    Returns
    -------
    d : ndarray of float64
        The scale (0-d for per-tensor, else the parameter shape); ``0`` when every code is zero.

    Examples
    --------
    >>> float(lstsq_scale([1.0, 2.1, -2.9], [1, 2, -3]))
    0.9928571428571428
    """
    g, shape, xg, qg, wg = _prepare(x, q, w, channel_axis, block_size)
    return g.params_from_groups(scale_groups(xg, qg, wg), shape)


def lstsq_scale_min(
    x: ArrayLike,
    q: ArrayLike,
    w: ArrayLike | None = None,
    *,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares ``(scale, min)`` for fixed codes ``l``: ``x_hat = scale*l + min``.

    Solves the weighted normal equations of ``sum(w * (scale*l + min - x)**2)``::

        D     = sum(w) * sum(w*l**2) - sum(w*l)**2
        scale = (sum(w) * sum(w*l*x) - sum(w*x) * sum(w*l)) / D
        min   = (sum(w*x) * sum(w*l**2) - sum(w*x*l) * sum(w*l)) / D

    Parameters
    ----------
    x : array_like
        Original values.
    q : array_like of int
        Codes ``l``, same shape as ``x``.
    w : array_like, optional
        Non-negative importance weights, same shape as ``x``; default uniform.
    channel_axis, block_size : int, optional
        Per-channel or per-block parameters.

    Returns
    -------
    scale, min : ndarray of float64
        0-d for per-tensor, else the parameter shape. When all codes are equal (``D = 0``),
        ``scale = 0`` and ``min`` is the weighted mean of ``x``.

    Examples
    --------
    >>> scale, m = lstsq_scale_min([0.5, 1.5, 2.5], [0, 1, 2])
    >>> float(scale), float(m)
    (1.0, 0.5)
    """
    g, shape, xg, lg, wg = _prepare(x, q, w, channel_axis, block_size)
    scale, minimum = scale_min_groups(xg, lg, wg)
    return g.params_from_groups(scale, shape), g.params_from_groups(minimum, shape)
