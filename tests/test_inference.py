"""quantlab.inference against its oracles.

- matmul_integer / qlinear_matmul: ONNX's ``onnx.reference.ReferenceEvaluator`` (MatMulInteger,
  QLinearMatMul). The reference subtracts a per-row zero point by plain broadcasting, so the
  per-row case is given to it in ONNX's N-D form (M, 1); quantlab also takes ONNX's 1-D form.
- quantize_multiplier / requantize: an independent implementation written below in plain Python
  integers from the definitions of TFLite's QuantizeMultiplier and gemmlowp's
  SaturatingRoundingDoublingHighMul / RoundingDivideByPOT (C's truncating division, the
  INT32_MIN·INT32_MIN saturation, ties away from zero).
- the integer-only MLP: a float simulation of the same quantized model, within the rounding
  bound derived in ``test_integer_mlp_matches_float_simulation``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from quantlab import inference as inf

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MATMUL_INTEGER = ReferenceEvaluator(
    helper.make_node("MatMulInteger", ["A", "B", "a_zp", "b_zp"], ["Y"])
)
QLINEAR_MATMUL = ReferenceEvaluator(
    helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
)


def codes(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)


# -- MatMulInteger --------------------------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 7, 1), (3, 5, 4), (17, 64, 9), (128, 300, 10), (256, 200, 256)]


@pytest.mark.parametrize("dt_a", [np.uint8, np.int8])
@pytest.mark.parametrize("dt_b", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_integer_per_tensor_matches_onnx(dt_a, dt_b, shape):
    m, k, n = shape
    rng = np.random.default_rng(m * 1000 + k)
    a, b = codes(rng, (m, k), dt_a), codes(rng, (k, n), dt_b)
    za, zb = codes(rng, (), dt_a), codes(rng, (), dt_b)
    a0, b0 = a.copy(), b.copy()
    got = inf.matmul_integer(a, b, za, zb)
    (want,) = MATMUL_INTEGER.run(None, {"A": a, "B": b, "a_zp": za, "b_zp": zb})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a, a0)  # inputs untouched
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 7), (40, 100, 30), (200, 256, 128)])
def test_matmul_integer_per_row_and_column_matches_onnx(dt, shape):
    m, k, n = shape
    rng = np.random.default_rng(k)
    a, b = codes(rng, (m, k), dt), codes(rng, (k, n), dt)
    za, zb = codes(rng, (m,), dt), codes(rng, (n,), dt)
    (want,) = MATMUL_INTEGER.run(None, {"A": a, "B": b, "a_zp": za[:, None], "b_zp": zb})
    np.testing.assert_array_equal(inf.matmul_integer(a, b, za, zb), want)
    np.testing.assert_array_equal(inf.matmul_integer(a, b, za[:, None], zb[None, :]), want)
    # brute force, one accumulator at a time in Python integers
    i, j = m - 1, n // 2
    exact = sum((int(a[i, t]) - int(za[i])) * (int(b[t, j]) - int(zb[j])) for t in range(k))
    assert inf.matmul_integer(a, b, za, zb)[i, j] == exact


def test_matmul_integer_extreme_codes_and_batches():
    # every product at its extreme: (0 - 255)(255 - 0) = -65025 for uint8, (-128 - 127)^2 for int8
    k = 1000
    a = np.zeros((2, k), np.uint8)
    b = np.full((k, 3), 255, np.uint8)
    got = inf.matmul_integer(a, b, np.uint8(255), np.uint8(0))
    assert np.all(got == -65025 * k)
    a8 = np.full((1, k), -128, np.int8)
    b8 = np.full((k, 1), 127, np.int8)
    (want,) = MATMUL_INTEGER.run(
        None, {"A": a8, "B": b8, "a_zp": np.int8(127), "b_zp": np.int8(-128)}
    )
    np.testing.assert_array_equal(inf.matmul_integer(a8, b8, np.int8(127), np.int8(-128)), want)
    rng = np.random.default_rng(3)
    A, B = codes(rng, (4, 6, 9), np.uint8), codes(rng, (9, 5), np.int8)
    (want,) = MATMUL_INTEGER.run(None, {"A": A, "B": B, "a_zp": np.uint8(9), "b_zp": np.int8(-3)})
    np.testing.assert_array_equal(inf.matmul_integer(A, B, np.uint8(9), np.int8(-3)), want)


def test_matmul_integer_overflow_is_reported_at_the_bound():
    k = 2**31 // 65025  # 33025: the largest K whose worst case fits in int32
    assert inf.accumulator_bound(k) <= INT32_MAX < inf.accumulator_bound(k + 1)
    a = np.full((1, k), 255, np.uint8)
    assert int(inf.matmul_integer(a, a.T)[0, 0]) == 65025 * k
    a1 = np.full((1, k + 1), 255, np.uint8)
    with pytest.raises(OverflowError, match="int32 accumulator overflows"):
        inf.matmul_integer(a1, a1.T)
    # the wrap it prevents: int32 arithmetic (the ONNX reference) silently goes negative
    (wrapped,) = MATMUL_INTEGER.run(
        None, {"A": a1, "B": a1.T.copy(), "a_zp": np.uint8(0), "b_zp": np.uint8(0)}
    )
    assert wrapped[0, 0] < 0


def test_matmul_integer_bad_input():
    a = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="inner dimensions"):
        inf.matmul_integer(a, np.zeros((4, 2), np.uint8))
    with pytest.raises(ValueError, match="a must hold 8-bit codes"):
        inf.matmul_integer([[300, 0, 0]], np.zeros((3, 1), np.uint8))
    with pytest.raises(TypeError, match="a_zero_point must have the type"):
        inf.matmul_integer(a, np.zeros((3, 1), np.uint8), np.int8(1))
    with pytest.raises(ValueError, match="a_zero_point must be a scalar or have one value per row"):
        inf.matmul_integer(a, np.zeros((3, 1), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="b_zero_point"):
        inf.matmul_integer(a, np.zeros((3, 2), np.uint8), 0, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="a must hold integers"):
        inf.matmul_integer([[0.5, 1, 2]], np.zeros((3, 1), np.uint8))
    with pytest.raises(ValueError, match="a is empty"):
        inf.matmul_integer(np.zeros((0, 3), np.uint8), np.zeros((3, 1), np.uint8))


# -- QLinearMatMul --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dt_a,dt_b,dt_y",
    [
        (np.uint8, np.uint8, np.uint8),
        (np.int8, np.int8, np.int8),
        (np.uint8, np.int8, np.int8),
        (np.int8, np.uint8, np.uint8),
    ],
)
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 9, 3), (64, 128, 10), (300, 100, 200)])
def test_qlinear_matmul_matches_onnx(dt_a, dt_b, dt_y, shape):
    m, k, n = shape
    rng = np.random.default_rng(m + n)
    a, b = codes(rng, (m, k), dt_a), codes(rng, (k, n), dt_b)
    sa, sb = np.float32(rng.uniform(0.001, 0.1)), np.float32(rng.uniform(0.001, 0.1))
    za, zb, zy = codes(rng, (), dt_a), codes(rng, (), dt_b), codes(rng, (), dt_y)
    # y_scale chosen so that part of the outputs saturates at both ends
    acc = inf.matmul_integer(a, b, za, zb).astype(np.float64)
    sy = np.float32(np.abs(acc).max() * sa * sb / 200 + 1e-6)
    feeds = dict(a=a, sa=sa, za=za, b=b, sb=sb, zb=zb, sy=sy, zy=zy)
    (want,) = QLINEAR_MATMUL.run(None, feeds)
    got = inf.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    if m * n > 100:
        info = np.iinfo(dt_y)
        assert np.any((got == info.min) | (got == info.max))  # saturation exercised


@pytest.mark.parametrize("dt_y", [np.uint8, np.int8])
def test_qlinear_matmul_saturates_at_both_ends(dt_y):
    rng = np.random.default_rng(9)
    a, b = codes(rng, (50, 80), np.int8), codes(rng, (80, 40), np.int8)
    zy = np.array(128 if dt_y == np.uint8 else 0, dtype=dt_y)
    args = (a, np.float32(0.05), np.int8(0), b, np.float32(0.05), np.int8(0), np.float32(0.5), zy)
    feeds = dict(zip(["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], args, strict=True))
    (want,) = QLINEAR_MATMUL.run(None, feeds)
    got = inf.qlinear_matmul(*args)
    np.testing.assert_array_equal(got, want)
    info = np.iinfo(dt_y)
    assert np.any(got == info.min)
    assert np.any(got == info.max)


def test_qlinear_matmul_per_row_and_column_matches_onnx():
    rng = np.random.default_rng(5)
    m, k, n = 30, 50, 20
    a, b = codes(rng, (m, k), np.uint8), codes(rng, (k, n), np.int8)
    sa = rng.uniform(0.01, 0.02, m).astype(np.float32)
    sb = rng.uniform(0.01, 0.02, n).astype(np.float32)
    za, zb = codes(rng, (m,), np.uint8), codes(rng, (n,), np.int8)
    feeds = dict(
        a=a, sa=sa[:, None], za=za[:, None], b=b, sb=sb, zb=zb, sy=np.float32(2.0), zy=np.int8(-5)
    )
    (want,) = QLINEAR_MATMUL.run(None, feeds)
    got = inf.qlinear_matmul(a, sa, za, b, sb, zb, np.float32(2.0), np.int8(-5))
    np.testing.assert_array_equal(got, want)


def test_qlinear_matmul_bad_input():
    a = np.zeros((2, 3), np.uint8)
    b = np.zeros((3, 2), np.uint8)
    with pytest.raises(ValueError, match="a_scale must be positive"):
        inf.qlinear_matmul(a, -1.0, 0, b, 1.0, 0, 1.0, 0)
    with pytest.raises(ValueError, match="y_scale must be a positive float32"):
        inf.qlinear_matmul(a, 1.0, 0, b, 1.0, 0, 1e-300, 0)
    with pytest.raises(ValueError, match="b_scale"):
        inf.qlinear_matmul(a, 1.0, 0, b, [1.0, 2.0, 3.0], 0, 1.0, 0)


# -- fixed-point requantization: an independent reference in Python integers ----------------------


def ref_quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier, step by step (std::round = half away from zero)."""
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    scaled = q * (1 << 31)
    q_fixed = math.floor(scaled + 0.5)
    assert q_fixed <= 1 << 31
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def c_div(a: int, b: int) -> int:
    """C's integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ref_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def ref_rdbpot(x: int, e: int) -> int:
    """x / 2**e to nearest, ties away from zero, written from its meaning (not the bit trick)."""
    if e == 0:
        return x
    mag = (abs(x) + (1 << (e - 1))) >> e
    return mag if x >= 0 else -mag


def ref_mbqm(x: int, m0: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(x * (1 << left), m0), right)


def test_srdhm_and_rdbpot_edge_cases():
    cases = [
        (INT32_MIN, INT32_MIN),
        (INT32_MIN, INT32_MAX),
        (INT32_MAX, INT32_MAX),
        (-1, 1 << 30),
        (1, 1 << 30),
        (-3, 1 << 30),
        (3, 1 << 30),
        (0, INT32_MIN),
        (INT32_MIN, 1 << 30),
        (12345, -(2**31 - 7)),
    ]
    a, b = np.array(cases).T
    np.testing.assert_array_equal(
        inf.saturating_rounding_doubling_high_mul(a, b),
        [ref_srdhm(int(x), int(y)) for x, y in cases],
    )
    assert int(inf.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX
    xs = np.array([5, -5, 6, -6, 7, -7, 1, -1, 2, -2, 3, -3, INT32_MIN, INT32_MAX, 0])
    for e in (0, 1, 2, 3, 30, 31):
        np.testing.assert_array_equal(
            inf.rounding_divide_by_pot(xs, e), [ref_rdbpot(int(x), e) for x in xs]
        )
    # negative ties go away from zero: -2.5 -> -3, -1.5 -> -2, -0.5 -> -1
    np.testing.assert_array_equal(inf.rounding_divide_by_pot([-5, -3, -1], 1), [-3, -2, -1])


def multipliers(rng):
    m = np.concatenate(
        [
            10.0 ** rng.uniform(-10, 1.3, 300),  # 1e-10 .. 20: below and above 1
            [0.0, 1.0, 0.5, 2.0, 0.75, 1 - 2**-40, 2**-31, 2**-32, 2**-33, 1e-12, 3.0],
            [np.nextafter(1.0, 0.0), 0.1, 1 / 3, 255.0 / 127.0],
        ]
    )
    return m


def test_quantize_multiplier_bit_exact():
    rng = np.random.default_rng(11)
    m = multipliers(rng)
    m0, shift = inf.quantize_multiplier(m)
    want = [ref_quantize_multiplier(float(v)) for v in m]
    np.testing.assert_array_equal(m0, [w[0] for w in want])
    np.testing.assert_array_equal(shift, [w[1] for w in want])
    nz = m0 != 0
    assert np.all((m0[nz] >= 2**30) & (m0[nz] < 2**31))
    # M0·2**(shift - 31) approximates m to a relative 2**-31
    approx = m0[nz] * np.exp2(shift[nz] - 31.0)
    assert np.all(np.abs(approx / m[nz] - 1) <= 2.0**-31 * 1.0000001)
    # (1 - 2**-40)·2**31 rounds up to 2**31: halved, shift incremented
    m0_1, sh_1 = inf.quantize_multiplier(1 - 2**-40)
    assert (int(m0_1), int(sh_1)) == (2**30, 1)


def accumulators(rng, n=4000):
    return np.concatenate(
        [
            rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True),
            rng.integers(-(2**16), 2**16, n),
            [INT32_MIN, INT32_MAX, 0, 1, -1, INT32_MIN + 1, 2**30, -(2**30)],
        ]
    )


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32"])
def test_requantize_bit_exact_over_the_int32_range(dtype):
    rng = np.random.default_rng(len(dtype))
    acc = accumulators(rng)
    lo, hi = inf.CODE_DTYPES[dtype]
    for m in (1e-9, 3.7e-5, 0.0123, 0.5, 0.999, 1.0, 1.7, 9.25, 2**-31, 2**-33):
        m0, shift = (int(v) for v in inf.quantize_multiplier(m))
        zp = int(rng.integers(lo, hi, endpoint=True)) if dtype != "int32" else 17
        left = max(shift, 0)
        ok = (acc * 2**left >= INT32_MIN) & (acc * 2**left <= INT32_MAX)
        a = acc[ok]  # above 1 only the accumulators whose left shift fits in int32
        got = inf.requantize(a, m0, shift, zp, dtype=dtype)
        want = [min(max(ref_mbqm(int(x), m0, shift) + zp, lo), hi) for x in a]
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_requantize_ties_and_negative_values():
    # M = 0.5 is M0 = 2**30, shift = 0: SRDHM alone rounds, and its nudge sends ties up (toward
    # +inf): -2.5 -> -2, 2.5 -> 3
    m0, shift = inf.quantize_multiplier(0.5)
    assert (int(m0), int(shift)) == (2**30, 0)
    got = inf.requantize([-5, -3, -1, 1, 3, 5], m0, shift, dtype="int32")
    np.testing.assert_array_equal(got, [-2, -1, 0, 1, 2, 3])
    # M = 0.25 is M0 = 2**30, shift = -1: the rounding right shift decides, ties away from zero
    m0, shift = inf.quantize_multiplier(0.25)
    assert (int(m0), int(shift)) == (2**30, -1)
    got = inf.requantize([-6, -2, 2, 6], m0, shift, dtype="int32")
    np.testing.assert_array_equal(got, [-2, -1, 1, 2])


def test_requantize_per_channel_broadcast_and_raw_multipliers():
    rng = np.random.default_rng(2)
    acc = rng.integers(-(2**20), 2**20, (50, 4))
    m = np.array([1e-4, 3e-3, 0.2, 1.5])
    m0, shift = inf.quantize_multiplier(m)
    got = inf.requantize(acc, m0, shift, 0, dtype="int16")
    want = [
        [
            min(max(ref_mbqm(int(acc[i, j]), int(m0[j]), int(shift[j])), -32768), 32767)
            for j in range(4)
        ]
        for i in range(50)
    ]
    np.testing.assert_array_equal(got, want)
    # any int32 multiplier, negative and INT32_MIN included (SRDHM's saturation reaches the output)
    raw = np.array([INT32_MIN, -12345678, 2**30 + 3])
    xs = np.array([INT32_MIN, 99999, -77])
    got = inf.multiply_by_quantized_multiplier(xs[:, None], raw[None, :], 0)
    want = [[ref_mbqm(int(x), int(r), 0) for r in raw] for x in xs]
    np.testing.assert_array_equal(got, want)
    assert got[0, 0] == INT32_MAX


def test_requantize_bad_input():
    with pytest.raises(OverflowError, match="leaves the int32 range"):
        inf.requantize([2**30], 2**30, 2)
    with pytest.raises(ValueError, match="acc must hold int32 accumulators"):
        inf.requantize([2**31], 2**30, 0)
    with pytest.raises(ValueError, match="shift must hold shift exponents"):
        inf.requantize([1], 2**30, -32)
    with pytest.raises(ValueError, match="zero_point must hold uint8 codes"):
        inf.requantize([1], 2**30, 0, 300, dtype="uint8")
    with pytest.raises(ValueError, match="dtype must be one of"):
        inf.requantize([1], 2**30, 0, dtype="float32")
    with pytest.raises(ValueError, match="m must be non-negative"):
        inf.quantize_multiplier(-0.5)
    with pytest.raises(ValueError, match="m contains NaN"):
        inf.quantize_multiplier(float("nan"))
    with pytest.raises(TypeError, match="acc must be integers"):
        inf.requantize(["a"], 2**30, 0)


def test_high_mul_is_exact_where_float64_is_not():
    """acc·M0 needs up to 62 bits, float64 has 53. Products whose fraction (over 2**31) is one
    unit below a half, ``acc·M0 ≡ 2**30 − 1 (mod 2**31)``, must round down; in float64 the unit
    is lost, the value looks like a tie and rounds up. The integers get every one right."""
    rng = np.random.default_rng(13)
    m0 = rng.integers(2**29, 2**30, 300) * 2 + 1  # odd, in [2**30, 2**31): invertible mod 2**31
    acc = np.array([(2**30 - 1) * pow(int(m), -1, 2**31) % 2**31 for m in m0])
    exact = np.array([ref_srdhm(int(a), int(m)) for a, m in zip(acc, m0, strict=True)])
    v = acc.astype(np.float64) * m0.astype(np.float64) / 2.0**31
    wrong_in_float = np.floor(v + 0.5) != exact
    assert np.count_nonzero(wrong_in_float) > 250  # float64 really is not enough here
    np.testing.assert_array_equal(inf.saturating_rounding_doubling_high_mul(acc, m0), exact)


# -- the integer-only MLP --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    from quantlab.mlp import digits_mlp

    return digits_mlp()


def test_integer_mlp_matches_float_simulation(model):
    """The bound: for acc·M = v, TFLite's result r satisfies |r − v| ≤ 1/2 + 2**−(s+1) + |v|·2**−31

    (SRDHM rounds once to within 1/2 of acc·M0/2**31, the rounding right shift by s adds at most
    1/2 of its own unit, i.e. 2**−(s+1) in output units, and M0 differs from M·2**(31−shift) by a
    relative 2**−31 at most), while the float simulation rounds v to within 1/2. So the two codes
    differ by at most 1, and are equal wherever v is farther than δ = 2**−(s+1) + |v|·2**−31 from
    a half-integer.
    """
    H, Z = model.forward(model.data.X_train)
    net = inf.integer_mlp(
        model, (0.0, 1.0), (0.0, float(H.max())), (float(Z.min()), float(Z.max()))
    )
    qx = net.input_codes(model.data.X_test)
    qh, qz = net.run(qx)
    sh, sz = net.simulate(qx)
    assert qh.dtype == np.uint8 and qz.dtype == np.int8
    for layer, q_in, got, sim in ((net.layer1, qx, qh, sh), (net.layer2, qh, qz, None)):
        acc = layer.accumulate(q_in)
        v = acc * layer.multiplier
        if sim is None:
            sim = layer.simulate(q_in)  # the same input codes: the per-layer statement
        diff = np.abs(got.astype(np.int64) - sim.astype(np.int64))
        assert diff.max() <= 1
        s = np.maximum(-layer.shift, 0)
        delta = 2.0 ** -(s + 1) + np.abs(v) * 2.0**-31 + 1e-9
        far = np.abs(np.abs(v - np.floor(v)) - 0.5) > delta
        assert np.all(diff[far] == 0)
    # end to end, the hidden codes differ by at most one in a few units; the logits' codes then
    # differ by at most 1 + M2·Σ_k |Δh_k|·|q_w2[j, k]|
    dh = np.abs(qh.astype(np.int64) - sh.astype(np.int64))
    l2 = net.layer2
    bound = 1 + l2.multiplier * (dh @ np.abs(l2.w_codes.astype(np.int64)).T)
    assert np.all(np.abs(qz.astype(np.int64) - sz.astype(np.int64)) <= np.floor(bound))
    # and the quantized network still classifies (the float model: 96.7 %)
    acc_int = np.mean(qz.argmax(axis=1) == model.data.y_test)
    assert acc_int >= model.accuracy() - 0.02


def test_integer_mlp_logits_close_to_float(model):
    H, Z = model.forward(model.data.X_train)
    net = inf.integer_mlp(
        model, (0.0, 1.0), (0.0, float(H.max())), (float(Z.min()), float(Z.max()))
    )
    z_int = net.logits(model.data.X_test)
    z = model.logits()
    # a few output steps of the int8 logit grid at most
    assert np.abs(z_int - z).max() < 8 * net.layer2.y_scale
    assert net.layer1.bias.dtype == np.int32


def test_quantize_codes_round_half_even_and_saturate():
    np.testing.assert_array_equal(
        inf.quantize_codes([0.5, 1.5, 2.5, -1.0, 1e9], 1.0, 0, dtype="uint8"), [0, 2, 2, 0, 255]
    )
    np.testing.assert_array_equal(
        inf.dequantize_codes(np.array([0, 10], np.uint8), 0.5, 4), [-2.0, 3.0]
    )
    with pytest.raises(ValueError, match="scale must be positive"):
        inf.quantize_codes([1.0], 0.0)


def test_matmul_integer_nd_zero_points_and_vectors_match_onnx():
    rng = np.random.default_rng(21)
    A, B = codes(rng, (2, 4, 5), np.int8), codes(rng, (2, 5, 3), np.int8)
    za, zb = codes(rng, (2, 4, 1), np.int8), codes(rng, (2, 1, 3), np.int8)
    (want,) = MATMUL_INTEGER.run(None, {"A": A, "B": B, "a_zp": za, "b_zp": zb})
    np.testing.assert_array_equal(inf.matmul_integer(A, B, za, zb), want)
    a, b = codes(rng, (7,), np.uint8), codes(rng, (7, 3), np.uint8)
    feeds = {"A": a, "B": b, "a_zp": np.uint8(3), "b_zp": np.uint8(4)}
    (want,) = MATMUL_INTEGER.run(None, feeds)
    np.testing.assert_array_equal(inf.matmul_integer(a, b, np.uint8(3), np.uint8(4)), want)
