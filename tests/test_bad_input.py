"""Bad and degenerate input for every public function of the fixed API (SPEC, "Bad input").

Bad input raises a ValueError or TypeError whose message names the argument. Degenerate but legal
input (a constant block, an all-zero block, all-equal codes in a refit, all-zero weights) gets
the correct finite answer, never NaN, and no RuntimeWarning (those tests turn warnings into
errors).
"""

from __future__ import annotations

import numpy as np
import pytest

import quantlab as ql

X = np.array([0.5, -1.25, 2.0, 3.5])
W = np.array([1.0, 0.5, 2.0, 0.25])
L = np.array([1, 0, 3, 2])  # codes of the min convention
QS = np.array([1, -2, 3, -4])  # signed codes
QZ = ql.Quantizer(4)
QM = ql.Quantizer(4, use_min=True)
NAN, INF = np.nan, np.inf

#: Functions of x (every other argument valid): label -> f(x).
X_FUNCS = {
    "asymmetric_quantization": lambda x: ql.asymmetric_quantization(x, n_bits=4),
    "symmetric_quantization": lambda x: ql.symmetric_quantization(x, n_bits=4),
    "Quantizer.quantize": QZ.quantize,
    "Quantizer(use_min).quantize": QM.quantize,
    "Quantizer.refit": lambda x: QM.refit(x, L),
    "Quantizer.error": lambda x: QM.error(x, L, 0.5, -1.0),
    "Quantizer.search": QZ.search,
    "Quantizer(use_min).search": QM.search,
    "Quantizer.refine": QM.refine,
    "Quantizer.optimum": QZ.optimum,
    **{f"Quantizer.fit[{m}]": (lambda x, m=m: QZ.fit(x, method=m)) for m in ql.METHODS},
    "lstsq_scale": lambda x: ql.lstsq_scale(x, QS),
    "lstsq_scale_min": lambda x: ql.lstsq_scale_min(x, L),
    "mse": lambda x: ql.mse(x, X),
    "sqnr_db": lambda x: ql.sqnr_db(x, X),
    "max_error": lambda x: ql.max_error(x, X),
}
#: The same for the argument x_hat of the metrics.
X_HAT_FUNCS = {
    "mse": lambda xh: ql.mse(X, xh),
    "sqnr_db": lambda xh: ql.sqnr_db(X, xh),
    "max_error": lambda xh: ql.max_error(X, xh),
}
#: Functions of the weights w.
W_FUNCS = {
    "Quantizer.refit": lambda w: QM.refit(X, L, w),
    "Quantizer(symmetric).refit": lambda w: QZ.refit(X, QS, w),
    "Quantizer.error": lambda w: QM.error(X, L, 0.5, -1.0, w),
    "Quantizer.search": lambda w: QZ.search(X, w),
    "Quantizer(use_min).search": lambda w: QM.search(X, w),
    "Quantizer.refine": lambda w: QM.refine(X, w),
    "Quantizer.optimum": lambda w: QZ.optimum(X, w),
    **{f"Quantizer.fit[{m}]": (lambda w, m=m: QZ.fit(X, w, method=m)) for m in ql.METHODS},
    "lstsq_scale": lambda w: ql.lstsq_scale(X, QS, w),
    "lstsq_scale_min": lambda w: ql.lstsq_scale_min(X, L, w),
    "mse": lambda w: ql.mse(X, X[::-1], w),
}
#: Functions of the codes q.
Q_FUNCS = {
    "asymmetric_dequantization": lambda q: ql.asymmetric_dequantization(q, 0.5, 1),
    "symmetric_dequantization": lambda q: ql.symmetric_dequantization(q, 0.5),
    "Quantizer.dequantize": lambda q: QZ.dequantize(q, 0.5),
    "Quantizer(use_min).dequantize": lambda q: QM.dequantize(q, 0.5, -1.0),
    "Quantizer.refit": lambda q: QM.refit(X, q),
    "Quantizer.error": lambda q: QM.error(X, q, 0.5, -1.0),
    "lstsq_scale": lambda q: ql.lstsq_scale(X, q),
    "lstsq_scale_min": lambda q: ql.lstsq_scale_min(X, q),
}
#: Functions that need q to have the shape of x.
Q_SHAPED = ["Quantizer.refit", "Quantizer.error", "lstsq_scale", "lstsq_scale_min"]

#: Bad arrays: label -> (value, exception, what the message says besides the name).
BAD_ARRAYS = {
    "nan": ([0.5, NAN, 2.0, 3.5], ValueError, "NaN"),
    "inf": ([0.5, INF, 2.0, 3.5], ValueError, "infinity"),
    "-inf": (np.array([-INF, 1.0, 2.0, 3.5]), ValueError, "infinity"),
    "empty list": ([], ValueError, "empty"),
    "empty 2-D": (np.empty((0, 4)), ValueError, "empty"),
    "strings": (["a", "b", "c", "d"], TypeError, "real numbers"),
    "a string": ("abcd", TypeError, "real numbers"),
    "None in a list": ([1.0, None, 2.0, 3.0], TypeError, "real numbers"),
    "complex": (np.array([1, 2j, 3, 4]), TypeError, "real numbers"),
    "ragged": ([[1.0, 2.0], [3.0]], ValueError, "array of numbers"),
    "too large": ([0.5, 1e300, 2.0, 3.5], ValueError, "magnitude"),
}


