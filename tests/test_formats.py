"""quantlab.formats against the reference: the ``gguf`` package (llama.cpp's Python port).

Every bit-exactness test compares bytes (uint8) and decoded values (float32 bit patterns) with
``gguf.quants``; the round trips and error bounds are checked with hypothesis and with bounds
worked out from the formulas, never against quantlab itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantlab import Grouping, Quantizer, formats

NAMES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
SYMMETRIC = ("Q4_0", "Q5_0")
WITH_MIN = ("Q4_1", "Q5_1")
F16_MAX = 65504.0


def qtype(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name]


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and the same float32 bit patterns (so -0.0 != 0.0, as bytes would say)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def assert_bit_exact(x: np.ndarray, name: str) -> np.ndarray:
    """quantize and dequantize of ``x`` equal gguf's to the last bit; returns the bytes."""
    data = formats.quantize(x, name)
    with np.errstate(over="ignore", invalid="ignore"):  # gguf's own warnings (subnormal d)
        ref = gguf_quantize(np.asarray(x, np.float32), qtype(name))
    assert data.dtype == np.uint8
    assert data.shape == ref.shape
    assert np.array_equal(data, ref), f"{name}: {np.sum(data != ref)} bytes differ"
    x_hat = formats.dequantize(data, name)
    ref_hat = gguf_dequantize(ref, qtype(name))
    assert x_hat.dtype == np.float32
    assert not np.any(np.isnan(ref_hat))
    assert bits_equal(x_hat, ref_hat), f"{name}: dequantized values differ"
    return data


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _ties(name: str, scale: float) -> np.ndarray:
    """Blocks whose values sit exactly on ``x/d = k + 1/2`` (exactly representable).

    The block's extreme value pins ``d`` to ``scale`` (a power of two, so 1/d is exact) and the
    other 31 values are half-integers of code space: every one is a rounding tie.
    """
    f = formats.get_format(name)
    halves = np.arange(-f.qmax if name == "Q8_0" else f.qmin, f.qmax) + 0.5  # k + 1/2 in range
    if name == "Q8_0":
        extreme = 127.0  # d = max|x| / 127
    elif f.use_min:
        extreme = float(f.qmax)  # min 0, max 2**n - 1: d = 1
        halves = halves[halves > 0]
    else:
        extreme = float(f.qmin)  # m = -2**(n-1): d = 1
    rows = []
    for sign in (1.0, -1.0) if not f.use_min else (1.0,):
        vals = np.resize(sign * halves, 31)
        row = np.concatenate([[sign * extreme], vals])
        if f.use_min:
            row[1] = 0.0
        rows.append(row)
    return (np.array(rows) * scale).astype(np.float32)


def _data_cases() -> dict[str, np.ndarray]:
    rng = _rng(20261125)
    mags = 10.0 ** rng.uniform(-5, 4, size=(40, 1))
    cases = {
        "normal": rng.standard_normal((16, 256)),
        "student_t": rng.standard_t(1.5, (16, 256)),
        "magnitudes": (rng.standard_normal((40, 32)) * mags).reshape(10, 128),
        "zero": np.zeros((3, 64)),
        "signed_zeros": np.where(rng.random((8, 32)) < 0.5, -0.0, 0.0),
        "constant": np.repeat([[1.5], [-2.0], [7.25], [-1e-3], [3e4]], 32, axis=1),
        "plus_minus": np.tile([1.0, -1.0], (2, 16)) * np.array([[1.0], [-1.0]]),
        "large": rng.uniform(-6e4, 6e4, (8, 64)),
        "near_f16_max": np.where(rng.random((4, 64)) < 0.5, -1, 1)
        * rng.uniform(6.5e4, 65504, (4, 64)),
        "small": rng.uniform(-1e-6, 1e-6, (8, 64)),
        "tiny": rng.uniform(-1e-7, 1e-7, (8, 64)),
        "one_outlier": np.concatenate([rng.standard_normal((4, 31)), [[40], [-40], [9], [-9]]], 1),
        "positive": rng.uniform(2, 3, (4, 64)),
        "negative": rng.uniform(-3, -2, (4, 64)),
    }
    return {k: np.asarray(v, np.float32) for k, v in cases.items()}


CASES = _data_cases()


# -- bit-exact against gguf -------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_on_varied_data(name: str, case: str) -> None:
    assert_bit_exact(CASES[case], name)


