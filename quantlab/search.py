"""Choosing the parameters better than min/max rounding (SPEC item 7).

The methods, each vectorized over groups (rows of a ``(n_groups, group_size)`` array):

- :func:`code_search` (quantlab's default search): a grid in *code units* -- the scale is the
  range over ``2**(n-1) + delta`` (symmetric, llama.cpp's ``make_qx_quants`` grid) or
  ``2**n - 1 + delta`` (with a minimum, rounding around the best candidate's minimum so far as
  ``make_qkx2_quants`` does, then four local steps), ``delta`` in steps of 0.1 code. Why, all
  measured (``benchmarks/bench_search.py``): a step of 0.1 code is the same fraction of a level at
  every bit width (a relative grid's 2.5 % steps are coarse at 8 bits and needlessly fine at 2);
  a fixed grid around ``min(x)`` stays 1-11 % behind one that follows the best minimum; no
  "min <= 0" rule, the quantizer's minimum being a free float; candidates compared in float32
  (about half the float64 time), position-major in chunks of 2**17 values that stay in the
  cache; then a float64 polish (round at the best refitted parameters, refit: never worse) and a
  float64 check against min/max rounding with refit. Its mean error is at or below llama.cpp's
  heuristics at 2-8 bits on Gaussian, heavy-tailed and real blocks, weighted or not.
- :func:`grid_search`: a given grid of range offsets (relative, or absolute as the reference
  ``-1.0, -0.9, ..., +1.0`` in units of x, meaningless for data whose range is 0.01 or 1000):
  round, refit by (weighted) least squares, keep the lowest (weighted) error; one candidate at a
  time, so the memory does not grow with the grid.
- :func:`refine`: alternate rounding and refitting until the codes stop changing. Each step can
  only lower the error: a refit is optimal for its codes, and rounding to the nearest level is
  optimal for its parameters.
- :func:`optimum`: the exact optimum of the symmetric scale. As ``t = 1/d`` grows, code ``q_j``
  changes only at the breakpoints ``t = (k + 1/2) / |x_j|``; between two breakpoints the codes are
  fixed and the best ``d`` is the least-squares ``sum(w*x*q) / sum(w*q**2)``, with error
  ``sum(w*x**2) - sum(w*x*q)**2 / sum(w*q**2)``. Sweeping the breakpoints in order and
  accumulating the two sums gives every assignment's refitted error; the best one (both signs of
  ``d``) is the global minimum of the error over ``d``. Only the part of the ``t`` axis where exact
  bounds leave room for the optimum is swept (a core window, then what lower bounds below it
  cannot rule out; a clipping bound above): 6-8 times faster at 8 bits, about twice at 4, the
  same answer. A large group is swept in segments of breakpoints (:func:`_best_scale_segmented`).
- :func:`optimum_min`: the optimum with a minimum. For a fixed scale the best minimum is again a
  1-D breakpoint problem (:func:`_sweep_min`), swept over many trial scales, or exactly over every
  scale where breakpoints cross (``exact=True``, small groups).

Memory: every method takes its candidates one after the other on chunks of groups, so the extra
memory is a few arrays of the data (measured: under about 200 bytes per value, one group of
10**6 values included).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

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


def _chunked(
    n_groups: int, per_group: int, fn: Callable[[slice], dict], chunk: int | None = None
) -> dict:
    """Call ``fn`` on slices of groups so each call touches about ``chunk`` elements.

    ``chunk`` defaults to :data:`CHUNK_ELEMENTS`; a group larger than it is one call.
    """
    step = max(2, (CHUNK_ELEMENTS if chunk is None else chunk) // max(per_group, 1))
    starts = list(range(0, n_groups, step))
    if len(starts) > 1 and n_groups - starts[-1] == 1:
        starts.pop()  # never a chunk of one group (see code_search): the last one grows by one
    ends = [*starts[1:], n_groups]
    first = fn(slice(0, ends[0]))
    if len(starts) == 1:
        return first
    out = {
        k: None if v is None else np.empty((n_groups, *v.shape[1:]), v.dtype)
        for k, v in first.items()
    }
    for i, j in zip(starts, ends, strict=True):
        part = first if i == 0 else fn(slice(i, j))
        for k, v in part.items():
            if v is not None:
                out[k][i:j] = v
    return out


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
    """Grid search with refit over ``(G, M)`` groups and ``K`` offsets (float64).

    The candidates are taken one after the other, each vectorized over a chunk of groups, so the
    extra memory is a few arrays of the chunk's size whatever the number of offsets.

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
        with np.errstate(over="ignore"):  # an offset beyond the float range is invalid anyway
            # (g, K); absolute offsets in units of x / 2**e: offset / 2**e (0 stays 0, never
            # 0 * inf), beyond the float range an impossible candidate.
            if relative:
                off = offsets[None, :] * scheme.data_range(x)
            else:
                off = np.where(offsets[None, :] == 0, 0.0, offsets[None, :] / unit)
        off = np.where(np.isfinite(off), off, -np.inf)
        before = np.full((g, k), np.inf)
        after = np.full((g, k), np.inf)
        s_after = np.zeros((g, k))
        m_after = np.zeros((g, k)) if scheme.use_min else None
        best_q = np.zeros(x.shape, np.int64)
        for j in range(k):
            scale0, min0, valid = scheme.initial(x, off[:, j : j + 1])
            q = scheme.round(x, scale0, min0)
            e0 = scheme.error(x, q, scale0, min0, wsel)
            s1, m1 = scheme.refit(x, q, wsel)
            e1 = scheme.error(x, q, s1, m1, wsel)
            ok = valid[:, 0]
            before[:, j] = np.where(ok, e0, np.inf)
            after[:, j] = np.where(ok, e1, np.inf)
            s_after[:, j] = s1[:, 0]
            if m_after is not None:
                m_after[:, j] = m1[:, 0]
            better = after[:, j] < np.min(after[:, :j], axis=1, initial=np.inf)
            best_q = np.where(better[:, None], q, best_q)
        if np.any(np.all(~np.isfinite(after), axis=1)):
            raise ValueError("offsets make the range negative for every candidate of a group")
        best = np.argmin(after, axis=1)[:, None]
        pick = lambda a: np.take_along_axis(a, best, axis=1)  # noqa: E731
        return {
            "q": best_q,
            "scale": pick(s_after) * unit,
            "min": None if m_after is None else pick(m_after) * unit,
            "error": _in_units(_reported(pick(after)[:, 0], w), unit[:, 0]),
            "offset_abs": np.where(np.isfinite(off), off, np.nan) * unit,
            "error_before": _in_units(_reported(before, w), unit),
            "error_after": _in_units(_reported(after, w), unit),
            "scale_after": s_after * unit,
            "min_after": None if m_after is None else m_after * unit,
        }

    return _chunked(n_groups, size, run)


# -- the default search: a code-unit grid in float32, position-major -----------------------------
#: Default grid of the symmetric search, in code units: ``iscale = -(2**(n-1) + delta) / m``.
CODE_STEPS_SYMMETRIC = np.arange(-9, 10) / 10
#: Default grid with a minimum, in code units, in the order tried (the plain range first):
#: ``iscale = (2**n - 1 + delta) / (max - min_current)``.
CODE_STEPS_MIN = np.concatenate([[0.0], np.arange(-10, 0) / 10, np.arange(1, 11) / 10])
#: Values per chunk of the default search: its float32 working set stays in the CPU cache.
FAST_CHUNK_ELEMENTS = 1 << 17
#: Ranges below this (the data scaled to ``max|x|`` in ``[0.5, 1)``) are not tried in float32.
TINY = 2.0**-60
#: Groups up to this size are laid out position-major (see :func:`code_search`).
SMALL_GROUP = 512


