"""K-quants and the imatrix paths against llama.cpp's own C code.

The oracle for the bytes is ``ggml_quantize_chunk`` of ggml-python (llama.cpp's ggml compiled
from source), called through ctypes with and without an importance matrix; the oracle for the
decoded values is ``gguf.quants.dequantize``. Nothing here is compared with quantlab itself.
"""

from __future__ import annotations

import ctypes
import itertools

import ggml
import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize as gguf_dequantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantlab import formats
from quantlab.formats import kquants, make_quants, packing

KNAMES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
LEGACY = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
_FLOATS = ctypes.POINTER(ctypes.c_float)


def ggml_quantize(x: np.ndarray, name: str, imatrix: np.ndarray | None = None) -> np.ndarray:
    """llama.cpp's bytes: ``ggml_quantize_chunk(type, x, dst, 0, rows, n, imatrix)``."""
    x = np.ascontiguousarray(x, np.float32)
    n = x.shape[-1]
    rows = x.size // n
    qtype = getattr(ggml, f"GGML_TYPE_{name}")
    row_size = ggml.ggml_row_size(qtype, n)
    out = np.zeros(rows * row_size, np.uint8)
    qw = None if imatrix is None else np.ascontiguousarray(imatrix, np.float32)
    written = ggml.ggml_quantize_chunk(
        qtype,
        x.ctypes.data_as(_FLOATS),
        out.ctypes.data_as(ctypes.c_void_p),
        0,
        rows,
        n,
        None if qw is None else qw.ctypes.data_as(_FLOATS),
    )
    assert written == out.size
    return out.reshape(*x.shape[:-1], row_size)


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def assert_matches_c(x: np.ndarray, name: str, imatrix: np.ndarray | None, what: str) -> None:
    ours = formats.quantize(x, name, imatrix=imatrix)
    ref = ggml_quantize(x, name, imatrix)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape, what
    per = formats.get_format(name).bytes_per_block
    bad = (ours.reshape(-1, per) != ref.reshape(-1, per)).any(axis=1)
    assert not bad.any(), f"{name} {what}: {bad.sum()} of {bad.size} blocks differ from ggml"


