"""How llama.cpp combines an importance matrix with the values (``ggml-quants.c``).

An imatrix ``qw`` is one non-negative number per column of a weight matrix: the mean of ``a²``
over calibration activations ``a`` of that input (``llama-imatrix`` stores sums of ``a²`` and
counts). It is the diagonal approximation of the output error (SPEC item 6). llama.cpp does not
use it alone: each value gets the weight

    w_j = qw_j · sqrt(sigma² + x_j²)

so that, within a column of equal importance, large values still matter more, and a value of 0
still matters (``sigma²`` is the mean square of the surrounding values). What ``sigma²`` averages
differs by format:

======================  =====================================  ==========================
format                  ``sigma²``                             the weights then go to
======================  =====================================  ==========================
Q4_0, Q5_0              ``Σ x² / n`` over the whole row        make_qx_quants
Q4_1, Q5_1              ``Σ x² / n`` over the whole row        make_qkx3_quants
Q2_K                    ``Σ x² / 256`` over the super-block    make_qkx3, make_qp_quants
Q3_K                    ``2 Σ x² / 256`` over the super-block  make_qx_quants (twice)
Q4_K, Q5_K              ``2 Σ x² / 256`` over the super-block  make_qkx3, make_qp_quants
Q6_K                    none: ``w_j = qw_j``                   make_qx_quants
Q8_0                    the imatrix is ignored
======================  =====================================  ==========================

The sums run over the values in order, in float32, as in the reference.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_array
from .make_quants import F32, ordered_sum


def check_imatrix(imatrix: ArrayLike, n: int) -> NDArray[np.float32]:
    """The imatrix as a float32 vector of length ``n`` (the last axis of x), checked.

    Raises
    ------
    TypeError
        If it is not real numbers.
    ValueError
        If it is not 1-D of length ``n``, or has NaN, infinity or a negative value.
    """
    arr = as_array(imatrix, "imatrix")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"imatrix must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"imatrix must be 1-D with one value per column of x (length {n}), "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("imatrix contains NaN or infinity")
    if np.any(arr < 0):
        raise ValueError("imatrix must be non-negative")
    with np.errstate(over="ignore"):
        out = arr.astype(F32)
    if not np.all(np.isfinite(out)):
        raise ValueError("imatrix has values beyond the float32 range")
    return out


def row_sigma2(x_t: NDArray[np.float32]) -> NDArray[np.float32]:
    """``sigma² = Σ x² / n`` of each column of ``x_t`` (shape ``(n, rows)``): legacy formats."""
    return ordered_sum(x_t * x_t) / F32(x_t.shape[0])


def superblock_sigma2(x_t: NDArray[np.float32], factor: int) -> NDArray[np.float32]:
    """``sigma² = factor · Σ x² / 256`` per super-block; ``x_t`` has shape ``(256, n_super)``.

    ``factor`` is 1 for Q2_K and 2 for Q3_K, Q4_K and Q5_K.
    """
    s = ordered_sum(x_t * x_t)
    if factor != 1:
        s = F32(factor) * s
    return s / F32(x_t.shape[0])


def imatrix_weights(
    qw: NDArray[np.float32], x: NDArray[np.float32], sigma2: NDArray[np.float32]
) -> NDArray[np.float32]:
    """``w = qw · sqrt(sigma² + x²)`` in float32 (``sigma2`` broadcasts against ``x``)."""
    w = x * x
    w += sigma2
    np.sqrt(w, out=w)
    w *= qw
    return w
