"""The public quantizer of the "min" convention (SPEC items 4-7): quantize, refit, search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import search as _search
from ._validation import (
    as_codes,
    as_finite_float,
    as_float_array,
    as_float_data,
    as_weight_data,
    as_weights,
    check_bool,
    check_code_range,
    check_n_bits,
    check_same_shape,
)
from .grouping import Grouping
from .scheme import Scheme
from .table import Table

METHODS = ("round", "refit", "search", "refine", "optimum")


class _Deferred:
    """A dataclass field that may be given as a function of no arguments, called (once) when the
    field is first read: the dequantized values cost a pass over the data and a fresh array,
    which a caller that only needs the codes and parameters should not pay for."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = "_" + name

    def __get__(self, obj: object, objtype: type | None = None) -> NDArray:
        if obj is None:
            raise AttributeError(self.key)  # no default value
        value = obj.__dict__[self.key]
        if callable(value):
            value = obj.__dict__[self.key] = value()
        return value

    def __set__(self, obj: object, value: NDArray | Callable[[], NDArray]) -> None:
        obj.__dict__[self.key] = value


@dataclass
class QuantResult:
    """Codes and parameters chosen by one method, with their (weighted) error.

    Attributes
    ----------
    q : ndarray of int64
        Codes, shape of x.
    scale : ndarray
        Scale ``d`` (symmetric) or ``scale`` (with a minimum); 0-d or the parameter shape.
    min : ndarray or None
        The float offset (``use_min=True``), else None.
    error : ndarray
        Weighted MSE ``mean(w * (x - x_hat)**2)`` per group (0-d for per-tensor).
    x_hat : ndarray
        The dequantized values (computed when first read; may be given as a function).
    method : str
        How the parameters were chosen.
    table : Table or None
        Grid search only: one row per candidate (offset, refitted parameters, error before and
        after the refit; the chosen row is marked).
    n_iter : int or None
        Refinement only: the number of refits.
    """

    q: NDArray[np.int64]
    scale: NDArray[np.float64]
    min: NDArray[np.float64] | None
    error: NDArray[np.float64]
    x_hat: NDArray[np.float64] = _Deferred()  # type: ignore[assignment]
    method: str
    table: Table | None = field(default=None, repr=False)
    n_iter: int | None = None


def group_caption(n_groups: int, errors: NDArray) -> str:
    """The caption of a multi-group search table: what its rows aggregate, and that each group
    keeps its own best candidate (``errors`` are the groups' own best errors)."""
    return (
        f"Rows: mean error over {n_groups} groups per candidate (* = the best row for all "
        "groups at once). Each group keeps its own best (n_best = groups choosing that row): "
        f"result.error.mean() = {float(np.mean(errors)):.4g}"
    )


