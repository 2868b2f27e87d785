"""Error measures (SPEC item 3) and the uniform-noise model.

- ``mse = mean(w * (x - x_hat)**2)`` (``w = 1`` unless given)
- ``sqnr_db = 10 * log10(sum(x**2) / sum((x - x_hat)**2))``
- ``max_error = max|x - x_hat|``
- uniform-noise model: a rounding error uniform on ``[-Δ/2, Δ/2]`` has power ``Δ**2 / 12``; for a
  full-scale uniform signal each extra bit halves Δ and adds ``20*log10(2) ≈ 6.02`` dB of SQNR.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_float_array, as_weights, check_axis, check_n_bits, check_same_shape


def _pair(x: ArrayLike, x_hat: ArrayLike) -> tuple[NDArray, NDArray]:
    xa = as_float_array(x, "x")
    xh = as_float_array(x_hat, "x_hat")
    check_same_shape(xa, xh, "x", "x_hat")
    return xa, xh


def _energy_db(a: NDArray, axis: int | tuple[int, ...] | None) -> NDArray[np.float64]:
    """``10*log10(sum(a**2))`` over ``axis``, scaled first so that no square under/overflows.

    With ``m = max|a|``: ``sum(a**2) = m**2 * sum((a/m)**2)`` and ``1 <= sum((a/m)**2) <= size``,
    so the logarithm is ``20*log10(m) + 10*log10(sum((a/m)**2))``; ``-inf`` for all zeros.
    """
    m = np.max(np.abs(a), axis=axis, keepdims=True)
    safe = np.where(m > 0, m, 1.0)
    scaled = np.sum((a / safe) ** 2, axis=axis)
    m = np.squeeze(m, axis=axis) if axis is not None else m.reshape(())
    with np.errstate(divide="ignore"):
        return np.where(
            m > 0,
            20.0 * np.log10(np.where(m > 0, m, 1.0))
            + 10.0 * np.log10(np.where(m > 0, scaled, 1.0)),
            -np.inf,
        )


def mse(
    x: ArrayLike,
    x_hat: ArrayLike,
    w: ArrayLike | None = None,
    *,
    axis: int | tuple[int, ...] | None = None,
) -> NDArray[np.float64]:
    """(Weighted) mean squared error ``mean(w * (x - x_hat)**2)``.

    Parameters
    ----------
    x, x_hat : array_like
        Original and reconstructed values, same shape.
    w : array_like, optional
        Non-negative importance weights, same shape as ``x``; default uniform (plain MSE).
    axis : int or tuple of int, optional
        Axis or axes to average over; default all.

    Returns
    -------
    ndarray of float64
        0-d when ``axis`` is None.

    Examples
    --------
    >>> float(mse([1.0, 2.0], [1.0, 1.0]))
    0.5
    >>> float(mse([1.0, 2.0], [1.0, 1.0], w=[1.0, 3.0]))
    1.5
    """
    xa, xh = _pair(x, x_hat)
    wa = as_weights(w, xa.shape)
    return np.mean(wa * (xa - xh) ** 2, axis=check_axis(axis, xa.ndim))


def sqnr_db(
    x: ArrayLike, x_hat: ArrayLike, *, axis: int | tuple[int, ...] | None = None
) -> NDArray[np.float64]:
    """Signal-to-quantization-noise ratio ``10*log10(sum(x**2) / sum((x - x_hat)**2))`` in dB.

    A perfect reconstruction (zero noise) has ``SQNR = +inf``; noise on an all-zero signal has
    ``SQNR = -inf``. Never NaN. Where a sum of squares would underflow (values near
    ``2**-540`` or a noise far below the signal), signal and noise are scaled by their largest
    magnitude before squaring and the ratio is formed in dB, so the result depends only on the
    ratio of the values, whatever their magnitude.

    Examples
    --------
    >>> round(float(sqnr_db([3.0, 4.0], [3.0, 3.9])), 2)
    33.98
    """
    xa, xh = _pair(x, x_hat)
    ax = check_axis(axis, xa.ndim)
    diff = xa - xh
    signal = np.sum(xa**2, axis=ax)
    noise = np.sum(diff**2, axis=ax)
    with np.errstate(divide="ignore"):
        ratio = np.where(noise > 0, signal / np.where(noise > 0, noise, 1.0), np.inf)
        plain = 10.0 * np.log10(ratio)
    # Where a sum of squares fell below the normal range (or to 0) although its values are not
    # all zero, the plain formula lost precision: use the scaled energies (results in dB).
    tiny = np.finfo(np.float64).tiny
    lost = ((signal < tiny) & (np.max(np.abs(xa), axis=ax) > 0)) | (
        (noise < tiny) & (np.max(np.abs(diff), axis=ax) > 0)
    )
    if not np.any(lost):
        return plain
    sig_db, noise_db = _energy_db(xa, ax), _energy_db(diff, ax)
    finite = np.isfinite(noise_db) & np.isfinite(sig_db)
    scaled = np.where(
        finite,
        sig_db - np.where(finite, noise_db, 0.0),
        np.where(np.isfinite(noise_db), -np.inf, np.inf),
    )
    return np.where(lost, scaled, plain)


def max_error(
    x: ArrayLike, x_hat: ArrayLike, *, axis: int | tuple[int, ...] | None = None
) -> NDArray[np.float64]:
    """Largest absolute error ``max|x - x_hat|``.

    Examples
    --------
    >>> float(max_error([1.0, 2.0], [1.5, 2.0]))
    0.5
    """
    xa, xh = _pair(x, x_hat)
    return np.max(np.abs(xa - xh), axis=check_axis(axis, xa.ndim))


def uniform_noise_mse(step: ArrayLike) -> NDArray[np.float64]:
    """The uniform-noise model of rounding error: ``Δ**2 / 12`` for step ``Δ``.

    Examples
    --------
    >>> float(uniform_noise_mse(1.0)) == 1 / 12
    True
    """
    d = as_float_array(step, "step")
    if np.any(d < 0):
        raise ValueError("step must be non-negative")
    return d**2 / 12.0


def uniform_sqnr_db(n_bits: int) -> float:
    """Model SQNR of a full-scale uniform signal on ``n_bits`` bits: ``20*n*log10(2)`` dB.

    A signal uniform on ``[-a, a]`` has power ``a**2/3``; with ``Δ = 2a / 2**n`` the noise power
    is ``Δ**2/12 = a**2 / (3 * 4**n)``, so the ratio is ``4**n``: about 6.02 dB per bit.

    Examples
    --------
    >>> round(uniform_sqnr_db(8), 2)
    48.16
    """
    n = check_n_bits(n_bits, 1, 64)
    return float(20.0 * n * np.log10(2.0))