def _cases(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261201)
    outliers = rng.standard_normal((4, n))
    outliers[:, ::37] *= 60
    cases = {
        "gaussian": rng.standard_normal((6, n)),
        "heavy_tailed": rng.standard_t(1.5, (6, n)),
        "zero": np.zeros((1, n)),
        "signed_zeros": np.where(rng.random((1, n)) < 0.5, -0.0, 0.0),
        "constant": np.repeat([[1.5], [-2.0], [1e-3], [-3e3]], n, axis=1),
        "outliers": outliers,
        "ties_half": rng.integers(-8, 8, (4, n)) * 0.5,
        "ties_int": rng.integers(-3, 4, (4, n)).astype(float),
        "magnitudes": rng.standard_normal((12, n)) * 10.0 ** rng.uniform(-6, 4, (12, 1)),
        "sub_block_magnitudes": rng.standard_normal((4, n))
        * np.repeat(10.0 ** rng.uniform(-6, 4, (4, n // 16)), 16, axis=1),
        "sparse": rng.standard_normal((4, n)) * (rng.random((4, n)) < 0.1),
        "sparse_signed_zeros": np.where(
            rng.random((6, n)) < 0.9,
            np.where(rng.random((6, n)) < 0.5, -0.0, 0.0),
            -np.abs(rng.standard_normal((6, n))),
        ),
        "positive": rng.uniform(2, 3, (2, n)),
        "negative": rng.uniform(-3, -2, (2, n)),
    }
    return {k: v.astype(np.float32) for k, v in cases.items()}


N = 512
CASES = _cases(N)


def _imatrices(n: int) -> dict[str, np.ndarray | None]:
    rng = np.random.default_rng(7)
    return {
        "none": None,
        "ones": np.ones(n, np.float32),
        "lognormal": rng.lognormal(0.0, 2.0, n).astype(np.float32),
        "with_zeros": (rng.lognormal(0.0, 1.0, n) * (rng.random(n) < 0.7)).astype(np.float32),
        "mostly_zero": (rng.lognormal(0.0, 3.0, n) * (rng.random(n) < 0.1)).astype(np.float32),
        "all_zero": np.zeros(n, np.float32),
    }


IMATRICES = _imatrices(N)


# -- bytes against llama.cpp ------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(IMATRICES))
@pytest.mark.parametrize("name", KNAMES)
def test_kquant_bytes_match_llama_cpp(name: str, kind: str) -> None:
    for case, x in CASES.items():
        assert_matches_c(x, name, IMATRICES[kind], f"{case}, imatrix {kind}")


@pytest.mark.parametrize("kind", sorted(k for k in IMATRICES if k != "none"))
@pytest.mark.parametrize("name", LEGACY)
def test_legacy_imatrix_bytes_match_llama_cpp(name: str, kind: str) -> None:
    for case, x in CASES.items():
        if case == "signed_zeros":
            continue  # without effect on the imatrix paths; see the next test for Q8_0
        assert_matches_c(x, name, IMATRICES[kind], f"{case}, imatrix {kind}")


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_plain_bytes_match_llama_cpp_except_signed_zeros(name: str) -> None:
    # quantlab follows gguf for a block whose extreme value or minimum is a zero of either sign
    # (see the legacy module docstring); every other block is llama.cpp's too.
    for case, x in CASES.items():
        if case not in ("signed_zeros", "sparse", "sparse_signed_zeros"):
            assert_matches_c(x, name, None, case)


def test_collapsed_range_in_make_qkx3_quants() -> None:
    # Found by a random search: values <= 0 with many signed zeros and weight only on a few of
    # them. The fitted min reaches max = -0.0 (the running max keeps x[0] = -0.0), the next
    # trial's inverse scale is -inf, and the reference's nearest_int turns inf/NaN into codes 0.
    x = np.zeros(32, np.float32)
    x[[1, 19, 21, 24, 31]] = [-0.6240858, -1.0453908, -0.05082993, -2.9745042, -0.8654976]
    x[[0, 2, 4, 6, 7, 11, 14, 15, 16, 20, 25, 26, 30]] = -0.0
    qw = np.zeros(32, np.float32)
    qw[[2, 11, 21, 27]] = [0.003608825, 0.26971045, 0.010410026, 9.047248]
    ref = ggml_quantize(x, "Q4_1", qw)
    assert ref[:2].view(np.float16)[0] == np.float16(-3.8e-06)  # the case really is hit
    for name in ("Q4_1", "Q5_1"):
        assert_matches_c(x, name, qw, "collapsed range")
    xk, qk = np.tile(x, 8), np.tile(qw, 8)
    for name in ("Q2_K", "Q4_K", "Q5_K"):
        assert_matches_c(xk, name, qk, "collapsed range")


def test_q8_0_ignores_the_imatrix() -> None:
    x = CASES["gaussian"]
    plain = formats.quantize(x, "Q8_0")
    assert np.array_equal(formats.quantize(x, "Q8_0", imatrix=IMATRICES["lognormal"]), plain)
    assert np.array_equal(ggml_quantize(x, "Q8_0", IMATRICES["lognormal"]), plain)


@pytest.mark.parametrize("name", (*KNAMES, "Q4_0", "Q5_1"))
@pytest.mark.parametrize("shape", [(256,), (2, 3, 512), (1, 1024)])
def test_nd_shapes(name: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    qw = rng.lognormal(size=shape[-1]).astype(np.float32)
    f = formats.get_format(name)
    for imatrix in (None, qw):
        if imatrix is None and name in LEGACY:
            continue
        data = formats.quantize(x, name, imatrix=imatrix)
        assert data.shape == (*shape[:-1], shape[-1] // f.block_size * f.bytes_per_block)
        ref = ggml_quantize(x.reshape(-1, shape[-1]), name, imatrix)
        assert np.array_equal(data.reshape(ref.shape), ref)
        assert formats.dequantize(data, name).shape == shape


def test_chunking_and_imatrix_tiling_across_rows(monkeypatch) -> None:
    # Chunks of 3 super-blocks over rows of 2: each chunk must pick the right imatrix columns.
    rng = np.random.default_rng(3)
    x = rng.standard_t(3, (5, 512)).astype(np.float32)
    qw = rng.lognormal(0, 2, 512).astype(np.float32)
    monkeypatch.setattr(kquants, "CHUNK_SUPERBLOCKS", 3)
    for name in KNAMES:
        assert np.array_equal(formats.quantize(x, name, imatrix=qw), ggml_quantize(x, name, qw))
        assert np.array_equal(formats.quantize(x, name), ggml_quantize(x, name))
    from quantlab.formats import legacy

    monkeypatch.setattr(legacy, "IMATRIX_CHUNK_VALUES", 1000)
    assert np.array_equal(formats.quantize(x, "Q4_1", imatrix=qw), ggml_quantize(x, "Q4_1", qw))


@settings(max_examples=25, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 2), st.sampled_from([256, 512])),
        elements=st.one_of(
            st.floats(-1e4, 1e4, width=32),
            st.integers(-4, 4).map(float),  # exact ties and repeated values
        ),
    ),
    use_imatrix=st.booleans(),
    name=st.sampled_from(KNAMES),
)
def test_hypothesis_round_trip(x: np.ndarray, use_imatrix: bool, name: str) -> None:
    qw = np.linspace(0.0, 3.0, x.shape[-1], dtype=np.float32) if use_imatrix else None
    data = formats.quantize(x, name, imatrix=qw)
    assert np.array_equal(data, ggml_quantize(x, name, qw))
    x_hat = formats.dequantize(data, name)
    assert bits_equal(x_hat, gguf_dequantize(data, GGMLQuantizationType[name]))
    # the decoded values stay within each super-block's range widened by its span
    xs = x.reshape(-1, 256).astype(np.float64)
    lo, hi = xs.min(axis=1, keepdims=True), xs.max(axis=1, keepdims=True)
    span = hi - lo + np.abs(xs).max(axis=1, keepdims=True)
    assert np.all(np.abs(x_hat.reshape(-1, 256) - xs) <= span + 1e-30)


# -- decoding against gguf --------------------------------------------------------------------
@pytest.mark.parametrize("name", KNAMES)
def test_dequantize_random_bytes_matches_gguf(name: str) -> None:
    f = formats.get_format(name)
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (200, f.bytes_per_block), dtype=np.uint8)
    start = 0
    for field, size in f.layout:  # finite random float16 d and dmin
        if field in ("d", "dmin"):
            vals = rng.standard_normal(200) * 10.0 ** rng.uniform(-6, 2, 200)
            data[:, start : start + 2] = vals.astype(np.float16).view(np.uint8).reshape(200, 2)
        start += size
    x_hat = formats.dequantize(data, name)
    assert x_hat.dtype == np.float32 and x_hat.shape == (200, 256)
    ref = gguf_dequantize(data, GGMLQuantizationType[name])
    assert bits_equal(x_hat, ref.reshape(x_hat.shape))
    assert bits_equal(formats.dequantize(data.reshape(-1), name), ref.reshape(-1))
    assert bits_equal(formats.dequantize(bytes(data[0]), name), ref[0])


@pytest.mark.parametrize("name", KNAMES)
def test_format_facts_match_gguf(name: str) -> None:
    f = formats.get_format(name)
    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType[name]]
    assert (f.block_size, f.bytes_per_block) == (block, type_size)
    assert formats.bits_per_weight(name) == 8 * type_size / block
    assert ggml.ggml_row_size(getattr(ggml, f"GGML_TYPE_{name}"), 256) == type_size
    table = formats.format_table(formats.names())
    assert name in list(table["format"]) and "Q8_0" in list(table["format"])
    assert list(formats.format_table()["format"]) == list(LEGACY)