CODE_STEPS_SYMMETRIC.setflags(write=False)
CODE_STEPS_MIN.setflags(write=False)
#: Then, around the best candidate ``(scale, min)``: ``(delta, shift)`` with
#: ``scale' = scale * nmax / (nmax + delta)`` and ``min' = min + shift * scale``.
LOCAL_STEPS_MIN = np.array([(-0.2, 0.0), (0.2, 0.0), (0.0, 0.3), (0.0, -0.3)])
LOCAL_STEPS_MIN.setflags(write=False)


def _signed_extreme(xt: NDArray) -> NDArray:
    """The element of largest magnitude of each column of ``(M, g)`` ``xt``, with its sign.

    As ``argmax(|x|)``: when ``max == -min`` the first of them wins. Computed from the column
    maximum and minimum (an argmax along the first axis is many times slower).
    """
    hi, lo = xt.max(axis=0), xt.min(axis=0)
    m = np.where(hi > -lo, hi, lo)
    tie = (hi == -lo) & (hi != 0)
    if np.any(tie):
        cols = xt[:, tie]
        m[tie] = np.take_along_axis(cols, np.argmax(np.abs(cols), axis=0)[None], axis=0)[0]
    return m


def _candidates(scheme: Scheme, xt: NDArray, wt: NDArray | None, steps: NDArray) -> dict:
    """The grid of :func:`code_search` on one chunk, compared in float32.

    ``xt`` holds the values position-major, ``(M, g)`` float64 (one column per group, divided by
    its power of two and, with a minimum, centred on its weighted mean); ``wt`` the selection
    weights the same way (None: all 1). Returns, per candidate and group (``(K, g)``, float64),
    the scale before refit ``s0``, the refitted ``fit_s``/``fit_m`` and the weighted error sums
    ``before``/``after`` the refit (``inf`` for an impossible candidate).
    """
    size, g = xt.shape
    k = len(steps)
    x32 = xt.astype(np.float32)
    w32 = None if wt is None else wt.astype(np.float32)
    wx32 = x32 if wt is None else w32 * x32
    sw = float(size) if wt is None else wt.sum(axis=0)
    swxx = np.einsum("ij,ij->j", xt, xt if wt is None else wt * xt)
    lv = np.empty_like(x32)  # the codes of the candidate
    wl = lv if wt is None else np.empty_like(x32)  # w * codes
    if not scheme.use_min:
        m = _signed_extreme(xt)
        moved = np.zeros(g, bool)  # the grid's delta = 0 is not min/max rounding
        if wt is not None:  # the grid spans the values that count (a zero weight does not)
            m_w = _signed_extreme(np.where(wt > 0, xt, 0.0))
            m_all = m
            m = np.where(np.abs(m_w) > 2.0**-30 * np.abs(m), m_w, m)  # not float32-tiny
            moved = m != m_all
        nmax = -scheme.qmin
        live = m != 0
        d0 = np.where(live, -m / (nmax + steps[:, None]), 0.0)  # (K, g): x ~ d0 * l
        isc = np.where(live, 1.0 / np.where(live, d0, 1.0), 0.0).astype(np.float32)
        sxl, sll = np.zeros((k, g)), np.zeros((k, g))
        for j in range(k):
            np.multiply(x32, isc[j], out=lv)
            np.rint(lv, out=lv)
            np.clip(lv, scheme.qmin, scheme.qmax, out=lv)
            sxl[j] = np.einsum("ij,ij->j", lv, wx32)
            if wt is not None:
                np.multiply(lv, w32, out=wl)
            sll[j] = np.einsum("ij,ij->j", wl, lv)
        ok = sll > 0
        safe = np.where(ok, sll, 1.0)
        before = swxx - 2 * d0 * sxl + d0 * d0 * sll
        after = swxx - np.where(ok, sxl * sxl / safe, 0.0)
        fit = np.where(ok, sxl / safe, 0.0)
        return {
            "s0": d0,
            "m0": None,
            "before": np.maximum(before, 0.0),
            "after": np.maximum(after, 0.0),
            "fit_s": fit,
            "fit_m": None,
            "swxx": swxx,
            "moved": moved,
        }

    nmax = scheme.qmax
    hi, m_cur = xt.max(axis=0), xt.min(axis=0)  # m_cur: the minimum the candidates round around
    if wt is not None:  # the grid spans the values that count (a zero weight does not)
        hi_w = np.where(wt > 0, xt, -np.inf).max(axis=0)
        lo_w = np.where(wt > 0, xt, np.inf).min(axis=0)
        wide = hi_w - lo_w > 2.0**-30 * (hi - m_cur)  # and not float32-tiny
        hi_new, lo_new = np.where(wide, hi_w, hi), np.where(wide, lo_w, m_cur)
        moved = (hi_new != hi) | (lo_new != m_cur)
        hi, m_cur = hi_new, lo_new
    else:
        moved = np.zeros(g, bool)
    best = np.full(g, np.inf)
    kk = k + len(LOCAL_STEPS_MIN)
    s0_all, before, after = np.zeros((kk, g)), np.full((kk, g), np.inf), np.full((kk, g), np.inf)
    fit_s, fit_m, m0_all = np.zeros((kk, g)), np.zeros((kk, g)), np.zeros((kk, g))
    best_s = np.zeros(g)
    for j in range(kk):
        if j < k:  # the grid: the range from the current minimum to the maximum
            width = hi - m_cur
            valid = (width > TINY) & (nmax + steps[j] > 0)
            isc = np.where(valid, (nmax + steps[j]) / np.where(valid, width, 1.0), 0.0)
        else:  # then a few scales close to the best refitted one, around its minimum
            valid = best_s > TINY
            delta, shift = LOCAL_STEPS_MIN[j - k]
            isc = np.where(valid, (nmax + delta) / np.where(valid, best_s * nmax, 1.0), 0.0)
            if j == k:
                m_best = m_cur
            m_cur = m_best + shift * best_s
        np.subtract(x32, m_cur.astype(np.float32), out=lv)
        np.multiply(lv, isc.astype(np.float32), out=lv)
        np.rint(lv, out=lv)
        np.clip(lv, 0, nmax, out=lv)
        if wt is not None:
            np.multiply(lv, w32, out=wl)
        sl = np.add.reduce(wl, axis=0, dtype=np.float64)
        s_ll = np.einsum("ij,ij->j", wl, lv)
        s_xl = np.einsum("ij,ij->j", wl, x32)
        # Refit x ~ a*l + b: the weighted 2x2 normal equations, with sum(w*x) = 0 (centred).
        vll = s_ll - sl * sl / sw
        ok = vll > 1e-9 * np.maximum(s_ll, 1.0)
        a = np.where(ok, s_xl / np.where(ok, vll, 1.0), 0.0)
        s0 = np.where(isc > 0, 1.0 / np.where(isc > 0, isc, 1.0), 0.0)
        s0_all[j] = s0
        m0_all[j] = m_cur
        rounded = s0 * s0 * s_ll + 2 * s0 * m_cur * sl + m_cur * m_cur * sw - 2 * s0 * s_xl + swxx
        before[j] = np.where(valid, np.maximum(rounded, 0.0), np.inf)
        after[j] = np.where(valid, np.maximum(swxx - a * s_xl, 0.0), np.inf)
        fit_s[j] = a
        fit_m[j] = -a * sl / sw
        better = after[j] < best
        best = np.where(better, after[j], best)
        best_s = np.where(better, a, best_s)
        if j < k:
            m_cur = np.where(better, fit_m[j], m_cur)
    return {
        "s0": s0_all,
        "m0": m0_all,
        "before": before,
        "after": after,
        "fit_s": fit_s,
        "fit_m": fit_m,
        "swxx": swxx,
        "moved": moved,
    }


