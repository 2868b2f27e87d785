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
    ends = starts[1:] + [n_groups]
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
            off = offsets[None, :] * (scheme.data_range(x) if relative else 1.0 / unit)  # (g, K)
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
        if wt is not None:  # the grid spans the values that count (a zero weight does not)
            m_w = _signed_extreme(np.where(wt > 0, xt, 0.0))
            m = np.where(np.abs(m_w) > 2.0**-30 * np.abs(m), m_w, m)  # not float32-tiny
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
        return {"s0": d0, "m0": None, "before": np.maximum(before, 0.0),
                "after": np.maximum(after, 0.0), "fit_s": fit, "fit_m": None, "swxx": swxx}

    nmax = scheme.qmax
    hi, m_cur = xt.max(axis=0), xt.min(axis=0)  # m_cur: the minimum the candidates round around
    if wt is not None:  # the grid spans the values that count (a zero weight does not)
        hi_w = np.where(wt > 0, xt, -np.inf).max(axis=0)
        lo_w = np.where(wt > 0, xt, np.inf).min(axis=0)
        wide = hi_w - lo_w > 2.0**-30 * (hi - m_cur)  # and not float32-tiny
        hi, m_cur = np.where(wide, hi_w, hi), np.where(wide, lo_w, m_cur)
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
    return {"s0": s0_all, "m0": m0_all, "before": before, "after": after,
            "fit_s": fit_s, "fit_m": fit_m,
            "swxx": swxx}


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
        two = code_search(scheme, np.repeat(xg, 2, axis=0), None if wg is None else
                          np.repeat(wg, 2, axis=0))
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
        close = gap <= 1e-6 * size * c["swxx"]
        take = np.ones(g, bool)
        s_r_fit = c["fit_s"][nominal].copy()
        m_r_fit = None if m_r is None else c["fit_m"][nominal].copy()
        codes = np.empty((g, size), np.int64)
        codes.T[...] = l_p
        if np.any(close):
            sub = xt[:, close]
            l_r, s_rc, m_rc, e_rc = _finish(
                scheme, sub, None if wt is None else wt[:, close], s_r[close],
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
            "min_round": None if m_b is None
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