def _raises(exc, name: str, problem: str = ""):
    """pytest.raises matching the argument's name as a word, and the problem if given."""
    pattern = rf"(?s)(?=.*\b{name}\b)(?=.*{problem})"
    return pytest.raises(exc, match=pattern)


# -- NaN, infinity, empty, non-numeric arrays ---------------------------------------------------
BAD_WEIGHTS = {
    **BAD_ARRAYS,
    "negative": ([1.0, -0.5, 1.0, 1.0], ValueError, "non-negative"),
    "too short": ([1.0, 1.0, 1.0], ValueError, "shape"),
    "column": (np.ones((4, 1)), ValueError, "shape"),
    "2-D": (np.ones((2, 2)), ValueError, "shape"),
    "scalar": (1.0, ValueError, "shape"),
}
BAD_CODES = {
    "nan": ([1, NAN, 2, 3], ValueError, "NaN"),
    "inf": ([1, INF, 2, 3], ValueError, "infinity"),
    "fractional": ([1.0, 0.5, 2.0, 3.0], ValueError, "integer"),
    "beyond 2**53": ([1.0, 1e30, 2.0, 3.0], ValueError, "2\\*\\*53"),
    "empty": ([], ValueError, "empty"),
    "empty int": (np.array([], dtype=np.int64), ValueError, "empty"),
    "strings": (["1", "2", "3", "4"], TypeError, "real numbers"),
    "complex": (np.array([1, 2j, 3, 4]), TypeError, "real numbers"),
    "ragged": ([[1, 2], [3]], ValueError, "array of numbers"),
}
#: argument name -> (functions of it, its bad values)
ARGUMENTS = {
    "x": (X_FUNCS, BAD_ARRAYS),
    "x_hat": (X_HAT_FUNCS, BAD_ARRAYS),
    "w": (W_FUNCS, BAD_WEIGHTS),
    "q": (Q_FUNCS, BAD_CODES),
}
BAD_ARRAY_CASES = [
    pytest.param(arg, func, bad, id=f"{arg}-{func}-{bad}")
    for arg, (funcs, bads) in ARGUMENTS.items()
    for func in funcs
    for bad in bads
]


@pytest.mark.parametrize(("arg", "func", "bad"), BAD_ARRAY_CASES)
def test_bad_array(arg, func, bad):
    """NaN, infinity, empty, non-numeric, ragged, too large; negative or misshapen weights."""
    funcs, bads = ARGUMENTS[arg]
    value, exc, problem = bads[bad]
    with _raises(exc, arg, problem):
        funcs[func](value)


@pytest.mark.parametrize("q", [[1, 0, 3], [[1, 0], [3, 2]], [[1, 0, 3, 2]]])
@pytest.mark.parametrize("func", Q_SHAPED)
def test_codes_of_the_wrong_shape(func, q):
    with _raises(ValueError, "q", "shape"):
        Q_FUNCS[func](q)


# -- n_bits -------------------------------------------------------------------------------------
N_BITS_FUNCS = {
    "asymmetric_quantization": (lambda n: ql.asymmetric_quantization(X, n_bits=n), 1),
    "symmetric_quantization": (lambda n: ql.symmetric_quantization(X, n_bits=n), 2),
    "Quantizer": (lambda n: ql.Quantizer(n), 2),
    "Quantizer(use_min)": (lambda n: ql.Quantizer(n, use_min=True), 2),
}


@pytest.mark.parametrize("func", N_BITS_FUNCS)
def test_n_bits_out_of_range(func):
    f, lowest = N_BITS_FUNCS[func]
    for n in (lowest - 1, -1, 17, 64, np.int64(0)):
        with _raises(ValueError, "n_bits", f"between {lowest} and 16"):
            f(n)
    for n in (lowest, 16, np.int64(8)):  # the ends of the range and NumPy integers are fine
        f(n)


@pytest.mark.parametrize("n", [4.0, 4.5, "4", None, True, np.float64(4)])
@pytest.mark.parametrize("func", N_BITS_FUNCS)
def test_n_bits_not_an_integer(func, n):
    with _raises(TypeError, "n_bits", "integer"):
        N_BITS_FUNCS[func][0](n)


# -- range and parameter arguments --------------------------------------------------------------
@pytest.mark.parametrize(
    ("alpha", "beta"),
    [(1.0, 2.0), (1.0, 1.0), (-2.0, None), (None, 3.6), ([2.0, 1.0], [1.0, 1.0])],
)
def test_alpha_not_above_beta(alpha, beta):
    kw = {"block_size": 2} if np.ndim(alpha) else {}
    with _raises(ValueError, "alpha", r"\bbeta\b"):
        ql.asymmetric_quantization(X, alpha, beta, **kw)


