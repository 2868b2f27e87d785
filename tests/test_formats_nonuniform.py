"""MXFP4, NVFP4 and IQ4_NL bytes against llama.cpp's C (ggml-python) and gguf.quants."""

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantlab.formats as qf
from quantlab import floats as F
from quantlab.formats import iq4_nl, mxfp4, nvfp4

gq = pytest.importorskip("gguf.quants")
ggml = pytest.importorskip("ggml")

MODULES = {"MXFP4": mxfp4, "NVFP4": nvfp4, "IQ4_NL": iq4_nl}


def ggml_bytes(fmt, x, imatrix=None):
    """``ggml_quantize_chunk(type, x, dst, 0, rows, n_per_row, imatrix)``: llama.cpp's bytes."""
    t = getattr(ggml, "GGML_TYPE_" + fmt)
    x = np.ascontiguousarray(np.asarray(x, np.float32).reshape(-1, np.shape(x)[-1]))
    rows, n = x.shape
    dst = (ctypes.c_uint8 * (ggml.ggml_row_size(t, n) * rows))()
    im = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, np.float32)
        im = imatrix.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    src = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    ggml.ggml_quantize_chunk(t, src, ctypes.cast(dst, ctypes.c_void_p), 0, rows, n, im)
    return np.frombuffer(dst, np.uint8).reshape(rows, -1).copy()


