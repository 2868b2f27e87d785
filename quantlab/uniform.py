"""Uniform quantization with an integer zero-point (SPEC items 1 and 2).

Asymmetric (PyTorch, ONNX, TFLite convention), with alpha = max(x), beta = min(x)::

    S = (alpha - beta) / (2**n - 1)
    Z = round(-beta / S)                       # an integer: zero is represented exactly
    q = clip(round(x / S) + Z, 0, 2**n - 1)
    x_hat = (q - Z) * S

Symmetric, with alpha = max|x|::

    S = alpha / (2**(n-1) - 1)
    q = clip(round(x / S), -(2**(n-1) - 1), 2**(n-1) - 1)     # restricted range
    x_hat = q * S

``round`` is round-half-to-even (``np.round``), as in PyTorch and ONNX.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_codes, as_float_array, check_bool, check_n_bits
from .grouping import Grouping

#: The smallest positive float64: a scale never underflows to 0.
_TINY = np.finfo(np.float64).smallest_subnormal


def _explicit_param(value: ArrayLike, shape: tuple[int, ...], g: Grouping, name: str) -> NDArray:
    """An explicit alpha/beta/S as a ``(n_groups, 1)`` float column."""
    return g.params_to_groups(as_float_array(value, name), shape, name)


def asymmetric_quantization(
    x: ArrayLike,
    alpha: ArrayLike | None = None,
    beta: ArrayLike | None = None,
    n_bits: int = 8,
    *,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Quantize ``x`` to unsigned n-bit codes with a scale and an integer zero-point.

    ``S = (alpha - beta) / (2**n - 1)``, ``Z = round(-beta / S)``,
    ``q = clip(round(x / S) + Z, 0, 2**n - 1)``.

    Parameters
    ----------
    x : array_like
        Values to quantize.
    alpha, beta : array_like, optional
        Upper and lower end of the range; default ``max(x)`` and ``min(x)`` (per group). Values
        outside ``[beta, alpha]`` are clipped. A scalar or an array of the parameter shape.
    n_bits : int, default 8
        Bit width, 1 to 16.
    channel_axis, block_size : int, optional
        Per-channel or per-block parameters (see :class:`quantlab.grouping.Grouping`).

    Returns
    -------
    q : ndarray of int64
        Codes in ``[0, 2**n - 1]``, shape of ``x``.
    S : ndarray of float64
        Scale (0-d for per-tensor, else the parameter shape).
    Z : ndarray of int64
        Integer zero-point, same shape as ``S``.

    Notes
    -----
    A constant group (``max == min``, only possible with the default range) has no width: its
    range is widened to include zero, so the constant is still reproduced; an all-zero group gets
    ``S = 1``, ``Z = 0``. A range so narrow for its distance from 0 that ``Z`` exceeds ``2**62``
    raises a ValueError (``Z`` would not fit in int64).

    Examples
    --------
    >>> q, S, Z = asymmetric_quantization([-1.0, 0.0, 0.5, 2.0], n_bits=2)
    >>> q, float(S), int(Z)
    (array([0, 1, 1, 3]), 1.0, 1)
    """
    x = as_float_array(x, "x")
    n = check_n_bits(n_bits, 1)
    g = Grouping(channel_axis, block_size)
    xg = g.to_groups(x)
    hi = (
        xg.max(axis=1, keepdims=True)
        if alpha is None
        else _explicit_param(alpha, x.shape, g, "alpha")
    )
    lo = (
        xg.min(axis=1, keepdims=True) if beta is None else _explicit_param(beta, x.shape, g, "beta")
    )
    if (alpha is not None or beta is not None) and np.any(hi <= lo):
        raise ValueError("alpha must be greater than beta")
    # Degenerate (constant) groups: widen the range to include zero.
    flat = hi == lo
    hi = np.where(flat, np.maximum(hi, 0.0), hi)
    lo = np.where(flat, np.minimum(lo, 0.0), lo)
    levels = 2**n - 1
    # A range narrower than 2**n - 1 subnormals would give S = 0: keep the smallest positive S.
    S = np.where(hi > lo, np.maximum((hi - lo) / levels, _TINY), 1.0)
    Z = np.round(-lo / S)
    if np.any(np.abs(Z) > 2**62):
        raise ValueError(
            f"the zero-point Z = round(-beta/S) = {float(np.abs(Z).max()):.3g} does not fit in "
            "int64: the range [beta, alpha] of x is too narrow for its distance from 0"
        )
    with np.errstate(over="ignore"):  # x far outside an explicit range: round(inf) is clipped
        q = np.clip(np.round(xg / S) + Z, 0, levels).astype(np.int64)
    return (
        g.from_groups(q, x.shape),
        g.params_from_groups(S, x.shape),
        g.params_from_groups(Z.astype(np.int64), x.shape),
    )


