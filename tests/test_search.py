"""Oracle tests of SPEC item 7: grid search, refinement and the exact optimum of the scale.

Oracles: a brute-force dense search over the scale written in the test (every breakpoint and a
very fine grid, each assignment refitted by the closed form), and the reference grid-search loop
written out in the test for the SPEC ``x`` example.
"""

import itertools
import tracemalloc
import warnings

import numpy as np
import pytest

import quantlab as ql

X = np.array([5.63109251, -0.66333746, -3.7742885, -5.53918171,
              -8.02601077, 3.97313181, 0.47977315, 3.40512398])  # fmt: skip
REFERENCE = [round(-1.0 + 0.1 * i, 1) for i in range(21)]  # -1.0, -0.9, ..., +1.0


# -- independent helpers (plain NumPy, formulas from the SPEC) ----------------------------------
def round_sym(x, d, n_bits):
    """q = clip(round(x/d), -2**(n-1), 2**(n-1) - 1); d = 0 gives codes 0."""
    safe = np.where(d == 0, 1.0, d)
    q = np.where(d == 0, 0.0, np.round(x / safe))
    return np.clip(q, -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)


def ls_scale(x, q, w):
    """d = sum(w*x*q) / sum(w*q**2) along the last axis (0 when every code is 0)."""
    sqq = np.sum(w * q * q, axis=-1, keepdims=True)
    sxq = np.sum(w * x * q, axis=-1, keepdims=True)
    return np.where(sqq > 0, sxq / np.where(sqq > 0, sqq, 1.0), 0.0)


def ls_scale_min(x, lv, w):
    """The weighted 2x2 normal equations of SPEC items 5-6 (inputs 1-D)."""
    sw, sl, sll = np.sum(w), np.sum(w * lv), np.sum(w * lv * lv)
    sx, sxl = np.sum(w * x), np.sum(w * x * lv)
    D = sw * sll - sl * sl
    return (sw * sxl - sx * sl) / D, (sx * sll - sxl * sl) / D


def wmse(x, x_hat, w):
    return np.mean(w * (x - x_hat) ** 2, axis=-1)


def brute_force_optimum(x, w, n_bits, n_grid=3000):
    """Smallest refitted error over round-to-nearest codes for every scale d, per row of x.

    The candidates t = 1/d (both signs) are: every breakpoint (k + 1/2)/|x_j| where a code
    changes, the midpoints between consecutive breakpoints (one per code assignment), a point
    beyond the last one (all codes saturated), and a very fine uniform grid.
    """
    ax = np.abs(x)[:, :, None]
    k = np.arange(2 ** (n_bits - 1) + 1)[None, None, :]
    with np.errstate(divide="ignore"):
        bp = np.where(ax > 0, (k + 0.5) / np.where(ax > 0, ax, 1), np.nan).reshape(len(x), -1)
    bp = np.sort(np.nan_to_num(bp, nan=0.0), axis=1)
    top = bp[:, -1:] * 1.5 + 1.0
    mids = (bp[:, 1:] + bp[:, :-1]) / 2
    fine = np.linspace(0, 1, n_grid)[None, 1:] * top
    t = np.concatenate([bp, mids, top, fine], axis=1)
    t = np.concatenate([t, -t], axis=1)[:, :, None]  # (G, K, 1)
    q = np.clip(np.round(x[:, None, :] * t), -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    xx, ww = x[:, None, :], w[:, None, :]
    d = ls_scale(xx, q, ww)
    return wmse(xx, d * q, ww).min(axis=1)


def random_blocks(seed, n_blocks, size, kind="normal"):
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x = rng.normal(size=(n_blocks, size))
    elif kind == "heavy":
        x = rng.standard_t(2, size=(n_blocks, size))
    else:
        x = rng.uniform(-1, 1, size=(n_blocks, size))
    x *= rng.uniform(0.01, 100, size=(n_blocks, 1))
    w = rng.uniform(0, 2, size=(n_blocks, size)) * (rng.uniform(size=(n_blocks, size)) > 0.15)
    return x, w


# -- the exact optimum --------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["normal", "heavy", "uniform"])
def test_optimum_equals_brute_force(n_bits, weighted, kind):
    x, w = random_blocks(n_bits, 40, 8, kind)
    w = w if weighted else np.ones_like(x)
    res = ql.Quantizer(n_bits, block_size=8).optimum(x.ravel(), w.ravel() if weighted else None)
    brute = brute_force_optimum(x, w, n_bits)
    np.testing.assert_allclose(res.error, brute, rtol=1e-9, atol=1e-15)
    # The reported error is the error of the returned codes and scale, recomputed here.
    q, d = res.q.reshape(x.shape), res.scale[:, None]
    np.testing.assert_allclose(res.error, wmse(x, d * q, w), rtol=1e-12, atol=1e-15)
    assert np.all(np.abs(q) <= 2 ** (n_bits - 1))
    # The scale is the least-squares scale of its codes.
    np.testing.assert_allclose(d, ls_scale(x, q, w), rtol=1e-12)


@pytest.mark.parametrize("n_bits", [3, 4, 5, 8])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["normal", "heavy"])
def test_optimum_on_blocks_of_32_equals_brute_force(n_bits, weighted, kind):
    # Blocks of 32, the size the pruning of the scale axis is tuned for (a core window, lower
    # bounds below it, the clipping bound above): the brute force visits every breakpoint.
    x, w = random_blocks(50 + n_bits, 12, 32, kind)
    w = w if weighted else np.ones_like(x)
    res = ql.Quantizer(n_bits, block_size=32).optimum(x, w if weighted else None)
    np.testing.assert_allclose(res.error.ravel(), brute_force_optimum(x, w, n_bits), rtol=1e-9)


