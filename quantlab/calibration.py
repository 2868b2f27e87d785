"""Calibration of activation ranges (SPEC item 10): min/max, percentile, MSE-optimal, KL.

Weights are known before inference; activations are not. A *static* range is calibrated once on
a few batches and frozen; a *dynamic* range is measured on every batch (or every token) at
inference time, which costs a reduction per batch but never clips. Each function here returns a
range ``(lo, hi)``; :func:`affine_params` turns it into a scale and an integer zero point.

The ``axis`` argument chooses the granularity: ``None`` one range per tensor; for activations
``X`` of shape (tokens, channels), ``axis=0`` one range per token (row) and ``axis=1`` one per
channel (column). Per-axis ranges keep the reduced axes with length 1, so they broadcast against
``x``; per-tensor ranges are 0-d.

- :func:`minmax_range`: the extremes - nothing is clipped, one outlier stretches the grid.
- :func:`percentile_range`: ``np.percentile`` at ``100 − p`` and ``p`` - clips the tails.
- :func:`mse_range`: the course's own search (:meth:`quantlab.Quantizer.search`), the range of
  the candidate with the lowest mean squared error after the least-squares refit.
- :func:`kl_range`: TensorRT's entropy calibration - the clipping threshold whose quantized
  histogram is closest, in KL divergence, to the observed one.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_float_array, check_bool, check_n_bits
from .quantizer import Quantizer

__all__ = [
    "CALIBRATION_METHODS",
    "CODE_DTYPES",
    "affine_params",
    "calibrate",
    "error_split",
    "fake_quantize",
    "kl_divergences",
    "kl_range",
    "minmax_range",
    "mse_range",
    "percentile_range",
]

CALIBRATION_METHODS = ("minmax", "percentile", "mse", "kl")

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

#: Integer code types: name -> (smallest, largest code).
CODE_DTYPES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (INT32_MIN, INT32_MAX),
}


def _axis(axis: object, ndim: int) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer or None, got {axis!r}")
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"axis {axis} is out of range for x with {ndim} dimensions")
    return int(axis) % ndim


def _reduced(axis: int | None, ndim: int) -> tuple[int, ...] | None:
    """The axes reduced to get one range per index along ``axis`` (all axes when None)."""
    return None if axis is None else tuple(d for d in range(ndim) if d != axis)


def minmax_range(x: ArrayLike, axis: int | None = None) -> tuple[NDArray, NDArray]:
    """``(min(x), max(x))`` per tensor or per index along ``axis``.

    Examples
    --------
    >>> lo, hi = minmax_range([[0.0, 2.0], [-1.0, 0.5]], axis=0)
    >>> lo.ravel(), hi.ravel()
    (array([ 0., -1.]), array([2. , 0.5]))
    """
    xa = as_float_array(x, "x")
    red = _reduced(_axis(axis, xa.ndim), xa.ndim)
    keep = red is not None
    return xa.min(axis=red, keepdims=keep), xa.max(axis=red, keepdims=keep)


def percentile_range(
    x: ArrayLike,
    percentile: float = 99.99,
    axis: int | None = None,
    *,
    symmetric: bool = False,
) -> tuple[NDArray, NDArray]:
    """``(np.percentile(x, 100 − p), np.percentile(x, p))``, or ``±np.percentile(|x|, p)``.

    Parameters
    ----------
    x : array_like
    percentile : float, default 99.99
        ``p``, between 50 and 100 (100 is min/max).
    axis : int, optional
        One range per index along this axis.
    symmetric : bool, default False
        A range symmetric about 0 from the percentile of ``|x|``.
    """
    xa = as_float_array(x, "x")
    red = _reduced(_axis(axis, xa.ndim), xa.ndim)
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real):
        raise TypeError(f"percentile must be a real number, got {percentile!r}")
    p = float(percentile)
    if not 50.0 <= p <= 100.0:
        raise ValueError(f"percentile must be between 50 and 100, got {p}")
    keep = red is not None
    if check_bool(symmetric, "symmetric"):
        hi = np.percentile(np.abs(xa), p, axis=red, keepdims=keep)
        return -hi, hi
    lo = np.percentile(xa, 100.0 - p, axis=red, keepdims=keep)
    return lo, np.percentile(xa, p, axis=red, keepdims=keep)


def mse_range(
    x: ArrayLike,
    n_bits: int = 8,
    axis: int | None = None,
    *,
    symmetric: bool = False,
    offsets: ArrayLike | None = None,
) -> tuple[NDArray, NDArray]:
    """The range of the course's MSE search: ``quantlab.Quantizer(n_bits, ...).search(x)``.

    With a minimum (``symmetric=False``): ``lo = min``, ``hi = min + scale·(2**n − 1)``, the
    refitted grid of the best candidate. Symmetric: the min-convention grid
    ``d·[−2**(n−1), 2**(n−1) − 1]`` of the best ``d`` (sorted, so ``d < 0`` works too).

    ``offsets`` is the search's relative grid (default -0.25 ... 0.25 of the range); a wider
    grid such as ``np.linspace(-0.8, 0.1, 46)`` lets the search clip more at low bit widths.
    """
    xa = as_float_array(x, "x")
    ax = _axis(axis, xa.ndim)
    sym = check_bool(symmetric, "symmetric")
    res = Quantizer(n_bits, use_min=not sym, channel_axis=ax).search(xa, offsets=offsets)
    shape = [] if ax is None else [1] * xa.ndim
    if ax is not None:
        shape[ax] = xa.shape[ax]
    n = check_n_bits(n_bits, 2)
    scale = np.reshape(res.scale, shape)
    if sym:
        a, b = scale * -(2 ** (n - 1)), scale * (2 ** (n - 1) - 1)
        return np.minimum(a, b), np.maximum(a, b)
    lo = np.reshape(res.min, shape)
    return lo, lo + scale * (2**n - 1)


def kl_divergences(counts: ArrayLike, n_levels: int = 128) -> NDArray[np.float64]:
    """KL(P‖Q) of every clipping candidate of a histogram, TensorRT's entropy calibration.

    For a candidate keeping the first ``i`` bins (``n_levels ≤ i ≤ B``):

    - ``P``: the first ``i`` counts, the counts beyond them (the clipped outliers) added to bin
      ``i − 1``;
    - ``Q``: the first ``i`` counts merged into ``n_levels`` groups of ``i // n_levels`` bins
      (the last group takes the remainder), each group's total spread evenly over its non-empty
      bins (empty bins stay empty);
    - ``KL(P‖Q) = Σ p·log(p/q)`` with ``p, q`` normalised. It is infinite when the cut falls on
      an empty bin while values lie beyond it (``p > 0 = q``).

    Fast without approximation: within a group every non-empty bin has the same ``q``, so
    ``Σ p·log q`` is a sum over the ``n_levels`` groups of (group mass)·log(group ``q``), and
    ``Σ p·log p`` comes from a prefix sum of ``c·log c``; with group totals and non-empty counts
    from cumulative sums, each candidate costs ``O(n_levels)``, all candidates at once in chunks
    (memory stays bounded).

    Parameters
    ----------
    counts : array_like of shape (B,)
        Non-negative histogram counts over ``[0, amax]``.
    n_levels : int, default 128
        Quantization levels of the candidate (128 for int8 on ``|x|``, 256 for uint8).

    Returns
    -------
    ndarray of shape (B − n_levels + 1,)
        ``divergences[j]`` belongs to ``i = n_levels + j``.
    """
    c = as_float_array(counts, "counts")
    if c.ndim != 1:
        raise ValueError(f"counts must be 1-D, got shape {c.shape}")
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    if isinstance(n_levels, bool) or not isinstance(n_levels, numbers.Integral) or n_levels < 1:
        raise ValueError(f"n_levels must be a positive integer, got {n_levels!r}")
    L, B = int(n_levels), c.size
    if B < L:
        raise ValueError(f"counts needs at least n_levels = {L} bins, got {B}")
    total = c.sum()
    if total == 0:
        raise ValueError("counts are all zero")
    csum = np.concatenate([[0.0], np.cumsum(c)])
    nsum = np.concatenate([[0], np.cumsum(c > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        clogc = np.where(c > 0, c * np.log(c), 0.0)
    lsum = np.concatenate([[0.0], np.cumsum(clogc)])
    g = np.arange(L)
    out = np.empty(B - L + 1)
    chunk = max(1, 2**18 // L)
    for start in range(0, B - L + 1, chunk):  # chunks of candidates, not one per candidate
        i = np.arange(L + start, min(B, L + start + chunk - 1) + 1)[:, None]
        m = i // L
        lo = g * m
        hi = np.where(g == L - 1, i, lo + m)
        group_total = csum[hi] - csum[lo]
        group_nnz = nsum[hi] - nsum[lo]
        tail = total - csum[i]
        mass = group_total + np.where(g == L - 1, tail, 0.0)  # the outliers join the last group
        last = c[i - 1] + tail  # P in the last kept bin
        with np.errstate(divide="ignore", invalid="ignore"):
            p_log_p = lsum[i - 1] + np.where(last > 0, last * np.log(last), 0.0)
            log_q = np.log(group_total / (np.maximum(group_nnz, 1) * csum[i]))
            p_log_q = np.where(group_nnz > 0, mass * log_q, 0.0).sum(axis=1, keepdims=True)
        kl = (p_log_p - p_log_q) / total - np.log(total)
        # the sum cancels down from terms of size ~log(total): below its rounding error it is 0
        noise = 64 * np.finfo(float).eps * (np.abs(p_log_p) / total + abs(np.log(total)) + 1)
        kl = np.where(kl > noise, kl, 0.0)
        kl = np.where((c[i - 1] == 0) & (tail > 0), np.inf, kl)
        out[start : start + i.shape[0]] = kl[:, 0]
    return out


def kl_range(
    x: ArrayLike, n_bits: int = 8, *, bins: int = 2048, signed: bool | None = None
) -> tuple[NDArray, NDArray]:
    """TensorRT's entropy (KL) calibration: the threshold of least divergence, as a range.

    A histogram of ``|x|`` (``signed``) or of ``x`` (all ``x ≥ 0``, e.g. after a ReLU) with
    ``bins`` bins over ``[0, max]``; :func:`kl_divergences` with ``2**(n−1)`` levels (signed) or
    ``2**n`` (unsigned, the rule of NVIDIA's pytorch-quantization); the threshold is the upper
    edge of the last kept bin of the best candidate (the first, on a tie).

    Returns
    -------
    lo, hi : 0-d ndarrays
        ``(−t, t)`` when signed, else ``(0, t)``.
    """
    xa = as_float_array(x, "x")
    n = check_n_bits(n_bits, 2)
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral):
        raise TypeError(f"bins must be an integer, got {bins!r}")
    sgn = bool(np.any(xa < 0)) if signed is None else check_bool(signed, "signed")
    if not sgn and np.any(xa < 0):
        raise ValueError("x has negative values: use signed=True (a histogram of |x|)")
    levels = 2 ** (n - 1) if sgn else 2**n
    if bins < levels:
        raise ValueError(f"bins must be at least {levels} (the levels of {n} bits), got {bins}")
    v = np.abs(xa).ravel()
    amax = v.max()
    if amax == 0:
        return np.array(0.0), np.array(0.0)
    counts, _ = np.histogram(v, bins=int(bins), range=(0.0, amax))
    div = kl_divergences(counts, levels)
    t = np.array((levels + int(np.argmin(div))) * amax / bins)
    return (np.array(-t) if sgn else np.zeros(())), t


def calibrate(
    x: ArrayLike, method: str = "minmax", *, n_bits: int = 8, axis: int | None = None, **kwargs
) -> tuple[NDArray, NDArray]:
    """``(lo, hi)`` by ``method`` in :data:`CALIBRATION_METHODS` (``kl`` is per tensor only).

    ``kwargs`` go to the method (``percentile``, ``symmetric``, ``bins``, ``signed``).
    """
    if method == "minmax":
        return minmax_range(x, axis, **kwargs)
    if method == "percentile":
        return percentile_range(x, axis=axis, **kwargs)
    if method == "mse":
        return mse_range(x, n_bits, axis, **kwargs)
    if method == "kl":
        if axis is not None:
            raise ValueError("the KL method calibrates one range per tensor: axis must be None")
        return kl_range(x, n_bits, **kwargs)
    raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")


def affine_params(
    lo: ArrayLike, hi: ArrayLike, *, dtype: str = "uint8", symmetric: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Scale and integer zero point of a range, SPEC item 1 on the codes of ``dtype``.

    The range is first widened to contain 0; ``S = (hi − lo)/(qmax − qmin)``,
    ``Z = qmin + round(−lo/S)`` (so ``x = 0`` is the exact code ``Z``). ``symmetric=True``
    (signed types): ``S = max(|lo|, |hi|)/qmax``, ``Z = 0``. A zero-width range gets ``S = 1``.

    Examples
    --------
    >>> S, Z = affine_params(-1.0, 3.0)
    >>> float(S), int(Z)
    (0.01568627450980392, 64)
    """
    if dtype not in CODE_DTYPES:
        raise ValueError(f"dtype must be one of {tuple(CODE_DTYPES)}, got {dtype!r}")
    lo_a, hi_a = as_float_array(lo, "lo"), as_float_array(hi, "hi")
    if np.any(hi_a < lo_a):
        raise ValueError("hi must not be below lo")
    lo_a, hi_a = np.minimum(lo_a, 0.0), np.maximum(hi_a, 0.0)
    qmin, qmax = CODE_DTYPES[dtype]
    if check_bool(symmetric, "symmetric"):
        if qmin >= 0:
            raise ValueError(f"symmetric=True needs a signed dtype, got {dtype!r}")
        amax = np.maximum(-lo_a, hi_a)
        scale = np.where(amax > 0, amax / qmax, 1.0)
        return scale, np.zeros(scale.shape, dtype=np.int64)
    width = hi_a - lo_a
    scale = np.where(width > 0, width / (qmax - qmin), 1.0)
    zp = np.clip(qmin + np.rint(-lo_a / scale), qmin, qmax).astype(np.int64)
    return scale, zp


def _unsigned_params(lo: NDArray, hi: NDArray, n_bits: int) -> tuple[NDArray, NDArray]:
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    width = hi - lo
    scale = np.where(width > 0, width / (2**n_bits - 1), 1.0)
    return scale, np.clip(np.rint(-lo / scale), 0, 2**n_bits - 1)


def fake_quantize(
    x: ArrayLike, lo: ArrayLike, hi: ArrayLike, n_bits: int = 8
) -> NDArray[np.float64]:
    """Quantize and dequantize with the unsigned n-bit grid of the range ``[lo, hi]``.

    ``S = (hi − lo)/(2**n − 1)`` and ``Z = round(−lo/S)`` after widening the range to contain 0
    (SPEC item 1); ``x̂ = (clip(round_half_even(x/S) + Z, 0, 2**n − 1) − Z)·S``. ``lo`` and ``hi``
    broadcast against ``x`` (per tensor, per token, per channel).

    Examples
    --------
    >>> fake_quantize([0.0, 0.26, 1.0, 5.0], 0.0, 1.0, n_bits=2)
    array([0.        , 0.33333333, 1.        , 1.        ])
    """
    xa = as_float_array(x, "x")
    n = check_n_bits(n_bits, 1)
    lo_a, hi_a = as_float_array(lo, "lo"), as_float_array(hi, "hi")
    if np.any(hi_a < lo_a):
        raise ValueError("hi must not be below lo")
    scale, zp = _unsigned_params(lo_a, hi_a, n)
    with np.errstate(over="ignore"):
        q = np.clip(np.rint(xa / scale) + zp, 0, 2**n - 1)
    return (q - zp) * scale


def error_split(x: ArrayLike, lo: ArrayLike, hi: ArrayLike, n_bits: int = 8) -> tuple[float, float]:
    """The MSE of :func:`fake_quantize` split into ``(clipping, rounding)`` parts.

    Clipping: the squared errors of the values outside the grid's ends ``−Z·S`` and
    ``(2**n − 1 − Z)·S``; rounding: those inside. Both are divided by ``x.size``, so they add up
    to the MSE. A wider range trades clipping error for rounding error (``≈ S²/12`` per value).
    """
    xa = as_float_array(x, "x")
    x_hat = fake_quantize(xa, lo, hi, n_bits)
    scale, zp = _unsigned_params(as_float_array(lo, "lo"), as_float_array(hi, "hi"), n_bits)
    inside = (xa >= -zp * scale) & (xa <= (2**n_bits - 1 - zp) * scale)
    err = (xa - x_hat) ** 2
    return float(err[~inside].sum() / xa.size), float(err[inside].sum() / xa.size)
