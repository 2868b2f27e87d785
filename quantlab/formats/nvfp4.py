"""NVFP4: E2M1 values in sub-blocks of 16, each with an unsigned E4M3 scale, as GGUF/llama.cpp.

Layout of a block of 64 values (36 bytes, 4.5 bits per weight): 4 scale bytes ``d[s]`` (UE4M3:
4 exponent bits with bias 7, 3 mantissa bits, no sign), then 4 × 8 bytes of nibbles; sub-block
``s`` uses bytes ``8s .. 8s+7``, byte ``j`` holding code ``j`` (low half) and ``j + 8`` (high).

    x_hat = E2M1(code) * UE4M3(d[s])

llama.cpp (``quantize_row_nvfp4_ref``) stores half the scale with the doubled E2M1 integers
``K`` of :mod:`quantlab.formats.mxfp4`. Its rule, reproduced in float32:

- ``amax = max|x|`` of the sub-block; the scale byte is ``ue4m3(amax / 6)``, rounded the C way:
  the top 3 mantissa bits of the float32 plus its 4th bit (round half up on the truncated
  bits), ``man = int(x*512 + 0.5)`` below ``2**-6``, and every value from ``2**8`` on saturated
  to the code ``0x7E`` (448);
- each value gets the first code minimizing ``|K[i]*d - x|`` with the decoded half scale ``d``.

Unlike MXFP4, the scale has 3 mantissa bits, so ``amax`` lands near 6 scale units and little
is clipped; the price is 8 scale bits per 16 values instead of per 32.

The codes are computed by the threshold rule of :mod:`quantlab.formats.mxfp4` (the first
nearest level is the number of midpoints ``M*d`` strictly below ``|x|``), here against the
midpoints themselves: ``d`` has 4 significant bits, so ``M*d`` is exact but ``|x|/d`` is not.
The rule is the C loop's wherever ``|x| <= 24*d`` (then every error the loop compares is far
from its neighbours or, near a midpoint, exact); only a sub-block whose scale saturates at 448
can hold larger values, and those sub-blocks keep the C arithmetic (:func:`_encode_tiles`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._rows import as_bytes, as_imatrix, as_rows, by_chunks, pack_halves, unpack_halves
from .mxfp4 import KVALUES, nearest_kvalue

NAME = "NVFP4"
BLOCK_SIZE = 64
SUB_BLOCK = 16
N_SUB = BLOCK_SIZE // SUB_BLOCK
BYTES_PER_BLOCK = N_SUB + BLOCK_SIZE // 2
BITS_PER_WEIGHT = 8 * BYTES_PER_BLOCK / BLOCK_SIZE


def ue4m3_half(code: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Half the value of UE4M3 scale bytes (bit 7 ignored; 0 and 0x7F decode to 0)."""
    c = code.astype(np.int32)
    exp, man = (c >> 3) & 15, (c & 7).astype(np.float32)
    raw = np.where(
        exp == 0,
        np.ldexp(man, -9),
        np.ldexp(np.float32(1) + man / np.float32(8), exp - 7),
    ).astype(np.float32)
    return np.where((code == 0) | (code == 0x7F), np.float32(0), raw * np.float32(0.5))


def to_ue4m3(v: NDArray[np.float32]) -> NDArray[np.uint8]:
    """llama.cpp's float32 to UE4M3 scale byte (see the module docstring), vectorized."""
    v = np.minimum(np.where(v > 0, v, np.float32(0)), np.float32(448)).astype(np.float32)
    bits = v.view(np.uint32).astype(np.int64)
    exp = ((bits >> 23) & 0xFF) - 127 + 7
    man = ((bits >> 20) & 7) + ((bits >> 19) & 1)
    carry = man > 7
    exp = np.where(carry, exp + 1, exp)
    normal = np.where(exp >= 15, 0x7E, (np.maximum(exp, 0) << 3) | np.where(carry, 0, man))
    sub = np.clip((v * np.float32(512) + np.float32(0.5)).astype(np.int64), 0, 7)
    first_exp = ((bits >> 23) & 0xFF) - 127 + 7
    code = np.where(first_exp <= 0, sub, np.where(first_exp >= 15, 0x7E, normal))
    return np.where(v > 0, code, 0).astype(np.uint8)


#: The midpoints of consecutive levels ``K`` (doubled E2M1 values): 0.5, 1.5, 2.5, 3.5, 5, 7, 10.
MIDPOINTS = ((KVALUES[:7] + KVALUES[1:8]) / 2).astype(np.float32)
MIDPOINTS.setflags(write=False)
#: Sub-blocks per tile of the encoding (transposed to (position, sub-block) at once: 32 KB).
TILE_SUBS = 512


