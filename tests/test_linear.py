"""quantize_linear / dequantize_linear against ONNX: its backend cases and its reference evaluator.

Oracles: the 33 QuantizeLinear/DequantizeLinear/DynamicQuantizeLinear node cases of the onnx
package, rebuilt offline with ``collect_testcases`` (their expected outputs were computed by
onnx), and ``onnx.reference.ReferenceEvaluator`` on random inputs built here.
"""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import quantlab as ql

INTEGER_TYPES = {
    TensorProto.UINT8: "uint8",
    TensorProto.INT8: "int8",
    TensorProto.UINT16: "uint16",
    TensorProto.INT16: "int16",
    TensorProto.UINT4: "uint4",
    TensorProto.INT4: "int4",
    TensorProto.UINT2: "uint2",
    TensorProto.INT2: "int2",
}
OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


def _array(value) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)


def _ints(value) -> np.ndarray:
    """An integer tensor (ml_dtypes int4/int2 included) as int64."""
    return _array(value).astype(np.int64)


@pytest.fixture(scope="module")
def onnx_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    wanted = ("test_quantizelinear", "test_dequantizelinear", "test_dynamicquantizelinear")
    return [c for c in cases if c.name.startswith(wanted)]


def _elem_types(case) -> list[int]:
    g = case.model.graph
    return [v.type.tensor_type.elem_type for v in (*g.input, *g.output)]


def _is_integer_case(case) -> bool:
    return all(t in INTEGER_TYPES or t == TensorProto.FLOAT for t in _elem_types(case))


def _run_case(case) -> None:
    """Run one ONNX backend case through quantlab and compare with its expected outputs."""
    g = case.model.graph
    node = g.node[-1] if "expanded" not in case.name else None
    op = next(o for o in OPS if case.name.startswith(f"test_{o.lower()}"))
    attrs = {} if node is None else {a.name: helper.get_attribute_value(a) for a in node.attribute}
    (inputs, outputs), *_ = case.data_sets
    kw = {}
    if attrs.get("block_size"):
        kw["block_size"] = attrs["block_size"]
    if op == "QuantizeLinear":
        x, scale = np.asarray(inputs[0]), np.asarray(inputs[1])
        out_type = g.output[0].type.tensor_type.elem_type
        zp = _ints(inputs[2]) if len(inputs) > 2 else 0
        if scale.size > 1:
            kw["axis"] = attrs.get("axis", 1)
        got = ql.quantize_linear(x, scale, zp, dtype=INTEGER_TYPES[out_type], **kw)
        np.testing.assert_array_equal(got.astype(np.int64), _ints(outputs[0]), err_msg=case.name)
    elif op == "DequantizeLinear":
        in_type = g.input[0].type.tensor_type.elem_type
        q, scale = _ints(inputs[0]), np.asarray(inputs[1])
        zp = _ints(inputs[2]) if len(inputs) > 2 else 0
        if scale.size > 1:
            kw["axis"] = attrs.get("axis", 1)
        got = ql.dequantize_linear(q, scale, zp, dtype=INTEGER_TYPES[in_type], **kw)
        expected = _array(outputs[0])
        assert got.dtype == expected.dtype, case.name
        np.testing.assert_array_equal(got, expected, err_msg=case.name)
    else:  # DynamicQuantizeLinear = asymmetric_quantization with the range widened to contain 0
        x = np.asarray(inputs[0])
        y, y_scale, y_zp = (_array(o) for o in outputs)
        q, S, Z = ql.asymmetric_quantization(x, n_bits=8)
        np.testing.assert_allclose(S, y_scale, rtol=1e-6, err_msg=case.name)  # float32 vs 64
        assert int(Z) == int(y_zp), case.name
        # quantlab computes in float64, ONNX in float32: codes agree except at exact ties of
        # x/S (test_dynamicquantizelinear: -2.5 / (5/255) = -127.5 is -127.49999 in float32).
        ratio = x.astype(np.float64) / float(S)
        near_tie = np.abs(np.abs(ratio - np.trunc(ratio)) - 0.5) < 1e-5
        differ = q != y.astype(np.int64)
        assert not np.any(differ & ~near_tie), case.name
        assert np.all(np.abs(q - y.astype(np.int64)) <= 1), case.name
        # With ONNX's own float32 scale, quantize_linear gives its codes bit for bit.
        got = ql.quantize_linear(x, y_scale, y_zp, dtype="uint8")
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, y, err_msg=case.name)


