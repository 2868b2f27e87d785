"""The K-quants of llama.cpp: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, bit-exact (SPEC item 11).

A K-quant cuts each row into **super-blocks of 256 values**, and each super-block into
sub-blocks of 16 or 32 values with their own scale (and minimum). The sub-block scales are
themselves quantized to 4, 6 or 8 bits against one float16 ``d`` (and ``dmin``) per super-block:
"scales of scales". Layouts (bytes per super-block, from llama.cpp's ``ggml-common.h``):

======  ==========  =======  =================================================  =====  =====
format  sub-block   minimum  super-block layout (bytes)                         bytes  bpw
======  ==========  =======  =================================================  =====  =====
Q2_K    16 × 2 bit  yes      scales (16: 4-bit scale | 4-bit min << 4), qs      84     2.625
                             (64), d (2), dmin (2)
Q3_K    16 × 3 bit  no       hmask (32), qs (64), scales (12: 6-bit), d (2)     110    3.4375
Q4_K    32 × 4 bit  yes      d (2), dmin (2), scales (12: 6-bit scales+mins),   144    4.5
                             qs (128)
Q5_K    32 × 5 bit  yes      d (2), dmin (2), scales (12), qh (32), qs (128)    176    5.5
Q6_K    16 × 6 bit  no       ql (128), qh (64), scales (16: int8), d (2)        210    6.5625
======  ==========  =======  =================================================  =====  =====

Decoding, value ``i`` of sub-block ``j``: with a minimum
``x_hat = (d·sc_j)·q_i - dmin·m_j``; symmetric ``x_hat = (d·sc_j)·q_i`` (Q3_K: ``sc_j - 32``
and ``q_i - 4``; Q6_K: ``sc_j`` signed and ``q_i - 32``).

Encoding, each format in three steps (the functions are in :mod:`.make_quants`):

1. every sub-block is fitted on its own: a scale (and min) and codes, by a search —
   without an imatrix Q2_K/Q4_K/Q5_K use make_qkx2_quants (weights ``|x|`` for Q2_K,
   ``sqrt(mean x²) + |x|`` for Q4_K/Q5_K), Q3_K make_q3_quants and Q6_K make_qx_quants; with an
   imatrix the weights come from :mod:`.imatrix` and the searches are make_qkx3_quants / make_qx;
2. the sub-block scales (and mins) are quantized: without an imatrix by rounding against
   ``max/nmax``; with one by make_qp_quants (Q2/4/5_K) or make_qx_quants (Q3_K), weighted by the
   sub-block's total weight;
3. every value is re-rounded against its decoded sub-block scale (from the float16 ``d``):
   ``q = clip(nearest_int((x + dmin·m_j)/(d·sc_j)))`` or ``nearest_int(x/(d·sc_j))``; a
   sub-block whose decoded scale is 0 keeps its codes from step 1.

Speed: the super-blocks are processed in chunks (512, 128K values) laid out as (position in
sub-block, sub-block), so each step of each search is a few float32 operations over thousands of
sub-blocks at once, every sum is one ordered reduction or fused sum of products (see
:mod:`.make_quants`), and step 3 runs on the same layout before one uint8 transpose back for the
packing (bit planes packed on 64-bit words). Q3_K without an imatrix takes windows of 8 chunks:
each chunk gets its first descent round alone, and the blocks still moving in the whole window
are descended together (:func:`.make_quants.make_q3_scales`). On 4096 x 4096 float32, one
thread, the K-quants take 1.1-1.45 times the CPU time of llama.cpp's C
(benchmarks/bench_kquants.py), Q3_K without an imatrix 1.49-1.59 (was 2.1-2.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import imatrix as im
from ._input import as_block_bytes, as_block_input, check_finite
from .make_quants import (
    F32,
    GROUP_MAX_EPS,
    make_q3_quants,
    make_q3_scales,
    make_qkx2_quants,
    make_qkx3_quants,
    make_qp_quants,
    make_qx_quants,
    nearest_int,
    ordered_sum,
)
from .packing import (
    pack_planes,
    pack_scales_k4,
    pack_scales_q3k,
    unpack_planes,
    unpack_scales_k4,
    unpack_scales_q3k,
)

#: Values per super-block.
QK_K = 256
#: Super-blocks processed at once (128K values): measured fastest; 256 up to 10 % slower (more
#: NumPy calls per value), 1024 slower again (the block-sized arrays leave the cache).
CHUNK_SUPERBLOCKS = 512
_F16_MAX = 65504.0


# -- shared steps -----------------------------------------------------------------------------
def _subblocks(x: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    """``(nsb, 256)`` super-blocks to the ``(n, nsb·256/n)`` layout, sub-block ``s`` of
    super-block ``i`` in column ``i·256/n + s``."""
    nsb = x.shape[0]
    return np.ascontiguousarray(x.reshape(nsb, QK_K // n, n).transpose(2, 0, 1)).reshape(n, -1)


def _rows(codes_t: NDArray, nsb: int) -> NDArray:
    """Inverse of :func:`_subblocks`: ``(n, nsb·S)`` back to ``(nsb, 256)``."""
    n = codes_t.shape[0]
    return codes_t.reshape(n, nsb, QK_K // n).transpose(1, 2, 0).reshape(nsb, QK_K)


def _to_f16(v: NDArray[np.float32], name: str) -> tuple[NDArray[np.float16], NDArray[np.float32]]:
    """``v`` stored as float16 (round to nearest even) and read back; overflow is an error."""
    with np.errstate(over="ignore"):
        h = v.astype(np.float16)
    if not np.all(np.isfinite(h)):
        bad = float(np.abs(v[~np.isfinite(h)]).max())
        raise ValueError(
            f"x is too large for this format: a super-block's {name} = {bad:.4g} exceeds the "
            f"float16 range (|{name}| <= {_F16_MAX:g}); scale x down"
        )
    return h, h.astype(F32)


def _f16_field(b: NDArray[np.uint8], start: int) -> NDArray[np.float32]:
    """The float16 stored at bytes ``start, start + 1`` of each block, as a float32 vector."""
    return b[:, start : start + 2].copy().view(np.float16)[:, 0].astype(F32)


def _u8(v: NDArray) -> NDArray[np.uint8]:
    """An int array stored in uint8 as C does (modulo 256)."""
    return (v.astype(np.int64) & 0xFF).astype(np.uint8)


def _requantize(
    xt: NDArray[np.float32],
    d: NDArray[np.float32],
    dm: NDArray[np.float32] | None,
    lo: int,
    hi: int,
    first: NDArray[np.uint8],
    offset: int = 0,
    amax: NDArray[np.float32] | None = None,
) -> NDArray[np.uint8]:
    """Step 3: ``clip(nearest_int((x + dm)/d), lo, hi) + offset`` per sub-block, as ``(nsb, 256)``.

    ``xt`` and ``first`` (the codes of step 1) are in the ``(n, sub-blocks)`` layout of
    :func:`_subblocks`, ``d`` and ``dm`` have shape ``(nsb, S)``; where ``d == 0`` the codes of
    step 1 are kept, as the reference skips those sub-blocks. The arithmetic runs on the
    transposed layout (whole rows of sub-blocks, long inner loops: about 2 times faster than on
    rows of 16 or 32 values), and the uint8 codes are transposed back once. ``amax`` (the
    largest ``|x|`` of each sub-block, without ``dm`` only) spares two passes: no ``|x / d|``
    exceeds the rounded ``amax / |d|``, division being monotone.
    """
    nsb = d.shape[0]
    d = d.reshape(-1)
    zero = d == 0
    dd = np.where(zero, F32(1), d)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if dm is not None:
            v = np.add(xt, dm.reshape(-1))
            v /= dd
        else:
            v = np.divide(xt, dd)
        if amax is not None:
            big = bool(np.any(amax / np.abs(dd) > 4194303))
        else:
            big = bool(v.size and max(v.max(), -v.min()) > 4194303)
    if big:
        v = nearest_int(v).astype(F32)  # beyond 2**22: the reference's wrapped value
    else:
        np.rint(v, out=v)  # nearest_int within 2**22
    np.clip(v, F32(lo), F32(hi), out=v)
    if offset:  # added to the uint8 codes: a quarter of the memory traffic of float32
        codes = v.astype(np.int8).view(np.uint8)
        codes += np.uint8(offset)
    else:
        codes = v.astype(np.uint8)
    if zero.any():
        codes[:, zero] = first[:, zero]
    return _rows(codes, nsb)


class _Q3First:
    """make_q3_quants' codes of the sub-blocks of ``xt``, computed only for those asked for.

    Q3_K keeps them only where a quantized sub-block scale is 0 (rare but for tiny or very
    uneven data), so :func:`make_q3_scales` does not build them.
    """

    def __init__(self, xt: NDArray[np.float32]) -> None:
        self.xt = xt

    def __getitem__(self, index: tuple[slice, NDArray[np.bool_]]) -> NDArray[np.uint8]:
        rows, cols = index
        return make_q3_quants(np.ascontiguousarray(self.xt[rows][:, cols]), 4)[1]


def _first_largest(v: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per row: the largest ``|v|`` and the first value reaching it, with its sign.

    The reference keeps the first sub-block scale of strictly largest magnitude.
    """
    a = np.abs(v)
    amax = a.max(axis=1)
    first = np.argmax(a == amax[:, None], axis=1)
    return amax, np.take_along_axis(v, first[:, None], axis=1)[:, 0]


