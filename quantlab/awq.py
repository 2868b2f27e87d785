"""AWQ: activation-aware per-channel scaling before rounding (SPEC item 13).

Lin, Tang, Tang, Yang, Dang and Han 2023 ("AWQ: Activation-aware Weight Quantization for LLM
Compression and Acceleration"). A linear layer ``y = x Wᵀ`` is unchanged when column ``j`` of
``W`` is multiplied by ``s_j > 0`` and input ``j`` divided by it: ``y = (x / s) (W diag(s))ᵀ``.
Rounding ``W diag(s)`` instead of ``W`` shrinks the *relative* rounding error of the columns with
a large ``s``; choosing ``s`` large where the inputs are large protects the weights that matter
most for the output. AWQ takes::

    s_j = mean_n |x_nj| ^ α,   normalised by sqrt(max s · min s),   (s_j clamped at 1e-4)

and searches α on a grid (the reference's ``0, 0.05, ..., 0.95``), keeping the α whose
quantized layer ``Ŵ = Q(W diag(s)) diag(s)⁻¹`` has the smallest output error
``mean((x Wᵀ - x Ŵᵀ)²)`` on calibration inputs. At α = 0, ``s = 1`` and AWQ is round-to-nearest.

Rounding uses GPTQ's grid (:func:`quantlab.gptq.round_groups`: per row or per group, the min/max
range widened to contain 0, integer zero-point), so the two methods compare on the same grid.
(The reference AWQ code rounds the range without widening it and clamps the zero-point instead;
the search is the same.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_float_array, check_bool, check_n_bits
from .gptq import GPTQResult, _check_size, dequantize_grid, round_groups
from .table import Table

__all__ = ["REFERENCE_ALPHAS", "AWQResult", "awq_scales", "awq_search"]

#: The reference's grid of exponents: ``i / 20`` for ``i = 0 .. 19``.
REFERENCE_ALPHAS = np.arange(20) / 20

#: Candidate layers rounded at once are limited to this many values (memory bound).
_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class AWQResult:
    """The best per-channel scaling and the quantized layer it gives.

    Attributes
    ----------
    alpha : float
        The chosen exponent.
    s : ndarray of shape (columns,)
        The per-input-channel scales (``W diag(s)`` is rounded, the input divided by ``s``).
    W_hat : ndarray of shape (rows, columns)
        The effective quantized weights ``Q(W diag(s)) diag(s)⁻¹`` (``x Ŵᵀ = (x/s) Q(W s)ᵀ``).
    quantized : GPTQResult
        Codes and parameters of ``W diag(s)``.
    alphas, errors : ndarray
        The grid and each candidate's output error ``mean((x Wᵀ - x Ŵᵀ)²)``.
    table : Table
        One row per α, the chosen one marked.
    """

    alpha: float
    s: NDArray[np.float64]
    W_hat: NDArray[np.float64]
    quantized: GPTQResult
    alphas: NDArray[np.float64]
    errors: NDArray[np.float64]
    table: Table = field(repr=False)


def awq_scales(X: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """AWQ's scales ``s = mean|x|^α`` per input channel, clamped at 1e-4 and normalised so that
    ``max(s) · min(s) = 1``.

    Examples
    --------
    >>> awq_scales([[1.0, 4.0], [-1.0, -4.0]], 0.5)
    array([0.70710678, 1.41421356])
    """
    Xa = as_float_array(X, "X")
    if Xa.ndim != 2:
        raise ValueError(f"X must be a 2-D (samples, columns) array, got shape {Xa.shape}")
    return _scales(np.abs(Xa).mean(axis=0), np.asarray([float(alpha)]))[0]


def _scales(mean_abs: NDArray, alphas: NDArray) -> NDArray:
    s = np.maximum(mean_abs[None, :] ** alphas[:, None], 1e-4)
    return s / np.sqrt(s.max(axis=1, keepdims=True) * s.min(axis=1, keepdims=True))


def awq_search(
    W: ArrayLike,
    X: ArrayLike,
    n_bits: int = 4,
    *,
    group_size: int | None = None,
    sym: bool = False,
    alphas: ArrayLike | None = None,
) -> AWQResult:
    """Search AWQ's exponent α: the scaling with the smallest layer output error.

    Parameters
    ----------
    W : array_like, shape (rows, columns)
        The layer (``y = x Wᵀ``).
    X : array_like, shape (samples, columns)
        Calibration inputs.
    n_bits : int, default 4
        2 to 16.
    group_size : int, optional
        One (scale, zero) per row and group of columns; default per row.
    sym : bool, default False
        The symmetric grid.
    alphas : array_like, optional
        Exponents to try, each in [0, 1]; default :data:`REFERENCE_ALPHAS`.

    Returns
    -------
    AWQResult

    Notes
    -----
    All candidates are rounded in one vectorized call (in chunks of about four million values,
    so memory stays bounded), and each error is ``tr(Δ G Δᵀ) / (samples · rows)`` with the
    ``columns × columns`` Gram matrix ``G = XᵀX`` computed once, instead of a product with
    every sample per candidate. Ties keep the first (smallest) α, as the reference does.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 8)) * [10, 1, 1, 1, 1, 1, 1, 1]
    >>> res = awq_search(rng.normal(size=(4, 8)), X, 3)
    >>> bool(res.errors.min() <= res.errors[0])
    True
    """
    Wa = as_float_array(W, "W")
    Xa = as_float_array(X, "X")
    if Wa.ndim != 2:
        raise ValueError(f"W must be a 2-D (rows, columns) array, got shape {Wa.shape}")
    if Xa.ndim != 2 or Xa.shape[1] != Wa.shape[1]:
        raise ValueError(
            f"X must be (samples, {Wa.shape[1]}): one column per column of W, got {Xa.shape}"
        )
    n = check_n_bits(n_bits, 2)
    gs = _check_size(group_size, "group_size")
    sym = check_bool(sym, "sym")
    grid = REFERENCE_ALPHAS if alphas is None else as_float_array(alphas, "alphas").ravel()
    if np.any(grid < 0) or np.any(grid > 1):
        raise ValueError("alphas must lie in [0, 1]")
    S = _scales(np.abs(Xa).mean(axis=0), grid)
    G = Xa.T @ Xa
    denominator = Xa.shape[0] * Wa.shape[0]
    errors = np.empty(len(grid))
    step = max(1, _CHUNK_VALUES // Wa.size)
    for start in range(0, len(grid), step):  # chunks of candidates, each chunk vectorized
        s = S[start : start + step, None, :]
        q, scale, zero, g_idx = round_groups(Wa * s, n, gs, sym)
        D = dequantize_grid(q, scale[..., g_idx], zero[..., g_idx]) / s - Wa
        errors[start : start + step] = np.sum((D @ G) * D, axis=(1, 2)) / denominator
    best = int(np.argmin(errors))
    s = S[best]
    q, scale, zero, g_idx = round_groups(Wa * s, n, gs, sym)
    scaled_hat = dequantize_grid(q, scale[:, g_idx], zero[:, g_idx])
    quantized = GPTQResult(q, scale, zero, scaled_hat, g_idx, np.arange(Wa.shape[1]))
    table = Table({"alpha": grid, "output error": errors}, best=best)
    return AWQResult(float(grid[best]), s, scaled_hat / s, quantized, grid, errors, table)
