"""Oracle tests of SPEC items 1-2 (quantlab.uniform) on the course's example data.

Every expected value is worked out in the test from the SPEC formulas with plain Python/NumPy
arithmetic (or by hand, for a few literal codes), never by calling the code under test.
"""

import numpy as np
import pytest

import quantlab as ql

PARAMS = [2.34, -3.42, 0.0, -0.1, -0.32, -0.08, -0.47, 1.34, -1.0, -1.11,
          0.69, 0.84, -2.42, 0.61, -0.4, -0.61, 1.23, -0.18, -0.57, -0.14]  # fmt: skip


def test_example_data_is_the_spec_data():
    assert ql.PARAMS.tolist() == PARAMS
    assert ql.X_EXAMPLE.tolist() == [5.63109251, -0.66333746, -3.7742885, -5.53918171,
                                     -8.02601077, 3.97313181, 0.47977315, 3.40512398]  # fmt: skip


# -- item 1: asymmetric, integer zero-point ------------------------------------------------------
def test_include_zero_widens_the_range():
    x = [1.0, 2.0, 3.0, 4.0]
    # Default: the range [min(1, 0), max(4, 0)] = [0, 4]; Z = 0 is a code and 0 is exact.
    q, S, Z = ql.asymmetric_quantization(x)
    assert float(S) == 4 / 255 and int(Z) == 0
    assert q.tolist() == [round(v / (4 / 255)) for v in x]
    # include_zero=False: the literal formula; Z = round(-1 / (3/255)) = -85 leaves [0, 255].
    q, S, Z = ql.asymmetric_quantization(x, include_zero=False)
    assert float(S) == 3 / 255 and int(Z) == -85
    assert q.tolist() == [0, 85, 170, 255]
    # 0 is not representable: code 0 dequantizes to 85 S = 1.0.
    assert ql.asymmetric_dequantization([0], S, Z)[0] == pytest.approx(1.0)
    # A range below 0 and an explicit range are widened the same way.
    q, S, Z = ql.asymmetric_quantization([-4.0, -1.0], n_bits=4)
    assert float(S) == 4 / 15 and int(Z) == 15 and q.tolist() == [0, 11]
    q, S, Z = ql.asymmetric_quantization(x, alpha=4.0, beta=2.0, n_bits=4)
    assert float(S) == 4 / 15 and int(Z) == 0
    q, S, Z = ql.asymmetric_quantization(x, alpha=4.0, beta=2.0, n_bits=4, include_zero=False)
    # 3 / (2/15) = 22.5 rounds half to even to 22, minus 15: code 7.
    assert float(S) == 2 / 15 and int(Z) == -15 and q.tolist() == [0, 0, 7, 15]


@pytest.mark.parametrize("n_bits", [1, 2, 4, 8, 16])
def test_include_zero_z_is_always_a_code(n_bits):
    rng = np.random.default_rng(n_bits)
    for shift in (-50.0, -1.0, 0.0, 1.0, 50.0):
        x = rng.normal(size=(4, 8)) + shift
        q, S, Z = ql.asymmetric_quantization(x, n_bits=n_bits, channel_axis=0)
        assert np.all((Z >= 0) & (Z <= 2**n_bits - 1))
        x_hat = ql.asymmetric_dequantization(q, S, Z, n_bits=n_bits, channel_axis=0)
        np.testing.assert_array_equal(
            ql.asymmetric_dequantization(Z[:, None], S[:, None], Z[:, None], n_bits=n_bits), 0.0
        )
        hi, lo = np.maximum(x.max(axis=1), 0), np.minimum(x.min(axis=1), 0)
        np.testing.assert_allclose(S, (hi - lo) / (2**n_bits - 1), rtol=1e-15)
        assert np.all(np.abs(x_hat - x) <= S[:, None] / 2 * (1 + 1e-9))


def test_asymmetric_params_8bit_by_hand():
    S = (2.34 - (-3.42)) / 255  # (alpha - beta) / (2**8 - 1)
    Z = round(3.42 / S)  # round(-beta / S) = round(151.40...) = 151
    assert Z == 151
    expected_q = [min(max(round(v / S) + Z, 0), 255) for v in PARAMS]

    q, S_got, Z_got = ql.asymmetric_quantization(PARAMS, n_bits=8)

    assert S_got == pytest.approx(S, rel=1e-15)
    assert int(Z_got) == Z and np.issubdtype(np.asarray(Z_got).dtype, np.integer)
    assert np.issubdtype(q.dtype, np.integer)
    assert q.tolist() == expected_q
    # Worked by hand: 2.34/S = 103.59 -> 104 + 151 = 255 (the top code); -3.42 -> -151 + 151 = 0;
    # 0.0 -> Z; -0.1/S = -4.43 -> -4 + 151 = 147.
    assert q[:4].tolist() == [255, 0, 151, 147]

    x_hat = ql.asymmetric_dequantization(q, S_got, Z_got)
    np.testing.assert_allclose(x_hat, [(c - Z) * S for c in expected_q], rtol=0, atol=1e-15)
    assert x_hat[2] == 0.0  # zero is represented exactly
    # Inside the range, rounding costs at most half a step.
    assert np.max(np.abs(x_hat - PARAMS)) <= S / 2 + 1e-12