def _max_positive(v: NDArray[np.float32]) -> NDArray[np.float32]:
    """``max(0, max(v))`` per row, as a loop from 0 with a strict ``>`` keeps it (+0.0)."""
    m = v.max(axis=1)
    return np.where(m > 0, m, F32(0))


def _round_against_max(v: NDArray[np.float32], vmax: NDArray[np.float32], nmax: int) -> NDArray:
    """Codes ``nearest_int(nmax/vmax · v)`` (0 where ``vmax = 0``), as int32."""
    with np.errstate(divide="ignore"):
        inv = np.where(vmax > 0, F32(nmax) / vmax, F32(0))
    return nearest_int(inv[:, None] * v)


# -- Q2_K -------------------------------------------------------------------------------------
def _q2_k_quantize(x: NDArray[np.float32], qw: NDArray[np.float32] | None) -> NDArray[np.uint8]:
    """Q2_K: sub-blocks of 16 with 2-bit codes, 4-bit scales and 4-bit mins."""
    nsb = x.shape[0]
    xt = _subblocks(x, 16)
    if qw is None:
        scales, mins, first = make_qkx2_quants(xt, 3, np.abs(xt), -0.5, 0.1, 15, use_mad=True)
        scales, mins = scales.reshape(nsb, 16), mins.reshape(nsb, 16)
        max_scale, max_min = _max_positive(scales), _max_positive(mins)
        ls = _round_against_max(scales, max_scale, 15)
        lm = _round_against_max(mins, max_min, 15)
        packed = _u8(ls) | _u8(lm << 4)
        d16, d = _to_f16(max_scale / F32(15), "d")
        m16, dmin = _to_f16(max_min / F32(15), "dmin")
    else:
        sigma2 = im.superblock_sigma2(np.ascontiguousarray(x.T), 1)
        sigma2 = np.repeat(sigma2, 16)
        w = im.imatrix_weights(_subblocks(qw, 16), xt, sigma2)
        scales, mins, first = make_qkx3_quants(xt, 3, w)
        sw = ordered_sum(w).reshape(nsb, 16).T.copy()
        dm, ls = make_qp_quants(scales.reshape(nsb, 16).T.copy(), 15, sw)
        mm, lm = make_qp_quants(mins.reshape(nsb, 16).T.copy(), 15, sw)
        ls, lm = ls.T, lm.T
        packed = ls | (lm << np.uint8(4))
        d16, d = _to_f16(dm, "d")
        m16, dmin = _to_f16(mm, "dmin")
    sc, mc = packed & np.uint8(15), packed >> np.uint8(4)
    codes = _requantize(xt, d[:, None] * sc, dmin[:, None] * mc, 0, 3, first)
    out = np.empty((nsb, 84), np.uint8)
    out[:, :16] = packed
    out[:, 16:80] = pack_planes(codes.reshape(nsb, 2, 4, 32), 2).reshape(nsb, 64)
    out[:, 80:82] = d16.view(np.uint8).reshape(nsb, 2)
    out[:, 82:84] = m16.view(np.uint8).reshape(nsb, 2)
    return out