PARAM_CASES = {
    # label: (call, exception, argument name, problem)
    "asym alpha nan": (lambda: ql.asymmetric_quantization(X, NAN, -2.0), ValueError, "alpha", ""),
    "asym beta inf": (lambda: ql.asymmetric_quantization(X, 4.0, -INF), ValueError, "beta", ""),
    "asym alpha str": (lambda: ql.asymmetric_quantization(X, "4"), TypeError, "alpha", ""),
    "asym alpha shape": (
        lambda: ql.asymmetric_quantization(X, [4.0, 5.0], -2.0),
        ValueError,
        "alpha",
        "shape",
    ),
    "asym beta shape": (
        lambda: ql.asymmetric_quantization(X, 4.0, [[-2.0]], channel_axis=0),
        ValueError,
        "beta",
        "shape",
    ),
    "asym zero-point beyond int64": (
        lambda: ql.asymmetric_quantization(
            [1e6, np.nextafter(1e6, 2e6)], n_bits=16, include_zero=False
        ),
        ValueError,
        "zero-point Z",
        "2\\*\\*40",
    ),
    "sym alpha 0": (lambda: ql.symmetric_quantization(X, 0.0), ValueError, "alpha", "positive"),
    "sym alpha < 0": (lambda: ql.symmetric_quantization(X, -1.0), ValueError, "alpha", "positive"),
    "sym alpha nan": (lambda: ql.symmetric_quantization(X, NAN), ValueError, "alpha", "NaN"),
    "sym alpha shape": (
        lambda: ql.symmetric_quantization(X, [1.0, 2.0, 3.0], block_size=2),
        ValueError,
        "alpha",
        "shape",
    ),
    "asym deq S 0": (
        lambda: ql.asymmetric_dequantization(L, 0.0, 1),
        ValueError,
        "S",
        "positive",
    ),
    "asym deq S nan": (lambda: ql.asymmetric_dequantization(L, NAN, 1), ValueError, "S", "NaN"),
    "asym deq S shape": (
        lambda: ql.asymmetric_dequantization(L, [1.0, 2.0], 1),
        ValueError,
        "S",
        "shape",
    ),
    "asym deq Z frac": (
        lambda: ql.asymmetric_dequantization(L, 1.0, 0.5),
        ValueError,
        "Z",
        "integer",
    ),
    "asym deq Z nan": (lambda: ql.asymmetric_dequantization(L, 1.0, NAN), ValueError, "Z", "NaN"),
    "asym deq Z shape": (
        lambda: ql.asymmetric_dequantization(L, 1.0, [1, 2, 3], block_size=2),
        ValueError,
        "Z",
        "shape",
    ),
    "sym deq S < 0": (lambda: ql.symmetric_dequantization(QS, -1.0), ValueError, "S", "positive"),
    "sym deq S str": (lambda: ql.symmetric_dequantization(QS, "1"), TypeError, "S", ""),
    "deq scale nan": (lambda: QZ.dequantize(QS, NAN), ValueError, "scale", "NaN"),
    "deq scale shape": (lambda: QZ.dequantize(QS, [1.0, 2.0]), ValueError, "scale", "shape"),
    "deq min missing": (lambda: QM.dequantize(L, 1.0), ValueError, "min", "required"),
    "deq min given": (lambda: QZ.dequantize(QS, 1.0, 0.0), ValueError, "min", "None"),
    "deq min inf": (lambda: QM.dequantize(L, 1.0, -INF), ValueError, "min", "infinity"),
    "quantize offset nan": (lambda: QZ.quantize(X, NAN), ValueError, "offset", "finite"),
    "quantize offset str": (lambda: QZ.quantize(X, "0.1"), TypeError, "offset", ""),
    "quantize offset None": (lambda: QZ.quantize(X, None), TypeError, "offset", ""),
    "quantize offset too negative": (
        lambda: QM.quantize(X, -10.0),
        ValueError,
        "offset",
        "negative",
    ),
    "search offsets empty": (lambda: QZ.search(X, offsets=[]), ValueError, "offsets", "empty"),
    "search offsets nan": (lambda: QZ.search(X, offsets=[0.0, NAN]), ValueError, "offsets", ""),
    "search offsets str": (lambda: QZ.search(X, offsets="0"), TypeError, "offsets", ""),
    "search offsets all too negative": (
        lambda: QM.search(X, offsets=[-2.0, -1.5], relative=True),
        ValueError,
        "offsets",
        "negative",
    ),
    "refine max_iter 0": (lambda: QZ.refine(X, max_iter=0), ValueError, "max_iter", ""),
    "refine max_iter float": (lambda: QZ.refine(X, max_iter=2.5), ValueError, "max_iter", ""),
    "refine max_iter str": (lambda: QZ.refine(X, max_iter="3"), ValueError, "max_iter", ""),
    "optimum exact": (lambda: QM.optimum(X, exact="yes"), TypeError, "exact", ""),
    "fit method": (lambda: QZ.fit(X, method="best"), ValueError, "method", "one of"),
    "fit unknown keyword": (
        lambda: QZ.fit(X, method="round", offsets=[0.0]),
        TypeError,
        "offsets",
        "",
    ),
    "fit keyword of another method": (
        lambda: QZ.fit(X, method="search", max_iter=3),
        TypeError,
        "max_iter",
        "",
    ),
    "symmetric full_range str": (
        lambda: ql.symmetric_quantization(X, full_range="no"),
        TypeError,
        "full_range",
        "True or False",
    ),
    "search relative None": (
        lambda: QZ.search(X, relative=None),
        TypeError,
        "relative",
        "True or False",
    ),
    "Quantizer use_min str": (lambda: ql.Quantizer(4, "yes"), TypeError, "use_min", ""),
    "Quantizer use_min int": (lambda: ql.Quantizer(4, 1), TypeError, "use_min", ""),
    "Quantizer both groupings": (
        lambda: ql.Quantizer(4, channel_axis=0, block_size=2),
        ValueError,
        "channel_axis",
        "block_size",
    ),
    "Quantizer block_size 0": (
        lambda: ql.Quantizer(4, block_size=0),
        ValueError,
        "block_size",
        "positive",
    ),
    "Quantizer block_size float": (
        lambda: ql.Quantizer(4, block_size=2.0),
        TypeError,
        "block_size",
        "integer",
    ),
    "Quantizer channel_axis str": (
        lambda: ql.Quantizer(4, channel_axis="0"),
        TypeError,
        "channel_axis",
        "integer",
    ),
    "block_size not dividing": (
        lambda: ql.Quantizer(4, block_size=3).search(X),
        ValueError,
        "block_size",
        "multiple",
    ),
    "channel_axis out of range": (
        lambda: ql.symmetric_quantization(X, channel_axis=1),
        ValueError,
        "channel_axis",
        "out of range",
    ),
    "mse x_hat shape": (lambda: ql.mse(X, X[:3]), ValueError, "x_hat", "shape"),
    "sqnr x_hat shape": (lambda: ql.sqnr_db(X, X[None]), ValueError, "x_hat", "shape"),
    "max_error x_hat shape": (lambda: ql.max_error(X, 1.0), ValueError, "x_hat", "shape"),
}


