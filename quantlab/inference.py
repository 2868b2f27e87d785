"""Integer-only inference (SPEC item 10): integer matrix products and fixed-point requantization.

A quantized value is ``x = S·(q − Z)``. The product of two quantized matrices is then::

    y[i, j] = S_a·S_b · Σ_k (q_a[i, k] − Z_a)(q_b[k, j] − Z_b)
            = S_a·S_b · (Σ_k q_a q_b − Z_b Σ_k q_a[i, k] − Z_a Σ_k q_b[k, j] + K·Z_a·Z_b)

The sum is computed exactly in integers (an int32 accumulator: :func:`matmul_integer`, ONNX's
MatMulInteger); the row sums of ``q_a`` and the column sums of ``q_b`` carry the zero points, so
weights stored with a zero point cost one precomputed vector per layer.

The float factor ``M = S_a·S_b/S_y`` that maps the accumulator to the output's codes is itself
stored as integers, TFLite/gemmlowp style: ``M = M0·2**(shift − 31)`` with ``M0`` in
``[2**30, 2**31)`` (:func:`quantize_multiplier`), and applied with a saturating rounding
doubling high multiply and a rounding right shift (:func:`requantize`) - no float anywhere.

Exactness and overflow: 8-bit codes minus 8-bit zero points lie in [−255, 255], so every product
is below 2**16 and every partial sum of K of them below K·2**16. :func:`matmul_integer` sums them
in float64 (BLAS speed); that is exact for every K below 2**37, far beyond any array that fits in
memory, and the int32 range of the result is then checked: an accumulator that does not fit in
int32 raises an OverflowError instead of wrapping as int32 arithmetic would. The fixed-point
functions work in int64, where ``INT32_MIN·INT32_MIN + 2**30`` still fits.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_array, as_float_array
from .calibration import CODE_DTYPES, INT32_MAX, INT32_MIN, affine_params

__all__ = [
    "CODE_DTYPES",
    "INT32_MAX",
    "INT32_MIN",
    "IntegerMLP",
    "QuantizedLinear",
    "accumulator_bound",
    "dequantize_codes",
    "integer_mlp",
    "matmul_integer",
    "multiply_by_quantized_multiplier",
    "qlinear_matmul",
    "quantize_codes",
    "quantize_multiplier",
    "requantize",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
]


# -- validation helpers ---------------------------------------------------------------------------


def _integers(x: ArrayLike, name: str, lo: int, hi: int, what: str) -> NDArray[np.int64]:
    """``x`` as a new int64 array of integers in ``[lo, hi]`` (integral floats accepted)."""
    arr = as_array(x, name)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinity")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integers")
    if arr.min() < lo or arr.max() > hi:
        raise ValueError(
            f"{name} must hold {what} in [{lo}, {hi}], got values in "
            f"[{arr.min():.0f}, {arr.max():.0f}]"
        )
    return arr.astype(np.int64)


def _code_type(x: np.ndarray, zp: np.ndarray | None, name: str) -> str:
    """The 8-bit type of codes ``x``: their dtype, else uint8 or int8 by value (zp included)."""
    if x.dtype == np.uint8 or x.dtype == np.int8:
        return str(x.dtype)
    vals = [x] if zp is None else [x, zp]
    lo = min(int(v.min()) for v in vals)
    hi = max(int(v.max()) for v in vals)
    if lo >= 0 and hi <= 255:
        return "uint8"
    if lo >= -128 and hi <= 127:
        return "int8"
    raise ValueError(
        f"{name} must hold 8-bit codes (uint8 in [0, 255] or int8 in [-128, 127]), "
        f"got values in [{lo}, {hi}]"
    )


def _codes8(x: ArrayLike, name: str) -> tuple[NDArray[np.int64], str]:
    arr = as_array(x, name)
    if arr.dtype == np.uint8 or arr.dtype == np.int8:
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        return arr.astype(np.int64), str(arr.dtype)
    codes = _integers(arr, name, -128, 255, "8-bit codes")
    return codes, ""


def _zero_point(zp: ArrayLike, codes_type: str, name: str) -> NDArray[np.int64]:
    arr = as_array(zp, name)
    if (
        codes_type
        and arr.dtype.kind in "iu"
        and arr.dtype.itemsize == 1
        and str(arr.dtype) != (codes_type)
    ):
        raise TypeError(f"{name} must have the type of its codes ({codes_type}), got {arr.dtype}")
    lo, hi = CODE_DTYPES[codes_type] if codes_type else (-128, 255)
    return _integers(arr, name, lo, hi, f"{codes_type or '8-bit'} codes")


def _row_param(p: NDArray, a_shape: tuple[int, ...], name: str) -> NDArray:
    """A per-tensor or per-row parameter of ``a`` (..., M, K) shaped to broadcast: (..., M, 1)."""
    if p.size == 1:
        return p.reshape(())
    m = a_shape[-2] if len(a_shape) >= 2 else 1
    if p.ndim == 1:
        if p.shape[0] != m:
            raise ValueError(
                f"{name} must be a scalar or have one value per row of a ({m}), got shape {p.shape}"
            )
        return p[:, None]
    if p.shape[-1] != 1 or p.shape[-2] != m:
        raise ValueError(
            f"{name} must be a scalar, 1-D of length {m} or of shape (..., {m}, 1), "
            f"got shape {p.shape}"
        )
    return p


def _col_param(p: NDArray, b_shape: tuple[int, ...], name: str) -> NDArray:
    """A per-tensor or per-column parameter of ``b`` (..., K, N), shaped (..., 1, N)."""
    if p.size == 1:
        return p.reshape(())
    n = b_shape[-1] if len(b_shape) >= 2 else 1
    if p.shape[-1] != n or (p.ndim >= 2 and p.shape[-2] != 1):
        raise ValueError(
            f"{name} must be a scalar, 1-D of length {n} or of shape (..., 1, {n}), "
            f"got shape {p.shape}"
        )
    return p


def _check_matmul_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("a and b must have at least one dimension (matrix product)")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if ka != kb:
        raise ValueError(f"the inner dimensions differ: a has {ka} columns, b has {kb} rows")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError as exc:
        raise ValueError(
            f"the batch dimensions of a {a.shape} and b {b.shape} do not broadcast"
        ) from exc


# -- the integer matrix product -------------------------------------------------------------------


def accumulator_bound(k: int, a_bits: int = 8, b_bits: int = 8) -> int:
    """Worst-case ``|Σ_k (q_a − Z_a)(q_b − Z_b)|`` for codes and zero points of the given widths.

    With unsigned n-bit codes and zero points, ``|q − Z| ≤ 2**n − 1``, so the bound is
    ``k·(2**a_bits − 1)·(2**b_bits − 1)``. It stays within int32 (2**31 − 1) for 8-bit operands
    while ``k ≤ 33025``.

    Examples
    --------
    >>> accumulator_bound(64)
    4161600
    """
    for v, nm in ((k, "k"), (a_bits, "a_bits"), (b_bits, "b_bits")):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{nm} must be a positive integer, got {v!r}")
    return int(k) * (2 ** int(a_bits) - 1) * (2 ** int(b_bits) - 1)


def matmul_integer(
    a: ArrayLike, b: ArrayLike, a_zero_point: ArrayLike = 0, b_zero_point: ArrayLike = 0
) -> NDArray[np.int32]:
    """ONNX MatMulInteger: the int32 accumulators ``Σ_k (a[i,k] − a_zp)(b[k,j] − b_zp)``.

    Parameters
    ----------
    a : array_like of 8-bit codes, shape (..., M, K) or (K,)
        uint8 or int8 (a uint8/int8 array keeps its type; other integers are read as uint8 when
        they lie in [0, 255], else as int8).
    b : array_like of 8-bit codes, shape (..., K, N) or (K,)
    a_zero_point : int or array_like, default 0
        Per tensor (a scalar) or per row of ``a`` (1-D of length M, or shape (..., M, 1)), of the
        type of ``a``.
    b_zero_point : int or array_like, default 0
        Per tensor or per column of ``b`` (1-D of length N, or shape (..., 1, N)).

    Returns
    -------
    ndarray of int32
        ``np.matmul`` shape of ``a`` and ``b``.

    Raises
    ------
    OverflowError
        If an accumulator leaves the int32 range (possible only for K > 33025; see
        :func:`accumulator_bound`), where int32 arithmetic would silently wrap.

    Notes
    -----
    Fast and exact: the differences are at most 255 in magnitude, so every partial sum is an
    integer below K·2**16 and the float64 BLAS product is exact (K < 2**37).

    Examples
    --------
    >>> matmul_integer([[130, 128]], [[1], [2]], a_zero_point=128)
    array([[2]], dtype=int32)
    """
    qa, ta = _codes8(a, "a")
    qb, tb = _codes8(b, "b")
    za = _zero_point(a_zero_point, ta, "a_zero_point")
    zb = _zero_point(b_zero_point, tb, "b_zero_point")
    _code_type(qa, za, "a")  # codes and zero point must share one 8-bit type
    _code_type(qb, zb, "b")
    _check_matmul_shapes(qa, qb)
    da = qa - _row_param(za, qa.shape, "a_zero_point")
    db = qb - _col_param(zb, qb.shape, "b_zero_point")
    acc = np.matmul(da.astype(np.float64), db.astype(np.float64))
    return _as_int32(acc, qa.shape[-1])


def _as_int32(acc: NDArray[np.float64], k: int) -> NDArray[np.int32]:
    if acc.size and (acc.max() > INT32_MAX or acc.min() < INT32_MIN):
        worst = float(np.abs(acc).max())
        raise OverflowError(
            f"the int32 accumulator overflows: a sum of K = {k} products reaches {worst:.0f}, "
            f"beyond 2**31 - 1 = {INT32_MAX} (int32 arithmetic would wrap silently)"
        )
    return acc.astype(np.int32)


def _scale32(s: ArrayLike, name: str) -> NDArray[np.float32]:
    arr = as_float_array(s, name)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be positive")
    out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)) or np.any(out == 0):
        raise ValueError(f"{name} must be a positive float32 (no overflow or underflow)")
    return out


def _y_type(y_zero_point: ArrayLike) -> str:
    arr = as_array(y_zero_point, "y_zero_point")
    if arr.dtype == np.uint8 or arr.dtype == np.int8:
        return str(arr.dtype)
    zp = _integers(arr, "y_zero_point", -128, 255, "8-bit codes")
    return "uint8" if zp.min() >= 0 else "int8"


def qlinear_matmul(
    a: ArrayLike,
    a_scale: ArrayLike,
    a_zero_point: ArrayLike,
    b: ArrayLike,
    b_scale: ArrayLike,
    b_zero_point: ArrayLike,
    y_scale: ArrayLike,
    y_zero_point: ArrayLike,
) -> NDArray[np.integer]:
    """ONNX QLinearMatMul: ``saturate(rint(acc·a_scale·b_scale/y_scale) + y_zero_point)``.

    ``acc`` is :func:`matmul_integer`'s exact int32 accumulator. The scales are float32 (ONNX's
    type): ``a_scale·b_scale/y_scale`` is formed in float32, as the ONNX reference does, and
    applied to ``acc`` in float64; ``rint`` rounds half to even.

    Parameters
    ----------
    a, b : array_like of 8-bit codes
        As in :func:`matmul_integer`.
    a_scale, a_zero_point : scalar or per row of ``a`` (length M or shape (..., M, 1))
    b_scale, b_zero_point : scalar or per column of ``b`` (length N or shape (..., 1, N))
    y_scale, y_zero_point : scalar or per column of the output
        The output codes have the type of ``y_zero_point``: uint8 or int8 when it is such an
        array; a plain integer is read as uint8 if it is ≥ 0, else int8.

    Returns
    -------
    ndarray of uint8 or int8

    Examples
    --------
    >>> qlinear_matmul([[10, 20]], 0.5, 0, [[2], [4]], 0.25, 0, 1.0, 0)  # 12.5: a tie, to even
    array([[12]], dtype=uint8)
    """
    acc = matmul_integer(a, b, a_zero_point, b_zero_point)
    qa = np.asarray(a)
    qb = np.asarray(b)
    sa = _row_param(_scale32(a_scale, "a_scale"), qa.shape, "a_scale")
    sb = _col_param(_scale32(b_scale, "b_scale"), qb.shape, "b_scale")
    y_shape = acc.shape if acc.ndim >= 2 else (1, *acc.shape)
    sy = _col_param(_scale32(y_scale, "y_scale"), y_shape, "y_scale")
    ty = _y_type(y_zero_point)
    zy = _col_param(_zero_point(y_zero_point, ty, "y_zero_point"), y_shape, "y_zero_point")
    with np.errstate(over="ignore"):  # a huge ratio is saturated below, never returned as inf
        m = (sa * sb / sy).astype(np.float32)
    y = np.rint(acc.astype(np.float64) * m.astype(np.float64) + zy)
    lo, hi = CODE_DTYPES[ty]
    return np.clip(y, lo, hi).astype(ty)


# -- fixed-point requantization (gemmlowp / TFLite reference) ------------------------------------


def quantize_multiplier(m: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """TFLite's QuantizeMultiplier: ``m ≈ M0·2**(shift − 31)`` with ``M0`` in ``[2**30, 2**31)``.

    ``frexp`` writes ``m = q·2**shift`` with ``q`` in [0.5, 1); ``M0 = round(q·2**31)`` (half away
    from zero, as ``std::round``); a rounding up to ``2**31`` halves ``M0`` and increments
    ``shift``. ``m = 0`` gives ``(0, 0)``, and so does an ``m`` below about 2**−32 (``shift < −31``:
    TFLite flushes it to zero). The relative error of the stored multiplier is at most 2**−31.

    Parameters
    ----------
    m : float or array_like
        Non-negative real multipliers, e.g. ``S_a·S_b/S_y``; values above 1 are allowed.

    Returns
    -------
    m0, shift : ndarray of int64
        Shape of ``m``.

    Examples
    --------
    >>> m0, shift = quantize_multiplier(0.1)
    >>> int(m0), int(shift)
    (1717986918, -3)
    """
    arr = as_float_array(m, "m")
    if np.any(arr < 0):
        raise ValueError("m must be non-negative (a ratio of positive scales)")
    q, shift = np.frexp(arr)
    v = q * 2.0**31  # exact: a power-of-two multiple
    fl = np.floor(v)
    m0 = (fl + (v - fl >= 0.5)).astype(np.int64)  # round half away from zero (v >= 0)
    shift = shift.astype(np.int64)
    full = m0 == 2**31
    m0 = np.where(full, m0 // 2, m0)
    shift = np.where(full, shift + 1, shift)
    tiny = (shift < -31) | (arr == 0)
    return np.where(tiny, 0, m0), np.where(tiny, 0, shift)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's SaturatingRoundingDoublingHighMul: ``round(a·b / 2**31)`` for int32 a, b.

    The rounding adds ``2**30`` (``1 − 2**30`` for a negative product) and then truncates
    toward zero, as C's integer division, so a tie goes up (toward +∞: −2.5 → −2, 2.5 → 3);
    the one product that does not fit, ``INT32_MIN·INT32_MIN``, saturates to ``INT32_MAX``.
    Vectorized in int64 (``|a·b| ≤ 2**62``).

    Examples
    --------
    >>> int(saturating_rounding_doubling_high_mul(-2**31, -2**31))
    2147483647
    >>> int(saturating_rounding_doubling_high_mul(3, 2**30))
    2
    """
    x = _integers(a, "a", INT32_MIN, INT32_MAX, "int32 values")
    y = _integers(b, "b", INT32_MIN, INT32_MAX, "int32 values")
    return _srdhm(x, y)