#: The integer cases of onnx 1.23 (10 QuantizeLinear, 9 DequantizeLinear, 6 DynamicQuantizeLinear,
#: 3 of them "expanded" into basic ops); its other 8 cases are float8/float4.
INTEGER_CASES = {
    *(f"test_quantizelinear{s}" for s in ("", "_axis", "_blocked_asymmetric")),
    "test_quantizelinear_blocked_symmetric",
    *(f"test_dequantizelinear{s}" for s in ("", "_axis", "_blocked")),
    *(f"test_{op}_{t}" for op in ("quantizelinear", "dequantizelinear")
      for t in ("uint16", "int16", "uint4", "int4", "uint2", "int2")),
    *(f"test_dynamicquantizelinear{s}{e}" for s in ("", "_max_adjusted", "_min_adjusted")
      for e in ("", "_expanded")),
}  # fmt: skip


def test_onnx_backend_integer_cases(onnx_cases):
    names = {c.name for c in onnx_cases}
    assert len(names) >= 33, sorted(names)  # 33 in onnx 1.23
    integer = [c for c in onnx_cases if _is_integer_case(c)]
    assert len(INTEGER_CASES) == 25
    assert INTEGER_CASES <= {c.name for c in integer}, sorted(INTEGER_CASES - names)
    for case in integer:  # every integer case, also any a newer onnx adds
        _run_case(case)


# -- random cases against the reference evaluator -------------------------------------------------
ZP_DTYPES = {
    "uint8": np.uint8,
    "int8": np.int8,
    "uint16": np.uint16,
    "int16": np.int16,
    "uint4": ml_dtypes.uint4,
    "int4": ml_dtypes.int4,
    "uint2": ml_dtypes.uint2,
    "int2": ml_dtypes.int2,
}