@pytest.mark.parametrize("case", PARAM_CASES)
def test_bad_parameter(case):
    call, exc, name, problem = PARAM_CASES[case]
    with _raises(exc, name, problem):
        call()


def test_numpy_scalars_are_legal_arguments():
    """NumPy integers and booleans are as good as Python ones."""
    assert QZ.refine(X, max_iter=np.int64(1)).n_iter == 1
    assert ql.Quantizer(np.int32(4), np.bool_(True)).use_min is True
    q, _ = ql.symmetric_quantization(X, n_bits=np.uint8(4), full_range=np.bool_(True))
    assert q.min() >= -8 and q.max() <= 7


def test_input_validated_before_any_work():
    """The input x is checked even by methods that ignore w (round) and before grouping."""
    with _raises(ValueError, "w", "non-negative"):
        QZ.fit(X, [-1.0, 1.0, 1.0, 1.0], method="round")
    with _raises(ValueError, "x", "NaN"):
        ql.Quantizer(4, block_size=3).quantize([NAN, 1.0, 2.0])


# -- degenerate but legal input -----------------------------------------------------------------
QUANTIZERS = [ql.Quantizer(n, m) for n in (2, 4, 8) for m in (False, True)]
CONSTANTS = [2.5, -0.1, 1e-30, -7e20, 0.1]


def _all_fits(qz: ql.Quantizer, x, w=None) -> dict[str, ql.QuantResult]:
    methods = [m for m in ql.METHODS if not (qz.use_min and m == "optimum")]
    return {m: qz.fit(x, w, method=m) for m in methods}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("c", CONSTANTS)
def test_constant_block_uniform(c):
    x = np.full(6, c)
    for n in (1, 2, 8):
        q, S, Z = ql.asymmetric_quantization(x, n_bits=n)
        # The range [min(c, 0), max(c, 0)] includes 0: x lands on the end code, 0 on Z.
        assert S > 0 and np.all(q == q[0]) and q[0] in (0, 2**n - 1)
        np.testing.assert_allclose(ql.asymmetric_dequantization(q, S, Z), x, rtol=1e-15)
    for n in (2, 8):
        q, S = ql.symmetric_quantization(x, n_bits=n)
        np.testing.assert_allclose(ql.symmetric_dequantization(q, S), x, rtol=1e-15)
        # Full range keeps S = |c| / (2**(n-1) - 1): c lands on the end code, exactly.
        q, S = ql.symmetric_quantization(x, n_bits=n, full_range=True)
        np.testing.assert_allclose(S, abs(c) / (2 ** (n - 1) - 1), rtol=1e-15)
        np.testing.assert_allclose(ql.symmetric_dequantization(q, S), x, rtol=1e-15)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("c", CONSTANTS)
@pytest.mark.parametrize("qz", QUANTIZERS, ids=repr)
def test_constant_block_quantizer(qz, c):
    x = np.full(5, c)
    q, scale, minimum = qz.quantize(x)
    x_hat = qz.dequantize(q, scale, minimum)
    np.testing.assert_array_equal(x_hat, x)  # the rounding path reproduces a constant exactly
    if qz.use_min:
        assert scale == 0 and minimum == c and np.all(q == 0)
    else:  # m = c lands on the code -2**(n-1)
        assert np.all(q == -(2 ** (qz.n_bits - 1))) and scale == c / -(2 ** (qz.n_bits - 1))
    for w in (None, np.array([0.3, 2.0, 0.0, 1.0, 5.0])):
        for method, r in _all_fits(qz, x, w).items():
            np.testing.assert_allclose(r.x_hat, x, rtol=4e-16, err_msg=method)
            assert np.isfinite(r.scale) and r.error <= 1e-30 * c * c, method
            if qz.use_min:  # the singular refit returns the mean: exact for a constant
                np.testing.assert_array_equal(r.x_hat, x, err_msg=method)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("qz", QUANTIZERS, ids=repr)