def _argmin_rows(a: NDArray) -> NDArray:
    """``argmin(a, axis=0)`` of a short ``(K, g)`` array, row by row (the first minimum wins).

    NumPy's arg-reductions along the first axis are many times slower than this loop.
    """
    idx = np.zeros(a.shape[1], np.int64)
    low = a[0].copy()
    for j in range(1, a.shape[0]):
        better = a[j] < low
        idx[better] = j
        np.minimum(low, a[j], out=low)
    return idx


def _finish(
    scheme: Scheme, xt: NDArray, wt: NDArray | None, s: NDArray, m: NDArray | None
) -> tuple[NDArray, NDArray, NDArray | None, NDArray]:
    """Round position-major ``xt`` with ``(s, m)`` (``(g,)``), refit, error: all in float64.

    Returns ``(codes, scale, min, error_sum)``: codes ``(M, g)`` as floats, the weighted
    least-squares parameters of those codes and ``sum(w*(x - x_hat)**2)`` per group.
    """
    lv = xt if m is None else xt - m
    lv = lv * np.where(s != 0, 1.0 / np.where(s != 0, s, 1.0), 0.0)
    np.rint(lv, out=lv)
    np.clip(lv, scheme.qmin, scheme.qmax, out=lv)
    wl = lv if wt is None else wt * lv
    sll = np.einsum("ij,ij->j", wl, lv)
    sxl = np.einsum("ij,ij->j", wl, xt)
    if m is None:
        s1 = np.where(sll > 0, sxl / np.where(sll > 0, sll, 1.0), 0.0)
        m1 = None
        res = xt - s1 * lv
    else:
        used = lv if wt is None else np.where(wt > 0, lv, np.nan)
        single = np.nanmax(used, axis=0) == np.nanmin(used, axis=0)  # singular equations
        sw = float(xt.shape[0]) if wt is None else wt.sum(axis=0)
        sl = np.add.reduce(wl, axis=0)
        sx = np.add.reduce(xt if wt is None else wt * xt, axis=0)
        vll = sll - sl * sl / sw
        vxl = sxl - sx * sl / sw
        ok = ~single & (vll > 0)
        s1 = np.where(ok, vxl / np.where(ok, vll, 1.0), 0.0)
        m1 = (sx - s1 * sl) / sw
        res = xt - (s1 * lv + m1)
    err = np.einsum("ij,ij->j", res, res if wt is None else wt * res)
    return lv, s1, m1, err


def code_search(scheme: Scheme, xg: NDArray, wg: NDArray | None) -> dict:
    """quantlab's default search over ``(G, M)`` groups: a grid in code units, then a polish.

    1. Candidates, compared in float32 as llama.cpp does: symmetric
       ``d = -m / (2**(n-1) + delta)`` for ``delta`` in :data:`CODE_STEPS_SYMMETRIC` (its
       ``make_qx_quants`` grid); with a minimum ``scale = (max - min) / (2**n - 1 + delta)`` for
       ``delta`` in :data:`CODE_STEPS_MIN`, rounding around the minimum of the best candidate so
       far (it starts at ``min(x)``, as ``make_qkx2_quants`` does with ``min(0, min(x))``). Each
       candidate is refitted by weighted least squares from three sums and the best is kept.
    2. Polish, in float64: round with the best candidate's refitted parameters and refit again.
       Rounding to nearest is optimal for those parameters and the refit for those codes, so
       this never loses against the best candidate. The answer is the better (in float64) of it
       and min/max rounding with refit (``delta = 0``): never worse than that.

    ``wg`` None means unweighted (no weight products). Returns the dict of :func:`grid_search`
    plus ``best`` (the chosen row per group) and ``offset_rel``; one row is appended to the
    candidates: the polish. Candidate errors are the float32 ones, except for the rows computed
    in float64 (``delta = 0`` and the polish).
    """
    n_groups, size = xg.shape
    if n_groups == 1 and size <= SMALL_GROUP:
        # One small group: sum it as one column among two, exactly as inside a larger batch.
        two = code_search(
            scheme, np.repeat(xg, 2, axis=0), None if wg is None else np.repeat(wg, 2, axis=0)
        )
        return {k: None if v is None else v[:1] for k, v in two.items()}
    steps = CODE_STEPS_MIN if scheme.use_min else CODE_STEPS_SYMMETRIC
    nominal = int(np.flatnonzero(steps == 0)[0])
    qmax_abs = scheme.qmax if scheme.use_min else -scheme.qmin

    def run(sl: slice) -> dict:
        # (M, g), a copy. Small groups: C order, so that a group's sum adds whole rows (fast,
        # in the same order whatever g >= 2). Large groups: F order, each group contiguous,
        # summed pairwise (accurate in float32).
        order = "C" if size <= SMALL_GROUP else "F"
        xt = np.array(xg[sl].T, order=order)
        g = xt.shape[1]
        _, e = np.frexp(np.maximum(xt.max(axis=0), -xt.min(axis=0)))
        unit = np.ldexp(1.0, e)  # chosen on x / 2**e: tiny squares do not underflow
        xt /= unit
        wt, top = None, np.ones(g)
        if wg is not None:
            wt = np.array(wg[sl].T, order=order)
            top = wt.max(axis=0)
            wt = np.where(top > 0, wt / np.where(top > 0, top, 1.0), 1.0)  # selection weights
            if np.all(wt == 1):
                wt = None
        shift = 0.0
        if scheme.use_min:  # centre: the float32 sums of x*l then cancel far less
            shift = xt.mean(axis=0) if wt is None else np.sum(wt * xt, axis=0) / wt.sum(axis=0)
            xt -= shift
        c = _candidates(scheme, xt, wt, steps)
        # The polish in float64; min/max rounding with refit (delta = 0) too where the float32
        # comparison cannot tell it from the best candidate (a margin well above its rounding).
        hi, lo = xt.max(axis=0), xt.min(axis=0)
        if scheme.use_min:
            s_r, m_r = (hi - lo) / scheme.qmax, lo
        else:
            s_r, m_r = _signed_extreme(xt) / scheme.qmin, None
        best = _argmin_rows(c["after"])[None]
        after_best = np.take_along_axis(c["after"], best, axis=0)[0]
        s_b = np.take_along_axis(c["fit_s"], best, axis=0)[0]
        m_b = None if m_r is None else np.take_along_axis(c["fit_m"], best, axis=0)[0]
        l_p, s_p, m_p, e_p = _finish(scheme, xt, wt, s_b, m_b)
        e_r = c["after"][nominal].copy()
        finite = np.isfinite(e_r) & np.isfinite(after_best)
        gap = np.where(finite, e_r - np.where(finite, after_best, 0.0), 0.0)
        close = (gap <= 1e-6 * size * c["swxx"]) | c["moved"]
        take = np.ones(g, bool)
        s_r_fit = c["fit_s"][nominal].copy()
        m_r_fit = None if m_r is None else c["fit_m"][nominal].copy()
        codes = np.empty((g, size), np.int64)
        codes.T[...] = l_p
        if np.any(close):
            sub = xt[:, close]
            l_r, s_rc, m_rc, e_rc = _finish(
                scheme,
                sub,
                None if wt is None else wt[:, close],
                s_r[close],
                None if m_r is None else m_r[close],
            )
            s_r_fit[close], e_r[close] = s_rc, e_rc
            if m_r is not None:
                m_r_fit[close] = m_rc
            take[close] = e_p[close] < e_rc
            keep = close.copy()
            keep[close] = ~take[close]
            if np.any(keep):
                codes[keep] = l_r[:, ~take[close]].T
        width = hi - lo if scheme.use_min else np.maximum(hi, -lo)
        safe_w = np.where(width > 0, width, 1.0)
        off = np.concatenate([np.abs(c["s0"]), np.abs(s_p)[None]]) * qmax_abs / safe_w - 1.0
        off = np.where(width > 0, off, 0.0)
        after = np.concatenate([c["after"], e_p[None]])
        after[nominal] = e_r
        before = np.concatenate([c["before"], after_best[None]])
        # The polish rounds at the best refitted parameters: its error before its own refit is
        # the best candidate's error after refit.
        before[-1] = np.where(np.isfinite(before[-1]), before[-1], after[-1])
        s_all = np.concatenate([c["fit_s"], s_p[None]])
        s_all[nominal] = s_r_fit
        scale = np.where(take, s_p, s_r_fit)
        minimum = None
        m_all = None
        if scheme.use_min:
            m_all = np.concatenate([c["fit_m"], m_p[None]])
            m_all[nominal] = m_r_fit
            minimum = ((np.where(take, m_p, m_r_fit) + shift) * unit)[:, None]
            m_all = ((m_all + shift) * unit).T
        to_mean = top * unit * unit / size  # sums of x / 2**e with w / max(w) -> mean(w*err)

        def mean(a: NDArray) -> NDArray:  # inf (an impossible candidate) stays inf
            fin = np.isfinite(a)
            return np.where(fin, np.where(fin, a, 0.0) * to_mean, a)

        return {
            "q": codes,
            "scale": (scale * unit)[:, None],
            "min": minimum,
            "error": mean(np.where(take, e_p, e_r)),
            "best": np.where(take, c["after"].shape[0], nominal),
            "offset_rel": off.T,
            "error_before": mean(before).T,
            "error_after": mean(after).T,
            "scale_after": (s_all * unit).T,
            "min_after": m_all,
            # How each row rounds (the polish: at the best candidate's refitted parameters).
            "scale_round": (np.concatenate([c["s0"], s_b[None]]) * unit).T,
            "min_round": None
            if m_b is None
            else ((np.concatenate([c["m0"], m_b[None]]) + shift) * unit).T,
        }

    return _chunked(n_groups, size, run, FAST_CHUNK_ELEMENTS)