def asymmetric_dequantization(
    q: ArrayLike,
    S: ArrayLike,
    Z: ArrayLike,
    *,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> NDArray[np.float64]:
    """Map codes back to values: ``x_hat = (q - Z) * S``.

    Parameters
    ----------
    q : array_like of int
        Codes from :func:`asymmetric_quantization`.
    S : array_like
        Positive scale(s): a scalar or the parameter shape.
    Z : array_like of int
        Integer zero-point(s), same shapes as ``S``.
    channel_axis, block_size : int, optional
        The grouping used to quantize.

    Returns
    -------
    x_hat : ndarray of float64

    Examples
    --------
    >>> asymmetric_dequantization([0, 1, 1, 3], 1.0, 1)
    array([-1.,  0.,  0.,  2.])
    """
    codes = as_codes(q, "q")
    g = Grouping(channel_axis, block_size)
    scale = _explicit_param(S, codes.shape, g, "S")
    if np.any(scale <= 0):
        raise ValueError("S must be positive")
    zero = g.params_to_groups(as_codes(Z, "Z"), codes.shape, "Z")
    x_hat = (g.to_groups(codes) - zero) * scale
    return g.from_groups(x_hat, codes.shape)


def symmetric_quantization(
    x: ArrayLike,
    alpha: ArrayLike | None = None,
    n_bits: int = 8,
    *,
    full_range: bool = False,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Quantize ``x`` to signed n-bit codes with a scale and no offset.

    Restricted range (default): ``S = alpha / (2**(n-1) - 1)``,
    ``q = clip(round(x / S), -(2**(n-1) - 1), 2**(n-1) - 1)``: the codes are symmetric about 0.

    Full range: ``S = alpha / (2**(n-1) - 1/2)``,
    ``q = clip(round(x / S), -2**(n-1), 2**(n-1) - 1)``: all ``2**n`` codes cover
    ``[-alpha, alpha]`` (PyTorch's symmetric ``qint8`` observers), so the step is slightly finer
    and ``+alpha`` is clipped by at most ``S / 2``.

    Parameters
    ----------
    x : array_like
        Values to quantize.
    alpha : array_like, optional
        Clipping threshold, default ``max(abs(x))`` per group. Passing ``max(x)`` instead is a
        classic mistake: when the most negative value is larger in magnitude it is clipped hard.
    n_bits : int, default 8
        Bit width, 2 to 16.
    full_range : bool, default False
        Use the extra negative code ``-2**(n-1)``.
    channel_axis, block_size : int, optional
        Per-channel or per-block parameters.

    Returns
    -------
    q : ndarray of int64
        Codes, shape of ``x``.
    S : ndarray of float64
        Scale (0-d for per-tensor, else the parameter shape). An all-zero group gets ``S = 1``.

    Examples
    --------
    >>> q, S = symmetric_quantization([-2.0, 0.5, 1.0], n_bits=3)
    >>> q, float(S)
    (array([-3,  1,  2]), 0.6666666666666666)
    """
    x = as_float_array(x, "x")
    n = check_n_bits(n_bits, 2)
    g = Grouping(channel_axis, block_size)
    xg = g.to_groups(x)
    if alpha is None:
        a = np.abs(xg).max(axis=1, keepdims=True)
    else:
        a = _explicit_param(alpha, x.shape, g, "alpha")
        if np.any(a <= 0):
            raise ValueError("alpha must be positive")
    qmax = 2 ** (n - 1) - 1
    full_range = check_bool(full_range, "full_range")
    qmin = -qmax - 1 if full_range else -qmax
    steps = qmax + 0.5 if full_range else qmax
    S = np.where(a > 0, np.maximum(a / steps, _TINY), 1.0)  # never 0 for a tiny alpha
    with np.errstate(over="ignore"):  # x far outside an explicit alpha: round(inf) is clipped
        q = np.clip(np.round(xg / S), qmin, qmax).astype(np.int64)
    return g.from_groups(q, x.shape), g.params_from_groups(S, x.shape)


def symmetric_dequantization(
    q: ArrayLike,
    S: ArrayLike,
    *,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> NDArray[np.float64]:
    """Map codes back to values: ``x_hat = q * S``.

    Parameters
    ----------
    q : array_like of int
        Codes from :func:`symmetric_quantization`.
    S : array_like
        Positive scale(s): a scalar or the parameter shape.
    channel_axis, block_size : int, optional
        The grouping used to quantize.

    Returns
    -------
    x_hat : ndarray of float64

    Examples
    --------
    >>> symmetric_dequantization([-3, 1, 2], 0.5)
    array([-1.5,  0.5,  1. ])
    """
    codes = as_codes(q, "q")
    g = Grouping(channel_axis, block_size)
    scale = _explicit_param(S, codes.shape, g, "S")
    if np.any(scale <= 0):
        raise ValueError("S must be positive")
    return g.from_groups(g.to_groups(codes) * scale, codes.shape)