@pytest.mark.parametrize("scale", [1.0, 2.0**-10, 2.0**8, 2.0**-20])
@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_on_exact_rounding_ties(name: str, scale: float) -> None:
    x = _ties(name, scale)
    data = assert_bit_exact(x, name)
    # The ties really are ties and the format's own rule decides them, by hand:
    f = formats.get_format(name)
    _, _, codes = formats.unpack(data, name)
    xs = x.astype(np.float64)
    if name == "Q8_0":
        v = xs / (np.abs(xs).max(axis=1, keepdims=True) / 127)
    elif f.use_min:
        lo = xs.min(axis=1, keepdims=True)
        v = (xs - lo) / ((xs.max(axis=1, keepdims=True) - lo) / f.qmax)
    else:
        v = xs / (xs[:, :1] / f.qmin)  # the first value is the extreme one, with its sign
    frac = v - np.floor(v)
    is_tie = frac == 0.5
    assert is_tie.sum() >= 28 * len(x)
    if name == "Q8_0":  # roundf: half away from zero
        expected = np.sign(v) * np.floor(np.abs(v) + 0.5)
    else:  # floor(x/d + 1/2): half up
        expected = np.floor(v + 0.5)
    assert np.array_equal(codes[is_tie], expected[is_tie])


@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_near_ties_and_roundf_trap(name: str) -> None:
    # Values built as (k + 1/2)*d in float32 land a hair either side of the tie.
    rng = _rng(7)
    f = formats.get_format(name)
    d = rng.uniform(0.01, 3.0, (200, 1))
    k = rng.integers(f.qmin, f.qmax, (200, 31)) + 0.5
    if f.use_min:
        k = np.abs(k)
    first = np.full((200, 1), 127.0 if name == "Q8_0" else (f.qmax if f.use_min else f.qmin))
    x = (np.concatenate([first, k], axis=1) * d).astype(np.float32)
    if f.use_min:
        x[:, 1] = 0.0
    assert_bit_exact(x, name)
    if name == "Q8_0":
        # 0.49999997 (the float32 below 1/2) must round to 0: floor(|v| + 0.5) would give 1.
        trap = np.zeros((1, 32), np.float32)
        trap[0, 0] = 127.0
        trap[0, 1:] = np.nextafter(np.float32(0.5), np.float32(0))
        data = assert_bit_exact(trap, name)
        assert np.all(formats.unpack(data, name)[2][0, 1:] == 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(32,), (96,), (3, 64), (2, 3, 4, 32), (1, 1, 160)])