def candidate_errors(
    scheme: Scheme, xg: NDArray, wg: NDArray, scale0: NDArray, min0: NDArray | None
) -> dict:
    """Errors of given candidates in float64: rounded with ``(scale0, min0)``, then refitted.

    ``scale0``/``min0`` are ``(G, K)``, one column per candidate. Returns a dict of ``(G, K)``
    arrays: ``before``/``after``, the ``mean(w*(x - x_hat)**2)`` of the rounded candidate and of
    its refit, and the refitted ``scale``/``min``. The candidates are taken one by one on chunks
    of groups (memory of a few arrays of the data).
    """
    n_groups, size = xg.shape

    def run(sl: slice) -> dict:
        unit = _unit(xg[sl])
        x, w = xg[sl] / unit, wg[sl]
        wsel = selection_weights(w)
        k = scale0.shape[1]
        before, after = np.zeros((x.shape[0], k)), np.zeros((x.shape[0], k))
        s_fit = np.zeros((x.shape[0], k))
        m_fit = None if min0 is None else np.zeros((x.shape[0], k))
        for j in range(k):
            s0 = scale0[sl, j : j + 1] / unit
            m0 = None if min0 is None else min0[sl, j : j + 1] / unit
            q = scheme.round(x, s0, m0)
            before[:, j] = scheme.error(x, q, s0, m0, wsel)
            s1, m1 = scheme.refit(x, q, wsel)
            after[:, j] = scheme.error(x, q, s1, m1, wsel)
            s_fit[:, j] = s1[:, 0]
            if m_fit is not None:
                m_fit[:, j] = m1[:, 0]
        return {
            "before": _in_units(_reported(before, w), unit),
            "after": _in_units(_reported(after, w), unit),
            "scale": s_fit * unit,
            "min": None if m_fit is None else m_fit * unit,
        }

    return _chunked(n_groups, size, run)


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


#: Trial roundings of the upper bound of the symmetric optimum: ``1/|d| = (2**(n-1) + delta) /
#: max|x|`` (the largest value on the longer code side), each refitted, then refined twice.
OPTIMUM_TRIAL_STEPS = (0.0, -0.25, -0.5, -1.0)


def _upper_bound(a: NDArray, w: NDArray, xpos: NDArray, n_bits: int) -> NDArray:
    """An upper bound ``U >= E*`` of the symmetric optimum's error sum per group (``(g,)``).

    ``a = |x|`` (scaled), ``xpos = x > 0``. The refitted error of a few roundings (any code
    assignment's refitted error is at least the optimum), the largest value on the long side.
    """
    big_k = 2 ** (n_bits - 1)
    rows = np.arange(a.shape[0])
    jm = np.argmax(a, axis=1)
    am = a[rows, jm][:, None]
    lim = np.where(xpos == xpos[rows, jm][:, None], big_k, big_k - 1)  # long side of the max
    wa = w * a
    sxx = np.einsum("ij,ij->i", wa, a)
    best, best_d = sxx.copy(), np.zeros(a.shape[0])
    inv_am = 1.0 / np.where(am > 0, am, 1.0)

    def trial(t: NDArray, lim: NDArray) -> None:
        nonlocal best, best_d
        c = np.minimum(np.rint(a * t), lim)
        sxq, sqq = np.einsum("ij,ij->i", wa, c), np.einsum("ij,ij->i", w * c, c)
        ok = sqq > 0
        e = np.where(ok, sxx - sxq * sxq / np.where(ok, sqq, 1.0), sxx)
        better = e < best
        best = np.where(better, e, best)
        best_d = np.where(better, np.where(ok, sxq / np.where(ok, sqq, 1.0), 0.0), best_d)

    for step in OPTIMUM_TRIAL_STEPS:
        trial((big_k + step) * inv_am, lim)
    for _ in range(2):  # round at the refitted scale (either side long), refit
        with np.errstate(over="ignore"):  # a subnormal scale: t = inf, codes saturate
            t = np.where(
                best_d > 0, np.minimum(1.0 / np.where(best_d > 0, best_d, 1.0), 1e300), 0.0
            )[:, None]
        for side in (lim, 2 * big_k - 1 - lim):
            trial(t, side)
    return np.maximum(best, 0.0)


