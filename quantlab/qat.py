"""Quantization-aware training with the straight-through estimator (SPEC item 13).

The forward pass uses *fake-quantized* weights ``ŵ = scale · (clip(round(w/scale) + zero, 0,
2**n - 1) - zero)`` (GPTQ's per-row grid), so the loss sees the rounding. ``round`` has zero
derivative almost everywhere, so the true gradient with respect to the latent float weights
``w`` is 0; the straight-through estimator (Bengio, Léonard and Courville 2013) replaces
``d round(u)/du`` by 1, which gives::

    ∂L/∂w ≈ ∂L/∂ŵ · 1[0 <= round(w/scale) + zero <= 2**n - 1]

(identity inside the clip range, zero outside; the mask is PyTorch's ``fake_quantize``
convention). With a learnable step size (LSQ, Esser et al. 2019) the scale is trained too; the
same rule applied to ``ŵ = scale · (clip(...) - zero)`` gives::

    ∂ŵ/∂scale = round(w/scale) - w/scale   inside the range,
              = -zero  or  2**n - 1 - zero  where clipped below or above,

scaled by LSQ's ``1 / sqrt(numel · (2**n - 1))`` per row. Training runs on the course's NumPy
MLP (:mod:`quantlab.mlp`), both weight matrices fake-quantized, biases in float.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_finite_float, as_float_array, check_bool, check_n_bits
from .gptq import dequantize_grid, grid_params, quantize_grid
from .mlp import DigitsMLP, _loss_and_gradients

__all__ = ["QATResult", "fake_quantize", "lsq_scale_gradient", "qat_train", "ste_gradient"]


def _codes_unclipped(w: NDArray, scale: NDArray, zero: NDArray) -> NDArray:
    return np.round(w / scale) + zero


def fake_quantize(w: ArrayLike, scale: ArrayLike, zero: ArrayLike, n_bits: int) -> NDArray:
    """``ŵ = scale · (clip(round(w/scale) + zero, 0, 2**n - 1) - zero)`` (parameters broadcast,
    e.g. shape (rows, 1) for one per row)."""
    return dequantize_grid(quantize_grid(w, scale, zero, n_bits), scale, zero)


def ste_gradient(
    w: ArrayLike, scale: ArrayLike, zero: ArrayLike, n_bits: int, grad: ArrayLike
) -> NDArray[np.float64]:
    """Straight-through gradient for the latent weights: ``grad`` where the unclipped code
    ``round(w/scale) + zero`` lies in ``[0, 2**n - 1]``, 0 where it is clipped.

    Examples
    --------
    >>> ste_gradient([-3.0, 0.2, 5.0], 1.0, 1, 2, [1.0, 1.0, 1.0])
    array([0., 1., 0.])
    """
    w = np.asarray(w, dtype=np.float64)
    t = _codes_unclipped(w, scale, zero)
    inside = (t >= 0) & (t <= 2**n_bits - 1)
    return np.where(inside, np.asarray(grad, dtype=np.float64), 0.0)


def lsq_scale_gradient(
    w: ArrayLike, scale: ArrayLike, zero: ArrayLike, n_bits: int, grad: ArrayLike
) -> NDArray[np.float64]:
    """LSQ's gradient for one scale per row: ``Σ_j grad_j · ∂ŵ_j/∂scale`` (module docstring),
    without LSQ's gradient-scale factor. ``w`` and ``grad`` are (rows, columns), ``scale`` and
    ``zero`` (rows, 1); returns (rows, 1)."""
    w = np.asarray(w, dtype=np.float64)
    maxq = 2**n_bits - 1
    u = w / scale
    t = np.round(u) + zero
    dw_ds = np.where(t < 0, -zero, np.where(t > maxq, maxq - zero, np.round(u) - u))
    return np.sum(np.asarray(grad) * dw_ds, axis=-1, keepdims=True)


@dataclass(frozen=True)
class QATResult:
    """Quantized weights after quantization-aware training, with the training curve.

    Attributes
    ----------
    W1, W2 : ndarray
        The fake-quantized (dequantized) weights to use in ``model.forward``.
    b1, b2 : ndarray
        The trained float biases.
    scales : tuple of ndarray
        The final per-row scales of W1 and W2 (shape (rows, 1)).
    loss : ndarray of shape (steps + 1,)
        Training loss of the quantized network before each step and after the last.
    accuracy : ndarray of shape (steps + 1,)
        Test accuracy of the quantized network at the same moments (entry 0 is
        round-to-nearest without training).
    """

    W1: NDArray[np.float64]
    b1: NDArray[np.float64]
    W2: NDArray[np.float64]
    b2: NDArray[np.float64]
    scales: tuple[NDArray[np.float64], NDArray[np.float64]]
    loss: NDArray[np.float64]
    accuracy: NDArray[np.float64]


def qat_train(
    model: DigitsMLP,
    n_bits: int = 2,
    *,
    steps: int = 100,
    lr: float = 0.02,
    momentum: float = 0.9,
    lsq: bool = False,
) -> QATResult:
    """Fine-tune the digits MLP with fake-quantized weights (STE; LSQ scales as an option).

    Full-batch gradient descent with momentum on the training images, from the trained float
    weights, on one BLAS thread (for products this small, threads only add overhead). Without
    ``lsq`` each step recomputes the per-row min/max grid of the latent weights; with
    ``lsq`` the grid's scale is initialised by min/max and then learned (zero-points stay).

    Parameters
    ----------
    model : DigitsMLP
        From :func:`quantlab.mlp.digits_mlp`; it is not changed.
    n_bits : int, default 2
    steps : int, default 100
    lr : float, default 0.02
    momentum : float, default 0.9
    lsq : bool, default False

    Returns
    -------
    QATResult
    """
    n = check_n_bits(n_bits, 2)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    lr = as_finite_float(lr, "lr")
    momentum = as_finite_float(momentum, "momentum")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    lsq = check_bool(lsq, "lsq")
    from threadpoolctl import threadpool_limits  # small products: one BLAS thread is faster

    with threadpool_limits(1):
        return _train(model, n, steps, lr, momentum, lsq)


def _fake(latent, scales, zeros, n):
    return [fake_quantize(w, s, z, n) for w, s, z in zip(latent, scales, zeros, strict=True)]


def _train(model: DigitsMLP, n: int, steps: int, lr: float, momentum: float, lsq: bool):
    data = model.data
    X = as_float_array(data.X_train, "model.data.X_train")
    Y = np.eye(model.W2.shape[0])[data.y_train]
    latent = [np.array(model.W1), np.array(model.W2)]
    biases = [np.array(model.b1), np.array(model.b2)]
    grids = [grid_params(w, n) for w in latent]
    scales = [s[:, None] for s, _ in grids]
    zeros = [z[:, None] for _, z in grids]
    maxq = 2**n - 1
    lsq_factor = [1 / np.sqrt(w.shape[1] * maxq) for w in latent]
    velocity = [np.zeros_like(p) for p in (*latent, *biases, *scales)]
    losses, accuracy = [], []
    for step in range(steps + 1):
        if not lsq:
            grids = [grid_params(w, n) for w in latent]
            scales = [s[:, None] for s, _ in grids]
            zeros = [z[:, None] for _, z in grids]
        W1h, W2h = _fake(latent, scales, zeros, n)
        loss, (g1, gb1, g2, gb2) = _loss_and_gradients([W1h, biases[0], W2h, biases[1]], X, Y)
        losses.append(loss)
        logits = np.maximum(data.X_test @ W1h.T + biases[0], 0) @ W2h.T + biases[1]
        accuracy.append(np.mean(logits.argmax(axis=1) == data.y_test))
        if step == steps:
            break
        grads = [
            ste_gradient(latent[0], scales[0], zeros[0], n, g1),
            ste_gradient(latent[1], scales[1], zeros[1], n, g2),
            gb1,
            gb2,
        ]
        if lsq:
            grads += [
                f * lsq_scale_gradient(w, s, z, n, g)
                for f, w, s, z, g in zip(lsq_factor, latent, scales, zeros, (g1, g2), strict=True)
            ]
        params = [*latent, *biases, *(scales if lsq else [])]
        for p, v, g in zip(params, velocity[: len(params)], grads, strict=True):
            v *= momentum
            v -= lr * g
            p += v
        if lsq:  # a scale must stay positive
            for s in scales:
                np.maximum(s, 1e-8, out=s)
    W1h, W2h = _fake(latent, scales, zeros, n)
    return QATResult(
        W1h,
        biases[0],
        W2h,
        biases[1],
        (scales[0].copy(), scales[1].copy()),
        np.array(losses),
        np.array(accuracy),
    )
