"""Shared pieces of the non-uniform block formats (MXFP4, NVFP4, IQ4_NL): input checks, nibbles.

ggml quantizes a tensor as rows of ``n_per_row`` values (the last axis); an importance matrix
is one non-negative weight per column, shared by every row.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_array, as_float_array

#: Blocks processed at once: bounds the working memory whatever the input size.
CHUNK_BLOCKS = 4096


def as_rows(x: ArrayLike, block_size: int, fmt: str) -> NDArray[np.float32]:
    """``x`` as a contiguous float32 array of shape ``(rows, n)`` with ``n % block_size == 0``.

    Raises
    ------
    TypeError
        If x is not real numbers.
    ValueError
        If x is empty or 0-d, holds NaN/inf or values beyond float32, or its last axis is not a
        multiple of the block size.
    """
    arr = as_array(x, "x")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"x must be real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError("x must be a non-empty array with at least one axis")
    if arr.shape[-1] % block_size:
        raise ValueError(
            f"the last axis of x (length {arr.shape[-1]}) must be a multiple of the {fmt} "
            f"block size {block_size}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("x contains NaN or infinity")
    with np.errstate(over="ignore"):
        x32 = np.ascontiguousarray(arr, np.float32)
    if not np.all(np.isfinite(x32)):
        raise ValueError("x has values beyond the float32 range")
    return x32.reshape(-1, arr.shape[-1])


def as_imatrix(imatrix: ArrayLike | None, n: int) -> NDArray[np.float32] | None:
    """The importance matrix as float32 of length ``n`` (the last axis of x), or None."""
    if imatrix is None:
        return None
    im = as_float_array(imatrix, "imatrix")
    if im.shape != (n,):
        raise ValueError(f"imatrix must be 1-D of length {n} (the last axis of x), got {im.shape}")
    if np.any(im < 0):
        raise ValueError("imatrix must be non-negative")
    return im.astype(np.float32)


def as_bytes(data: ArrayLike, per_block: int) -> NDArray[np.uint8]:
    """``data`` as uint8 whose last axis is a positive multiple of ``per_block`` bytes."""
    arr = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    arr = as_array(arr, "data")
    if arr.dtype != np.uint8:
        raise TypeError(f"data must be a uint8 array, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[-1] == 0 or arr.shape[-1] % per_block:
        length = arr.shape[-1] if arr.ndim else 0
        raise ValueError(
            f"the last axis of data (length {length}) must be a positive multiple of "
            f"{per_block} bytes"
        )
    return np.ascontiguousarray(arr)


def pack_halves(codes: NDArray) -> NDArray[np.uint8]:
    """Two 4-bit codes per byte: byte ``j`` = code ``j`` | code ``j + h`` << 4, ``h`` = half.

    Applied to the last axis (32 codes for MXFP4/IQ4_NL, 16 for an NVFP4 sub-block).
    """
    c = codes.astype(np.uint8, copy=False)
    h = c.shape[-1] // 2
    return c[..., :h] | (c[..., h:] << np.uint8(4))


def unpack_halves(qs: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_halves`: low nibbles first, then high nibbles."""
    return np.concatenate([qs & np.uint8(15), qs >> np.uint8(4)], axis=-1)


def by_chunks(n_blocks: int, size: int = CHUNK_BLOCKS):
    """Slices of at most ``size`` blocks covering ``range(n_blocks)`` (chunks, not blocks)."""
    return (slice(s, s + size) for s in range(0, n_blocks, size))
