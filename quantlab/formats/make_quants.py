"""llama.cpp's per-block searches for the K-quants and the imatrix paths, vectorized.

Every function here works on many blocks at once laid out as ``(position in block, block)``:
an array ``x`` of shape ``(n, nb)`` holds ``nb`` blocks of ``n`` values, block ``b`` in column
``b``. That layout is what makes the reference's arithmetic both exact and fast in NumPy:

- llama.cpp adds the terms of a block one by one in float32 (``s += t``). Reducing axis 0 of a
  C-contiguous ``(n, nb)`` array does exactly that, column by column (NumPy adds row after row
  into the result; only a reduction along the contiguous axis is pairwise), so
  :func:`ordered_sum` gives the reference's sums to the last bit in one call, and a sum of
  products ``Σ a b`` (or ``Σ a b c``) is one :func:`dot_sum` (an einsum that adds the rounded
  products row after row without an intermediate array; checked once at import to be exactly
  the ordered sum on this NumPy, else the plain product and reduction are used).
- each step of a search (a trial scale, a coordinate-descent round) is then a handful of
  elementwise operations over all ``nb`` blocks, never a Python loop over blocks; what a search
  keeps of its best trial goes to small per-trial tables and is selected by index at the end,
  without masked copies (whose branches mispredict on random masks).

All arithmetic is float32, with the operations in the reference's order (``w*x*l`` is
``(w*x)*l``), so the results are bit-exact with llama.cpp's C (``ggml-quants.c``). The names
and formulas below follow that file; the code is our own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

F32 = np.float32
#: Blocks whose largest magnitude is below this are "all zero" (llama.cpp's GROUP_MAX_EPS).
GROUP_MAX_EPS = F32(1e-15)
_MAGIC = F32(12582912.0)  # 1.5 * 2**23


def nearest_int(v: ArrayLike) -> NDArray[np.int32]:
    """llama.cpp's ``nearest_int``: round float32 values half to even, as int32.

    The reference adds ``1.5 * 2**23`` in float32 and reads the integer from the low 23 bits of
    the sum: for ``|v| <= 2**22`` the addition itself rounds ``v`` to the nearest integer, ties
    to even (``nearest_int(0.5) = 0``, ``nearest_int(1.5) = 2``, ``nearest_int(-2.5) = -2``),
    which is ``np.rint``. Beyond ``2**22`` the result is the same wrapped value as in C.

    Examples
    --------
    >>> nearest_int([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999998]).tolist()
    [0, 2, 2, 0, -2, 2]
    """
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.asarray(v, F32) + _MAGIC
    return (s.view(np.int32) & np.int32(0x7FFFFF)) - np.int32(0x400000)


def _rint(v: NDArray[np.float32]) -> NDArray[np.float32]:
    """nearest_int as a float32 array (in place), for values known to be within ``2**22``."""
    return np.rint(v, out=v)


def ordered_sum(terms: NDArray[np.float32], *, from_zero: bool = True) -> NDArray[np.float32]:
    """Sum over axis 0 in float32, one term after the other: ``((0 + t0) + t1) + ...``.

    The reference accumulates ``s += t`` in its loop order; a reduction of axis 0 of a
    C-contiguous array adds the rows in that same order (NumPy's pairwise summation only applies
    along the contiguous axis), so this is bit-exact with the C loop. ``from_zero=False`` is a
    loop started at ``t0`` instead of ``0`` (they differ only in the sign of an all ``-0.0`` sum).
    A single column is contiguous, and NumPy would sum it pairwise: it is added in a loop.
    """
    if terms.ndim == 2 and terms.shape[1] == 1:
        # One column is a contiguous vector, which NumPy would sum pairwise: add in order.
        s = np.zeros(1, F32) if from_zero else terms[0].copy()
        for t in terms if from_zero else terms[1:]:
            s += t
        return s
    s = np.add.reduce(terms, axis=0)  # NumPy starts the reduction at +0.0, as from_zero does
    if not from_zero:
        # Started at t0 instead, the sum differs only when every term is -0.0 (it stays -0.0).
        zero = np.flatnonzero(s == 0)
        if zero.size:
            cols = terms[:, zero]
            s[zero[np.all((cols == 0) & np.signbit(cols), axis=0)]] = F32(-0.0)
    return s


def _einsum_is_ordered() -> bool:
    """Whether ``np.einsum('ij,ij->j')`` (and its three-operand form) is :func:`ordered_sum`.

    einsum adds the products into its output row after row, without an intermediate array,
    which makes it about 1.5 times faster than a product followed by a reduction. That it
    rounds each product to float32 before adding it (no fused multiply-add) and adds in order
    is a property of the NumPy build, not a promise, so it is checked once here on cases that
    expose both (a product whose rounding a fused multiply-add would skip; 2**24 + 1 + 1, which
    a pairwise or vectorised partial sum would keep) and on random data, for the block counts
    it is used with; if any differs, the plain product and reduction are used instead.
    """
    rng = np.random.default_rng(0)
    for n, nb in ((16, 64), (32, 64), (8, 67), (16, 4099)):
        a = rng.standard_normal((n, nb)).astype(F32)
        b = rng.standard_normal((n, nb)).astype(F32)
        c = rng.standard_normal((n, nb)).astype(F32)
        a[:2], b[:2] = np.array([[-1], [1 + 2**-12]], F32), np.array([[1], [1 + 2**-12]], F32)
        a[2:6], b[2:6] = np.array([2**24, 1, 1, -(2**24)], F32)[:, None], F32(1)
        with np.errstate(all="ignore"):
            two = np.einsum("ij,ij->j", a, b)
            three = np.einsum("ij,ij,ij->j", a, b, c)
            same = np.array_equal(two, ordered_sum(a * b), equal_nan=True) and np.array_equal(
                three, ordered_sum(a * b * c), equal_nan=True
            )
        if not same:
            return False
    return True


#: Fewest blocks (columns) for which einsum sums products (a single column sums differently).
_EINSUM_MIN_BLOCKS = 64
_EINSUM_ORDERED = _einsum_is_ordered()


def dot_sum(
    a: NDArray[np.float32],
    b: NDArray[np.float32],
    c: NDArray[np.float32] | None = None,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """``ordered_sum(a * b)`` (or ``ordered_sum(a * b * c)``, the product ``(a*b)*c``) per column.

    Bit-exact with the reference's ``s += a*b`` loop; by one einsum where that was verified on
    this NumPy (see :func:`_einsum_is_ordered`) and there are enough columns, else by a product
    and :func:`ordered_sum`.
    """
    if _EINSUM_ORDERED and a.ndim == 2 and a.shape[1] >= _EINSUM_MIN_BLOCKS:
        if c is None:
            return np.einsum("ij,ij->j", a, b, out=out)
        return np.einsum("ij,ij,ij->j", a, b, c, out=out)
    s = ordered_sum(a * b if c is None else a * b * c)
    if out is None:
        return s
    out[...] = s
    return out


def _signed_absmax(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``(amax, max)`` per column: the largest ``|x|`` and the first value reaching it, signed.

    The reference keeps the first value of strictly largest magnitude. From the column maximum
    ``hi`` and minimum ``lo`` that is ``hi`` if ``hi > -lo`` and ``lo`` if ``hi < -lo``; only a
    column holding both ``+a`` and ``-a`` needs its first occurrence looked up.
    """
    hi = x.max(axis=0)
    lo = x.min(axis=0)
    amax = np.maximum(hi, -lo)
    mx = np.where(hi >= -lo, hi, lo)
    tie = np.flatnonzero((hi == -lo) & (hi != 0))
    if tie.size:
        cols = x[:, tie]
        first = np.argmax(np.abs(cols) == amax[tie], axis=0)
        mx[tie] = cols[first, np.arange(tie.size)]
    return amax, np.where(amax == 0, F32(0), mx)


