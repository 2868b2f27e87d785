"""GPTQ: quantize a linear layer one column at a time, correcting the rest (SPEC item 13).

A linear layer ``y = W x`` with calibration inputs ``X`` (columns are samples) has the output
error ``||W X - Ŵ X||² = tr(Δ H Δᵀ)`` with ``Δ = Ŵ - W`` and ``H = X Xᵀ``. Notebook 04's
importance weights ``E[a²]`` are the diagonal of ``H``; GPTQ (Frantar, Ashkboos, Hoefler and
Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", Algorithm 1) keeps the whole matrix. Every row of ``W`` has the same ``H``, so the
rows are processed together. Columns are quantized in order; after column ``q`` is rounded, the
still-free columns ``F`` receive the optimal brain surgeon (OBS) compensation::

    δ_F = -(w_q - quant(w_q)) / [H_F⁻¹]_qq · [H_F⁻¹]_{F, q}

where ``H_F⁻¹`` is the inverse of ``H`` restricted to the free columns (``q`` included). Two
facts make this fast:

- Row ``q`` of the upper Cholesky factor ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``) is
  ``[H_F⁻¹]_{q, F} / sqrt([H_F⁻¹]_qq)`` for ``F = {q, q+1, ...}``, so all the shrinking inverses
  come from one factorization: the update is ``W[:, q:] -= (w_q - quant(w_q)) / U_qq · U[q, q:]``.
- The update of a column depends only on the errors of the columns before it, so it can wait:
  inside a block of ``block_size`` columns the updates are applied at once (rank-1, on a small
  array), and the rest of the matrix gets one matrix product per block ("lazy batch updates").

The reference repository (IST-DASLab/gptq) fixes the details reproduced here:

- The grid: per row (or per group of ``group_size`` columns) the range ``[min(w, 0), max(w, 0)]``
  (widened to contain 0), ``scale = (max - min) / (2**n - 1)``, integer
  ``zero = round(-min / scale)``, ``q = clip(round(w / scale) + zero, 0, 2**n - 1)``,
  ``ŵ = scale · (q - zero)``; an all-zero range becomes [-1, 1]. ``sym=True``: ``max`` becomes
  ``max(|min|, max)``, ``min = -max`` where ``min < 0``, and ``zero = 2**(n-1)``. (As in the
  reference, a row with no negative value keeps ``min = 0`` under ``sym=True``, so its largest
  values are clipped to about ``max / 2``.)
- Without groups the grid comes from the input ``W``; with groups, from the group's columns as
  updated by every column quantized before it (here a block always starts where a group starts,
  so this is the plain column-by-column rule; the reference agrees when ``group_size`` is a
  multiple of ``block_size``, its default 128/128).
- Dead columns (``H_jj == 0``: that input is always 0) get ``H_jj = 1`` and ``w_j = 0``.
- Damping: ``λ = damp · mean(diag H)`` (after the dead-column fix) is added to the diagonal.
- ``act_order``: columns are quantized in the order of decreasing ``H_jj`` (ties by index); the
  groups are consecutive columns *in that order*, and ``g_idx`` maps each column to its group.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_finite_float, as_float_array, check_bool, check_n_bits

__all__ = [
    "GPTQResult",
    "dequantize_grid",
    "gptq",
    "gptq_reference",
    "grid_params",
    "output_error",
    "quantize_grid",
    "round_groups",
    "rtn",
]


@dataclass(frozen=True)
class GPTQResult:
    """A quantized layer: codes, per-(row, group) parameters and the dequantized weights.

    Attributes
    ----------
    q : ndarray of int64, shape (rows, columns)
        Codes in ``0 .. 2**n_bits - 1``, in the original column order.
    scale : ndarray of float64, shape (rows, n_groups)
        One scale per row and group (``n_groups = 1`` without groups).
    zero : ndarray of int64, shape (rows, n_groups)
        Integer zero-points.
    W_hat : ndarray of float64, shape (rows, columns)
        ``scale[:, g_idx] * (q - zero[:, g_idx])``.
    g_idx : ndarray of int64, shape (columns,)
        The group of each column.
    perm : ndarray of int64, shape (columns,)
        The order in which the columns were quantized.
    loss : ndarray of float64, shape (rows,) or None
        GPTQ's own account ``Σ_j ((w_j - ŵ_j) / U_jj)²`` per row; it equals the row's
        ``(ŵ - w) H_λ (ŵ - w)ᵀ`` with the damped Hessian (None for round-to-nearest).
    """

    q: NDArray[np.int64]
    scale: NDArray[np.float64]
    zero: NDArray[np.int64]
    W_hat: NDArray[np.float64]
    g_idx: NDArray[np.int64]
    perm: NDArray[np.int64]
    loss: NDArray[np.float64] | None = None


# -- the grid ------------------------------------------------------------------------------------
def grid_params(
    x: NDArray[np.float64], n_bits: int, sym: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The reference's min/max grid of each row of ``x`` (last axis): ``(scale, zero)``.

    ``lo = min(min x, 0)``, ``hi = max(max x, 0)`` (``[-1, 1]`` when both are 0);
    ``scale = (hi - lo) / (2**n - 1)``, ``zero = round(-lo / scale)``. With ``sym``:
    ``hi = max(-lo, hi)``, ``lo = -hi`` where ``lo < 0``, ``zero = 2**(n-1)``.

    Examples
    --------
    >>> s, z = grid_params(np.array([[-1.0, 0.5, 2.0]]), 2)
    >>> s, z
    (array([1.]), array([1]))
    """
    maxq = 2**n_bits - 1
    lo = np.minimum(x.min(axis=-1), 0.0)
    hi = np.maximum(x.max(axis=-1), 0.0)
    if sym:
        hi = np.maximum(-lo, hi)
        lo = np.where(lo < 0, -hi, lo)
    empty = (lo == 0) & (hi == 0)
    lo = np.where(empty, -1.0, lo)
    hi = np.where(empty, 1.0, hi)
    scale = (hi - lo) / maxq
    if sym:
        zero = np.full(scale.shape, (maxq + 1) // 2, dtype=np.int64)
    else:
        zero = np.round(-lo / scale).astype(np.int64)
    return scale, zero


def quantize_grid(x: ArrayLike, scale: ArrayLike, zero: ArrayLike, n_bits: int) -> NDArray:
    """Codes ``clip(round(x / scale) + zero, 0, 2**n - 1)`` (round half to even), int64.

    A quotient within ``1e-12`` (relative) of a half-integer is rounded as that exact tie. The
    symmetric grid puts its most negative value on the tie ``-(2**n - 1)/2`` in exact arithmetic,
    and without this the last bit of ``scale`` would decide its code.
    """
    t = np.asarray(x) / scale
    half = np.floor(t) + 0.5
    t = np.where(np.abs(t - half) <= 1e-12 * np.maximum(1.0, np.abs(t)), half, t)
    q = np.clip(np.round(t) + zero, 0, 2**n_bits - 1)
    return q.astype(np.int64)


def dequantize_grid(q: ArrayLike, scale: ArrayLike, zero: ArrayLike) -> NDArray[np.float64]:
    """Values ``scale · (q - zero)``."""
    return np.asarray(scale, dtype=np.float64) * (np.asarray(q) - np.asarray(zero))


# -- validation ----------------------------------------------------------------------------------
def _check_size(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def _check_layer(W: ArrayLike, H: ArrayLike) -> tuple[NDArray, NDArray]:
    Wa = as_float_array(W, "W")
    if Wa.ndim != 2:
        raise ValueError(f"W must be a 2-D (rows, columns) array, got shape {Wa.shape}")
    Ha = as_float_array(H, "H")
    cols = Wa.shape[1]
    if Ha.shape != (cols, cols):
        raise ValueError(
            f"H must be the (columns x columns) Hessian of W's inputs, shape {(cols, cols)}, "
            f"got {Ha.shape}"
        )
    big = np.abs(Ha).max()
    Hs = Ha + Ha.T
    Ha -= Ha.T
    if np.abs(Ha).max() > 1e-8 * big:
        raise ValueError("H must be symmetric (H = X Xᵀ), got H != H.T")
    Hs *= 0.5
    diag = np.diag(Hs)
    if np.any(diag < 0):
        raise ValueError("H must be positive semi-definite (X Xᵀ), but it has a negative diagonal")
    # Every 2x2 principal minor of a PSD matrix is >= 0: |H_ij| <= sqrt(H_ii H_jj).
    root = np.sqrt(diag)
    if np.any(np.abs(Hs) > np.outer(root, root * (1 + 1e-8)) + 1e-12 * big):
        raise ValueError("H must be positive semi-definite (X Xᵀ): some |H_ij| > sqrt(H_ii H_jj)")
    return Wa, Hs


def _prepare(W, H, n_bits, group_size, sym, damp, act_order):
    """Validated copies: W with dead columns zeroed, the order, the damped H in that order (its
    rows and columns permuted), and the grid of the input W when there are no groups."""
    Wa, Ha = _check_layer(W, H)
    n = check_n_bits(n_bits, 2)
    gs = _check_size(group_size, "group_size")
    sym = check_bool(sym, "sym")
    act_order = check_bool(act_order, "act_order")
    lam_frac = as_finite_float(damp, "damp")
    if lam_frac < 0:
        raise ValueError(f"damp must be >= 0, got {lam_frac}")
    params = None if gs is not None else grid_params(Wa, n, sym)  # from the input W
    dead = np.flatnonzero(np.diag(Ha) == 0)
    Ha[dead, dead] = 1.0
    Wa[:, dead] = 0.0
    diag = np.diag(Ha)
    perm = np.argsort(-diag, kind="stable") if act_order else np.arange(Wa.shape[1])
    Ha[np.diag_indices_from(Ha)] += lam_frac * diag.mean()  # diag is a copy
    if act_order:
        Ha = Ha[np.ix_(perm, perm)]
    return Wa, Ha, n, gs, sym, perm, params


def _not_pd(exc: Exception) -> ValueError:
    return ValueError(
        "H + damp*mean(diag H)*I is not positive definite: H must be symmetric positive "
        "semi-definite (H = X Xᵀ); if it is, raise damp"
    )


def _upper_cholesky_of_inverse(A: NDArray[np.float64]) -> NDArray[np.float64]:
    """Upper-triangular ``U`` with ``A⁻¹ = UᵀU``, from one Cholesky factorization.

    With ``J`` the reversal permutation, ``JAJ = L Lᵀ`` gives ``A = R Rᵀ`` with the upper
    triangular ``R = J L J``; then ``A⁻¹ = R⁻ᵀ R⁻¹``, so ``U = R⁻¹`` (upper triangular).
    """
    try:
        L = np.linalg.cholesky(A[::-1, ::-1])
    except np.linalg.LinAlgError as exc:
        raise _not_pd(exc) from exc
    return _inv_upper(np.ascontiguousarray(L[::-1, ::-1]))


def _inv_upper(R: NDArray[np.float64], leaf: int = 256) -> NDArray[np.float64]:
    """Inverse of an upper-triangular matrix by halves: matrix products do the work.

    ``[[A, B], [0, C]]⁻¹ = [[A⁻¹, -A⁻¹ B C⁻¹], [0, C⁻¹]]``; about ``n³/3`` multiply-adds in
    BLAS, where ``np.linalg.inv`` (a general LU solve) costs several times more.
    """
    n = R.shape[0]
    if n <= leaf:
        return np.triu(np.linalg.inv(R))
    k = n // 2
    A_inv = _inv_upper(R[:k, :k], leaf)
    C_inv = _inv_upper(R[k:, k:], leaf)
    out = np.zeros_like(R)
    out[:k, :k] = A_inv
    out[k:, k:] = C_inv
    out[:k, k:] = -(A_inv @ R[:k, k:]) @ C_inv
    return out


def _group_columns(perm: NDArray, gs: int | None) -> NDArray[np.int64]:
    g_idx = np.zeros(len(perm), dtype=np.int64)
    if gs is not None:
        g_idx[perm] = np.arange(len(perm)) // gs
    return g_idx


# -- GPTQ ----------------------------------------------------------------------------------------
def gptq(
    W: ArrayLike,
    H: ArrayLike,
    n_bits: int = 4,
    *,
    group_size: int | None = None,
    sym: bool = False,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
) -> GPTQResult:
    """Quantize ``W`` (rows, columns) by GPTQ with the Hessian ``H = X Xᵀ`` of its inputs.

    For each column ``j`` in order: ``q_j = quant(w_j)``, ``e = (w_j - ŵ_j) / U_jj``,
    ``W[:, j+1:] -= e ⊗ U[j, j+1:]``, with ``U`` the upper Cholesky factor of
    ``(H + λI)⁻¹`` and ``λ = damp · mean(diag H)`` (module docstring for the grid, dead columns
    and ``act_order``).

    Parameters
    ----------
    W : array_like, shape (rows, columns)
        The layer's weights (``y = W x``).
    H : array_like, shape (columns, columns)
        Symmetric positive semi-definite Hessian ``X Xᵀ`` (any positive multiple gives the same
        result).
    n_bits : int, default 4
        2 to 16.
    group_size : int, optional
        One (scale, zero) per row and group of this many consecutive (quantization-order)
        columns; default one per row.
    sym : bool, default False
        The reference's symmetric grid.
    damp : float, default 0.01
        Damping as a fraction of ``mean(diag H)``.
    block_size : int, default 128
        Columns per lazy-update block (changes only the rounding of the arithmetic).
    act_order : bool, default False
        Quantize columns in order of decreasing ``H_jj``.

    Returns
    -------
    GPTQResult

    Notes
    -----
    Why it is fast: the columns must be visited one by one (each rounding depends on the
    previous updates), but every step works on all rows at once, the work inside a block is a
    rank-1 update of a ``(block, rows)`` array (the weights are kept transposed so that a column
    is contiguous), and the rest of the matrix is updated by one BLAS matrix product per block.
    The cost is one Cholesky factorization and triangular inverse (``columns³``) plus
    ``rows · columns²`` for the updates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(8, 100))
    >>> W = rng.normal(size=(4, 8))
    >>> res = gptq(W, X @ X.T, 3)
    >>> res.q.shape, res.scale.shape
    ((4, 8), (4, 1))
    >>> bool(output_error(W, res.W_hat, X @ X.T) < output_error(W, rtn(W, 3).W_hat, X @ X.T))
    True
    """
    Wa, Hd, n, gs, sym, perm, params = _prepare(W, H, n_bits, group_size, sym, damp, act_order)
    bs = _check_size(block_size, "block_size")
    if bs is None:
        raise ValueError("block_size must be a positive integer, got None")
    rows, cols = Wa.shape
    U = _upper_cholesky_of_inverse(Hd)
    del Hd
    Wt = Wa.T[perm] if act_order else np.ascontiguousarray(Wa.T)  # row j: column perm[j] of W
    del Wa
    Qt = np.empty((cols, rows), dtype=np.int64)
    What_t = np.empty((cols, rows))
    loss = np.zeros(rows)
    n_groups = 1 if gs is None else -(-cols // gs)
    scales = np.empty((rows, n_groups))
    zeros = np.empty((rows, n_groups), dtype=np.int64)
    if params is not None:
        scales[:, 0], zeros[:, 0] = params
    starts = set(range(0, cols, bs)) | (set() if gs is None else set(range(0, cols, gs)))
    bounds = [*sorted(starts), cols]
    for i1, i2 in itertools.pairwise(bounds):
        if gs is not None and i1 % gs == 0:  # a group starts here: the block starts with it
            g = i1 // gs
            scales[:, g], zeros[:, g] = grid_params(Wt[i1 : i1 + gs].T, n, sym)
        g = 0 if gs is None else i1 // gs
        scale, zero = scales[:, g], zeros[:, g]
        block = Wt[i1:i2]
        err = np.empty((i2 - i1, rows))
        for i in range(i2 - i1):
            j = i1 + i
            w = block[i]
            q = quantize_grid(w, scale, zero, n)
            w_hat = scale * (q - zero)
            e = (w - w_hat) / U[j, j]
            block[i + 1 :] -= U[j, j + 1 : i2, None] * e
            err[i], Qt[j], What_t[j] = e, q, w_hat
            loss += e * e
        Wt[i2:] -= U[i1:i2, i2:].T @ err
    if act_order:
        inv = np.argsort(perm)
        Qt, What_t = Qt[inv], What_t[inv]
    return GPTQResult(
        q=Qt.T,
        scale=scales,
        zero=zeros,
        W_hat=What_t.T,
        g_idx=_group_columns(perm, gs),
        perm=perm,
        loss=loss,
    )


def gptq_reference(
    W: ArrayLike,
    H: ArrayLike,
    n_bits: int = 4,
    *,
    group_size: int | None = None,
    sym: bool = False,
    damp: float = 0.01,
    act_order: bool = False,
) -> GPTQResult:
    """The plain OBS loop GPTQ accelerates: explicit inverse, downdated column by column.

    Same grid, damping, dead columns, groups and order as :func:`gptq`, but no Cholesky factor
    and no blocks: ``Hinv = (H + λI)⁻¹`` over the free columns ``F``; for each column ``j`` in
    order, ``W[:, F] -= (w_j - ŵ_j) / Hinv_jj · Hinv[j, F]``, then ``j`` leaves ``F`` and
    ``Hinv ← Hinv - Hinv[:, j] Hinv[j, :] / Hinv_jj`` (the inverse of ``H`` restricted to the
    new ``F``). Cost ``columns³ + rows · columns²`` *per column*: a readable oracle for small
    layers, not for real ones.
    """
    Wa, Hd, n, gs, sym, perm, params = _prepare(W, H, n_bits, group_size, sym, damp, act_order)
    rows, cols = Wa.shape
    try:
        np.linalg.cholesky(Hd)
    except np.linalg.LinAlgError as exc:
        raise _not_pd(exc) from exc
    inv = np.argsort(perm)
    Hinv = np.linalg.inv(Hd[np.ix_(inv, inv)])  # back to the original column order
    n_groups = 1 if gs is None else -(-cols // gs)
    scales = np.empty((rows, n_groups))
    zeros = np.empty((rows, n_groups), dtype=np.int64)
    if params is not None:
        scales[:, 0], zeros[:, 0] = params
    Q = np.empty((rows, cols), dtype=np.int64)
    W_hat = np.empty((rows, cols))
    loss = np.zeros(rows)
    for k, j in enumerate(perm):
        g = 0 if gs is None else k // gs
        if gs is not None and k % gs == 0:
            scales[:, g], zeros[:, g] = grid_params(Wa[:, perm[k : k + gs]], n, sym)
        Q[:, j] = quantize_grid(Wa[:, j], scales[:, g], zeros[:, g], n)
        W_hat[:, j] = scales[:, g] * (Q[:, j] - zeros[:, g])
        err = Wa[:, j] - W_hat[:, j]
        loss += err**2 / Hinv[j, j]
        free = perm[k + 1 :]
        Wa[:, free] -= np.outer(err / Hinv[j, j], Hinv[j, free])
        Hinv[np.ix_(free, free)] -= np.outer(Hinv[free, j], Hinv[j, free]) / Hinv[j, j]
    return GPTQResult(Q, scales, zeros, W_hat, _group_columns(perm, gs), perm, loss)


def round_groups(
    W: NDArray[np.float64], n_bits: int, group_size: int | None = None, sym: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Round to nearest on the grid of each row's groups of consecutive columns (last axis).

    Leading axes are batch axes (one layer per index), so many candidate layers round in one
    call. Returns ``(q, scale, zero, g_idx)`` with ``scale``/``zero`` of shape
    ``(..., rows, n_groups)``.
    """
    cols = W.shape[-1]
    size = cols if group_size is None else group_size
    n_groups = -(-cols // size)
    pad = n_groups * size - cols
    # Padding the last (partial) group with copies of its last value keeps its min and max.
    padded = np.concatenate([W, np.repeat(W[..., -1:], pad, axis=-1)], axis=-1)
    scale, zero = grid_params(padded.reshape(*W.shape[:-1], n_groups, size), n_bits, sym)
    g_idx = np.arange(cols) // size
    return quantize_grid(W, scale[..., g_idx], zero[..., g_idx], n_bits), scale, zero, g_idx


def rtn(
    W: ArrayLike, n_bits: int = 4, *, group_size: int | None = None, sym: bool = False
) -> GPTQResult:
    """Round to nearest on GPTQ's grid (per row, or per group of consecutive columns).

    Examples
    --------
    >>> rtn([[0.3, -1.0, 2.0]], 2).W_hat
    array([[ 0., -1.,  2.]])
    """
    Wa = as_float_array(W, "W")
    if Wa.ndim != 2:
        raise ValueError(f"W must be a 2-D (rows, columns) array, got shape {Wa.shape}")
    n = check_n_bits(n_bits, 2)
    gs = _check_size(group_size, "group_size")
    sym = check_bool(sym, "sym")
    q, scale, zero, g_idx = round_groups(Wa, n, gs, sym)
    W_hat = dequantize_grid(q, scale[:, g_idx], zero[:, g_idx])
    return GPTQResult(q, scale, zero, W_hat, g_idx, np.arange(Wa.shape[1]))


def output_error(W: ArrayLike, W_hat: ArrayLike, H: ArrayLike) -> float:
    """The layer's output error ``tr(Δ H Δᵀ)``, ``Δ = Ŵ - W`` (``= ||(Ŵ - W) X||²`` for
    ``H = X Xᵀ``).

    Examples
    --------
    >>> output_error([[1.0, 2.0]], [[1.0, 1.0]], np.eye(2))
    1.0
    """
    Wa = as_float_array(W, "W")
    Wh = as_float_array(W_hat, "W_hat")
    Ha = as_float_array(H, "H")
    if Wa.ndim != 2 or Wh.shape != Wa.shape or Ha.shape != (Wa.shape[1],) * 2:
        raise ValueError(
            f"W and W_hat must be (rows, columns) of the same shape and H (columns, columns), "
            f"got {Wa.shape}, {Wh.shape} and {Ha.shape}"
        )
    D = Wh - Wa
    return float(np.sum((D @ Ha) * D))