def test_all_zero_block(qz):
    x = np.zeros(4)
    q, scale, minimum = qz.quantize(x)
    np.testing.assert_array_equal(q, 0)
    np.testing.assert_array_equal(qz.dequantize(q, scale, minimum), x)
    for w in (None, W, np.zeros(4)):
        for method, r in _all_fits(qz, x, w).items():
            np.testing.assert_array_equal(r.x_hat, x, err_msg=method)
            assert r.error == 0 and np.isfinite(r.scale), method
            assert r.min is None or r.min == 0
    s, m = qz.refit(x, q)
    assert s == 0 and (m is None or m == 0)


@pytest.mark.filterwarnings("error")
def test_all_zero_block_uniform_and_metrics():
    x = np.zeros(4)
    q, S, Z = ql.asymmetric_quantization(x, n_bits=4)
    assert (S, Z) == (1.0, 0) and np.all(q == 0)
    np.testing.assert_array_equal(ql.asymmetric_dequantization(q, S, Z), x)
    q, S = ql.symmetric_quantization(x, n_bits=4, full_range=True)
    assert S == 1.0 and np.all(q == 0)
    np.testing.assert_array_equal(ql.symmetric_dequantization(q, S), x)
    assert ql.lstsq_scale(x, QS) == 0
    assert ql.lstsq_scale_min(x, L) == (0, 0)
    assert ql.mse(x, x) == 0 and ql.max_error(x, x) == 0
    assert ql.sqnr_db(x, x) == np.inf  # no noise at all
    assert ql.sqnr_db(x, X) == -np.inf  # noise on no signal
    assert ql.sqnr_db(X, X) == np.inf


@pytest.mark.filterwarnings("error")
def test_per_block_degenerate_blocks():
    """An all-zero block and a constant block next to a regular one (per-block parameters)."""
    x = np.array([[0.0, 0.0, 1.5, 1.5, -2.0, 3.0]])
    for qz in (ql.Quantizer(4, block_size=2), ql.Quantizer(4, True, block_size=2)):
        for method, r in _all_fits(qz, x).items():
            np.testing.assert_allclose(r.x_hat[0, :4], x[0, :4], rtol=4e-16, err_msg=method)
            assert np.all(np.isfinite(r.scale)) and r.error.shape == (1, 3)
            assert r.error[0, 0] == 0 and r.error[0, 1] <= 1e-30
    q, S, Z = ql.asymmetric_quantization(x, n_bits=4, block_size=2)
    np.testing.assert_allclose(ql.asymmetric_dequantization(q, S, Z, block_size=2), x, atol=0.2)
    assert S[0, 0] == 1.0 and Z[0, 0] == 0


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("k", [0, 1, 7, 15])
def test_refit_all_equal_codes(k):
    """All codes equal: the normal equations of (scale, min) are singular."""
    codes = np.full(4, k)
    scale, minimum = QM.refit(X, codes)
    assert scale == 0
    np.testing.assert_allclose(minimum, X.mean(), rtol=1e-15)  # the best constant
    scale, minimum = ql.lstsq_scale_min(X, codes, W)
    assert scale == 0
    np.testing.assert_allclose(minimum, np.sum(W * X) / np.sum(W), rtol=1e-15)
    # Only one code carries weight: singular too, min is that value.
    scale, minimum = ql.lstsq_scale_min(X, L, [0.0, 0.0, 3.0, 0.0])
    assert scale == 0 and minimum == X[2]
    # Symmetric: d = sum(x*q)/sum(q**2) is defined unless every code is 0.
    d = ql.lstsq_scale(X, codes)
    assert d == (0.0 if k == 0 else pytest.approx(X.sum() / (4 * k), rel=1e-15))
    d, none = QZ.refit(X, codes - 8 * (k > 0))
    assert none is None and np.isfinite(d)


@pytest.mark.filterwarnings("error")
def test_all_zero_weights():
    """Zero weights make every parameter equally good: the unweighted answer, error 0."""
    w0 = np.zeros(4)
    np.testing.assert_array_equal(QM.refit(X, L, w0), QM.refit(X, L))
    assert ql.lstsq_scale(X, QS, w0) == ql.lstsq_scale(X, QS)
    np.testing.assert_array_equal(ql.lstsq_scale_min(X, L, w0), ql.lstsq_scale_min(X, L))
    for qz in (QZ, QM):
        for method, r in _all_fits(qz, X, w0).items():
            ref = qz.fit(X, method=method)
            np.testing.assert_array_equal(r.q, ref.q, err_msg=method)
            assert r.scale == ref.scale and r.min == ref.min, method
            assert r.error == 0, method
    assert ql.mse(X, X[::-1], w0) == 0
    # Per block: one block without weight, the other weighted.
    qb = ql.Quantizer(4, True, block_size=2)
    r = qb.search(X, [0.0, 0.0, 1.0, 2.0])
    assert r.error[0] == 0 and np.all(np.isfinite(r.scale))
    ref = qb.search(X)
    np.testing.assert_array_equal(r.q[:2], ref.q[:2])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("x", [[5e-324, 0.0], [1e-320, -3e-321, 0.0, 1e-315], [1e-310, 1.0]])