def test_bit_exact_1d_and_nd_shapes(name: str, shape: tuple[int, ...]) -> None:
    x = _rng(len(shape)).standard_normal(shape).astype(np.float32)
    data = assert_bit_exact(x, name)
    _, type_size = GGML_QUANT_SIZES[qtype(name)]
    assert data.shape == (*shape[:-1], shape[-1] // 32 * type_size)
    assert formats.dequantize(data, name).shape == shape


@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_when_the_float32_scale_is_subnormal(name: str) -> None:
    # A range of ~1e-38: 1/d overflows to inf in float32 in the reference too.
    rng = _rng(8)
    x = (1e-37 + rng.uniform(0, 1e-38, (4, 32))).astype(np.float32)
    x[1] = -x[1]
    x[2, :16] = 0.0
    data = assert_bit_exact(x, name)
    assert np.all(formats.dequantize(data, name)[:2] == np.float32(0))  # d and m underflow


@pytest.mark.parametrize("name", NAMES)
def test_float64_and_int_inputs_are_converted_to_float32_first(name: str) -> None:
    x64 = _rng(3).standard_normal((4, 64)) * 3
    assert np.array_equal(
        formats.quantize(x64, name), gguf_quantize(x64.astype(np.float32), qtype(name))
    )
    ints = np.arange(-16, 16).reshape(1, 32)
    assert np.array_equal(
        formats.quantize(ints, name), gguf_quantize(ints.astype(np.float32), qtype(name))
    )
    assert np.array_equal(formats.quantize(list(ints[0]), name), formats.quantize(ints[0], name))


@pytest.mark.parametrize("name", NAMES)
def test_bit_exact_on_many_blocks_past_the_chunk_size(name: str) -> None:
    # More blocks than one chunk, with a ragged last chunk: one whole tile and a ragged tail.
    n_blocks = formats.CHUNK_BLOCKS * 2 + formats.legacy.TILE_BLOCKS + 37
    x = _rng(11).standard_t(3, (n_blocks, 32)).astype(np.float32)
    assert_bit_exact(x, name)
    assert_bit_exact(x.reshape(-1), name)


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_random_bytes_matches_gguf(name: str) -> None:
    # Every byte pattern of the codes, with finite random float16 parameters.
    f = formats.get_format(name)
    rng = _rng(5)
    data = rng.integers(0, 256, (300, f.bytes_per_block), dtype=np.uint8)
    mags = 10.0 ** rng.uniform(-7, 3, (300, 1))
    params = rng.standard_normal((300, 2 if f.use_min else 1)) * mags
    data[:, : params.shape[1] * 2] = params.astype(np.float16).view(np.uint8)
    x_hat = formats.dequantize(data, name)
    assert bits_equal(x_hat, gguf_dequantize(data, qtype(name)))
    assert bits_equal(formats.dequantize(bytes(data[0]), name), x_hat[0])


def test_quantize_does_not_modify_input() -> None:
    x = _rng(1).standard_normal((2, 64)).astype(np.float32)
    w = _rng(2).random((2, 64))
    x0, w0 = x.copy(), w.copy()
    for name in NAMES:
        formats.quantize(x, name)
        formats.quantize(x, name, w=w)
    assert bits_equal(x, x0) and np.array_equal(w, w0)


# -- the readable helpers ---------------------------------------------------------------------
def test_format_facts_match_gguf_sizes() -> None:
    table = {"Q8_0": 8.5, "Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0}
    for name, bpw in table.items():
        block, type_size = GGML_QUANT_SIZES[qtype(name)]
        f = formats.get_format(name)
        assert (f.block_size, f.bytes_per_block) == (block, type_size)
        assert formats.bits_per_weight(name) == bpw == 8 * type_size / block
        assert sum(size for _, size in f.layout) == type_size
    assert formats.get_format("q4_0") is formats.FORMATS["Q4_0"]
    assert list(formats.format_table()["bits_per_weight"]) == list(table.values())


@pytest.mark.parametrize("name", NAMES)
def test_unpack_recomputes_gguf_values_by_hand(name: str) -> None:
    x = _rng(9).standard_normal((3, 64)).astype(np.float32)
    data = formats.quantize(x, name)
    d, m, codes = formats.unpack(data, name)
    assert d.shape == (3, 2) and codes.shape == (3, 64) and codes.dtype == np.int64
    assert (m is None) == (name not in WITH_MIN)
    f = formats.get_format(name)
    assert codes.min() >= f.qmin and codes.max() <= f.qmax
    by_hand = np.repeat(d, 32, axis=1) * codes.astype(np.float32)
    if m is not None:
        by_hand = by_hand + np.repeat(m, 32, axis=1)
    assert bits_equal(by_hand, gguf_dequantize(data, qtype(name)))
    # d and m are the stored float16 bytes, read independently:
    raw = data.reshape(-1, f.bytes_per_block)
    assert bits_equal(d.ravel(), raw[:, :2].copy().view(np.float16).astype(np.float32).ravel())


@pytest.mark.parametrize("name", SYMMETRIC)
def test_scales_are_those_of_the_core_quantizer_per_block(name: str) -> None:
    # Q4_0/Q5_0 are the core's symmetric "min" convention per block of 32: d = m / -2**(n-1).
    x = _rng(4).standard_t(2, (3, 5, 64)).astype(np.float32)
    f = formats.get_format(name)
    d, _, _ = formats.unpack(formats.quantize(x, name), name)
    _, scale, _ = Quantizer(f.bits, block_size=32).quantize(x)
    assert d.shape == scale.shape == Grouping(block_size=32).param_shape(x.shape)
    assert bits_equal(d, scale.astype(np.float16))


# -- round trips (hypothesis) -----------------------------------------------------------------
n_blocks = st.integers(1, 4)


@st.composite
def codes_for(draw, name: str) -> tuple:
    f = formats.get_format(name)
    lead = draw(st.sampled_from([(), (2,), (2, 1)]))
    k = draw(n_blocks)
    shape = (*lead, 32 * k)
    codes = draw(hnp.arrays(np.int64, shape, elements=st.integers(f.qmin, f.qmax)))
    f16 = st.floats(-F16_MAX, F16_MAX, width=16)
    d = draw(hnp.arrays(np.float16, (*lead, k), elements=f16))
    m = draw(hnp.arrays(np.float16, (*lead, k), elements=f16)) if f.use_min else None
    return d, m, codes


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_pack_unpack_round_trip(name: str, data) -> None:
    d, m, codes = data.draw(codes_for(name))
    packed = formats.pack(d, m, codes, name)
    d2, m2, codes2 = formats.unpack(packed, name)
    assert np.array_equal(codes2, codes)
    assert bits_equal(d2, d.astype(np.float32))
    if m is not None:
        assert bits_equal(m2, m.astype(np.float32))
    # gguf reads the same layout: x_hat = d*q (+ m) in float32, block by block.
    expected = np.repeat(d.astype(np.float32), 32, axis=-1) * codes.astype(np.float32)
    if m is not None:
        expected = expected + np.repeat(m.astype(np.float32), 32, axis=-1)
    with np.errstate(over="ignore"):
        got = gguf_dequantize(packed, qtype(name))
    assert bits_equal(got, expected)


def code_arrays(dtype: type, hi: int) -> st.SearchStrategy:
    """Arrays of 1-3 rows of 32k codes in [0, hi]."""
    shape = st.tuples(st.integers(1, 3), n_blocks.map(lambda k: 32 * k))
    return hnp.arrays(dtype, shape, elements=st.integers(0, hi))


@settings(max_examples=60, deadline=None)
@given(code_arrays(np.uint8, 15))
def test_nibbles_round_trip_and_layout(codes) -> None:
    qs = formats.pack_nibbles(codes)
    assert qs.shape == (codes.shape[0], codes.shape[1] // 2)
    assert np.array_equal(formats.unpack_nibbles(qs), codes)
    # byte j of a block = code j | code j+16 << 4, checked element by element
    blocks = codes.reshape(-1, 32).astype(int)
    assert np.array_equal(qs.reshape(-1, 16), blocks[:, :16] + 16 * blocks[:, 16:])


@settings(max_examples=60, deadline=None)
@given(code_arrays(np.int64, 31))
def test_fifth_bits_round_trip_and_layout(codes) -> None:
    qh = formats.pack_fifth_bits(codes)
    assert qh.shape == (codes.shape[0], codes.shape[1] // 8)
    assert np.array_equal(formats.unpack_fifth_bits(qh), codes >> 4)
    # qh of a block is a little-endian uint32 whose bit j is bit 4 of code j
    as_int = qh.reshape(-1, 4).copy().view("<u4")[:, 0].astype(np.int64)
    expected = ((codes.reshape(-1, 32) >> 4) << np.arange(32)).sum(axis=1)
    assert np.array_equal(as_int, expected)


def _error_bound(x: np.ndarray, name: str, d16: np.ndarray, m16: np.ndarray | None) -> np.ndarray:
    """Per value: d/2 (a full step d where the symmetric formats clip +2**(n-1) to
    2**(n-1) - 1), plus what storing d and m as float16 and computing in float32 can add."""
    f = formats.get_format(name)
    xb = x.astype(np.float64).reshape(-1, 32)
    hi, lo = xb.max(axis=1, keepdims=True), xb.min(axis=1, keepdims=True)
    if name == "Q8_0":
        d = np.maximum(hi, -lo) / 127
        step = np.full_like(xb, 0.5)
    elif f.use_min:
        d = (hi - lo) / f.qmax
        step = np.full_like(xb, 0.5)
    else:
        mag = np.take_along_axis(xb, np.abs(xb).argmax(axis=1)[:, None], axis=1)  # first, signed
        d = np.abs(mag) / -f.qmin
        step = np.where(xb * np.sign(-mag) / np.where(d > 0, d, 1) > f.qmax + 0.5, 1.0, 0.5)
    d16 = np.abs(d16.astype(np.float64).reshape(-1, 1))
    q_max = max(-f.qmin, f.qmax)
    param_err = np.abs(d16 - d) * q_max
    if m16 is not None:
        param_err = param_err + np.abs(m16.astype(np.float64).reshape(-1, 1) - lo)
    f32 = 2.0**-23 * (np.abs(xb) + d * q_max) * 4
    return (step * d + param_err + f32).reshape(x.shape)


finite32 = st.floats(-3e4, 3e4, width=32, allow_subnormal=False)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 2), n_blocks.map(lambda k: 32 * k)),
                    elements=finite32))  # fmt: skip
