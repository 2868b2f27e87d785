"""Uniform quantization with an integer zero-point (SPEC items 1 and 2).

Asymmetric (PyTorch, ONNX, TFLite convention), with alpha = max(x), beta = min(x)::

    alpha, beta = max(alpha, 0), min(beta, 0)  # include_zero=True (default): 0 is in the range
    S = (alpha - beta) / (2**n - 1)
    Z = round(-beta / S)                       # an integer code in [0, 2**n - 1]: 0 is exact
    q = clip(round(x / S) + Z, 0, 2**n - 1)
    x_hat = (q - Z) * S

With ``include_zero=False`` the first line is skipped: the literal formula, whose ``Z`` leaves the
code range when the range does not contain 0 (``[1, 2, 3, 4]`` gives ``Z = -85``), so that 0 is no
longer representable.

Symmetric, with alpha = max|x|::

    S = alpha / (2**(n-1) - 1)
    q = clip(round(x / S), -(2**(n-1) - 1), 2**(n-1) - 1)     # restricted range
    x_hat = q * S

``full_range=True`` keeps the same ``S`` and only widens the clip to ``[-2**(n-1), 2**(n-1) - 1]``
(the convention of the course's seed code). PyTorch's symmetric observers use
``S = alpha / (2**(n-1) - 1/2)`` instead; compute it explicitly to compare.

The dequantizations check the codes against the code range of ``n_bits`` (default 8, as the
quantizations) and accept parameters of the grouping's parameter shape, or arrays with the
dimensions of ``q`` that broadcast against it (an ``S`` column of shape ``(rows, 1)``).

``round`` is round-half-to-even (``np.round``), as in PyTorch and ONNX.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import (
    as_codes,
    as_float_array,
    check_bool,
    check_code_range,
    check_n_bits,
)
from .grouping import Grouping

#: The smallest positive float64: a scale never underflows to 0.
_TINY = np.finfo(np.float64).smallest_subnormal

#: Largest zero-point accepted by :func:`asymmetric_quantization` (``include_zero=False`` only).
#: The codes need ``round(x / S)`` with ``|x / S|`` up to ``|Z| + 2**n``; float64 computes that
#: quotient within ``|x / S| * 2**-53`` code steps, so beyond ``2**40`` the codes would drift
#: from ``clip(round(x / S) + Z)`` (at ``2**57`` by 15 steps) and are refused instead.
MAX_ZERO_POINT = 2**40

#: Largest zero-point accepted by :func:`asymmetric_dequantization`: ``q - Z`` is exact in
#: float64 up to ``2**53``.
MAX_DEQUANT_ZERO_POINT = 2**53


def _explicit_param(value: ArrayLike, shape: tuple[int, ...], g: Grouping, name: str) -> NDArray:
    """An explicit alpha/beta/S as a ``(n_groups, 1)`` float column."""
    return g.params_to_groups(as_float_array(value, name), shape, name)


def _is_broadcast_param(p: NDArray, shape: tuple[int, ...], g: Grouping) -> bool:
    """True for a per-tensor grouping and ``p`` with the dimensions of ``shape`` broadcasting to it.

    Such a parameter (e.g. ``S`` of shape ``(rows, 1)`` for codes ``(rows, cols)``) is applied by
    NumPy broadcasting, as in ``(q - Z) * S``.
    """
    if g.channel_axis is not None or g.block_size is not None or p.ndim != len(shape) or not p.ndim:
        return False
    try:
        return np.broadcast_shapes(p.shape, shape) == tuple(shape)
    except ValueError:
        return False


def _dequant_params(
    codes: NDArray, g: Grouping, params: dict[str, NDArray]
) -> tuple[NDArray, dict[str, NDArray], bool]:
    """Codes and parameters ready for ``(q - Z) * S``: grouped, or broadcast as given.

    Returns ``(codes, params, broadcast)``: with ``broadcast`` every array keeps the layout of
    ``codes``; otherwise codes are ``(n_groups, group_size)`` and parameters ``(n_groups, 1)``.
    """
    if all(p.ndim == 0 or _is_broadcast_param(p, codes.shape, g) for p in params.values()) and any(
        p.ndim for p in params.values()
    ):
        return codes, params, True
    grouped = {k: g.params_to_groups(v, codes.shape, k) for k, v in params.items()}
    return g.to_groups(codes), grouped, False


def asymmetric_quantization(
    x: ArrayLike,
    alpha: ArrayLike | None = None,
    beta: ArrayLike | None = None,
    n_bits: int = 8,
    *,
    include_zero: bool = True,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Quantize ``x`` to unsigned n-bit codes with a scale and an integer zero-point.

    With ``include_zero`` the range is first widened to ``[min(beta, 0), max(alpha, 0)]``; then
    ``S = (alpha - beta) / (2**n - 1)``, ``Z = round(-beta / S)``,
    ``q = clip(round(x / S) + Z, 0, 2**n - 1)``.

    Parameters
    ----------
    x : array_like
        Values to quantize (not a masked array: masks are refused, not honoured).
    alpha, beta : array_like, optional
        Upper and lower end of the range; default ``max(x)`` and ``min(x)`` (per group). Values
        outside ``[beta, alpha]`` are clipped. A scalar or an array of the parameter shape.
    n_bits : int, default 8
        Bit width, 1 to 16.
    include_zero : bool, default True
        Widen the range to contain 0 (PyTorch, ONNX, TFLite), so that ``Z`` is a code in
        ``[0, 2**n - 1]`` and 0 is represented exactly. False applies the formula literally:
        ``Z`` may then leave the code range and 0 is no longer exact.
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
    range is widened to include zero (whatever ``include_zero``), so the constant is still
    reproduced; an all-zero group gets ``S = 1``, ``Z = 0``. With ``include_zero=False`` a range
    so narrow for its distance from 0 that ``|Z|`` exceeds :data:`MAX_ZERO_POINT` (``2**40``)
    raises a ValueError: float64 could not compute its codes to the step.

    Examples
    --------
    >>> q, S, Z = asymmetric_quantization([-1.0, 0.0, 0.5, 2.0], n_bits=2)
    >>> q, float(S), int(Z)
    (array([0, 1, 1, 3]), 1.0, 1)
    >>> q, S, Z = asymmetric_quantization([1.0, 2.0, 3.0, 4.0], include_zero=False)
    >>> int(Z)
    -85
    """
    x = as_float_array(x, "x")
    n = check_n_bits(n_bits, 1)
    include_zero = check_bool(include_zero, "include_zero")
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
        bad = int(np.argmax((hi <= lo).ravel()))
        a_txt = f"alpha={hi.ravel()[bad]:.6g}" + (" (max(x) by default)" if alpha is None else "")
        b_txt = (
            f"beta={lo.ravel()[bad]:.6g}"
            if beta is not None
            else f"beta, which defaulted to min(x) = {lo.ravel()[bad]:.6g}"
        )
        where = "" if hi.size == 1 else f" (group {bad})"
        raise ValueError(f"{a_txt} must be greater than {b_txt}{where}")
    # Degenerate (constant) groups, or every group with include_zero: the range contains zero.
    widen = np.ones_like(hi, dtype=bool) if include_zero else hi == lo
    hi = np.where(widen, np.maximum(hi, 0.0), hi)
    lo = np.where(widen, np.minimum(lo, 0.0), lo)
    levels = 2**n - 1
    # A range narrower than 2**n - 1 subnormals would give S = 0: keep the smallest positive S.
    S = np.where(hi > lo, np.maximum((hi - lo) / levels, _TINY), 1.0)
    with np.errstate(over="ignore"):  # -lo / S beyond float64: rejected just below
        Z = np.round(-lo / S)
    if np.any(np.abs(Z) > MAX_ZERO_POINT):
        raise ValueError(
            f"the zero-point Z = round(-beta/S) = {float(np.abs(Z).max()):.3g} exceeds "
            f"2**40 (include_zero=False): the range [beta, alpha] of x is so narrow for its "
            "distance from 0 that float64 cannot compute the codes to the step; use "
            "include_zero=True or quantize x - mean(x)"
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
    n_bits: int = 8,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> NDArray[np.float64]:
    """Map codes back to values: ``x_hat = (q - Z) * S``.

    Parameters
    ----------
    q : array_like of int
        Codes from :func:`asymmetric_quantization`, in ``[0, 2**n_bits - 1]``.
    S : array_like
        Positive scale(s): a scalar, the parameter shape of the grouping, or (per tensor) an
        array with the dimensions of ``q`` that broadcasts against it, e.g. a ``(rows, 1)``
        column.
    Z : array_like of int
        Integer zero-point(s), shaped as ``S``; ``|Z|`` at most ``2**53``.
    n_bits : int, default 8
        Bit width of the codes (1 to 16): a code outside ``[0, 2**n_bits - 1]`` is refused.
    channel_axis, block_size : int, optional
        The grouping used to quantize.

    Returns
    -------
    x_hat : ndarray of float64

    Examples
    --------
    >>> asymmetric_dequantization([0, 1, 1, 3], 1.0, 1)
    array([-1.,  0.,  0.,  2.])
    >>> asymmetric_dequantization([[0, 3], [1, 2]], [[1.0], [0.5]], [[1], [0]], n_bits=2)
    array([[-1. ,  2. ],
           [ 0.5,  1. ]])
    """
    codes = as_codes(q, "q")
    n = check_n_bits(n_bits, 1)
    check_code_range(codes, 0, 2**n - 1, "q", f"n_bits={n}")
    g = Grouping(channel_axis, block_size)
    scale = as_float_array(S, "S")
    if np.any(scale <= 0):
        raise ValueError("S must be positive")
    zero = as_codes(Z, "Z")
    if np.any(np.abs(zero) > MAX_DEQUANT_ZERO_POINT):
        raise ValueError(
            f"Z = {int(np.abs(zero).max())} exceeds 2**53 in magnitude: q - Z would not be exact "
            "in float64"
        )
    cg, p, broadcast = _dequant_params(codes, g, {"S": scale, "Z": zero})
    x_hat = (cg - p["Z"]) * p["S"]
    return x_hat if broadcast else g.from_groups(x_hat, codes.shape)


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

    ``S = alpha / (2**(n-1) - 1)`` and ``q = clip(round(x / S), -(2**(n-1) - 1), 2**(n-1) - 1)``
    (restricted range, default): the codes are symmetric about 0.

    ``full_range=True`` keeps the same ``S`` and only widens the clip to
    ``[-2**(n-1), 2**(n-1) - 1]``: the extra code ``-2**(n-1)`` holds values below ``-alpha``
    (down to ``-alpha - S/2``, exactly the seed code's convention). PyTorch's symmetric ``qint8``
    observers use ``S = alpha / (2**(n-1) - 1/2)`` instead; pass
    ``alpha = max|x| * (2**(n-1) - 1) / (2**(n-1) - 1/2)`` to get that scale.

    Parameters
    ----------
    x : array_like
        Values to quantize (not a masked array: masks are refused, not honoured).
    alpha : array_like, optional
        Clipping threshold, default ``max(abs(x))`` per group. Passing ``max(x)`` instead is a
        classic mistake: when the most negative value is larger in magnitude it is clipped hard.
    n_bits : int, default 8
        Bit width, 2 to 16.
    full_range : bool, default False
        Clip to the full code range, including ``-2**(n-1)``.
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
    >>> symmetric_quantization([-2.0, 0.5, 1.0], alpha=1.0, n_bits=3, full_range=True)[0]
    array([-4,  2,  3])
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
    S = np.where(a > 0, np.maximum(a / qmax, _TINY), 1.0)  # never 0 for a tiny alpha
    with np.errstate(over="ignore"):  # x far outside an explicit alpha: round(inf) is clipped
        q = np.clip(np.round(xg / S), qmin, qmax).astype(np.int64)
    return g.from_groups(q, x.shape), g.params_from_groups(S, x.shape)


def symmetric_dequantization(
    q: ArrayLike,
    S: ArrayLike,
    *,
    n_bits: int = 8,
    channel_axis: int | None = None,
    block_size: int | None = None,
) -> NDArray[np.float64]:
    """Map codes back to values: ``x_hat = q * S``.

    Parameters
    ----------
    q : array_like of int
        Codes from :func:`symmetric_quantization`, in ``[-2**(n_bits-1), 2**(n_bits-1) - 1]``.
    S : array_like
        Positive scale(s): a scalar, the parameter shape of the grouping, or (per tensor) an
        array with the dimensions of ``q`` that broadcasts against it.
    n_bits : int, default 8
        Bit width of the codes (2 to 16): a code outside the full range is refused.
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
    n = check_n_bits(n_bits, 2)
    check_code_range(codes, -(2 ** (n - 1)), 2 ** (n - 1) - 1, "q", f"n_bits={n}")
    g = Grouping(channel_axis, block_size)
    scale = as_float_array(S, "S")
    if np.any(scale <= 0):
        raise ValueError("S must be positive")
    cg, p, broadcast = _dequant_params(codes, g, {"S": scale})
    x_hat = cg * p["S"]
    return x_hat if broadcast else g.from_groups(x_hat, codes.shape)