def test_asymmetric_explicit_range_clips():
    alpha, beta = 1.0, -2.0
    S = (alpha - beta) / 15
    Z = round(-beta / S)
    expected = [min(max(round(v / S) + Z, 0), 15) for v in PARAMS]
    q, S_got, Z_got = ql.asymmetric_quantization(PARAMS, alpha=alpha, beta=beta, n_bits=4)
    assert q.tolist() == expected
    assert float(S_got) == pytest.approx(S) and int(Z_got) == Z
    # 2.34 and 1.34 are above alpha: both land on the top code 15; -3.42 and -2.42 on code 0.
    assert q[[0, 7]].tolist() == [15, 15] and q[[1, 12]].tolist() == [0, 0]


@pytest.mark.parametrize("value", [2.5, -1.75, 0.0])
def test_asymmetric_constant_block_is_exact(value):
    x = np.full(6, value)
    q, S, Z = ql.asymmetric_quantization(x, n_bits=4)
    x_hat = ql.asymmetric_dequantization(q, S, Z)
    assert np.all(np.isfinite(S)) and float(S) > 0
    np.testing.assert_allclose(x_hat, x, rtol=1e-12, atol=0)
    assert np.all((q >= 0) & (q <= 15))


# -- item 2: symmetric ---------------------------------------------------------------------------
def test_symmetric_restricted_range_by_hand():
    S = 3.42 / 127  # alpha = max|x| = 3.42, 2**7 - 1 = 127
    expected = [min(max(round(v / S), -127), 127) for v in PARAMS]
    q, S_got = ql.symmetric_quantization(PARAMS, n_bits=8)
    assert float(S_got) == pytest.approx(S, rel=1e-15)
    assert q.tolist() == expected
    # By hand: 2.34/S = 86.89 -> 87; -3.42 -> -127; -0.47/S = -17.45 -> -17.
    assert (q[0], q[1], q[6]) == (87, -127, -17)
    assert q.min() >= -127  # the code -128 is never used
    np.testing.assert_allclose(ql.symmetric_dequantization(q, S_got), np.multiply(expected, S))


def test_symmetric_full_range_by_hand():
    # SPEC item 2: full_range keeps S = alpha / (2**(n-1) - 1) and only widens the clip.
    S = 3.42 / 127
    expected = [min(max(round(v / S), -128), 127) for v in PARAMS]
    q, S_got = ql.symmetric_quantization(PARAMS, n_bits=8, full_range=True)
    assert float(S_got) == pytest.approx(S, rel=1e-15)
    assert q.tolist() == expected
    # With the default alpha = max|x| nothing reaches -128: the codes equal the restricted ones.
    assert q.tolist() == ql.symmetric_quantization(PARAMS, n_bits=8)[0].tolist()
    # Below -alpha the extra code is used: -3.5/S = -129.97 -> -128 (restricted: -127).
    q2, _ = ql.symmetric_quantization([-3.5, 3.42], alpha=3.42, n_bits=8, full_range=True)
    assert q2.tolist() == [-128, 127]


SEED_004_CODES = [127, -128, 0, -5, -17, -4, -26, 73, -54, -60,
                  37, 46, -128, 33, -22, -33, 67, -10, -31, -8]  # fmt: skip


def test_seed_004_table_reproduces_exactly():
    """Seed 004's printed table: alpha = max(x) (the classic mistake), restricted S, full clip."""
    q, S = ql.symmetric_quantization(ql.PARAMS, alpha=ql.PARAMS.max(), n_bits=8, full_range=True)
    assert q.tolist() == SEED_004_CODES
    assert float(S) == 0.0184251968503937  # 2.34 / 127, printed by the seed
    assert float(S) == 2.34 / 127
    x_hat = ql.symmetric_dequantization(q, S)
    assert float(ql.mse(ql.PARAMS, x_hat)) == 0.05656446493892984
    # The same MSE from the formulas, in plain NumPy.
    ref = np.clip(np.round(np.array(PARAMS) / (2.34 / 127)), -128, 127) * (2.34 / 127)
    assert np.mean((np.array(PARAMS) - ref) ** 2) == pytest.approx(0.05656446493892984, rel=1e-15)


def test_pytorch_full_range_scale_differs():
    """PyTorch's S = alpha / 127.5 is a different convention, reachable through alpha."""
    a = 3.42
    q, S = ql.symmetric_quantization(PARAMS, alpha=a * 127 / 127.5, n_bits=8, full_range=True)
    assert float(S) == pytest.approx(a / 127.5, rel=1e-15)
    assert q.tolist() == [min(max(round(v / (a / 127.5)), -128), 127) for v in PARAMS]
    assert q[1] == -128  # -3.42 / S = -127.5 -> -128 (half to even)


