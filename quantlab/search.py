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
  (about half the float64 time), position-major in chunks of 2**17 values; then a float64
  polish (round at the best refitted parameters, refit: never worse) and a float64 check
  against min/max rounding with refit. Its mean error is at or below llama.cpp's heuristics at
  2-8 bits on Gaussian, heavy-tailed and real blocks, weighted or not. Its time (4 bits, blocks
  of 32, one thread, CPU time, the C in the same run, ``benchmarks/bench_search.py``; see
  :func:`code_search` for why), as ratios to llama.cpp's C (Q4_0 with an imatrix,
  ``make_qx_quants``, 33-42 ms per million values at loads of 0.8-1.7; Q4_K,
  ``make_qkx2_quants``, for use_min): symmetric 0.97-1.3 unweighted and 1.3-1.8 weighted
  (1.49-1.52 at a load of 0.9), use_min 0.85-1.06 and 1.0-1.23.
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
  cannot rule out; a clipping bound above): 7-12 times faster at 8 bits, 2-3 at 4, the same
  answer. A large group is swept in segments of breakpoints (:func:`_best_scale_segmented`).
- :func:`optimum_min`: the optimum with a minimum. For a fixed scale the best minimum is again a
  1-D breakpoint problem (:func:`_sweep_min`), swept over many trial scales, or exactly over every
  scale where breakpoints cross (``exact=True``, small groups).

