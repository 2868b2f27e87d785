"""Choosing the parameters better than min/max rounding (SPEC item 7).

Three methods, each vectorized over groups (rows of a ``(n_groups, group_size)`` array):

- :func:`grid_search`: try a grid of range offsets, round, refit by (weighted) least squares and
  keep the candidate with the lowest (weighted) error. The reference grid is absolute
  (``-1.0, -0.9, ..., +1.0`` in units of x), meaningless for data whose range is 0.01 or 1000, so
  the default grid is relative: offsets are fractions of each group's own range.
- :func:`refine`: alternate rounding and refitting until the codes stop changing. Each step can
  only lower the error: a refit is optimal for its codes, and rounding to the nearest level is
  optimal for its parameters.
- :func:`optimum`: the exact optimum of the symmetric scale. As ``t = 1/d`` grows, code ``q_j``
  changes only at the breakpoints ``t = (k + 1/2) / |x_j|``; between two breakpoints the codes are
  fixed and the best ``d`` is the least-squares ``sum(w*x*q) / sum(w*q**2)``, with error
  ``sum(w*x**2) - sum(w*x*q)**2 / sum(w*q**2)``. Sorting all breakpoints and accumulating the two
  sums gives every assignment's refitted error at once; the best one (and the mirror image for a
  negative ``d``) is the global minimum of the error over ``d``. It is the yardstick every other
  method is measured against.

Memory: the candidates of many groups are processed together; groups are taken in chunks of
about ``CHUNK_ELEMENTS`` array elements so that large tensors fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from .lstsq import _refit_weights as selection_weights
from .scheme import Scheme

#: The reference grid (absolute, in units of x): -1.0, -0.9, ..., +1.0.
REFERENCE_OFFSETS = np.arange(-10, 11) / 10
#: quantlab's default grid, relative to each group's range: -25 % ... +25 % in steps of 2.5 %.
DEFAULT_RELATIVE_OFFSETS = np.arange(-10, 11) / 40

#: Rough number of array elements processed at once.
CHUNK_ELEMENTS = 1 << 23

REFERENCE_OFFSETS.setflags(write=False)
DEFAULT_RELATIVE_OFFSETS.setflags(write=False)


def _chunked(n_groups: int, per_group: int, fn: Callable[[slice], dict]) -> dict:
    """Call ``fn`` on slices of groups so each call touches about CHUNK_ELEMENTS elements."""
    step = max(1, CHUNK_ELEMENTS // max(per_group, 1))
    parts = [fn(slice(i, i + step)) for i in range(0, n_groups, step)]
    if len(parts) == 1:
        return parts[0]
    return {
        k: None if parts[0][k] is None else np.concatenate([p[k] for p in parts]) for k in parts[0]
    }


def _reported(err_sel: NDArray, wg: NDArray) -> NDArray:
    """Errors chosen with ``w / max(w)`` (selection weights), reported with the real weights.

    Multiplying back by ``max(w)`` gives ``mean(w * (x - x_hat)**2)``; 0 if all weights are 0.
    """
    top = wg.max(axis=-1)
    top = top.reshape(top.shape + (1,) * (err_sel.ndim - 1))
    return np.where(top > 0, err_sel * np.where(top > 0, top, 1.0), 0.0)


def _unit(xg: NDArray) -> NDArray:
    """Per-group power of two ``2**e`` with ``max|x| / 2**e`` in ``[0.5, 1)`` (1 if all zero).

    The methods choose on ``x / 2**e``: an exact scaling, so the choice is the same bit for bit,
    while the squared errors of tiny values (``|x| < 1e-154``) no longer underflow to ties.
    """
    _, e = np.frexp(np.abs(xg).max(axis=-1, keepdims=True))
    return np.ldexp(1.0, e)


def _in_units(err: NDArray, unit: NDArray) -> NDArray:
    """Errors of ``x / unit`` back in units of x (``inf`` marks an invalid candidate)."""
    finite = np.isfinite(err)
    return np.where(finite, np.where(finite, err, 0.0) * (unit * unit), err)


def grid_search(scheme: Scheme, xg: NDArray, wg: NDArray, offsets: NDArray, relative: bool) -> dict:
    """Grid search with refit over ``(G, M)`` groups and ``K`` offsets.

    Returns a dict with ``q`` (G, M), ``scale``/``min`` (G, 1), ``error`` (G,), and per candidate
    ``offset_abs`` (G, K), ``error_before``/``error_after`` (G, K), ``scale_after``/``min_after``
    (G, K).
    """
    n_groups, size = xg.shape
    k = len(offsets)

    def run(sl: slice) -> dict:
        unit = _unit(xg[sl])  # (g, 1)
        x, w = xg[sl] / unit, wg[sl]
        wsel = selection_weights(w)
        g = x.shape[0]
        off = offsets[None, :] * (scheme.data_range(x) if relative else 1.0 / unit)  # (g, K)
        scale0, min0, valid = scheme.initial(x, off)
        x3, w3 = x[:, None, :], wsel[:, None, :]
        m0 = None if min0 is None else min0[..., None]
        q = scheme.round(x3, scale0[..., None], m0)  # (g, K, M)
        before = scheme.error(x3, q, scale0[..., None], m0, w3)
        flat_x = np.broadcast_to(x3, q.shape).reshape(-1, size)
        flat_w = np.broadcast_to(w3, q.shape).reshape(-1, size)
        s1, m1 = scheme.refit(flat_x, q.reshape(-1, size), flat_w)
        s1 = s1.reshape(g, k, 1)
        m1 = None if m1 is None else m1.reshape(g, k, 1)
        after = scheme.error(x3, q, s1, m1, w3)
        before = np.where(valid, before, np.inf)
        after = np.where(valid, after, np.inf)
        if np.any(np.all(~valid, axis=1)):
            raise ValueError("offsets make the range negative for every candidate of a group")
        best = np.argmin(after, axis=1)
        rows = np.arange(g)
        return {
            "q": q[rows, best],
            "scale": s1[rows, best] * unit,
            "min": None if m1 is None else m1[rows, best] * unit,
            "error": _in_units(_reported(after[rows, best], w), unit[:, 0]),
            "offset_abs": np.broadcast_to(off * unit, (g, k)),
            "error_before": _in_units(_reported(before, w), unit),
            "error_after": _in_units(_reported(after, w), unit),
            "scale_after": s1[..., 0] * unit,
            "min_after": None if m1 is None else m1[..., 0] * unit,
        }

    return _chunked(n_groups, k * size, run)


def refine(
    scheme: Scheme, xg: NDArray, wg: NDArray, max_iter: int = 100
) -> tuple[NDArray, NDArray, NDArray | None, int]:
    """Alternate refitting and rounding from min/max rounding until the codes stop changing.

    Returns ``(q, scale, min, n_iter)`` with ``(G, 1)`` parameters least-squares optimal for
    ``q``. ``n_iter`` counts refits (the largest over the groups).
    """
    wsel = selection_weights(wg)
    unit = _unit(xg)
    xg = xg / unit  # chosen on x / 2**e, returned in units of x
    scale, minimum, _ = scheme.initial(xg, np.zeros((xg.shape[0], 1)))
    q = scheme.round(xg, scale, minimum)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        scale, minimum = scheme.refit(xg, q, wsel)
        q_new = scheme.round(xg, scale, minimum)
        # Keep the new codes only where they really lower the error (guards against ties).
        better = scheme.error(xg, q_new, scale, minimum, wsel) < scheme.error(
            xg, q, scale, minimum, wsel
        )
        if not np.any(better):
            break
        q = np.where(better[:, None], q_new, q)
    scale, minimum = scheme.refit(xg, q, wsel)
    # Zero-weight values move neither the error nor the refit: give them the nearest code too,
    # so that rounding with the returned parameters reproduces every returned code.
    q = np.where(wsel > 0, q, scheme.round(xg, scale, minimum))
    return q, scale * unit, None if minimum is None else minimum * unit, n_iter


def _best_scales(xg: NDArray, wg: NDArray, n_bits: int) -> tuple[NDArray, NDArray]:
    """Best ``d > 0`` and best ``d < 0`` over all code assignments in ``[-2**(n-1), 2**(n-1) - 1]``.

    As ``t = 1/|d|`` grows, the code of ``x_j`` steps at the breakpoints ``(k + 1/2) / |x_j|``.
    Both signs of ``d`` share those breakpoints (they differ only in which element may take the
    extra negative code), so they are sorted once; each sign then accumulates its own steps.

    Returns ``(d, err)``, each ``(g, 2)``: column 0 for ``d > 0``, column 1 for ``d < 0``, ``err``
    being the refitted error sum (not yet averaged).
    """
    g = xg.shape[0]
    steps = 2 ** (n_bits - 1)  # at most this many code changes per element
    ax = np.abs(xg)[..., None]  # (g, M, 1)
    k = np.arange(steps)[None, None, :]  # (1, 1, K)
    with np.errstate(over="ignore"):  # a breakpoint beyond the float range is never reached
        t = np.where(ax > 0, (k + 0.5) / np.where(ax > 0, ax, 1.0), np.inf)
    order = np.argsort(t.reshape(g, -1), axis=1)
    shape = (g, xg.shape[1], steps)
    wax = np.broadcast_to(wg[..., None] * ax, shape).reshape(g, -1)  # the steps of sum(w*x*q)
    wstep = (wg[..., None] * (2 * k + 1)).reshape(g, -1)  # the steps of sum(w*q**2)
    sxx = np.sum(wg * xg * xg, axis=1, keepdims=True)
    d_out, err_out = [], []
    for sign in (1.0, -1.0):
        # With d of this sign, s*x_j > 0 climbs to 2**(n-1) - 1 and s*x_j < 0 descends to -2**(n-1).
        sx = sign * xg
        n_steps = np.where(sx > 0, steps - 1, np.where(sx < 0, steps, 0))[..., None]
        real = (k < n_steps).reshape(g, -1)
        sxq = np.cumsum(np.take_along_axis(np.where(real, wax, 0.0), order, axis=1), axis=1)
        sqq = np.cumsum(np.take_along_axis(np.where(real, wstep, 0.0), order, axis=1), axis=1)
        safe = np.where(sqq > 0, sqq, 1.0)
        err = np.where(sqq > 0, sxx - sxq * sxq / safe, sxx)
        best = np.argmin(err, axis=1)[:, None]
        sqq_b = np.take_along_axis(sqq, best, axis=1)
        sxq_b = np.take_along_axis(sxq, best, axis=1)
        d_out.append(sign * np.where(sqq_b > 0, sxq_b / np.where(sqq_b > 0, sqq_b, 1.0), 0.0))
        err_out.append(np.take_along_axis(err, best, axis=1))
    return np.concatenate(d_out, axis=1), np.concatenate(err_out, axis=1)


def optimum(scheme: Scheme, xg: NDArray, wg: NDArray) -> tuple[NDArray, NDArray]:
    """Exact optimum of the symmetric (weighted) scale per group: ``(q, d)``.

    Both signs of ``d`` are searched (a negative ``d`` mirrors the asymmetric code range).
    """
    if scheme.use_min:
        raise ValueError("the exact optimum is implemented for the symmetric scale (use_min=False)")
    wsel = selection_weights(wg)
    per_group = xg.shape[1] * 2 ** (scheme.n_bits - 1) * 4

    def run(sl: slice) -> dict:
        x, w = xg[sl], wsel[sl]
        unit = _unit(x)  # the squared sums of x / unit cannot underflow
        d_both, e_both = _best_scales(x / unit, w, scheme.n_bits)
        d = np.where(e_both[:, 1:] < e_both[:, :1], d_both[:, 1:], d_both[:, :1]) * unit
        q = scheme.round(x, d, None)
        # The refit of the rounded codes is at least as good as the best state found.
        d_fit, _ = scheme.refit(x, q, w)
        return {"q": q, "d": d_fit}

    out = _chunked(xg.shape[0], per_group, run)
    return out["q"], out["d"]
