"""The block formats of GGUF/llama.cpp, bit-exact with their reference (SPEC item 8).

Each format cuts the last axis of a tensor into blocks of 32 values. A block stores its
parameters as float16 and its codes as packed integers:

======  ====  =======  =========================================  =====  ===============
format  bits  minimum  block layout (bytes)                       bytes  bits per weight
======  ====  =======  =========================================  =====  ===============
Q8_0    8     no       d (2), 32 int8 codes (32)                  34     8.5
Q4_0    4     no       d (2), 32 nibbles (16)                     18     4.5
Q4_1    4     yes      d (2), m (2), 32 nibbles (16)              20     5.0
Q5_0    5     no       d (2), 5th bits qh (4), 32 nibbles (16)    22     5.5
Q5_1    5     yes      d (2), m (2), 5th bits qh (4), nibbles     24     6.0
======  ====  =======  =========================================  =====  ===============

The formulas, as the reference computes them in float32: ``id = 1/d`` is rounded to float32
(0 when ``d = 0``), then ``x*id`` is rounded, then the offset is added and rounded, and the
result is truncated toward zero (``trunc``):

- Q8_0: ``d = max|x| / 127``, ``q = roundf(x*id)`` (half away from zero) in ``[-127, 127]``,
  ``x_hat = d*q``.
- Q4_0 / Q5_0 (``n = 4, 5``): ``m`` is the (first) value of largest magnitude *with its sign*,
  ``d = m / -2**(n-1)``; the stored code is ``min(2**n - 1, trunc(x*id + (2**(n-1) + 0.5)))``
  (Q4_0: ``min(15, trunc(x*id + 8.5))``), i.e. ``q = code - 2**(n-1)`` in
  ``[-2**(n-1), 2**(n-1) - 1]``, and ``x_hat = d*q``. In exact arithmetic that is
  ``floor(x/d + 1/2)``, rounding half up, but not in float32: ``x*id`` is not ``x/d`` and the
  sum is rounded before the truncation, so a value just beside a tie can go either way (with
  ``x/d = -1.5000002`` the reference gives ``q = -1``, ``floor(x/d + 1/2)`` gives -2).
- Q4_1 / Q5_1: ``d = (max - min) / (2**n - 1)``, ``m = min``,
  ``l = min(2**n - 1, trunc((x - m)*id + 0.5))`` in ``[0, 2**n - 1]``, ``x_hat = d*l + m``.

A block whose ``d`` or ``m`` does not fit in float16 (beyond ±65504) raises a ValueError: the
reference would store inf and decode NaN/inf.

``gguf.quants`` (the Python port) and llama.cpp's C agree byte for byte except in one corner:
the sign of a zero. When a block's extreme value (Q4_0, Q5_0) or minimum (Q4_1, Q5_1) is a zero,
C keeps the first ``+0.0``/``-0.0`` it meets by its strict comparisons (Q4_0: always ``+0.0``, so
``d = -0.0``), gguf takes another, and the float16 ``d`` or ``m`` differs in its sign bit (the
decoded values only in the sign of zeros). quantlab follows gguf there; everywhere else the
bytes are also those of ``ggml_quantize_chunk`` (tested).

The codes are computed with the float32 ``d`` before it is stored as float16; decoding uses the
stored float16 ``d`` and ``m`` and computes in float32. :func:`quantize` and :func:`dequantize`
reproduce the reference (``gguf.quants``) to the last bit, bytes and values.

Packing (4-bit and 5-bit formats): byte ``j`` of the nibbles holds code ``j`` in its low half and
code ``j + 16`` in its high half; bit ``j`` of ``qh`` (a little-endian uint32) is bit 4 of code
``j``.

With importance weights ``w``, :func:`quantize` chooses the parameters of each block by the
weighted search of :class:`quantlab.Quantizer`, stores them in the same layout (any GGUF reader
decodes them) and keeps the reference block wherever that is not worse.

With an ``imatrix`` (one importance per column, llama.cpp's importance matrix) :func:`quantize`
gives the bytes of llama.cpp's ``ggml_quantize_chunk(..., imatrix)``: each value is weighted by
``imatrix_j * sqrt(sigma2 + x_j**2)`` (``sigma2`` the row's mean square, see
:mod:`quantlab.formats.imatrix`), Q4_0/Q5_0 then search the scale with make_qx_quants and
Q4_1/Q5_1 the scale and minimum with make_qkx3_quants (:mod:`quantlab.formats.make_quants`);
Q8_0 ignores the imatrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_array, as_weights
from ..grouping import Grouping
from ..quantizer import Quantizer
from . import imatrix as im
from ._input import as_block_bytes, as_block_input
from .make_quants import make_qkx3_quants, make_qx_quants

#: Blocks processed at once (256K values, 1 MB of float32: fewer NumPy calls per value, while
#: the transposes work tile by tile in cache; 2048 and 16384 measured 5-10 % slower).
CHUNK_BLOCKS = 8192
#: Blocks fitted at once with importance weights (1M values): bounds the memory of the search.
WEIGHTED_CHUNK_BLOCKS = 32768


@dataclass(frozen=True)
class BlockFormat:
    """One GGUF block format.

    Attributes
    ----------
    name : str
        "Q8_0", "Q4_0", "Q4_1", "Q5_0" or "Q5_1".
    bits : int
        Bits per code.
    use_min : bool
        Whether a float16 minimum ``m`` is stored with the scale ``d``.
    block_size : int
        Values per block (32).
    """

    name: str
    bits: int
    use_min: bool
    block_size: int = 32

    @property
    def bytes_per_block(self) -> int:
        """Bytes of one block: float16 ``d`` (and ``m``) plus the packed codes."""
        return 2 * (2 if self.use_min else 1) + self.block_size * self.bits // 8

    @property
    def bits_per_weight(self) -> float:
        """Storage per value, parameters included (Q4_0: 4.5)."""
        return 8 * self.bytes_per_block / self.block_size

    @property
    def qmin(self) -> int:
        """Smallest code: 0 with a minimum, else ``-2**(bits-1)``."""
        return 0 if self.use_min else -(2 ** (self.bits - 1))

    @property
    def qmax(self) -> int:
        """Largest code: ``2**bits - 1`` with a minimum, else ``2**(bits-1) - 1``."""
        return 2**self.bits - 1 if self.use_min else 2 ** (self.bits - 1) - 1

    @property
    def layout(self) -> tuple[tuple[str, int], ...]:
        """The fields of a block in storage order with their sizes in bytes."""
        fields = [("d", 2)]
        if self.use_min:
            fields.append(("m", 2))
        if self.bits == 5:
            fields.append(("qh", self.block_size // 8))
        fields.append(("qs", self.block_size if self.bits == 8 else self.block_size // 2))
        return tuple(fields)

    def quantize(
        self, x: ArrayLike, w: ArrayLike | None = None, **options: object
    ) -> NDArray[np.uint8]:
        """This format's :func:`quantize` (options: ``imatrix``, ``methods``)."""
        return quantize(x, self, w, **options)  # type: ignore[arg-type]

    def dequantize(self, data: ArrayLike) -> NDArray[np.float32]:
        """This format's :func:`dequantize`."""
        return dequantize(data, self)