Memory: every method takes its candidates one after the other on chunks of groups, so the extra
memory is a few arrays of the data (measured: under about 200 bytes per value, one group of
10**6 values included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
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
#: Values per chunk of the default search, for inputs of at least four such chunks (smaller
#: ones: half of it). Each of its numpy calls costs a few microseconds whatever its size, so
#: larger chunks mean less time per value, as long as the chunk's working set stays in the
#: CPU's (L3) cache: measured on a million values, 2**17 and 2**18 are 5-15 % faster than
#: 2**16 (4 bits, blocks of 32), 2**19 much slower. On 2**18 values 2**17 is slower (by a
#: third, weighted): its temporaries, large beside the input, were fresh memory every call
#: (page faults, the glibc heap trimmed between calls).
FAST_CHUNK_ELEMENTS = 1 << 17
#: Values per chunk when the search records its candidates for the table: the table's
#: ``offset`` column is a mean over the groups, whose rounding depends on how the groups were
#: split into chunks (one chunk: added pairwise), so its chunks stay as the table was made.
RECORD_CHUNK_ELEMENTS = 1 << 16
#: Ranges below this (the data scaled to ``max|x|`` in ``[0.5, 1)``) are not tried in float32.
TINY = 2.0**-60
#: Groups up to this size are laid out position-major (see :func:`code_search`).
SMALL_GROUP = 512


CODE_STEPS_SYMMETRIC.setflags(write=False)
#: The index of ``delta = 0`` (min/max rounding) in :data:`CODE_STEPS_SYMMETRIC`.
NOMINAL_SYMMETRIC = int(np.flatnonzero(CODE_STEPS_SYMMETRIC == 0)[0])
CODE_STEPS_MIN.setflags(write=False)
#: Then, around the best candidate ``(scale, min)``: ``(delta, shift)`` with
#: ``scale' = scale * nmax / (nmax + delta)`` and ``min' = min + shift * scale``.
LOCAL_STEPS_MIN = np.array([(-0.2, 0.0), (0.2, 0.0), (0.0, 0.3), (0.0, -0.3)])
LOCAL_STEPS_MIN.setflags(write=False)

F32 = np.float32


def _signed_extreme(xt: NDArray, hi: NDArray, lo: NDArray) -> NDArray:
    """The element of largest magnitude of each column of ``(M, g)`` ``xt``, with its sign.

    ``hi``/``lo`` are the column maximum and minimum. As ``argmax(|x|)``: when ``max == -min``
    the first of them wins (an argmax along the first axis is many times slower, so it is only
    taken on those columns).
    """
    m = np.where(hi > -lo, hi, lo)
    tie = (hi == -lo) & (hi != 0)
    if np.any(tie):
        cols = xt[:, tie]
        m[tie] = np.take_along_axis(cols, np.argmax(np.abs(cols), axis=0)[None], axis=0)[0]
    return m


def _wsum(a: NDArray, b: NDArray, w: NDArray | None) -> NDArray:
    """Column sums ``sum(w*a*b)`` of position-major arrays (``w`` None: 1).

    In C order (small groups) one three-operand pass: it accumulates row by row as the
    two-operand sum does, so a group of weights 1 inside a weighted chunk sums exactly as
    unweighted (measured bit for bit). In F order (large groups, each column contiguous) the
    kernels round differently, so ``w*b`` is formed first.
    """
    if w is None:
        return np.einsum("ij,ij->j", a, b)
    if _row_by_row(w):
        return np.einsum("ij,ij,ij->j", a, b, w)
    return np.einsum("ij,ij->j", a, w * b)


def _row_by_row(a: NDArray) -> bool:
    """Whether column sums of ``a`` (``(M, g)``) add whole rows: C order with ``g >= 2``."""
    return a.ndim == 2 and a.shape[1] >= 2 and a.flags.c_contiguous


@dataclass
class _Chunk:
    """One chunk of groups, position-major: the values ``xt`` ``(M, g)`` float64 (divided by
    each group's power of two unless that is close to 1; with a minimum, centred), their column
    extremes ``hi``/``lo``, the selection weights ``wt``/``w32`` in float64/float32 (None: all
    1), ``used`` (the values of positive weight; None when every weight is positive) and
    ``tiny``, :data:`TINY` in the units of ``xt``."""

    xt: NDArray
    hi: NDArray
    lo: NDArray
    wt: NDArray | None
    w32: NDArray | None
    used: NDArray | None
    tiny: NDArray | float = TINY

    @property
    def order(self) -> str:
        """The memory order of ``xt``: C (small groups) or F (large groups, each contiguous)."""
        f_only = self.xt.flags.f_contiguous and not self.xt.flags.c_contiguous
        return "F" if f_only else "C"


#: A set of symmetric candidates sharing one clip of r: ``(lo, hi, indices)`` (None: no clip).
ClipSet = tuple[np.float32 | None, np.float32 | None, list[int]]


@cache
def _clip_sets(qmin: int, qmax: int) -> tuple[ClipSet, ...]:
    """The symmetric candidates ``rint(r * f)``, ``f = F32(-qmin + delta)`` for ``delta`` in
    :data:`CODE_STEPS_SYMMETRIC` (ascending), in sets that share a clip of r.

    For a set, ``[lo, hi]`` with ``rint(lo * f) == qmin`` and ``rint(hi * f) == qmax`` for every
    factor ``f`` of the set (checked in float32): a float32 product and ``rint`` are monotone in
    ``r``, so ``rint(clip(r, lo, hi) * f)`` is exactly ``clip(rint(r * f), qmin, qmax)`` for every
    ``r``. One clip of ``r`` per set (two at 2-16 bits) instead of one per candidate. The sets
    can be clipped one after the other: with ``f' >= f``, ``r < lo`` gives ``rint(lo * f') <=
    rint(lo * f) = qmin`` as ``r`` did (and the same above ``hi``).
    """
    factors = (-qmin + CODE_STEPS_SYMMETRIC).astype(F32)
    sets: list[ClipSet] = []

    def bounds(fs: NDArray) -> tuple[np.float32, np.float32] | None:
        mid = F32(2.0) / (fs[0] + fs[-1])
        lo, hi = F32(qmin) * mid, F32(qmax) * mid
        ok = np.all(np.rint(lo * fs) == qmin) and np.all(np.rint(hi * fs) == qmax)
        return (lo, hi) if ok else None

    start = 0
    for j in range(1, len(factors) + 1):
        if j == len(factors) or bounds(factors[start : j + 1]) is None:
            b = bounds(factors[start:j])  # None only for a single factor: clipped as it is
            sets.append((*(b or (None, None)), list(range(start, j))))
            start = j
    return tuple(sets)


def _candidate_sums(
    lv: NDArray,
    wr32: NDArray,
    w32: NDArray | None,
    wl: NDArray,
    fused: bool,
    sxl: NDArray,
    sll: NDArray,
) -> None:
    """``sum(w*r*l)`` and ``sum(w*l*l)`` of the codes ``lv`` into ``sxl``/``sll`` (float32)."""
    np.einsum("ij,ij->j", lv, wr32, out=sxl)
    if w32 is None:
        np.einsum("ij,ij->j", lv, lv, out=sll)
    elif fused:  # sum(w*l*l) in one pass
        np.einsum("ij,ij,ij->j", lv, lv, w32, out=sll)
    else:
        np.multiply(lv, w32, out=wl)
        np.einsum("ij,ij->j", lv, wl, out=sll)


def _grid_symmetric(scheme: Scheme, c: _Chunk, record: bool) -> dict:
    """The symmetric grid of :func:`code_search` on one chunk (:class:`_Chunk`), in float32.

    The values are first mapped to ``r = -x / m`` (``m`` lands on -1), so that every candidate
    is a multiplication by a scalar, ``r * (2**(n-1) + delta)``: round, clip, and the two sums
    ``sum(w*r*l)``, ``sum(w*l*l)`` written straight into a ``(K, g)`` table. The candidates do
    not depend on each other, so the best one (the largest ``sum(w*r*l)**2 / sum(w*l*l)``: the
    lowest refitted error) is chosen after the loop.
    """
    xt, hi, lo, w32, order = c.xt, c.hi, c.lo, c.w32, c.order
    g = xt.shape[1]
    steps = CODE_STEPS_SYMMETRIC
    nmax = -scheme.qmin
    m_all = _signed_extreme(xt, hi, lo)
    m = m_all
    moved = np.zeros(g, bool)  # the grid's delta = 0 is not min/max rounding
    if c.used is not None:  # the grid spans the values that count (a zero weight does not)
        xw = np.where(c.used, xt, 0.0)
        m_w = _signed_extreme(xw, xw.max(axis=0), xw.min(axis=0))
        m = np.where(np.abs(m_w) > 2.0**-30 * np.abs(m_all), m_w, m_all)  # not float32-tiny
        moved = m != m_all
    live = m != 0
    inv = np.where(live, -1.0 / np.where(live, m, 1.0), 0.0)
    r32 = np.empty(xt.shape, F32, order=order)
    np.multiply(xt, inv, out=r32)  # r = -x / m, in float32
    wr32 = r32 if w32 is None else w32 * r32
    k = len(steps)
    sxl, sll = np.empty((k, g), F32), np.empty((k, g), F32)
    srr = np.einsum("ij,ij->j", r32, wr32).astype(np.float64)
    lv = np.empty_like(r32)
    fused = w32 is not None and _row_by_row(w32)  # see _wsum
    wl = lv if w32 is None or fused else np.empty_like(lv)
    factors = (nmax + steps).astype(F32)
    # r clipped set after set (the factors ascending: an earlier clip stays exact for later
    # ones); with weights in place (w*r is kept apart), a working set that stays in the cache.
    rc, src = (np.empty_like(r32) if w32 is None else r32), r32
    for lo_r, hi_r, group in _clip_sets(scheme.qmin, scheme.qmax):
        if lo_r is not None:
            src = np.clip(src, lo_r, hi_r, out=rc)  # no candidate of the set needs a clip
        for j in group:
            np.multiply(src, factors[j], out=lv)
            np.rint(lv, out=lv)
            if lo_r is None:
                np.clip(lv, scheme.qmin, scheme.qmax, out=lv)
            _candidate_sums(lv, wr32, w32, wl, fused, sxl[j], sll[j])
    # The refitted error is sum(w*r*r) - score, score = sum(w*r*l)**2 / sum(w*l*l) (0 where
    # every code is 0: then sum(w*r*l) = 0 too); the first of the best scores wins.
    score = sxl * sxl
    score /= np.maximum(sll, np.finfo(F32).tiny)
    top = score.max(axis=0)
    best = np.zeros(g, np.int64)
    for j in range(k - 1, -1, -1):  # row by row, the first best last (an arg-reduction along
        best[score[j] == top] = j  # the first axis, or a masked maximum, is slower)
    at = best * g + np.arange(g)  # the best row of each column (a flat take: 2x faster)
    sxl_b, sll_b = sxl.take(at).astype(np.float64), sll.take(at).astype(np.float64)
    fit = np.where(sll_b > 0, sxl_b / np.where(sll_b > 0, sll_b, 1.0), 0.0)
    nominal = NOMINAL_SYMMETRIC
    m2 = m * m  # errors in units of r**2 times m**2: in units of x**2
    out = {
        "s_best": -m * fit,  # r ~ fit * l, so x ~ -m * fit * l
        "m_best": None,
        "after_nominal": (srr - score[nominal]) * m2,
        "sxx": srr * m2,
        "moved": moved,
        "m_all": m_all,
    }
    if record:
        out["s0"] = np.where(live, -m / (nmax + steps[:, None]), 0.0)  # (K, g)
        out["m0"] = None
    return out


def _grid_min(scheme: Scheme, c: _Chunk, record: bool) -> dict:
    """The grid with a minimum of :func:`code_search` on one chunk, compared in float32.

    As :func:`_grid_symmetric`, the chunk's values also centred on their (weighted) mean (the
    float32 sums of ``x*l`` then cancel far less). Candidate ``j`` rounds
    ``(x - min_cur) * iscale_j``, where ``min_cur`` is the refitted minimum of the best candidate
    so far, so the candidates are taken one after the other; each needs three sums
    (``sum(w*l)``, ``sum(w*l*l)``, ``sum(w*x*l)``) and a few operations on ``(g,)`` arrays for
    its weighted refit.
    """
    xt, hi, lo, wt, w32, order = c.xt, c.hi, c.lo, c.wt, c.w32, c.order
    size, g = xt.shape
    steps = CODE_STEPS_MIN
    k = len(steps)
    nmax = scheme.qmax
    x32 = xt.astype(F32, order=order)
    m_cur = lo  # the minimum the candidates round around
    moved = np.zeros(g, bool)
    if c.used is not None:  # the grid spans the values that count (a zero weight does not)
        hi_w = np.max(xt, axis=0, where=c.used, initial=-np.inf)
        lo_w = np.min(xt, axis=0, where=c.used, initial=np.inf)
        wide = hi_w - lo_w > 2.0**-30 * (hi - lo)  # and not float32-tiny
        hi_new, lo_new = np.where(wide, hi_w, hi), np.where(wide, lo_w, lo)
        moved = (hi_new != hi) | (lo_new != lo)
        hi, m_cur = hi_new, lo_new
    sw = float(size) if wt is None else wt.sum(axis=0)
    wx32 = x32 if w32 is None else w32 * x32
    sxx = _wsum(xt, xt, wt)
    kk = k + len(LOCAL_STEPS_MIN)
    s_l, s_ll, s_xl = (np.empty((kk, g), F32) for _ in range(3))
    isc_all, m0_all = (np.zeros((kk, g)), np.zeros((kk, g))) if record else (None, None)
    best = np.full(g, np.inf)
    best_s, best_m = np.zeros(g), m_cur  # during the grid, m_cur is best_m
    after_nominal = best
    lv = np.empty_like(x32)
    fused = w32 is not None and _row_by_row(w32)  # see _wsum
    wl = lv if w32 is None or fused else np.empty_like(lv)
    neg_inv_sw = -1.0 / sw
    for j in range(kk):
        # An impossible candidate (a range of almost nothing) rounds with a finite iscale but
        # is never taken: its refit is marked singular (its error then the plain sum(w*x*x)).
        if j < k:  # the grid: the range from the current minimum to the maximum
            width = hi - best_m
            valid = width > c.tiny
            isc = (nmax + steps[j]) / np.maximum(width, c.tiny)
            m_cur = best_m
        else:  # then a few scales close to the best refitted one, around its minimum
            valid = best_s > c.tiny
            delta, shift = LOCAL_STEPS_MIN[j - k]
            isc = (nmax + delta) / (np.maximum(best_s, c.tiny) * nmax)
            if j == k:
                m_anchor = best_m
            m_cur = m_anchor + shift * best_s
        if record:
            isc_all[j], m0_all[j] = np.where(valid, isc, 0.0), m_cur
        np.subtract(x32, m_cur.astype(F32), out=lv)
        np.multiply(lv, isc.astype(F32), out=lv)
        np.rint(lv, out=lv)
        np.clip(lv, 0, nmax, out=lv)
        if fused:  # sum(w*l) and sum(w*l*l), each in one pass
            np.einsum("ij,ij->j", lv, w32, out=s_l[j])
            np.einsum("ij,ij,ij->j", lv, lv, w32, out=s_ll[j])
        else:
            if w32 is not None:
                np.multiply(lv, w32, out=wl)
            np.add.reduce(wl, axis=0, out=s_l[j])
            np.einsum("ij,ij->j", lv, wl, out=s_ll[j])
        np.einsum("ij,ij->j", lv, wx32, out=s_xl[j])
        sl, sll, sxl = s_l[j].astype(np.float64), s_ll[j], s_xl[j]
        # Refit x ~ a*l + b: the weighted 2x2 normal equations, with sum(w*x) = 0 (centred).
        vll = sll - sl * sl / sw
        ok = (vll > 1e-9 * np.maximum(sll, 1.0)) & valid
        a = sxl / np.where(ok, vll, np.inf)  # 0 where singular
        after = np.maximum(sxx - a * sxl, 0.0)
        if j == 0:
            after_nominal = after
        better = after < best
        np.minimum(best, after, out=best)
        best_s = np.where(better, a, best_s)
        fit_m = a * sl * neg_inv_sw
        best_m = np.where(better, fit_m, best_m)
    out = {
        "s_best": best_s,
        "m_best": best_m,
        "after_nominal": after_nominal,
        "sxx": sxx,
        "moved": moved,
        "m_all": None,
    }
    if record:
        out["s0"] = np.where(isc_all > 0, 1.0 / np.where(isc_all > 0, isc_all, 1.0), 0.0)
        out["m0"] = m0_all
    return out


def _padded(shape: tuple[int, int]) -> NDArray:
    """An uninitialised C-order float64 ``(M, g)`` array whose rows are 64 bytes apart more
    than ``g`` values: a view of ``(M, g + 8)``.

    Copying a position-major array into a group-major one (the codes) reads its rows in step;
    when the rows are a multiple of 4096 bytes apart (``g`` a multiple of 512) they all fall
    in the same cache sets and the copy is about three times slower (measured).
    """
    return np.empty((shape[0], shape[1] + 8))[:, : shape[1]]


def _round(scheme: Scheme, xt: NDArray, s: NDArray, m: NDArray | None) -> NDArray:
    """The codes of position-major ``xt`` with ``(s, m)`` (``(g,)``), as float64 (a new array)."""
    inv = np.where(s != 0, 1.0 / np.where(s != 0, s, 1.0), 0.0)
    if xt.flags.c_contiguous:  # rows padded: see _padded
        lv = _padded(xt.shape)
    else:
        lv = np.empty_like(xt)
    if m is None:
        np.multiply(xt, inv, out=lv)
    else:
        np.subtract(xt, m, out=lv)
        lv *= inv
    np.rint(lv, out=lv)
    np.clip(lv, scheme.qmin, scheme.qmax, out=lv)
    return lv


def _finish(
    scheme: Scheme,
    xt: NDArray,
    wt: NDArray | None,
    used: NDArray | None,
    s: NDArray,
    m: NDArray | None,
) -> tuple[NDArray, NDArray, NDArray | None, NDArray]:
    """Round position-major ``xt`` with ``(s, m)`` (``(g,)``), refit, error: all in float64.

    ``used`` marks the values of positive weight when some weight is zero (None: all count).
    Returns ``(codes, scale, min, error_sum)``: codes ``(M, g)`` as floats, the weighted
    least-squares parameters of those codes and ``sum(w*(x - x_hat)**2)`` per group.
    """
    lv = _round(scheme, xt, s, m)
    sll = _wsum(lv, lv, wt)
    sxl = _wsum(lv, xt, wt)
    if m is None:
        s1 = np.where(sll > 0, sxl / np.where(sll > 0, sll, 1.0), 0.0)
        m1 = None
        res = lv * s1
    else:
        if used is None:  # singular equations: every code (of positive weight) the same
            single = lv.max(axis=0) == lv.min(axis=0)
        else:
            top = np.max(lv, axis=0, where=used, initial=-1.0)
            single = top == np.min(lv, axis=0, where=used, initial=scheme.qmax + 1.0)
        if wt is None:
            sw = float(xt.shape[0])
            sl, sx = np.add.reduce(lv, axis=0), np.add.reduce(xt, axis=0)
        else:
            sw = wt.sum(axis=0)  # w*a formed first: summed as without weights in any order
            sl, sx = np.add.reduce(wt * lv, axis=0), np.add.reduce(wt * xt, axis=0)
        vll = sll - sl * sl / sw
        vxl = sxl - sx * sl / sw
        ok = ~single & (vll > 0)
        s1 = np.where(ok, vxl / np.where(ok, vll, 1.0), 0.0)
        m1 = (sx - s1 * sl) / sw
        res = lv * s1
        res += m1
    np.subtract(xt, res, out=res)
    return lv, s1, m1, _wsum(res, res, wt)


def code_search(scheme: Scheme, xg: NDArray, wg: NDArray | None, *, record: bool = False) -> dict:
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
       and min/max rounding with refit (``delta = 0``) wherever the float32 comparison cannot
       tell them apart: never worse than that.

    Why it is fast (measured, 4 bits, blocks of 32, ms of CPU time per million values; the
    whole call was 70-85 / 104-119 symmetric and 170 / 220-237 use_min before, unweighted /
    weighted): the data is transposed once per chunk of :data:`FAST_CHUNK_ELEMENTS` values to
    position-major ``(M, g)`` (a per-group parameter is then a row broadcast, and a group's sum
    adds whole rows; float32 data converted to float64 in that copy -- validation keeps it
    float32, half the copy; no division by the groups' powers of two when they are all within
    2**+-20 of 1, a pass saved); every candidate is a few in-place float32 passes (symmetric:
    the values are first divided by their signed extreme, so a candidate is a multiplication
    by a scalar and ``rint``, the clip shared by a set of candidates, :func:`_clip_sets`: two
    clips per chunk instead of 19), its sums written straight into a ``(K, g)`` table, the
    symmetric best chosen after the loop (a loop over its 19 rows, faster than a masked maximum
    or an argmax along the first axis); only the chosen candidate is rounded and refitted in
    float64, min/max rounding too only where the float32 errors cannot tell them apart (about a
    quarter of the symmetric groups, a tenth with a minimum), its columns computed again from
    the group-major rows (5 times faster than gathering columns); the codes are written as the
    smallest integer type (int8 at 4 bits) from rows 64 bytes longer than ``g`` (see
    :func:`_padded`: 3 times faster), then widened to int64 in one contiguous pass; nothing per
    candidate is kept unless the table is read (it runs the search again with ``record``), and
    ``x_hat`` is computed when first read. The copies of ``x`` and ``w`` that the lazy table
    needs reuse the memory of earlier copies (:mod:`quantlab._recycled`): fresh memory cost
    2048 page faults, about 11 ms, per weighted search of a million values on the course's
    machine. Where the weighted symmetric search's time goes now (about 55 ms at a load of 2,
    the C then 35): the 19 candidates 18-19 (their sums, a two- and a three-operand einsum,
    two thirds of it), setting them up (``r``, ``w*r``, ``sum(w*r*r)``) 5, choosing 5, the
    float64 polish 6, the check against min/max rounding 5-6, the weights' transposition and
    normalisation 5.5, the data's 4, validation's copies 4, the codes 2; with a minimum, a few
    operations on ``(g,)`` arrays per candidate besides (its candidates depend on each other).

    ``wg`` None means unweighted (no weight products). Returns ``q`` (G, M) int64,
    ``scale``/``min`` (G, 1) and ``error`` (G,). With ``record`` (for the candidate
    table), also per group and candidate row (the grid, then the polish): ``scale_round``/
    ``min_round`` (how the row rounds; the polish at the best candidate's refitted parameters),
    ``offset_rel`` (the row's scale before refit relative to min/max rounding's, minus 1),
    ``best`` (the chosen row: the polish or ``delta = 0``), and ``polish_error``,
    ``polish_scale``, ``polish_min``.
    """
    n_groups, size = xg.shape
    if n_groups == 1 and size <= SMALL_GROUP:
        # One small group: sum it as one column among two, exactly as inside a larger batch.
        two = code_search(
            scheme,
            np.repeat(xg, 2, axis=0),
            None if wg is None else np.repeat(wg, 2, axis=0),
            record=record,
        )
        return {k: None if v is None else v[:1] for k, v in two.items()}
    use_min = scheme.use_min
    steps = CODE_STEPS_MIN if use_min else CODE_STEPS_SYMMETRIC
    nominal = int(np.flatnonzero(steps == 0)[0])
    n_rows = len(steps) + (len(LOCAL_STEPS_MIN) if use_min else 0)  # then the polish
    qmax_abs = scheme.qmax if use_min else -scheme.qmin
    order = "C" if size <= SMALL_GROUP else "F"
    # The codes in the smallest integer type that holds them, widened to int64 at the end (one
    # contiguous pass; transposed writes of int64 into fresh memory cost twice as much).
    # Signed codes: the signed type that holds both ends (int8 at 4 bits, not int16).
    ends = min(scheme.qmin, -scheme.qmax - 1) if scheme.qmin < 0 else scheme.qmax
    q_out = np.empty((n_groups, size), np.min_scalar_type(ends))

    def run(sl: slice) -> dict:
        # (M, g), a copy. Small groups: C order, so that a group's sum adds whole rows (fast,
        # in the same order whatever g >= 2). Large groups: F order, each group contiguous.
        xs = xg[sl]
        xt = np.array(xs.T, np.float64, order=order)  # float32 data: converted here
        g = xt.shape[1]
        hi, lo = xt.max(axis=0), xt.min(axis=0)
        _, e = np.frexp(np.maximum(hi, -lo))
        # Chosen on x / 2**e, so that tiny squares do not underflow nor large ones overflow (nor
        # float32 values). A power of two scales every rounding exactly, so where each 2**e is
        # within 2**+-20 of 1 the same choices are made on x itself: a pass saved.
        tiny: NDArray | float = TINY
        scaled = not np.all(np.abs(e) <= 20)
        if not scaled:
            tiny = np.ldexp(TINY, e)
            unit = np.ones(g)
        else:
            unit = np.ldexp(1.0, e)
            xt /= unit
            hi, lo = hi / unit, lo / unit  # exact: the extremes of xt
        wt, w32, used, top = None, None, None, np.ones(g)
        if wg is not None:
            wt = np.array(wg[sl].T, np.float64, order=order)  # float32 weights: converted
            top = wt.max(axis=0)
            pos = top > 0
            if not np.all(pos):
                wt[:, ~pos] = 1.0  # all-zero weights: the unweighted answer
            w_div = np.where(pos, top, 1.0)
            wt /= w_div  # selection weights, the largest 1
            low = wt.min(axis=0)
            if np.all(low == 1):
                wt = None
            else:
                w32 = wt.astype(F32, order=order)
                used = None if np.all(low > 0) else wt > 0
        shift = 0.0
        if use_min:  # centre: the float32 sums of x*l then cancel far less
            shift = xt.mean(axis=0) if wt is None else np.sum(wt * xt, axis=0) / wt.sum(axis=0)
            xt -= shift
            hi, lo = hi - shift, lo - shift  # exact: rounding is monotone
        chunk = _Chunk(xt, hi, lo, wt, w32, used, tiny)

        def columns(idx: NDArray) -> tuple[NDArray, NDArray | None, NDArray | None]:
            """``xt``, ``wt``, ``used`` at the columns ``idx``, computed again from the group-major
            rows (as ``xt[:, idx]``, F order, but 5 times faster than gathering columns)."""
            xc = np.take(xs, idx, axis=0).astype(np.float64)
            if scaled:
                xc /= unit[idx, None]
            if use_min:
                xc -= shift[idx, None]
            if wt is None:
                return xc.T, None, None
            wc = np.take(wg[sl], idx, axis=0).astype(np.float64)
            wc[~pos[idx]] = 1.0
            wc /= w_div[idx, None]
            return xc.T, wc.T, None if used is None else wc.T > 0

        grid = (_grid_min if use_min else _grid_symmetric)(scheme, chunk, record)
        s_b, m_b = grid["s_best"], grid["m_best"]
        lv, s_p, m_p, e_p = _finish(scheme, xt, wt, used, s_b, m_b)
        # Min/max rounding with refit (delta = 0) too, in float64, where its float32 error is
        # not clearly above the polish's (a margin well above the float32 rounding): elsewhere
        # it cannot win. About a tenth of the groups (4 bits, blocks of 32).
        gap = grid["after_nominal"] - e_p
        close = np.flatnonzero((gap <= 1e-6 * size * grid["sxx"]) | grid["moved"])
        take = np.ones(g, bool)
        s_f, m_f, e_f = s_p.copy(), None if m_p is None else m_p.copy(), e_p.copy()
        q_g = q_out[sl]  # the group-major codes: the polish's, then min/max rounding's rows
        np.copyto(q_g.T, lv, casting="unsafe")
        if close.size == 1 and order == "C":  # one column among two, as everywhere (see above)
            close = np.repeat(close, 2)
        if close.size:
            if use_min:
                s_r, m_r = (hi[close] - lo[close]) / scheme.qmax, lo[close]
            else:
                s_r, m_r = grid["m_all"][close] / scheme.qmin, None
            l_r, s_rc, m_rc, e_rc = _finish(scheme, *columns(close), s_r, m_r)
            keep = e_rc <= e_p[close]  # the polish only when strictly better
            take[close[keep]] = False
            idx = close[keep]
            if idx.size:
                s_f[idx], e_f[idx] = s_rc[keep], e_rc[keep]
                if m_f is not None:
                    m_f[idx] = m_rc[keep]
                q_g[idx] = np.compress(keep, l_r, axis=1).T  # whole rows: 2x faster than columns
        scale = s_f * unit
        minimum = None if m_f is None else (m_f + shift) * unit
        to_mean = top * unit * unit / size  # sums of x / 2**e with w / max(w) -> mean(w*err)
        out = {
            "scale": scale[:, None],
            "min": None if minimum is None else minimum[:, None],
            "error": e_f * to_mean,
        }
        if record:
            width = hi - lo if use_min else np.maximum(hi, -lo)
            safe_w = np.where(width > 0, width, 1.0)
            off = np.concatenate([np.abs(grid["s0"]), np.abs(s_p)[None]]) * qmax_abs / safe_w
            out["offset_rel"] = np.where(width > 0, off - 1.0, 0.0).T
            out["scale_round"] = (np.concatenate([grid["s0"], s_b[None]]) * unit).T
            out["min_round"] = (
                None
                if m_b is None
                else ((np.concatenate([grid["m0"], m_b[None]]) + shift) * unit).T
            )
            out["best"] = np.where(take, n_rows, nominal)
            out["polish_error"] = e_p * to_mean
            out["polish_scale"] = s_p * unit
            out["polish_min"] = None if m_p is None else (m_p + shift) * unit
        return out

    chunk = FAST_CHUNK_ELEMENTS
    if n_groups * size < 4 * chunk:
        chunk //= 2
    out = _chunked(n_groups, size, run, RECORD_CHUNK_ELEMENTS if record else chunk)
    out["q"] = q_out.astype(np.int64)
    return out


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
#: max|x|`` (the largest value on the longer code side), each refitted. Two are enough: the core
#: window's exact minimum tightens ``U`` for the lower bounds, and four trials each refined twice
#: (a tighter clipping bound) cost more than they saved (measured: 4-8 % slower at 4 and 8 bits).
OPTIMUM_TRIAL_STEPS = (0.0, -0.5)


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
    best = sxx.copy()
    inv_am = 1.0 / np.where(am > 0, am, 1.0)

    def trial(t: NDArray, lim: NDArray) -> None:
        c = np.minimum(np.rint(a * t), lim)
        sxq, sqq = np.einsum("ij,ij->i", wa, c), np.einsum("ij,ij->i", w * c, c)
        ok = sqq > 0
        e = np.where(ok, sxx - sxq * sxq / np.where(ok, sqq, 1.0), sxx)
        np.minimum(best, e, out=best)

    for step in OPTIMUM_TRIAL_STEPS:
        trial((big_k + step) * inv_am, lim)
    return np.maximum(best, 0.0)


def _t_high(a: NDArray, w: NDArray, big_k: int, upper: NDArray) -> NDArray:
    """Above ``min_j 2**(n-1) / (a_j - sqrt(U/w_j))`` one value clipped at ``2**(n-1)`` alone
    costs more than ``U``: the optimum's ``t = 1/|d|`` is below (``(g,)``, ``inf`` if none)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf: no bound
        room = np.fmax.reduce(a - np.sqrt(upper[:, None] / w), axis=1)  # w = 0: -inf or NaN
        t_min = np.where(room > 0, big_k / np.where(room > 0, room, 1.0), np.inf)
    return np.where(a.max(axis=1) > 0, t_min, 0.0)  # min of big_k / room_j: at the largest


def _interval_bounds(a32: NDArray, w32: NDArray, t32: NDArray, big_k: int) -> NDArray:
    """Exact lower bounds of ``R`` on the intervals between the columns of ``t32`` ``(m, P+1)``
    (float32 points, increasing along each row), for the rows ``a32``/``w32`` ``(m, N)``
    (float32 ``|x|`` and weights): ``(m, P)`` float64, see :func:`_uncertified`."""
    m = t32.shape[0]
    step = max(1, BOUND_ELEMENTS // max(t32.shape[1] * a32.shape[1], 1))
    if m > step:  # in pieces whose temporaries stay in the CPU cache
        return np.concatenate(
            [
                _interval_bounds(a32[i : i + step], w32[i : i + step], t32[i : i + step], big_k)
                for i in range(0, m, step)
            ]
        )
    u = a32[:, None, :] * t32[:, :, None]
    top = np.minimum(u, np.float32(big_k))  # the nearest code is rint(top)
    dist = np.rint(top)
    dist -= u
    np.abs(dist, out=dist)
    # Between two codes the distance is a tent (beyond 2**(n-1) it grows), so its minimum over
    # [u_i, u_i+1] is 0 if a code lies inside (floor(top) steps up), else the smaller end
    # (at most 1/2: below 1, the least step of floor(top), subtracted).
    np.floor(top, out=top)
    lip = np.minimum(dist[:, 1:], dist[:, :-1])
    lip -= top[:, 1:]
    lip += top[:, :-1]
    lip -= np.float32(big_k * 2.0**-20)
    np.maximum(lip, np.float32(0.0), out=lip)
    np.multiply(lip, lip, out=lip)
    with np.errstate(divide="ignore", invalid="ignore"):
        lb = np.matmul(lip, w32[:, :, None])[..., 0] / (t32[:, 1:] * t32[:, 1:])
    # A float32 sum of N non-negative products, in any order, is within (N + 3) * 2**-24 of
    # the exact sum (relative); the margin is twice that, at least 1e-5.
    margin = max(1e-5, (a32.shape[1] + 4) * 2.0**-23)
    return np.nan_to_num(lb.astype(np.float64) * (1 - margin), posinf=0.0)


def _uncertified(
    a: NDArray, w: NDArray, n_bits: int, upper: NDArray, t_top: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """The intervals of ``t`` below ``t_top`` that exact lower bounds cannot rule out.

    On each interval ``[t_i, t_i+1]`` the distance of ``a_j*t`` to the nearest of the codes
    ``0..2**(n-1)`` (both signs) is a tent between two codes and grows beyond the last, so its
    least value on the interval is 0 if ``[a_j*t_i, a_j*t_i+1]`` holds a code, else the smaller
    of its two ends; so ``R(t) >= sum(w*least**2) / t_i+1**2`` (:func:`_interval_bounds`; it
    replaced the Lipschitz bound ``max(0, (dist_i + dist_i+1 - a_j*(t_i+1 - t_i))/2)``, always
    lower, which left 2-3 times as many breakpoints to sweep at 8 bits), and the values still
    at code 0 at ``t_1`` cost ``w*a**2`` exactly. An interval whose bound exceeds ``U`` cannot
    hold the optimum's ``t*`` (``R(t*) = E* <= U``).

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
    a32, w32 = a.astype(np.float32), w.astype(np.float32)
    lb = _interval_bounds(a32, w32, t32, big_k)
    zero = np.einsum("gn,gn->g", np.where(a * t[:, 1:2] <= 0.5, w * a, 0.0), a)
    lb[:, 0] = np.maximum(lb[:, 0], zero)
    cut = upper * (1 + 1e-9)
    keep = ~(lb > cut[:, None]) & (t[:, 1:] > t[:, :-1])
    row = np.broadcast_to(np.arange(a.shape[0])[:, None], keep.shape)[keep]
    lo32, hi32 = t32[:, :-1][keep], t32[:, 1:][keep]  # sorted by group, then t
    # Runs of kept intervals (adjacent: the end of one is the start of the next) become one
    # segment (one start state each).
    first = np.ones(len(row), bool)
    first[1:] = (row[1:] != row[:-1]) | (lo32[1:] != hi32[:-1])
    last = np.ones(len(row), bool)
    last[:-1] = first[1:]
    return row[first], lo32[first].astype(np.float64), hi32[last].astype(np.float64)


#: Values times points bounded at once by :func:`_interval_bounds` (its float32 temporaries stay
#: in the CPU cache).
BOUND_ELEMENTS = 1 << 16
#: The grid of the lower bounds (:func:`_certify_grid`): ``(h, p)`` for 2-4 and 5-8 bits.
CERTIFY = {"small": (0.5, 2.0), "large": (0.35, 1.5)}


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
    running sums in int64 fixed point, added exactly (``2**sh`` per group), compared as they are:
    ``sxq**2/sqq`` and ``sxq/sqq`` of the fixed-point sums times a power of two are exactly those
    in units of x, so only each group's best is scaled. Both signs share the breakpoints; the
    step to code ``2**(n-1)`` exists on the long side only (x < 0 for d > 0, x > 0 for d < 0).
    Within a group the smallest error is the largest ``sxq**2 / sqq`` (``sum(w*x**2)`` is
    common).

    Returns the best ``d`` (signed) and its refitted error sum per group.
    """
    g, size = a.shape
    big_k = 2 ** (n_bits - 1)
    wa = w * a
    sxx = np.einsum("ij,ij->i", wa, a)
    best_v, best_d = np.full(g, -1.0), np.zeros(g)
    n_seg = len(row)
    seg_first = np.concatenate([[True], row[1:] != row[:-1]]) if n_seg else np.zeros(0, bool)

    def consider(
        group_start: NDArray,
        groups: NDArray,
        sx: NDArray,
        sq: NDArray,
        sign: float,
        scale: tuple[NDArray, NDArray] | None = None,
    ) -> None:
        """The first largest ``sx**2/sq`` of each run of ``group_start`` (groups ``groups``).

        With ``scale`` (per group ``(v, d)`` powers of two), ``sx``/``sq`` are the fixed-point
        sums: ``sx**2/sq`` times ``v`` and ``sx/sq`` times ``d`` are then the values in units of
        x, exactly (a power of two commutes with rounding), without a division per event.
        """
        ok = sq > 0
        v = np.zeros(len(sq))
        np.divide(sx * sx, sq, out=v, where=ok)
        v_run = np.maximum.reduceat(v, group_start)
        hit = np.flatnonzero(v == np.repeat(v_run, np.diff(np.append(group_start, len(v)))))
        v_max = v_run if scale is None else v_run * scale[0][groups]
        # the first hit of each group: hits sorted, one group per run between group starts
        which = np.searchsorted(group_start, hit, side="right") - 1
        pick = hit[np.concatenate([[True], which[1:] != which[:-1]])]
        better = v_max > best_v[groups]
        pick, r_s = pick[better], groups[better]
        best_v[r_s] = v_max[better]
        d = sx[pick] / np.where(ok[pick], sq[pick], np.inf)
        best_d[r_s] = sign * (d if scale is None else d * scale[1][r_s])

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
        first = (np.cumsum(count) - count).astype(np.uint64)
        code = (np.arange(n_seg, dtype=np.uint64)[:, None] << np.uint64(64 - rb)) | (
            np.arange(size, dtype=np.uint64)[None, :] << np.uint64(kb)
        )
        # The low bits of each key: segment | element | step k = k_lo + (event - first), one
        # repeat (uint64 arithmetic wraps: event >= first).
        tail = np.repeat(code.ravel() + k_lo.ravel().astype(np.uint64) - first, count)
        tail += np.arange(total, dtype=np.uint64)
        k = (tail & np.uint64((1 << kb) - 1)).astype(np.int64)
        with np.errstate(over="ignore"):  # subnormal values: their breakpoints at inf
            t = (k + 0.5) * np.repeat(1.0 / np.where(aa > 0, aa, 1.0).ravel(), count)
        keys = t.view(np.uint64) >> np.uint64(63 - tb)
        keys <<= np.uint64(kb + jb)
        keys |= tail
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
        # runs of events per group (a group's first non-empty segment may not be its first)
        grp_of_nz = row[nz]
        run_start = np.flatnonzero(np.concatenate([[True], grp_of_nz[1:] != grp_of_nz[:-1]]))
        ev_group_start = starts[nz][run_start]
        ev_groups = grp_of_nz[run_start]
        last = np.flatnonzero(k == big_k - 1)
        long1 = xpos.ravel()[row[seg[last]] * size + cell[last] % size]  # long side of d < 0
        lens = per_seg[nz]
        # Running sums in int64 fixed point: each step rounded to 2**-61 of its group's largest
        # possible sum, then added exactly, so no float rounding depends on the order (wrapping
        # is harmless: only differences within a segment are used, and those fit). The factors
        # 2**sh are per group, the same for all its segments (the same result whichever groups
        # are swept together): sum(w*a*|q|) * 2**sh_x and sum(w*q**2) * 2**sh_q as int64.
        sh = []  # per segment, from its group's sums
        for bound in (waa.sum(axis=1) * big_k, ww.sum(axis=1) * big_k * big_k):
            sh.append(np.where(bound > 0, np.minimum(61 - np.frexp(bound)[1], 1000), 0))
        scale = (np.zeros(g), np.zeros(g))
        scale[0][row] = np.ldexp(1.0, sh[1] - 2 * sh[0])
        scale[1][row] = np.ldexp(1.0, sh[1] - sh[0])
        fixed = []
        for step, sh_g, inits in (
            (waa, sh[0], [i[0] for i in init]),
            (ww, sh[1], [i[1] for i in init]),
        ):
            fx = np.ldexp(1.0, sh_g)  # (S,)
            ev = (step * fx[:, None]).ravel()[cell]
            if step is ww:
                ev *= 2 * k + 1
            init_fx = [np.rint(i * fx)[nz].astype(np.int64) for i in inits]
            fixed.append((np.rint(ev, out=ev).astype(np.int64), init_fx))
        for s, skip in ((0, last[long1]), (1, last[~long1])):
            sums = []
            for iv, init_fx in fixed:
                iv = iv.copy()
                iv[skip] = 0
                cum = np.cumsum(iv)
                cum -= np.repeat(cum[starts[nz]] - iv[starts[nz]] - init_fx[s], lens)
                sums.append(cum.astype(np.float64))
            consider(ev_group_start, ev_groups, sums[0], sums[1], 1.0 - 2 * s, scale)
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
CORE_WINDOW = (0.89, 0.69)


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
    ``t_hi``; below it a grid of exact lower bounds of ``R`` (per value the least distance to a
    code over each interval, :func:`_uncertified`) rules out most intervals, and the intervals
    left are swept too. The sweep sorts packed uint64 keys (segment, high bits of ``t``,
    element and step; near ties restored exactly) in one 1-D sort, with running sums in exact
    int64 fixed point, and the final ``(q, d)`` is rounding at the best scale, refitted.

    Why it is fast: instead of all ``N * 2**(n-1)`` breakpoints per group (4096 at 8 bits), about
    170 + 35 at 8 bits and 45 + 2 at 4 bits are swept (core window + below it; blocks of 32,
    N(0, 1)). The lower bounds are float32 passes over the group in pieces that stay in the
    cache, their weighted sums one matmul; the least distance on an interval (instead of a
    Lipschitz bound) leaves a third of the breakpoints below the core window, so that window
    could start higher at 8 bits. The sweep compares its fixed-point sums in their own units (a
    power of two per group, applied to each group's best only). Measured, blocks of 32, one core,
    CPU time, this version and the previous one interleaved in one run on the shared machine
    (load 1.1-2.8), 2**20 float32 values (2**17 at 8 bits), N(0, 1) and Student-t(3), weighted or
    not: 4 bits 250-315 ms per million values (was 300-400; 660-830 for the sort of every
    breakpoint), 8 bits 1,010-1,390 (was 1,350-1,960; 9,400-12,400), the same errors bit for bit.
    Where the time goes (4 / 8 bits, N(0, 1), ms per million): the upper bound 20 / 30, the lower
    bounds 40 / 480, the sweeps 190 / 690, rounding, refit and validation about 40.
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