def test_tiny_values_no_warning(x):
    """Subnormal values: finite parameters, no division by an underflowed scale."""
    x = np.array(x)
    q, S, Z = ql.asymmetric_quantization(x, n_bits=8)
    tol = 4 * np.finfo(float).smallest_subnormal  # subnormals have an absolute precision
    assert S > 0 and np.all(np.abs(ql.asymmetric_dequantization(q, S, Z) - x) <= S / 2 + tol)
    q, S = ql.symmetric_quantization(x, n_bits=8)
    assert S > 0 and np.all(np.abs(ql.symmetric_dequantization(q, S) - x) <= S / 2 + tol)
    for qz in (QZ, QM):
        for method, r in _all_fits(qz, x, np.ones_like(x)).items():
            assert np.isfinite(r.scale) and np.isfinite(r.error), method
            assert np.all(np.abs(r.x_hat - x) <= np.abs(x).max()), method


@pytest.mark.filterwarnings("error")
def test_values_far_outside_an_explicit_range():
    """x / S overflows to inf for a tiny explicit range: the codes saturate, silently."""
    x = np.array([1e5, -1e5, 1e-305])
    q, S, Z = ql.asymmetric_quantization(x, alpha=2.6e-304, beta=0.0, n_bits=4)
    assert Z == 0 and q.tolist() == [15, 0, round(1e-305 / float(S))]
    q, S = ql.symmetric_quantization(x, alpha=1e-300, n_bits=4)
    assert q.tolist() == [7, -7, 0]


@pytest.mark.filterwarnings("error")
def test_largest_supported_values():
    """Values up to 1e75 with weights up to 1e75: finite errors, no overflow."""
    x = np.array([1e75, -1e75, 3e74, 0.0])
    w = np.array([1e75, 1.0, 1e75, 1e-75])
    for qz in (QZ, QM):
        for method, r in _all_fits(qz, x, w).items():
            assert np.isfinite(r.error) and np.isfinite(r.scale), method
    q, S, Z = ql.asymmetric_quantization(x, n_bits=8)
    assert np.isfinite(ql.mse(x, ql.asymmetric_dequantization(q, S, Z), w))
    assert np.isfinite(ql.sqnr_db(x, -x)) and ql.max_error(x, -x) == 2e75


# -- issue 10: the reproducers, each defect class with its example ---------------------------------
def test_issue10_2_far_narrow_range_is_exact_by_default_and_refused_literally():
    x = 1e8 + np.linspace(0, 1e-7, 200)
    q, S, Z = ql.asymmetric_quantization(x)  # include_zero: the range [0, max(x)], Z = 0
    assert int(Z) == 0
    assert np.all(np.abs(ql.asymmetric_dequantization(q, S, Z) - x) <= S / 2 * (1 + 1e-12))
    with _raises(ValueError, "zero-point Z", "include_zero"):
        ql.asymmetric_quantization(x, include_zero=False)
    with _raises(ValueError, "zero-point Z", "2\\*\\*40"):  # the same with an explicit range
        ql.asymmetric_quantization(x, alpha=1e8 + 1e-7, beta=1e8, include_zero=False)
    with _raises(ValueError, "Z", "2\\*\\*53"):  # dequantization: q - Z is exact up to 2**53
        ql.asymmetric_dequantization([0], 1.0, 2**53 + 1)


