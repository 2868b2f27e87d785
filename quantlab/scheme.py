"""The "min" convention of weight formats (llama.cpp style, SPEC item 4), on groups of values.

Symmetric (``use_min=False``): ``m`` is the value of largest magnitude *with its sign*::

    d = m / -2**(n-1)          # m lands exactly on the code -2**(n-1): the full code range is used
    q = clip(round(x / d), -2**(n-1), 2**(n-1) - 1)
    x_hat = d * q

With a minimum (``use_min=True``), a float offset rather than an integer zero-point::

    scale = (max(x) - min(x)) / (2**n - 1),  min = min(x)
    l = clip(round((x - min) / scale), 0, 2**n - 1)
    x_hat = scale * l + min

An ``offset`` widens the range before the scale is computed: ``|m| + offset`` or
``max - min + offset`` (SPEC item 7). A zero scale (an all-zero or constant group) gives codes 0
and ``x_hat = 0`` or ``min``: exact for those groups.

The functions here work on ``(n_groups, group_size)`` arrays with ``(n_groups, 1)`` parameters, or
with one more leading axis of candidates; :class:`quantlab.Quantizer` is the public face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import lstsq


@dataclass(frozen=True)
class Scheme:
    """Code range and formulas of the min convention for ``n_bits`` (validated by the caller)."""

    n_bits: int
    use_min: bool

    @property
    def qmin(self) -> int:
        """Smallest code: ``0`` with a minimum, else ``-2**(n-1)``."""
        return 0 if self.use_min else -(2 ** (self.n_bits - 1))

    @property
    def qmax(self) -> int:
        """Largest code: ``2**n - 1`` with a minimum, else ``2**(n-1) - 1``."""
        return 2**self.n_bits - 1 if self.use_min else 2 ** (self.n_bits - 1) - 1

    def data_range(self, xg: NDArray) -> NDArray:
        """The range the offset is added to: ``|m|`` or ``max - min`` per group, ``(G, 1)``."""
        if self.use_min:
            return xg.max(axis=-1, keepdims=True) - xg.min(axis=-1, keepdims=True)
        return np.abs(xg).max(axis=-1, keepdims=True)

    def initial(self, xg: NDArray, offset: NDArray) -> tuple[NDArray, NDArray | None, NDArray]:
        """Parameters from the (widened) range: ``(scale, min, valid)``.

        ``offset`` broadcasts against ``(G, 1)`` (e.g. ``(G, K)`` for K candidates). ``valid`` is
        False where the offset makes the range negative; the scale there is set to 0.
        """
        width = self.data_range(xg) + offset
        valid = width >= 0
        width = np.where(valid, width, 0.0)
        if self.use_min:
            return (
                width / self.qmax,
                np.broadcast_to(xg.min(axis=-1, keepdims=True), width.shape),
                valid,
            )
        idx = np.argmax(np.abs(xg), axis=-1)[..., None]
        sign = np.sign(np.take_along_axis(xg, idx, axis=-1))
        return sign * width / self.qmin, None, valid

    def round(self, xg: NDArray, scale: NDArray, minimum: NDArray | None) -> NDArray:
        """Nearest codes in range; a zero scale gives code 0."""
        shifted = xg if minimum is None else xg - minimum
        safe = np.where(scale != 0, scale, 1.0)
        q = np.where(scale != 0, np.round(shifted / safe), 0.0)
        return np.clip(q, self.qmin, self.qmax).astype(np.int64)

    def dequantize(self, qg: NDArray, scale: NDArray, minimum: NDArray | None) -> NDArray:
        """``d*q`` or ``scale*l + min``."""
        x_hat = scale * qg
        return x_hat if minimum is None else x_hat + minimum

    def refit(self, xg: NDArray, qg: NDArray, wg: NDArray) -> tuple[NDArray, NDArray | None]:
        """(Weighted) least-squares parameters for fixed codes, ``(G, 1)`` columns."""
        qf = qg.astype(np.float64)
        if self.use_min:
            return lstsq.scale_min_groups(xg, qf, wg)
        return lstsq.scale_groups(xg, qf, wg), None

    def error(
        self, xg: NDArray, qg: NDArray, scale: NDArray, minimum: NDArray | None, wg: NDArray
    ) -> NDArray:
        """Weighted MSE per group (last axis averaged)."""
        return np.mean(wg * (xg - self.dequantize(qg, scale, minimum)) ** 2, axis=-1)