def test_optimum_with_a_zero_weight_outlier_and_near_ties_equals_brute_force():
    # The largest value has weight 0 (it may be clipped for free: the best t = 1/|d| is far
    # beyond the one its range suggests); near-equal magnitudes give breakpoints closer than
    # the bits of t kept in the sort keys (their order is restored exactly).
    rng = np.random.default_rng(21)
    x = rng.normal(size=(16, 32))
    w = rng.uniform(0.5, 1.5, size=x.shape)
    x[:8, 0] = 40.0
    w[:8, 0] = 0.0
    x[8:, 1] = x[8:, 2] * (1 + 1e-12)  # breakpoints 1e-12 apart
    x[8:, 3] = -x[8:, 4] * (1 - 1e-13)
    for n_bits in (3, 4, 8):
        res = ql.Quantizer(n_bits, block_size=32).optimum(x, w)
        brute = brute_force_optimum(x, w, n_bits)
        np.testing.assert_allclose(res.error.ravel(), brute, rtol=1e-9)


@pytest.mark.parametrize("n_bits", [2, 3, 4, 6, 8])
def test_pruned_sweep_equals_the_full_sweep(n_bits):
    # Oracle: the same sweep over every breakpoint of the whole axis (no window, no bounds).
    x, w = random_blocks(70 + n_bits, 300, 32, "heavy")
    x[::7, 5] *= 50  # outliers
    w = ql.search.selection_weights(w)
    xs = x / ql.search._unit(x)
    _, err = ql.search._best_scales(xs, w, n_bits)
    g = len(xs)
    full = ql.search._sweep_segments(
        np.abs(xs), w, xs > 0, n_bits, np.arange(g), np.zeros(g), np.full(g, np.inf)
    )
    # Equal up to the rounding of sum(w*x**2) - sxq**2/sqq (about 1e-16 of sum(w*x**2)).
    sxx = np.sum(w * xs * xs, axis=1)
    assert np.all(np.abs(err - full[1]) <= 1e-13 * sxx)
    np.testing.assert_allclose(err, full[1], rtol=1e-9)


