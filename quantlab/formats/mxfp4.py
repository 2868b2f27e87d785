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

Why the bytes are computed as they are (:func:`_encode_tiles`): where the half scale ``d`` and
``12*d`` are normal float32 numbers (every block but the all-zero and the wrapped ones), the C
loop's choice is a threshold rule. The levels ``K*d`` are exact, and near a midpoint ``(K_i +
K_i+1)/2 * d`` both errors ``|x| - K_i*d`` and ``K_i+1*d - |x|`` are exact float32 differences
(Sterbenz: consecutive levels are at most a factor 2 apart, or ``K_i = 0``), so the first minimum
is the lower level exactly when ``|x|`` is at most the midpoint. With ``u = ceil(2|x|/d)`` (a
multiplication by a power of two, exact) the code is a table lookup: the number of doubled
midpoints ``1, 3, 5, 7, 10, 14, 20`` below ``u``, plus 8 for a negative value off zero. The
blocks are transposed tile by tile to (position, block), as the legacy formats are, so the
extremes are reductions over whole rows of blocks. Measured on 1024 x 4096 float32, one thread,
CPU time, llama.cpp's C in the same run: 20-30 ms against the C's 26-29 (before: 267 ms, the
error of every level on rows of 32 values). The other blocks keep the C loop's arithmetic
(:func:`nearest_kvalue`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._rows import as_bytes, as_imatrix, as_rows, by_chunks, pack_halves, unpack_halves

NAME = "MXFP4"
BLOCK_SIZE = 32
BYTES_PER_BLOCK = 1 + BLOCK_SIZE // 2
BITS_PER_WEIGHT = 8 * BYTES_PER_BLOCK / BLOCK_SIZE
F32_ONE, F32_ZERO = np.float32(1), np.float32(0)

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


#: The code of ``u = ceil(2|x|/d)`` (0-32) for ``x >= 0`` (entries 0-32) and for ``x < 0``
#: (entries 33-65): how many doubled midpoints of the levels ``K`` lie below ``u``, plus 8 (the
#: sign bit) for a negative value whose code is not 0.
_MIDPOINTS2 = (KVALUES[:7] + KVALUES[1:8]).astype(np.int64)  # 1, 3, 5, 7, 10, 14, 20
_POSITIVE = (np.arange(33)[:, None] > _MIDPOINTS2).sum(axis=1)
CODE_OF_U = np.concatenate([_POSITIVE, np.where(_POSITIVE > 0, _POSITIVE + 8, 0)]).astype(np.uint8)
CODE_OF_U.setflags(write=False)

#: Blocks per tile of the encoding: transposed to (position, block) at once (32 KB).
TILE_BLOCKS = 256


def _encode_tiles(blocks: NDArray[np.float32], out: NDArray[np.uint8]) -> None:
    """The bytes of ``(n, 32)`` float32 blocks into ``out`` ``(n, 17)``, by the threshold rule of
    the module docstring on tiles of :data:`TILE_BLOCKS` blocks (whole tiles, then one tail tile).
    """
    n = blocks.shape[0]
    tail = n % TILE_BLOCKS
    if tail and n > TILE_BLOCKS:
        _encode_tiles(blocks[: n - tail], out[: n - tail])
        _encode_tiles(blocks[n - tail :], out[n - tail :])
        return
    k = min(n, TILE_BLOCKS)
    nt = n // k
    tiles = blocks.reshape(nt, k, BLOCK_SIZE).transpose(0, 2, 1).copy()  # (nt, 32, k)
    amax = np.maximum(tiles.max(axis=1), -tiles.min(axis=1))  # max |x|, exactly
    e = block_exponent(amax)
    out[:, 0] = e.reshape(-1)
    # d = 2**(e - 128) and 12*d normal: 2 <= e <= 252 (all but the zero and wrapped blocks)
    normal = (e >= 2) & (e <= 252)
    exponent = np.where(normal, 129 - e.astype(np.int32), 0)
    two_over_d = np.where(normal, np.ldexp(F32_ONE, exponent), F32_ZERO)
    v = np.multiply(tiles, two_over_d[:, None, :], out=tiles)  # 2x/d, exact (|2x/d| < 32)
    negative = np.signbit(v)
    np.abs(v, out=v)
    np.ceil(v, out=v)
    u = v.astype(np.uint8)
    u += negative.view(np.uint8) * np.uint8(33)
    codes = CODE_OF_U.take(u)  # (nt, 32, k)
    out[:, 1:].reshape(nt, k, 16)[...] = pack_halves(codes, axis=1).transpose(0, 2, 1)
    other = np.flatnonzero(~normal.reshape(-1))
    if other.size:  # the C loop's arithmetic, exactly
        b = blocks[other]
        out[other, 1:] = pack_halves(nearest_kvalue(b, half_scale(e.reshape(-1)[other])[:, None]))


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
        _encode_tiles(blocks[s], out[s])
    lead = np.shape(x)[:-1]
    return out.reshape(*lead, -1)


def dequantize(data: ArrayLike) -> NDArray[np.float32]:
    """``x_hat = KVALUES[code] * 2**(e - 128)`` in float32, equal to ``gguf.quants``."""
    b = as_bytes(data, BYTES_PER_BLOCK)
    blocks = b.reshape(-1, BYTES_PER_BLOCK)
    d = half_scale(blocks[:, 0])[:, None]
    out = KVALUES[unpack_halves(blocks[:, 1:])] * d
    return out.reshape(*b.shape[:-1], -1)
