"""quantlab.floats against ml_dtypes, ONNX's reference evaluator and bitsandbytes' NF4 table."""

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab import floats as F

ml_dtypes = pytest.importorskip("ml_dtypes")

ELEMENTS = ["float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"]
ALL = [*ELEMENTS, "float8_e8m0fnu"]


def probes(name):
    """Every value, every midpoint, the floats just beside each midpoint, specials, overflow."""
    fin = F.finite_values(name)
    mids = (fin[:-1] + fin[1:]) / 2
    top = fin[-1]
    rel = F.relative_spacing(name)
    over = top * np.array([1 + rel / 2, 1.0625, 2.0, 1e6])
    extra = [0.0, -0.0, np.inf, -np.inf, 1e-300, -1e-300, 1e300, -1e300]
    xs = np.concatenate([fin, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    xs = np.concatenate([xs, over, -over, np.nextafter(over, 0), -np.nextafter(over, 0), extra])
    if F.get_format(name).has_nan:
        xs = np.concatenate([xs, [np.nan, -np.nan]])
    return xs


@pytest.mark.parametrize("name", ALL)
def test_value_set_equals_ml_dtypes(name):
    f = F.get_format(name)
    codes = np.arange(1 << f.bits, dtype=np.uint8)
    expected = codes.view(getattr(ml_dtypes, name)).astype(np.float64)
    np.testing.assert_array_equal(F.all_values(name), expected)
    np.testing.assert_array_equal(F.decode(codes, name), expected)
    assert F.FORMATS[name].max == float(ml_dtypes.finfo(getattr(ml_dtypes, name)).max)


@pytest.mark.parametrize("name", ALL)
def test_encode_equals_ml_dtypes_on_every_value_midpoint_and_neighbour(name):
    xs = probes(name)
    with np.errstate(all="ignore"):
        expected = xs.astype(getattr(ml_dtypes, name)).view(np.uint8)
    np.testing.assert_array_equal(F.encode(xs, name, saturate=False), expected)
    got = F.round_to_format(xs, name, saturate=False)
    np.testing.assert_array_equal(got, expected.view(getattr(ml_dtypes, name)).astype(np.float64))
    if F.get_format(name).signed:  # the sign of zero is kept (E8M0 has no zero: NaN)
        np.testing.assert_array_equal(np.signbit(got[xs == 0]), np.signbit(xs[xs == 0]))


@pytest.mark.parametrize("name", ELEMENTS)
def test_saturate_clamps_overflow_and_infinity(name):
    top = F.FORMATS[name].max
    x = np.array([np.inf, -np.inf, 10 * top, -10 * top, top, np.nextafter(top, np.inf)])
    np.testing.assert_array_equal(F.round_to_format(x, name), [top, -top, top, -top, top, top])


def test_overflow_rules_of_each_format():
    assert np.isinf(F.round_to_format([1e5], "float8_e5m2", saturate=False)[0])
    assert np.isnan(F.round_to_format([465.0], "float8_e4m3fn", saturate=False)[0])
    assert F.round_to_format([464.0], "float8_e4m3fn", saturate=False)[0] == 448  # tie: even
    assert F.round_to_format([100.0], "float4_e2m1fn", saturate=False)[0] == 6


def test_nan_in_a_format_without_nan_is_rejected():
    with pytest.raises(ValueError, match="cannot represent"):
        F.encode([np.nan], "float4_e2m1fn")
    assert np.isnan(F.round_to_format([np.nan], "float8_e4m3fn")[0])


def test_subnormals_and_ties_to_even_by_hand():
    # E4M3: subnormals are k * 2**-9; 1.5 * 2**-9 is a tie between codes 1 and 2 -> 2 (even)
    assert F.round_to_format([1.5 * 2**-9], "e4m3")[0] == 2 * 2**-9
    assert F.round_to_format([0.5 * 2**-9], "e4m3")[0] == 0.0  # tie with 0 -> 0
    # E2M1: 0.25 -> 0, 0.75 -> 1, 2.5 -> 2, 3.5 -> 4, 5 -> 4
    got = F.round_to_format([0.25, 0.75, 2.5, 3.5, 5.0], "e2m1")
    np.testing.assert_array_equal(got, [0.0, 1.0, 2.0, 4.0, 4.0])


def _onnx_cast(x, type_name, saturate):
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    t = getattr(TensorProto, type_name)
    node = helper.make_node("Cast", ["x"], ["y"], to=t, saturate=int(saturate))
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", t, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0].astype(np.float64)


@pytest.mark.parametrize(
    ("name", "onnx_type"),
    [
        ("float8_e4m3fn", "FLOAT8E4M3FN"),
        ("float8_e5m2", "FLOAT8E5M2"),
        ("float4_e2m1fn", "FLOAT4E2M1"),
    ],
)
@pytest.mark.parametrize("saturate", [True, False])
def test_round_equals_onnx_cast(name, onnx_type, saturate):
    pytest.importorskip("onnx")
    xs = probes(name)
    xs = xs[np.abs(xs) < 3e38].astype(np.float32)  # what a float32 input can hold
    xs = xs[~np.isnan(xs)]
    got = F.round_to_format(xs, name, saturate=saturate)
    np.testing.assert_array_equal(got, _onnx_cast(xs, onnx_type, saturate))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ELEMENTS),
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20),
)
def test_error_at_most_half_a_level_inside_the_range(name, values):
    x = np.array(values)
    top = F.FORMATS[name].max
    x = x[np.abs(x) <= top]
    if x.size == 0:
        return
    got = F.round_to_format(x, name)
    fin = F.finite_values(name)
    k = np.clip(np.searchsorted(fin, x), 1, fin.size - 1)
    gap = fin[k] - fin[k - 1]
    assert np.all(np.abs(got - x) <= gap / 2)
    # the nearest: no representable value is closer
    assert np.all(np.abs(got - x) <= np.abs(fin[None, :] - x[:, None]).min(axis=1))
    # a round trip through the bits is the identity on the values
    np.testing.assert_array_equal(F.decode(F.encode(got, name), name), got)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ELEMENTS), st.floats(0.0, 1.0))
