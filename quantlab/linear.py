"""Quantize with a given scale and zero-point: ONNX QuantizeLinear / DequantizeLinear.

The practitioner's view of SPEC item 1: the parameters come from elsewhere (a calibrated model,
an ONNX graph) and only the mapping is applied::

    q = saturate(round_half_even(x / scale) + zero_point)      # QuantizeLinear
    x_hat = (q - zero_point) * scale                          # DequantizeLinear

``saturate`` clips to the output type's range (``uint8``: ``[0, 255]``, ``int4``: ``[-8, 7]``,
...). Note the order: the quotient is rounded first and the zero-point added after, as ONNX and
quantlab's :func:`quantlab.asymmetric_quantization` do; PyTorch rounds ``x/scale + zero_point`` as
a whole, which differs at ties when the zero-point is odd (``x/scale = 0.5``, ``Z = 1``: ONNX
gives ``0 + 1 = 1``, PyTorch ``round(1.5) = 2``).

Three layouts of the parameters, as in ONNX:

- per tensor: a scalar (or 1-element) ``scale`` and ``zero_point``;
- per axis: 1-D ``scale`` of length ``x.shape[axis]``, ``zero_point`` of the same shape (or a
  1-element one);
- blocked: ``block_size`` consecutive values along ``axis`` share a scale; ``scale`` has the
  dimensions of ``x`` with ``ceil(x.shape[axis] / block_size)`` on ``axis`` (the last block may
  be shorter).

The output types live in one small table, :data:`QUANT_TYPES` (name -> :class:`QuantType`):
each entry knows its storage dtype, its range and how to encode scaled values and decode stored
ones. The integer types are built by :func:`_integer_type`; another family (e.g. the float8 types
of ONNX) is added with :func:`register_quant_type` without touching the functions below.
Parameters are expanded by broadcasting (per axis, a reshape; blocked, one ``np.repeat`` along
the axis), so the work is a few whole-array NumPy operations and the extra memory is a small
multiple of the input size.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_codes, as_real_array, check_code_range

__all__ = [
    "QUANT_TYPES",
    "QuantType",
    "dequantize_linear",
    "quantize_linear",
    "register_quant_type",
]


@dataclass(frozen=True)
class QuantType:
    """An output type of :func:`quantize_linear`.

    Attributes
    ----------
    name : str
        The name passed as ``dtype`` (``"uint8"``, ``"int4"``, ...).
    storage : numpy dtype
        The dtype of the returned codes (4- and 2-bit codes are stored one per ``int8``/``uint8``).
    lo, hi : float
        The smallest and largest value the type holds (saturation bounds).
    integer : bool
        True for the integer types; other types (floats) accept only a zero ``zero_point``.
    encode : callable
        ``encode(v, zero_point)`` maps the quotients ``v = x / scale`` (in the input's floating
        precision) and the broadcast integer zero-point to stored codes of ``storage``: for the
        integers ``saturate(round_half_even(v) + zero_point)``.
    decode : callable
        ``decode(codes)`` maps stored codes to their float64 values.
    """

    name: str
    storage: np.dtype
    lo: float
    hi: float
    integer: bool
    encode: Callable[[NDArray, NDArray], NDArray]
    decode: Callable[[NDArray], NDArray[np.float64]]


def _integer_type(name: str, bits: int, signed: bool) -> QuantType:
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    storage = np.dtype(f"{'int' if signed else 'uint'}{max(bits, 8)}")

    def encode(v: NDArray, zero_point: NDArray) -> NDArray:
        # Round half to even in the quotient's precision, add the zero-point, then saturate in
        # float64 (exact for these integers; no wrap-around for huge quotients).
        return np.clip(np.rint(v).astype(np.float64) + zero_point, lo, hi).astype(storage)

    def decode(codes: NDArray) -> NDArray[np.float64]:
        return codes.astype(np.float64)

    return QuantType(name, storage, float(lo), float(hi), True, encode, decode)


#: Output types of :func:`quantize_linear`, by name.
QUANT_TYPES: dict[str, QuantType] = {
    t.name: t
    for t in (
        _integer_type(f"{'' if s else 'u'}int{b}", b, s)
        for b in (8, 16, 4, 2)
        for s in (False, True)
    )
}


def register_quant_type(qtype: QuantType) -> None:
    """Add (or replace) an output type of :func:`quantize_linear` / :func:`dequantize_linear`."""
    if not isinstance(qtype, QuantType):
        raise TypeError(f"qtype must be a QuantType, got {type(qtype).__name__}")
    QUANT_TYPES[qtype.name] = qtype


def _quant_type(dtype: object) -> QuantType:
    key = dtype if isinstance(dtype, str) else getattr(np.dtype(dtype), "name", None)
    if key not in QUANT_TYPES:
        raise ValueError(f"dtype must be one of {sorted(QUANT_TYPES)}, got {dtype!r}")
    return QUANT_TYPES[key]


def _check_axis(axis: object, ndim: int) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be None or an integer, got {axis!r}")
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"axis {int(axis)} is out of range for a {ndim}-D array")
    return int(axis) % ndim


def _check_block_size(block_size: object) -> int | None:
    if block_size is None:
        return None
    if isinstance(block_size, (bool, np.bool_)) or not isinstance(block_size, numbers.Integral):
        raise TypeError(f"block_size must be None or an integer, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    return int(block_size)


def _expand(
    p: NDArray, shape: tuple[int, ...], axis: int | None, block_size: int | None, name: str
) -> NDArray:
    """Parameter ``p`` shaped to broadcast against values of ``shape`` (ONNX's three layouts)."""
    if p.size == 1:  # per tensor (also a 1-element array, e.g. one block)
        return p.reshape(())
    if block_size is None:
        if p.ndim != 1:
            raise ValueError(
                f"{name} must be a scalar or 1-D (per axis), got shape {p.shape}; "
                "blocked parameters need block_size"
            )
        if axis is None:
            raise ValueError(f"{name} has {p.size} values (per axis): axis is missing")
        if p.size != shape[axis]:
            raise ValueError(
                f"{name} must have {shape[axis]} values (x.shape[{axis}]) for axis={axis}, "
                f"got {p.size}"
            )
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    if axis is None:
        raise ValueError("block_size needs axis (the axis the blocks run along)")
    n_blocks = -(-shape[axis] // block_size)
    expected = tuple(n_blocks if k == axis else n for k, n in enumerate(shape))
    if p.shape != expected:
        raise ValueError(
            f"{name} must have shape {expected} for block_size={block_size} along axis={axis} "
            f"of x {tuple(shape)}, got {p.shape}"
        )
    return np.repeat(p, block_size, axis=axis).take(np.arange(shape[axis]), axis=axis)


def _scale(scale: ArrayLike) -> NDArray:
    s = as_real_array(scale, "scale")
    if np.any(s <= 0):
        raise ValueError("scale must be positive")
    return s


def _zero_point(zero_point: ArrayLike, scale_shape: tuple[int, ...], qt: QuantType) -> NDArray:
    zp = as_codes(zero_point, "zero_point")
    if zp.size != 1 and zp.shape != scale_shape:
        raise ValueError(
            f"zero_point must have 1 value or the shape of scale {scale_shape}, got {zp.shape}"
        )
    if not qt.integer and np.any(zp != 0):
        raise ValueError(f"zero_point must be 0 for dtype {qt.name!r}")
    check_code_range(zp, int(qt.lo), int(qt.hi), "zero_point", f"dtype {qt.name!r}")
    return zp


def _check_zero_point_dtype(zero_point: ArrayLike, qt: QuantType) -> None:
    """A zero_point array of one of the table's storage types must agree with ``dtype``."""
    zdt = getattr(zero_point, "dtype", None)
    if zdt is not None and zdt.name in QUANT_TYPES and qt.integer and zdt != qt.storage:
        raise ValueError(
            f"zero_point has dtype {zdt.name} but dtype is {qt.name!r}: pass dtype={zdt.name!r}"
        )


def quantize_linear(
    x: ArrayLike,
    scale: ArrayLike,
    zero_point: ArrayLike = 0,
    *,
    dtype: str = "uint8",
    axis: int | None = None,
    block_size: int | None = None,
) -> NDArray:
    """ONNX QuantizeLinear: ``q = saturate(round_half_even(x / scale) + zero_point)``.

    Parameters
    ----------
    x : array_like
        Finite values to quantize (not a masked array: masks are refused). ``x / scale`` is
        computed in the common floating type of ``x`` and ``scale`` (``float32`` arrays divide
        in ``float32``, as ONNX's reference does); lists, Python floats and integers in float64.
    scale : array_like
        Positive scale(s): a scalar or 1-element array (per tensor), a 1-D array of length
        ``x.shape[axis]`` (per axis), or, with ``block_size``, an array with the dimensions of
        ``x`` and ``ceil(x.shape[axis] / block_size)`` on ``axis``.
    zero_point : array_like of int, default 0
        Integer zero-point(s) in the range of ``dtype``: 1 value or the shape of ``scale``.
    dtype : str, default "uint8"
        Output type: ``"uint8"``, ``"int8"``, ``"uint16"``, ``"int16"``, ``"uint4"``, ``"int4"``,
        ``"uint2"``, ``"int2"`` (or any type registered in :data:`QUANT_TYPES`).
    axis : int, optional
        The axis of per-axis or blocked parameters (negative counts from the end).
    block_size : int, optional
        Values per block along ``axis``.

    Returns
    -------
    q : ndarray
        Codes of the shape of ``x``, in the type's storage dtype (``uint8``/``int8`` for the 8-,
        4- and 2-bit types, ``uint16``/``int16`` for the 16-bit ones).

    Examples
    --------
    >>> quantize_linear([0.0, 0.25, 0.75, 1.0, -3.0, 300.0], 0.5, 1)
    array([  1,   1,   3,   3,   0, 255], dtype=uint8)
    >>> quantize_linear([[1.0, -1.0], [1.0, -1.0]], [0.5, 0.25], dtype="int4", axis=0)
    array([[ 2, -2],
           [ 4, -4]], dtype=int8)
    """
    qt = _quant_type(dtype)
    xa = as_real_array(x, "x")
    s = _scale(scale)
    ax = _check_axis(axis, xa.ndim)
    bs = _check_block_size(block_size)
    _check_zero_point_dtype(zero_point, qt)
    zp = _zero_point(zero_point, s.shape, qt)
    s_full = _expand(s, xa.shape, ax, bs, "scale")
    zp_full = _expand(zp, xa.shape, ax, bs, "zero_point")
    work = np.result_type(xa.dtype, s.dtype)
    with np.errstate(over="ignore"):  # a quotient beyond the float range saturates
        v = xa.astype(work, copy=False) / s_full.astype(work, copy=False)
    return qt.encode(v, zp_full)


def dequantize_linear(
    q: ArrayLike,
    scale: ArrayLike,
    zero_point: ArrayLike = 0,
    *,
    axis: int | None = None,
    block_size: int | None = None,
    dtype: str | None = None,
) -> NDArray:
    """ONNX DequantizeLinear: ``x_hat = (q - zero_point) * scale``.

    Parameters
    ----------
    q : array_like of int
        Codes (not a masked array).
    scale, zero_point, axis, block_size
        As in :func:`quantize_linear`.
    dtype : str, optional
        The codes' type (a name of :data:`QUANT_TYPES`): codes and zero-point are then checked
        against its range. By default it is the dtype of ``q`` when that is ``uint8``, ``int8``,
        ``uint16`` or ``int16``; otherwise any integer codes are accepted.

    Returns
    -------
    x_hat : ndarray
        In the floating dtype of ``scale`` when that is a ``float32``/``float16`` array (as ONNX),
        else float64. ``q - zero_point`` is computed exactly in integers first.

    Examples
    --------
    >>> dequantize_linear(np.array([0, 3, 128, 255], np.uint8), 2.0, 128)
    array([-256., -250.,    0.,  254.])
    """
    if dtype is None:
        qdt = getattr(q, "dtype", None)
        qt = QUANT_TYPES.get(qdt.name) if qdt is not None else None
    else:
        qt = _quant_type(dtype)
    if qt is not None and not qt.integer:
        codes = np.asarray(q)
        if codes.dtype != qt.storage:
            raise ValueError(f"q must have dtype {qt.storage} for dtype {qt.name!r}")
        values = qt.decode(codes)
    else:
        codes = as_codes(q, "q")
        if qt is not None:
            check_code_range(codes, int(qt.lo), int(qt.hi), "q", f"dtype {qt.name!r}")
        values = None
    s = _scale(scale)
    ax = _check_axis(axis, codes.ndim)
    bs = _check_block_size(block_size)
    if qt is None:
        zp = as_codes(zero_point, "zero_point")
        if zp.size != 1 and zp.shape != s.shape:
            raise ValueError(
                f"zero_point must have 1 value or the shape of scale {s.shape}, got {zp.shape}"
            )
        # q - zero_point must not overflow int64.
        check_code_range(zp, -(2**62), 2**62, "zero_point", "|zero_point| <= 2**62")
        check_code_range(codes, -(2**62), 2**62, "q", "|q| <= 2**62")
    else:
        zp = _zero_point(zero_point, s.shape, qt)
    s_full = _expand(s, codes.shape, ax, bs, "scale")
    zp_full = _expand(zp, codes.shape, ax, bs, "zero_point")
    if values is None:
        diff = (codes - zp_full).astype(np.float64)  # exact: int64 difference of small codes
    else:
        diff = values - zp_full
    out = diff * s_full.astype(np.float64)
    out_dtype = s.dtype if s.dtype in (np.float32, np.float16) else np.float64
    return out.astype(out_dtype, copy=False)
