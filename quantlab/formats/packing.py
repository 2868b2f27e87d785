"""How the K-quants pack their codes and sub-block scales into bytes (facts from ggml-common.h).

Two ideas cover every K-quant layout:

- **bit planes** (:func:`pack_planes`): ``K`` slices of 32 codes share 32 bytes; slice ``k`` goes
  to bits ``[k·bits, (k+1)·bits)`` of each byte. Q2_K packs 4 slices of 2-bit codes per 32 bytes,
  Q4_K 2 slices of nibbles, Q3_K's ``hmask`` and Q5_K's ``qh`` 8 slices of single high bits,
  Q6_K 4 slices of its 2 high bits.
- **6-bit scales** in 12 bytes: Q4_K/Q5_K (:func:`pack_scales_k4`: 8 scales and 8 mins) and Q3_K
  (:func:`pack_scales_q3k`: 16 signed scales stored as ``code + 32``).

All functions work on the last axis and accept any leading shape.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def pack_planes(codes: NDArray, bits: int) -> NDArray[np.uint8]:
    """Pack ``(..., K, 32)`` codes of ``bits`` bits: ``byte[l] = Σ_k codes[k, l] << (bits·k)``.

    The codes must lie in ``[0, 2**bits)``. The shifts and ors run on 64-bit words, eight
    bytes at a time: a code shifted within its byte never reaches the next one, so a word's
    shift is each of its bytes' (NumPy shifts uint8 one element at a time, 8 times slower).

    Examples
    --------
    >>> pack_planes(np.array([[1] * 32, [2] * 32, [3] * 32, [0] * 32]), 2)[:2].tolist()
    [57, 57]
    """
    c = np.ascontiguousarray(codes, dtype=np.uint8)
    # (..., K, 4): a slice of 32 codes is 4 words (a shorter slice, as in the scales, bytes)
    words = c.view(np.uint64) if c.shape[-1] % 8 == 0 else c
    out = words[..., 0, :].copy()
    for k in range(1, c.shape[-2]):
        out |= words[..., k, :] << words.dtype.type(bits * k)
    return out.view(np.uint8)


def unpack_planes(data: NDArray[np.uint8], bits: int, k: int) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_planes`: ``(..., 32)`` bytes to ``(..., k, 32)`` codes."""
    shifts = (np.arange(k, dtype=np.uint8) * np.uint8(bits))[:, None]
    return (data[..., None, :] >> shifts) & np.uint8(2**bits - 1)


def pack_scales_k4(scales: NDArray, mins: NDArray) -> NDArray[np.uint8]:
    """Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes.

    Bytes 0-3 hold scales 0-3 and bytes 4-7 mins 0-3 in their low 6 bits; bytes 8-11 hold the
    low nibbles of scale ``j`` and min ``j`` (``j = 4..7``); the top 2 bits of scale ``j`` go to
    the top of byte ``j - 4`` and those of min ``j`` to the top of byte ``j``.
    """
    s = scales.astype(np.uint8)
    m = mins.astype(np.uint8)
    out = np.empty((*s.shape[:-1], 12), np.uint8)
    out[..., 0:4] = s[..., :4] | ((s[..., 4:] >> 4) << 6)
    out[..., 4:8] = m[..., :4] | ((m[..., 4:] >> 4) << 6)
    out[..., 8:12] = (s[..., 4:] & 15) | ((m[..., 4:] & 15) << 4)
    return out


def unpack_scales_k4(data: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Inverse of :func:`pack_scales_k4`: 12 bytes to ``(scales, mins)``, each ``(..., 8)``."""
    lo, mid, hi = data[..., 0:4], data[..., 4:8], data[..., 8:12]
    scales = np.concatenate([lo & 63, (hi & 15) | ((lo >> 6) << 4)], axis=-1)
    mins = np.concatenate([mid & 63, (hi >> 4) | ((mid >> 6) << 4)], axis=-1)
    return scales, mins


def pack_scales_q3k(codes: NDArray) -> NDArray[np.uint8]:
    """Q3_K: 16 six-bit scale codes (``scale + 32``) in 12 bytes.

    The low nibble of code ``j`` goes to byte ``j`` (``j < 8``) or to the high half of byte
    ``j - 8``; its top 2 bits go to byte ``8 + j % 4`` at bit ``2·(j // 4)``.
    """
    c = codes.astype(np.uint8)
    out = np.empty((*c.shape[:-1], 12), np.uint8)
    out[..., :8] = (c[..., :8] & 15) | ((c[..., 8:] & 15) << 4)
    out[..., 8:] = pack_planes((c >> 4).reshape(*c.shape[:-1], 4, 4), 2)
    return out


def unpack_scales_q3k(data: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_scales_q3k`: 12 bytes to 16 codes in ``[0, 63]``."""
    low = np.concatenate([data[..., :8] & 15, data[..., :8] >> 4], axis=-1)
    high = unpack_planes(data[..., 8:], 2, 4).reshape(*data.shape[:-1], 16)
    return low | (high << 4)