class _CandidateTable(Table):
    """The default search's table, computed in float64 when it is first looked at.

    The search compares its candidates in float32 (fast) and keeps none of them; when the table
    is first read it runs the search again recording them (the same code on the same data: the
    same choices), then re-evaluates each one exactly (round with the candidate's parameters,
    refit, both errors), so that its rows obey "a refit never hurts" to the last digit.
    Columns: ``offset`` (the candidate's scale before refit relative to min/max rounding's,
    minus 1: ``scale0 * qmax / range - 1``), per-tensor ``scale`` (and ``min``) after refit,
    ``error_before``, ``error_after``; multi-group rows are means over the groups. The last
    row is the polish (rounding at the best candidate's refitted parameters, refitted again);
    the chosen row is marked.
    """

    def __init__(self, scheme: Scheme, xg: NDArray, wg: NDArray | None, error: NDArray) -> None:
        self.digits = 4
        self._args = (scheme, xg, wg)
        self._cache: tuple[dict[str, NDArray], int] | None = None
        self.caption = group_caption(xg.shape[0], error) if xg.shape[0] > 1 else None

    def _compute(self) -> tuple[dict[str, NDArray], int]:
        if self._cache is None:
            scheme, xg, wg = self._args
            # The search again, recording its candidates (the same choices: the same code).
            out = _search.code_search(scheme, xg, wg, record=True)
            xg = np.asarray(xg, np.float64)  # float32 data is kept as float32 (exact)
            wg = np.ones_like(xg) if wg is None else np.asarray(wg, np.float64)
            ev = _search.candidate_errors(scheme, xg, wg, out["scale_round"], out["min_round"])
            after = ev["after"]
            after[:, -1] = out["polish_error"]  # the polish, as the search computed it
            best = int(np.argmin(after.mean(axis=0)))
            cols: dict[str, NDArray] = {"offset": out["offset_rel"].mean(axis=0)}
            if xg.shape[0] == 1:
                best = int(out["best"][0])
                after[0, best] = out["error"][0]
                cols["scale"] = ev["scale"][0]
                cols["scale"][-1] = out["polish_scale"][0]
                if scheme.use_min:
                    cols["min"] = ev["min"][0]
                    cols["min"][-1] = out["polish_min"][0]
            cols["error_before"] = ev["before"].mean(axis=0)
            cols["error_after"] = after.mean(axis=0)
            if xg.shape[0] > 1:  # the rows aggregate groups; each group chose its own best
                cols["n_best"] = np.bincount(out["best"], minlength=after.shape[1])
            self._cache = (cols, best)
            self._args = None  # the data is no longer needed
        return self._cache

    @property
    def _columns(self) -> dict[str, NDArray]:  # type: ignore[override]
        return self._compute()[0]

    @property
    def best(self) -> int:  # type: ignore[override]
        return self._compute()[1]


