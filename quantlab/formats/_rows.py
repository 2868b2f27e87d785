"""Shared pieces of the non-uniform block formats (MXFP4, NVFP4, IQ4_NL): input checks, nibbles.

ggml quantizes a tensor as rows of ``n_per_row`` values (the last axis); an importance matrix
is one non-negative weight per column, shared by every row.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_array
from ._input import all_finite, as_block_bytes, as_block_input
from .imatrix import check_imatrix

#: Blocks processed at once: bounds the working memory whatever the input size.
CHUNK_BLOCKS = 4096


def as_rows(x: ArrayLike, block_size: int, fmt: str) -> NDArray[np.float32]:
    """``x`` as a contiguous float32 array of shape ``(rows, n)`` with ``n % block_size == 0``.

    The checks are those of every block format (:func:`._input.as_block_input`), plus: no NaN or
    infinity, and nothing beyond the float32 range.
    """
    arr = as_array(x, "x")
    x32 = as_block_input(arr, block_size, fmt)
    if not all_finite(x32):  # one sum of the float32 values, almost always
        if not np.all(np.isfinite(arr)):
            raise ValueError("x contains NaN or infinity")
        raise ValueError("x has values beyond the float32 range")
    return x32.reshape(-1, x32.shape[-1])


def as_imatrix(imatrix: ArrayLike | None, n: int) -> NDArray[np.float32] | None:
    """The importance matrix as float32 of length ``n`` (the last axis of x), or None."""
    return None if imatrix is None else check_imatrix(imatrix, n)


def as_bytes(data: ArrayLike, per_block: int) -> NDArray[np.uint8]:
    """``data`` as uint8 whose last axis is a positive multiple of ``per_block`` bytes."""
    return np.ascontiguousarray(as_block_bytes(data, per_block, "data"))


def pack_halves(codes: NDArray, axis: int = -1) -> NDArray[np.uint8]:
    """Two 4-bit codes per byte: byte ``j`` = code ``j`` | code ``j + h`` << 4, ``h`` = half.

    Applied along ``axis`` (32 codes for MXFP4/IQ4_NL, 16 for an NVFP4 sub-block): the last
    one for blocks as rows, the positions' axis for blocks transposed to (position, block).
    """
    low, high = np.split(codes.astype(np.uint8, copy=False), 2, axis=axis)
    packed = high << np.uint8(4)
    packed |= low
    return packed


def unpack_halves(qs: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_halves`: low nibbles first, then high nibbles."""
    return np.concatenate([qs & np.uint8(15), qs >> np.uint8(4)], axis=-1)


def by_chunks(n_blocks: int, size: int = CHUNK_BLOCKS):
    """Slices of at most ``size`` blocks covering ``range(n_blocks)`` (chunks, not blocks)."""
    return (slice(s, s + size) for s in range(0, n_blocks, size))
