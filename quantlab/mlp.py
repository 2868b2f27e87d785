"""The course's real model: a 64 → 128 → 10 ReLU network on scikit-learn's bundled digits.

Notebook 08 trains this network step by step (its gradient derived with sympy and checked by
finite differences). The later notebooks (K-quants, floating-point formats, GPTQ, quantized
inference) reuse the *same* trained weights through :func:`digits_mlp`, which repeats notebook
08's recipe exactly: the seeded split, He initialisation, 400 full-batch steps of gradient descent
with momentum 0.9 and learning rate 0.5, on one BLAS thread so that every sum is added in the same
order and the weights are reproducible to the last bit on a given machine.

The model, for a batch of images ``X`` (rows of 64 pixels scaled to [0, 1])::

    H = max(0, X W1ᵀ + b1)      hidden ReLU activations, (N, 128)
    Z = H W2ᵀ + b2              logits, (N, 10)

scikit-learn is needed only to load the data (it ships the 1797 images; nothing is downloaded);
it is imported when :func:`load_digits_split` is first called.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DigitsData", "DigitsMLP", "digits_mlp", "load_digits_split"]


@dataclass(frozen=True)
class DigitsData:
    """The digits images split as notebook 08 splits them (seed 8, 360 test images).

    Attributes
    ----------
    X_train, X_test : ndarray of shape (1437, 64) and (360, 64)
        Pixels scaled to [0, 1].
    y_train, y_test : ndarray of int
        The labels 0-9.
    """

    X_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    X_test: NDArray[np.float64]
    y_test: NDArray[np.int64]


@dataclass(frozen=True)
class DigitsMLP:
    """A trained two-layer network ``Z = max(0, X W1ᵀ + b1) W2ᵀ + b2``.

    Attributes
    ----------
    W1 : ndarray of shape (128, 64)
    b1 : ndarray of shape (128,)
    W2 : ndarray of shape (10, 128)
    b2 : ndarray of shape (10,)
    data : DigitsData
        The split the network was trained and is tested on.
    loss : float
        The training loss after the last step.
    """

    W1: NDArray[np.float64]
    b1: NDArray[np.float64]
    W2: NDArray[np.float64]
    b2: NDArray[np.float64]
    data: DigitsData
    loss: float

    def forward(
        self, X: ArrayLike, W1: ArrayLike | None = None, W2: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Hidden activations and logits, ``(H, Z)``, optionally with other weight matrices.

        Parameters
        ----------
        X : array_like of shape (N, 64)
            Images, pixels in [0, 1].
        W1, W2 : array_like, optional
            Replacements for the trained weight matrices (e.g. their quantized versions); the
            biases stay in float.
        """
        X = np.asarray(X, dtype=np.float64)
        W1 = self.W1 if W1 is None else np.asarray(W1, dtype=np.float64)
        W2 = self.W2 if W2 is None else np.asarray(W2, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != W1.shape[1]:
            raise ValueError(f"X must have shape (N, {W1.shape[1]}), got {X.shape}")
        H = np.maximum(X @ W1.T + self.b1, 0.0)
        return H, H @ W2.T + self.b2

    def logits(
        self, X: ArrayLike | None = None, W1: ArrayLike | None = None, W2: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """The logits ``Z`` of ``X`` (default: the test images)."""
        return self.forward(self.data.X_test if X is None else X, W1, W2)[1]

    def accuracy(self, W1: ArrayLike | None = None, W2: ArrayLike | None = None) -> float:
        """Test accuracy (fraction of the 360 test images classified right)."""
        return float(np.mean(self.logits(None, W1, W2).argmax(axis=1) == self.data.y_test))


def load_digits_split(seed: int = 8, n_test: int = 360) -> DigitsData:
    """scikit-learn's bundled digits, pixels scaled to [0, 1], split by a seeded permutation."""
    return _split(seed, n_test)[0]


def _split(seed: int, n_test: int) -> tuple[DigitsData, np.random.Generator]:
    from sklearn.datasets import load_digits  # the course extra; nothing is downloaded

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    return DigitsData(X[train], y[train], X[test], y[test]), rng


def _loss_and_gradients(
    params: list[NDArray[np.float64]], X: NDArray[np.float64], Y: NDArray[np.float64]
) -> tuple[float, list[NDArray[np.float64]]]:
    W1, b1, W2, b2 = params
    H = np.maximum(X @ W1.T + b1, 0.0)
    Z = H @ W2.T + b2
    Z = Z - Z.max(axis=1, keepdims=True)  # softmax is unchanged by a shift; no overflow
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(Y * np.log(P), axis=1))
    G = (P - Y) / len(X)
    GH = (G @ W2) * (H > 0)
    return float(loss), [GH.T @ X, GH.sum(axis=0), G.T @ H, G.sum(axis=0)]


@lru_cache(maxsize=1)
def _trained() -> DigitsMLP:
    from threadpoolctl import threadpool_limits

    data, rng = _split(8, 360)
    n_in, n_hidden, n_out = 64, 128, 10
    params = [
        rng.normal(0.0, np.sqrt(2 / n_in), (n_hidden, n_in)),  # W1, He initialisation
        np.zeros(n_hidden),
        rng.normal(0.0, np.sqrt(1 / n_hidden), (n_out, n_hidden)),  # W2
        np.zeros(n_out),
    ]
    Y = np.eye(n_out)[data.y_train]
    velocity = [np.zeros_like(p) for p in params]
    loss = float("nan")
    with threadpool_limits(1):
        for _ in range(400):
            loss, grads = _loss_and_gradients(params, data.X_train, Y)
            for p, v, g in zip(params, velocity, grads, strict=True):
                v *= 0.9
                v -= 0.5 * g
                p += v
    for p in params:
        p.setflags(write=False)
    return DigitsMLP(*params, data=data, loss=loss)


def digits_mlp() -> DigitsMLP:
    """The network notebook 08 trains, with the same weights (computed once, then cached).

    Returns
    -------
    DigitsMLP
        Read-only weights; copy them before changing them.

    Examples
    --------
    >>> model = digits_mlp()
    >>> model.W1.shape, model.W2.shape
    ((128, 64), (10, 128))
    >>> print(f"{model.accuracy():.3f}")
    0.967
    """
    return _trained()