def test_optimum_8bit_and_ties_equal_brute_force():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 16))
    w = np.ones_like(x)
    res = ql.Quantizer(8, block_size=16).optimum(x)
    np.testing.assert_allclose(res.error.ravel(), brute_force_optimum(x, w, 8), rtol=1e-9)
    # Repeated magnitudes: many elements share their breakpoints.
    x = rng.integers(-3, 4, size=(20, 8)).astype(float)
    res = ql.Quantizer(3, block_size=8).optimum(x)
    brute = brute_force_optimum(x, np.ones_like(x), 3)
    np.testing.assert_allclose(res.error.ravel(), brute, atol=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_optimum_one_signed_blocks_use_the_mirrored_code_range(sign):
    # All values of one sign: the best d may have either sign (a negative d maps positive values
    # onto the longer negative code range), so both signs must be searched.
    rng = np.random.default_rng(11)
    x = sign * rng.uniform(0.1, 1, size=(30, 32))
    res = ql.Quantizer(4, block_size=32).optimum(x)
    brute = brute_force_optimum(x, np.ones_like(x), 4)
    np.testing.assert_allclose(res.error.ravel(), brute, rtol=1e-9)
    # Positive values mostly prefer d < 0 (9 codes -8..0), negative values d > 0.
    assert np.mean(np.sign(res.scale) == -sign) > 0.5


def test_optimum_is_scale_invariant_down_to_tiny_values():
    # Squares of values below 1e-154 underflow: the search must not depend on them.
    x, w = random_blocks(13, 20, 8, "normal")
    quant = ql.Quantizer(4, block_size=8)
    base = quant.optimum(x, w)
    for factor in (2.0**-1000, 2.0**-600, 2.0**200):  # exact scalings
        res = quant.optimum(x * factor, w)
        np.testing.assert_array_equal(res.q, base.q)
        np.testing.assert_array_equal(res.scale, base.scale * factor)
    tiny = quant.optimum(x * 1e-300, w)
    np.testing.assert_array_equal(tiny.q, base.q)
    np.testing.assert_allclose(tiny.scale / 1e-300, base.scale, rtol=1e-12)


def test_chunked_processing_gives_the_same_results(monkeypatch):
    x, w = random_blocks(12, 25, 16, "normal")
    quant = ql.Quantizer(4, block_size=16)
    calls = {
        "optimum": lambda: quant.optimum(x, w),
        "search": lambda: quant.search(x, w),
        "search_min": lambda: ql.Quantizer(4, True, block_size=16).search(x, w, relative=False),
        "search_min_default": lambda: ql.Quantizer(4, True, block_size=16).search(x, w),
        "optimum_min": lambda: ql.Quantizer(3, True, block_size=16).optimum(x, w),
    }
    whole = {k: f() for k, f in calls.items()}
    monkeypatch.setattr(ql.search, "CHUNK_ELEMENTS", 100)  # a few groups per chunk
    monkeypatch.setattr(ql.search, "FAST_CHUNK_ELEMENTS", 100)
    for k, f in calls.items():
        part = f()
        np.testing.assert_array_equal(part.q, whole[k].q)
        np.testing.assert_array_equal(part.scale, whole[k].scale)
        np.testing.assert_array_equal(part.error, whole[k].error)
        if part.table is not None:
            np.testing.assert_array_equal(part.table["error_after"], whole[k].table["error_after"])


def test_optimum_on_the_spec_example():
    res = ql.Quantizer(4).optimum(X)
    brute = brute_force_optimum(X[None], np.ones((1, 8)), 4, n_grid=20000)
    assert float(res.error) == pytest.approx(brute[0], rel=1e-12)
    # Better than rounding with d = m/-8 and than its refit, both worked out by hand.
    q0 = round_sym(X, -8.02601077 / -8, 4)
    assert (
        float(res.error) < wmse(X, ls_scale(X, q0, 1.0) * q0, 1.0) < wmse(X, 8.02601077 / 8 * q0, 1)
    )


@pytest.mark.parametrize("n_bits", [2, 3, 4, 5])
@pytest.mark.parametrize("weighted", [False, True])
def test_nothing_beats_the_optimum(n_bits, weighted):
    x, w = random_blocks(100 + n_bits, 60, 16, "heavy")
    wa = w.ravel() if weighted else None
    quant = ql.Quantizer(n_bits, block_size=16)
    best = quant.optimum(x.ravel(), wa).error
    tol = 1e-12 * best + 1e-15
    others = [
        quant.search(x.ravel(), wa),
        quant.search(x.ravel(), wa, offsets=np.linspace(-0.9, 0.9, 181)),
        quant.search(x.ravel(), wa, relative=False),
        quant.search(x.ravel(), wa, offsets=np.linspace(-3, 3, 61), relative=False),
        quant.refine(x.ravel(), wa),
        quant.fit(x.ravel(), wa, method="round"),
        quant.fit(x.ravel(), wa, method="refit"),
    ]
    for other in others:
        assert np.all(other.error >= best - tol), other.method
    # Nor does rounding at random scales of either sign, refitted.
    rng = np.random.default_rng(n_bits)
    top = np.max(np.abs(x), axis=1, keepdims=True)
    wf = np.ones_like(x) if wa is None else w
    for _ in range(200):
        d = top * rng.choice([-1, 1]) / (2 ** (n_bits - 1) * rng.uniform(0.3, 1.5))
        q = round_sym(x, d, n_bits)
        assert np.all(wmse(x, ls_scale(x, q, wf) * q, wf) >= best - tol)
    # ... and it is strictly better than rounding somewhere (the yardstick is not trivial).
    assert np.any(others[-2].error > best * (1 + 1e-6))


# -- grid search --------------------------------------------------------------------------------
def reference_table(x, w, use_min, offsets):
    """The reference search written out: range + offset, round, refit, error; one row per offset."""
    rows = []
    m = x[np.argmax(np.abs(x))]
    for off in offsets:
        if use_min:
            scale = (x.max() - x.min() + off) / 15
            lv = np.clip(np.round((x - x.min()) / scale), 0, 15)
            before = wmse(x, scale * lv + x.min(), w)
            s1, m1 = ls_scale_min(x, lv, w)
            rows.append((off, before, wmse(x, s1 * lv + m1, w), s1, m1, lv))
        else:
            d = np.sign(m) * (abs(m) + off) / -8
            q = round_sym(x, d, 4)
            before = wmse(x, d * q, w)
            d1 = float(ls_scale(x, q, w)[0])
            rows.append((off, before, wmse(x, d1 * q, w), d1, None, q))
    return rows


@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_absolute_reference_grid_reproduces_the_reference_table(use_min, weighted):
    w = np.random.default_rng(1).uniform(0.1, 2, size=8) if weighted else np.ones(8)
    ref = reference_table(X, w, use_min, REFERENCE)
    res = ql.Quantizer(4, use_min).search(X, w if weighted else None, relative=False)
    table = res.table
    assert len(table) == 21
    assert {"offset", "error_before", "error_after"} <= set(table.columns)
    np.testing.assert_allclose(table["offset"], [r[0] for r in ref], atol=1e-12)
    np.testing.assert_allclose(table["error_before"], [r[1] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(table["error_after"], [r[2] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(table["scale"], [r[3] for r in ref], rtol=1e-12)
    if use_min:
        np.testing.assert_allclose(table["min"], [r[4] for r in ref], rtol=1e-12)
    best = int(np.argmin([r[2] for r in ref]))
    assert float(res.error) == pytest.approx(ref[best][2], rel=1e-12)
    np.testing.assert_array_equal(res.q, ref[best][5])
    assert table.best == best


def test_reference_table_unweighted_symmetric_by_hand():
    # Offset 0 is rounding with d = m/-8 (codes worked by hand in test_min_convention), refitted.
    table = ql.Quantizer(4).search(X, relative=False).table
    row = list(table["offset"]).index(0.0)
    q = np.array([6, -1, -4, -6, -8, 4, 0, 3])
    d = 8.02601077 / 8
    assert table["error_before"][row] == pytest.approx(np.mean((X - d * q) ** 2), rel=1e-12)
    d1 = np.sum(X * q) / np.sum(q * q)
    assert table["error_after"][row] == pytest.approx(np.mean((X - d1 * q) ** 2), rel=1e-12)


@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("relative", [False, True])
def test_search_table_and_error(use_min, relative):
    rng = np.random.default_rng(2)
    x = rng.normal(size=64) * 3
    w = rng.uniform(size=64)
    offsets = np.linspace(-0.5, 0.5, 11)
    res = ql.Quantizer(4, use_min).search(x, w, offsets=offsets, relative=relative)
    t = res.table
    assert len(t) == 11 and res.method == "search"
    np.testing.assert_allclose(t["offset"], offsets)
    assert np.all(t["error_after"] <= t["error_before"] * (1 + 1e-12))
    assert float(res.error) == np.min(t["error_after"])
    x_hat = res.scale * res.q + (0.0 if res.min is None else res.min)
    assert float(res.error) == pytest.approx(np.mean(w * (x - x_hat) ** 2), rel=1e-12)
    assert float(res.error) == pytest.approx(float(ql.mse(x, x_hat, w)), rel=1e-12)
    np.testing.assert_allclose(res.x_hat, x_hat, rtol=1e-12)
    assert "<table>" in t._repr_html_() and "error_after" in t._repr_html_()


@pytest.mark.parametrize("use_min", [False, True])
def test_relative_grid_is_the_absolute_grid_times_the_range(use_min):
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    width = np.ptp(x) if use_min else np.max(np.abs(x))
    offsets = np.linspace(-0.3, 0.3, 13)
    quant = ql.Quantizer(5, use_min)
    rel = quant.search(x, offsets=offsets)
    ab = quant.search(x, offsets=offsets * width, relative=False)
    np.testing.assert_array_equal(rel.q, ab.q)
    np.testing.assert_allclose(rel.table["error_after"], ab.table["error_after"], rtol=1e-12)


@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_relative_search_is_scale_invariant(use_min, weighted):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 32))
    w = rng.uniform(size=(4, 32)) if weighted else None
    quant = ql.Quantizer(4, use_min, block_size=16)
    base = quant.search(x, w)
    base_refine = quant.refine(x, w)
    for factor in (1000.0, 0.001, 1e60, 1e-200, 1e-300):
        res = quant.search(x * factor, w)
        np.testing.assert_array_equal(res.q, base.q)
        np.testing.assert_allclose(res.scale / factor, base.scale, rtol=1e-9)
        if factor > 1e-100:  # below, the squared error underflows to 0 in float64
            np.testing.assert_allclose(res.error, base.error * factor**2, rtol=1e-9)
        # Refinement too (it has no grid, but its error comparisons must not underflow).
        np.testing.assert_array_equal(quant.refine(x * factor, w).q, base_refine.q)
    # The absolute grid is not: at a thousandth of the scale its offsets swamp the range.
    small = ql.Quantizer(4, use_min).search(X * 0.001, relative=False)
    assert not np.array_equal(small.q, ql.Quantizer(4, use_min).search(X, relative=False).q)


def test_per_block_search_equals_per_tensor_search_on_each_block():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 24))
    w = rng.uniform(size=(3, 24))
    for use_min in (False, True):
        res = ql.Quantizer(4, use_min, block_size=8).search(x, w)
        # One row per candidate of the code-unit grid (and the local steps), plus the polish.
        steps = ql.search.CODE_STEPS_MIN if use_min else ql.search.CODE_STEPS_SYMMETRIC
        extra = len(ql.search.LOCAL_STEPS_MIN) if use_min else 0
        assert len(res.table) == len(steps) + extra + 1
        errs_after = []
        for r in range(3):
            for b in range(3):
                sl = slice(8 * b, 8 * b + 8)
                one = ql.Quantizer(4, use_min).search(x[r, sl], w[r, sl])
                np.testing.assert_array_equal(res.q[r, sl], one.q)
                assert res.scale[r, b] == pytest.approx(float(one.scale), rel=1e-12)
                assert res.error[r, b] == pytest.approx(float(one.error), rel=1e-12)
                errs_after.append(one.table["error_after"])
        # The per-block table reports the mean over the blocks of each candidate.
        np.testing.assert_allclose(res.table["error_after"], np.mean(errs_after, axis=0))


# -- refinement ---------------------------------------------------------------------------------
@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_refine_reaches_a_fixed_point_and_improves(use_min, weighted):
    x, w = random_blocks(6, 30, 16, "heavy")
    w = w if weighted else np.ones_like(x)
    res = ql.Quantizer(4, use_min, block_size=16).refine(x, w if weighted else None)
    q = res.q
    s = res.scale
    assert s.shape == (30, 1)
    if use_min:
        m = res.min
        # Codes stop changing: rounding with the final parameters gives the same codes.
        np.testing.assert_array_equal(np.clip(np.round((x - m) / s), 0, 15), q)
        for i in range(len(x)):
            np.testing.assert_allclose(ls_scale_min(x[i], q[i], w[i]), (s[i, 0], m[i, 0]))
        # Min/max rounding and its refit, written out here.
        lo = x.min(axis=1, keepdims=True)
        s0 = (x.max(axis=1, keepdims=True) - lo) / 15
        l0 = np.clip(np.round((x - lo) / s0), 0, 15)
        e_round = wmse(x, s0 * l0 + lo, w)
        fits = [ls_scale_min(x[i], l0[i], w[i]) for i in range(len(x))]
        e_refit = np.array([wmse(x[i], a * l0[i] + b, w[i]) for i, (a, b) in enumerate(fits)])
        x_hat = s * q + m
    else:
        np.testing.assert_array_equal(round_sym(x, s, 4), q)
        np.testing.assert_allclose(s, ls_scale(x, q, w), rtol=1e-12)
        mm = np.take_along_axis(x, np.argmax(np.abs(x), axis=1)[:, None], axis=1)
        q0 = round_sym(x, mm / -8, 4)
        e_round = wmse(x, mm / -8 * q0, w)
        e_refit = wmse(x, ls_scale(x, q0, w) * q0, w)
        x_hat = s * q
    error = res.error.ravel()
    np.testing.assert_allclose(error, wmse(x, x_hat, w), rtol=1e-12)
    assert np.all(error <= e_refit * (1 + 1e-12) + 1e-15)
    assert np.all(e_refit <= e_round * (1 + 1e-12) + 1e-15)
    assert np.any(error < e_refit * (1 - 1e-6))  # it does something
    assert 1 <= res.n_iter < 100


def test_refine_on_the_spec_example():
    res = ql.Quantizer(4).refine(X)
    d = float(res.scale)
    np.testing.assert_array_equal(round_sym(X, d, 4), res.q)
    assert d == pytest.approx(np.sum(X * res.q) / np.sum(res.q**2), rel=1e-14)
    q0 = np.array([6, -1, -4, -6, -8, 4, 0, 3])
    assert float(res.error) <= np.mean((X - ls_scale(X, q0, 1.0) * q0) ** 2)


# -- degenerate legal input ---------------------------------------------------------------------
METHOD_CALLS = {
    "search": lambda qz, x, w: qz.search(x, w),
    "search_abs": lambda qz, x, w: qz.search(x, w, relative=False),
    "refine": lambda qz, x, w: qz.refine(x, w),
    "optimum": lambda qz, x, w: qz.optimum(x, w),
    "round": lambda qz, x, w: qz.fit(x, w, method="round"),
    "refit": lambda qz, x, w: qz.fit(x, w, method="refit"),
}
METHOD_CASES = [(m, u) for m in METHOD_CALLS for u in (False, True)]


@pytest.mark.parametrize(("method", "use_min"), METHOD_CASES)
@pytest.mark.parametrize("value", [0.0, 0.7, -3.0])
def test_constant_and_zero_blocks_are_reproduced(method, use_min, value):
    x = np.concatenate([np.full(8, value), np.linspace(-1, 2, 8)])
    res = METHOD_CALLS[method](ql.Quantizer(4, use_min, block_size=8), x, None)
    for arr in (res.scale, res.error, res.x_hat) + (() if res.min is None else (res.min,)):
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(res.x_hat[:8], value, rtol=1e-12, atol=1e-15)
    assert res.error[0] == pytest.approx(0.0, abs=1e-24)


@pytest.mark.parametrize(("method", "use_min"), METHOD_CASES)
def test_all_zero_weights_give_finite_results(method, use_min):
    rng = np.random.default_rng(9)
    x = rng.normal(size=16)
    w = np.concatenate([np.zeros(8), rng.uniform(size=8)])
    res = METHOD_CALLS[method](ql.Quantizer(4, use_min, block_size=8), x, w)
    for arr in (res.scale, res.error, res.x_hat) + (() if res.min is None else (res.min,)):
        assert np.all(np.isfinite(arr))
    assert res.error[0] == 0.0  # every weight is zero: the weighted error is zero
    # The first block falls back to the unweighted answer (a minimiser like any other).
    unweighted = METHOD_CALLS[method](ql.Quantizer(4, use_min), x[:8], None)
    np.testing.assert_allclose(res.x_hat[:8], unweighted.x_hat, rtol=1e-12)


def enumerate_min_optimum(x, w, n_bits):
    """Smallest refitted error over EVERY code assignment in [0, 2**n - 1] (brute force)."""
    levels = 2**n_bits
    codes = np.array(list(itertools.product(range(levels), repeat=len(x))), float)  # (C, N)
    sw, sl, sll = np.sum(w), codes @ w, (codes * codes) @ w
    sx, sxl = np.sum(w * x), codes @ (w * x)
    det = sw * sll - sl * sl
    ok = det > 1e-12
    scale = np.where(ok, (sw * sxl - sx * sl) / np.where(ok, det, 1), 0.0)
    mn = np.where(ok, (sx * sll - sxl * sl) / np.where(ok, det, 1), sx / sw)
    err = wmse(x[None], scale[:, None] * codes + mn[:, None], w[None])
    return err.min()


@pytest.mark.parametrize(("n_bits", "size"), [(2, 6), (3, 4), (4, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_min_optimum_equals_the_enumeration_of_every_code_assignment(n_bits, size, weighted):
    x, w = random_blocks(20 + n_bits, 12, size, "heavy")
    w = w + 0.05 if weighted else np.ones_like(x)
    quant = ql.Quantizer(n_bits, use_min=True, block_size=size)
    exact = quant.optimum(x.ravel(), w.ravel() if weighted else None, exact=True)
    brute = np.array([enumerate_min_optimum(x[i], w[i], n_bits) for i in range(len(x))])
    np.testing.assert_allclose(exact.error, brute, rtol=1e-9, atol=1e-15)
    # The reported error is that of the returned codes, scale and min; the parameters are the
    # least-squares ones of the codes.
    q, s, m = exact.q.reshape(x.shape), exact.scale[:, None], exact.min[:, None]
    np.testing.assert_allclose(exact.error, wmse(x, s * q + m, w), rtol=1e-12, atol=1e-15)
    for i in range(len(x)):
        np.testing.assert_allclose(ls_scale_min(x[i], q[i], w[i]), (s[i, 0], m[i, 0]), rtol=1e-9)
    # The default optimum (trial scales, every minimum) is never below the global one.
    default = quant.optimum(x.ravel(), w.ravel() if weighted else None)
    assert np.all(default.error >= brute * (1 - 1e-9) - 1e-15)


# exact=True costs O(N**2 * 2**n) trial scales per block: 2 bits on blocks of 32 (2 s), 3 bits
# on blocks of 16 and 4 bits on blocks of 8 (a few seconds each); 3 bits on blocks of 32 takes
# 8-12 s a block, 4 bits 25-45 s (measured), too slow for the suite.
@pytest.mark.parametrize(("n_bits", "size", "n_blocks"), [(2, 32, 2), (3, 16, 3), (4, 8, 4)])
@pytest.mark.parametrize("weighted", [False, True])
def test_min_optimum_is_within_five_hundredths_of_a_percent(n_bits, size, n_blocks, weighted):
    x, w = random_blocks(31 + n_bits, n_blocks, size, "normal")
    w = w if weighted else np.ones_like(x)
    quant = ql.Quantizer(n_bits, use_min=True, block_size=size)
    wa = w.ravel() if weighted else None
    exact = quant.optimum(x.ravel(), wa, exact=True).error
    default = quant.optimum(x.ravel(), wa).error
    assert np.all(default <= exact * 1.0005)
    assert np.all(default >= exact * (1 - 1e-9))
    # Nothing else beats the exact optimum either.
    for other in (quant.search(x.ravel(), wa), quant.refine(x.ravel(), wa)):
        assert np.all(other.error >= exact * (1 - 1e-9))


@pytest.mark.parametrize("n_bits", [2, 3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_nothing_beats_the_min_optimum(n_bits, weighted):
    x, w = random_blocks(200 + n_bits, 40, 5, "heavy")
    wa = w.ravel() if weighted else None
    quant = ql.Quantizer(n_bits, use_min=True, block_size=5)
    best = quant.optimum(x.ravel(), wa, exact=True).error
    tol = 1e-9 * best + 1e-15
    others = [
        quant.optimum(x.ravel(), wa),
        quant.search(x.ravel(), wa),
        quant.search(x.ravel(), wa, offsets=np.linspace(-0.9, 0.9, 181)),
        quant.search(x.ravel(), wa, relative=False),
        quant.refine(x.ravel(), wa),
        quant.fit(x.ravel(), wa, method="round"),
        quant.fit(x.ravel(), wa, method="refit"),
    ]
    for other in others:
        assert np.all(other.error >= best - tol), other.method
    assert np.any(others[-1].error > best * (1 + 1e-6))


@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_default_search_never_worse_than_min_max_rounding_with_refit(use_min, weighted):
    for kind in ("normal", "heavy", "uniform"):
        x, w = random_blocks(40, 300, 32, kind)
        wa = w.ravel() if weighted else None
        for n_bits in (2, 4, 8):
            quant = ql.Quantizer(n_bits, use_min, block_size=32)
            refit = quant.fit(x.ravel(), wa, method="refit").error
            res = quant.search(x.ravel(), wa)
            assert np.all(res.error <= refit * (1 + 1e-12) + 1e-300)
            # The table (evaluated exactly) keeps its semantics: a refit never hurts, the chosen
            # row is the chosen candidate of each block on average.
            t = res.table
            ok = np.isfinite(t["error_before"])
            assert np.all(t["error_after"][ok] <= t["error_before"][ok] * (1 + 1e-9))


def test_tiny_values_give_no_overflow_nan_or_warning():
    # Issue 10 item 4: x * 2**-1030 (subnormal): 1 / 2**e overflowed, offset 0 became NaN.
    tiny = np.ldexp(X, -1030)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for use_min in (False, True):
            quant = ql.Quantizer(4, use_min)
            for kwargs in ({"relative": False}, {}, {"offsets": [-0.1, 0.0, 0.1]}):
                res = quant.search(tiny, **kwargs)
                for arr in (res.scale, res.error, res.x_hat, res.table["error_after"]):
                    assert not np.any(np.isnan(arr))
                # Chosen exactly as for x itself (an exact power-of-two scaling); the absolute
                # grid's offsets dwarf the range, so only its offset 0 (rounding + refit) is left.
                if kwargs.get("relative", True):
                    same = quant.search(X, **kwargs)
                else:
                    same = quant.fit(X, method="refit")
                np.testing.assert_array_equal(res.q, same.q)
                np.testing.assert_allclose(res.scale, np.ldexp(same.scale, -1030), rtol=1e-12)
            for res, same in (
                (quant.refine(tiny), quant.refine(X)),
                (quant.optimum(tiny), quant.optimum(X)),
            ):
                np.testing.assert_array_equal(res.q, same.q)
                assert not np.any(np.isnan(res.x_hat))


@pytest.mark.parametrize("use_min", [False, True])
def test_memory_stays_a_few_hundred_bytes_per_value_for_one_large_group(use_min):
    x = np.random.default_rng(3).standard_normal(1 << 18)
    quant = ql.Quantizer(4, use_min)
    calls = [
        lambda: quant.search(x),
        lambda: quant.search(x, relative=False),
        lambda: quant.refine(x),
    ]
    if use_min:
        calls.append(lambda: quant.optimum(x[: 1 << 14]))  # slower: fewer values
    for call in calls:
        n = (1 << 14) if call is calls[-1] and use_min else x.size
        tracemalloc.start()
        call()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak / n < 300, peak / n


def test_inputs_are_not_modified():
    x = X.copy()
    w = np.linspace(0.1, 1, 8)
    w0 = w.copy()
    for use_min in (False, True):
        quant = ql.Quantizer(4, use_min)
        quant.search(x, w)
        quant.search(x, w, relative=False)
        quant.refine(x, w)
    ql.Quantizer(4).optimum(x, w)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(w, w0)


def test_absolute_grid_on_tiny_data_marks_invalid_offsets_without_nan():
    # Range 8e-300: every negative offset of the reference grid makes the range negative.
    res = ql.Quantizer(4).search(X * 1e-300, relative=False)
    before, after = res.table["error_before"], res.table["error_after"]
    assert not np.any(np.isnan(before)) and not np.any(np.isnan(after))
    offsets = res.table["offset"]
    assert np.all(np.isinf(after[offsets < 0])) and np.all(np.isfinite(after[offsets >= 0]))
    assert np.isfinite(res.error) and np.all(np.isfinite(res.scale))


@pytest.mark.parametrize("n_bits", [3, 8])
def test_symmetric_optimum_of_a_large_group_in_segments(monkeypatch, n_bits):
    # One group with more breakpoints than a segment: the sweep is cut into segments whose
    # start state is computed directly; the answer is the same, the memory bounded.
    rng = np.random.default_rng(17)
    x, w = rng.standard_t(3, 20000), rng.uniform(0.1, 1, 20000)
    monkeypatch.setattr(ql.search, "SEGMENT_BREAKPOINTS", 1 << 30)  # all at once
    whole = ql.Quantizer(n_bits).optimum(x, w)
    monkeypatch.setattr(ql.search, "SEGMENT_BREAKPOINTS", 20000)
    parts = ql.Quantizer(n_bits).optimum(x, w)
    np.testing.assert_array_equal(parts.q, whole.q)
    assert float(parts.error) == pytest.approx(float(whole.error), rel=1e-12)
    tracemalloc.start()  # still in segments of 20000 breakpoints
    ql.Quantizer(n_bits).optimum(x, w)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak / x.size < 400, peak / x.size


@pytest.mark.parametrize("n_bits", range(2, 17))
def test_shared_clip_of_the_symmetric_candidates_is_exact(n_bits):
    """One clip of r per set of candidates (then set after set, in place) gives exactly the
    clipped rounding of every candidate, for values inside and far outside [-1, 1]."""
    _clip_sets, f32 = ql.search._clip_sets, np.float32
    qmin, qmax = -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
    factors = (-qmin + ql.search.CODE_STEPS_SYMMETRIC).astype(f32)
    rng = np.random.default_rng(n_bits)
    r = np.concatenate(
        [rng.uniform(-1, 1, 20000), rng.uniform(-3, 3, 2000), [-1.0, 1.0, 0.0, -4.0, 4.0]]
    ).astype(f32)
    # the bounds themselves and their float32 neighbours
    edges = [b for lo, hi, _ in _clip_sets(qmin, qmax) if lo is not None for b in (lo, hi)]
    near = [np.nextafter(f32(b), f32(d)) for b in edges for d in (-np.inf, np.inf)]
    r = np.concatenate([r, np.array(edges + near, f32)])
    groups = [j for _, _, group in _clip_sets(qmin, qmax) for j in group]
    assert groups == list(range(len(factors)))  # every candidate once, in order
    src = r
    for lo, hi, group in _clip_sets(qmin, qmax):
        if lo is not None:
            src = np.clip(src, lo, hi)
        for j in group:
            want = np.clip(np.rint(r * factors[j]), qmin, qmax)
            got = np.rint(src * factors[j])
            if lo is None:
                got = np.clip(got, qmin, qmax)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("use_min", [False, True])
def test_float32_data_searches_as_its_float64_values(use_min):
    """Float32 data is kept float32 by validation and converted chunk by chunk: the same codes,
    parameters, errors and table as its exact float64 values; the input is not modified."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 96)).astype(np.float32)
    w = rng.exponential(size=x.shape)
    x0 = x.copy()
    qz = ql.Quantizer(4, use_min, block_size=32)
    a, b = qz.search(x, w), qz.search(x.astype(np.float64), w)
    for f in ("q", "scale", "error"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    if use_min:
        np.testing.assert_array_equal(a.min, b.min)
    np.testing.assert_array_equal(a.table["error_after"], b.table["error_after"])
    np.testing.assert_array_equal(a.x_hat, b.x_hat)
    np.testing.assert_array_equal(x, x0)


def _table_columns(result):
    return {c: result.table[c] for c in result.table.columns}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_min", [False, True])
def test_search_table_does_not_see_later_changes_nor_reused_memory(dtype, use_min):
    # The default search copies x and w for its lazy table, in memory that a later search may
    # reuse once the copy is garbage (quantlab._recycled): neither the caller changing its
    # arrays nor later searches may change a table still to be read.
    import gc

    quant = ql.Quantizer(4, use_min, block_size=16)
    (x1, w1), (x2, w2) = (random_blocks(s, 40, 16) for s in (60, 61))
    x1, w1, x2, w2 = (a.astype(dtype) for a in (x1, w1, x2, w2))
    expected = _table_columns(quant.search(x2.copy(), w2.copy()))
    r1 = quant.search(x1, w1)
    r2 = quant.search(x2, w2)
    x2 *= 3.0  # the caller changes its arrays
    w2[:] = 1.0
    del r1
    gc.collect()
    r3 = quant.search(x1, w1)  # may take r1's memory, never r2's
    x1[:] = 0.0
    assert _table_columns(r2).keys() == expected.keys()
    for name, col in expected.items():
        np.testing.assert_array_equal(r2.table[name], col)
    x1 = random_blocks(60, 40, 16)[0].astype(dtype)
    w1 = random_blocks(60, 40, 16)[1].astype(dtype)
    for name, col in _table_columns(quant.search(x1, w1)).items():
        np.testing.assert_array_equal(r3.table[name], col)


def test_recycled_memory_returns_only_when_every_view_is_gone():
    import gc

    from quantlab import _recycled

    a = _recycled.empty((4, 8), np.float64)
    a[:] = 1.0
    view = a.reshape(8, 4)[1:]
    del a
    gc.collect()
    b = _recycled.empty((4, 8), np.float64)  # must not share the view's memory
    b[:] = 2.0
    assert np.all(view == 1.0)
    assert not np.shares_memory(b, view)


def test_default_search_from_threads_gives_the_serial_results():
    from concurrent.futures import ThreadPoolExecutor

    quant = ql.Quantizer(4, block_size=16)
    data = [random_blocks(70 + i, 200, 16) for i in range(6)]
    serial = [quant.search(x, w) for x, w in data]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda xw: quant.search(*xw), data * 2))
    for res, ref in zip(threaded, serial * 2, strict=True):
        np.testing.assert_array_equal(res.q, ref.q)
        np.testing.assert_array_equal(res.table["error_after"], ref.table["error_after"])