def make_qx_quants(
    x: NDArray[np.float32], nmax: int, weights: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Symmetric codes with the best of 19 trial scales (llama.cpp ``make_qx_quants``, rmse 1).

    For each block with signed extreme value ``m`` (largest magnitude, first occurrence) and
    weights ``w`` (default ``x**2``), the trial inverse scales are
    ``iscale_k = -(nmax + k/10) / m`` for ``k = 0, -9, ..., 9``; each gives codes
    ``l = clip(nearest_int(iscale_k * x), -nmax, nmax - 1)`` and the weighted least-squares scale
    ``d = Σ w x l / Σ w l²``, whose error is ``Σ w x² - d Σ w x l``. The trial that maximises
    ``(Σ w x l)² / Σ w l²`` (strictly; ``k = 0`` first) is kept.

    Why it is fast: a trial is four whole-array passes (product, rounding, clipping, and the two
    sums as fused products, :func:`dot_sum`); its sums go to one row of a (19, blocks) table,
    and the reference's sequential choice is then one scan over the rows without masked
    copies (a masked copy's branches mispredict on random masks: 3 ns a value). Measured on
    1024 x 4096 float32, one thread, against the previous version (a product and a reduction
    per sum, masked updates of the best trial after each one): Q6_K 218 -> 172 ms, Q5_0 with an
    imatrix 204 -> 153 ms.

    Parameters
    ----------
    x : ndarray of float32, shape (n, nb)
        ``nb`` blocks of ``n`` values, one block per column.
    nmax : int
        Codes lie in ``[-nmax, nmax - 1]`` (4 for Q3_K, 8 for Q4_0, 16 for Q5_0, 32 for Q6_K).
    weights : ndarray of float32, shape (n, nb), optional
        Importance of each value; ``x**2`` when omitted.

    Returns
    -------
    scale : ndarray of float32, shape (nb,)
        The fitted ``d`` (0 for a block with ``max|x| < 1e-15``).
    codes : ndarray of uint8, shape (n, nb)
        ``l + nmax`` in ``[0, 2 nmax - 1]`` (all 0 for an all-zero block).
    """
    amax, mx = _signed_absmax(x)
    zero = amax < GROUP_MAX_EPS
    mx = np.where(zero, F32(1), mx)
    w = x * x if weights is None else weights
    wx = w * x
    lv = np.empty_like(x)
    # the 19 trials in the reference's order, k = 0 first; one row of sums per trial
    steps = [F32(-nmax)] + [-(F32(nmax) + F32(0.1) * F32(k)) for k in range(-9, 10) if k]
    iscales = np.array(steps, F32)[:, None] / mx
    sumlx = np.empty(iscales.shape, F32)
    suml2 = np.empty(iscales.shape, F32)
    lo, hi = F32(-nmax), F32(nmax - 1)
    for t, iscale in enumerate(iscales):
        np.multiply(x, iscale, out=lv)
        np.clip(_rint(lv), lo, hi, out=lv)
        dot_sum(wx, lv, out=sumlx[t])
        dot_sum(w, lv, lv, out=suml2[t])
    # The reference keeps a trial when suml2 > 0 and sumlx² > best·suml2 (strictly), with
    # best = scale·sumlx of the trial kept so far: a scan over the trials, on vectors of blocks,
    # without masked copies (their branches mispredict on random masks): the kept trial is a
    # flat index into the stacked trials that only grows, so max(kept, better · index) updates it.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scales = sumlx / suml2
        scales[0] = np.where(suml2[0] != 0, scales[0], F32(0))  # trial 0: scale 0 if suml2 == 0
        bests = scales * sumlx
        squares = sumlx * sumlx
    usable = suml2 > 0
    nb = mx.size
    itype = np.int32 if scales.size < 2**31 else np.intp
    index = np.arange(scales.size, dtype=itype).reshape(scales.shape)
    kept = index[0].copy()
    best = bests[0].copy()
    better = np.empty(nb, bool)
    bound = np.empty(nb, F32)
    step = np.empty(nb, itype)
    flat_bests = bests.reshape(-1)
    for t in range(1, len(steps)):
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(best, suml2[t], out=bound)
        np.greater(squares[t], bound, out=better)
        better &= usable[t]
        np.maximum(kept, np.multiply(better, index[t], out=step), out=kept)
        np.take(flat_bests, kept, out=best)
    scale = scales.reshape(-1)[kept]
    np.multiply(x, iscales.reshape(-1)[kept], out=lv)
    np.clip(_rint(lv), lo, hi, out=lv)
    codes = (lv + F32(nmax)).astype(np.uint8)
    codes[:, zero] = 0
    return np.where(zero, F32(0), scale), codes


def _propose(
    x: NDArray[np.float32],
    lv: NDArray[np.float32],
    slx: NDArray[np.float32],
    sl2: NDArray[np.float32],
    v: NDArray[np.float32],
    lo: int,
    hi: int,
    need_both_positive: bool,
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """One evaluation of every position: the flat indices where a new code is proposed, and it.

    ``slx``, ``sl2`` hold ``Σ - w x l_i`` and ``Σ - w l_i²`` per position; ``v`` is a buffer.
    The proposal ``clip(nearest_int(x sl2 / slx), lo, hi)`` counts where it differs from the
    code and ``slx > 0`` (and ``sl2 > 0`` where ``need_both_positive``).
    """
    np.multiply(x, sl2, out=v)
    v /= slx
    new = np.rint(v)
    # Where the rounded value equals the code, so does the clipped one: the clip (and the
    # conditions on the sums) are applied to the other positions only.
    f = np.flatnonzero(new != lv)
    ok = slx.reshape(-1)[f] > 0
    if need_both_positive:
        ok &= sl2.reshape(-1)[f] > 0
    f = f[ok]
    vc = v.reshape(-1)[f]
    newc = np.clip(new.reshape(-1)[f], F32(lo), F32(hi))
    big = np.abs(vc) > F32(4194303)  # beyond nearest_int's exact range: as in C
    if big.any():
        newc[big] = np.clip(nearest_int(vc[big]), lo, hi)
    keep = newc != lv.reshape(-1)[f]
    f, newc = f[keep], newc[keep]
    return f, newc


@dataclass
class _Moving:
    """The blocks of a coordinate descent that go on after its first round, as rows.

    ``xwl`` holds the blocks' values ``x``, weights ``w`` and codes ``lv`` as rows, float32 of
    shape ``(3, R, n)``: a round gathers the rows of its active blocks with one ``take``, into
    three contiguous ``(active, n)`` arrays (so that every later operation is one flat loop,
    not 16-long ones), and recomputes the products ``w·x`` and the terms of the sums exactly
    as the reference forms them (cheaper than gathering them too). Per row: the
    sums ``sx = Σ w x l`` and ``s2 = Σ w l²``, the sweep it is in (the reference's ``itry``),
    its next position in that sweep and the caller's column ``cols`` it came from; ``act``
    lists the rows still moving. Parts from several calls can be joined (:meth:`join`) and
    descended together, so that the later rounds, a fixed number of NumPy calls each whatever
    the number of blocks, are paid once for all.
    """

    xwl: NDArray[np.float32]
    sx: NDArray[np.float32]
    s2: NDArray[np.float32]
    sweep: NDArray[np.intp]
    ptr: NDArray[np.intp]
    cols: NDArray[np.intp]
    act: NDArray[np.intp]

    @classmethod
    def join(cls, parts: list[_Moving]) -> _Moving:
        """The still-moving rows of ``parts`` as one set (``cols`` as the parts had them)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "act"]
        joined = {}
        for k in names:
            axis = 1 if k == "xwl" else 0
            joined[k] = np.concatenate([np.take(getattr(p, k), p.act, axis=axis) for p in parts],
                                       axis=axis)  # fmt: skip
        return cls(**joined, act=np.arange(joined["sx"].size))


def _descend_rounds(
    st: _Moving,
    lo: int,
    hi: int,
    need_both_positive: bool,
    wrap_u8: bool,
    first: tuple | None = None,
    max_rounds: int | None = None,
) -> None:
    """Rounds of :func:`_descend` on the rows of ``st`` until none moves (or ``max_rounds``).

    ``first`` gives the candidates of a round already evaluated (as row, position, proposed
    code and the position's ``slx``, ``sl2``), else each round evaluates every position of the
    active rows. Updates ``st`` in place.
    """
    n = st.xwl.shape[2]
    field = st.xwl.shape[1] * n  # element (field, r, i) of xwl at field * (R n) + r n + i
    flat = st.xwl.reshape(-1)
    rounds = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while st.act.size and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            act = st.act
            na = act.size
            sx, s2 = st.sx[act], st.s2[act]
            if first is not None:
                bl, pos, newc, slx_f, sl2_f = first
                first = None
            else:
                rows = st.xwl if na == st.sx.size else np.take(st.xwl, act, axis=1)
                xa, wa, la = rows
                # the terms (w x) l and (w l) l of the sums; the sums broadcast along rows of n
                # by repeat (a broadcast over an inner axis of 16 costs 2-3 flat operations)
                t = np.multiply(wa, xa)
                t *= la
                slx = np.subtract(np.repeat(sx, n).reshape(na, n), t, out=t)
                u = np.multiply(wa, la)
                u *= la
                sl2 = np.subtract(np.repeat(s2, n).reshape(na, n), u, out=u)
                f, newc = _propose(xa, la, slx, sl2, np.empty_like(slx), lo, hi,
                                   need_both_positive)  # fmt: skip
                bl, pos = np.divmod(f, n)
                slx_f, sl2_f = slx.reshape(-1)[f], sl2.reshape(-1)[f]
            r3 = act[bl] * n + pos  # x of each candidate in flat; w and l a field further
            wc = flat[r3 + field]
            slx_c = wc * flat[r3]
            slx_c *= newc
            slx_c += slx_f
            sl2_c = wc * newc
            sl2_c *= newc
            sl2_c += sl2_f
            sxc = sx[bl]
            accept = slx_c * slx_c * s2[bl] > sxc * sxc * sl2_c
            if not need_both_positive:
                accept &= sl2_c > 0
            e = np.flatnonzero(accept)
            if e.size == 0:
                st.act = act[:0]
                break
            # Each block's next move: its first accepted position at or after its pointer or,
            # if none, the sweep ends and the next one moves at its first accepted position.
            be, pe = bl[e], pos[e]
            key = pe + n * (pe < st.ptr[act[be]])
            best = np.full(na, 2 * n, np.intp)
            np.minimum.at(best, be, key)
            moving = np.flatnonzero(best < 2 * n)
            k = best[moving]
            end = k >= n
            q = k - n * end
            g = act[moving]  # row of each moving block
            sw = st.sweep[g] + end
            # the accepted entry (block, q) of each moving block
            chosen = np.flatnonzero(key == best[be])  # one per moving block
            entry = np.empty(na, np.intp)
            entry[be[chosen]] = e[chosen]
            sel = entry[moving]
            live = sw < 5
            if not live.all():
                g, q, sw, sel = g[live], q[live], sw[live], sel[live]
            if g.size == 0:
                st.act = act[:0]
                break
            nl = newc[sel]
            if wrap_u8:
                nl = np.mod(nl, F32(256))
            flat[g * n + q + 2 * field] = nl
            st.sx[g] = slx_c[sel]
            st.s2[g] = sl2_c[sel]
            p = q + 1
            wrap = p == n  # the move ended the sweep: the next one starts at position 0
            p[wrap] = 0
            sw += wrap
            st.ptr[g] = p
            st.sweep[g] = sw
            st.act = g[sw < 5]


def _descend_start(
    x: NDArray[np.float32],
    w: NDArray[np.float32],
    lv: NDArray[np.float32],
    lo: int,
    hi: int,
    *,
    need_both_positive: bool,
    sums: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None,
    wrap_u8: bool = False,
    rows_of: Callable[[NDArray[np.intp]], NDArray[np.float32]] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32], _Moving]:
    """The first round of :func:`_descend`; ``(Σwxl, Σwl²)`` after it and the rows that go on.

    The sums are those of the codes ``lv`` (not modified) for the blocks that do not move,
    and of the codes after the first move for the others; the returned rows hold those codes
    (:func:`_descend_rounds` goes on with them). ``rows_of(cols)``, if given, returns the
    ``(x, w, lv)`` rows of those blocks (shape ``(3, len(cols), n)``) from another copy of the
    data, cheaper than gathering columns one value at a time.
    """
    n, nb = x.shape
    wx = w * x
    wxl = wx * lv  # the terms w x l and w l² of the sums
    wl2 = w * lv
    wl2 *= lv
    if sums is None:
        sums = ordered_sum(wxl), ordered_sum(wl2)
    sumlx, suml2 = sums
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Round 1, on the (position, block) layout as given: every block at its first position.
        slx = np.subtract(sumlx, wxl, out=wxl)
        sl2 = np.subtract(suml2, wl2, out=wl2)
        f, newc = _propose(x, lv, slx, sl2, np.empty_like(x), lo, hi, need_both_positive)
        ci, cb = np.divmod(f, nb)
        # the state of the blocks that go on, copied as rows (block, position)
        has = np.zeros(nb, bool)
        has[cb] = True
        rows = np.flatnonzero(has)
        if rows_of is not None:
            xwl = rows_of(rows)
        else:
            xwl = np.empty((3, rows.size, n), F32)
            for i, a in enumerate((x, w, lv)):
                xwl[i] = np.take(a, rows, axis=1).T
        zeros = np.zeros(rows.size, np.intp)
        st = _Moving(xwl, sumlx[rows], suml2[rows], zeros, zeros.copy(), rows,
                     np.arange(rows.size))  # fmt: skip
        local = (np.cumsum(has) - 1)[cb]  # each candidate's row
        first = (local, ci, newc, slx.reshape(-1)[f], sl2.reshape(-1)[f])
        _descend_rounds(st, lo, hi, need_both_positive, wrap_u8, first, max_rounds=1)
        sumlx = sumlx.copy()
        suml2 = suml2.copy()
        sumlx[rows], suml2[rows] = st.sx, st.s2
    return sumlx, suml2, st


def _descend(
    x: NDArray[np.float32],
    w: NDArray[np.float32],
    lv: NDArray[np.float32],
    lo: int,
    hi: int,
    *,
    need_both_positive: bool,
    **start: Any,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Coordinate descent on the codes ``lv`` (in place), up to 5 sweeps; ``(Σwxl, Σwl²)``.

    The reference's loop: one sweep visits the positions in order; at position ``i`` the other
    values fix ``slx = Σ_{j≠i} w x l`` and ``sl2 = Σ_{j≠i} w l²`` (computed as ``Σ - w x l_i``
    and ``Σ - w l_i²``), the best code for ``x_i`` alone is ``nearest_int(x_i sl2 / slx)``
    clipped to ``[lo, hi]``, and it is taken ("a move") when it increases
    ``(Σ w x l)² / Σ w l²`` strictly (``slx`` must be positive, and ``sl2`` too where
    ``need_both_positive``; otherwise the new ``sl2``). A sweep without a move ends the descent.

    Why it is fast: moves are rare (a few per hundred values), and until a block moves, every
    position of it sees the same sums. So the descent runs as rounds of events: a round
    evaluates every position of every still-active block at once (a few whole-array float32
    operations), keeps the candidates (the proposed code differs: about 3 % of the positions),
    tests them, and makes in each block its next move in sweep order — the first accepted
    position at or after the block's pointer or, when there is none, the first one of the next
    sweep (the state has not changed since, so this round's evaluation is that sweep's too). A
    block with no move left has converged and leaves the active set. On Gaussian data (Q3_K)
    three quarters of the blocks converge in the first round, on the layout as given
    (:func:`_descend_start`); the others are copied once to rows (:class:`_Moving`), and each
    later round gathers its active blocks' rows with one ``take`` (:func:`_descend_rounds`).
    The result is the reference's, move for move.

    ``start`` are :func:`_descend_start`'s keywords: ``sums`` gives the starting sums when they
    were computed from other codes than ``lv`` holds; ``wrap_u8`` stores an accepted code
    modulo 256, as the reference's ``uint8_t`` codes do (a negative code can come up there
    when a sub-block scale is negative).
    """
    sumlx, suml2, st = _descend_start(x, w, lv, lo, hi, need_both_positive=need_both_positive,
                                      **start)  # fmt: skip
    _descend_rounds(st, lo, hi, need_both_positive, start.get("wrap_u8", False))
    _put_rows(lv, st)
    sumlx[st.cols], suml2[st.cols] = st.sx, st.s2
    return sumlx, suml2


def _put_rows(lv: NDArray[np.float32], st: _Moving) -> None:
    """Write the codes of the rows of ``st`` back into their columns of ``lv``."""
    if st.cols.size:
        for lrow, crow in zip(lv, st.xwl[2].T, strict=True):  # row by row: 2x faster than 2-D
            lrow[st.cols] = crow


def make_q3_quants(
    x: NDArray[np.float32], nmax: int = 4
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Q3_K's symmetric codes without an imatrix (llama.cpp ``make_q3_quants``, rmse on).

    Start from ``l = clip(nearest_int(-nmax x / m), -nmax, nmax - 1)`` (``m`` the signed extreme
    value), then improve the codes one at a time by coordinate descent with weights ``w = x**2``
    (see :func:`_descend`); return ``d = Σ w x l / Σ w l²``.

    Only the blocks whose extreme value ``m`` is negative can move: where ``m > 0`` the
    inverse scale ``-nmax/m`` is negative (the reference's sign), every ``l_i`` has the sign of
    ``-x_i``, every term ``w x l`` is ≤ 0, and so the float32 sum ``Σ w x l`` has at least the
    magnitude of each term: ``slx = Σ - w x l_i ≤ 0`` at every position, and no move can pass the
    reference's ``slx > 0``. So only those blocks take part in the later rounds (half of the
    blocks on symmetric data); the first round runs on all (see :func:`_q3_start`).

    Returns
    -------
    scale : ndarray of float32, shape (nb,)
    codes : ndarray of uint8, shape (n, nb)
        ``l + nmax`` (all 0 for a block with ``max|x| < 1e-15``).
    """
    sumlx, suml2, amax, lv, st = _q3_start(x, nmax)
    zero = amax < GROUP_MAX_EPS
    _descend_rounds(st, -nmax, nmax - 1, False, False)
    _put_rows(lv, st)
    sumlx[st.cols], suml2[st.cols] = st.sx, st.s2
    codes = (lv + F32(nmax)).astype(np.uint8)
    codes[:, zero] = 0
    return _q3_scale(sumlx, suml2, zero), codes


def make_q3_scales(
    parts: Iterable[tuple[NDArray[np.float32], NDArray[np.float32] | None]], nmax: int = 4
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The scales of :func:`make_q3_quants` for several arrays of blocks, concatenated.

    ``parts`` yields pairs ``(x, x_rows)``: ``x`` of shape ``(n, nb_i)`` (a cache-sized piece
    of a tensor, one block per column) and the same blocks as rows ``(nb_i, n)`` (or None).
    Each part gets its initial codes, sums and first descent round on its own; the blocks
    still moving after that (a fifth of them on Gaussian data) are joined and descended
    together. The later rounds cost a fixed number of NumPy calls each, about ten rounds per
    set of blocks, so pooling them pays that overhead once instead of once per part. The codes
    are not built (Q3_K needs them only where a quantized sub-block scale is 0;
    :func:`make_q3_quants` gives them). Returns the scales and each block's largest ``|x|``.
    """
    sums, amaxes, moving, offset = [], [], [], 0
    for x, x_rows in parts:
        sumlx, suml2, amax, _, st = _q3_start(x, nmax, x_rows)
        st.cols += offset
        offset += x.shape[1]
        sums.append((sumlx, suml2))
        amaxes.append(amax)
        moving.append(st)
    sumlx = np.concatenate([a for a, _ in sums])
    suml2 = np.concatenate([b for _, b in sums])
    pool = _Moving.join(moving)
    _descend_rounds(pool, -nmax, nmax - 1, False, False)
    sumlx[pool.cols], suml2[pool.cols] = pool.sx, pool.s2
    amax = np.concatenate(amaxes)
    return _q3_scale(sumlx, suml2, amax < GROUP_MAX_EPS), amax


def _q3_scale(
    sumlx: NDArray[np.float32], suml2: NDArray[np.float32], zero: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """make_q3_quants' ``d = Σ w x l / Σ w l²`` (0 where ``Σ w l² = 0`` or the block is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((suml2 > 0) & ~zero, sumlx / suml2, F32(0))


def _q3_start(
    x: NDArray[np.float32], nmax: int, x_rows: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.float32],
           _Moving]:  # fmt: skip
    """make_q3_quants up to its first descent round: sums, ``max |x|``, initial codes, rows.

    The sums are final for every block but the rows' (those still moving, at columns
    ``rows.cols``); ``lv`` holds the initial codes, the rows the codes after the first round.
    ``x_rows`` (optional) is the same blocks as rows, ``(nb, n)``, where the moving blocks'
    rows are gathered from (a row at a time instead of a value at a time).

    The first round runs on every block, not only those it can move (``m < 0``): gathering
    those columns first costs more than the round on the others (where every ``slx ≤ 0``, so
    that the round proposes nothing), and the round's terms give the sums too.
    """
    amax, mx = _signed_absmax(x)
    zero = amax < GROUP_MAX_EPS
    mx = np.where(zero, F32(1), mx)
    iscale = F32(-nmax) / mx
    lv = _rint(x * iscale)
    lo, hi = F32(-nmax), F32(nmax - 1)
    np.clip(lv, lo, hi, out=lv)
    w = x * x

    def rows_of(cols: NDArray[np.intp]) -> NDArray[np.float32]:
        out = np.empty((3, cols.size, x.shape[0]), F32)
        xr = np.take(x_rows, cols, axis=0, out=out[0])
        np.multiply(xr, xr, out=out[1])
        lr = np.multiply(xr, np.repeat(iscale[cols], x.shape[0]).reshape(xr.shape), out=out[2])
        np.clip(_rint(lr), lo, hi, out=lr)  # the same products as lv: the same codes
        return out

    sumlx, suml2, st = _descend_start(x, w, lv, -nmax, nmax - 1, need_both_positive=False,
                                      rows_of=None if x_rows is None else rows_of)  # fmt: skip
    return sumlx, suml2, amax, lv, st


def make_qp_quants(
    x: NDArray[np.float32], nmax: int, weights: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Non-negative codes for non-negative values: the "scales of scales" (``make_qp_quants``).

    Used to quantize a super-block's sub-block scales (and mins) with an imatrix. With
    ``max = max(x)``: the trial inverse scales ``(nmax + k/10) / max`` for ``k = 0, ±1..±4``,
    codes ``l = min(nmax, nearest_int(iscale x))``, keep the trial with the lowest
    ``Σ w (x - l/iscale)²`` (strictly); then coordinate descent on the codes as in
    :func:`make_q3_quants` (codes in ``[0, nmax]``, a move needs ``slx > 0`` and ``sl2 > 0``), and
    return the least-squares ``d = Σ w x l / Σ w l²``.

    Parameters
    ----------
    x : ndarray of float32, shape (n, nb)
        Non-negative values (sub-block scales or mins), one super-block per column.
    nmax : int
        Largest code (15 for Q2_K, 63 for Q4_K/Q5_K).
    weights : ndarray of float32, shape (n, nb)

    Returns
    -------
    scale : ndarray of float32, shape (nb,)
    codes : ndarray of uint8, shape (n, nb)
    """
    mx = np.maximum(x.max(axis=0), F32(0))
    zero = mx < GROUP_MAX_EPS
    mx = np.where(zero, F32(1), mx)
    w = weights
    iscale = F32(nmax) / mx
    scale0 = F32(1) / iscale
    lv = _rint(x * iscale)  # the first trial is not clipped to nmax
    diff = x - scale0 * lv
    best_mse = ordered_sum(w * diff * diff)
    for k in range(-4, 5):
        if k == 0:
            continue
        iscale_k = (F32(0.1) * F32(k) + F32(nmax)) / mx
        scale_k = F32(1) / iscale_k
        lk = np.minimum(_rint(x * iscale_k), F32(nmax))
        diff = x - scale_k * lk
        mse = ordered_sum(w * diff * diff)
        better = mse < best_mse
        best_mse = np.where(better, mse, best_mse)
        iscale = np.where(better, iscale_k, iscale)
    lv = np.minimum(_rint(x * iscale), F32(nmax))
    sums = ordered_sum(w * x * lv), ordered_sum(w * lv * lv)
    lv = np.mod(lv, F32(256))  # the codes are uint8_t in the reference
    sumlx, suml2 = _descend(x, w, lv, -(2**30), nmax, need_both_positive=True, sums=sums,
                            wrap_u8=True)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where((suml2 > 0) & ~zero, sumlx / suml2, F32(0))
    codes = lv.astype(np.int64).astype(np.uint8)
    codes[:, zero] = 0
    return scale, codes


def _first_zero(x: NDArray[np.float32], m: NDArray[np.float32]) -> NDArray[np.float32]:
    """Restore the sign of a zero running min (or max) of each column as the reference has it.

    The reference's running minimum and maximum start at ``x[0]`` and move only on a strict
    comparison, so where the extreme is zero it is the first ``+0.0``/``-0.0`` in the column. The
    sign matters: ``max - min`` can then be ``-0.0`` and a trial's inverse scale ``-inf``.
    """
    at_zero = m == 0
    if at_zero.any():
        cols = x[:, at_zero]
        first = np.zeros(cols.shape[1], F32)
        for i in range(cols.shape[0] - 1, -1, -1):
            np.copyto(first, cols[i], where=cols[i] == 0)
        m = m.copy()
        m[at_zero] = first
    return m


def make_qkx_quants(
    x: NDArray[np.float32],
    nmax: int,
    weights: NDArray[np.float32],
    rmin: float,
    rdelta: float,
    nstep: int,
    *,
    use_mad: bool = False,
    version: int = 2,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8]]:
    """Codes with a scale and a minimum ≤ 0 by a search over the range (``make_qkx2/3_quants``).

    This is the course's offset search (SPEC item 7) in code units: with ``min = min(x, 0)``,
    ``max = max(x)``, trial ``k = 0..nstep`` uses the inverse scale
    ``iscale_k = (nmax + rmin + k·rdelta) / (max - min)`` — the number of steps spanned by the
    range is perturbed, not the range itself, so the search is the same for ``x`` and ``c·x``
    (scale invariant). Each trial rounds ``l = clip(nearest_int(iscale_k (x - min)), 0, nmax)``,
    refits ``scale`` and ``min`` by weighted least squares (the 2×2 normal equations,
    ``D = Σw Σwl² - (Σwl)²``; if the fitted min is positive it is set to 0 and
    ``scale = Σwxl / Σwl²``), and is kept when its error ``Σ w (scale l + min - x)²``
    (``|…|`` with ``use_mad``) is strictly lower. Note that ``min`` in the next trial's rounding
    is the best one so far, as in the reference.

    ``version=3`` is ``make_qkx3_quants``: the same search, used with an imatrix (and a finer
    grid ``rmin=-0.9, rdelta=0.05, nstep=36``); it treats ``max <= min`` as degenerate. When the
    best min so far has reached ``max`` a trial's inverse scale is infinite; the codes are then
    what the reference's ``nearest_int`` makes of inf and NaN (0 after the clip), as in the
    ggml built by ggml-python 0.0.45 (newer llama.cpp guards this case explicitly).

    Why it is fast: a trial touches three arrays of the block's size only (the values, the
    weights and the codes, whose buffer then takes the differences of the error): four passes
    for the codes, three fused sums (:func:`dot_sum`) and four passes for the error; what the
    reference keeps of the best trial goes to small per-trial tables and is selected by a growing
    index, without masked copies. On 1024 x 4096 float32, one thread, this took the Q4_K search
    from 7.5 to 6.4 ms per chunk of 256 super-blocks, Q2_K's from 5.6-6.3 to 4.4-5.9 ms (a product
    array per sum, a separate buffer for the error, masked updates of the best trial before).

    Parameters
    ----------
    x, weights : ndarray of float32, shape (n, nb)
        Blocks of values and their weights, one block per column.
    nmax : int
        Largest code (3, 15 or 31).
    rmin, rdelta : float
        First perturbation of ``nmax`` and its step.
    nstep : int
        Number of steps (``nstep + 1`` trials after the plain min/max one).
    use_mad : bool
        Absolute instead of squared error (Q2_K without an imatrix).

    Returns
    -------
    scale : ndarray of float32, shape (nb,)
    the_min : ndarray of float32, shape (nb,)
        ``-min`` (≥ 0): decoding is ``scale*l - the_min``.
    codes : ndarray of uint8, shape (n, nb)
    """
    w = weights
    x_min = x.min(axis=0)
    mn = _first_zero(x, x_min)
    mx = _first_zero(x, x.max(axis=0))
    mn = np.where(mn > 0, F32(0), mn)
    degenerate = (mx <= mn) if version == 3 else (mx == mn)
    sum_w = ordered_sum(w, from_zero=False)
    sum_x = ordered_sum(w * x, from_zero=False)
    span = np.where(degenerate, F32(1), mx - mn)
    iscale = F32(nmax) / span
    scale = F32(1) / iscale

    def codes_for(iscale: NDArray, round_min: NDArray, out: NDArray) -> NDArray:
        """``clip(nearest_int(iscale (x - round_min)), 0, nmax)`` as float32, into ``out``."""
        np.subtract(x, round_min, out=out)
        out *= iscale
        # (two whole-array reductions: cheaper than bounding |v| from per-block vectors)
        if not (out.max() <= F32(4194303) and out.min() >= F32(-4194303)):
            # A trial whose range has collapsed (the best min so far reached max): inf, NaN or
            # huge values, which the reference's nearest_int turns into these integers.
            out[...] = np.clip(nearest_int(out), 0, nmax)
            return out
        np.clip(out, F32(0), F32(nmax), out=out)
        return _rint(out)

    def error(s: NDArray, m: NDArray, lv: NDArray, out: NDArray | None = None) -> NDArray:
        """``Σ w (s l + m - x)²`` (or ``Σ w |s l + m - x|``) in the reference's order.

        The differences overwrite ``lv`` (a trial's codes are not needed after its error).
        """
        diff = np.multiply(s, lv, out=lv)
        diff += m
        diff -= x
        if use_mad:
            return dot_sum(w, np.abs(diff, out=diff), out=out)
        return dot_sum(diff, diff, w, out=out)  # (d*d)*w, the reference's w*(d*d)

    # One row per trial (row 0: the plain min/max fit) of what the reference keeps of the best
    # trial: its inverse scale and the min it rounded with (its codes follow from those two, and
    # are recomputed once at the end), its scale, min and error. The best trial so far is a flat
    # index into these tables that only grows, updated without masked copies.
    rows = (nstep + 2, x.shape[1])
    t_iscale, t_round, t_scale, t_min, t_err = (np.empty(rows, F32) for _ in range(5))
    t_iscale[0], t_round[0], t_scale[0], t_min[0] = iscale, mn, scale, mn
    lv = codes_for(iscale, mn, np.empty_like(x))
    error(scale, mn, lv, out=t_err[0])  # (overwrites lv)
    usable = ~degenerate
    index = np.arange(t_err.size, dtype=np.intp).reshape(rows)
    kept = index[0].copy()
    best_error = t_err[0].copy()
    better = np.empty(rows[1], bool)
    step_index = np.empty(rows[1], np.intp)
    # version 2 treats a degenerate block's inverse scale as 0: step / inf
    top = np.where(degenerate, F32(np.inf), mx) if version != 3 else mx
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(nstep + 1):
            t = k + 1
            step = F32(rmin) + F32(rdelta) * F32(k) + F32(nmax)
            iscale = np.divide(step, top - mn, out=t_iscale[t])
            t_round[t] = mn
            lv = codes_for(iscale, mn, lv)
            sum_l = dot_sum(w, lv)
            sum_l2 = dot_sum(w, lv, lv)  # (w*l)*l
            sum_xl = dot_sum(w, lv, x)  # (w*l)*x
            det = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            clamp = this_min > 0
            np.copyto(this_min, F32(0), where=clamp)
            np.copyto(this_scale, sum_xl / sum_l2, where=clamp)
            t_scale[t], t_min[t] = this_scale, this_min
            cur = error(this_scale, this_min, lv, out=t_err[t])
            np.less(cur, best_error, out=better)
            better &= det > 0
            better &= usable
            np.maximum(kept, np.multiply(better, index[t], out=step_index), out=kept)
            np.take(t_err, kept, out=best_error)
            mn = np.take(t_min, kept)
        scale = np.take(t_scale, kept)
        codes = codes_for(np.take(t_iscale, kept), np.take(t_round, kept), lv).astype(np.uint8)
    codes[:, degenerate] = 0
    return np.where(degenerate, F32(0), scale), -mn, codes


def make_qkx2_quants(
    x: NDArray[np.float32],
    nmax: int,
    weights: NDArray[np.float32],
    rmin: float,
    rdelta: float,
    nstep: int,
    *,
    use_mad: bool = False,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8]]:
    """llama.cpp's ``make_qkx2_quants`` (no imatrix): :func:`make_qkx_quants` with version 2.

    Q2_K uses ``(nmax=3, weights=|x|, rmin=-0.5, rdelta=0.1, nstep=15, use_mad=True)``; Q4_K
    ``(15, sqrt(mean x²) + |x|, -1.0, 0.1, 20)`` and Q5_K ``(31, …, -0.5, 0.1, 15)``.

    Examples
    --------
    One block of 4 values (one column) that the grid ``-1 + 1.5 l`` fits exactly:

    >>> x = np.array([[-1.0], [0.5], [2.0], [3.5]], np.float32)
    >>> scale, the_min, codes = make_qkx2_quants(x, 3, np.ones_like(x), -0.5, 0.1, 15)
    >>> float(scale[0]), float(the_min[0]), codes[:, 0].tolist()
    (1.5, 1.0, [0, 1, 2, 3])
    """
    return make_qkx_quants(x, nmax, weights, rmin, rdelta, nstep, use_mad=use_mad, version=2)


def make_qkx3_quants(
    x: NDArray[np.float32],
    nmax: int,
    weights: NDArray[np.float32],
    rmin: float = -0.9,
    rdelta: float = 0.05,
    nstep: int = 36,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8]]:
    """llama.cpp's ``make_qkx3_quants`` (imatrix paths of Q2_K, Q4_K, Q5_K, Q4_1, Q5_1).

    :func:`make_qkx_quants` with version 3 and, by default, the grid every caller uses:
    ``nmax + rmin + k·rdelta`` for ``k = 0..36``, i.e. ``nmax - 0.9 … nmax + 0.9`` in steps of
    0.05.
    """
    return make_qkx_quants(x, nmax, weights, rmin, rdelta, nstep, version=3)
