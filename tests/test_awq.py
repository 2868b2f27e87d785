"""AWQ's scale search (quantlab.awq): the definition, α = 0 is round-to-nearest, bad input."""

import numpy as np
import pytest

from quantlab.awq import REFERENCE_ALPHAS, awq_scales, awq_search
from quantlab.gptq import rtn


def salient_layer(seed, rows=16, cols=32, samples=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, cols)) * np.exp(rng.normal(0, 1.2, size=cols))
    return rng.normal(size=(rows, cols)), X


def direct_error(W, W_hat, X):
    return np.mean((X @ W.T - X @ W_hat.T) ** 2)


def test_scales_are_the_definition():
    _, X = salient_layer(0)
    for alpha in (0.0, 0.35, 0.9):
        s = np.maximum(np.mean(np.abs(X), axis=0) ** alpha, 1e-4)
        s = s / np.sqrt(s.max() * s.min())
        np.testing.assert_allclose(awq_scales(X, alpha), s, rtol=1e-12)
    np.testing.assert_array_equal(awq_scales(X, 0.0), np.ones(X.shape[1]))
    # an input that is always 0 gets the floor 1e-4 (before normalisation), not 0
    X[:, 3] = 0.0
    s = awq_scales(X, 0.5)
    assert np.all(s > 0) and np.isclose(s[3], s.min())


@pytest.mark.parametrize("kwargs", [dict(), dict(group_size=8), dict(sym=True)])
def test_alpha_zero_is_round_to_nearest(kwargs):
    W, X = salient_layer(1)
    res = awq_search(W, X, 3, alphas=[0.0, 0.5], **kwargs)
    np.testing.assert_allclose(res.errors[0], direct_error(W, rtn(W, 3, **kwargs).W_hat, X))
    res0 = awq_search(W, X, 3, alphas=[0.0], **kwargs)
    np.testing.assert_array_equal(res0.W_hat, rtn(W, 3, **kwargs).W_hat)


def test_search_keeps_the_best_candidate_and_its_layer():
    W, X = salient_layer(2)
    res = awq_search(W, X, 3, group_size=8)
    np.testing.assert_array_equal(res.alphas, REFERENCE_ALPHAS)
    assert res.alpha == REFERENCE_ALPHAS[np.argmin(res.errors)]
    s = awq_scales(X, res.alpha)
    np.testing.assert_allclose(res.s, s)
    # the effective layer is the rounded scaled layer divided by s; the inputs may be divided
    # instead: x Ŵᵀ = (x / s) Q(W s)ᵀ
    np.testing.assert_array_equal(res.quantized.W_hat, rtn(W * s, 3, group_size=8).W_hat)
    np.testing.assert_allclose(X @ res.W_hat.T, (X / s) @ res.quantized.W_hat.T, rtol=1e-10)
    # every candidate's error is the direct output error of its layer
    for alpha, err in zip(res.alphas[::5], res.errors[::5], strict=True):
        sa = awq_scales(X, alpha)
        W_hat = rtn(W * sa, 3, group_size=8).W_hat / sa
        np.testing.assert_allclose(err, direct_error(W, W_hat, X), rtol=1e-9)


def test_helps_on_salient_channels():
    """On inputs whose channel magnitudes spread over orders of magnitude, the searched α
    lowers the output error below round-to-nearest on every seed of a fixed set."""
    for seed in range(10):
        W, X = salient_layer(100 + seed)
        res = awq_search(W, X, 3)
        assert res.errors.min() < 0.95 * res.errors[0]
        assert res.alpha > 0


def test_bad_input_and_inputs_unchanged():
    W, X = salient_layer(3)
    W0, X0 = W.copy(), X.copy()
    awq_search(W, X, 4)
    assert np.array_equal(W, W0) and np.array_equal(X, X0)
    with pytest.raises(ValueError, match="X must be"):
        awq_search(W, X[:, :5])
    with pytest.raises(ValueError, match="W must be a 2-D"):
        awq_search(W[0], X)
    with pytest.raises(ValueError, match="alphas must lie in"):
        awq_search(W, X, alphas=[0.5, 1.5])
    with pytest.raises(ValueError, match="n_bits must be between"):
        awq_search(W, X, 1)
    with pytest.raises(ValueError, match="X contains NaN"):
        awq_search(W, np.full_like(X, np.nan))