# -- the building blocks ----------------------------------------------------------------------
def test_nearest_int_is_the_reference_bit_trick() -> None:
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49999976, 4194303.0, -7.5], np.float32)
    assert make_quants.nearest_int(v).tolist() == [0, 2, 2, 0, -2, -2, 3, 4194303, -8]
    rng = np.random.default_rng(1)
    w = (rng.standard_normal(10000) * 10.0 ** rng.uniform(-3, 6, 10000)).astype(np.float32)
    w = w[np.abs(w) <= 4194303]
    assert np.array_equal(make_quants.nearest_int(w), np.rint(w).astype(np.int32))


def test_ordered_sum_adds_in_order() -> None:
    rng = np.random.default_rng(2)
    t = (rng.standard_normal((32, 999)) * 10.0 ** rng.uniform(-4, 4, (32, 999))).astype(np.float32)
    acc = np.zeros(999, np.float32)
    for row in t:
        acc = acc + row
    assert bits_equal(make_quants.ordered_sum(t), acc)
    assert not bits_equal(np.ascontiguousarray(t.T).sum(axis=1), acc)  # pairwise differs
    for col in range(20):  # one column alone is a contiguous vector: still in order
        one = np.ascontiguousarray(t[:, col : col + 1])
        assert bits_equal(make_quants.ordered_sum(one), acc[col : col + 1])
        assert bits_equal(make_quants.ordered_sum(one, from_zero=False), acc[col : col + 1])
    neg_zero = np.full((3, 2), -0.0, np.float32)
    assert np.signbit(make_quants.ordered_sum(neg_zero, from_zero=False)).all()
    assert not np.signbit(make_quants.ordered_sum(neg_zero)).any()