def test_symmetric_alpha_max_mistake_clips_the_negative_extreme():
    S = 2.34 / 127  # alpha = max(x) = 2.34 instead of max|x| = 3.42
    expected = [min(max(round(v / S), -127), 127) for v in PARAMS]
    q, S_got = ql.symmetric_quantization(PARAMS, alpha=max(PARAMS), n_bits=8)
    assert float(S_got) == pytest.approx(S, rel=1e-15)
    assert q.tolist() == expected
    # -3.42/S = -185.6 and -2.42/S = -131.3: both clipped to -127, i.e. to -2.34.
    assert q[1] == -127 and q[12] == -127
    x_hat = ql.symmetric_dequantization(q, S_got)
    assert x_hat[1] == pytest.approx(-2.34)
    assert abs(x_hat[1] - (-3.42)) == pytest.approx(1.08)
    # The mistake costs far more than rounding with the right alpha.
    q_ok, S_ok = ql.symmetric_quantization(PARAMS, n_bits=8)
    err_ok = np.mean((np.array(PARAMS) - q_ok * float(S_ok)) ** 2)
    err_bad = np.mean((np.array(PARAMS) - x_hat) ** 2)
    assert err_bad > 100 * err_ok


@pytest.mark.parametrize("n_bits", [2, 3, 4, 8, 12])
@pytest.mark.parametrize("full_range", [False, True])
def test_symmetric_random_data_matches_formula(n_bits, full_range):
    rng = np.random.default_rng(n_bits)
    x = rng.normal(size=50) * 3
    qmax = 2 ** (n_bits - 1) - 1
    qmin = -qmax - 1 if full_range else -qmax
    S = np.max(np.abs(x)) / qmax  # the same S for both ranges (SPEC item 2)
    expected = np.clip(np.round(x / S), qmin, qmax)
    q, S_got = ql.symmetric_quantization(x, n_bits=n_bits, full_range=full_range)
    assert float(S_got) == pytest.approx(S, rel=1e-14)
    np.testing.assert_array_equal(q, expected)


def test_symmetric_degenerate_blocks():
    q, S = ql.symmetric_quantization(np.zeros(5), n_bits=4)
    assert q.tolist() == [0] * 5 and np.isfinite(S) and float(S) > 0
    np.testing.assert_array_equal(ql.symmetric_dequantization(q, S), np.zeros(5))
    # A constant block lands on the top code and is reproduced exactly.
    q, S = ql.symmetric_quantization(np.full(4, -0.3), n_bits=4)
    assert q.tolist() == [-7] * 4
    np.testing.assert_allclose(ql.symmetric_dequantization(q, S), np.full(4, -0.3), rtol=1e-15)


# -- per-channel / per-block equals the per-tensor formula applied to each group ------------------
def test_per_block_and_per_channel_equal_per_group_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8))
    qa, Sa, Za = ql.asymmetric_quantization(x, n_bits=4, block_size=4)
    qs, Ss = ql.symmetric_quantization(x, n_bits=4, channel_axis=0)
    assert Sa.shape == (3, 2) and Za.shape == (3, 2) and Ss.shape == (3,)
    for r in range(3):
        s = np.max(np.abs(x[r])) / 7
        np.testing.assert_array_equal(qs[r], np.clip(np.round(x[r] / s), -7, 7))
        assert Ss[r] == pytest.approx(s)
        for b in range(2):
            blk = x[r, 4 * b : 4 * b + 4]
            hi, lo = max(blk.max(), 0.0), min(blk.min(), 0.0)  # include_zero
            S = (hi - lo) / 15
            Z = np.round(-lo / S)
            np.testing.assert_array_equal(
                qa[r, 4 * b : 4 * b + 4], np.clip(np.round(blk / S) + Z, 0, 15)
            )
            assert Sa[r, b] == pytest.approx(S) and Za[r, b] == Z


@pytest.mark.parametrize("n_bits", [1, 3, 8, 16])
def test_include_zero_false_is_the_literal_formula(n_bits):
    rng = np.random.default_rng(100 + n_bits)
    levels = 2**n_bits - 1
    for shift in (-30.0, -2.0, 0.0, 2.0, 30.0):
        x = rng.normal(size=40) + shift
        q, S, Z = ql.asymmetric_quantization(x, n_bits=n_bits, include_zero=False)
        S_ref = (x.max() - x.min()) / levels
        Z_ref = np.round(-x.min() / S_ref)
        assert float(S) == S_ref and int(Z) == Z_ref
        np.testing.assert_array_equal(q, np.clip(np.round(x / S_ref) + Z_ref, 0, levels))
        x_hat = ql.asymmetric_dequantization(q, S, Z, n_bits=n_bits)
        assert np.all(np.abs(x_hat - x) <= S_ref / 2 * (1 + 1e-9) + 1e-15 * np.abs(x).max())
        if x.min() <= 0 <= x.max():  # the range already contains 0: both conventions agree
            q2, S2, Z2 = ql.asymmetric_quantization(x, n_bits=n_bits)
            assert float(S2) == float(S) and int(Z2) == int(Z)
            np.testing.assert_array_equal(q2, q)
        else:  # Z is no code: 0 is not representable
            assert not 0 <= int(Z) <= levels