def _q2_k_dequantize(b: NDArray[np.uint8]) -> NDArray[np.float32]:
    nsb = b.shape[0]
    d = _f16_field(b, 80)
    dmin = _f16_field(b, 82)
    sc = b[:, :16]
    dl = d[:, None] * (sc & 15)
    ml = dmin[:, None] * (sc >> 4)
    q = unpack_planes(b[:, 16:80].reshape(nsb, 2, 32), 2, 4).reshape(nsb, 16, 16)
    return (dl[..., None] * q - ml[..., None]).reshape(nsb, QK_K)


# -- Q3_K -------------------------------------------------------------------------------------
def _q3_k_quantize(x: NDArray[np.float32], qw: NDArray[np.float32] | None) -> NDArray[np.uint8]:
    """Q3_K: sub-blocks of 16 with 3-bit codes and 6-bit signed scales, no minimum."""
    nsb = x.shape[0]
    if qw is None:
        # make_q3_quants on cache-sized parts, the later rounds of their descents pooled
        starts = range(0, nsb, CHUNK_SUPERBLOCKS)
        parts = [_subblocks(x[i : i + CHUNK_SUPERBLOCKS], 16) for i in starts]
        rows = [x[i : i + CHUNK_SUPERBLOCKS].reshape(-1, 16) for i in starts]
        scales, xmax = make_q3_scales(zip(parts, rows, strict=True), 4)
        scales = scales.reshape(nsb, 16)
        max_scale = _first_largest(scales)[1]
        has = max_scale != 0
        with np.errstate(divide="ignore"):
            iscale = np.where(has, F32(-32) / np.where(has, max_scale, F32(1)), F32(0))
        l8 = ((nearest_int(iscale[:, None] * scales) + 128) & 0xFF) - 128  # int8_t
        codes6 = np.where(has[:, None], np.clip(l8, -32, 31) + 32, 0)
        with np.errstate(divide="ignore"):
            d_block = np.where(has, F32(1) / np.where(has, iscale, F32(1)), F32(0))
        first = None
    else:
        xt = _subblocks(x, 16)
        sigma2 = np.repeat(im.superblock_sigma2(np.ascontiguousarray(x.T), 2), 16)
        w = im.imatrix_weights(_subblocks(qw, 16), xt, sigma2)
        scales, first = make_qx_quants(xt, 4, w)
        sw = ordered_sum(w).reshape(nsb, 16).T.copy()
        d_block, codes6 = make_qx_quants(scales.reshape(nsb, 16).T.copy(), 32, sw)
        codes6 = codes6.T
    codes6 = codes6.astype(np.uint8)
    d16, d = _to_f16(d_block.astype(F32), "d")
    sc = codes6.astype(np.int64) - 32
    dsub = d[:, None] * sc.astype(F32)
    if first is None:
        codes = np.empty((nsb, QK_K), np.uint8)
        for i, part in zip(range(0, nsb, CHUNK_SUPERBLOCKS), parts, strict=True):
            dp = dsub[i : i + CHUNK_SUPERBLOCKS]
            ap = xmax[16 * i : 16 * (i + CHUNK_SUPERBLOCKS)]
            codes[i : i + CHUNK_SUPERBLOCKS] = _requantize(part, dp, None, -4, 3, _Q3First(part),
                                                           offset=4, amax=ap)  # fmt: skip
    else:
        codes = _requantize(xt, dsub, None, -4, 3, first, offset=4)
    out = np.empty((nsb, 110), np.uint8)
    out[:, :32] = pack_planes((codes >> 2).reshape(nsb, 8, 32), 1)
    out[:, 32:96] = pack_planes((codes & 3).reshape(nsb, 2, 4, 32), 2).reshape(nsb, 64)
    out[:, 96:108] = pack_scales_q3k(codes6)
    out[:, 108:110] = d16.view(np.uint8).reshape(nsb, 2)
    return out