#: The supported formats by name.
FORMATS: dict[str, BlockFormat] = {
    f.name: f
    for f in (
        BlockFormat("Q8_0", 8, use_min=False),
        BlockFormat("Q4_0", 4, use_min=False),
        BlockFormat("Q4_1", 4, use_min=True),
        BlockFormat("Q5_0", 5, use_min=False),
        BlockFormat("Q5_1", 5, use_min=True),
    )
}


def get_format(fmt: str | BlockFormat) -> BlockFormat:
    """The :class:`BlockFormat` named ``fmt`` (e.g. ``"Q4_0"``); a BlockFormat passes through."""
    if isinstance(fmt, BlockFormat):
        return fmt
    if not isinstance(fmt, str) or fmt.upper() not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt.upper()]


def bits_per_weight(fmt: str | BlockFormat) -> float:
    """Bits per stored value including the float16 parameters: Q4_0 = 4.5, Q5_1 = 6.0."""
    return get_format(fmt).bits_per_weight


def _field(fmt: BlockFormat, name: str) -> slice:
    """Byte positions of field ``name`` ("d", "m", "qh" or "qs") inside a block."""
    start = 0
    for field, size in fmt.layout:
        if field == name:
            return slice(start, start + size)
        start += size
    raise KeyError(name)


# -- packing ----------------------------------------------------------------------------------
def _check_codes(codes: ArrayLike, lo: int, hi: int, name: str = "codes") -> NDArray[np.int64]:
    arr = as_array(codes, name)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[-1] == 0 or arr.shape[-1] % 32:
        raise ValueError(f"the last axis of {name} must be a positive multiple of 32")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}]")
    return arr.astype(np.int64)


_check_bytes = as_block_bytes


def _nibbles(low: NDArray) -> NDArray[np.uint8]:
    """Pack ``(..., 32)`` values in [0, 15]: byte j = code j | code j+16 << 4."""
    low = low.astype(np.uint8, copy=False)
    return low[..., :16] | (low[..., 16:] << np.uint8(4))


def _fifth_bits(codes: NDArray) -> NDArray[np.uint8]:
    """Bit 4 of ``(..., 32)`` codes as 4 bytes, bit j of the little-endian uint32 = code j."""
    return np.packbits(codes >> 4, axis=-1, bitorder="little")  # codes <= 31: 0 or 1