def test_round_trip_error_is_half_a_step(name: str, x) -> None:
    data = formats.quantize(x, name)
    d16, m16, _ = formats.unpack(data, name)
    err = np.abs(formats.dequantize(data, name).astype(np.float64) - x)
    assert np.all(err <= _error_bound(x, name, d16, m16))


@pytest.mark.parametrize("name", SYMMETRIC)
def test_clipped_top_code_costs_a_full_step(name: str) -> None:
    # The extreme value -a lands on code -2**(n-1); +a would need +2**(n-1) and is clipped.
    f = formats.get_format(name)
    x = np.zeros((1, 32), np.float32)
    x[0, 0], x[0, 1] = -1.0, 1.0
    x_hat = formats.dequantize(formats.quantize(x, name), name)
    d = 1.0 / -f.qmin
    assert x_hat[0, 0] == -1.0
    assert x_hat[0, 1] == pytest.approx(1.0 - d)


# -- importance-weighted variants -------------------------------------------------------------
def _weighted_block_error(x: np.ndarray, w: np.ndarray, data: np.ndarray, name: str) -> np.ndarray:
    x_hat = gguf_dequantize(data, qtype(name)).astype(np.float64)
    return (w * (x.astype(np.float64) - x_hat) ** 2).reshape(-1, 32).sum(axis=1)