def _encode_tiles(
    subs: NDArray[np.float32], scales: NDArray[np.uint8], qs: NDArray[np.uint8]
) -> None:
    """Scale bytes and packed codes of ``(n, 16)`` float32 sub-blocks, into ``scales`` ``(n,)``
    and ``qs`` ``(n, 8)``, on tiles of :data:`TILE_SUBS` sub-blocks (whole tiles, then one tail).

    The tile is transposed to (position, sub-block), so the extremes are reductions over whole
    rows and each midpoint one comparison of the tile against a row of thresholds. Measured on
    1024 x 4096 float32, one thread, CPU time, with llama.cpp's C in the same run: 52 ms against
    the C's 113-135, 34 against 108 once the nibbles were packed on that layout too (before: 276
    ms, the error of each level on rows of 16 values).
    """
    n = subs.shape[0]
    tail = n % TILE_SUBS
    if tail and n > TILE_SUBS:
        _encode_tiles(subs[: n - tail], scales[: n - tail], qs[: n - tail])
        _encode_tiles(subs[n - tail :], scales[n - tail :], qs[n - tail :])
        return
    k = min(n, TILE_SUBS)
    nt = n // k
    tiles = subs.reshape(nt, k, SUB_BLOCK).transpose(0, 2, 1).copy()  # (nt, 16, k)
    amax = np.maximum(tiles.max(axis=1), -tiles.min(axis=1))  # max |x|, exactly
    sc = to_ue4m3(amax / np.float32(6))
    scales[:] = sc.reshape(-1)
    d = ue4m3_half(sc)
    # The rule holds for |x| <= 24 d; d = 0 (scale byte 0): every code 0, as in C
    fast = amax <= np.float32(24) * d
    thresholds = np.where(d > 0, MIDPOINTS[:, None, None] * d, np.float32(np.inf))  # (7, nt, k)
    negative = np.signbit(tiles)
    ax = np.abs(tiles, out=tiles)
    codes = np.zeros(ax.shape, np.uint8)
    above = np.empty(ax.shape, bool)
    for t in thresholds:
        np.greater(ax, t[:, None, :], out=above)
        codes += above.view(np.uint8)
    negative &= codes > 0
    codes |= negative.view(np.uint8) << np.uint8(3)  # the sign bit of a value off zero
    qs.reshape(nt, k, SUB_BLOCK // 2)[...] = pack_halves(codes, axis=1).transpose(0, 2, 1)
    other = np.flatnonzero(~fast.reshape(-1))
    if other.size:  # saturated scales: the C loop's arithmetic, exactly
        qs[other] = pack_halves(nearest_kvalue(subs[other], d.reshape(-1)[other][:, None]))


def quantize(
    x: ArrayLike, w: ArrayLike | None = None, *, imatrix: ArrayLike | None = None
) -> NDArray[np.uint8]:
    """NVFP4 blocks of ``x`` (last axis cut into blocks of 64), equal to llama.cpp's bytes.

    Parameters
    ----------
    x : array_like
        Finite values, shape ``(..., n)``, ``n`` a multiple of 64.
    w : None
        Not supported; pass ``imatrix``.
    imatrix : array_like, optional
        Checked but not used: llama.cpp's NVFP4 ignores it too.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 64 * 36)``.
    """
    if w is not None:
        raise ValueError("w is not supported for NVFP4")
    rows = as_rows(x, BLOCK_SIZE, NAME)
    as_imatrix(imatrix, rows.shape[1])
    subs = rows.reshape(-1, SUB_BLOCK)
    scales = np.empty(subs.shape[0], np.uint8)
    qs = np.empty((subs.shape[0], SUB_BLOCK // 2), np.uint8)
    for s in by_chunks(subs.shape[0]):
        _encode_tiles(subs[s], scales[s], qs[s])
    n_blocks = subs.shape[0] // N_SUB
    out = np.concatenate([scales.reshape(n_blocks, N_SUB), qs.reshape(n_blocks, -1)], axis=1)
    return out.reshape(*np.shape(x)[:-1], -1)


def dequantize(data: ArrayLike) -> NDArray[np.float32]:
    """``x_hat = KVALUES[code] * ue4m3_half(d[s])`` in float32, equal to ``gguf.quants``."""
    b = as_bytes(data, BYTES_PER_BLOCK)
    blocks = b.reshape(-1, BYTES_PER_BLOCK)
    d = ue4m3_half(blocks[:, :N_SUB]).reshape(-1, 1)
    codes = unpack_halves(blocks[:, N_SUB:].reshape(-1, SUB_BLOCK // 2))
    return (KVALUES[codes] * d).reshape(*b.shape[:-1], -1)