def pack_nibbles(codes: ArrayLike) -> NDArray[np.uint8]:
    """Pack 4-bit codes two to a byte, the GGUF way.

    Within each block of 32 codes, byte ``j`` holds code ``j`` in its low half and code
    ``j + 16`` in its high half: ``qs[j] = c[j] | c[j + 16] << 4``.

    Parameters
    ----------
    codes : array_like of int
        Values in [0, 15], last axis a multiple of 32.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 2)``.
    """
    c = _check_codes(codes, 0, 15)
    blocks = c.reshape(-1, 32)
    return _nibbles(blocks).reshape(*c.shape[:-1], c.shape[-1] // 2)


def unpack_nibbles(qs: ArrayLike) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_nibbles`: ``(..., 16k)`` bytes to ``(..., 32k)`` codes in [0, 15]."""
    b = _check_bytes(qs, 16, "qs")
    blocks = b.reshape(-1, 16)
    out = np.concatenate([blocks & np.uint8(15), blocks >> np.uint8(4)], axis=-1)
    return out.reshape(*b.shape[:-1], b.shape[-1] * 2)


def pack_fifth_bits(codes: ArrayLike) -> NDArray[np.uint8]:
    """The ``qh`` field of Q5_0/Q5_1: bit 4 of each 5-bit code, 32 bits per block.

    Bit ``j`` of the little-endian uint32 ``qh`` (byte ``j // 8``, bit ``j % 8``) is bit 4 of
    code ``j``. The low 4 bits of the codes go to :func:`pack_nibbles`.

    Parameters
    ----------
    codes : array_like of int
        Values in [0, 31], last axis a multiple of 32.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 8)``.
    """
    c = _check_codes(codes, 0, 31)
    return _fifth_bits(c.reshape(-1, 32)).reshape(*c.shape[:-1], c.shape[-1] // 8)


def unpack_fifth_bits(qh: ArrayLike) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_fifth_bits`: ``(..., 4k)`` bytes to ``(..., 32k)`` bits (0 or 1)."""
    b = _check_bytes(qh, 4, "qh")
    return np.unpackbits(b, axis=-1, bitorder="little")


def _pack_blocks(
    fmt: BlockFormat, d: NDArray, m: NDArray | None, stored: NDArray, out: NDArray[np.uint8]
) -> None:
    """Write blocks: float16 ``d`` (and ``m``) and the stored (unsigned) codes into ``out``."""
    out[:, _field(fmt, "d")] = d.astype(np.float16).view(np.uint8)
    if fmt.use_min:
        out[:, _field(fmt, "m")] = m.astype(np.float16).view(np.uint8)
    if fmt.bits == 8:
        out[:, _field(fmt, "qs")] = stored.view(np.uint8)
        return
    if fmt.bits == 5:
        out[:, _field(fmt, "qh")] = _fifth_bits(stored)
    # qs[j] = low nibble of code j | code j+16 << 4 (the shift drops the 5th bit). Building it
    # contiguous and copying once is faster than ufuncs writing into the strided field.
    half = fmt.block_size // 2
    qs = stored[:, half:] << np.uint8(4)
    qs |= stored[:, :half] & np.uint8(15) if fmt.bits == 5 else stored[:, :half]
    out[:, _field(fmt, "qs")] = qs


def _stored_codes(fmt: BlockFormat, blocks: NDArray[np.uint8]) -> NDArray:
    """The codes of ``(n, bytes_per_block)`` blocks as stored: uint8 ``q - qmin`` or int8."""
    qs = blocks[:, _field(fmt, "qs")]
    if fmt.bits == 8:
        return qs.view(np.int8)
    codes = np.concatenate([qs & np.uint8(15), qs >> np.uint8(4)], axis=1)
    if fmt.bits == 5:
        codes |= np.unpackbits(blocks[:, _field(fmt, "qh")], axis=1, bitorder="little") << 4
    return codes


def _params(fmt: BlockFormat, blocks: NDArray[np.uint8]) -> tuple[NDArray, NDArray | None]:
    """The float16 ``d`` and ``m`` of ``(n, bytes_per_block)`` blocks as float32 columns."""
    d = blocks[:, _field(fmt, "d")].view(np.float16).astype(np.float32)
    if not fmt.use_min:
        return d, None
    return d, blocks[:, _field(fmt, "m")].view(np.float16).astype(np.float32)


def pack(
    d: ArrayLike, m: ArrayLike | None, codes: ArrayLike, fmt: str | BlockFormat
) -> NDArray[np.uint8]:
    """Assemble GGUF blocks from parameters and codes (the inverse of :func:`unpack`).

    Parameters
    ----------
    d : array_like
        Scale of each block, shape ``(..., n // 32)``; stored as float16.
    m : array_like or None
        Minimum of each block (Q4_1, Q5_1), same shape; None for the symmetric formats.
    codes : array_like of int
        Shape ``(..., n)``: in ``[-2**(bits-1), 2**(bits-1) - 1]`` (Q8_0: ``[-128, 127]``) for the
        symmetric formats, ``[0, 2**bits - 1]`` with a minimum.
    fmt : str or BlockFormat
        Format name.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 32 * bytes_per_block)``.
    """
    f = get_format(fmt)
    c = _check_codes(codes, f.qmin, f.qmax)
    n_blocks = c.size // f.block_size
    params = {"d": d, "m": m}
    if (m is None) == f.use_min:
        raise ValueError(f"m is {'required' if f.use_min else 'not used'} for {f.name}")
    grouping = Grouping(block_size=f.block_size)
    param_shape = grouping.param_shape(c.shape)
    for name in ("d", "m") if f.use_min else ("d",):
        arr = np.asarray(params[name], dtype=np.float32)
        if arr.shape != param_shape:
            raise ValueError(f"{name} must have shape {param_shape}, got {arr.shape}")
        with np.errstate(over="ignore"):
            in_range = np.all(np.isfinite(arr.astype(np.float16)))
        if not in_range:
            raise ValueError(f"{name} must be finite and within the float16 range")
        params[name] = arr.reshape(n_blocks, 1)
    blocks = grouping.to_groups(c)
    stored = blocks.astype(np.int8) if f.bits == 8 else (blocks - f.qmin).astype(np.uint8)
    out = np.empty((n_blocks, f.bytes_per_block), dtype=np.uint8)
    _pack_blocks(f, params["d"], params["m"], stored, out)
    return out.reshape(*c.shape[:-1], c.shape[-1] // f.block_size * f.bytes_per_block)


def unpack(
    data: ArrayLike, fmt: str | BlockFormat
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None, NDArray[np.int64]]:
    """Split GGUF blocks into their parameters and codes: ``(d, m, codes)``.

    Parameters
    ----------
    data : array_like of uint8
        Shape ``(..., k * bytes_per_block)``.
    fmt : str or BlockFormat
        Format name.

    Returns
    -------
    d : ndarray of float32
        The stored float16 scales (exactly), shape ``(..., k)``.
    m : ndarray of float32 or None
        The stored minimums for Q4_1/Q5_1, else None.
    codes : ndarray of int64
        Shape ``(..., 32k)``, so that ``x_hat = d * codes`` (plus ``m``) block by block.
    """
    f = get_format(fmt)
    b = _check_bytes(data, f.bytes_per_block, "data")
    blocks = b.reshape(-1, f.bytes_per_block)
    d, m = _params(f, blocks)
    codes = _stored_codes(f, blocks).astype(np.int64)
    if not f.use_min and f.bits != 8:
        codes += f.qmin
    lead = b.shape[:-1]
    k = b.shape[-1] // f.bytes_per_block
    return (
        d.reshape(*lead, k),
        None if m is None else m.reshape(*lead, k),
        codes.reshape(*lead, k * f.block_size),
    )


# -- the reference rounding -------------------------------------------------------------------
def _inverse(d: NDArray[np.float32]) -> NDArray[np.float32]:
    """``1/d`` in float32, 0 where ``d = 0``."""
    return np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)


def _round_half_away_int8(v: NDArray[np.float32]) -> NDArray[np.int8]:
    """:func:`round_half_away` for float32 values known to lie in [-127.4, 127.4] (Q8_0)."""
    t = v.astype(np.int8)
    return t + (2 * (v - t)).astype(np.int8)


def round_half_away(v: ArrayLike) -> NDArray[np.int32]:
    """Round float32 values half away from zero (C's ``roundf``), as int32.

    ``trunc(v) + trunc(2*(v - trunc(v)))``: the fraction ``v - trunc(v)`` is exact in float32,
    and doubling it reaches +-1 exactly when it is at least one half. (``floor(|v| + 0.5)`` is
    not exact: ``0.49999997 + 0.5`` rounds to 1.0 in float32.)

    Parameters
    ----------
    v : array_like
        Finite values, converted to float32, of magnitude below ``2**31 - 1``.

    Examples
    --------
    >>> round_half_away([127.5, -127.5, 0.5, -2.5, 0.49999997]).tolist()
    [128, -128, 1, -3, 0]
    """
    arr = np.asarray(v, dtype=np.float32)
    if not np.all(np.isfinite(arr)) or (arr.size and np.abs(arr).max() >= 2**31 - 128):
        raise ValueError("v must be finite and of magnitude below 2**31 (the int32 range)")
    t = arr.astype(np.int32)
    return t + (2 * (arr - t)).astype(np.int32)


def _check_f16(value: NDArray[np.float32], name: str) -> None:
    """ValueError if a block parameter overflows float16 (the reference would store inf)."""
    # float16 rounds |v| >= 65520 (halfway to 65536) to inf: two reductions, no conversion
    if value.size and max(value.max(), -value.min()) >= 65520:
        bad = float(np.abs(value).max())
        raise ValueError(
            f"x is too large for this format: a block's {name} = {bad:.4g} exceeds the float16 "
            "range (|" + name + "| <= 65504); scale x down"
        )


def _check_finite(*stats: NDArray) -> None:
    for s in stats:
        if not np.all(np.isfinite(s)):
            raise ValueError("x contains NaN or infinity (or values beyond float32)")


def _max_min(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Largest and smallest value of each row of ``(n, 32)`` blocks, as ``(n, 1)`` columns.

    Reducing a contiguous transposed copy (32 rows of n) runs at SIMD speed; reducing 32-value
    rows one by one does not. NaN propagates to both.
    """
    xt = np.ascontiguousarray(x.T)
    return xt.max(axis=0)[:, None], xt.min(axis=0)[:, None]


def _signed_absmax(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """The first value of largest magnitude of each block, with its sign, as an ``(n, 1)`` column.

    Where the largest and smallest values have equal magnitude (e.g. an all-zero block, or
    ``+a`` and ``-a`` both present), the first such value in the block decides, as in the
    reference.
    """
    hi, lo = _max_min(x)
    m = np.where(hi >= -lo, hi, lo)
    tie = (hi == -lo)[:, 0]
    if np.any(tie):
        rows = x[tie]
        m[tie] = np.take_along_axis(rows, np.abs(rows).argmax(axis=1)[:, None], axis=1)
    return m


def _reference_blocks(
    fmt: BlockFormat, x: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None, NDArray]:
    """Reference parameters and stored codes of ``(n, 32)`` float32 blocks: ``(d, m, stored)``.

    Every step is float32 arithmetic in the reference's order, so the result is bit-exact.
    """
    if fmt.use_min:
        hi, lo = _max_min(x)
        _check_finite(hi, lo)
        d = (hi - lo) / np.float32(fmt.qmax)
        v = x - lo
        v *= _inverse(d)
        v += np.float32(0.5)
        codes = v.astype(np.uint8)  # floor, as v >= 0
        return d, lo, np.minimum(codes, np.uint8(fmt.qmax), out=codes)
    if fmt.bits == 8:
        hi, lo = _max_min(x)
        _check_finite(hi, lo)
        # max |x|; abs() makes an all-zero block's d +0.0 (np.maximum(0.0, -0.0) is -0.0)
        d = np.abs(np.maximum(hi, -lo)) / np.float32(127)
        return d, None, _round_half_away_int8(x * _inverse(d))
    # Q4_0, Q5_0: the value of largest magnitude, with its sign, lands on code qmin.
    m = _signed_absmax(x)
    _check_finite(m)
    d = m / np.float32(fmt.qmin)
    v = x * _inverse(d)
    v += np.float32(0.5 - fmt.qmin)  # q - qmin = floor(x/d + 1/2) - qmin >= 0
    codes = v.astype(np.uint8)
    return d, None, np.minimum(codes, np.uint8(fmt.qmax - fmt.qmin), out=codes)


#: Blocks per tile of the plain encoding: a tile is transposed to (position, block) at once
#: (256 blocks, 32 KB: measured 10-25 % faster than 128 on 1024 x 4096, 512 no better).
TILE_BLOCKS = 256


def _encode_tiles(fmt: BlockFormat, x: NDArray[np.float32], out: NDArray[np.uint8]) -> None:
    """The reference bytes of ``(n, 32)`` float32 blocks of Q4_0, Q4_1, Q5_0 or Q5_1, into ``out``.

    The same float32 steps as :func:`_reference_blocks`, on a layout that suits each of them:
    the blocks are transposed tile by tile (256 blocks, 32 KB, in cache) to (tile, position,
    block); the maximum and minimum of a block are then reductions over the middle axis, the
    codes elementwise operations, and the nibbles ``c[j] | c[j + 16] << 4`` (and the 5th bits
    ``qh``) shifts of whole rows of blocks, written back to the blocks' bytes with one
    transposed copy each; ``d`` and ``m`` are converted to float16 as contiguous vectors and
    written as uint16 columns. Measured on 4096 x 4096 float32, one thread: Q4_0 74 -> 60 ms,
    Q4_1 77 -> 59, Q5_0 84 -> 71, Q5_1 89 -> 72 (llama.cpp's C: 46-57 ms), against one
    transposed copy of a whole chunk for the extremes and then the codes, the float16 conversion
    and the packing on rows of 32 or 16 values (short inner loops, strided 2-byte writes).
    Tiles of 256 blocks rather than 128 halve the inner loops of the reductions (each runs over
    a row of ``k`` blocks): 10-25 % faster on 1024 x 4096 (2026-12-02), still 2-3.5 times the
    C on a machine where the C takes 1-1.5 ns a value (about ten NumPy passes over the data,
    each 0.3-0.8 ns a value, against one fused C loop).
    """
    n = x.shape[0]
    tail = n % TILE_BLOCKS
    if tail and n > TILE_BLOCKS:  # whole tiles, then the remaining blocks as one tile
        _encode_tiles(fmt, x[: n - tail], out[: n - tail])
        _encode_tiles(fmt, x[n - tail :], out[n - tail :])
        return
    k = min(n, TILE_BLOCKS)
    nt = n // k
    tiles = x.reshape(nt, k, 32).transpose(0, 2, 1).copy()  # (nt, 32, k), never a view of x
    hi = tiles.max(axis=1)
    lo = tiles.min(axis=1)
    if not (math.isfinite(hi.max()) and math.isfinite(lo.min())):  # NaN reaches both, inf one
        _check_finite(hi, lo)
    if fmt.use_min:
        d = (hi - lo) / np.float32(fmt.qmax)
        v = np.subtract(tiles, lo[:, None, :], out=tiles)
        v *= _inverse(d)[:, None, :]
        v += np.float32(0.5)
        m = lo
    else:
        # the value of largest magnitude with its sign; equal magnitudes: the first one
        m = np.where(hi >= -lo, hi, lo)
        tie = np.flatnonzero(hi == -lo)
        if tie.size:
            rows = x[tie]
            m.reshape(-1)[tie] = rows[np.arange(tie.size), np.abs(rows).argmax(axis=1)]
        d = m / np.float32(fmt.qmin)
        v = np.multiply(tiles, _inverse(d)[:, None, :], out=tiles)
        v += np.float32(0.5 - fmt.qmin)
        m = None
    codes = v.astype(np.uint8)  # floor, as v >= 0
    # (NumPy's uint8 minimum is 8 times faster against an array than against a scalar)
    np.minimum(codes, np.full((1, 1, k), fmt.qmax - fmt.qmin, np.uint8), out=codes)
    # d and m are the first two float16 of a block (its size is even): one uint16 column each
    words = out.view(np.uint16)
    _check_f16(d, "d")
    words[:, 0] = d.astype(np.float16).reshape(-1).view(np.uint16)
    if m is not None:
        _check_f16(m, "m")
        words[:, 1] = m.astype(np.float16).reshape(-1).view(np.uint16)
    blocks = out.reshape(nt, k, fmt.bytes_per_block)
    qs = codes[:, 16:] << np.uint8(4)  # (the shift drops a 5-bit code's 5th bit)
    qs |= codes[:, :16] & np.uint8(15) if fmt.bits == 5 else codes[:, :16]
    blocks[:, :, _field(fmt, "qs")] = qs.transpose(0, 2, 1)
    if fmt.bits == 5:
        # Bit j of qh is code j's 5th bit: the bits of 8 blocks at once, as the bytes of uint64
        # lanes (a shift below 8 stays within each byte), or-reduced over groups of 8 positions.
        bits = (codes >> np.uint8(4)).reshape(nt, 4, 8, k)
        if k % 8 == 0:
            lanes = bits.view(np.uint64)
            lanes <<= np.arange(8, dtype=np.uint64)[:, None]
        else:
            bits <<= np.arange(8, dtype=np.uint8)[:, None]
        blocks[:, :, _field(fmt, "qh")] = np.bitwise_or.reduce(bits, axis=2).transpose(0, 2, 1)


def _decode_blocks(
    fmt: BlockFormat, blocks: NDArray[np.uint8], out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """``x_hat = d*q`` or ``d*l + m`` in float32 for ``(n, bytes_per_block)`` blocks.

    The codes are assembled as int8 in place (low nibbles, high nibbles, 5th bits, minus the
    offset), then each product ``d*q`` is rounded to float32 once and ``m`` added, as in the
    reference.
    """
    d, m = _params(fmt, blocks)
    if out is None:
        out = np.empty((blocks.shape[0], fmt.block_size), np.float32)
    qs = blocks[:, _field(fmt, "qs")]
    if fmt.bits == 8:
        codes = qs.view(np.int8)
    else:
        codes = np.empty((blocks.shape[0], fmt.block_size), np.int8)
        half = fmt.block_size // 2
        np.bitwise_and(qs, np.uint8(15), out=codes[:, :half].view(np.uint8))
        np.right_shift(qs, np.uint8(4), out=codes[:, half:].view(np.uint8))
        if fmt.bits == 5:
            fifth = np.unpackbits(blocks[:, _field(fmt, "qh")], axis=1, bitorder="little")
            codes |= (fifth << np.uint8(4)).view(np.int8)
        if not fmt.use_min:
            codes -= np.int8(-fmt.qmin)
    np.multiply(codes, d, out=out)
    if m is not None:
        out += m
    return out


def _by_chunks(fn: Callable[[slice], None], n_blocks: int, size: int = CHUNK_BLOCKS) -> None:
    """Call ``fn(rows)`` on slices of ``size`` blocks (chunks, not a loop over blocks)."""
    for start in range(0, n_blocks, size):
        fn(slice(start, start + size))


# -- importance-weighted blocks ---------------------------------------------------------------
def _block_error(x: NDArray, w: NDArray, x_hat: NDArray) -> NDArray[np.float64]:
    """``sum(w * (x - x_hat)**2)`` per block, in float64."""
    return np.sum(w * (x - x_hat.astype(np.float64)) ** 2, axis=1)


def _encode(fmt: BlockFormat, x: NDArray, scale: NDArray, minimum: NDArray | None) -> NDArray:
    """Blocks for given parameters: round them to float16, then the nearest codes for those."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d = scale.astype(np.float16)
        m = None if minimum is None else minimum.astype(np.float16)
        d64 = d.astype(np.float64)
        shifted = x if m is None else x - m.astype(np.float64)
        ok = (d64 != 0) & np.isfinite(d64)
        q = np.where(ok, np.round(shifted / np.where(ok, d64, 1.0)), 0.0)
        q = np.nan_to_num(np.clip(q, fmt.qmin, fmt.qmax)).astype(np.int64)
    stored = q.astype(np.int8) if fmt.bits == 8 else (q - fmt.qmin).astype(np.uint8)
    out = np.empty((x.shape[0], fmt.bytes_per_block), dtype=np.uint8)
    _pack_blocks(fmt, d, m, stored, out)
    return out


def _weighted_blocks(
    fmt: BlockFormat,
    x: NDArray[np.float32],
    w: NDArray[np.float64],
    reference: NDArray[np.uint8],
    methods: Sequence[str],
) -> NDArray[np.uint8]:
    """Per block, the best of the reference and each method's parameters, after float16."""
    x64 = x.astype(np.float64)
    best = reference
    best_error = _block_error(x64, w, _decode_blocks(fmt, best))
    quantizer = Quantizer(fmt.bits, fmt.use_min, block_size=fmt.block_size)
    for method in methods:
        result = quantizer.fit(x64, w, method=method)
        candidate = _encode(fmt, x64, result.scale, result.min)
        error = _block_error(x64, w, _decode_blocks(fmt, candidate))
        better = error < best_error  # NaN (float16 overflow) is never better
        best = np.where(better[:, None], candidate, best)
        best_error = np.where(better, error, best_error)
    return best


WEIGHTED_METHODS = ("search", "refine", "optimum")


# -- public entry points ----------------------------------------------------------------------
def quantize(
    x: ArrayLike,
    fmt: str | BlockFormat,
    w: ArrayLike | None = None,
    *,
    imatrix: ArrayLike | None = None,
    methods: Sequence[str] = ("search", "refine"),
) -> NDArray[np.uint8]:
    """Quantize to a GGUF block format, bit-exact with the reference (``gguf.quants.quantize``).

    Without ``w`` the parameters and codes are those of the reference (see the module
    docstring for each format's formula); x is first converted to float32, as there.

    With importance weights ``w`` each block is fitted by the weighted methods of
    :class:`quantlab.Quantizer` (``methods``), its parameters rounded to float16 and its codes
    re-derived for the rounded parameters; the result is stored in the same layout, so any GGUF
    reader decodes it. A block keeps the reference bytes unless a candidate has a strictly lower
    weighted error ``sum(w * (x - x_hat)**2)`` as decoded: never worse than the reference.

    With ``imatrix`` the result is the bytes of llama.cpp's ``ggml_quantize_chunk(type, x, 0,
    rows, n, imatrix)`` (see the module docstring); Q8_0 ignores it. ``w`` and ``imatrix`` are
    two different weightings and cannot be combined.

    Parameters
    ----------
    x : array_like
        Finite values, shape ``(..., n)`` with ``n`` a multiple of 32.
    fmt : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"} or BlockFormat
        The format.
    w : array_like, optional
        Non-negative importance weights, shape of x.
    imatrix : array_like, optional
        llama.cpp's importance matrix: shape ``(n,)``, one non-negative value per column.
    methods : sequence of str, default ("search", "refine")
        Weighted fits tried when ``w`` is given: any of "search", "refine" and (symmetric
        formats only) "optimum", the exact optimum of the scale (slow: it visits every
        breakpoint).

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 32 * bytes_per_block)``.

    Examples
    --------
    >>> data = quantize(np.linspace(-1, 1, 32), "Q4_0")
    >>> data.shape, bits_per_weight("Q4_0")
    ((18,), 4.5)
    >>> float(dequantize(data, "Q4_0")[0])
    -1.0
    """
    f = get_format(fmt)
    x32 = as_block_input(x, f.block_size, f.name)
    arr = x32
    if imatrix is not None:
        if w is not None:
            raise ValueError("w and imatrix cannot be combined: pass one of them")
        qw = im.check_imatrix(imatrix, x32.shape[-1])
        if f.bits != 8:
            return _imatrix_quantize(f, x32, qw)
    # The blocks are the groups of the core's one mechanism (the same as Quantizer(block_size=32)).
    blocks = Grouping(block_size=f.block_size).to_groups(x32)
    if w is not None:
        wa = as_weights(w, arr.shape).reshape(blocks.shape)
        if isinstance(methods, str) or not all(mt in WEIGHTED_METHODS for mt in methods):
            raise ValueError(f"methods must be a sequence of {WEIGHTED_METHODS}, got {methods!r}")
        if f.use_min and "optimum" in methods:
            raise ValueError(f"methods: 'optimum' needs a symmetric format, not {f.name}")

    out = np.empty((blocks.shape[0], f.bytes_per_block), np.uint8)

    def encode(rows: slice) -> None:
        if f.bits != 8:
            _encode_tiles(f, blocks[rows], out[rows])
            return
        d, m, stored = _reference_blocks(f, blocks[rows])
        _check_f16(d, "d")
        if m is not None:
            _check_f16(m, "m")
        _pack_blocks(f, d, m, stored, out[rows])

    def fit(rows: slice) -> None:
        out[rows] = _weighted_blocks(f, blocks[rows], wa[rows], out[rows], methods)

    # A block whose float32 range is subnormal has 1/d = inf, as in the reference: its codes
    # come out of the same inf/NaN casts there and here, and its float16 d is 0 anyway.
    with np.errstate(over="ignore", invalid="ignore"):
        _by_chunks(encode, blocks.shape[0])
    if w is not None:
        _by_chunks(fit, blocks.shape[0], WEIGHTED_CHUNK_BLOCKS)
    return out.reshape(*arr.shape[:-1], arr.shape[-1] // f.block_size * f.bytes_per_block)


#: Values processed at once on the imatrix path (whole rows; at least one row).
IMATRIX_CHUNK_VALUES = 1 << 16


def _imatrix_quantize(
    fmt: BlockFormat, x32: NDArray[np.float32], qw: NDArray[np.float32]
) -> NDArray[np.uint8]:
    """llama.cpp's ``quantize_row_q4_0_impl`` & co.: the imatrix path, row chunk by row chunk.

    Per row ``sigma2 = Σ x² / n`` (in order, float32); per block of 32 the weights
    ``qw · sqrt(sigma2 + x²)``; then Q4_0/Q5_0: ``d, q = make_qx_quants(x, 2**(bits-1), w)``;
    Q4_1/Q5_1: ``d, -m, q = make_qkx3_quants(x, 2**bits - 1, w, -0.9, 0.05, 36)``.
    """
    _check_finite(x32)
    n = x32.shape[-1]
    rows = x32.reshape(-1, n)
    per_row = n // 32
    out = np.empty((rows.shape[0] * per_row, fmt.bytes_per_block), np.uint8)
    step = max(1, IMATRIX_CHUNK_VALUES // n)
    qw_t = np.ascontiguousarray(qw.reshape(per_row, 32).T)  # (32, blocks of one row)
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        r = chunk.shape[0]
        sigma2 = im.row_sigma2(np.ascontiguousarray(chunk.T))
        xt = np.ascontiguousarray(chunk.reshape(r * per_row, 32).T)
        w = im.imatrix_weights(np.tile(qw_t, (1, r)), xt, np.repeat(sigma2, per_row))
        if fmt.use_min:
            d, the_min, codes = make_qkx3_quants(xt, fmt.qmax, w)
            m = -the_min
        else:
            d, codes = make_qx_quants(xt, -fmt.qmin, w)
            m = None
        d = d[:, None]
        _check_f16(d, "d")
        if m is not None:
            m = m[:, None]
            _check_f16(m, "m")
        blocks_out = out[start * per_row : (start + r) * per_row]
        _pack_blocks(fmt, d, m, np.ascontiguousarray(codes.T), blocks_out)
    return out.reshape(*x32.shape[:-1], per_row * fmt.bytes_per_block)


def dequantize(data: ArrayLike, fmt: str | BlockFormat) -> NDArray[np.float32]:
    """Decode GGUF blocks to float32, equal to the last bit to ``gguf.quants.dequantize``.

    ``x_hat = d*q`` (Q8_0, Q4_0, Q5_0) or ``x_hat = d*l + m`` (Q4_1, Q5_1), computed in float32
    from the stored float16 parameters.

    Parameters
    ----------
    data : array_like of uint8
        Shape ``(..., k * bytes_per_block)`` (bytes objects are accepted).
    fmt : str or BlockFormat
        The format.

    Returns
    -------
    ndarray of float32
        Shape ``(..., 32k)``.
    """
    f = get_format(fmt)
    b = _check_bytes(data, f.bytes_per_block, "data")
    blocks = np.ascontiguousarray(b).reshape(-1, f.bytes_per_block)

    out = np.empty((blocks.shape[0], f.block_size), np.float32)
    _by_chunks(lambda rows: _decode_blocks(f, blocks[rows], out[rows]), blocks.shape[0])
    return out.reshape(*b.shape[:-1], b.shape[-1] // f.bytes_per_block * f.block_size)