def _srdhm(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    high = np.sign(s) * (np.abs(s) >> 31)  # truncation toward zero, as C's division
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp's RoundingDivideByPOT: ``x / 2**exponent`` rounded to nearest, ties away from 0.

    ``remainder = x & mask``, ``threshold = mask >> 1`` plus one for negative ``x``; the result is
    ``(x >> exponent) + (remainder > threshold)`` (an arithmetic shift rounds toward −∞ first).

    Parameters
    ----------
    x : array_like of int32 values
    exponent : int or array_like, 0 to 31

    Examples
    --------
    >>> rounding_divide_by_pot([5, -5, 6, -6], 1)
    array([ 3, -3,  3, -3])
    """
    v = _integers(x, "x", INT32_MIN, INT32_MAX, "int32 values")
    e = _integers(exponent, "exponent", 0, 31, "shift amounts")
    return _rdbpot(v, e)


def _rdbpot(x: NDArray[np.int64], e: NDArray[np.int64]) -> NDArray[np.int64]:
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(
    acc: ArrayLike, m0: ArrayLike, shift: ArrayLike
) -> NDArray[np.int64]:
    """TFLite's MultiplyByQuantizedMultiplier: ``acc·M0·2**(shift − 31)`` in integers.

    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc·2**left, M0), right)`` with
    ``left = max(shift, 0)`` and ``right = max(−shift, 0)`` (the default, double-rounding
    reference). ``acc·2**left`` must stay within int32 (in C it would overflow): an
    OverflowError says so.

    Parameters
    ----------
    acc : array_like of int32 accumulators
    m0 : int or array_like of int32 (broadcasts against ``acc``, e.g. per output channel)
    shift : int or array_like, −31 to 30

    Returns
    -------
    ndarray of int64 (values in the int32 range)
    """
    x = _integers(acc, "acc", INT32_MIN, INT32_MAX, "int32 accumulators")
    mult = _integers(m0, "m0", INT32_MIN, INT32_MAX, "int32 multipliers")
    sh = _integers(shift, "shift", -31, 30, "shift exponents")
    try:
        x, mult, sh = np.broadcast_arrays(x, mult, sh)
    except ValueError as exc:
        raise ValueError(
            f"m0 {mult.shape} and shift {sh.shape} must broadcast against acc {x.shape}"
        ) from exc
    left = np.maximum(sh, 0)
    shifted = x << left
    if np.any((shifted > INT32_MAX) | (shifted < INT32_MIN)):
        raise OverflowError(
            "acc * 2**shift leaves the int32 range: the multiplier is too large for these "
            "accumulators (TFLite's int32 left shift would overflow)"
        )
    return _rdbpot(_srdhm(shifted, mult), np.maximum(-sh, 0))


def requantize(
    acc: ArrayLike,
    m0: ArrayLike,
    shift: ArrayLike,
    zero_point: ArrayLike = 0,
    *,
    dtype: str = "int8",
) -> NDArray[np.integer]:
    """Output codes ``saturate(MultiplyByQuantizedMultiplier(acc, M0, shift) + zero_point)``.

    Integer-only (int64 intermediates, no float): see :func:`multiply_by_quantized_multiplier`
    for the fixed-point product; the zero point is added and the result clipped to ``dtype``'s
    range, as TFLite's reference kernels do.

    Parameters
    ----------
    acc : array_like of int32 accumulators
    m0, shift : int or array_like
        From :func:`quantize_multiplier`; broadcast against ``acc`` (per channel allowed).
    zero_point : int or array_like, default 0
        Within the range of ``dtype``.
    dtype : {"int8", "uint8", "int16", "uint16", "int32"}, default "int8"

    Returns
    -------
    ndarray of ``dtype``

    Examples
    --------
    >>> m0, shift = quantize_multiplier(0.1)
    >>> requantize([1000, -15, 5000], m0, shift, zero_point=3)
    array([103,   1, 127], dtype=int8)
    """
    if dtype not in CODE_DTYPES:
        raise ValueError(f"dtype must be one of {tuple(CODE_DTYPES)}, got {dtype!r}")
    lo, hi = CODE_DTYPES[dtype]
    zp = _integers(zero_point, "zero_point", lo, hi, f"{dtype} codes")
    y = multiply_by_quantized_multiplier(acc, m0, shift)
    return np.clip(y + zp, lo, hi).astype(dtype)


# -- activations: codes from floats ---------------------------------------------------------------


def quantize_codes(
    x: ArrayLike, scale: ArrayLike, zero_point: ArrayLike = 0, *, dtype: str = "uint8"
) -> NDArray[np.integer]:
    """Affine codes ``saturate(round_half_even(x/scale) + zero_point)`` (ONNX QuantizeLinear).

    ``scale`` and ``zero_point`` broadcast against ``x`` (per tensor, per token ``(N, 1)``, per
    channel ``(1, K)``).
    """
    if dtype not in CODE_DTYPES:
        raise ValueError(f"dtype must be one of {tuple(CODE_DTYPES)}, got {dtype!r}")
    xa = as_float_array(x, "x")
    s = as_float_array(scale, "scale")
    if np.any(s <= 0):
        raise ValueError("scale must be positive")
    lo, hi = CODE_DTYPES[dtype]
    zp = _integers(zero_point, "zero_point", lo, hi, f"{dtype} codes")
    with np.errstate(over="ignore"):
        q = np.rint(xa / s) + zp
    return np.clip(q, lo, hi).astype(dtype)


def dequantize_codes(q: ArrayLike, scale: ArrayLike, zero_point: ArrayLike = 0) -> NDArray:
    """``(q − zero_point)·scale`` in float64."""
    codes = _integers(q, "q", INT32_MIN, INT32_MAX, "codes")
    zp = _integers(zero_point, "zero_point", INT32_MIN, INT32_MAX, "codes")
    return (codes - zp) * as_float_array(scale, "scale")


# -- a whole network in integers -------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizedLinear:
    """``y = act(x Wᵀ + b)`` with int8 weights per output channel and 8-bit activations.

    Stored: weight codes ``w_codes`` (out, in) int8 with scales ``w_scale`` (out,) and zero point
    0; the input's ``x_scale``/``x_zero_point`` (uint8); the bias as int32
    ``round(b/(x_scale·w_scale))``; the output's ``y_scale``/``y_zero_point`` and ``y_dtype``;
    the per-channel fixed-point multipliers ``m0``/``shift`` of ``x_scale·w_scale/y_scale``.
    ``relu`` clips the output codes below at the zero point (a fused ReLU).
    """

    w_codes: NDArray[np.int8]
    w_scale: NDArray[np.float64]
    bias: NDArray[np.int32]
    x_scale: float
    x_zero_point: int
    y_scale: float
    y_zero_point: int
    y_dtype: str
    m0: NDArray[np.int64]
    shift: NDArray[np.int64]
    relu: bool

    @property
    def multiplier(self) -> NDArray[np.float64]:
        """The real multipliers ``x_scale·w_scale/y_scale`` the integers stand for."""
        return self.x_scale * self.w_scale / self.y_scale

    def accumulate(self, q_x: ArrayLike) -> NDArray[np.int64]:
        """int32 accumulators ``Σ_k (q_x − Z_x)·q_w + q_b`` (the bias added in int64, checked)."""
        acc = matmul_integer(q_x, self.w_codes.T, self.x_zero_point, 0).astype(np.int64)
        acc = acc + self.bias
        if acc.max() > INT32_MAX or acc.min() < INT32_MIN:
            raise OverflowError("the int32 accumulator overflows when the bias is added")
        return acc

    def _finish(self, y: NDArray) -> NDArray[np.integer]:
        lo, hi = CODE_DTYPES[self.y_dtype]
        if self.relu:
            lo = max(lo, self.y_zero_point)
        return np.clip(y, lo, hi).astype(self.y_dtype)

    def __call__(self, q_x: ArrayLike) -> NDArray[np.integer]:
        """Integer-only: accumulators requantized by ``M0``/``shift`` (no float)."""
        y = multiply_by_quantized_multiplier(self.accumulate(q_x), self.m0, self.shift)
        return self._finish(y + self.y_zero_point)

    def simulate(self, q_x: ArrayLike) -> NDArray[np.integer]:
        """The same layer with the real multiplier in float64 and round-half-even."""
        y = np.rint(self.accumulate(q_x) * self.multiplier) + self.y_zero_point
        return self._finish(y)


def _layer(W, b, x_scale, x_zp, y_range, y_dtype, relu, n_bits=8) -> QuantizedLinear:
    W = as_float_array(W, "W")
    b = as_float_array(b, "b")
    qmax = 2 ** (n_bits - 1) - 1
    amax = np.abs(W).max(axis=1)
    w_scale = np.where(amax > 0, amax / qmax, 1.0)
    w_codes = np.clip(np.rint(W / w_scale[:, None]), -qmax, qmax).astype(np.int8)
    bias = np.rint(b / (x_scale * w_scale))
    if np.abs(bias).max() > INT32_MAX:
        raise OverflowError("the bias does not fit in int32 at scale x_scale·w_scale")
    lo_y, hi_y = y_range
    y_scale, y_zp = _affine(lo_y, hi_y, y_dtype)
    m0, shift = quantize_multiplier(x_scale * w_scale / y_scale)
    return QuantizedLinear(
        w_codes,
        w_scale,
        bias.astype(np.int32),
        float(x_scale),
        int(x_zp),
        y_scale,
        y_zp,
        y_dtype,
        m0,
        shift,
        relu,
    )


def _affine(lo: float, hi: float, dtype: str) -> tuple[float, int]:
    scale, zp = affine_params(lo, hi, dtype=dtype)
    return float(scale), int(zp)


@dataclass(frozen=True)
class IntegerMLP:
    """The course's two-layer MLP in integers: uint8 input, uint8 hidden, int8 logits.

    ``input_codes`` quantizes the images (the only float step besides the final dequantization
    of the logits); ``run`` is integer-only; ``simulate`` uses float multipliers instead.
    """

    layer1: QuantizedLinear
    layer2: QuantizedLinear

    def input_codes(self, X: ArrayLike) -> NDArray[np.uint8]:
        """The images as uint8 codes of the first layer's input scale."""
        return quantize_codes(X, self.layer1.x_scale, self.layer1.x_zero_point, dtype="uint8")

    def run(self, q_x: ArrayLike) -> tuple[NDArray[np.uint8], NDArray[np.int8]]:
        """Integer-only inference: hidden codes and logit codes."""
        q_h = self.layer1(q_x)
        return q_h, self.layer2(q_h)

    def simulate(self, q_x: ArrayLike) -> tuple[NDArray[np.uint8], NDArray[np.int8]]:
        """Float-multiplier simulation of the same quantized model."""
        q_h = self.layer1.simulate(q_x)
        return q_h, self.layer2.simulate(q_h)

    def logits(self, X: ArrayLike) -> NDArray[np.float64]:
        """Dequantized logit codes of the integer-only run."""
        l2 = self.layer2
        return dequantize_codes(self.run(self.input_codes(X))[1], l2.y_scale, l2.y_zero_point)


def integer_mlp(
    model: object,
    x_range: tuple[float, float],
    h_range: tuple[float, float],
    z_range: tuple[float, float],
) -> IntegerMLP:
    """Quantize a :class:`quantlab.mlp.DigitsMLP` to W8A8 with int32 biases.

    Parameters
    ----------
    model : DigitsMLP
        Anything with ``W1, b1, W2, b2``.
    x_range, h_range, z_range : (lo, hi)
        Static (calibrated) ranges of the input, the hidden activations and the logits; each is
        widened to contain 0. The input and hidden codes are uint8, the logits int8.
    """
    sx, zx = _affine(*x_range, "uint8")
    l1 = _layer(model.W1, model.b1, sx, zx, h_range, "uint8", relu=True)
    l2 = _layer(model.W2, model.b2, l1.y_scale, l1.y_zero_point, z_range, "int8", relu=False)
    return IntegerMLP(l1, l2)