def test_dot_sum_is_the_ordered_sum_of_rounded_products() -> None:
    # Σ a b (and Σ (a b) c) as the reference's loop: each product rounded to float32, then added
    # in order; whether einsum or the product-and-reduce fallback does it
    rng = np.random.default_rng(3)
    for n, nb in ((16, 999), (32, 64), (16, 5), (8, 1)):
        a, b, c = (
            (rng.standard_normal((n, nb)) * 10.0 ** rng.uniform(-3, 3, (n, nb))).astype(np.float32)
            for _ in range(3)
        )
        two = np.zeros(nb, np.float32)
        three = np.zeros(nb, np.float32)
        for i in range(n):
            two = two + a[i] * b[i]
            three = three + (a[i] * b[i]) * c[i]
        assert bits_equal(make_quants.dot_sum(a, b), two), (n, nb)
        assert bits_equal(make_quants.dot_sum(a, b, c), three), (n, nb)
        out = np.empty(nb, np.float32)
        assert make_quants.dot_sum(a, b, out=out) is out and bits_equal(out, two)


def test_make_qx_quants_against_a_plain_loop() -> None:
    # One block by hand: the 19 trial scales, best (Σwxl)²/Σwl², as the docstring states.
    rng = np.random.default_rng(4)
    x = rng.standard_normal(16).astype(np.float32)
    d, codes = make_quants.make_qx_quants(x[:, None], 4)
    m = x[np.argmax(np.abs(x))]
    best, best_q = -1.0, None
    for k in [0, *range(-9, 0), *range(1, 10)]:
        q = np.clip(np.rint(-(4 + 0.1 * k) / m * x), -4, 3)
        w = x.astype(np.float64) ** 2
        sxl, sl2 = np.sum(w * x * q), np.sum(w * q * q)
        if sl2 > 0 and sxl * sxl / sl2 > best * (1 + 1e-6):
            best, best_q, best_d = sxl * sxl / sl2, q, sxl / sl2
    assert np.array_equal(codes[:, 0].astype(int) - 4, best_q)
    assert np.isclose(d[0], best_d, rtol=1e-5)