def hard_rows(n=512, seed=0):
    """Gaussian and Student-t rows at scales from 1e-9 to 1e9, plus the edge cases by hand."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((48, n)) * np.exp(rng.uniform(-20, 20, (48, 1)))
    x[:8] = rng.standard_t(3, (8, n))
    x[8, :64] = 0.0  # all-zero blocks
    x[9, :64] = 1e-16  # below IQ4_NL's GROUP_MAX_EPS
    x[10, :64] = np.arange(64) - 32  # integers: many exact ties
    x[11, :64] = np.float32(8) - np.float32(2**-21)  # amax a hair below a power of two
    x[12, :64] = rng.integers(-3, 4, 64) * 0.5  # on the E2M1 grid
    x[13, :64] = 1e-40  # subnormal float32
    x[14, :] = 7.0  # constant
    x[15, ::2] = -x[15, 1::2]  # +a and -a both present
    # every MXFP4 level and midpoint for one block scale
    levels = np.unique(np.concatenate([F.finite_values("e2m1")]))
    x[16, : levels.size] = levels
    x[16, levels.size : 2 * levels.size - 1] = (levels[:-1] + levels[1:]) / 2
    return x.astype(np.float32)


@pytest.mark.parametrize("fmt", ["MXFP4", "NVFP4", "IQ4_NL"])
def test_bytes_equal_ggml(fmt):
    x = hard_rows()
    np.testing.assert_array_equal(qf.quantize(x, fmt), ggml_bytes(fmt, x))


@pytest.mark.parametrize("fmt", ["MXFP4", "NVFP4", "IQ4_NL"])
def test_bytes_with_imatrix_equal_ggml(fmt):
    rng = np.random.default_rng(3)
    x = hard_rows(seed=3)
    for imatrix in (
        rng.uniform(0, 2, x.shape[1]) ** 2,
        np.where(rng.random(x.shape[1]) < 0.3, 0, 1.0),
    ):
        np.testing.assert_array_equal(
            qf.quantize(x, fmt, imatrix=imatrix), ggml_bytes(fmt, x, imatrix)
        )


def test_imatrix_changes_iq4_nl():
    x = hard_rows(seed=4)
    imatrix = np.random.default_rng(4).uniform(0, 4, x.shape[1])
    assert not np.array_equal(qf.quantize(x, "IQ4_NL"), qf.quantize(x, "IQ4_NL", imatrix=imatrix))


@pytest.mark.parametrize("fmt", ["MXFP4", "NVFP4", "IQ4_NL"])
def test_dequantize_equals_gguf(fmt):
    data = ggml_bytes(fmt, hard_rows(seed=5))
    expected = gq.dequantize(data, getattr(gq.GGMLQuantizationType, fmt))
    np.testing.assert_array_equal(qf.dequantize(data, fmt), expected)


def test_mxfp4_bytes_equal_gguf_quantize():
    x = hard_rows(seed=6)
    with np.errstate(over="ignore"):
        expected = gq.quantize(x, gq.GGMLQuantizationType.MXFP4)
    np.testing.assert_array_equal(qf.quantize(x, "MXFP4"), expected)


def test_nvfp4_scale_rounding_equals_gguf():
    rng = np.random.default_rng(7)
    v = np.concatenate([nvfp4.ue4m3_half(np.arange(127, dtype=np.uint8)) * 2, [0.0, 1e-9, 448.0]])
    v = np.concatenate([v, rng.uniform(0, 500, 5000), np.exp(rng.uniform(-16, 7, 5000))])
    v = v.astype(np.float32)
    np.testing.assert_array_equal(nvfp4.to_ue4m3(v), gq.NVFP4.fp32_to_ue4m3(v))


def test_mxfp4_clips_blocks_with_amax_between_6_and_8_scale_units():
    k = 3
    x = np.zeros(32)
    x[0] = 7 * 2.0**k  # amax in (6, 8) * 2**k: the scale is 2**k, the top code is 6 * 2**k
    data = qf.quantize(x, "MXFP4")
    assert int(data[0]) - 127 == k
    assert qf.dequantize(data, "MXFP4")[0] == 6 * 2.0**k
    x[0] = 5.5 * 2.0**k  # in [4, 6] scale units: rounded, not clipped (gap of 2 units there)
    assert abs(qf.dequantize(qf.quantize(x, "MXFP4"), "MXFP4")[0] - 5.5 * 2.0**k) <= 2.0**k


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["MXFP4", "NVFP4", "IQ4_NL"]),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=64, max_size=64),
)
def test_round_trip_is_stable_and_bounded(fmt, values):
    x = np.array(values, dtype=np.float32)
    data = qf.quantize(x, fmt)
    x_hat = qf.dequantize(data, fmt)
    assert x_hat.shape == x.shape
    assert np.all(np.isfinite(x_hat))
    block = MODULES[fmt].BLOCK_SIZE if fmt != "NVFP4" else nvfp4.SUB_BLOCK
    amax = np.repeat(np.abs(x).reshape(-1, block).max(axis=1), block)
    if fmt == "MXFP4":
        # a value inside the grid's range is off by at most half the largest gap (2 units of the
        # scale 2**(floor(log2 amax) - 2) <= amax/4); clipped values by at most amax/4 as well
        assert np.all(np.abs(x - x_hat) <= amax / 4 * (1 + 1e-6))
        # decoded blocks are on the grid: re-quantizing gives the same bytes
        np.testing.assert_array_equal(qf.quantize(x_hat, fmt), data)
    elif fmt == "NVFP4":
        assert np.all(np.abs(x - x_hat) <= amax / 6 * 1.125 + 1e-30)
    else:
        d = np.repeat(data.reshape(-1, 18)[:, :2].copy().view(np.float16).astype(np.float64), 32)
        gap = np.diff(iq4_nl.KVALUES.astype(np.float64)).max()
        inside = np.abs(x) <= np.abs(d) * 113
        assert np.all(np.abs(x - x_hat)[inside] <= np.abs(d[inside]) * gap / 2 * (1 + 1e-3))


def test_sizes_and_bits_per_weight():
    assert (mxfp4.BITS_PER_WEIGHT, nvfp4.BITS_PER_WEIGHT, iq4_nl.BITS_PER_WEIGHT) == (
        4.25,
        4.5,
        4.5,
    )
    for fmt, m in MODULES.items():
        assert (
            ggml.ggml_row_size(getattr(ggml, "GGML_TYPE_" + fmt), 256)
            == 256 // m.BLOCK_SIZE * m.BYTES_PER_BLOCK
        )


def test_leading_shape_kept_and_input_not_modified():
    x = hard_rows(128, seed=8)[:6].reshape(2, 3, 128)
    before = x.copy()
    for fmt in MODULES:
        data = qf.quantize(x, fmt)
        assert data.shape[:2] == (2, 3)
        assert qf.dequantize(data, fmt).shape == x.shape
    np.testing.assert_array_equal(x, before)


def test_bad_input():
    for fmt in MODULES:
        with pytest.raises(ValueError, match="multiple"):
            qf.quantize(np.ones(48), fmt)
        with pytest.raises(ValueError, match="NaN"):
            qf.quantize(np.full(64, np.nan), fmt)
        with pytest.raises(ValueError, match="imatrix"):
            qf.quantize(np.ones(64), fmt, imatrix=np.ones(3))
        with pytest.raises(ValueError, match="imatrix"):
            qf.quantize(np.ones(64), fmt, imatrix=-np.ones(64))
        with pytest.raises(ValueError, match="w"):
            qf.quantize(np.ones(64), fmt, np.ones(64))
        with pytest.raises(TypeError, match="uint8"):
            qf.dequantize(np.ones(36), fmt)
        with pytest.raises(ValueError, match="float32"):
            qf.quantize(np.full(64, 1e39), fmt)
        with pytest.raises(TypeError, match="masked"):
            qf.quantize(np.ma.array(np.ones(64), mask=np.arange(64) == 3), fmt)


@pytest.mark.filterwarnings("error")
def test_degenerate_blocks_give_finite_answers_without_warnings():
    for fmt in MODULES:
        zeros = np.zeros((2, 64))
        np.testing.assert_array_equal(qf.dequantize(qf.quantize(zeros, fmt), fmt), 0.0)
        constant = np.full((2, 64), -0.75)
        x_hat = qf.dequantize(qf.quantize(constant, fmt), fmt)
        assert np.all(np.isfinite(x_hat))
        assert np.all(np.abs(x_hat + 0.75) <= 0.75 / 4)
    codes, absmax = F.quantize_nf4(np.zeros(100))
    np.testing.assert_array_equal(F.dequantize_nf4(codes, absmax), 0.0)


def test_mxfp4_bytes_equal_ggml_around_every_midpoint_at_every_scale():
    """The threshold rule against the C loop: each level's midpoint and its float32 neighbours,
    negated too, in blocks whose largest value spans the whole float32 range (normal scales,
    the subnormal ones and the wrapped exponents of tiny blocks)."""
    k = mxfp4.KVALUES[:8].astype(np.float64) / 2  # the E2M1 magnitudes 0 ... 6
    mid = np.float32(np.concatenate([k, (k[:-1] + k[1:]) / 2]))
    near = np.concatenate([mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(9))])
    near = np.concatenate([near, -near])  # 90 values
    rows = []
    for top in (4.0, 6.0, 7.99, 8.0):  # the block's largest value, in scale units
        for p in range(-149, 125):
            scale = np.float32(2.0**p)
            values = np.concatenate([[top], near]) * scale
            if scale * np.float32(top) == 0:
                continue
            rows.append(np.resize(values.astype(np.float32), 96))
    x = np.array(rows, np.float32)
    x[:, ::32] = np.abs(x[:, ::32])  # each block of 32 holds its largest value first
    np.testing.assert_array_equal(qf.quantize(x, "MXFP4"), ggml_bytes("MXFP4", x))


def test_nvfp4_bytes_equal_ggml_around_every_midpoint_at_every_scale():
    """NVFP4's threshold rule against the C loop: sub-blocks of 16 whose other values sit on the
    midpoints of their own decoded scale and on the float32 neighbours of those, for largest
    values across the range (subnormal scale bytes, every exponent, and the saturated scale
    448 with values far beyond the grid, where the C loop's float32 errors tie)."""
    rng = np.random.default_rng(8)
    tops = np.concatenate(
        [
            np.exp2(rng.uniform(-22, 12, 3003)),  # scale bytes from subnormal to saturated
            [2688, 2700, 5376, 6000, 1e5, 4.5e10, 1e11, 1e20, 3e38],  # beyond 6 * 448
        ]
    ).astype(np.float32)
    d = nvfp4.ue4m3_half(nvfp4.to_ue4m3(tops / np.float32(6)))
    mids = nvfp4.MIDPOINTS[None, :] * d[:, None]  # (n, 7), exact
    cand = np.concatenate(
        [mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf))], axis=1
    )
    pick = rng.integers(0, cand.shape[1], (len(tops), 15))
    rest = np.take_along_axis(cand, pick, axis=1) * rng.choice([-1, 1], (len(tops), 15))
    rest = np.minimum(np.abs(rest), tops[:, None]) * np.sign(rest)  # the top stays the largest
    rest[-9:] = tops[-9:, None] * rng.uniform(-1, 1, (9, 15))  # far beyond 12 d
    x = np.concatenate([tops[:, None], rest], axis=1).astype(np.float32).reshape(-1, 64)
    np.testing.assert_array_equal(qf.quantize(x, "NVFP4"), ggml_bytes("NVFP4", x))


@pytest.mark.parametrize("fmt", ["MXFP4", "NVFP4", "IQ4_NL"])
def test_bytes_equal_ggml_for_values_whose_squares_overflow(fmt):
    """Magnitudes 1e19-1e37: IQ4_NL's weights x**2 overflow to inf and its scale to NaN (its
    codes then come from the binary search, as the C's), NVFP4's scale saturates."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 128)) * np.array([1e10, 1e19, 1e20, 1e25, 1e30, 1e37])[:, None]
    x[:, ::17] = 0.0
    x = x.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = ggml_bytes(fmt, x)
    np.testing.assert_array_equal(qf.quantize(x, fmt), expected)
