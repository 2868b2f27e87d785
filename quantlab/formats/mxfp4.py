"""MXFP4: the OCP Microscaling FP4 block (32 E2M1 values, one power-of-two scale), as GGUF.

Layout of a block (17 bytes, 4.25 bits per weight): one byte ``e`` (an E8M0 exponent) and 16
bytes of nibbles, byte ``j`` holding code ``j`` in its low half and code ``j + 16`` in its high
half. A code is an E2M1 bit pattern (sign, 2 exponent bits, 1 mantissa bit), so

    x_hat = E2M1(code) * 2**(e - 127),   E2M1 in {0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6}.

llama.cpp (``quantize_row_mxfp4_ref``) stores twice the E2M1 values as integers
``K = (0, 1, 2, 3, 4, 6, 8, 12, 0, -1, ..., -12)`` and the half scale ``d = 2**(e - 128)``;
``K * d`` is the same number. Its rule, reproduced here in float32:

- ``amax = max|x|``; ``e = floor(log2(amax)) - 2 + 127`` (0 for an all-zero block), i.e. the
  scale ``2**(floor(log2 amax) - 2)`` puts ``amax`` in ``[4, 8)`` scale units;
- each value gets the first code minimizing ``|K[i]*d - x|`` (the error computed in float32).

Since E2M1 stops at 6, a block whose ``amax`` lies in ``(6·2**k, 8·2**k)`` scale units clips
its largest values to 6: the power-of-two scale cannot stretch to fit them.

The error of every candidate code is computed for all values at once (16 float32 arrays) and
the first minimum taken with ``argmin``: the same arithmetic and tie-break as the C loop, so the
bytes are identical.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._rows import as_bytes, as_imatrix, as_rows, by_chunks, pack_halves, unpack_halves

NAME = "MXFP4"
BLOCK_SIZE = 32
BYTES_PER_BLOCK = 1 + BLOCK_SIZE // 2
BITS_PER_WEIGHT = 8 * BYTES_PER_BLOCK / BLOCK_SIZE

#: Twice the E2M1 value of each code (llama.cpp's ``kvalues_mxfp4``).
KVALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)


def half_scale(e: NDArray[np.uint8]) -> NDArray[np.float32]:
    """``d = 2**(e - 128)`` in float32 (half the E8M0 scale; subnormal for ``e <= 1``)."""
    return np.ldexp(np.float32(1), e.astype(np.int32) - 128).astype(np.float32)


def nearest_kvalue(x: NDArray[np.float32], d: NDArray[np.float32]) -> NDArray[np.uint8]:
    """The first code ``i`` minimizing ``|KVALUES[i]*d - x|`` in float32 (llama.cpp's rule).

    ``x`` and ``d`` broadcast (``d`` one per block). Ties go to the earlier code: the smaller
    magnitude, and ``+0`` rather than ``-0``.

    Only the 8 magnitudes need trying: ``-k*d - x = -(k*d - |x|)`` for ``x < 0`` (an exact
    negation, so the same float32 error), a candidate of the other sign is never closer, and
    the non-negative codes come first in the table. The code is the index of the nearest
    magnitude, plus 8 (the sign bit) for a negative value that does not round to 0.
    """
    ax = np.abs(x)
    shape = np.broadcast_shapes(x.shape, d.shape)
    best = np.zeros(shape, np.uint8)
    with np.errstate(over="ignore"):  # a wrapped exponent's 12*d may be inf, as in C
        best_err = np.broadcast_to(ax, shape).copy()  # the error of code 0
        for i in range(1, 8):  # 7 candidates, each over every value at once
            err = np.abs(KVALUES[i] * d - ax)
            np.copyto(best, np.uint8(i), where=err < best_err)
            np.minimum(err, best_err, out=best_err)
    return np.where((x < 0) & (best > 0), best + np.uint8(8), best).astype(np.uint8)


def block_exponent(amax: NDArray[np.float32]) -> NDArray[np.uint8]:
    """``e = floor(log2 amax) - 2 + 127`` as llama.cpp computes it (0 when ``amax = 0``).

    ``log2f`` is rounded to float32 before the floor, so an ``amax`` a few ulps below a power
    of two counts as that power; a correctly rounded log2 in float64, rounded to float32,
    reproduces it. Below ``2**-125`` the C cast to uint8 wraps (x86), as here.
    """
    with np.errstate(divide="ignore"):
        lg = np.log2(amax.astype(np.float64)).astype(np.float32)
    e = np.where(amax > 0, np.floor(lg) - 2 + 127, 0).astype(np.int64)
    return (e % 256).astype(np.uint8)


def quantize(
    x: ArrayLike, w: ArrayLike | None = None, *, imatrix: ArrayLike | None = None
) -> NDArray[np.uint8]:
    """MXFP4 blocks of ``x`` (last axis cut into blocks of 32), equal to llama.cpp's bytes.

    Parameters
    ----------
    x : array_like
        Finite values, shape ``(..., n)``, ``n`` a multiple of 32.
    w : None
        Not supported (MXFP4 has no weighted fit in quantlab); pass ``imatrix`` instead.
    imatrix : array_like, optional
        Accepted and checked but not used: llama.cpp's MXFP4 ignores it too.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 32 * 17)``.

    Examples
    --------
    >>> data = quantize(np.linspace(-6, 6, 32))
    >>> int(data[0]), dequantize(data)[[0, -1]].tolist()  # scale 2**(127 - 127)
    (127, [-6.0, 6.0])
    """
    if w is not None:
        raise ValueError("w is not supported for MXFP4 (its scale is a power of two)")
    rows = as_rows(x, BLOCK_SIZE, NAME)
    as_imatrix(imatrix, rows.shape[1])
    blocks = rows.reshape(-1, BLOCK_SIZE)
    out = np.empty((blocks.shape[0], BYTES_PER_BLOCK), np.uint8)
    for s in by_chunks(blocks.shape[0]):
        b = blocks[s]
        e = block_exponent(np.abs(b).max(axis=1))
        out[s, 0] = e
        out[s, 1:] = pack_halves(nearest_kvalue(b, half_scale(e)[:, None]))
    lead = np.shape(x)[:-1]
    return out.reshape(*lead, -1)


def dequantize(data: ArrayLike) -> NDArray[np.float32]:
    """``x_hat = KVALUES[code] * 2**(e - 128)`` in float32, equal to ``gguf.quants``."""
    b = as_bytes(data, BYTES_PER_BLOCK)
    blocks = b.reshape(-1, BYTES_PER_BLOCK)
    d = half_scale(blocks[:, 0])[:, None]
    out = KVALUES[unpack_halves(blocks[:, 1:])] * d
    return out.reshape(*b.shape[:-1], -1)