def test_relative_error_bounded_on_the_normal_range(name, u):
    f = F.FORMATS[name]
    x = f.smallest_normal * (f.max / f.smallest_normal) ** u
    got = F.round_to_format([x], name)[0]
    assert abs(got - x) <= x * F.relative_spacing(name) / 2 * (1 + 1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="fmt"):
        F.round_to_format([1.0], "float7")
    with pytest.raises(TypeError, match="x"):
        F.encode(["a"], "e4m3")
    with pytest.raises(ValueError, match="empty"):
        F.encode([], "e4m3")
    with pytest.raises(ValueError, match="bits"):
        F.decode([16], "e2m1")
    with pytest.raises(TypeError, match="saturate"):
        F.encode([1.0], "e4m3", saturate="yes")
    with pytest.raises(TypeError, match="masked"):
        F.encode(np.ma.array([1.0, 2.0], mask=[True, False]), "e4m3")


def test_inputs_not_modified():
    x = np.array([1.3, -700.0, np.nan])
    before = x.copy()
    F.round_to_format(x, "e4m3")
    np.testing.assert_array_equal(x, before)


# -- NF4 ----------------------------------------------------------------------------------------
#: bitsandbytes' published NF4 table (bitsandbytes/functional.py, get_4bit_type("nf4"); the same
#: numbers appear in the QLoRA paper's appendix), written out as the oracle.
BNB_NF4 = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
]


def test_nf4_values_equal_bitsandbytes_table_in_float32():
    v = F.nf4_values()
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, np.array(BNB_NF4, dtype=np.float32))


def _nf4_reference(x, block_size):
    """bitsandbytes' rule written independently: a Python loop, nearest level, lower on a tie."""
    levels = np.array(BNB_NF4, dtype=np.float32).astype(np.float64)
    flat = np.asarray(x, dtype=np.float64).ravel()
    codes, absmax = [], []
    for start in range(0, flat.size, block_size):
        block = flat[start : start + block_size]
        m = float(np.max(np.abs(block)))
        absmax.append(m)
        for v in block:
            n = v / m if m > 0 else 0.0
            dist = [abs(n - lv) for lv in levels]
            codes.append(min(range(16), key=lambda i: (dist[i], i)))  # ties: the lower code
    return np.array(codes).reshape(np.shape(x)), np.array(absmax)