def _t_high(a: NDArray, w: NDArray, big_k: int, upper: NDArray) -> NDArray:
    """Above ``min_j 2**(n-1) / (a_j - sqrt(U/w_j))`` one value clipped at ``2**(n-1)`` alone
    costs more than ``U``: the optimum's ``t = 1/|d|`` is below (``(g,)``, ``inf`` if none)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf: no bound
        room = a - np.sqrt(upper[:, None] / w)
        t_j = np.where((w > 0) & (room > 0), big_k / np.where(room > 0, room, 1.0), np.inf)
    return np.where(a.max(axis=1) > 0, t_j.min(axis=1), 0.0)


def _uncertified(
    a: NDArray, w: NDArray, n_bits: int, upper: NDArray, t_top: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """The intervals of ``t`` below ``t_top`` that exact lower bounds cannot rule out.

    On each interval ``[t_i, t_i+1]`` of :func:`_certify_grid` (in code units of ``max|x|``)
    the distance of ``a_j*t`` to the codes ``0..2**(n-1)`` (both signs) is 1-Lipschitz in
    ``a_j*t``, so ``R(t) >= sum(w*max(0, (dist_i + dist_i+1 - a_j*(t_i+1 - t_i))/2)**2) /
    t_i+1**2``, and the values still at code 0 at ``t_1`` cost ``w*a**2`` exactly. An interval
    whose bound exceeds ``U`` cannot hold the optimum's ``t*`` (``R(t*) = E* <= U``).

    Returns ``(row, lo, hi)``: the runs of intervals left (group index, ``t`` range), sorted by
    group.
    """
    big_k = 2 ** (n_bits - 1)
    am = a.max(axis=1, keepdims=True)
    sigma = _certify_grid(big_k)
    # In float32 (half the float64 time), the grid points themselves float32 numbers: the
    # bounds are then made safe by eps (above every float32 rounding of the distances, at most
    # about 8 * 2**-24 * 2**(n-1)) and a relative margin of 1e-5 (the float32 sums).
    t32 = np.minimum(sigma[None, :] / np.where(am > 0, am, 1.0), t_top[:, None]).astype(np.float32)
    t = t32.astype(np.float64)  # (g, m + 1), exactly the points the bounds hold for
    u = a.astype(np.float32)[:, None, :] * t32[:, :, None]
    dist = np.abs(u - np.minimum(np.rint(u), np.float32(big_k)))
    lip = dist[:, 1:] + dist[:, :-1]
    lip -= u[:, 1:] - u[:, :-1]
    lip = np.maximum(np.float32(0.5) * lip - np.float32(big_k * 2.0**-20), np.float32(0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lb = np.einsum("gin,gn->gi", lip * lip, w.astype(np.float32)) / (t32[:, 1:] * t32[:, 1:])
    lb = np.nan_to_num(lb.astype(np.float64) * (1 - 1e-5), posinf=0.0)
    zero = np.einsum("gn,gn->g", np.where(a * t[:, 1:2] <= 0.5, w * a, 0.0), a)
    lb[:, 0] = np.maximum(lb[:, 0], zero)
    keep = ~(lb > upper[:, None] * (1 + 1e-9)) & (t[:, 1:] > t[:, :-1])
    # Runs of kept intervals become one segment (one start state each).
    pad = np.zeros((a.shape[0], 1), bool)
    begin = keep & ~np.concatenate([pad, keep[:, :-1]], axis=1)
    end = keep & ~np.concatenate([keep[:, 1:], pad], axis=1)
    row = np.broadcast_to(np.arange(a.shape[0])[:, None], keep.shape)[begin]
    return row, t[:, :-1][begin], t[:, 1:][end]


#: The grid of the lower bounds (:func:`_certify_grid`): ``(h, p)`` for 2-4 and 5-8 bits.
CERTIFY = {"small": (0.5, 2.0), "large": (0.5, 1.0)}


def _certify_grid(big_k: int) -> NDArray:
    """The grid of the lower bounds, in code units of ``max|x|``: 0 up to the core window
    ``top`` in steps of about ``h * (top / s)**p`` (finer where the bound is tight)."""
    h, p = CERTIFY["small" if big_k <= 8 else "large"]
    top = CORE_WINDOW[big_k <= 8] * big_k
    out, s = [], top
    while s > 1.0:
        out.append(s)
        s -= min(h * (top / s) ** p, s / 2)
    return np.array([0.0, *out[::-1]]) if big_k > 2 else np.array([0.0, top])


def _sweep_segments(
    a: NDArray, w: NDArray, xpos: NDArray, n_bits: int, row: NDArray, lo: NDArray, hi: NDArray
) -> tuple[NDArray, NDArray]:
    """Every code assignment met as ``t`` crosses the segments ``(lo, hi]`` of group ``row``.

    ``row`` is sorted; each segment starts from its state at ``lo`` (``|q_j| = clip(ceil(t*a_j
    - 1/2), 0, n_j)``) and takes its breakpoints ``(k + 1/2) / a_j`` in order: one 1-D sort of
    packed uint64 keys (segment | high bits of t | element, step; near ties re-sorted exactly),
    running sums in exact int64 fixed point. Both signs share the breakpoints; the step to code
    ``2**(n-1)`` exists on the long side only (x < 0 for d > 0, x > 0 for d < 0). Within a group
    the smallest error is the largest ``sxq**2 / sqq`` (``sum(w*x**2)`` is common).

    Returns the best ``d`` (signed) and its refitted error sum per group.
    """
    g, size = a.shape
    big_k = 2 ** (n_bits - 1)
    wa = w * a
    sxx = np.einsum("ij,ij->i", wa, a)
    best_v, best_d = np.full(g, -1.0), np.zeros(g)
    n_seg = len(row)
    seg_first = np.concatenate([[True], row[1:] != row[:-1]]) if n_seg else np.zeros(0, bool)

    def consider(group_start: NDArray, groups: NDArray, sx: NDArray, sq: NDArray, sign: float):
        """The first largest ``sx**2/sq`` of each run of ``group_start`` (groups ``groups``)."""
        ok = sq > 0
        v = np.where(ok, sx * sx / np.where(ok, sq, 1.0), 0.0)
        v_max = np.maximum.reduceat(v, group_start)
        hit = np.flatnonzero(v == np.repeat(v_max, np.diff(np.append(group_start, len(v)))))
        # the first hit of each group: hits sorted, one group per run between group starts
        which = np.searchsorted(group_start, hit, side="right") - 1
        pick = hit[np.concatenate([[True], which[1:] != which[:-1]])]
        better = v_max > best_v[groups]
        pick, r_s = pick[better], groups[better]
        best_v[r_s] = v[pick]
        best_d[r_s] = sign * sx[pick] / np.where(ok[pick], sq[pick], np.inf)

    aa = a[row]  # (S, N) per segment
    with np.errstate(invalid="ignore", over="ignore"):
        k_lo = np.clip(np.ceil(aa * lo[:, None] - 0.5), 0, big_k)
        k_hi = np.clip(np.ceil(aa * np.minimum(hi, 1e300)[:, None] - 0.5), 0, big_k)
    count = (k_hi - k_lo).astype(np.int64)
    c_lo = np.minimum(k_lo, big_k - 1)
    ww, waa = w[row], wa[row]
    s_xq, s_qq = np.einsum("ij,ij->i", waa, c_lo), np.einsum("ij,ij->i", ww * c_lo, c_lo)
    init = []
    for long_side in (~xpos[row], xpos[row]):  # already at 2**(n-1) below lo: long side only
        full = (k_lo == big_k) & long_side
        e_x, e_q = np.einsum("ij,ij->i", waa, full), np.einsum("ij,ij->i", ww, full)
        init.append((s_xq + e_x, s_qq + e_q * (2 * big_k - 1)))
    seg_groups = np.flatnonzero(seg_first)
    for s in (0, 1):
        consider(seg_groups, row[seg_groups], init[s][0], init[s][1], 1.0 - 2 * s)
    per_seg = count.sum(axis=1)
    total = int(per_seg.sum())
    if total:
        kb, jb = max(1, (big_k - 1).bit_length()), max(1, (size - 1).bit_length())
        rb = max(1, (n_seg - 1).bit_length())
        tb = 64 - rb - kb - jb  # bits of t kept (its float64 pattern is monotone for t >= 0)
        if tb < 24:
            raise ValueError("too many segments for the packed sort keys")  # chunks prevent it
        count = count.ravel()
        first = np.cumsum(count) - count
        k = np.arange(total, dtype=np.int64)
        k -= np.repeat(first - k_lo.ravel().astype(np.int64), count)
        with np.errstate(over="ignore"):  # subnormal values: their breakpoints at inf
            t = (k + 0.5) * np.repeat(1.0 / np.where(aa > 0, aa, 1.0).ravel(), count)
        code = (np.arange(n_seg, dtype=np.uint64)[:, None] << np.uint64(64 - rb)) | (
            np.arange(size, dtype=np.uint64)[None, :] << np.uint64(kb)
        )
        keys = t.view(np.uint64) >> np.uint64(63 - tb)
        keys <<= np.uint64(kb + jb)
        keys |= np.repeat(code.ravel(), count)
        keys |= k.astype(np.uint64)
        keys.sort()
        low = np.uint64(kb + jb)
        tie = np.flatnonzero((keys[1:] >> low) == (keys[:-1] >> low))
        seg = (keys >> np.uint64(64 - rb)).astype(np.int64)
        jk = (keys & np.uint64((1 << (kb + jb)) - 1)).astype(np.int64)
        cell = seg * size + (jk >> kb)
        k = jk & ((1 << kb) - 1)
        if len(tie):  # equal kept bits: restore the exact order of t where it was lost

            def t_at(i: NDArray) -> NDArray:
                with np.errstate(over="ignore"):
                    return (k[i] + 0.5) / aa.ravel()[cell[i]]

            bad = tie[t_at(tie + 1) < t_at(tie)]
            if len(bad):
                flag = np.zeros(n_seg, bool)
                flag[seg[bad]] = True
                m = np.flatnonzero(flag[seg])
                o = m[np.lexsort((jk[m], t_at(m), seg[m]))]
                seg[m], k[m], cell[m] = seg[o], k[o], cell[o]
        ends = np.cumsum(per_seg)
        starts = ends - per_seg
        nz = per_seg > 0
        # group runs of events: the first segment of each group that has events
        g_first = np.flatnonzero(nz & np.concatenate([[True], row[1:] != row[:-1]]))
        # a group's first non-empty segment may not be its first segment
        grp_of_nz = row[nz]
        run_start = np.flatnonzero(np.concatenate([[True], grp_of_nz[1:] != grp_of_nz[:-1]]))
        ev_group_start = starts[nz][run_start]
        ev_groups = grp_of_nz[run_start]
        del g_first
        last = np.flatnonzero(k == big_k - 1)
        long1 = xpos.ravel()[row[seg[last]] * size + cell[last] % size]  # long side of d < 0
        lens = per_seg[nz]
        # Exact running sums in int64 fixed point (wrapping is harmless: only differences within
        # a segment are used, and those fit), a resolution of 2**-61 of the group's largest sum
        # (per group: the same result whichever groups are swept together).
        fixed = []
        for step, bound, inits in (
            (waa.ravel()[cell], waa.sum(axis=1) * big_k, [i[0] for i in init]),
            (ww.ravel()[cell] * (2 * k + 1), ww.sum(axis=1) * big_k * big_k, [i[1] for i in init]),
        ):
            shift = np.minimum(61 - np.frexp(bound)[1], 1000)
            fx = np.where(bound > 0, np.ldexp(1.0, shift), 1.0)  # (S,)
            fx_ev = fx[seg]
            init_fx = [np.rint(i * fx)[nz].astype(np.int64) for i in inits]
            fixed.append((np.rint(step * fx_ev).astype(np.int64), fx_ev, init_fx))
        for s, skip in ((0, last[long1]), (1, last[~long1])):
            sums = []
            for iv, fx_ev, init_fx in fixed:
                iv = iv.copy()
                iv[skip] = 0
                cum = np.cumsum(iv)
                cum -= np.repeat(cum[starts[nz]] - iv[starts[nz]] - init_fx[s], lens)
                sums.append(cum / fx_ev)
            consider(ev_group_start, ev_groups, sums[0], sums[1], 1.0 - 2 * s)
    return best_d, np.where(best_v >= 0, np.maximum(sxx - best_v, 0.0), sxx)


def _best_scales(xg: NDArray, wg: NDArray, n_bits: int) -> tuple[NDArray, NDArray]:
    """Best ``d`` (either sign) over all code assignments in ``[-2**(n-1), 2**(n-1) - 1]``.

    The optimum's codes are the rounding at its own ``d*`` (rounding is optimal for a given
    scale, a refit for given codes), so ``E* = min_t R(t)``: the sweep only needs the ``t =
    1/|d|`` where ``R(t)`` can be at most an upper bound ``U`` (:func:`_upper_bound`); the rest
    of the axis is ruled out by exact bounds (:func:`_t_high` above, :func:`_uncertified`
    below a core window swept first, whose exact minimum tightens ``U``), and the segments left
    are swept exactly (:func:`_sweep_segments`).

    Returns ``(d, err)``, each ``(g,)``, ``err`` the refitted error sum (not yet averaged).
    """
    a, xpos = np.abs(xg), xg > 0
    big_k = 2 ** (n_bits - 1)
    g = a.shape[0]
    upper = _upper_bound(a, wg, xpos, n_bits)
    t_hi = _t_high(a, wg, big_k, upper)
    am = np.maximum(a.max(axis=1), 1e-300)
    core = np.minimum(CORE_WINDOW[big_k <= 8] * big_k / am, t_hi)
    # First the core window [core, t_hi] (where the optimum usually is): its exact minimum is
    # a tight U, then only what the lower bounds below it cannot rule out.
    d, err = _sweep_pieces(a, wg, xpos, n_bits, np.arange(g), core, t_hi)
    row, lo, hi = _uncertified(a, wg, n_bits, np.minimum(upper, err), core)
    if len(row):
        d_p, e_p = _sweep_pieces(a, wg, xpos, n_bits, row, lo, hi)
        better = e_p < err
        d, err = np.where(better, d_p, d), np.where(better, e_p, err)
    return d, err


#: Where the core window of :func:`_best_scales` starts, in code units of ``max|x|`` (``2**(n-1)
#: * CORE_WINDOW``), for 5-8 bits and for 2-4 bits.
CORE_WINDOW = (0.85, 0.69)


def _sweep_pieces(
    a: NDArray, w: NDArray, xpos: NDArray, n_bits: int, row: NDArray, lo: NDArray, hi: NDArray
) -> tuple[NDArray, NDArray]:
    """:func:`_sweep_segments` in pieces of about SWEEP_EVENTS breakpoints (whole groups each):
    they stay in the CPU cache (measured: 2-3 times faster per breakpoint than 2**20)."""
    big_k = 2 ** (n_bits - 1)
    span = np.minimum(hi, (big_k + 0.5) / np.maximum(a.max(axis=1), 1e-300)[row]) - lo
    est = np.minimum(span * a.sum(axis=1)[row], a.shape[1] * big_k) + 1.0
    n_cut = int(est.sum() // SWEEP_EVENTS)
    cut = np.searchsorted(np.cumsum(est), np.arange(1, n_cut + 1) * SWEEP_EVENTS)
    cut = np.unique(np.searchsorted(row, row[np.minimum(cut, len(row) - 1)]))  # group starts
    d, err = np.zeros(a.shape[0]), np.full(a.shape[0], np.inf)
    for i, j in pairwise([0, *cut[cut > 0].tolist(), len(row)]):
        d_p, e_p = _sweep_segments(a, w, xpos, n_bits, row[i:j], lo[i:j], hi[i:j])
        better = e_p < err
        d, err = np.where(better, d_p, d), np.where(better, e_p, err)
    return d, err


#: Breakpoints swept at once by :func:`_best_scales` (a piece of whole groups).
SWEEP_EVENTS = 1 << 15


#: Breakpoints sorted at once by the symmetric optimum of one large group (memory bound).
SEGMENT_BREAKPOINTS = 1 << 16


def _best_scale_segmented(x: NDArray, w: NDArray, n_bits: int) -> float:
    """The best ``d`` of one large group (1-D ``x``, scaled), its breakpoints taken in segments.

    The same sweep as :func:`_best_scales`, but ``t = 1/|d|`` is cut into segments of about
    ``max(SEGMENT_BREAKPOINTS, 2N)`` breakpoints (boundaries at quantiles of a sample of them). The
    state at a segment's start is computed directly (``|q_j| = clip(ceil(t|x_j| - 1/2), 0,
    n_j)`` steps taken), so each segment only sorts its own breakpoints: the memory is a few
    arrays of the group plus one segment, whatever the group size and bit width.
    """
    steps = 2 ** (n_bits - 1)
    ax = np.abs(x)
    sxx = float(np.sum(w * x * x))
    rng = np.random.default_rng(0)
    best_err, best_d = np.inf, 0.0
    # Beyond t_hi one clipped value alone costs more than an upper bound (:func:`_t_high`).
    upper = _upper_bound(ax[None], w[None], (x > 0)[None], n_bits)
    t_hi = float(_t_high(ax[None], w[None], steps, upper)[0])
    with np.errstate(over="ignore", invalid="ignore"):
        cap = np.clip(np.ceil(ax * min(t_hi, 1e300) - 0.5), 0, steps)
    for sign in (1.0, -1.0):
        sx = sign * x
        n_i = np.minimum(np.where(sx > 0, steps - 1, np.where(sx < 0, steps, 0)), cap)
        n_i = n_i.astype(np.int64)
        total = int(n_i.sum())
        if total == 0:
            continue
        # A segment holds up to max(2**16, 2N) breakpoints: each costs a few O(N) passes, so
        # few segments (4 at 4 bits, 64 at 8), and about 120 bytes per value for its arrays.
        n_seg = max(1, -(-total // max(SEGMENT_BREAKPOINTS, 2 * len(x))))
        # Segment boundaries: quantiles of sampled breakpoints (element by its count, random k).
        pick = rng.choice(len(x), size=min(200_000, 64 * n_seg), p=n_i / total)
        sample = (rng.integers(0, n_i[pick]) + 0.5) / ax[pick]
        inner = np.quantile(sample, np.arange(1, n_seg) / n_seg) if n_seg > 1 else []
        bounds = np.concatenate([[0.0], inner, [np.inf]])  # n_i holds the cap at t_hi
        safe_ax = np.where(ax > 0, ax, 1.0)
        for ta, tb in pairwise(bounds):
            with np.errstate(invalid="ignore", over="ignore"):
                k_lo = np.clip(np.ceil(ta * ax - 0.5), 0, n_i).astype(np.int64)
                k_hi = n_i if np.isinf(tb) else np.clip(np.ceil(tb * ax - 0.5), 0, n_i)
            k_hi = np.asarray(k_hi, np.int64)
            sxq0 = float(np.sum(w * ax * k_lo))  # |q_j| = k_lo steps taken at t = ta
            sqq0 = float(np.sum(w * k_lo * k_lo))
            count = k_hi - k_lo
            m = int(count.sum())
            if m == 0:
                continue
            idx = np.repeat(np.arange(len(x)), count)
            start = np.cumsum(count) - count
            k = k_lo[idx] + (np.arange(m) - start[idx])
            t = (k + 0.5) / safe_ax[idx]
            order = np.argsort(t)
            idx, k, t = idx[order], k[order], t[order]
            sxq = sxq0 + np.cumsum(w[idx] * ax[idx])
            sqq = sqq0 + np.cumsum(w[idx] * (2 * k + 1))
            ok = sqq > 0
            err = np.where(ok, sxx - sxq * sxq / np.where(ok, sqq, 1.0), sxx)
            b = int(np.argmin(err))
            if err[b] < best_err:
                best_err = float(err[b])
                best_d = sign * float(sxq[b] / sqq[b]) if sqq[b] > 0 else 0.0
    return best_d


def optimum(scheme: Scheme, xg: NDArray, wg: NDArray) -> tuple[NDArray, NDArray]:
    """Exact optimum of the symmetric (weighted) scale per group: ``(q, d)``.

    The global minimum over ``d`` (both signs: a negative ``d`` mirrors the asymmetric code
    range) of ``sum(w*(x - d*q)**2)``, ``q = clip(round(x/d), -2**(n-1), 2**(n-1) - 1)``.

    Method (:func:`_best_scales`): the optimum's codes are the rounding at its own scale, so
    ``E* = min_t R(t)`` with ``R(t)`` the rounding error at ``d = 1/t``. An upper bound ``U``
    (a few roundings, refitted), then the exact sweep of a core window of ``t`` (its minimum is
    usually ``E*``: a tight ``U``); above it one clipped value alone costs more than ``U`` beyond
    ``t_hi``; below it a grid of exact lower bounds of ``R`` rules out most intervals, and the
    intervals left are swept too. The sweep sorts packed uint64 keys (segment, high bits of
    ``t``, element and step; near ties restored exactly) in one 1-D sort, with running sums in
    exact int64 fixed point, and the final ``(q, d)`` is rounding at the best scale, refitted.

    Why it is fast: instead of all ``N * 2**(n-1)`` breakpoints per group (4096 at 8 bits), about
    230 + 100 at 8 bits and 50 at 4 bits are swept (blocks of 32, N(0, 1)), and the lower bounds
    are float32 passes over the group. Measured, blocks of 32, one core, CPU time, old (argsort
    of every breakpoint) and new interleaved in one run on the loaded shared machine, 2**20
    float32 values (2**17 at 8 bits), N(0, 1) and Student-t(3), weighted or not: 4 bits 300-410
    ms per million values (was 660-830), 8 bits 1,200-2,100 (was 9,400-12,400), the same errors
    bit for bit.
    """
    if scheme.use_min:
        raise ValueError("the exact optimum is implemented for the symmetric scale (use_min=False)")
    wsel = selection_weights(wg)
    # About 2**19 breakpoints a chunk (measured: 2**18-2**20 within 10 %, 2**16 or 2**22 slower).
    per_group = xg.shape[1] * 2 ** (scheme.n_bits - 1) * 16
    large = xg.shape[1] * 2 ** (scheme.n_bits - 1) > SEGMENT_BREAKPOINTS

    def run(sl: slice) -> dict:
        x, w = xg[sl], wsel[sl]
        unit = _unit(x)  # the squared sums of x / unit cannot underflow
        if large:  # one group at a time, in segments of breakpoints
            rows = range(x.shape[0])
            best = [_best_scale_segmented(x[i] / unit[i, 0], w[i], scheme.n_bits) for i in rows]
            d = np.array(best)[:, None] * unit
        else:
            d = _best_scales(x / unit, w, scheme.n_bits)[0][:, None] * unit
        q = scheme.round(x, d, None)
        # The refit of the rounded codes is at least as good as the best state found.
        d_fit, _ = scheme.refit(x, q, w)
        return {"q": q, "d": d_fit}

    out = _chunked(xg.shape[0], 1 << 30 if large else per_group, run)
    return out["q"], out["d"]


# -- the optimum with a minimum -------------------------------------------------------------------
#: The scales the use_min optimum sweeps by default, in code units around min/max rounding:
#: ``1/scale = (2**n - 1 + delta) / (max - min)``; for each of them the best minimum is exact.
OPTIMUM_MIN_STEPS = np.linspace(-1.5, 4.0, 111)
OPTIMUM_MIN_STEPS.setflags(write=False)


def _sweep_min(
    x: NDArray, w: NDArray, t: NDArray, n_bits: int
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """For each group and each ``t = 1/scale`` in ``t`` (``(g, T)``): every minimum, exactly.

    With ``u = min/scale`` the codes are ``l_i = clip(round(x_i*t - u), 0, L)``; as ``u`` grows,
    ``l_i`` steps down from ``k + 1`` to ``k`` at ``u = a_i - k`` with ``a_i = x_i*t - 1/2``.
    Writing ``a_i = n_i + f_i`` (integer and fractional parts), those breakpoints sorted are:
    level by level ``j = n_i - k``, and within a level the elements in the order of ``f_i`` --
    the same order at every level, so one sort of ``N`` fractions replaces a sort of ``N*L``
    breakpoints. Between two breakpoints the codes are fixed and the weighted least-squares
    ``(scale, min)`` of those codes gives the refitted error from running sums of ``w*l``,
    ``w*l**2`` and ``w*x*l`` (``x`` centred: ``sum(w*x) = 0``)::

        E = sum(w*x**2) - sum(w*x*l)**2 / (sum(w*l**2) - sum(w*l)**2 / sum(w))

    Returns per group the best error sum and the state that reaches it: the index of ``t``,
    the level ``j`` and the rank ``r`` of the last breakpoint passed (-1: none at that level).
    Memory: a few ``(g, N)`` arrays (the levels are visited one by one).
    """
    g = x.shape[0]
    big_l = 2**n_bits - 1
    sw = w.sum(axis=1)
    swxx = np.sum(w * x * x, axis=1)
    best = np.full(g, np.inf)
    best_t = np.zeros(g, np.int64)
    best_j = np.zeros(g, np.int64)
    best_r = np.full(g, -1, np.int64)
    rows = np.arange(g)[:, None]
    for it in range(t.shape[1]):
        a = x * t[:, it : it + 1] - 0.5
        n = np.floor(a)
        order = np.argsort(a - n, axis=1, kind="stable")
        n_s = n[rows, order]
        w_s = w[rows, order]
        wx_s = (w * x)[rows, order]
        j0 = n_s.min(axis=1) - (big_l - 1)
        levels = int((n_s.max(axis=1) - j0).max()) + 1
        s_l, s_ll, s_xl = big_l * sw, big_l * big_l * sw, np.zeros(g)  # all codes L
        for jj in range(levels):
            j = j0 + jj
            k = n_s - j[:, None]  # the step from code k + 1 to k
            step = (k >= 0) & (k <= big_l - 1)
            c_l = s_l[:, None] - np.cumsum(np.where(step, w_s, 0.0), axis=1)
            c_ll = s_ll[:, None] - np.cumsum(np.where(step, w_s * (2 * k + 1), 0.0), axis=1)
            c_xl = s_xl[:, None] - np.cumsum(np.where(step, wx_s, 0.0), axis=1)
            vll = c_ll - c_l * c_l / sw[:, None]
            ok = vll > 1e-12 * np.maximum(c_ll, 1.0)
            err = swxx[:, None] - np.where(ok, c_xl * c_xl / np.where(ok, vll, 1.0), 0.0)
            r = np.argmin(err, axis=1)
            e = err[np.arange(g), r]
            better = e < best
            best = np.where(better, e, best)
            best_t = np.where(better, it, best_t)
            best_j = np.where(better, j, best_j).astype(np.int64)
            best_r = np.where(better, r, best_r)
            s_l, s_ll, s_xl = c_l[:, -1], c_ll[:, -1], c_xl[:, -1]
    return best, best_t, best_j, best_r


def _critical_t(x: NDArray, n_bits: int) -> NDArray:
    """Every ``t = 1/scale`` at which the order of the breakpoints can change, plus one between
    each two and one beyond: ``|k - k'| / |x_i - x_j|``, ``1 <= |k - k'| <= 2**n - 2``. Between two
    of them the lines ``u = x_i*t - 1/2 - k`` keep their order, so one ``t`` in each interval
    meets every cell of codes (used to make the optimum exact on small groups)."""
    g, size = x.shape
    big_l = 2**n_bits - 1
    i, j = np.triu_indices(size, 1)
    diff = np.abs(x[:, i] - x[:, j])  # (g, P)
    d = np.arange(1, max(big_l, 2))[None, None, :]
    with np.errstate(divide="ignore"):
        crit = np.where(
            diff[..., None] > 0, d / np.where(diff[..., None] > 0, diff[..., None], 1), np.nan
        ).reshape(g, -1)
    crit = np.sort(crit, axis=1)  # NaN last
    top = np.nanmax(np.where(np.isfinite(crit), crit, np.nan), axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 1.0)
    crit = np.where(np.isnan(crit), top, crit)
    mids = np.concatenate([crit[:, :1] / 2, (crit[:, 1:] + crit[:, :-1]) / 2, 2 * top], axis=1)
    return mids


def optimum_min(scheme: Scheme, xg: NDArray, wg: NDArray, exact: bool = False) -> dict:
    """The optimum of ``(scale, min)`` with round-to-nearest codes in ``[0, 2**n - 1]``.

    For each trial scale the best minimum is exact (:func:`_sweep_min`: every code assignment
    the minimum can produce, each refitted in both parameters). The trial scales are
    :data:`OPTIMUM_MIN_STEPS` in code units around min/max rounding, 16 coarser ones and the
    scales that :func:`code_search` and :func:`refine` end at (within 0.05 % of the true
    optimum on blocks of 32, measured against the exact variant); with ``exact=True`` they are
    every interval between the critical scales (:func:`_critical_t`): the global optimum,
    ``O(N**2 * 2**n)`` scales per group, for small groups.

    Returns ``q``, ``scale``, ``min`` (``(G, M)``, ``(G, 1)``, ``(G, 1)``), refitted in float64.
    """
    n_groups, size = xg.shape
    wsel_all = selection_weights(wg)
    big_l = scheme.qmax

    def run(sl: slice) -> dict:
        x0, w = xg[sl], wsel_all[sl]
        unit = _unit(x0)
        x = x0 / unit
        xbar = np.sum(w * x, axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
        xc = x - xbar
        width = xc.max(axis=1, keepdims=True) - xc.min(axis=1, keepdims=True)
        live = width[:, 0] > 0
        safe = np.where(width > 0, width, 1.0)
        if exact:
            t = _critical_t(xc, scheme.n_bits)
        else:
            # The trial scales in code units, then geometric steps of about 2.5 % beyond them
            # (down to half and up to 2.5 times min/max rounding's 1/scale: outliers), and the
            # scales the default search and refinement end at (so that the optimum is never
            # worse than either of them).
            wide = big_l * (
                np.concatenate([np.geomspace(0.5, 0.9, 24), np.geomspace(1.3, 2.5, 27)]) - 1.0
            )
            steps = np.concatenate([OPTIMUM_MIN_STEPS, wide])
            t = (big_l + steps[None, :]) / safe
            found = [code_search(scheme, x0, wg[sl])["scale"], refine(scheme, x0, wg[sl])[1]]
            for sc in found:
                sc = sc / unit
                t_f = np.where(sc > 0, 1.0 / np.where(sc > 0, sc, 1.0), t[:, :1])
                t = np.concatenate([t, t_f], axis=1)
        _, it, j, r = _sweep_min(xc, w, t, scheme.n_bits)
        tb = np.take_along_axis(t, it[:, None], axis=1)
        a = xc * tb - 0.5
        n = np.floor(a)
        rank = np.argsort(np.argsort(a - n, axis=1, kind="stable"), axis=1)
        jeff = np.where(rank <= r[:, None], j[:, None], j[:, None] - 1)
        q = np.clip(n - jeff, 0, big_l)
        q = np.where(live[:, None], q, 0.0)
        s, m = scheme.refit(x, q, w)
        return {"q": q.astype(np.int64), "scale": s * unit, "min": m * unit}

    # A chunk's working set: a few (g, M) arrays per level; CHUNK_ELEMENTS / 64 values.
    return _chunked(n_groups, size * 64, run)
