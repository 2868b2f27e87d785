"""Input validation shared by every public function (one place, reused everywhere).

Masked arrays (``numpy.ma``) are refused everywhere, with a TypeError naming the argument: a
quantizer that silently used the masked values, or silently dropped them and changed the shape,
would both surprise. Pass ``x.compressed()`` (the unmasked values) or ``x.filled(value)``.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _recycled

#: Bit widths quantlab supports.
MIN_BITS = 1
MAX_BITS = 16

#: Largest magnitude accepted in any array. A weight times a squared error (at most
#: ``4 * MAX_ABS**3``) and its sum over any array then stay far from float64 overflow, so no
#: computation returns inf or NaN for accepted input.
MAX_ABS = 1e75


def as_array(x: ArrayLike, name: str) -> np.ndarray:
    """``np.asarray(x)``, refusing masked arrays (TypeError) and ragged lists (ValueError).

    The first step of every validator here; modules with their own dtype rules (the block
    formats) call it directly so that masked and ragged input is treated the same everywhere.
    """
    if np.ma.isMaskedArray(x):
        raise TypeError(
            f"{name} is a masked array; quantlab does not honour masks: pass {name}.compressed() "
            f"(the unmasked values) or {name}.filled(value)"
        )
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of numbers (not ragged): {exc}") from exc


def as_float_array(x: ArrayLike, name: str = "x") -> NDArray[np.float64]:
    """Return ``x`` as a new finite, non-empty float64 array.

    Raises
    ------
    TypeError
        If ``x`` is not numeric (strings, objects, complex numbers).
    ValueError
        If ``x`` is ragged, empty, contains NaN or infinity, or a magnitude above
        :data:`MAX_ABS` (1e75).
    """
    arr = _new_float_array(x, name, np.float64)
    _finite_extremes(arr, name)
    return arr


def as_float_data(x: ArrayLike, name: str = "x") -> NDArray[np.floating]:
    """As :func:`as_float_array`, but a float32 array stays float32 (a new array either way).

    For computations that convert the data chunk by chunk anyway (the default search): half the
    memory and time of a float64 copy, and the same values (float32 converts exactly). The copy
    is C order, in memory reused from an earlier such copy once that one is garbage
    (:mod:`quantlab._recycled`: no page faults).
    """
    arr = _new_float_array(x, name, _data_dtype(x), recycled=True)
    _finite_extremes(arr, name)
    return arr


def _data_dtype(x: object) -> type:
    """float32 for a float32 ndarray, else float64 (the dtypes of :func:`as_float_data`)."""
    return np.float32 if isinstance(x, np.ndarray) and x.dtype == np.float32 else np.float64


def _new_float_array(
    x: ArrayLike, name: str, dtype: type, recycled: bool = False
) -> NDArray[np.floating]:
    """A new non-empty array of ``dtype`` from real numbers ``x`` (TypeError, ValueError);
    with ``recycled``, C order in memory reused from freed copies (:mod:`quantlab._recycled`)."""
    arr = as_array(x, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if recycled:
        out = _recycled.empty(arr.shape, dtype)
        np.copyto(out, arr, casting="unsafe")
        arr = out
    else:
        arr = np.array(arr, dtype=dtype, copy=True)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def _finite_extremes(arr: NDArray, name: str) -> tuple[float, float]:
    """``(min, max)`` of a non-empty float array; ValueError for NaN, infinity or a magnitude
    above :data:`MAX_ABS`.

    Two reductions without temporaries (NaN propagates through max and min): a quarter of the
    time of ``isfinite(arr).all()`` and ``abs(arr).max()`` on a million values.
    """
    lo, hi = float(arr.min()), float(arr.max())
    top = max(hi, -lo)
    if not np.isfinite(top):
        raise ValueError(f"{name} contains NaN or infinity")
    if top > MAX_ABS:
        raise ValueError(
            f"{name} has a value of magnitude {top:.3g}; at most {MAX_ABS:g} is "
            "supported (larger values overflow the squared error)"
        )
    return lo, hi


def as_real_array(x: ArrayLike, name: str = "x") -> NDArray[np.floating]:
    """Return ``x`` as a new finite, non-empty float array, keeping float16/float32 precision.

    Integers, booleans and lists become float64; a float16/float32/float64 array keeps its dtype
    (for computations that must follow the input's precision, as ONNX does).

    Raises
    ------
    TypeError
        If ``x`` is not real numbers or is a masked array.
    ValueError
        If ``x`` is ragged, empty or contains NaN or infinity.
    """
    arr = as_array(x, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    keep = arr.dtype.kind == "f" and arr.dtype.itemsize <= 8
    arr = np.array(arr, dtype=arr.dtype if keep else np.float64, copy=True)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def as_codes(q: ArrayLike, name: str = "q") -> NDArray[np.int64]:
    """Return integer codes as a new int64 array (integral floats are accepted).

    Raises
    ------
    TypeError
        If ``q`` is not numeric.
    ValueError
        If ``q`` is ragged, empty, non-finite or not integral.
    """
    arr = as_array(q, name)
    if arr.dtype.kind in "iub":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name} holds codes beyond 2**63 - 1 (int64); got {arr.max()}")
        out = arr.astype(np.int64, copy=True)
    else:
        flt = as_float_array(arr, name)
        if not np.all(flt == np.round(flt)):
            raise ValueError(f"{name} must hold integer codes")
        if np.abs(flt).max() > 2**53:
            raise ValueError(f"{name} holds codes beyond 2**53 that are not exact integers")
        out = flt.astype(np.int64)
    if out.size == 0:
        raise ValueError(f"{name} is empty")
    return out


def check_code_range(codes: NDArray, lo: int, hi: int, name: str, what: str) -> None:
    """Raise ValueError naming ``name`` unless every code is in ``[lo, hi]`` (``what`` says why)."""
    bad = (codes < lo) | (codes > hi)
    if np.any(bad):
        raise ValueError(
            f"{name} holds a code outside [{lo}, {hi}] ({what}): {codes[bad].ravel()[0]}; "
            "pass the n_bits the codes were made with"
        )


def check_axis(axis: object, ndim: int, name: str = "axis") -> int | tuple[int, ...] | None:
    """Return ``axis`` (None, an int or a tuple of ints) after checking it against ``ndim``.

    Raises a TypeError naming ``name`` for a float, a string or a bool, and a ValueError for an
    axis out of range or repeated.
    """
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{name} must be None, an integer or a tuple of integers, got {axis!r}")
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"{name} {int(a)} is out of range for a {ndim}-D array")
    norm = tuple(int(a) % ndim for a in items)
    if len(set(norm)) != len(norm):
        raise ValueError(f"{name} repeats an axis: {axis!r}")
    return norm if isinstance(axis, tuple) else norm[0]


def as_weights(w: ArrayLike | None, shape: tuple[int, ...], name: str = "w") -> NDArray[np.float64]:
    """Return importance weights of exactly ``shape`` (all ones when ``w`` is None).

    Raises
    ------
    ValueError
        If ``w`` has another shape, contains NaN/infinity or a negative value.
    """
    if w is None:
        return np.ones(shape, dtype=np.float64)
    return _checked_weights(_new_float_array(w, name, np.float64), shape, name)


def as_weight_data(w: ArrayLike, shape: tuple[int, ...], name: str = "w") -> NDArray[np.floating]:
    """As :func:`as_weights` for given weights, but float32 weights stay float32 (as
    :func:`as_float_data`: for the default search, which converts chunk by chunk; the copy of
    an importance matrix, usually float32, is then half the memory and time), in recycled
    memory as there."""
    return _checked_weights(_new_float_array(w, name, _data_dtype(w), recycled=True), shape, name)


def _checked_weights(arr: NDArray, shape: tuple[int, ...], name: str) -> NDArray:
    """``arr`` after the checks of :func:`as_weights` (finite, shape, non-negative)."""
    low, _ = _finite_extremes(arr, name)  # its minimum is the sign check too
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of x {tuple(shape)}, got {arr.shape}")
    if low < 0:
        raise ValueError(f"{name} must be non-negative")
    return arr


def check_n_bits(n_bits: object, minimum: int = MIN_BITS, maximum: int = MAX_BITS) -> int:
    """Return ``n_bits`` as an int after checking ``minimum <= n_bits <= maximum``."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral):
        raise TypeError(f"n_bits must be an integer, got {n_bits!r}")
    n = int(n_bits)
    if not minimum <= n <= maximum:
        raise ValueError(f"n_bits must be between {minimum} and {maximum}, got {n}")
    return n


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` as a bool; a TypeError naming ``name`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of {name_a} {a.shape}, got {b.shape}")


def as_finite_float(value: object, name: str) -> float:
    """Return a finite Python float or raise a ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v
