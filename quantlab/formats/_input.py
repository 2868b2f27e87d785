"""Input checks shared by every block format (one place, on top of ``quantlab._validation``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_array


def as_block_input(x: ArrayLike, block_size: int, fmt_name: str) -> NDArray[np.float32]:
    """``x`` as a C-contiguous float32 array whose last axis is a multiple of ``block_size``.

    Raises
    ------
    TypeError
        If x is not real numbers.
    ValueError
        If x is ragged, empty, 0-d, has the wrong length, or NaN/infinity (also after the
        conversion to float32).
    """
    arr = as_array(x, "x")  # masked arrays and ragged lists refused, as everywhere
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"x must be real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError("x must be a non-empty array with at least one axis")
    if arr.shape[-1] % block_size:
        raise ValueError(
            f"the last axis of x (length {arr.shape[-1]}) must be a multiple of the "
            f"{fmt_name} block size {block_size}"
        )
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, rejected below
        x32 = np.ascontiguousarray(arr, np.float32)
    return x32


def all_finite(x32: NDArray[np.floating]) -> bool:
    """Whether every value is finite.

    One sum decides almost always (one vectorized pass, against two for ``isfinite`` and
    ``all``): a NaN or an infinity makes the sum NaN or infinite, and a sum of finite values
    is finite unless it overflows; only then are the values tested one by one.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(x32, axis=None)
    return bool(np.isfinite(total) or np.all(np.isfinite(x32)))


def check_finite(x32: NDArray[np.float32]) -> None:
    """ValueError unless every value is finite (:func:`all_finite`)."""
    if not all_finite(x32):
        raise ValueError("x contains NaN or infinity (or values beyond float32)")


def as_block_bytes(data: ArrayLike, per_block: int, name: str = "data") -> NDArray[np.uint8]:
    """``data`` (uint8 array or bytes) whose last axis is a positive multiple of ``per_block``."""
    arr = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    arr = as_array(arr, name)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 array, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[-1] == 0 or arr.shape[-1] % per_block:
        length = arr.shape[-1] if arr.ndim else 0
        raise ValueError(
            f"the last axis of {name} (length {length}) must be a positive multiple of "
            f"{per_block} bytes"
        )
    return arr