class Quantizer:
    """n-bit quantizer of the llama.cpp "min" convention, per tensor, channel or block.

    Symmetric (``use_min=False``): ``d = m / -2**(n-1)`` where ``m`` is the value of largest
    magnitude with its sign, ``q = clip(round(x/d), -2**(n-1), 2**(n-1) - 1)``, ``x_hat = d*q``.

    With a minimum (``use_min=True``): ``scale = (max - min) / (2**n - 1)``,
    ``l = clip(round((x - min)/scale), 0, 2**n - 1)``, ``x_hat = scale*l + min``.

    Parameters
    ----------
    n_bits : int, default 8
        Bit width, 2 to 16.
    use_min : bool, default False
        Store a float minimum with the scale.
    channel_axis : int, optional
        One set of parameters per index along this axis.
    block_size : int, optional
        One set of parameters per block of this many values along the last axis.

    Examples
    --------
    >>> from quantlab.data import X_EXAMPLE
    >>> q, d, _ = Quantizer(4).quantize(X_EXAMPLE)
    >>> q
    array([ 6, -1, -4, -6, -8,  4,  0,  3])
    >>> float(d)
    1.00325134625
    """

    def __init__(
        self,
        n_bits: int = 8,
        use_min: bool = False,
        *,
        channel_axis: int | None = None,
        block_size: int | None = None,
    ) -> None:
        self.n_bits = check_n_bits(n_bits, 2)
        self.use_min = check_bool(use_min, "use_min")
        self.grouping = Grouping(channel_axis, block_size)
        self.scheme = Scheme(self.n_bits, self.use_min)

    def __repr__(self) -> str:
        g = self.grouping
        extra = "".join(
            f", {k}={v}"
            for k, v in (("channel_axis", g.channel_axis), ("block_size", g.block_size))
            if v is not None
        )
        return f"Quantizer(n_bits={self.n_bits}, use_min={self.use_min}{extra})"

    # -- helpers ------------------------------------------------------------------------------
    def _groups(self, x: ArrayLike, w: ArrayLike | None = None):
        xa = as_float_array(x, "x")
        wa = as_weights(w, xa.shape)
        g = self.grouping
        return xa, g.to_groups(xa), g.to_groups(wa)

    def _out(self, p: NDArray | None, shape: tuple[int, ...]) -> NDArray | None:
        return None if p is None else self.grouping.params_from_groups(p, shape)

    def _result(self, x, xg, wg, q, scale, minimum, method, error=None, **extra) -> QuantResult:
        g = self.grouping
        if error is None:
            error = self.scheme.error(xg, q, scale, minimum, wg)

        def x_hat() -> NDArray:  # scale*q + min, when first read
            return g.from_groups(self.scheme.dequantize(q, scale, minimum), x.shape)

        return QuantResult(
            q=g.from_groups(q, x.shape),
            scale=self._out(scale, x.shape),
            min=self._out(minimum, x.shape),
            error=self._out(error, x.shape),
            x_hat=x_hat,
            method=method,
            **extra,
        )

    # -- the fixed API ------------------------------------------------------------------------
    def quantize(
        self, x: ArrayLike, offset: float = 0.0
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64] | None]:
        """Round ``x`` with the min/max range widened by ``offset``: ``(q, scale, min)``.

        Parameters
        ----------
        x : array_like
            Values to quantize.
        offset : float, default 0.0
            Added to the range (``|m|`` or ``max - min``, in units of x) before the scale is
            computed.

        Returns
        -------
        q : ndarray of int64
        scale : ndarray of float64
            ``d`` (symmetric, may be negative) or ``scale``; 0 for an all-zero/constant group.
        min : ndarray of float64 or None
            None when ``use_min`` is False.
        """
        off = as_finite_float(offset, "offset")
        xa, xg, _ = self._groups(x)
        scale, minimum, valid = self.scheme.initial(xg, np.full((xg.shape[0], 1), off))
        if not np.all(valid):
            raise ValueError(f"offset={off} makes the range negative")
        q = self.scheme.round(xg, scale, minimum)
        g = self.grouping
        return g.from_groups(q, xa.shape), self._out(scale, xa.shape), self._out(minimum, xa.shape)

    def dequantize(
        self, q: ArrayLike, scale: ArrayLike, min: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """Map codes back: ``x_hat = d*q`` or ``scale*l + min``.

        Parameters
        ----------
        q : array_like of int
            Codes in the code range: ``[-2**(n-1), 2**(n-1) - 1]``, or ``[0, 2**n - 1]`` with
            ``use_min`` (a ValueError otherwise).
        scale : array_like
            Scalar or the parameter shape.
        min : array_like, optional
            Required when ``use_min`` is True, ignored (must be None) otherwise.

        Returns
        -------
        x_hat : ndarray of float64
        """
        codes = as_codes(q, "q")
        sc = self.scheme
        check_code_range(
            codes, sc.qmin, sc.qmax, "q", f"n_bits={self.n_bits}, use_min={self.use_min}"
        )
        g = self.grouping
        s = g.params_to_groups(as_float_array(scale, "scale"), codes.shape, "scale")
        if self.use_min and min is None:
            raise ValueError("min is required when use_min=True")
        if not self.use_min and min is not None:
            raise ValueError("min must be None when use_min=False")
        m = (
            None
            if min is None
            else g.params_to_groups(as_float_array(min, "min"), codes.shape, "min")
        )
        return g.from_groups(self.scheme.dequantize(g.to_groups(codes), s, m), codes.shape)

    def refit(
        self, x: ArrayLike, q: ArrayLike, w: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Least-squares parameters for fixed codes: ``(scale, min)``; min is None if symmetric.

        Symmetric: ``d = sum(w*x*q) / sum(w*q**2)``. With a minimum: the weighted 2x2 normal
        equations (see :func:`quantlab.lstsq_scale_min`). Never increases the error for the same
        codes.
        """
        xa, xg, wg = self._groups(x, w)
        codes = as_codes(q, "q")
        check_same_shape(xa, codes, "x", "q")
        scale, minimum = self.scheme.refit(xg, self.grouping.to_groups(codes), wg)
        return self._out(scale, xa.shape), self._out(minimum, xa.shape)

    def error(
        self,
        x: ArrayLike,
        q: ArrayLike,
        scale: ArrayLike,
        min: ArrayLike | None = None,
        w: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Weighted MSE ``mean(w * (x - x_hat)**2)`` per group for given codes and parameters."""
        xa, xg, wg = self._groups(x, w)
        x_hat = self.dequantize(q, scale, min)
        check_same_shape(xa, x_hat, "x", "q")
        err = np.mean(wg * (xg - self.grouping.to_groups(x_hat)) ** 2, axis=1)
        return self._out(err, xa.shape)

    def search(
        self,
        x: ArrayLike,
        w: ArrayLike | None = None,
        *,
        offsets: ArrayLike | None = None,
        relative: bool = True,
    ) -> QuantResult:
        """Grid search over range offsets with a (weighted) least-squares refit of each candidate.

        For each offset: widen the range by it, round, refit the parameters for those codes,
        and measure the weighted error; keep the best candidate of each group.

        Parameters
        ----------
        x : array_like
            Values to quantize.
        w : array_like, optional
            Non-negative importance weights, shape of x.
        offsets : array_like, optional
            A grid of range offsets. Default with ``relative``: quantlab's search in code units
            (:func:`quantlab.search.code_search`: llama.cpp's grids, the minimum following the
            best candidate, a float64 polish; at least as good as llama.cpp's heuristics).
            Given with ``relative``: fractions of each group's range (e.g.
            :data:`quantlab.DEFAULT_RELATIVE_OFFSETS`, -0.25 ... 0.25). Default without:
            the reference grid :data:`quantlab.REFERENCE_OFFSETS` (-1.0, -0.9, ..., 1.0).
        relative : bool, default True
            Scale-invariant grids (code units or fractions of the range). With False the
            offsets are in units of x, as in the reference table.

        Returns
        -------
        QuantResult
            With ``.table``: one row per candidate (per-tensor: offset, refitted scale/min, error
            before and after refit; per group: offset, mean errors over the groups and
            ``n_best``, the number of groups whose own best is that offset — the table's
            caption says so, and that ``.error`` holds each group's own best). The default
            search's offset is its scale before refit relative to min/max rounding's, minus 1,
            its last row the polish, and its table is evaluated in float64 when first read.
        """
        relative = check_bool(relative, "relative")
        default = offsets is None and relative
        # The default search converts its chunks to float64 itself: float32 data stays float32.
        xa = as_float_data(x, "x") if default else as_float_array(x, "x")
        xg = self.grouping.to_groups(xa)
        check = as_weight_data if default else as_weights  # float32 weights: as the data
        wg = None if w is None else self.grouping.to_groups(check(w, xa.shape))
        if default:
            out = _search.code_search(self.scheme, xg, wg)
            table: Table = _CandidateTable(self.scheme, xg, wg, out["error"])
        else:
            if offsets is None:
                grid = _search.REFERENCE_OFFSETS
            else:
                grid = as_float_array(offsets, "offsets").ravel()
            wg = np.ones_like(xg) if wg is None else wg
            out = _search.grid_search(self.scheme, xg, wg, np.asarray(grid, float), relative)
            best = int(np.argmin(out["error_after"].mean(axis=0)))
            cols: dict[str, NDArray] = {"offset": np.asarray(grid, float)}
            if xg.shape[0] == 1:
                best = int(np.argmin(out["error_after"][0]))
                cols["scale"] = out["scale_after"][0]
                if self.use_min:
                    cols["min"] = out["min_after"][0]
            cols["error_before"] = out["error_before"].mean(axis=0)
            cols["error_after"] = out["error_after"].mean(axis=0)
            caption = None
            if xg.shape[0] > 1:  # the rows aggregate groups; the choice is made per group
                cols["n_best"] = np.bincount(
                    np.argmin(out["error_after"], axis=1), minlength=len(cols["offset"])
                )
                caption = group_caption(xg.shape[0], out["error"])
            # The chosen candidate's error as the table computed it: .error equals its best row.
            table = Table(cols, best=best, caption=caption)
        q, scale, minimum, error = out["q"], out["scale"], out["min"], out["error"]
        return self._result(xa, xg, wg, q, scale, minimum, "search", error=error, table=table)

    def refine(
        self, x: ArrayLike, w: ArrayLike | None = None, *, max_iter: int = 100
    ) -> QuantResult:
        """Alternate (weighted) refit and rounding, from min/max rounding, until codes settle.

        Each refit is optimal for its codes and each rounding is optimal for its parameters, so
        the error never increases; ``n_iter`` reports the number of refits.
        """
        if (
            isinstance(max_iter, bool)
            or not isinstance(max_iter, (int, np.integer))
            or max_iter < 1
        ):
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        xa, xg, wg = self._groups(x, w)
        q, scale, minimum, n_iter = _search.refine(self.scheme, xg, wg, max_iter)
        return self._result(xa, xg, wg, q, scale, minimum, "refine", n_iter=n_iter)

    def optimum(
        self, x: ArrayLike, w: ArrayLike | None = None, *, exact: bool = False
    ) -> QuantResult:
        """The optimum of the (weighted) parameters with round-to-nearest codes.

        Symmetric: every breakpoint where a code changes as the scale varies, in the part of
        the scale axis that exact bounds leave open, is visited and each code assignment
        refitted by least squares; the best is the global minimum of ``sum(w * (x - d*q)**2)``
        over ``d`` (always exact; see :func:`quantlab.search.optimum`: about 0.25-0.35 s per
        million values at 4 bits and 1.0-1.4 s at 8 on blocks of 32, one core).

        With a minimum (``use_min``): for each trial scale every minimum is visited exactly (a
        1-D breakpoint sweep, each code assignment refitted in ``scale`` and ``min``); the trial
        scales are :data:`quantlab.search.OPTIMUM_MIN_STEPS` (within 0.05 % of the global
        optimum: tested at 2 bits on blocks of 32, 3 bits on blocks of 16, 4 bits on blocks of
        8), or with ``exact=True`` one in each interval between the scales where two breakpoints
        cross: the global minimum (slow: ``O(N**2 * 2**n)`` trial scales, for small groups).
        """
        exact = check_bool(exact, "exact")
        xa, xg, wg = self._groups(x, w)
        if self.use_min:
            out = _search.optimum_min(self.scheme, xg, wg, exact=exact)
            return self._result(xa, xg, wg, out["q"], out["scale"], out["min"], "optimum")
        q, d = _search.optimum(self.scheme, xg, wg)
        return self._result(xa, xg, wg, q, d, None, "optimum")

    def fit(
        self, x: ArrayLike, w: ArrayLike | None = None, method: str = "search", **kwargs
    ) -> QuantResult:
        """Choose codes and parameters by ``method`` and return a :class:`QuantResult`.

        Parameters
        ----------
        x : array_like
            Values to quantize.
        w : array_like, optional
            Importance weights (ignored by ``"round"``, whose parameters come from the range).
        method : {"round", "refit", "search", "refine", "optimum"}
            ``"round"``: min/max rounding; ``"refit"``: the same codes with least-squares
            parameters; the others as :meth:`search`, :meth:`refine` and :meth:`optimum`.
        **kwargs
            Passed to the method (e.g. ``offsets``, ``relative``, ``max_iter``); ``"round"`` and
            ``"refit"`` take none (TypeError).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method in {"search", "refine", "optimum"}:
            return getattr(self, method)(x, w, **kwargs)
        if kwargs:
            raise TypeError(f"method {method!r} takes no keyword arguments, got {sorted(kwargs)}")
        xa, xg, wg = self._groups(x, w)
        scale, minimum, _ = self.scheme.initial(xg, np.zeros((xg.shape[0], 1)))
        q = self.scheme.round(xg, scale, minimum)
        if method == "refit":
            scale, minimum = self.scheme.refit(xg, q, wg)
        return self._result(xa, xg, wg, q, scale, minimum, method)
