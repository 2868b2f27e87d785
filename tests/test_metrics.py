"""Oracle tests of SPEC item 3: error measures against their formulas, and the uniform-noise model
(Δ²/12, ≈ 6.02 dB per bit) against measurement."""

import math

import numpy as np
import pytest

import quantlab as ql


def test_mse_by_hand():
    x, x_hat = [1.0, 2.0, -1.0, 0.5], [1.5, 2.0, -0.25, 0.5]
    assert float(ql.mse(x, x_hat)) == pytest.approx((0.25 + 0 + 0.5625 + 0) / 4)
    w = [2.0, 1.0, 4.0, 0.0]
    assert float(ql.mse(x, x_hat, w)) == pytest.approx((2 * 0.25 + 4 * 0.5625) / 4)


def test_metrics_equal_direct_formulas_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 50))
    x_hat = x + rng.normal(scale=0.1, size=x.shape)
    w = rng.uniform(size=x.shape)
    e = x - x_hat
    assert float(ql.mse(x, x_hat)) == pytest.approx(np.sum(e**2) / e.size, rel=1e-13)
    assert float(ql.mse(x, x_hat, w)) == pytest.approx(np.sum(w * e**2) / e.size, rel=1e-13)
    np.testing.assert_allclose(ql.mse(x, x_hat, w, axis=1), (w * e**2).sum(axis=1) / 50)
    expected_db = 10 * math.log10(sum(v * v for v in x.ravel()) / sum(v * v for v in e.ravel()))
    assert float(ql.sqnr_db(x, x_hat)) == pytest.approx(expected_db, rel=1e-12)
    np.testing.assert_allclose(
        ql.sqnr_db(x, x_hat, axis=1), 10 * np.log10((x**2).sum(1) / (e**2).sum(1)), rtol=1e-12
    )
    assert float(ql.max_error(x, x_hat)) == max(abs(v) for v in e.ravel())
    np.testing.assert_array_equal(ql.max_error(x, x_hat, axis=0), np.abs(e).max(axis=0))


def test_sqnr_by_hand():
    # signal 3² + 4² = 25, noise 0.1² = 0.01: 10*log10(2500) = 33.979 dB
    assert float(ql.sqnr_db([3.0, 4.0], [3.0, 3.9])) == pytest.approx(10 * math.log10(2500))


def test_uniform_weights_give_the_plain_mse_times_the_weight():
    rng = np.random.default_rng(1)
    x, x_hat = rng.normal(size=30), rng.normal(size=30)
    assert float(ql.mse(x, x_hat, np.ones(30))) == float(ql.mse(x, x_hat))
    assert float(ql.mse(x, x_hat, np.full(30, 2.5))) == pytest.approx(2.5 * float(ql.mse(x, x_hat)))


def test_degenerate_inputs_never_give_nan():
    x = np.array([0.3, -1.2, 2.0])
    assert float(ql.mse(x, x)) == 0.0 and float(ql.max_error(x, x)) == 0.0
    assert float(ql.sqnr_db(x, x)) == math.inf  # no noise at all
    assert float(ql.mse(x, x + 1, np.zeros(3))) == 0.0  # all-zero weights: no error counted
    assert float(ql.sqnr_db(np.zeros(3), np.zeros(3))) == math.inf  # all-zero block, exact
    assert float(ql.sqnr_db(np.zeros(3), [0.1, 0.0, 0.0])) == -math.inf  # noise, no signal
    const = np.full(4, 0.7)
    q, S, Z = ql.asymmetric_quantization(const, n_bits=4)
    assert float(ql.sqnr_db(const, ql.asymmetric_dequantization(q, S, Z))) > 250  # ~exact


# -- the uniform-noise model ---------------------------------------------------------------------
UNIFORM = np.random.default_rng(2).uniform(-1, 1, size=200_000)


def test_model_formulas():
    assert float(ql.uniform_noise_mse(0.3)) == pytest.approx(0.09 / 12)
    for n in (1, 4, 8, 16):
        assert ql.uniform_sqnr_db(n) == pytest.approx(20 * n * math.log10(2))
    assert ql.uniform_sqnr_db(8) == pytest.approx(48.16, abs=0.01)


@pytest.mark.parametrize("n_bits", [3, 5, 8, 10])
def test_measured_mse_is_delta_squared_over_12(n_bits):
    q, S, Z = ql.asymmetric_quantization(UNIFORM, n_bits=n_bits)
    x_hat = ql.asymmetric_dequantization(q, S, Z, n_bits=n_bits)
    delta = 2.0 / (2**n_bits - 1)  # the range [-1, 1] (up to sampling) over 2**n - 1 steps
    assert float(S) == pytest.approx(delta, rel=1e-4)
    measured = float(np.mean((UNIFORM - x_hat) ** 2))
    assert measured == pytest.approx(delta**2 / 12, rel=0.03)
    assert float(ql.uniform_noise_mse(S)) == pytest.approx(measured, rel=0.03)
    assert float(ql.max_error(UNIFORM, x_hat)) <= float(S) / 2 + 1e-12


def test_sqnr_grows_by_6_db_per_bit():
    bits = np.arange(6, 15)
    measured = []
    for n in bits:
        q, S, Z = ql.asymmetric_quantization(UNIFORM, n_bits=int(n))
        measured.append(
            float(ql.sqnr_db(UNIFORM, ql.asymmetric_dequantization(q, S, Z, n_bits=int(n))))
        )
    slope, _ = np.polyfit(bits, measured, 1)
    assert slope == pytest.approx(20 * math.log10(2), abs=0.05)  # 6.02 dB per bit
    # Level with the model: signal a²/3 over noise Δ²/12 with Δ = 2a/(2**n - 1).
    model = 20 * np.log10(2.0**bits - 1)
    np.testing.assert_allclose(measured, model, atol=0.1)
    np.testing.assert_allclose(measured[-1], ql.uniform_sqnr_db(14), atol=0.05)


def test_the_alpha_max_mistake_costs_sqnr():
    params = np.array(ql.PARAMS)
    q, S = ql.symmetric_quantization(params, n_bits=8)
    good = float(ql.sqnr_db(params, ql.symmetric_dequantization(q, S)))
    q, S = ql.symmetric_quantization(params, alpha=params.max(), n_bits=8)
    bad = float(ql.sqnr_db(params, ql.symmetric_dequantization(q, S)))
    # Clipping -3.42 to -2.34 and -2.42 to -2.34: the noise is dominated by those two errors.
    noise = (3.42 - 2.34) ** 2 + (2.42 - 2.34) ** 2
    assert bad == pytest.approx(10 * math.log10(np.sum(params**2) / noise), abs=0.05)
    assert good - bad > 20
