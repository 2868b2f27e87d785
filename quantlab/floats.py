"""Minifloats and NF4: non-uniform grids built from bits (SPEC item 12).

A minifloat with ``E`` exponent bits, ``M`` mantissa bits and bias ``b`` stores a sign ``s``, a
biased exponent ``e`` and a mantissa ``f``; its value is

- ``(-1)**s * (1 + f / 2**M) * 2**(e - b)`` for a normal number (``e >= 1``),
- ``(-1)**s * (f / 2**M) * 2**(1 - b)`` for a subnormal (``e = 0``), zero included.

Within one binade ``[2**k, 2**(k+1))`` the ``2**M`` values are evenly spaced by
``2**(k - M)``, so the spacing grows with the magnitude and the *relative* rounding error stays
below ``2**-(M+1)`` over the whole normal range: that is what the course means by "floating".

==================  =====  =====  ====  =========  ==================================  =======
format              E      M      bias  max        specials                            bits
==================  =====  =====  ====  =========  ==================================  =======
float8_e4m3fn       4      3      7     448        no inf; NaN = S.1111.111            8
float8_e5m2         5      2      15    57344      IEEE: inf = S.11111.00, NaN others  8
float6_e2m3fn       2      3      1     7.5        none (every code is a number)       6
float6_e3m2fn       3      2      3     28         none                                6
float4_e2m1fn       2      1      1     6          none                                4
float8_e8m0fnu      8      0      127   2**127     unsigned, no zero; NaN = 0xFF       8
==================  =====  =====  ====  =========  ==================================  =======

(The layouts are those of the OCP 8-bit floating point and Microscaling (MX) v1.0
specifications, as implemented by ``ml_dtypes``.)

Rounding (:func:`round_to_format`, :func:`encode`) goes to the nearest value; a value exactly
half-way between two neighbours goes to the one with an even mantissa, i.e. an even code (for
the E8M0 scale, which has no mantissa bits, the implicit leading 1 is the last kept bit, so
ties go up). The nearest value lies in the input's own binade (or the next one up), where the
format's values are evenly spaced: scaling by a power of two, ``rint`` (ties to even) and
scaling back give it exactly for every float64 input, and the integer ``rint`` returns is the
code's mantissa (see :func:`_magnitude_codes`), in chunks that stay in the CPU cache: about
2 times the time of ``ml_dtypes``' C cast for float32 input (12 times before, with a binary
search of the table of values).

Overflow: with ``saturate=True`` (ONNX's Cast/QuantizeLinear default) anything beyond the
largest finite value, infinities included, becomes ``±max``. With ``saturate=False`` the
format's own rule applies, as ``ml_dtypes``' ``astype``: E5M2 rounds to ``±inf``, E4M3FN (and
E8M0) to NaN, and the FP6/FP4 formats, which have neither, to ``±max``.

NF4 (QLoRA, Dettmers et al. 2023): 16 levels at quantiles of the standard normal distribution,
scaled so that the extremes are ``±1``, with an exact zero; see :func:`nf4_values`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_array, as_codes, as_float_array, check_bool


@dataclass(frozen=True)
class FloatFormat:
    """One minifloat element format.

    Attributes
    ----------
    name : str
        The ``ml_dtypes`` name, e.g. ``"float8_e4m3fn"``.
    exponent_bits, mantissa_bits : int
        ``E`` and ``M``.
    bias : int
        Exponent bias ``b``: a normal value is ``(1 + f/2**M) * 2**(e - b)``.
    specials : str
        ``"ieee"`` (exponent all ones: inf if the mantissa is 0, else NaN), ``"nan"`` (only
        the all-ones magnitude is NaN) or ``"none"``.
    signed : bool
        Whether a sign bit is stored (E8M0 is unsigned).
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    specials: str
    signed: bool = True

    @property
    def bits(self) -> int:
        """Total bits: sign (if any) + exponent + mantissa."""
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def has_inf(self) -> bool:
        """Whether the format has infinities (E5M2 only)."""
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        """Whether some code is NaN."""
        return self.specials != "none"

    @property
    def sign_bit(self) -> int:
        """The sign bit's mask (0 for an unsigned format)."""
        return 1 << (self.bits - 1) if self.signed else 0

    @property
    def magnitude_codes(self) -> int:
        """Number of codes with the sign bit clear."""
        return 1 << (self.exponent_bits + self.mantissa_bits)

    @property
    def nan_code(self) -> int | None:
        """The positive NaN that :func:`encode` writes (``ml_dtypes``' choice), or None."""
        if self.specials == "ieee":
            return ((1 << self.exponent_bits) - 1) << self.mantissa_bits | (
                1 << (self.mantissa_bits - 1)
            )
        return self.magnitude_codes - 1 if self.specials == "nan" else None

    @property
    def inf_code(self) -> int | None:
        """The code of +inf, or None."""
        if not self.has_inf:
            return None
        return ((1 << self.exponent_bits) - 1) << self.mantissa_bits

    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(positive_values(self)[-1])

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value."""
        v = positive_values(self)
        return float(v[v > 0][0])

    @property
    def smallest_normal(self) -> float:
        """``2**(1 - bias)``: the smallest value with an implicit leading 1."""
        return 2.0 ** (1 - self.bias) if self.mantissa_bits else 2.0**-self.bias


#: The supported minifloat formats by name.
FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("float8_e4m3fn", 4, 3, 7, "nan"),
        FloatFormat("float8_e5m2", 5, 2, 15, "ieee"),
        FloatFormat("float6_e2m3fn", 2, 3, 1, "none"),
        FloatFormat("float6_e3m2fn", 3, 2, 3, "none"),
        FloatFormat("float4_e2m1fn", 2, 1, 1, "none"),
        FloatFormat("float8_e8m0fnu", 8, 0, 127, "nan", signed=False),
    )
}

#: Other spellings accepted for the names (ONNX's tensor types among them).
ALIASES = {
    "float8e4m3fn": "float8_e4m3fn",
    "e4m3": "float8_e4m3fn",
    "fp8_e4m3": "float8_e4m3fn",
    "float8e5m2": "float8_e5m2",
    "e5m2": "float8_e5m2",
    "fp8_e5m2": "float8_e5m2",
    "e2m3": "float6_e2m3fn",
    "e3m2": "float6_e3m2fn",
    "float4e2m1": "float4_e2m1fn",
    "e2m1": "float4_e2m1fn",
    "fp4": "float4_e2m1fn",
    "e8m0": "float8_e8m0fnu",
    "float8e8m0": "float8_e8m0fnu",
}


def get_format(fmt: str | FloatFormat) -> FloatFormat:
    """The :class:`FloatFormat` named ``fmt`` (``"float8_e4m3fn"``, ``"e2m1"``, ...)."""
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        key = fmt.lower()
        key = ALIASES.get(key, key)
        if key in FORMATS:
            return FORMATS[key]
    raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")


# -- the value sets -----------------------------------------------------------------------------
def _magnitude(fmt: FloatFormat, u: NDArray[np.int64]) -> NDArray[np.float64]:
    """Value of the sign-less codes ``u`` (NaN and inf where the format says so)."""
    m = fmt.mantissa_bits
    e = u >> m
    f = (u & ((1 << m) - 1)).astype(np.float64)
    if m == 0:  # E8M0: a pure power of two, no subnormals, no zero
        value = np.ldexp(1.0, e - fmt.bias)
    else:
        normal = np.ldexp(1.0 + f / 2**m, e - fmt.bias)
        subnormal = np.ldexp(f / 2**m, 1 - fmt.bias)
        value = np.where(e == 0, subnormal, normal)
    top = (1 << fmt.exponent_bits) - 1
    if fmt.specials == "ieee":
        value = np.where(e == top, np.where(f == 0, np.inf, np.nan), value)
    elif fmt.specials == "nan":
        value = np.where(u == fmt.magnitude_codes - 1, np.nan, value)
    return value


@cache
def _code_table(fmt: FloatFormat) -> NDArray[np.float64]:
    codes = np.arange(1 << fmt.bits, dtype=np.int64)
    value = _magnitude(fmt, codes & (fmt.magnitude_codes - 1))
    if fmt.signed:
        value = np.where(codes & fmt.sign_bit, -value, value)
    value.setflags(write=False)
    return value


def all_values(fmt: str | FloatFormat) -> NDArray[np.float64]:
    """The value of every code ``0 .. 2**bits - 1``, in code order (NaN where a code is NaN).

    Examples
    --------
    >>> all_values("float4_e2m1fn")[:8].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    """
    return _code_table(get_format(fmt)).copy()


@cache
def _positive(fmt: FloatFormat) -> NDArray[np.float64]:
    mags = _code_table(fmt)[: fmt.magnitude_codes]
    n_finite = int(np.argmax(~np.isfinite(mags))) if not np.all(np.isfinite(mags)) else mags.size
    out = mags[:n_finite].copy()  # codes 0 .. n_finite-1 are the finite magnitudes, increasing
    out.setflags(write=False)
    return out


def positive_values(fmt: str | FloatFormat) -> NDArray[np.float64]:
    """The finite non-negative values in increasing order; entry ``k`` is the value of code ``k``.

    Examples
    --------
    >>> positive_values("float8_e4m3fn")[[0, 1, 8, -1]].tolist()
    [0.0, 0.001953125, 0.015625, 448.0]
    """
    return _positive(get_format(fmt)).copy()


def finite_values(fmt: str | FloatFormat) -> NDArray[np.float64]:
    """Every finite value once (``+0`` and ``-0`` counted once), sorted."""
    v = _positive(get_format(fmt))
    return np.unique(np.concatenate([-v, v]) if get_format(fmt).signed else v) + 0.0  # +0, not -0


# -- rounding -------------------------------------------------------------------------------------
def _as_real(x: ArrayLike, name: str = "x") -> NDArray[np.floating]:
    """``x`` as a real float array (float32 stays float32; never written to), not empty."""
    arr = as_array(x, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr if arr.dtype.kind == "f" and arr.itemsize >= 4 else arr.astype(np.float64)


#: Values encoded at once by :func:`encode` (its float64 temporaries stay in the CPU cache).
ENCODE_CHUNK = 1 << 15


def _magnitude_codes(fmt: FloatFormat, a: NDArray[np.float64], saturate: bool) -> NDArray:
    """Sign-less code of the nearest value to ``a >= 0`` (finite or inf; NaN handled outside).

    With ``M >= 1`` mantissa bits, ``a`` is rounded in its own binade: with ``k =
    max(floor(log2 a), e_min)`` (the subnormals share the quantum of the smallest binade) the
    nearest value is ``n * 2**(k - M)`` for the integer ``n = rint(a * 2**(M - k))`` (ties to
    even; both products by powers of two are exact), and its code is ``(k - e_min + 1) * 2**M
    + n - 2**M``: a subnormal's code is ``n``, a normal one's the biased exponent then the
    mantissa, and ``n = 2**(M+1)`` (rounding up to the next binade) carries into the exponent
    by itself. ``n`` and the code have the same parity, so ties go to the even code. Overflow
    is a code beyond the largest finite one (as if the exponent range went on). A few
    elementwise passes, about 8 times faster than a binary search of the table of values.
    E8M0 (no mantissa, no zero) keeps that search (:func:`_searched_codes`).
    """
    if fmt.mantissa_bits == 0:
        return _searched_codes(fmt, a, saturate)
    m, e_min = fmt.mantissa_bits, 1 - fmt.bias
    top = _positive(fmt).size - 1  # the code of max
    with np.errstate(invalid="ignore"):
        a = np.minimum(a, 2 * fmt.max)  # still beyond the overflow midpoint (inf included)
    _, e = np.frexp(a)  # a = f * 2**e with f in [0.5, 1): floor(log2 a) = e - 1 (e = 0 at 0)
    k = np.where(a > 0, np.maximum(e - 1, np.int32(e_min)), np.int32(e_min))
    n = np.rint(np.ldexp(a, np.int32(m) - k)).astype(np.int32)
    code = ((k - np.int32(e_min - 1)) << np.int32(m)) + n - np.int32(1 << m)
    overflow = code > top
    if saturate or fmt.specials == "none":
        return np.where(overflow, top, code)
    special = fmt.inf_code if fmt.has_inf else fmt.nan_code
    return np.where(overflow, special, code)


def _searched_codes(fmt: FloatFormat, a: NDArray[np.float64], saturate: bool) -> NDArray:
    """:func:`_magnitude_codes` by a binary search of the table ``P`` of positive values.

    ``k`` with ``P[k] <= a < P[k+1]`` brackets ``a``; the code is ``k + 1`` when ``a`` is above
    the midpoint, or at it and ``k`` is odd (ties to the even code; E8M0 ties go up).
    """
    p = _positive(fmt)
    top = p.size - 1
    # the value one step beyond max, as if the exponent range went on: where rounding overflows
    step = p[-1] - p[-2] if fmt.mantissa_bits else p[-1]
    beyond = np.concatenate([p, [p[-1] + step]])
    k = np.clip(np.searchsorted(beyond, a, side="right") - 1, 0, top)
    lo, hi = beyond[k], beyond[k + 1]
    mid = lo + (hi - lo) / 2  # exact: a few significant bits at most
    tie_up = (k % 2 == 1) if fmt.mantissa_bits else np.ones(k.shape, bool)
    up = (a > mid) | ((a == mid) & tie_up)
    if fmt.mantissa_bits == 0:
        up &= a >= p[0]  # below 2**-127 stays at the smallest code (there is no zero)
    code = k + up
    overflow = (code > top) | (a > beyond[-1])
    if saturate or fmt.specials == "none":
        return np.where(overflow, top, code)
    special = fmt.inf_code if fmt.has_inf else fmt.nan_code
    return np.where(overflow, special, code)


def encode(x: ArrayLike, fmt: str | FloatFormat, *, saturate: bool = True) -> NDArray[np.uint8]:
    """The bit patterns of the nearest ``fmt`` values (round half to even), as uint8.

    For every value the format can hold (and every rounding of a finite value inside its
    range) the result equals ``ml_dtypes``' ``x.astype(fmt).view(np.uint8)``; an FP6/FP4 code
    sits in the low 6/4 bits, the sign in bit ``bits - 1``.

    Parameters
    ----------
    x : array_like
        Real numbers (NaN and ±inf allowed).
    fmt : str or FloatFormat
        One of :data:`FORMATS` (or an alias such as ``"e4m3"``).
    saturate : bool, default True
        Clamp overflow (infinities included) to ``±max`` as ONNX does; False follows the
        format's own overflow (see the module docstring).

    Returns
    -------
    ndarray of uint8
        Shape of x. NaN is encoded as the format's NaN with the input's sign bit.

    Raises
    ------
    ValueError
        If x holds NaN and the format has no NaN (FP6, FP4), or x is empty.

    Examples
    --------
    >>> encode([1.0, -6.0, 5.0], "float4_e2m1fn").tolist()  # 5 is a tie: 4 has the even code
    [2, 15, 6]
    """
    f = get_format(fmt)
    saturate = check_bool(saturate, "saturate")
    arr = _as_real(x)
    out = np.empty(arr.shape, np.uint8)
    flat, codes = arr.reshape(-1), out.reshape(-1)
    for start in range(0, flat.size, ENCODE_CHUNK):  # chunks: bounded, cache-sized temporaries
        part = slice(start, start + ENCODE_CHUNK)
        codes[part] = _encode_values(f, flat[part].astype(np.float64), saturate)
    return out


def _encode_values(f: FloatFormat, v: NDArray[np.float64], saturate: bool) -> NDArray:
    """:func:`encode` of a 1-D float64 array ``v`` (the codes as integers)."""
    nan = np.isnan(v)
    has_nan = bool(nan.any())
    if has_nan and not f.has_nan:
        raise ValueError(f"x contains NaN, which {f.name} cannot represent")
    a = np.abs(v)
    if has_nan:
        a[nan] = 0.0
    code = _magnitude_codes(f, a, saturate)
    negative = np.signbit(v)
    if f.signed:
        code |= negative.astype(code.dtype) << f.bits - 1
    else:  # E8M0: zero and negative numbers are NaN (as ml_dtypes)
        code = np.where(negative | (v == 0), f.nan_code, code)
    if has_nan:
        nan_code = f.nan_code | (f.sign_bit if f.signed else 0)
        code = np.where(nan, np.where(negative, nan_code, f.nan_code), code)
    return code


def decode(bits: ArrayLike, fmt: str | FloatFormat) -> NDArray[np.float64]:
    """The values of bit patterns (a table lookup), as float64.

    Parameters
    ----------
    bits : array_like of int
        Codes in ``[0, 2**fmt.bits - 1]``.
    fmt : str or FloatFormat
        The format.

    Returns
    -------
    ndarray of float64
        NaN and ±inf where the codes mean them.

    Examples
    --------
    >>> decode([0x7E, 0x7F, 0x01], "float8_e4m3fn").tolist()
    [448.0, nan, 0.001953125]
    """
    f = get_format(fmt)
    arr = as_array(bits, "bits")
    if arr.dtype.kind not in "iub":
        raise TypeError(f"bits must be an integer array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("bits is empty")
    if arr.min() < 0 or arr.max() >= 1 << f.bits:
        raise ValueError(f"bits must lie in [0, {(1 << f.bits) - 1}] for {f.name}")
    return _code_table(f)[arr.astype(np.int64)]


def round_to_format(
    x: ArrayLike, fmt: str | FloatFormat, *, saturate: bool = True
) -> NDArray[np.float64]:
    """Round to the nearest value of a minifloat format (ties to even), as float64.

    ``decode(encode(x, fmt, saturate=saturate), fmt)``: the value nearest to x, the even
    code on a tie, ``±max`` for overflow when ``saturate`` (ONNX), else the format's own
    overflow (E5M2: ±inf, E4M3FN: NaN, FP6/FP4: ±max; as ``ml_dtypes``). The sign of zero is
    kept.

    Parameters
    ----------
    x : array_like
        Real numbers (NaN and ±inf allowed where the format has NaN).
    fmt : str or FloatFormat
        ``"float8_e4m3fn"``, ``"float8_e5m2"``, ``"float6_e2m3fn"``, ``"float6_e3m2fn"``,
        ``"float4_e2m1fn"`` (or ``"float8_e8m0fnu"``).
    saturate : bool, default True
        See above.

    Returns
    -------
    ndarray of float64
        Shape of x.

    Examples
    --------
    >>> round_to_format([0.3, 2.5, 5.0, 7.0], "float4_e2m1fn").tolist()
    [0.5, 2.0, 4.0, 6.0]
    >>> round_to_format([500.0], "float8_e4m3fn", saturate=False).tolist()
    [nan]
    """
    f = get_format(fmt)
    return _code_table(f).take(encode(x, f, saturate=saturate))


def relative_spacing(fmt: str | FloatFormat) -> float:
    """``2**-M``: the gap between neighbours divided by the smaller one, on the normal range.

    A value rounded inside the normal range is off by at most half of that, relatively.
    """
    return 2.0 ** -get_format(fmt).mantissa_bits


# -- NF4 ----------------------------------------------------------------------------------------
#: bitsandbytes' offset for NF4: the mean of 1 - 1/(2*15) and 1 - 1/(2*16), rounded as there.
NF4_OFFSET = 0.9677083


def _torch_linspace32(start: float, end: float, steps: int) -> NDArray[np.float32]:
    """``torch.linspace(start, end, steps)`` in float32, computed as torch's CPU kernel does.

    The step ``(end - start) / (steps - 1)`` is a float32; the first half of the points is
    ``start + i*step``, the second half ``end - (steps - 1 - i)*step``.
    """
    a, b = np.float32(start), np.float32(end)
    step = (b - a) / np.float32(steps - 1)
    i = np.arange(steps)
    up = a + step * i.astype(np.float32)
    down = b - step * (steps - 1 - i).astype(np.float32)
    return np.where(i < steps // 2, up, down).astype(np.float32)


def nf4_quantiles() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The probabilities whose normal quantiles give NF4's positive and negative levels.

    8 points from ``NF4_OFFSET`` down to (not including) 1/2 for the positive side and 7 for
    the negative side, each a float32 ``linspace`` (QLoRA's construction as bitsandbytes'
    ``create_normal_map`` computes it).
    """
    return _torch_linspace32(NF4_OFFSET, 0.5, 9)[:-1], _torch_linspace32(NF4_OFFSET, 0.5, 8)[:-1]


