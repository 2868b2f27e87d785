"""Oracle tests of SPEC item 4, the llama.cpp "min" convention: quantize, dequantize, refit.

Expected codes and parameters are computed in the test from the SPEC formulas (plain Python or
NumPy), never by the code under test.
"""

import numpy as np
import pytest

import quantlab as ql

X = [5.63109251, -0.66333746, -3.7742885, -5.53918171,
     -8.02601077, 3.97313181, 0.47977315, 3.40512398]  # fmt: skip
M = -8.02601077  # the element of largest magnitude, with its sign


def clip(v, lo, hi):
    return min(max(v, lo), hi)


# -- symmetric: d = m / -2**(n-1) -----------------------------------------------------------------
def test_symmetric_4bit_example_by_hand():
    d = M / -8  # = 1.00325134625
    expected = [clip(round(v / d), -8, 7) for v in X]
    # By hand: 5.631/1.003 = 5.61 -> 6, -0.66 -> -1, -3.76 -> -4, -5.52 -> -6, m -> -8 exactly,
    # 3.96 -> 4, 0.48 -> 0, 3.39 -> 3.
    assert expected == [6, -1, -4, -6, -8, 4, 0, 3]

    q, scale, minimum = ql.Quantizer(4).quantize(X)

    assert minimum is None
    assert float(scale) == pytest.approx(1.00325134625, rel=1e-15)
    assert np.issubdtype(q.dtype, np.integer) and q.tolist() == expected
    x_hat = ql.Quantizer(4).dequantize(q, scale, None)
    np.testing.assert_allclose(x_hat, [d * c for c in expected], rtol=1e-15)
    assert x_hat[4] == pytest.approx(M, rel=1e-15)  # m lands exactly on code -8
    assert np.max(np.abs(x_hat - X)) <= d / 2 + 1e-12


def test_dividing_max_abs_by_minus_8_is_the_trap():
    # The mistake: d = max|x| / -8 is negative, so m = -8.026 maps to +8, which is clipped to 7.
    d_bad = max(abs(v) for v in X) / -8
    q_bad = [clip(round(v / d_bad), -8, 7) for v in X]
    assert round(M / d_bad) == 8 and q_bad[4] == 7
    err_bad = np.mean([(v - d_bad * c) ** 2 for v, c in zip(X, q_bad, strict=True)])
    assert abs(d_bad * 7 - M) == pytest.approx(8.02601077 / 8)  # a whole step lost on m

    # The library takes m with its sign and avoids it: same codes as the hand formula d = m/-8.
    q, d, _ = ql.Quantizer(4).quantize(X)
    x_hat = ql.Quantizer(4).dequantize(q, d)
    assert float(d) > 0 and q[4] == -8
    assert np.mean((np.array(X) - x_hat) ** 2) < err_bad