def test_issue10_2_codes_exact_below_the_zero_point_limit():
    """Z about 2**38: each code is round(x/S) + Z of the exact quotient (checked in fractions)."""
    from fractions import Fraction

    x = 1e3 + np.linspace(0.0, 1e-6, 41)
    q, S, Z = ql.asymmetric_quantization(x, include_zero=False)
    assert 2**37 < abs(int(Z)) <= 2**40
    exact_z = round(-Fraction(float(x.min())) / Fraction(float(S)))
    assert int(Z) == exact_z
    for v, c in zip(x.tolist(), q.tolist(), strict=True):
        ratio = Fraction(v) / Fraction(float(S))
        if abs(ratio - (ratio.numerator // ratio.denominator) - Fraction(1, 2)) > Fraction(
            1, 10**4
        ):
            assert c == min(max(round(ratio) + exact_z, 0), 255)
    x_hat = ql.asymmetric_dequantization(q, S, Z)
    assert np.all(np.abs(x_hat - x) <= float(S) / 2 * 1.001)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("e", [-540, -1000, 200])
def test_issue10_3_sqnr_is_scale_invariant(e):
    x = ql.X_EXAMPLE
    ref = float(ql.sqnr_db(x, x + 0.125))
    # The formula at a normal scale, in plain NumPy.
    assert ref == pytest.approx(10 * np.log10(np.sum(x**2) / (8 * 0.125**2)), rel=1e-14)
    got = ql.sqnr_db(np.ldexp(x, e), np.ldexp(x + 0.125, e))
    assert np.isfinite(got) and float(got) == pytest.approx(ref, rel=1e-13)
    # Per axis, rows of very different magnitudes.
    rows = np.stack([np.ldexp(x, e), x])
    got = ql.sqnr_db(
        rows, rows + np.stack([np.ldexp(np.full(8, 0.125), e), np.full(8, 0.125)]), axis=1
    )
    np.testing.assert_allclose(got, [ref, ref], rtol=1e-13)


def test_issue10_3_noise_far_below_the_signal():
    # noise**2 = 1e-400 underflows to 0 in the plain formula (which said inf): 4000 dB.
    assert float(ql.sqnr_db([1.0, 1e-200], [1.0, 0.0])) == pytest.approx(4000.0, rel=1e-12)
    assert float(ql.sqnr_db([3e-200, 4e-200], [3e-200, 0.0])) == pytest.approx(
        10 * np.log10(25 / 16), rel=1e-12
    )
    assert ql.sqnr_db([1e-200], [1e-200]) == np.inf  # still exact: no noise at all


def test_issue10_6_unsigned_codes_beyond_int64_are_refused():
    big = np.array([2**64 - 1], np.uint64)
    for call in (
        lambda: ql.asymmetric_dequantization(big, 1.0, 0),
        lambda: ql.symmetric_dequantization(big, 1.0),
        lambda: QZ.dequantize(big, 1.0),
        lambda: ql.lstsq_scale([1.0], big),
        lambda: ql.dequantize_linear(big, 1.0),
    ):
        with _raises(ValueError, "q", "beyond"):
            call()
    # uint64 codes that fit are fine.
    np.testing.assert_array_equal(
        ql.asymmetric_dequantization(np.array([3], np.uint64), 1.0, 1), [2.0]
    )


@pytest.mark.parametrize(
    ("bits", "exc"),
    [
        ([2.5, 3.9], TypeError),
        (["a"], TypeError),
        (None, TypeError),
        ([], ValueError),
        ([1], ValueError),
        ([17], ValueError),
        ([True], TypeError),
    ],
)
def test_issue10_7_bits_sweep_validates_bits(bits, exc):
    from quantlab import plots

    with _raises(exc, "bits", ""):
        plots.bits_sweep(X, bits=bits)


def test_issue10_7_bar_steps_sizes():
    from quantlab import plots

    with _raises(ValueError, "left", "same size"):
        plots.bar_steps([0, 1], 0.4, [1.0])
    with _raises(ValueError, "width", "positive"):
        plots.bar_steps([0, 1], -0.4, [1.0, 2.0])


@pytest.mark.parametrize("value", ["yes", None, 1])
def test_issue10_8_search_view_flags(value):
    from quantlab import widgets

    with _raises(TypeError, "use_min", "True or False"):
        widgets.search_view(X, use_min=value)
    with _raises(TypeError, "relative", "True or False"):
        widgets.search_view(X, relative=value)
    with _raises(TypeError, "use_min", "True or False"):
        widgets.compare_weights(X, W, use_min=value)


@pytest.mark.parametrize("func", ["mse", "sqnr_db", "max_error"])
@pytest.mark.parametrize(
    ("axis", "exc"), [(1.5, TypeError), ("0", TypeError), (True, TypeError), (3, ValueError)]
)
def test_issue10_10_metric_axis(func, axis, exc):
    with _raises(exc, "axis", ""):
        getattr(ql, func)(X, X, axis=axis)


def test_issue10_10_messages_name_the_argument():
    from quantlab import widgets

    with _raises(ValueError, "strength", "overflow"):
        widgets.compare_weights(X, W * 8, strength=1e6)
    with _raises(ValueError, "column", "'a'.*1-D"):
        ql.Table({"a": 5})
    with _raises(ValueError, "rows", "row 1 has 1"):
        ql.Table.from_rows(["a", "b"], [(1, 2), (3,)])
    with _raises(TypeError, "columns", "mapping"):
        ql.Table([1, 2])


@pytest.mark.filterwarnings("error")
def test_issue10_11_error_landscape_saturates_without_warning():
    from quantlab import plots

    x = ql.X_EXAMPLE * 1e70
    got = plots.error_landscape(x, 4, [1e-300], [0.0])
    # Every positive value saturates at code 15, every negative one at 0: x_hat = 15e-300 or 0.
    codes = np.where(x > 0, 15, 0)
    assert np.isfinite(got).all()
    assert float(got[0, 0]) == pytest.approx(np.mean((x - codes * 1e-300) ** 2), rel=1e-14)


MASKED = np.ma.array([0.5, -1.25, 2.0, 3.5], mask=[0, 0, 1, 0])
MASKED_CALLS = {
    "asymmetric_quantization": lambda: ql.asymmetric_quantization(MASKED),
    "symmetric_quantization": lambda: ql.symmetric_quantization(MASKED),
    "asymmetric_dequantization": lambda: ql.asymmetric_dequantization(np.ma.array(L), 1.0, 0),
    "Quantizer.quantize": lambda: QZ.quantize(MASKED),
    "Quantizer.search w": lambda: QZ.search(X, np.ma.array(W, mask=[1, 0, 0, 0])),
    "Quantizer.dequantize": lambda: QZ.dequantize(np.ma.array(QS), 1.0),
    "lstsq_scale": lambda: ql.lstsq_scale(MASKED, QS),
    "mse": lambda: ql.mse(X, MASKED),
    "sqnr_db": lambda: ql.sqnr_db(MASKED, X),
    "quantize_linear": lambda: ql.quantize_linear(MASKED, 0.1),
    "dequantize_linear": lambda: ql.dequantize_linear(np.ma.array(L), 0.1),
    "formats.quantize": lambda: ql.formats.quantize(np.ma.array(np.zeros(32)), "Q8_0"),
}


@pytest.mark.parametrize("case", MASKED_CALLS)
def test_issue10_12_masked_arrays_are_refused(case):
    import quantlab.formats  # noqa: F401  (ql.formats)

    with _raises(TypeError, "", "masked array"):
        MASKED_CALLS[case]()


def test_issue10_13_codes_checked_against_the_code_range():
    with _raises(ValueError, "q", r"\[-8, 7\]"):
        ql.Quantizer(4).dequantize([8], 1.0)
    with _raises(ValueError, "q", r"\[0, 15\]"):
        ql.Quantizer(4, use_min=True).dequantize([-1], 1.0, 0.0)
    with _raises(ValueError, "q", r"\[0, 255\]"):
        ql.asymmetric_dequantization([300], 0.1, 0)
    with _raises(ValueError, "q", r"\[0, 15\]"):
        ql.asymmetric_dequantization([16], 0.1, 0, n_bits=4)
    with _raises(ValueError, "q", r"\[-128, 127\]"):
        ql.symmetric_dequantization([-129], 0.1)
    # The ends of each range are accepted; wider codes with their n_bits too.
    assert ql.Quantizer(4).dequantize([-8, 7], 1.0).tolist() == [-8.0, 7.0]
    assert ql.asymmetric_dequantization([300], 0.1, 0, n_bits=9)[0] == pytest.approx(30.0)
    assert ql.symmetric_dequantization([-128, 127], 1.0).tolist() == [-128.0, 127.0]


# -- issue 11: library messages ----------------------------------------------------------------
def test_issue11_per_channel_parameters_without_channel_axis():
    W3 = np.random.default_rng(0).normal(size=(3, 4))
    q, S, Z = ql.asymmetric_quantization(W3, n_bits=4, channel_axis=0)
    with _raises(ValueError, "S", "channel_axis is missing.*channel_axis=0.*\\(3, 1\\)"):
        ql.asymmetric_dequantization(q, S, Z, n_bits=4)
    expected = ql.asymmetric_dequantization(q, S, Z, n_bits=4, channel_axis=0)
    np.testing.assert_array_equal(
        ql.asymmetric_dequantization(q, S[:, None], Z[:, None], n_bits=4), expected
    )
    np.testing.assert_array_equal(expected, (q - Z[:, None]) * S[:, None])  # the formula
    qs, Ss = ql.symmetric_quantization(W3, n_bits=4, channel_axis=0)
    np.testing.assert_array_equal(
        ql.symmetric_dequantization(qs, Ss[:, None], n_bits=4), qs * Ss[:, None]
    )
    with _raises(ValueError, "S", "channel_axis is missing"):
        ql.symmetric_dequantization(qs, Ss, n_bits=4)
    with _raises(ValueError, "S", "shape"):  # a column that does not broadcast
        ql.asymmetric_dequantization(q, np.ones((2, 1)), 0, n_bits=4)


def test_issue11_alpha_message_says_beta_defaulted():
    with _raises(ValueError, "alpha=0.5", "beta, which defaulted to min\\(x\\) = 1"):
        ql.asymmetric_quantization([1, 2, 3], alpha=0.5)
    with _raises(ValueError, "alpha.*max\\(x\\) by default", "beta=5"):
        ql.asymmetric_quantization([1, 2, 3], beta=5.0)


def test_issue11_multi_block_search_table_says_what_rows_aggregate():
    """The README's example: the table's rows are means over blocks, the choice is per block."""
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((4, 64))
    importance = rng.uniform(0.1, 1.0, size=weights.shape)
    res = ql.Quantizer(n_bits=4, use_min=True, block_size=32).search(weights, w=importance)
    t = res.table
    assert "n_best" in t.columns
    assert int(t["n_best"].sum()) == 8  # every one of the 8 blocks chooses exactly one row
    # Each block's own best: the per-block error equals the minimum over that block's candidates.
    per_block = [
        ql.Quantizer(4, use_min=True).search(weights[r, 32 * b : 32 * b + 32],
                                              w=importance[r, 32 * b : 32 * b + 32])
        for r in range(4) for b in range(2)
    ]  # fmt: skip
    np.testing.assert_allclose(res.error.ravel(), [float(p.error) for p in per_block], rtol=1e-12)
    chosen = [int(p.table.best) for p in per_block]
    np.testing.assert_array_equal(t["n_best"], np.bincount(chosen, minlength=len(t)))
    # The mean of the per-block best errors is at most the best shared row (equal when every block
    # chooses that row, as the default search's polish row often is), and the caption says so.
    assert res.error.mean() <= t["error_after"][t.best] * (1 + 1e-12)
    assert f"result.error.mean() = {res.error.mean():.4g}" in t.caption
    assert "mean error over 8 groups" in repr(t).replace("\n", " ")
    assert "<caption>" in t._repr_html_()
    # A per-tensor search has no caption and no n_best column.
    single = ql.Quantizer(4).search(ql.X_EXAMPLE).table
    assert single.caption is None and "n_best" not in single.columns
