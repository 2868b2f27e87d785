"""Oracle tests of SPEC items 5-6: the (weighted) least-squares refit for fixed codes.

Oracles: the closed forms written out in the test, and ``np.linalg.lstsq`` on the
sqrt(w)-scaled linear system.
"""

import numpy as np
import pytest

import quantlab as ql


def lstsq_oracle(x, q, w=None, with_min=False):
    """Minimise sum(w * (x - A @ p)**2) with np.linalg.lstsq on the sqrt(w)-scaled system."""
    x = np.asarray(x, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    cols = [np.asarray(q, float)] + ([np.ones_like(x)] if with_min else [])
    A = np.stack(cols, axis=1)
    sw = np.sqrt(w)
    p, *_ = np.linalg.lstsq(A * sw[:, None], x * sw, rcond=None)
    return p


def wsse(x, x_hat, w=None):
    x, x_hat = np.asarray(x, float), np.asarray(x_hat, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    return float(np.sum(w * (x - x_hat) ** 2))


def random_case(seed, size=24, n_bits=4, with_min=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=size) * rng.uniform(0.1, 10)
    w = rng.uniform(0, 3, size=size) * (rng.uniform(size=size) > 0.2)  # some zero weights
    if with_min:
        q = rng.integers(0, 2**n_bits, size=size)
    else:
        q = rng.integers(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1), size=size)
    return x, q, w


def test_lstsq_scale_closed_form_by_hand():
    x, q = [1.0, 2.1, -2.9], [1, 2, -3]
    d = (1.0 * 1 + 2.1 * 2 + (-2.9) * (-3)) / (1 + 4 + 9)  # sum(x*q) / sum(q**2) = 13.9 / 14
    assert float(ql.lstsq_scale(x, q)) == pytest.approx(d, rel=1e-15)
    w = [2.0, 0.5, 1.0]
    dw = (2 * 1.0 * 1 + 0.5 * 2.1 * 2 + 1 * (-2.9) * (-3)) / (2 * 1 + 0.5 * 4 + 1 * 9)
    assert float(ql.lstsq_scale(x, q, w)) == pytest.approx(dw, rel=1e-15)


def test_lstsq_scale_min_closed_form_by_hand():
    x, lv = [0.4, 1.7, 2.4, 3.2], [0, 1, 2, 3]
    n, sl, sll = 4, 6, 14
    sx, sxl = 0.4 + 1.7 + 2.4 + 3.2, 1.7 + 2 * 2.4 + 3 * 3.2
    D = n * sll - sl**2  # 20
    scale, minimum = ql.lstsq_scale_min(x, lv)
    assert float(scale) == pytest.approx((n * sxl - sx * sl) / D, rel=1e-14)
    assert float(minimum) == pytest.approx((sx * sll - sxl * sl) / D, rel=1e-14)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("weighted", [False, True])
def test_lstsq_scale_equals_numpy_lstsq(seed, weighted):
    x, q, w = random_case(seed)
    w = w if weighted else None
    (d_ref,) = lstsq_oracle(x, q, w)
    assert float(ql.lstsq_scale(x, q, w)) == pytest.approx(d_ref, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_bits", [2, 4, 8, 16])
def test_lstsq_scale_min_equals_numpy_lstsq(seed, weighted, n_bits):
    x, q, w = random_case(seed, n_bits=n_bits, with_min=True)
    w = w if weighted else None
    scale_ref, min_ref = lstsq_oracle(x, q, w, with_min=True)
    scale, minimum = ql.lstsq_scale_min(x, q, w)
    assert float(scale) == pytest.approx(scale_ref, rel=1e-9, abs=1e-12)
    assert float(minimum) == pytest.approx(min_ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_quantizer_refit_equals_numpy_lstsq(seed):
    x, q, w = random_case(seed)
    d, none = ql.Quantizer(4).refit(x, q, w)
    assert none is None and float(d) == pytest.approx(lstsq_oracle(x, q, w)[0], rel=1e-12)
    x, lv, w = random_case(seed, with_min=True)
    s, m = ql.Quantizer(4, use_min=True).refit(x, lv, w)
    np.testing.assert_allclose([s, m], lstsq_oracle(x, lv, w, with_min=True), rtol=1e-10)


def test_per_block_refit_equals_numpy_lstsq_per_block():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 32))
    w = rng.uniform(size=(5, 32))
    q = rng.integers(-8, 8, size=(5, 32))
    lv = rng.integers(0, 16, size=(5, 32))
    d = ql.lstsq_scale(x, q, w, block_size=8)
    s, m = ql.lstsq_scale_min(x, lv, w, block_size=8)
    dc = ql.lstsq_scale(x, q, w, channel_axis=0)
    assert d.shape == s.shape == m.shape == (5, 4) and dc.shape == (5,)
    for r in range(5):
        assert dc[r] == pytest.approx(lstsq_oracle(x[r], q[r], w[r])[0], rel=1e-12)
        for b in range(4):
            sl = slice(8 * b, 8 * b + 8)
            assert d[r, b] == pytest.approx(lstsq_oracle(x[r, sl], q[r, sl], w[r, sl])[0])
            ref = lstsq_oracle(x[r, sl], lv[r, sl], w[r, sl], with_min=True)
            np.testing.assert_allclose([s[r, b], m[r, b]], ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_refit_never_increases_the_error(seed):
    x, q, w = random_case(seed)
    d = float(ql.lstsq_scale(x, q, w))
    e_fit = wsse(x, d * q, w)
    for other in np.linspace(-2, 2, 41) * abs(d) + d * (1 + 1e-6):
        assert e_fit <= wsse(x, other * q, w) + 1e-12
    x, lv, w = random_case(seed, with_min=True)
    s, m = ql.lstsq_scale_min(x, lv, w)
    e_fit = wsse(x, float(s) * lv + float(m), w)
    rng = np.random.default_rng(seed)
    for ds, dm in rng.normal(size=(50, 2)) * 0.05:
        assert e_fit <= wsse(x, (float(s) + ds) * lv + float(m) + dm, w) + 1e-12


def test_uniform_weights_give_the_unweighted_result():
    x, q, _ = random_case(1)
    _, lv, _ = random_case(1, with_min=True)
    for c in (1.0, 0.25, 7.0):
        w = np.full(len(x), c)
        assert float(ql.lstsq_scale(x, q, w)) == pytest.approx(float(ql.lstsq_scale(x, q)))
        np.testing.assert_allclose(ql.lstsq_scale_min(x, lv, w), ql.lstsq_scale_min(x, lv))


def test_zero_weight_elements_are_ignored():
    x, q, w = random_case(2)
    w[:5] = 0.0
    x2 = x.copy()
    x2[:5] = 1e6  # whatever sits under a zero weight does not matter
    assert float(ql.lstsq_scale(x2, q, w)) == pytest.approx(float(ql.lstsq_scale(x, q, w)))
    (d_ref,) = lstsq_oracle(x[5:], q[5:], w[5:])
    assert float(ql.lstsq_scale(x2, q, w)) == pytest.approx(d_ref)


# -- degenerate legal input ------------------------------------------------------------------------
def test_all_equal_codes_give_the_best_constant():
    x = np.array([0.2, 1.1, -0.4, 2.0])
    w = np.array([1.0, 3.0, 0.5, 2.0])
    for weights in (None, w):
        s, m = ql.lstsq_scale_min(x, [5, 5, 5, 5], weights)
        assert np.isfinite(s) and np.isfinite(m)
        x_hat = float(s) * 5 + float(m)
        # np.linalg.lstsq handles the rank-deficient system: the same (minimal) error.
        p = lstsq_oracle(x, [5] * 4, weights, with_min=True)
        assert wsse(x, np.full(4, x_hat), weights) == pytest.approx(
            wsse(x, p[0] * 5 + p[1] + 0 * x, weights)
        )
        assert x_hat == pytest.approx(np.average(x, weights=weights))


def test_codes_equal_where_weighted_is_singular():
    # Codes differ only under zero weight: the weighted system is singular.
    x = np.array([0.2, 1.1, -0.4, 2.0])
    w = np.array([1.0, 0.0, 2.0, 1.0])
    s, m = ql.lstsq_scale_min(x, [3, 9, 3, 3], w)
    assert np.isfinite(s) and np.isfinite(m)
    assert float(s) * 3 + float(m) == pytest.approx(np.average(x, weights=w))


def test_all_zero_codes_symmetric():
    d = ql.lstsq_scale([0.3, -1.2, 0.5], [0, 0, 0])
    assert np.isfinite(d)  # x_hat = 0 whatever d: the error is sum(x**2) in every case


def test_all_zero_weights_are_finite():
    x, q, _ = random_case(3)
    _, lv, _ = random_case(3, with_min=True)
    zero = np.zeros(len(x))
    d = ql.lstsq_scale(x, q, zero)
    s, m = ql.lstsq_scale_min(x, lv, zero)
    assert np.isfinite(d) and np.isfinite(s) and np.isfinite(m)
    # Every parameter is a minimiser of the zero weighted error; the unweighted one is returned.
    assert float(d) == pytest.approx(float(ql.lstsq_scale(x, q)))
    np.testing.assert_allclose([s, m], ql.lstsq_scale_min(x, lv))


def test_constant_block_refit_is_exact():
    x = np.full(6, -0.75)
    d = ql.lstsq_scale(x, np.full(6, -8))
    assert float(d) * -8 == pytest.approx(-0.75, rel=1e-15)
    s, m = ql.lstsq_scale_min(x, np.zeros(6, int))
    assert float(s) * 0 + float(m) == -0.75


def test_all_zero_block():
    x = np.zeros(5)
    assert float(ql.lstsq_scale(x, [1, -2, 0, 3, 1])) == 0.0
    s, m = ql.lstsq_scale_min(x, [0, 0, 0, 0, 0])
    assert float(s) == 0.0 and float(m) == 0.0
