"""NumPy re-implementations of two llama.cpp weight-quantization heuristics, for comparison.

Written from the description of ``make_qx_quants`` and ``make_qkx2_quants`` in llama.cpp's
``ggml/src/ggml-quants.c`` (MIT licence); the arithmetic is float32 as there, vectorized over
blocks (rows), with the candidates taken in the same order so that the accept/reject decisions are
the same ones.

- :func:`make_qx`: symmetric, codes ``-nmax .. nmax-1``. The first candidate rounds with
  ``iscale = -nmax / max`` (``max`` the signed element of largest magnitude); then 18 more with
  ``iscale = -(nmax + 0.1*is) / max``, ``is = -9 .. 9`` (0 skipped). Each candidate's scale is
  its weighted least-squares scale ``sum(w*x*l) / sum(w*l*l)``; a candidate is kept when it
  raises ``sum(w*x*l)**2 / sum(w*l*l)`` (i.e. lowers the refitted error).
- :func:`make_qkx2`: with a minimum, codes ``0 .. nmax``. ``min`` starts at ``min(0, min(x))``;
  candidate ``is = 0 .. nstep`` rounds with ``iscale = (rmin + rdelta*is + nmax) / (max - min)``
  around the *current* ``min``, refits ``(scale, min)`` by weighted least squares (``min`` forced
  to be <= 0, refitting the scale alone when it is not), and is kept when its weighted squared
  error is lower; a kept candidate overwrites ``scale`` and ``min``, so later candidates round
  around the new minimum. Q4_K calls it with ``rmin=-1, rdelta=0.1, nstep=20``.
"""

from __future__ import annotations

import numpy as np

F = np.float32


def _rint(v):
    return np.rint(v)  # nearest_int: round half to even


def make_qx(x, nmax, w):
    """Return ``(scale, codes)``, ``(G,)`` float32 and ``(G, M)`` int codes in [-nmax, nmax-1]."""
    x = np.asarray(x, F)
    w = np.asarray(w, F)
    g = x.shape[0]
    rows = np.arange(g)
    idx = np.argmax(np.abs(x), axis=1)
    mx = x[rows, idx]
    zero = np.abs(mx) < 1e-15
    safe = np.where(zero, F(1), mx).astype(F)
    codes = np.zeros(x.shape, F)

    def candidate(iscale):
        lv = np.clip(_rint(iscale[:, None] * x), -nmax, nmax - 1).astype(F)
        return lv, np.sum(w * x * lv, axis=1, dtype=F), np.sum(w * lv * lv, axis=1, dtype=F)

    lv, sumlx, suml2 = candidate((F(-nmax) / safe).astype(F))
    scale = np.where(suml2 > 0, sumlx / np.where(suml2 > 0, suml2, F(1)), F(0)).astype(F)
    best = (scale * sumlx).astype(F)
    codes = lv
    for step in range(-9, 10):
        if step == 0:
            continue
        lv, sumlx, suml2 = candidate((-(F(nmax) + F(0.1) * F(step)) / safe).astype(F))
        take = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        new_scale = sumlx / np.where(suml2 > 0, suml2, F(1))
        scale = np.where(take, new_scale, scale).astype(F)
        best = np.where(take, scale * sumlx, best).astype(F)
        codes = np.where(take[:, None], lv, codes)
    scale = np.where(zero, F(0), scale)
    codes = np.where(zero[:, None], F(0), codes)
    return scale, codes.astype(np.int64)


def make_qkx2(x, nmax, w, rmin=-1.0, rdelta=0.1, nstep=20):
    """Return ``(scale, minimum, codes)``: ``x_hat = scale*l + minimum`` (minimum <= 0)."""
    x = np.asarray(x, F)
    w = np.asarray(w, F)
    lo = np.minimum(x.min(axis=1), F(0))
    hi = x.max(axis=1)
    sum_w = np.sum(w, axis=1, dtype=F)
    sum_x = np.sum(w * x, axis=1, dtype=F)
    flat = hi == lo
    width = np.where(flat, F(1), hi - lo).astype(F)
    iscale = (F(nmax) / width).astype(F)
    scale = (F(1) / iscale).astype(F)
    minimum = lo.copy()
    codes = np.clip(_rint(iscale[:, None] * (x - minimum[:, None])), 0, nmax).astype(F)
    diff = scale[:, None] * codes + minimum[:, None] - x
    best = np.sum(w * diff * diff, axis=1, dtype=F)
    for step in range(nstep + 1):
        width = np.where(flat, F(1), hi - minimum).astype(F)
        isc = ((F(rmin) + F(rdelta) * F(step) + F(nmax)) / width).astype(F)
        lv = np.clip(_rint(isc[:, None] * (x - minimum[:, None])), 0, nmax).astype(F)
        sum_l = np.sum(w * lv, axis=1, dtype=F)
        sum_l2 = np.sum(w * lv * lv, axis=1, dtype=F)
        sum_xl = np.sum(w * lv * x, axis=1, dtype=F)
        det = (sum_w * sum_l2 - sum_l * sum_l).astype(F)
        ok = det > 0
        sdet = np.where(ok, det, F(1))
        this_scale = ((sum_w * sum_xl - sum_x * sum_l) / sdet).astype(F)
        this_min = ((sum_l2 * sum_x - sum_l * sum_xl) / sdet).astype(F)
        pos = this_min > 0
        this_scale = np.where(pos, sum_xl / np.where(sum_l2 > 0, sum_l2, F(1)), this_scale)
        this_min = np.where(pos, F(0), this_min).astype(F)
        diff = this_scale[:, None] * lv + this_min[:, None] - x
        err = np.sum(w * diff * diff, axis=1, dtype=F)
        take = ok & (err < best) & ~flat
        codes = np.where(take[:, None], lv, codes)
        best = np.where(take, err, best)
        scale = np.where(take, this_scale, scale).astype(F)
        minimum = np.where(take, this_min, minimum).astype(F)
    scale = np.where(flat, F(0), scale)
    codes = np.where(flat[:, None], F(0), codes)
    return scale, minimum, codes.astype(np.int64)