def _make_q3_loop(x: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """make_q3_quants of one block as the reference's scalar float32 loop (rmse on, nmax 4)."""
    f = np.float32
    x = [f(v) for v in x]
    amax, mx = f(0), f(0)
    for v in x:  # the first value of strictly largest magnitude
        if abs(v) > amax:
            amax, mx = abs(v), v
    if amax < f(1e-15):
        return f(0), np.zeros(len(x), np.uint8)
    iscale = f(-4) / mx
    lv = [f(min(max(np.rint(iscale * v), -4), 3)) for v in x]
    sumlx, suml2 = f(0), f(0)
    for v, q in zip(x, lv, strict=True):
        w = v * v
        sumlx += w * v * q
        suml2 += w * q * q
    for _ in range(5):
        changed = 0
        for i, v in enumerate(x):
            w = v * v
            slx = sumlx - w * v * lv[i]
            if slx > 0:
                sl2 = suml2 - w * lv[i] * lv[i]
                new = f(min(max(np.rint(v * sl2 / slx), -4), 3))
                if new != lv[i]:
                    slx += w * v * new
                    sl2 += w * new * new
                    if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                        lv[i], sumlx, suml2 = new, slx, sl2
                        changed += 1
        if not changed:
            break
    return sumlx / suml2, np.array(lv, np.float32).astype(np.int64).astype(np.uint8) + 4


def test_make_q3_quants_and_pooled_scales_against_the_reference_loop() -> None:
    # The vectorized descent (rounds of events, rows pooled across parts) against the scalar
    # loop it reproduces, on blocks that move a lot: Gaussian, heavy-tailed, ties and a zero.
    rng = np.random.default_rng(12)
    blocks = [rng.standard_normal((16, 120)), rng.standard_t(2, (16, 120)),
              rng.integers(-3, 4, (16, 40)).astype(float), np.zeros((16, 1))]  # fmt: skip
    x = np.concatenate(blocks, axis=1).astype(np.float32)
    x[:, -2] = [2.0, -2.0] * 8  # the extreme at both signs: the first one counts
    ref = [_make_q3_loop(col) for col in x.T]
    scale, codes = make_quants.make_q3_quants(x, 4)
    assert bits_equal(scale, [r[0] for r in ref])
    assert np.array_equal(codes, np.stack([r[1] for r in ref], axis=1))
    # the same scales from parts of unequal sizes, with and without their rows
    cuts = [0, 7, 100, 230, x.shape[1]]
    parts = [np.ascontiguousarray(x[:, a:b]) for a, b in itertools.pairwise(cuts)]
    for rows in (None, True):
        pairs = [(p, np.ascontiguousarray(p.T) if rows else None) for p in parts]
        pooled, amax = make_quants.make_q3_scales(pairs, 4)
        assert bits_equal(pooled, scale)
        assert np.array_equal(amax, np.abs(x).max(axis=0))  # (a zero block's may be -0.0)


def test_make_qkx_quants_is_scale_invariant() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((32, 50)).astype(np.float32)
    w = np.abs(x) + 0.5
    s1, m1, q1 = make_quants.make_qkx_quants(x, 15, w, -1.0, 0.1, 20)
    s2, m2, q2 = make_quants.make_qkx_quants(x * np.float32(4), 15, w, -1.0, 0.1, 20)
    assert np.array_equal(q1, q2)  # a power of two scales every float32 step exactly
    assert np.allclose(s2, 4 * s1) and np.allclose(m2, 4 * m1)
    assert np.all(m1 >= 0)


def test_packing_round_trips_and_layout() -> None:
    rng = np.random.default_rng(8)
    s, m = rng.integers(0, 64, (10, 8)), rng.integers(0, 64, (10, 8))
    b = packing.pack_scales_k4(s, m)
    assert b.shape == (10, 12)
    back = packing.unpack_scales_k4(b)
    assert np.array_equal(back[0], s) and np.array_equal(back[1], m)
    # llama.cpp's get_scale_min_k4, by hand, for j = 5
    j = 5
    assert np.array_equal((b[:, j + 4] & 0xF) | ((b[:, j - 4] >> 6) << 4), s[:, j])
    assert np.array_equal((b[:, j + 4] >> 4) | ((b[:, j] >> 6) << 4), m[:, j])
    c = rng.integers(0, 64, (10, 16))
    b3 = packing.pack_scales_q3k(c)
    assert np.array_equal(packing.unpack_scales_q3k(b3), c)
    assert np.array_equal(((b3[:, 8 + 13 % 4] >> (2 * (13 // 4))) & 3), c[:, 13] >> 4)
    planes = rng.integers(0, 4, (3, 4, 32))
    assert np.array_equal(packing.unpack_planes(packing.pack_planes(planes, 2), 2, 4), planes)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", KNAMES)
def test_bad_input_kquants(name: str) -> None:
    with pytest.raises(ValueError, match=r"last axis of x \(length 320\).*256"):
        formats.quantize(np.zeros(320), name)
    with pytest.raises(ValueError, match="last axis of x"):
        formats.quantize(np.zeros((256, 2)), name)
    x = np.zeros((2, 256))
    x[1, 7] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        formats.quantize(x, name)
    good = np.zeros((2, 256))
    for bad, match in [
        (-np.ones(256), "imatrix must be non-negative"),
        (np.full(256, np.nan), "imatrix contains NaN"),
        (np.ones(255), r"imatrix must be 1-D .* \(length 256\), got shape \(255,\)"),
        (np.ones((2, 256)), r"imatrix must be 1-D"),
        (np.ones(512), r"imatrix must be 1-D"),
    ]:
        with pytest.raises(ValueError, match=match):
            formats.quantize(good, name, imatrix=bad)
    with pytest.raises(TypeError, match="imatrix must be real numbers"):
        formats.quantize(good, name, imatrix=np.array(["a"] * 256))
    with pytest.raises(ValueError, match=r"w: quantlab's weighted methods .* imatrix="):
        formats.quantize(good, name, w=np.ones((2, 256)))
    with pytest.raises(ValueError, match="float16 range"):
        formats.quantize(np.r_[1e9, np.zeros(255)].astype(np.float32), name)
    with pytest.raises(ValueError, match=r"data \(length 5\)"):
        formats.dequantize(np.zeros(5, np.uint8), name)


@pytest.mark.parametrize("name", LEGACY)
def test_bad_imatrix_legacy(name: str) -> None:
    x = np.zeros((2, 64))
    with pytest.raises(ValueError, match="imatrix must be non-negative"):
        formats.quantize(x, name, imatrix=-np.ones(64))
    with pytest.raises(ValueError, match=r"imatrix must be 1-D .*length 64"):
        formats.quantize(x, name, imatrix=np.ones(32))
    with pytest.raises(ValueError, match="w and imatrix cannot be combined"):
        formats.quantize(x, name, w=np.ones((2, 64)), imatrix=np.ones(64))


def test_issue_10_float16_overflow_is_rejected() -> None:
    # Issue 10, item 1: these stored inf (decoding to nan/inf) before.
    with pytest.raises(ValueError, match=r"d = 7\.874e\+04 exceeds the float16 range"):
        formats.quantize(np.r_[1e7, np.zeros(31)].astype(np.float32), "Q8_0")
    with pytest.raises(ValueError, match="float16 range"):
        formats.quantize(np.r_[6e5, np.zeros(31)].astype(np.float32), "Q4_0")
    for name in ("Q4_1", "Q5_1"):
        with pytest.raises(ValueError, match=r"m = 7e\+04 exceeds the float16 range"):
            formats.quantize(np.r_[-7e4, np.zeros(31)].astype(np.float32), name)
    # just inside the range is stored and decodes finite
    x = np.r_[65504.0, np.zeros(31)].astype(np.float32)
    assert np.all(np.isfinite(formats.dequantize(formats.quantize(x, "Q4_1"), "Q4_1")))


def test_issue_10_round_half_away_and_ragged_input() -> None:
    assert formats.round_half_away([127.5, -127.5]).tolist() == [128, -128]  # item 9
    assert formats.round_half_away([0.49999997, 2.5, -2.5]).tolist() == [0, 3, -3]
    with pytest.raises(ValueError, match="x must be an array of numbers"):  # item 10
        formats.quantize([[1.0] * 32, [1.0] * 31], "Q4_0")
    with pytest.raises(ValueError, match="x must be an array of numbers"):
        formats.quantize([[1.0] * 256, [2.0]], "Q4_K")


def test_registry_dispatch_and_errors() -> None:
    from dataclasses import dataclass

    from quantlab.formats import registry

    @dataclass(frozen=True)
    class Doubler:  # a toy format: one byte per value
        name: str = "TOY_8"
        bits: int = 8
        use_min: bool = False
        block_size: int = 4
        bytes_per_block: int = 4
        bits_per_weight: float = 8.0

        def quantize(self, x, w=None, **options):
            return (np.asarray(x) * 2).astype(np.uint8)

        def dequantize(self, data):
            return np.asarray(data, np.float32) / 2

    toy = Doubler()
    registry.register(toy)
    try:
        assert formats.get_format("toy_8") is toy
        assert formats.quantize([1, 2, 3, 4], "TOY_8").tolist() == [2, 4, 6, 8]
        assert formats.dequantize(np.array([2], np.uint8), "toy_8").tolist() == [1.0]
        assert formats.bits_per_weight("TOY_8") == 8.0
        with pytest.raises(ValueError, match="already registered"):
            registry.register(Doubler(bits=7))
    finally:
        del registry.REGISTRY["TOY_8"]
    with pytest.raises(ValueError, match="fmt must be one of"):
        formats.get_format("TOY_8")


def test_inputs_not_modified() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 256)).astype(np.float32)
    qw = rng.lognormal(size=256).astype(np.float32)
    x0, qw0 = x.copy(), qw.copy()
    for name in (*KNAMES, "Q4_0", "Q4_1"):
        formats.quantize(x, name, imatrix=qw)
        formats.quantize(x, name)
    assert bits_equal(x, x0) and bits_equal(qw, qw0)
    # one block, and a block count that is not a multiple of the legacy formats' tile
    for shape in ((32,), (3, 96), (129, 32)):
        y = rng.standard_normal(shape).astype(np.float32)
        y0 = y.copy()
        for name in LEGACY:
            formats.quantize(y, name)
        assert bits_equal(y, y0), f"quantize modified an input of shape {shape}"