@pytest.mark.parametrize("n_bits", [2, 3, 4, 6, 8])
def test_symmetric_random_data_matches_formula(n_bits):
    rng = np.random.default_rng(10 + n_bits)
    for x in (rng.normal(size=33), -np.abs(rng.normal(size=9)), np.abs(rng.normal(size=9))):
        m = x[np.argmax(np.abs(x))]
        d = m / -(2 ** (n_bits - 1))
        expected = np.clip(np.round(x / d), -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
        q, scale, _ = ql.Quantizer(n_bits).quantize(x)
        assert float(scale) == pytest.approx(d, rel=1e-15)
        np.testing.assert_array_equal(q, expected)
        assert q[np.argmax(np.abs(x))] == -(2 ** (n_bits - 1))


def test_symmetric_offset_widens_the_range():
    for offset in (-1.0, -0.3, 0.5, 1.0):
        d = (abs(M) + offset) / 8 * (-1 if M > 0 else 1)  # |m| + offset, sign of m kept
        expected = [clip(round(v / d), -8, 7) for v in X]
        q, scale, _ = ql.Quantizer(4).quantize(X, offset=offset)
        assert float(scale) == pytest.approx(d, rel=1e-14)
        assert q.tolist() == expected


# -- with a minimum: scale = (max - min)/(2**n - 1), x_hat = scale*l + min -----------------------
def test_use_min_4bit_example_by_hand():
    scale = (max(X) - min(X)) / 15
    expected = [clip(round((v - min(X)) / scale), 0, 15) for v in X]
    # By hand: scale = 13.657/15 = 0.9105; (x - min)/scale = 15, 8.09, 4.67, 2.73, 0, 13.18,
    # 9.34, 12.55.
    assert expected == [15, 8, 5, 3, 0, 13, 9, 13]

    quant = ql.Quantizer(4, use_min=True)
    q, scale_got, min_got = quant.quantize(X)

    assert float(scale_got) == pytest.approx(0.910473552, rel=1e-12)
    assert float(min_got) == M
    assert q.tolist() == expected
    x_hat = quant.dequantize(q, scale_got, min_got)
    np.testing.assert_allclose(x_hat, [scale * c + M for c in expected], rtol=1e-14)
    assert x_hat[4] == M and x_hat[0] == pytest.approx(max(X), rel=1e-14)
    assert np.max(np.abs(x_hat - X)) <= scale / 2 + 1e-12


@pytest.mark.parametrize("offset", [-2.0, -0.5, 0.7])
def test_use_min_offset_widens_the_range(offset):
    scale = (max(X) - min(X) + offset) / 15
    expected = [clip(round((v - min(X)) / scale), 0, 15) for v in X]
    q, scale_got, min_got = ql.Quantizer(4, use_min=True).quantize(X, offset=offset)
    assert float(scale_got) == pytest.approx(scale, rel=1e-14) and float(min_got) == M
    assert q.tolist() == expected


@pytest.mark.parametrize("n_bits", [2, 3, 5, 8])
def test_use_min_random_data_matches_formula(n_bits):
    rng = np.random.default_rng(n_bits)
    x = rng.normal(size=40) + 0.5
    levels = 2**n_bits - 1
    scale = (x.max() - x.min()) / levels
    expected = np.clip(np.round((x - x.min()) / scale), 0, levels)
    q, scale_got, min_got = ql.Quantizer(n_bits, use_min=True).quantize(x)
    assert float(scale_got) == pytest.approx(scale, rel=1e-14) and float(min_got) == x.min()
    np.testing.assert_array_equal(q, expected)


# -- refit (SPEC items 5-6) through the Quantizer ------------------------------------------------
def test_refit_example_by_hand():
    q = [6, -1, -4, -6, -8, 4, 0, 3]
    d = sum(v * c for v, c in zip(X, q, strict=True)) / sum(c * c for c in q)
    d_got, min_got = ql.Quantizer(4).refit(X, q)
    assert min_got is None and float(d_got) == pytest.approx(d, rel=1e-14)

    err = [np.mean([(v - s * c) ** 2 for v, c in zip(X, q, strict=True)]) for s in (M / -8, d)]
    assert err[1] < err[0]  # the refit improves on d = m / -8

    lv = [15, 8, 5, 3, 0, 13, 9, 13]
    n = len(X)
    sl, sll = sum(lv), sum(c * c for c in lv)
    sx, sxl = sum(X), sum(v * c for v, c in zip(X, lv, strict=True))
    D = n * sll - sl * sl
    scale, minimum = (n * sxl - sx * sl) / D, (sx * sll - sxl * sl) / D
    scale_got, min_got = ql.Quantizer(4, use_min=True).refit(X, lv)
    assert float(scale_got) == pytest.approx(scale, rel=1e-13)
    assert float(min_got) == pytest.approx(minimum, rel=1e-13)


def test_refit_weighted_by_hand():
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 2, size=len(X))
    q = np.array([6, -1, -4, -6, -8, 4, 0, 3])
    d = np.sum(w * np.array(X) * q) / np.sum(w * q * q)
    assert float(ql.Quantizer(4).refit(X, q, w)[0]) == pytest.approx(d, rel=1e-13)
    # Uniform weights give exactly the unweighted result.
    assert ql.Quantizer(4).refit(X, q, np.full(8, 0.37))[0] == pytest.approx(
        ql.Quantizer(4).refit(X, q)[0], rel=1e-15
    )