def _q3_k_dequantize(b: NDArray[np.uint8]) -> NDArray[np.float32]:
    nsb = b.shape[0]
    d = _f16_field(b, 108)
    sc = unpack_scales_q3k(b[:, 96:108]).astype(np.int8) - np.int8(32)
    dl = d[:, None] * sc
    low = unpack_planes(b[:, 32:96].reshape(nsb, 2, 32), 2, 4).reshape(nsb, QK_K).astype(np.int8)
    high = unpack_planes(b[:, :32], 1, 8).reshape(nsb, QK_K).astype(np.int8)
    q = (low - np.int8(4) + np.int8(4) * high).reshape(nsb, 16, 16)
    return (dl[..., None] * q).reshape(nsb, QK_K)


# -- Q4_K and Q5_K ----------------------------------------------------------------------------
def _k4_search(
    x: NDArray[np.float32],
    qw: NDArray[np.float32] | None,
    nmax: int,
    rmin: float,
    nstep: int,
    clip_codes: bool,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float16], NDArray[np.float16], NDArray]:
    """Steps 1-3 shared by Q4_K and Q5_K: packed 6-bit scales/mins, d, dmin and the codes.

    The values are re-rounded against the scales as decoded from the packed bytes (the reference
    reads them back; it matters only if a code was out of range). ``clip_codes``: the imatrix
    path clips the scale codes to 63 (Q5_K) or not (Q4_K), as the reference does.
    """
    nsb = x.shape[0]
    xt = _subblocks(x, 32)
    if qw is None:
        av_x = np.sqrt(ordered_sum(xt * xt) / F32(32))
        w = np.abs(xt)
        w += av_x
        scales, mins, first = make_qkx2_quants(xt, nmax, w, rmin, 0.1, nstep)
        scales, mins = scales.reshape(nsb, 8), mins.reshape(nsb, 8)
        max_scale, max_min = _max_positive(scales), _max_positive(mins)
        ls = np.minimum(_u8(_round_against_max(scales, max_scale, 63)), np.uint8(63))
        lm = np.minimum(_u8(_round_against_max(mins, max_min, 63)), np.uint8(63))
        d16, d = _to_f16(max_scale / F32(63), "d")
        m16, dmin = _to_f16(max_min / F32(63), "dmin")
    else:
        sigma2 = np.repeat(im.superblock_sigma2(np.ascontiguousarray(x.T), 2), 8)
        w = im.imatrix_weights(_subblocks(qw, 32), xt, sigma2)
        scales, mins, first = make_qkx3_quants(xt, nmax, w)
        sw = ordered_sum(w).reshape(nsb, 8).T.copy()
        d_block, ls = make_qp_quants(scales.reshape(nsb, 8).T.copy(), 63, sw)
        m_block, lm = make_qp_quants(mins.reshape(nsb, 8).T.copy(), 63, sw)
        ls, lm = ls.T, lm.T
        if clip_codes:
            ls, lm = np.minimum(ls, np.uint8(63)), np.minimum(lm, np.uint8(63))
        d16, d = _to_f16(d_block, "d")
        m16, dmin = _to_f16(m_block, "dmin")
    packed = pack_scales_k4(ls, lm)
    ls, lm = unpack_scales_k4(packed)
    codes = _requantize(xt, d[:, None] * ls, dmin[:, None] * lm, 0, nmax, first)
    return packed, codes, d16, m16, first


