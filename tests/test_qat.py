"""Quantization-aware training (quantlab.qat): STE and LSQ gradients against their definitions
and finite differences, and QAT's recovery on the digits MLP."""

import numpy as np
import pytest

from quantlab.gptq import grid_params, rtn
from quantlab.mlp import _loss_and_gradients, digits_mlp
from quantlab.qat import fake_quantize, lsq_scale_gradient, qat_train, ste_gradient

N_BITS = 3
MAXQ = 2**N_BITS - 1


def layer(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 12))
    scale, zero = grid_params(w, N_BITS)
    # a smaller scale than min/max makes some values clip on both sides
    return w, 0.6 * scale[:, None], zero[:, None], rng.normal(size=w.shape)


def test_fake_quantize_is_rtn_on_the_grid():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 9))
    s, z = grid_params(w, N_BITS)
    np.testing.assert_array_equal(fake_quantize(w, s[:, None], z[:, None], N_BITS), rtn(w, 3).W_hat)


def test_ste_is_identity_inside_the_clip_range():
    w, s, z, c = layer()
    g = ste_gradient(w, s, z, N_BITS, c)
    t = np.round(w / s) + z
    inside = (t >= 0) & (t <= MAXQ)
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(g[inside], c[inside])
    assert np.all(g[~inside] == 0)


def test_ste_against_finite_differences():
    """The true loss L(ŵ(w)) is piecewise constant in w (finite differences give 0); the STE
    is the exact derivative of the surrogate with round replaced by the identity, i.e.
    ŵ ≈ s · (clip(w/s + z, 0, maxq) - z), where that surrogate is differentiable."""
    w, s, z, c = layer()

    def loss_true(v):
        return np.sum(c * fake_quantize(v, s, z, N_BITS))

    def loss_surrogate(v):
        return np.sum(c * s * (np.clip(v / s + z, 0, MAXQ) - z))

    h = 1e-7
    g = ste_gradient(w, s, z, N_BITS, c)
    u = w / s + z
    for idx in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[idx] = h
        assert loss_true(w + e) == loss_true(w - e)  # no signal for gradient descent
        if min(abs(u[idx]), abs(u[idx] - MAXQ)) < 0.6:
            continue  # the surrogate's kink at the edge of the range is not differentiable
        fd = (loss_surrogate(w + e) - loss_surrogate(w - e)) / (2 * h)
        inside = -0.5 <= u[idx] <= MAXQ + 0.5
        if inside == (0 <= u[idx] <= MAXQ):
            np.testing.assert_allclose(g[idx], fd, rtol=1e-6, atol=1e-8)


def test_lsq_against_finite_differences():
    """Where a value is clipped, ŵ = s·(0 - z) or s·(maxq - z) is differentiable in s and the
    finite difference is exact; inside the range LSQ's gradient is, by its definition, the
    derivative with round linearised at the current point: round(w/s') ≈ round(w/s) + w/s' - w/s."""
    w, s, z, c = layer(2)
    h = 1e-7
    g = lsq_scale_gradient(w, s, z, N_BITS, c)
    r0 = np.round(w / s)

    def surrogate(sp):
        t = r0 + w / sp - w / s + z  # inside: round linearised, no clip (a code may sit on 0)
        return np.sum(
            c * sp * (np.where((r0 + z < 0) | (r0 + z > MAXQ), np.clip(r0 + z, 0, MAXQ), t) - z),
            axis=1,
            keepdims=True,
        )

    fd = (surrogate(s + h) - surrogate(s - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    # the clipped part alone: the true function's finite difference
    clipped = (r0 + z < 0) | (r0 + z > MAXQ)
    assert clipped.any()

    def true_clipped(sp):
        return np.sum(
            np.where(clipped, c * fake_quantize(w, sp, z, N_BITS), 0), axis=1, keepdims=True
        )

    g_clipped = lsq_scale_gradient(w, s, z, N_BITS, np.where(clipped, c, 0))
    fd_true = (true_clipped(s + h) - true_clipped(s - h)) / (2 * h)
    np.testing.assert_allclose(g_clipped, fd_true, rtol=1e-6)


def test_network_gradient_wrt_quantized_weights():
    """The chain the STE continues: the MLP's gradient with respect to the fake-quantized
    weights (differentiable) against central finite differences."""
    m = digits_mlp()
    X, y = m.data.X_train[:50], m.data.y_train[:50]
    Y = np.eye(10)[y]
    s, z = grid_params(m.W2, 2)
    W2h = fake_quantize(m.W2, s[:, None], z[:, None], 2)
    params = [np.array(m.W1), np.array(m.b1), W2h, np.array(m.b2)]
    _, grads = _loss_and_gradients(params, X, Y)
    h = 1e-6
    for idx in [(0, 3), (4, 100), (9, 17)]:
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[2][idx] += h
        minus[2][idx] -= h
        fd = (_loss_and_gradients(plus, X, Y)[0] - _loss_and_gradients(minus, X, Y)[0]) / (2 * h)
        np.testing.assert_allclose(grads[2][idx], fd, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("lsq", [False, True])
def test_qat_recovers_accuracy_at_2_bits(lsq):
    m = digits_mlp()
    res = qat_train(m, 2, steps=40, lsq=lsq)
    # step 0 is round-to-nearest; training lowers the loss and raises the accuracy
    assert np.isclose(res.accuracy[0], m.accuracy(rtn(m.W1, 2).W_hat, rtn(m.W2, 2).W_hat))
    assert res.loss[-1] < 0.2 * res.loss[0]
    assert res.accuracy[-1] > res.accuracy[0] + 0.02
    # the returned weights lie on their grids
    for W_hat, s in ((res.W1, res.scales[0]), (res.W2, res.scales[1])):
        k = W_hat / s
        np.testing.assert_allclose(k, np.round(k), atol=1e-9)
        assert max(len(np.unique(row)) for row in W_hat) <= 4  # 2 bits: 4 levels per row


def test_qat_bad_input():
    m = digits_mlp()
    with pytest.raises(ValueError, match="steps"):
        qat_train(m, 2, steps=-1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        qat_train(m, 2, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        qat_train(m, 2, momentum=1.0)
    with pytest.raises(ValueError, match="n_bits"):
        qat_train(m, 1)
    with pytest.raises(TypeError, match="lsq"):
        qat_train(m, 2, lsq="no")