WEIGHTED_DATA = {
    "normal": lambda rng: rng.standard_normal((48, 256)),
    "student_t": lambda rng: rng.standard_t(1.5, (48, 256)),
    "magnitudes": lambda rng: rng.standard_normal((384, 32)) * 10.0 ** rng.uniform(-3, 3, (384, 1)),
}


@pytest.mark.parametrize("kind", sorted(WEIGHTED_DATA))
@pytest.mark.parametrize("name", NAMES)
def test_weighted_never_worse_than_reference(name: str, kind: str) -> None:
    rng = _rng(31)
    x = WEIGHTED_DATA[kind](rng).astype(np.float32)
    w = rng.exponential(1.0, x.shape) * (rng.random(x.shape) < 0.9)  # some zero weights
    data = formats.quantize(x, name, w=w)
    ref = gguf_quantize(x, qtype(name))
    assert data.shape == ref.shape and data.dtype == np.uint8
    # gguf decodes the weighted blocks (same layout) and quantlab decodes them identically
    assert bits_equal(formats.dequantize(data, name), gguf_dequantize(data, qtype(name)))
    err = _weighted_block_error(x, w, data, name)
    err_ref = _weighted_block_error(x, w, ref, name)
    assert np.all(err <= err_ref * (1 + 1e-12))
    # ... and the weights do something: a real improvement on most data
    assert err.sum() < 0.97 * err_ref.sum()
    # blocks not improved keep the reference bytes exactly
    kept = err >= err_ref
    per_block = formats.get_format(name).bytes_per_block
    assert np.array_equal(data.reshape(-1, per_block)[kept], ref.reshape(-1, per_block)[kept])


def test_weighted_blocks_do_not_depend_on_the_chunking(monkeypatch) -> None:
    # Every block is fitted on its own: cutting the blocks into chunks of 3 changes nothing.
    rng = _rng(33)
    x = rng.standard_t(2, (5, 7, 32)).astype(np.float32)
    w = rng.random(x.shape)
    for name in ("Q4_0", "Q5_1"):
        whole = formats.quantize(x, name, w=w)
        monkeypatch.setattr(formats.legacy, "WEIGHTED_CHUNK_BLOCKS", 3)
        assert np.array_equal(formats.quantize(x, name, w=w), whole)
        monkeypatch.undo()


@pytest.mark.parametrize("name", SYMMETRIC)
def test_weighted_with_exact_optimum_is_at_least_as_good(name: str) -> None:
    rng = _rng(32)
    x = rng.standard_t(2, (16, 64)).astype(np.float32)
    w = rng.random(x.shape)
    err_default = _weighted_block_error(x, w, formats.quantize(x, name, w=w), name)
    both = ("search", "refine", "optimum")
    data = formats.quantize(x, name, w=w, methods=both)
    err_opt = _weighted_block_error(x, w, data, name)
    err_ref = _weighted_block_error(x, w, gguf_quantize(x, qtype(name)), name)
    assert np.all(err_opt <= err_ref * (1 + 1e-12))
    assert np.all(err_opt <= err_default * (1 + 1e-12))