def test_per_block_equals_per_tensor_on_each_block():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 16))
    w = rng.uniform(size=(4, 16))
    for use_min in (False, True):
        blocked = ql.Quantizer(4, use_min, block_size=8)
        q, s, m = blocked.quantize(x)
        s_fit, m_fit = blocked.refit(x, q, w)
        assert s.shape == (4, 2) and s_fit.shape == (4, 2)
        single = ql.Quantizer(4, use_min)
        for r in range(4):
            for b in range(2):
                sl = slice(8 * b, 8 * b + 8)
                q1, s1, m1 = single.quantize(x[r, sl])
                np.testing.assert_array_equal(q[r, sl], q1)
                assert s[r, b] == s1 and (m is None or m[r, b] == m1)
                s2, m2 = single.refit(x[r, sl], q1, w[r, sl])
                assert s_fit[r, b] == pytest.approx(s2, rel=1e-14)
                assert m_fit is None or m_fit[r, b] == pytest.approx(m2, rel=1e-14)


# -- degenerate legal input ------------------------------------------------------------------------
@pytest.mark.parametrize("use_min", [False, True])
@pytest.mark.parametrize("value", [0.0, 1.5, -2.25])
def test_constant_block_is_reproduced_exactly(use_min, value):
    quant = ql.Quantizer(4, use_min)
    x = np.full(7, value)
    q, scale, minimum = quant.quantize(x)
    x_hat = quant.dequantize(q, scale, minimum)
    assert np.all(np.isfinite(scale)) and (minimum is None or np.isfinite(minimum))
    np.testing.assert_allclose(x_hat, x, rtol=1e-15, atol=0)
    s_fit, m_fit = quant.refit(x, q)
    np.testing.assert_allclose(quant.dequantize(q, s_fit, m_fit), x, rtol=1e-15, atol=0)


def test_refit_all_equal_codes_is_not_nan():
    x = [0.5, 1.0, 2.5]
    # Singular normal equations: the best is the constant mean(x), i.e. scale 0 and min = mean.
    s, m = ql.Quantizer(4, use_min=True).refit(x, [3, 3, 3])
    assert np.isfinite(s) and np.isfinite(m)
    assert float(s) * 3 + float(m) == pytest.approx(np.mean(x))
    # Symmetric with all codes zero: x_hat = 0 whatever d; d must be finite.
    d, _ = ql.Quantizer(4).refit(x, [0, 0, 0])
    assert np.isfinite(d)


def test_refit_all_zero_weights_is_not_nan():
    x, q = [0.5, -1.0, 2.5], [1, -2, 5]
    for use_min in (False, True):
        s, m = ql.Quantizer(4, use_min).refit(x, q, w=[0.0, 0.0, 0.0])
        assert np.isfinite(s) and (m is None or np.isfinite(m))


def test_inputs_are_not_modified():
    x = np.array(X)
    q = np.array([6, -1, -4, -6, -8, 4, 0, 3])
    w = np.ones(8)
    copies = x.copy(), q.copy(), w.copy()
    quant = ql.Quantizer(4)
    quant.quantize(x, offset=0.5)
    quant.refit(x, q, w)
    quant.dequantize(q, 1.0)
    for a, b in zip((x, q, w), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_error_method_is_the_weighted_mse():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 8))
    w = rng.uniform(size=(2, 8))
    w[1] = 0.0  # a block without weight has no error
    for use_min in (False, True):
        quant = ql.Quantizer(4, use_min, block_size=8)
        q, s, m = quant.quantize(x)
        x_hat = s * q + (0.0 if m is None else m)
        expected = np.mean(w * (x - x_hat) ** 2, axis=1)
        np.testing.assert_allclose(quant.error(x, q, s, m, w).ravel(), expected, rtol=1e-13)
        assert quant.error(x, q, s, m, w)[1, 0] == 0.0
        np.testing.assert_allclose(
            quant.error(x, q, s, m).ravel(), np.mean((x - x_hat) ** 2, axis=1), rtol=1e-13
        )
