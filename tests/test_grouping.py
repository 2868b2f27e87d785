"""Grouping: per-tensor, per-channel and per-block views and their inverse.

The oracle for every group is plain NumPy indexing (``x.take(c, axis)``, slices of ``block_size``
along the last axis), never the reshapes under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import quantlab as ql
from quantlab.grouping import Grouping

settings.register_profile("quantlab-grouping", max_examples=60, deadline=None)
PROFILE = settings.get_profile("quantlab-grouping")

SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)


def expected_groups(x: np.ndarray, g: Grouping) -> list[np.ndarray]:
    """The values of each group in order, by indexing (the oracle)."""
    if g.channel_axis is not None:
        return [x.take(c, axis=g.channel_axis).ravel() for c in range(x.shape[g.channel_axis])]
    if g.block_size is not None:
        b = g.block_size
        return [
            x[(*lead, slice(k * b, (k + 1) * b))]
            for lead in np.ndindex(*x.shape[:-1])
            for k in range(x.shape[-1] // b)
        ]
    return [x.ravel()]


def check_round_trip(x: np.ndarray, g: Grouping, param_shape: tuple[int, ...]) -> None:
    x0 = x.copy()
    groups = g.to_groups(x)
    want = expected_groups(x, g)
    assert groups.shape == (len(want), want[0].size)
    assert groups.flags.c_contiguous
    for row, values in zip(groups, want, strict=True):
        np.testing.assert_array_equal(row, values)
    back = g.from_groups(groups, x.shape)
    assert back.shape == x.shape
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(x, x0)  # the input is untouched
    # Parameters: one per group, in the same order as the rows.
    assert g.param_shape(x.shape) == param_shape
    n_groups = len(want)
    assert int(np.prod(param_shape, dtype=int)) == n_groups
    p = np.arange(n_groups, dtype=float) * 0.5
    p_shaped = g.params_from_groups(p, x.shape)
    assert np.shape(p_shaped) == param_shape
    col = g.params_to_groups(p_shaped, x.shape, "S")
    assert col.shape == (n_groups, 1)
    np.testing.assert_array_equal(col[:, 0], p)
    # A scalar parameter broadcasts to every group.
    np.testing.assert_array_equal(
        g.params_to_groups(2.5, x.shape, "S"), np.full((n_groups, 1), 2.5)
    )


@PROFILE
@given(shape=SHAPES, data=st.data())
def test_channel_round_trip_every_axis(shape, data):
    x = np.arange(np.prod(shape), dtype=float).reshape(shape) - 3.5
    ndim = len(shape)
    for axis in range(-ndim, ndim):
        g = Grouping(channel_axis=axis)
        check_round_trip(x, g, (shape[axis],))
    # Non-contiguous input (a transposed view) groups the same values.
    xt = data.draw(hnp.arrays(np.float64, shape[::-1], elements=st.floats(-1e3, 1e3))).T
    axis = data.draw(st.integers(-ndim, ndim - 1))
    check_round_trip(xt, Grouping(channel_axis=axis), (shape[axis],))


@PROFILE
@given(shape=SHAPES, b=st.integers(1, 5))
def test_block_round_trip(shape, b):
    shape = (*shape[:-1], shape[-1] * b)
    x = np.arange(np.prod(shape), dtype=float).reshape(shape) * 0.25
    check_round_trip(x, Grouping(block_size=b), (*shape[:-1], shape[-1] // b))
    check_round_trip(np.asfortranarray(x), Grouping(block_size=b), (*shape[:-1], shape[-1] // b))


@PROFILE
@given(shape=SHAPES)
def test_tensor_round_trip(shape):
    x = np.arange(np.prod(shape), dtype=float).reshape(shape)
    check_round_trip(x, Grouping(), ())


def test_zero_dimensional_tensor():
    g = Grouping()
    x = np.array(3.0)
    assert g.to_groups(x).shape == (1, 1)
    assert g.from_groups(g.to_groups(x), ()).shape == ()
    assert g.param_shape(()) == ()


def test_codes_round_trip_keep_integer_dtype():
    q = np.arange(24).reshape(2, 3, 4)
    for g in (Grouping(), Grouping(channel_axis=1), Grouping(block_size=2)):
        back = g.from_groups(g.to_groups(q), q.shape)
        assert back.dtype == q.dtype
        np.testing.assert_array_equal(back, q)


def test_param_shapes_by_hand():
    assert Grouping(channel_axis=0).param_shape((3, 8)) == (3,)
    assert Grouping(channel_axis=-1).param_shape((3, 8)) == (8,)
    assert Grouping(channel_axis=1).param_shape((2, 5, 4)) == (5,)
    assert Grouping(block_size=4).param_shape((3, 8)) == (3, 2)
    assert Grouping(block_size=8).param_shape((8,)) == (1,)
    assert Grouping().param_shape((3, 8)) == ()
    g = Grouping(block_size=2)
    np.testing.assert_array_equal(
        g.to_groups(np.arange(8.0).reshape(2, 4)), [[0, 1], [2, 3], [4, 5], [6, 7]]
    )
    g = Grouping(channel_axis=1)
    np.testing.assert_array_equal(
        g.to_groups(np.arange(6.0).reshape(2, 3)), [[0, 3], [1, 4], [2, 5]]
    )


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "b"), [((4,), 3), ((2, 5), 2), ((6, 3), 2), ((7,), 8)])
def test_length_not_a_multiple_of_block_size(shape, b):
    g = Grouping(block_size=b)
    pattern = rf"(?s)(?=.*\bblock_size={b}\b)(?=.*length {shape[-1]})(?=.*multiple)"
    with pytest.raises(ValueError, match=pattern):
        g.to_groups(np.zeros(shape))
    with pytest.raises(ValueError, match=pattern):
        g.param_shape(shape)
    # The same message reaches the public API.
    with pytest.raises(ValueError, match=pattern):
        ql.Quantizer(4, block_size=b).quantize(np.ones(shape))
    with pytest.raises(ValueError, match=pattern):
        ql.asymmetric_quantization(np.ones(shape), block_size=b)


def test_block_size_on_a_scalar():
    with pytest.raises(ValueError, match=r"block_size"):
        Grouping(block_size=2).to_groups(np.array(1.0))
    with pytest.raises(ValueError, match=r"channel_axis"):
        Grouping(channel_axis=0).to_groups(np.array(1.0))


def test_channel_axis_and_block_size_together():
    with pytest.raises(ValueError, match=r"(?s)(?=.*channel_axis)(?=.*block_size)"):
        Grouping(channel_axis=0, block_size=2)
    with pytest.raises(ValueError, match=r"(?s)(?=.*channel_axis)(?=.*block_size)"):
        ql.symmetric_quantization(np.ones((2, 4)), channel_axis=0, block_size=2)


@pytest.mark.parametrize(("shape", "axis"), [((4,), 1), ((4,), -2), ((2, 3), 2), ((2, 3, 4), -4)])
def test_channel_axis_out_of_range(shape, axis):
    pattern = rf"(?s)(?=.*channel_axis {axis}\b)(?=.*out of range)(?=.*{len(shape)}-D)"
    g = Grouping(channel_axis=axis)
    with pytest.raises(ValueError, match=pattern):
        g.to_groups(np.zeros(shape))
    with pytest.raises(ValueError, match=pattern):
        g.param_shape(shape)
    with pytest.raises(ValueError, match=pattern):
        ql.lstsq_scale(np.ones(shape), np.ones(shape, int), channel_axis=axis)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"block_size": 0}, ValueError, r"block_size must be positive"),
        ({"block_size": -2}, ValueError, r"block_size must be positive"),
        ({"block_size": 2.0}, TypeError, r"block_size must be an integer"),
        ({"block_size": True}, TypeError, r"block_size must be an integer"),
        ({"block_size": "2"}, TypeError, r"block_size must be an integer"),
        ({"channel_axis": 1.0}, TypeError, r"channel_axis must be an integer"),
        ({"channel_axis": False}, TypeError, r"channel_axis must be an integer"),
        ({"channel_axis": "0"}, TypeError, r"channel_axis must be an integer"),
    ],
)
def test_bad_grouping_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Grouping(**kwargs)
    with pytest.raises(exc, match=pattern):
        ql.Quantizer(4, **kwargs)


def test_numpy_integers_are_accepted():
    x = np.arange(8.0).reshape(2, 4)
    g = Grouping(channel_axis=np.int64(-1), block_size=None)
    assert g.param_shape(x.shape) == (4,)
    assert Grouping(block_size=np.int32(2)).param_shape(x.shape) == (2, 2)


@pytest.mark.parametrize(
    ("g", "p_shape"),
    [(Grouping(channel_axis=0), (3,)), (Grouping(block_size=2), (2,)), (Grouping(), (2,))],
)
def test_parameters_of_the_wrong_shape(g, p_shape):
    with pytest.raises(ValueError, match=r"(?s)(?=.*\balpha\b)(?=.*parameter shape)"):
        g.params_to_groups(np.ones(p_shape), (2, 4), "alpha")