@pytest.mark.parametrize("name", NAMES)
def test_weighted_degenerate_blocks(name: str) -> None:
    x = np.concatenate([np.zeros(32), np.full(32, 2.5), _rng(1).standard_normal(32)])
    x = x.astype(np.float32)
    ref = gguf_quantize(x, qtype(name))
    # all-zero weights: nothing is strictly better, the reference is kept
    assert np.array_equal(formats.quantize(x, name, w=np.zeros(96)), ref)
    data = formats.quantize(x, name, w=np.ones(96))
    x_hat = formats.dequantize(data, name)
    assert not np.any(np.isnan(x_hat))
    assert np.all(x_hat[:32] == 0.0)
    assert np.allclose(x_hat[32:64], 2.5, rtol=1e-3)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_quantize(name: str) -> None:
    with pytest.raises(ValueError, match=r"last axis of x \(length 33\).*multiple"):
        formats.quantize(np.zeros(33), name)
    with pytest.raises(ValueError, match=r"last axis of x"):
        formats.quantize(np.zeros((32, 3)), name)
    for bad in (np.nan, np.inf, -np.inf, 1e39):
        x = np.zeros(64)
        x[40] = bad
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            formats.quantize(x, name)
    with pytest.raises(ValueError, match="x must be a non-empty"):
        formats.quantize(np.zeros(0), name)
    with pytest.raises(ValueError, match="x must be a non-empty"):
        formats.quantize(1.0, name)
    with pytest.raises(TypeError, match="x must be real numbers"):
        formats.quantize(np.array(["a"] * 32), name)


@pytest.mark.parametrize("fmt", ["Q4_2", "q7_k", "", None, 4])
def test_unknown_format_names(fmt) -> None:
    for call in (
        lambda: formats.quantize(np.zeros(32), fmt),
        lambda: formats.dequantize(np.zeros(18, np.uint8), fmt),
        lambda: formats.bits_per_weight(fmt),
    ):
        with pytest.raises(ValueError, match="fmt must be one of"):
            call()


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_dequantize(name: str) -> None:
    per_block = formats.get_format(name).bytes_per_block
    for n in (per_block - 1, per_block + 1, 0):
        with pytest.raises(ValueError, match=rf"data \(length {n}\).*{per_block} bytes"):
            formats.dequantize(np.zeros(n, np.uint8), name)
    with pytest.raises(TypeError, match="data must be a uint8 array"):
        formats.dequantize(np.zeros(per_block, np.float32), name)


@pytest.mark.parametrize("name", NAMES)
def test_bad_weights(name: str) -> None:
    x = np.zeros((2, 32))
    with pytest.raises(ValueError, match="w must have the shape of x"):
        formats.quantize(x, name, w=np.ones(32))
    with pytest.raises(ValueError, match="w must be non-negative"):
        formats.quantize(x, name, w=-np.ones((2, 32)))
    with pytest.raises(ValueError, match="w contains NaN"):
        formats.quantize(x, name, w=np.full((2, 32), np.nan))
    with pytest.raises(ValueError, match="methods must be"):
        formats.quantize(x, name, w=np.ones((2, 32)), methods="search")
    with pytest.raises(ValueError, match="methods must be"):
        formats.quantize(x, name, w=np.ones((2, 32)), methods=("grid",))
    if name in WITH_MIN:
        with pytest.raises(ValueError, match="methods: 'optimum' needs a symmetric format"):
            formats.quantize(x, name, w=np.ones((2, 32)), methods=("optimum",))


def test_bad_input_helpers() -> None:
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 15\]"):
        formats.pack_nibbles(np.full(32, 16))
    with pytest.raises(TypeError, match="codes must be an integer array"):
        formats.pack_nibbles(np.zeros(32))
    with pytest.raises(ValueError, match="last axis of codes"):
        formats.pack_fifth_bits(np.zeros(31, int))
    with pytest.raises(ValueError, match=r"qs .*16 bytes"):
        formats.unpack_nibbles(np.zeros(15, np.uint8))
    with pytest.raises(ValueError, match=r"codes must lie in \[-8, 7\]"):
        formats.pack(np.ones(1), None, np.full(32, 8), "Q4_0")
    with pytest.raises(ValueError, match="m is required for Q4_1"):
        formats.pack(np.ones(1), None, np.zeros(32, int), "Q4_1")
    with pytest.raises(ValueError, match="m is not used for Q4_0"):
        formats.pack(np.ones(1), np.ones(1), np.zeros(32, int), "Q4_0")
    with pytest.raises(ValueError, match=r"d must have shape \(1,\)"):
        formats.pack(np.ones(2), None, np.zeros(32, int), "Q4_0")
    with pytest.raises(ValueError, match="d must be finite"):
        formats.pack(np.array([np.nan]), None, np.zeros(32, int), "Q4_0")
    with pytest.raises(ValueError, match="m must be finite"):
        formats.pack(np.ones(1), np.array([1e6]), np.zeros(32, int), "Q5_1")
