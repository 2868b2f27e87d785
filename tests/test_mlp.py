"""The course's shared model: the network notebook 08 trains, reproduced by quantlab.mlp."""

import numpy as np
import pytest

from quantlab.mlp import digits_mlp, load_digits_split


def test_split_is_notebook_08s():
    data = load_digits_split()
    assert data.X_train.shape == (1437, 64) and data.X_test.shape == (360, 64)
    assert np.array_equal(np.bincount(data.y_test), [37, 30, 48, 42, 43, 35, 32, 40, 29, 24])
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0


def test_trained_model_matches_notebook_08():
    model = digits_mlp()
    assert model.W1.shape == (128, 64) and model.W2.shape == (10, 128)
    assert f"{model.loss:.3g}" == "0.00173"  # notebook 08, cell "final training loss"
    assert round(model.accuracy() * 360) == 348  # 96.7 % of the 360 test images
    assert digits_mlp() is model  # trained once


def test_forward_is_the_formula_and_weights_are_read_only():
    model = digits_mlp()
    X = model.data.X_test[:5]
    H, Z = model.forward(X)
    assert np.allclose(H, np.maximum(X @ model.W1.T + model.b1, 0))
    assert np.allclose(Z, H @ model.W2.T + model.b2)
    assert np.array_equal(model.logits(X, W2=np.zeros_like(model.W2)), np.tile(model.b2, (5, 1)))
    with pytest.raises(ValueError, match="read-only"):
        model.W1[0, 0] = 1.0
    with pytest.raises(ValueError, match="X must have shape"):
        model.forward(np.ones((2, 63)))