def test_quantize_nf4_against_independent_rule_with_ties_and_zero_blocks():
    rng = np.random.default_rng(1)
    levels = np.array(BNB_NF4, dtype=np.float32).astype(np.float64)
    mids = (levels[:-1] + levels[1:]) / 2
    x = rng.standard_normal(64 * 5 + 17)
    x[:15] = mids  # exact midpoints (absmax 1 from x[15])
    x[15] = 1.0
    x[16:64] = np.clip(x[16:64], -1, 1)
    x[64:128] = 0.0  # a zero block
    x[128:143] = 3 * mids  # midpoints of a block with absmax 3
    x[143] = -3.0
    x[144:192] = np.clip(x[144:192], -3, 3)
    codes, absmax = F.quantize_nf4(x)
    ref_codes, ref_absmax = _nf4_reference(x, 64)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(absmax, ref_absmax)
    np.testing.assert_array_equal(codes[:15], np.arange(15))  # every tie went down
    np.testing.assert_array_equal(codes[64:128], 7)
    x_hat = F.dequantize_nf4(codes, absmax)
    np.testing.assert_array_equal(x_hat[64:128], 0.0)
    assert x_hat.shape == x.shape


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=200))
def test_nf4_round_trip_error_at_most_half_a_gap(values):
    x = np.array(values)
    codes, absmax = F.quantize_nf4(x, block_size=16)
    x_hat = F.dequantize_nf4(codes, absmax, block_size=16)
    scale = np.repeat(absmax, 16)[: x.size]
    gaps = np.diff(F.nf4_values().astype(np.float64)).max()
    assert np.all(np.abs(x - x_hat) <= scale * gaps / 2 + 1e-12 * scale)
    codes2, _ = F.quantize_nf4(x_hat, block_size=16)
    np.testing.assert_array_equal(codes2, codes)  # decoded values re-encode to the same codes


def test_nf4_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        F.quantize_nf4([np.nan])
    with pytest.raises(ValueError, match="block_size"):
        F.quantize_nf4([1.0], block_size=0)
    with pytest.raises(ValueError, match="codes"):
        F.dequantize_nf4([16], [1.0])
    with pytest.raises(ValueError, match="absmax"):
        F.dequantize_nf4([1, 2], [1.0, 2.0])


ONNX_CASES = {
    "test_quantizelinear_e4m3fn": "float8_e4m3fn",
    "test_quantizelinear_e5m2": "float8_e5m2",
    "test_quantizelinear_float4e2m1": "float4_e2m1fn",
}


@functools.cache
def onnx_backend_cases() -> dict:
    """ONNX's QuantizeLinear backend test cases by name (collecting them all takes seconds)."""
    from onnx.backend.test.case.node import collect_testcases

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c for c in collect_testcases() if "quantizelinear" in c.name}


def _array(value):
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)


@pytest.mark.parametrize("case_name", list(ONNX_CASES))
def test_round_equals_onnx_quantizelinear_backend_cases(case_name):
    """ONNX's own float8/float4 QuantizeLinear test data: y = saturate(round(x / scale))."""
    pytest.importorskip("onnx")
    inputs, (y,) = onnx_backend_cases()[case_name].data_sets[0]
    x, scale, zero_point = (_array(v) for v in inputs)
    assert np.all(zero_point.astype(np.float64) == 0)
    scale = scale.astype(np.float32)
    if scale.ndim == 1:  # per axis 0
        scale = scale.reshape(-1, *[1] * (x.ndim - 1))
    got = F.round_to_format(x.astype(np.float32) / scale, ONNX_CASES[case_name])
    expected = _array(y).astype(np.float64)
    # (values compared: the float4 case stores +0 for x = -0, where ONNX's Cast and ml_dtypes
    # give -0; the signs of zeros are checked against them above)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ALL)
def test_encode_equals_ml_dtypes_on_random_float32_over_the_whole_range(name):
    """Random float32 patterns (every exponent, both signs, subnormals) and scalars: the binade
    rounding against ml_dtypes' cast, chunk boundaries included."""
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, 3 * F.ENCODE_CHUNK + 5, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    if F.get_format(name).signed is False:
        x = np.abs(x)
    dt = getattr(ml_dtypes, name)
    with np.errstate(all="ignore"):
        expected = x.astype(dt).view(np.uint8)
    np.testing.assert_array_equal(F.encode(x, name, saturate=False), expected)
    for v in (0.0, -0.0, 1.0, -3.25, 1e-30):
        if F.get_format(name).signed or v > 0:
            with np.errstate(all="ignore"):
                want = np.float64(v).astype(dt).view(np.uint8)
            assert F.encode(v, name, saturate=False) == want
            assert F.encode(v, name, saturate=False).shape == ()