def _model(op: str, in_type: int, zp_type: int, out_type: int, **attrs):
    inputs = [
        helper.make_tensor_value_info("x", in_type, None),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("zp", zp_type, None),
    ]
    node = helper.make_node(op, ["x", "s", "zp"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", out_type, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    return ReferenceEvaluator(model)


def onnx_quantize(x, scale, zp, dtype, axis=1, block_size=0):
    zp = np.asarray(zp).astype(ZP_DTYPES[dtype])
    t = helper.np_dtype_to_tensor_dtype(zp.dtype)
    attrs = {"axis": axis} | ({"block_size": block_size} if block_size else {})
    ref = _model("QuantizeLinear", TensorProto.FLOAT, t, t, **attrs)
    return ref.run(None, {"x": x, "s": scale, "zp": zp})[0].astype(np.int64)


def onnx_dequantize(q, scale, zp, dtype, axis=1, block_size=0):
    zp = np.asarray(zp).astype(ZP_DTYPES[dtype])
    t = helper.np_dtype_to_tensor_dtype(zp.dtype)
    attrs = {"axis": axis} | ({"block_size": block_size} if block_size else {})
    ref = _model("DequantizeLinear", t, t, TensorProto.FLOAT, **attrs)
    return ref.run(None, {"x": q.astype(zp.dtype), "s": scale, "zp": zp})[0]


def _range(dtype: str) -> tuple[int, int]:
    qt = ql.QUANT_TYPES[dtype]
    return int(qt.lo), int(qt.hi)


@pytest.mark.parametrize("dtype", list(ZP_DTYPES))
def test_per_tensor_ties_and_saturation_match_onnx(dtype):
    rng = np.random.default_rng(len(dtype))
    lo, hi = _range(dtype)
    scale = np.float32(0.25)
    # Exact ties k + 1/2 (scale a power of 2), values far beyond the range, and random values.
    ties = (np.arange(-6, 6) + 0.5) * scale
    far = np.array([-1e6, 1e6, (lo - 3) * 0.25, (hi + 3) * 0.25])
    x = np.concatenate([ties, far, rng.normal(scale=hi * 0.2 + 1, size=40)]).astype(np.float32)
    for zp in {lo, hi, (lo + hi) // 2, (lo + hi) // 2 + 1}:
        got = ql.quantize_linear(x, scale, zp, dtype=dtype)
        assert got.dtype == ql.QUANT_TYPES[dtype].storage
        expected = onnx_quantize(x, scale, zp, dtype)
        np.testing.assert_array_equal(got.astype(np.int64), expected)
        assert got.min() >= lo and got.max() <= hi
        x_hat = ql.dequantize_linear(got, scale, zp, dtype=dtype)
        np.testing.assert_array_equal(x_hat, onnx_dequantize(expected, scale, zp, dtype))
    # Ties go to the even integer before the zero-point is added: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2.
    if hi - lo >= 15:
        q = ql.quantize_linear(np.float32([0.5, 1.5, -2.5]) * scale, scale, lo + 4, dtype=dtype)
        assert (q.astype(int) - (lo + 4)).tolist() == [0, 2, -2]


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int4", "uint16"])
def test_per_axis_matches_onnx(axis, dtype):
    rng = np.random.default_rng(axis + 7)
    x = rng.normal(size=(3, 4, 5)).astype(np.float32) * 4
    n = x.shape[axis]
    lo, hi = _range(dtype)
    scale = rng.uniform(0.01, 0.5, n).astype(np.float32)
    zp = rng.integers(lo, hi + 1, n)
    got = ql.quantize_linear(x, scale, zp, dtype=dtype, axis=axis)
    expected = onnx_quantize(x, scale, zp, dtype, axis=axis)
    np.testing.assert_array_equal(got.astype(np.int64), expected)
    np.testing.assert_array_equal(
        ql.dequantize_linear(got, scale, zp, axis=axis, dtype=dtype),
        onnx_dequantize(expected, scale, zp, dtype, axis=axis),
    )
    # A scalar-like (1-element) zero point with per-axis scales.
    z1 = np.array([zp[0]])
    got1 = ql.quantize_linear(x, scale, z1, dtype=dtype, axis=axis)
    np.testing.assert_array_equal(
        got1.astype(np.int64), onnx_quantize(x, scale, np.full(n, zp[0]), dtype, axis=axis)
    )


@pytest.mark.parametrize(
    ("shape", "axis", "block"),
    [((4, 6), 1, 2), ((4, 6), 1, 4), ((4, 6), 0, 3), ((2, 7, 3), 1, 3), ((2, 7, 3), -2, 2)],
)
@pytest.mark.parametrize("dtype", ["uint8", "int4", "int16", "uint2"])
def test_blocked_matches_onnx(shape, axis, block, dtype):
    rng = np.random.default_rng(block * 10 + len(shape))
    x = rng.normal(size=shape).astype(np.float32) * 3
    ax = axis % len(shape)
    n_blocks = -(-shape[ax] // block)  # the last block may be shorter (7 = 3 + 3 + 1)
    pshape = tuple(n_blocks if k == ax else n for k, n in enumerate(shape))
    lo, hi = _range(dtype)
    scale = rng.uniform(0.05, 0.6, pshape).astype(np.float32)
    zp = rng.integers(lo, hi + 1, pshape)
    got = ql.quantize_linear(x, scale, zp, dtype=dtype, axis=axis, block_size=block)
    expected = onnx_quantize(x, scale, zp, dtype, axis=axis, block_size=block)
    np.testing.assert_array_equal(got.astype(np.int64), expected)
    np.testing.assert_array_equal(
        ql.dequantize_linear(got, scale, zp, axis=axis, block_size=block, dtype=dtype),
        onnx_dequantize(expected, scale, zp, dtype, axis=axis, block_size=block),
    )


def test_saturation_beyond_int32_does_not_wrap():
    # ONNX's reference casts to int32 before clipping (it wraps there); quantlab clips first.
    q = ql.quantize_linear([1e30, -1e30, 3e9, -3e9], 1e-3, 3, dtype="int8")
    assert q.tolist() == [127, -128, 127, -128]
    q = ql.quantize_linear([1e300], 1e-300, dtype="uint16")  # the quotient overflows to inf
    assert q.tolist() == [65535]


def test_division_follows_the_input_precision():
    # Values whose float32 quotient rounds to another integer than their float64 quotient.
    x32 = (np.arange(1, 200_001, dtype=np.float32) + np.float32(0.5)) * np.float32(0.1)
    s32 = np.float32(0.1)
    q32 = np.rint(x32 / s32)
    q64 = np.rint(x32.astype(np.float64) / np.float64(s32))
    differ = q32 != q64
    assert differ.any()  # the two precisions really disagree somewhere
    xs = x32[differ][:50]
    got32 = ql.quantize_linear(xs, s32, dtype="uint16")  # float32 / float32: as ONNX
    np.testing.assert_array_equal(got32, np.clip(q32[differ][:50], 0, 65535))
    np.testing.assert_array_equal(got32.astype(np.int64), onnx_quantize(xs, s32, 0, "uint16"))
    got64 = ql.quantize_linear(xs.astype(np.float64), float(s32), dtype="uint16")
    np.testing.assert_array_equal(got64, np.clip(q64[differ][:50], 0, 65535))


def test_dequantize_returns_scale_dtype_and_exact_difference():
    q = np.array([0, 255], np.uint8)
    assert ql.dequantize_linear(q, np.float32(0.5), 128).dtype == np.float32
    assert ql.dequantize_linear(q, 0.5, 128).dtype == np.float64
    np.testing.assert_array_equal(ql.dequantize_linear(q, 0.5, 128), [-64.0, 63.5])


def test_quantize_linear_equals_asymmetric_quantization():
    """With the scale and zero-point of asymmetric_quantization, the codes agree (same order)."""
    x = ql.PARAMS
    q, S, Z = ql.asymmetric_quantization(x, n_bits=8)
    np.testing.assert_array_equal(ql.quantize_linear(x, S, Z), q)
    np.testing.assert_array_equal(
        ql.dequantize_linear(ql.quantize_linear(x, S, Z), S, Z),
        ql.asymmetric_dequantization(q, S, Z),
    )
    q4, S4, Z4 = ql.asymmetric_quantization(x, n_bits=4)
    np.testing.assert_array_equal(ql.quantize_linear(x, S4, Z4, dtype="uint4"), q4)


def test_onnx_and_pytorch_rounding_differ_at_ties_with_odd_zero_point():
    # ONNX (and quantlab): round(x/S) + Z; PyTorch: round(x/S + Z). x/S = 0.5, Z = 1.
    assert ql.quantize_linear([0.5], 1.0, 1).tolist() == [1]  # round(0.5) = 0, + 1
    assert np.rint(0.5 + 1) == 2  # what PyTorch computes


def test_a_registered_float_type_runs_the_onnx_float8_case(onnx_cases, monkeypatch):
    """The type table is the extension point: a float8 entry reproduces ONNX's e4m3fn case."""
    f8 = ml_dtypes.float8_e4m3fn

    def encode(v, zero_point):
        return np.clip(v.astype(np.float64), -448, 448).astype(f8).view(np.uint8)

    def decode(codes):
        return codes.view(f8).astype(np.float64)

    qt = ql.linear.QuantType(
        "float8_e4m3fn", np.dtype(np.uint8), -448.0, 448.0, False, encode, decode
    )
    monkeypatch.setitem(ql.QUANT_TYPES, qt.name, qt)
    case = next(c for c in onnx_cases if c.name == "test_quantizelinear_e4m3fn")
    (inputs, outputs), *_ = case.data_sets
    got = ql.quantize_linear(inputs[0], inputs[1], 0, dtype="float8_e4m3fn")
    expected = _array(outputs[0]).astype(f8).view(np.uint8)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        ql.dequantize_linear(got, inputs[1], dtype="float8_e4m3fn"),
        expected.view(f8).astype(np.float32) * inputs[1],
    )
    with pytest.raises(ValueError, match="zero_point must be 0"):
        ql.quantize_linear(inputs[0], inputs[1], 1, dtype="float8_e4m3fn")


# -- bad input -----------------------------------------------------------------------------------
BAD = {
    "dtype": (lambda: ql.quantize_linear([1.0], 1.0, dtype="uint3"), ValueError, "dtype"),
    "x nan": (lambda: ql.quantize_linear([np.nan], 1.0), ValueError, "x"),
    "x str": (lambda: ql.quantize_linear(["a"], 1.0), TypeError, "x"),
    "x empty": (lambda: ql.quantize_linear([], 1.0), ValueError, "x"),
    "x masked": (
        lambda: ql.quantize_linear(np.ma.array([1.0, 2.0], mask=[0, 1]), 1.0),
        TypeError,
        "x is a masked array",
    ),
    "scale 0": (lambda: ql.quantize_linear([1.0], 0.0), ValueError, "scale"),
    "scale inf": (lambda: ql.quantize_linear([1.0], np.inf), ValueError, "scale"),
    "zp out of range": (lambda: ql.quantize_linear([1.0], 1.0, 300), ValueError, "zero_point"),
    "zp int4 range": (
        lambda: ql.quantize_linear([1.0], 1.0, 8, dtype="int4"),
        ValueError,
        "zero_point",
    ),
    "zp not integer": (lambda: ql.quantize_linear([1.0], 1.0, 1.5), ValueError, "zero_point"),
    "zp dtype mismatch": (
        lambda: ql.quantize_linear([1.0], 1.0, np.int8(3)),
        ValueError,
        "zero_point has dtype int8",
    ),
    "zp shape": (
        lambda: ql.quantize_linear(np.ones((2, 3)), [1.0, 2.0], [1, 2, 3], axis=0),
        ValueError,
        "zero_point",
    ),
    "axis missing": (
        lambda: ql.quantize_linear(np.ones((2, 3)), [1.0, 2.0]),
        ValueError,
        "axis is missing",
    ),
    "axis float": (
        lambda: ql.quantize_linear(np.ones((2, 3)), [1.0, 2.0], axis=0.0),
        TypeError,
        "axis",
    ),
    "axis range": (
        lambda: ql.quantize_linear(np.ones((2, 3)), [1.0, 2.0], axis=2),
        ValueError,
        "axis",
    ),
    "scale length": (
        lambda: ql.quantize_linear(np.ones((2, 3)), [1.0, 2.0], axis=1),
        ValueError,
        "scale must have 3 values",
    ),
    "block shape": (
        lambda: ql.quantize_linear(np.ones((2, 6)), np.ones((2, 2)), axis=1, block_size=2),
        ValueError,
        "scale must have shape",
    ),
    "block no axis": (
        lambda: ql.quantize_linear(np.ones((2, 6)), np.ones((2, 3)), block_size=2),
        ValueError,
        "block_size needs axis",
    ),
    "block_size 0": (
        lambda: ql.quantize_linear(np.ones((2, 6)), np.ones((2, 3)), axis=1, block_size=0),
        ValueError,
        "block_size",
    ),
    "deq code range": (
        lambda: ql.dequantize_linear([16], 1.0, dtype="uint4"),
        ValueError,
        "q holds a code outside",
    ),
    "deq codes float": (lambda: ql.dequantize_linear([1.5], 1.0), ValueError, "q"),
    "deq uint64": (
        lambda: ql.dequantize_linear(np.array([2**64 - 1], np.uint64), 1.0),
        ValueError,
        "q holds codes beyond",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(case):
    call, exc, text = BAD[case]
    with pytest.raises(exc, match=text):
        call()


def test_inputs_not_modified():
    x = np.array([0.1, 0.7, -0.4], np.float32)
    s = np.array([0.1, 0.2, 0.3], np.float32)
    zp = np.array([1, 2, 3], np.uint8)
    copies = [a.copy() for a in (x, s, zp)]
    q = ql.quantize_linear(x, s, zp, axis=0)
    ql.dequantize_linear(q, s, zp, axis=0)
    for a, c in zip((x, s, zp), copies, strict=True):
        np.testing.assert_array_equal(a, c)
