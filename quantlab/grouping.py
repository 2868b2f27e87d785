"""Per-tensor, per-channel and per-block parameters through one mechanism.

Every quantizer in quantlab works on a C-contiguous 2-D array ``(n_groups, group_size)`` holding
its input (a reshape, copied only when a channel axis other than the first requires it): each row
is one group that shares a scale (and offset). Parameters are reductions over the last axis of
that array, so per-channel and per-block quantization cost no Python loop, and each group's sums
are the same as those of the group quantized on its own:

- per-tensor (``channel_axis=None, block_size=None``): one group holding every value;
- per-channel (``channel_axis=k``): one group per index along axis ``k``;
- per-block (``block_size=B``): groups of ``B`` consecutive values along the last axis.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Grouping:
    """How the values of an array are grouped to share quantization parameters.

    Parameters
    ----------
    channel_axis : int or None
        One set of parameters per index along this axis (per-channel quantization).
    block_size : int or None
        One set of parameters per block of this many consecutive values along the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> g = Grouping(block_size=2)
    >>> g.to_groups(np.arange(8.0).reshape(2, 4)).shape
    (4, 2)
    >>> g.param_shape((2, 4))
    (2, 2)
    """

    channel_axis: int | None = None
    block_size: int | None = None

    def __post_init__(self) -> None:
        if self.channel_axis is not None and self.block_size is not None:
            raise ValueError("give channel_axis or block_size, not both")
        if self.channel_axis is not None and (
            isinstance(self.channel_axis, bool)
            or not isinstance(self.channel_axis, numbers.Integral)
        ):
            raise TypeError(f"channel_axis must be an integer, got {self.channel_axis!r}")
        if self.block_size is not None:
            if isinstance(self.block_size, bool) or not isinstance(
                self.block_size, numbers.Integral
            ):
                raise TypeError(f"block_size must be an integer, got {self.block_size!r}")
            if self.block_size < 1:
                raise ValueError(f"block_size must be positive, got {self.block_size}")

    # -- shapes -------------------------------------------------------------------------------
    def _axis(self, shape: tuple[int, ...]) -> int:
        ndim = len(shape)
        assert self.channel_axis is not None
        if not -ndim <= self.channel_axis < ndim:
            raise ValueError(f"channel_axis {self.channel_axis} is out of range for {ndim}-D x")
        return self.channel_axis % ndim

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError if an array of ``shape`` cannot be grouped this way."""
        if self.channel_axis is not None:
            if len(shape) == 0:
                raise ValueError("channel_axis needs an array with at least one dimension")
            self._axis(shape)
        if self.block_size is not None:
            if len(shape) == 0 or shape[-1] % self.block_size:
                last = shape[-1] if shape else 1
                raise ValueError(
                    f"the last axis of x (length {last}) must be a multiple of "
                    f"block_size={self.block_size}"
                )

    def param_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the parameter arrays for an input of ``shape``."""
        self.check(shape)
        if self.channel_axis is not None:
            return (shape[self._axis(shape)],)
        if self.block_size is not None:
            return (*shape[:-1], shape[-1] // self.block_size)
        return ()

    # -- values -------------------------------------------------------------------------------
    def to_groups(self, x: NDArray) -> NDArray:
        """``x`` as a C-contiguous ``(n_groups, group_size)`` array: one row per group.

        Each row holds its group's values in the order ``x[index of the group].ravel()`` gives,
        contiguous, so that a reduction over a row sums exactly as it would for that group alone
        (per-group results equal per-tensor results on each group, bit for bit).
        """
        self.check(x.shape)
        if self.channel_axis is not None:
            axis = self._axis(x.shape)
            rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        elif self.block_size is not None:
            rows = x.reshape(-1, self.block_size)
        else:
            rows = x.reshape(1, -1)
        return np.ascontiguousarray(rows)

    def from_groups(self, groups: NDArray, shape: tuple[int, ...]) -> NDArray:
        """Inverse of :meth:`to_groups`: put ``(n_groups, group_size)`` values back in ``shape``."""
        if self.channel_axis is not None:
            axis = self._axis(shape)
            moved = (shape[axis], *shape[:axis], *shape[axis + 1 :])
            return np.moveaxis(groups.reshape(moved), 0, axis)
        return groups.reshape(shape)

    def params_to_groups(self, p: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray:
        """Return parameter(s) ``p`` as a ``(n_groups, 1)`` column, broadcasting a scalar.

        Raises ValueError naming ``name`` when ``p`` has neither shape ``()`` nor the parameter
        shape of an input of ``shape``.
        """
        arr = np.asarray(p)
        expected = self.param_shape(shape)
        if arr.shape not in {(), expected}:
            hint = ""
            if expected == () and arr.ndim == 1:
                axes = [k for k, n in enumerate(shape) if n == arr.shape[0]]
                if axes:
                    column = tuple(n if k == axes[0] else 1 for k, n in enumerate(shape))
                    hint = (
                        f"; channel_axis is missing (per-channel parameters: pass "
                        f"channel_axis={axes[0]}, or give {name} the dimensions of the values, "
                        f"e.g. shape {column})"
                    )
            raise ValueError(
                f"{name} must be a scalar or have the parameter shape {expected}, got "
                f"{arr.shape}{hint}"
            )
        n_groups = int(np.prod(expected, dtype=np.int64))
        return np.broadcast_to(arr, expected).reshape(n_groups, 1)

    def params_from_groups(self, p: NDArray, shape: tuple[int, ...]) -> NDArray:
        """Put per-group values ``p`` (``(n_groups,)`` or ``(n_groups, 1)``) in parameter shape."""
        out = np.asarray(p).reshape(self.param_shape(shape))
        return out[()] if out.ndim == 0 else out