@cache
def _nf4() -> NDArray[np.float32]:
    normal = NormalDist()
    pos, neg = nf4_quantiles()
    levels = [normal.inv_cdf(float(p)) for p in pos] + [0.0]
    levels += [-normal.inv_cdf(float(p)) for p in neg]
    v = np.sort(np.array(levels, dtype=np.float32))
    v /= v.max()
    v.setflags(write=False)
    return v


def nf4_values() -> NDArray[np.float32]:
    """The 16 NF4 levels in increasing order (code ``i`` is level ``i``), as float32.

    QLoRA's construction: the standard normal quantile function ``Phi^-1`` at 8 evenly spaced
    probabilities from ``0.9677083`` towards 1/2 (positive side) and at 7 (negative side), an
    exact 0, all divided by the largest so that the extremes are ±1. The asymmetry (8 positive,
    7 negative levels) buys the exact zero with 4 bits. ``Phi^-1`` is the standard library's
    ``statistics.NormalDist().inv_cdf``; rounded to float32 the levels equal bitsandbytes' table.

    Examples
    --------
    >>> v = nf4_values()
    >>> float(v[0]), float(v[7]), float(v[-1])
    (-1.0, 0.0, 1.0)
    """
    return _nf4().copy()


def _nf4_blocks(n: int, block_size: object) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer):
        raise TypeError(f"block_size must be a positive integer, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")
    return -(-n // int(block_size))


def quantize_nf4(x: ArrayLike, block_size: int = 64) -> tuple[NDArray[np.uint8], NDArray]:
    """NF4 codes and per-block absmax, bitsandbytes' rule.

    The array is flattened and cut into blocks of ``block_size`` (the last may be shorter);
    for each block ``absmax = max|x|`` and each value gets the code of the level nearest to
    ``x / absmax``; a value exactly half-way between two levels gets the lower code (the
    comparisons are ``x/absmax > midpoint``). An all-zero block has ``absmax = 0`` and every
    code on the level 0 (code 7).

    Parameters
    ----------
    x : array_like
        Finite values, any shape.
    block_size : int, default 64
        Values per block.

    Returns
    -------
    codes : ndarray of uint8
        Shape of x, in [0, 15].
    absmax : ndarray of float64
        One per block, shape ``(ceil(x.size / block_size),)``.

    Examples
    --------
    >>> codes, absmax = quantize_nf4([0.0, -2.0, 1.0, 2.0], block_size=4)
    >>> codes.tolist(), absmax.tolist()
    ([7, 0, 12, 15], [2.0])
    """
    arr = as_float_array(x)
    n_blocks = _nf4_blocks(arr.size, block_size)
    flat = np.zeros(n_blocks * block_size)
    flat[: arr.size] = arr.ravel()
    blocks = flat.reshape(n_blocks, block_size)
    absmax = np.abs(blocks).max(axis=1)
    safe = np.where(absmax > 0, absmax, 1.0)[:, None]
    levels = _nf4().astype(np.float64)
    midpoints = (levels[:-1] + levels[1:]) / 2  # exact in float64
    # code = number of midpoints strictly below the value (a tie stays on the lower code): 15
    # comparisons of a cache-sized chunk (4M float32 values: 96 ms, 217 with a binary search)
    codes = np.zeros(blocks.shape, np.uint8)
    rows = max(1, ENCODE_CHUNK // block_size)
    for start in range(0, n_blocks, rows):
        part = slice(start, start + rows)
        scaled = blocks[part] / safe[part]
        above = np.empty(scaled.shape, bool)
        code = codes[part]
        for m in midpoints:
            np.greater(scaled, m, out=above)
            code += above.view(np.uint8)
    return codes.ravel()[: arr.size].reshape(arr.shape), absmax


def dequantize_nf4(codes: ArrayLike, absmax: ArrayLike, block_size: int = 64) -> NDArray:
    """``x_hat = level[code] * absmax`` of its block (float64; see :func:`quantize_nf4`).

    Parameters
    ----------
    codes : array_like of int
        Codes in [0, 15], any shape (flattened into blocks as in :func:`quantize_nf4`).
    absmax : array_like
        One non-negative value per block.
    block_size : int, default 64
        Values per block.

    Returns
    -------
    ndarray of float64
        Shape of codes.
    """
    c = as_codes(codes, "codes")
    if c.min() < 0 or c.max() > 15:
        raise ValueError("codes must lie in [0, 15]")
    n_blocks = _nf4_blocks(c.size, block_size)
    m = as_float_array(absmax, "absmax").ravel()
    if m.size != n_blocks:
        raise ValueError(f"absmax must have one value per block ({n_blocks}), got {m.size}")
    if np.any(m < 0):
        raise ValueError("absmax must be non-negative")
    scale = np.repeat(m, block_size)[: c.size].reshape(c.shape)
    return _nf4().astype(np.float64)[c] * scale


# -- quantize_linear's float output types (ONNX QuantizeLinear to FLOAT8E4M3FN, ...) -------------
#: ONNX's float8/float4 tensor types, by the name :func:`quantlab.quantize_linear` takes, and the
#: ``ml_dtypes`` spelling of the same formats.
ONNX_TYPES = {
    "float8e4m3fn": "float8_e4m3fn",
    "float8e5m2": "float8_e5m2",
    "float4e2m1": "float4_e2m1fn",
    "float8_e4m3fn": "float8_e4m3fn",
    "float8_e5m2": "float8_e5m2",
    "float4_e2m1fn": "float4_e2m1fn",
}


def _register_linear_types() -> None:
    """Add the float types to :data:`quantlab.linear.QUANT_TYPES` (saturating, as ONNX's default).

    ``quantize_linear(x, scale, dtype="float8e4m3fn")`` then returns the bit patterns
    ``encode(x / scale, fmt, saturate=True)`` as uint8 (a 4-bit code in the low nibble), and
    ``dequantize_linear(codes, scale, dtype=...)`` decodes them. The zero-point must be 0.
    """
    from .linear import QuantType, register_quant_type

    for name, fmt_name in ONNX_TYPES.items():
        f = FORMATS[fmt_name]

        def encode(v: NDArray, zero_point: NDArray, f: FloatFormat = f) -> NDArray[np.uint8]:
            return encode_values(v, f)

        def decode_codes(codes: NDArray, f: FloatFormat = f) -> NDArray[np.float64]:
            return _code_table(f)[codes.astype(np.int64)]

        register_quant_type(
            QuantType(name, np.dtype(np.uint8), -f.max, f.max, False, encode, decode_codes)
        )


def encode_values(v: NDArray, fmt: FloatFormat) -> NDArray[np.uint8]:
    """:func:`encode` with ``saturate=True`` for an array of quotients (no checks: internal)."""
    return encode(np.asarray(v, dtype=np.float64), fmt, saturate=True).reshape(np.shape(v))


_register_linear_types()