def _k4_header(out: NDArray[np.uint8], d16: NDArray, m16: NDArray, scales: NDArray) -> None:
    nsb = out.shape[0]
    out[:, 0:2] = d16.view(np.uint8).reshape(nsb, 2)
    out[:, 2:4] = m16.view(np.uint8).reshape(nsb, 2)
    out[:, 4:16] = scales


def _k4_params(b: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per sub-block ``d·sc_j`` and ``dmin·m_j`` of Q4_K/Q5_K blocks, shape ``(nsb, 8, 1)``."""
    d = _f16_field(b, 0)
    dmin = _f16_field(b, 2)
    sc, m = unpack_scales_k4(b[:, 4:16])
    return (d[:, None] * sc)[..., None], (dmin[:, None] * m)[..., None]


def _q4_k_quantize(x: NDArray[np.float32], qw: NDArray[np.float32] | None) -> NDArray[np.uint8]:
    """Q4_K: sub-blocks of 32 with 4-bit codes, 6-bit scales and 6-bit mins."""
    nsb = x.shape[0]
    scales, codes, d16, m16, _ = _k4_search(x, qw, 15, -1.0, 20, clip_codes=False)
    out = np.empty((nsb, 144), np.uint8)
    _k4_header(out, d16, m16, scales)
    out[:, 16:] = pack_planes(codes.reshape(nsb, 4, 2, 32), 4).reshape(nsb, 128)
    return out


def _q4_k_dequantize(b: NDArray[np.uint8]) -> NDArray[np.float32]:
    nsb = b.shape[0]
    dl, ml = _k4_params(b)
    q = unpack_planes(b[:, 16:].reshape(nsb, 4, 32), 4, 2).reshape(nsb, 8, 32)
    return (dl * q - ml).reshape(nsb, QK_K)


def _q5_k_quantize(x: NDArray[np.float32], qw: NDArray[np.float32] | None) -> NDArray[np.uint8]:
    """Q5_K: as Q4_K with 5-bit codes (the 5th bits in ``qh``)."""
    nsb = x.shape[0]
    scales, codes, d16, m16, _ = _k4_search(x, qw, 31, -0.5, 15, clip_codes=True)
    out = np.empty((nsb, 176), np.uint8)
    _k4_header(out, d16, m16, scales)
    out[:, 16:48] = pack_planes((codes >> 4).reshape(nsb, 8, 32), 1)
    out[:, 48:] = pack_planes((codes & 15).reshape(nsb, 4, 2, 32), 4).reshape(nsb, 128)
    return out


def _q5_k_dequantize(b: NDArray[np.uint8]) -> NDArray[np.float32]:
    nsb = b.shape[0]
    dl, ml = _k4_params(b)
    low = unpack_planes(b[:, 48:].reshape(nsb, 4, 32), 4, 2).reshape(nsb, QK_K)
    high = unpack_planes(b[:, 16:48], 1, 8).reshape(nsb, QK_K)
    q = (low | (high << np.uint8(4))).reshape(nsb, 8, 32)
    return (dl * q - ml).reshape(nsb, QK_K)


# -- Q6_K -------------------------------------------------------------------------------------
def _q6_k_quantize(x: NDArray[np.float32], qw: NDArray[np.float32] | None) -> NDArray[np.uint8]:
    """Q6_K: sub-blocks of 16 with 6-bit codes and int8 scales, no minimum.

    The imatrix enters make_qx_quants directly as the weights (no ``sigma²`` term).
    """
    nsb = x.shape[0]
    xt = _subblocks(x, 16)
    scales, first = make_qx_quants(xt, 32, None if qw is None else _subblocks(qw, 16))
    scales = scales.reshape(nsb, 16)
    amax, max_scale = _first_largest(scales)
    zero = amax < GROUP_MAX_EPS
    safe = np.where(zero, F32(1), max_scale)
    iscale = F32(-128) / safe
    d16, d = _to_f16(np.where(zero, F32(0), F32(1) / iscale), "d")
    sc = np.minimum(nearest_int(iscale[:, None] * scales), 127)
    sc = (((sc + 128) & 0xFF) - 128).astype(np.int8)
    sc[zero] = 0
    codes = _requantize(xt, d[:, None] * sc.astype(F32), None, -32, 31, first, offset=32)
    codes = codes.reshape(nsb, 2, 4, 32)
    codes[zero] = 0
    out = np.empty((nsb, 210), np.uint8)
    low = (codes & 15).reshape(nsb, 2, 2, 2, 32).transpose(0, 1, 3, 2, 4)  # (h, s2, hi, l)
    out[:, :128] = pack_planes(low, 4).reshape(nsb, 128)
    out[:, 128:192] = pack_planes(codes >> 4, 2).reshape(nsb, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = d16.view(np.uint8).reshape(nsb, 2)
    return out


def _q6_k_dequantize(b: NDArray[np.uint8]) -> NDArray[np.float32]:
    nsb = b.shape[0]
    d = _f16_field(b, 208)
    sc = b[:, 192:208].view(np.int8)
    low = unpack_planes(b[:, :128].reshape(nsb, 2, 2, 32), 4, 2)  # (h, s2, hi, l)
    low = low.transpose(0, 1, 3, 2, 4).reshape(nsb, 2, 4, 32)
    high = unpack_planes(b[:, 128:192].reshape(nsb, 2, 32), 2, 4)
    q = ((low | (high << np.uint8(4))).astype(np.int8) - np.int8(32)).reshape(nsb, 16, 16)
    return ((d[:, None] * sc)[..., None] * q).reshape(nsb, QK_K)


# -- the formats ------------------------------------------------------------------------------
@dataclass(frozen=True)
class KQuantFormat:
    """One K-quant format: its facts, and its quantize/dequantize on whole super-blocks.

    Attributes
    ----------
    name : str
        "Q2_K" … "Q6_K".
    bits : int
        Bits per code.
    use_min : bool
        Whether sub-blocks have a minimum (``dmin`` and 4/6-bit mins).
    sub_block : int
        Values per sub-block (16 or 32).
    layout : tuple of (str, int)
        The fields of a super-block in storage order with their sizes in bytes.
    """

    name: str
    bits: int
    use_min: bool
    sub_block: int
    layout: tuple[tuple[str, int], ...]
    encode: Callable[[NDArray[np.float32], NDArray[np.float32] | None], NDArray[np.uint8]]
    decode: Callable[[NDArray[np.uint8]], NDArray[np.float32]]
    block_size: int = QK_K
    #: Super-blocks per call of ``encode``, a multiple of :data:`CHUNK_SUPERBLOCKS` (Q3_K: a
    #: window of 8 chunks whose later descent rounds, a fixed number of NumPy calls each, are
    #: pooled; windows of 4-16 chunks measured within the noise of each other).
    chunk_factor: int = 1

    @property
    def bytes_per_block(self) -> int:
        """Bytes of one super-block."""
        return sum(size for _, size in self.layout)

    @property
    def bits_per_weight(self) -> float:
        """Storage per value, scales included (Q4_K: 4.5)."""
        return 8 * self.bytes_per_block / self.block_size

    def quantize(
        self, x: ArrayLike, w: ArrayLike | None = None, *, imatrix: ArrayLike | None = None
    ) -> NDArray[np.uint8]:
        """The bytes of llama.cpp's ``ggml_quantize_chunk`` (see :func:`quantize`)."""
        return quantize(x, self, w, imatrix=imatrix)

    def dequantize(self, data: ArrayLike) -> NDArray[np.float32]:
        """Decode super-blocks to float32 (see :func:`dequantize`)."""
        return dequantize(data, self)


KFORMATS: dict[str, KQuantFormat] = {
    f.name: f
    for f in (
        KQuantFormat("Q2_K", 2, True, 16,
                     (("scales", 16), ("qs", 64), ("d", 2), ("dmin", 2)),
                     _q2_k_quantize, _q2_k_dequantize),
        KQuantFormat("Q3_K", 3, False, 16,
                     (("hmask", 32), ("qs", 64), ("scales", 12), ("d", 2)),
                     _q3_k_quantize, _q3_k_dequantize, chunk_factor=8),
        KQuantFormat("Q4_K", 4, True, 32,
                     (("d", 2), ("dmin", 2), ("scales", 12), ("qs", 128)),
                     _q4_k_quantize, _q4_k_dequantize),
        KQuantFormat("Q5_K", 5, True, 32,
                     (("d", 2), ("dmin", 2), ("scales", 12), ("qh", 32), ("qs", 128)),
                     _q5_k_quantize, _q5_k_dequantize),
        KQuantFormat("Q6_K", 6, False, 16,
                     (("ql", 128), ("qh", 64), ("scales", 16), ("d", 2)),
                     _q6_k_quantize, _q6_k_dequantize),
    )
}  # fmt: skip


def quantize(
    x: ArrayLike,
    fmt: KQuantFormat,
    w: ArrayLike | None = None,
    *,
    imatrix: ArrayLike | None = None,
) -> NDArray[np.uint8]:
    """Quantize to a K-quant, bit-exact with llama.cpp's ``ggml_quantize_chunk``.

    Each row (the last axis) is a sequence of super-blocks of 256. Without ``imatrix`` the
    result is the bytes of ``ggml_quantize_chunk(type, x, 0, rows, n, NULL)`` (the reference
    ``quantize_row_*_ref``); with an imatrix (one value ≥ 0 per column) those of
    ``ggml_quantize_chunk(…, imatrix)``.

    quantlab's own weighted methods (``w``) are not offered for the K-quants: the importance
    of a column is passed as ``imatrix``, which is what llama.cpp itself uses; ``w`` raises.

    Parameters
    ----------
    x : array_like
        Finite values, shape ``(..., n)`` with ``n`` a multiple of 256; converted to float32.
    fmt : KQuantFormat
    w : None
        Must be None (see above).
    imatrix : array_like, optional
        Shape ``(n,)``, non-negative.

    Returns
    -------
    ndarray of uint8
        Shape ``(..., n // 256 * bytes_per_block)``.
    """
    if w is not None:
        raise ValueError(
            f"w: quantlab's weighted methods are only available for the legacy formats, not "
            f"{fmt.name}; pass the importance of each column as imatrix= (llama.cpp's algorithm)"
        )
    arr = as_block_input(x, QK_K, fmt.name)
    check_finite(arr)
    n = arr.shape[-1]
    qw = None if imatrix is None else im.check_imatrix(imatrix, n)
    sb = arr.reshape(-1, QK_K)
    per_row = n // QK_K
    tiles = None if qw is None else qw.reshape(per_row, QK_K)
    out = np.empty((sb.shape[0], fmt.bytes_per_block), np.uint8)
    size = CHUNK_SUPERBLOCKS * (fmt.chunk_factor if qw is None else 1)
    for start in range(0, sb.shape[0], size):
        stop = min(start + size, sb.shape[0])
        chunk_qw = None
        if tiles is not None:
            chunk_qw = tiles[np.arange(start, stop) % per_row]
        out[start:stop] = fmt.encode(sb[start:stop], chunk_qw)
    return out.reshape(*arr.shape[:-1], per_row * fmt.bytes_per_block)


def dequantize(data: ArrayLike, fmt: KQuantFormat) -> NDArray[np.float32]:
    """Decode K-quant super-blocks to float32, equal to ``gguf.quants.dequantize``.

    Parameters
    ----------
    data : array_like of uint8
        Shape ``(..., k * bytes_per_block)`` (bytes objects are accepted).
    fmt : KQuantFormat

    Returns
    -------
    ndarray of float32
        Shape ``(..., 256 k)``.
    """
    b = as_block_bytes(data, fmt.bytes_per_block)
    blocks = np.ascontiguousarray(b).reshape(-1, fmt.bytes_per_block)
    out = np.empty((blocks.shape[0], QK_K), F32)
    for start in range(0, blocks.shape[0], CHUNK_SUPERBLOCKS):
        stop = start + CHUNK_SUPERBLOCKS
        out[start:stop] = fmt.decode(blocks[start:stop])
    return out.reshape(*b.shape[:-1], b.shape[-1] // fmt.bytes_per_block * QK_K)
