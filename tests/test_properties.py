"""Hypothesis properties of the core library (issue 2, "Tests", second bullet).

Oracles are computed here from the formulas, never by the function under test:

- codes are integer arrays inside the code range of each convention;
- ``|x - x_hat| <= S/2`` for every x inside the representable range;
- a least-squares refit never increases the (weighted) error for the same codes;
- uniform weights (ones, or any positive constant) give the unweighted result;
- the default (relative) search grid is scale invariant;
- no public function modifies its inputs or returns a view of them;
- per-channel / per-block results equal per-tensor results on each channel / block.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import quantlab as ql

# A RuntimeWarning (overflow, division by zero, NaN) is a failure.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

# The default profile runs this file in about 15 s on 2 cores; QUANTLAB_HYPOTHESIS=thorough
# tries ten times as many examples.
settings.register_profile("quantlab-properties", max_examples=40, deadline=None)
settings.register_profile("quantlab-thorough", max_examples=400, deadline=None)
PROFILE = settings.get_profile(
    "quantlab-thorough"
    if os.environ.get("QUANTLAB_HYPOTHESIS") == "thorough"
    else "quantlab-properties"
)

# -- strategies -----------------------------------------------------------------------------------
#: Finite floats of mixed magnitudes within one array (1e-300 next to 1e6).
MIXED = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
#: Values in [-1, 1] before a per-array magnitude 10**e is applied.
UNIT = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
#: Smaller magnitudes are flushed to 0 (see :func:`values`).
FLOOR = 1e-290


@st.composite
def values(draw, shape=None, min_size: int = 1, max_size: int = 40) -> np.ndarray:
    """A float64 array of varied magnitude: mixed within the array or scaled by 10**e.

    Magnitudes below :data:`FLOOR` become 0, so that no value (nor a value scaled by 2**-20 in
    the scale-invariance test) is subnormal: subnormals carry only an absolute precision of
    5e-324, so relative bounds cannot hold for them (they have their own test in
    test_bad_input.py).
    """
    if shape is None:
        shape = (draw(st.integers(min_size, max_size)),)
    if draw(st.booleans()):
        x = draw(hnp.arrays(np.float64, shape, elements=MIXED))
    else:
        exponent = draw(st.integers(-12, 12))
        x = draw(hnp.arrays(np.float64, shape, elements=UNIT)) * 10.0**exponent
    return np.where(np.abs(x) < FLOOR, 0.0, x)


def weights(shape) -> st.SearchStrategy[np.ndarray]:
    """Non-negative importance weights (zeros included) of ``shape``."""
    elements = st.floats(0.0, 1e3, allow_subnormal=False)
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def x_and_w(draw, max_size: int = 40):
    """``(x, w)`` with ``w`` None or non-negative weights of the shape of ``x``."""
    x = draw(values(max_size=max_size))
    w = draw(st.one_of(st.none(), weights(x.shape)))
    return x, w


BITS = st.integers(1, 16)
QBITS = st.integers(2, 16)  # the Quantizer and symmetric_quantization need 2 bits at least
SEARCH_BITS = st.integers(2, 8)  # keeps the exact optimum cheap
OPT_BITS = st.integers(2, 6)


def werr(x, x_hat, w=None) -> float:
    """The (weighted) MSE, computed here from its definition."""
    x, x_hat = np.asarray(x, float), np.asarray(x_hat, float)
    w = np.ones_like(x) if w is None else np.asarray(w, float)
    return float(np.mean(w * (x - x_hat) ** 2))


def code_range(kind: str, n: int) -> tuple[int, int]:
    """The code range of each convention, from SPEC items 1, 2 and 4."""
    return {
        "asymmetric": (0, 2**n - 1),
        "restricted": (-(2 ** (n - 1) - 1), 2 ** (n - 1) - 1),
        "full": (-(2 ** (n - 1)), 2 ** (n - 1) - 1),
        "min-symmetric": (-(2 ** (n - 1)), 2 ** (n - 1) - 1),
        "use_min": (0, 2**n - 1),
    }[kind]


def assert_codes(q, x, kind: str, n: int) -> None:
    q = np.asarray(q)
    assert q.dtype.kind == "i", q.dtype
    assert q.shape == np.shape(x)
    lo, hi = code_range(kind, n)
    assert q.min() >= lo and q.max() <= hi, (q.min(), q.max(), lo, hi)


def asymmetric(x, alpha=None, beta=None, n_bits=8, **kw):
    """asymmetric_quantization, skipping (with a check) ranges whose zero-point exceeds int64."""
    try:
        return ql.asymmetric_quantization(x, alpha, beta, n_bits, **kw)
    except ValueError as exc:
        if "2**40" not in str(exc):
            raise
    # Only legitimate when -beta/S = -beta * (2**n - 1) / (alpha - beta) is beyond 2**40.
    xg = ql.Grouping(**kw).to_groups(np.asarray(x, float))
    hi = xg.max(axis=1) if alpha is None else np.ravel(alpha)
    lo = xg.min(axis=1) if beta is None else np.ravel(beta)
    assert np.any(np.abs(lo) * (2**n_bits - 1) > 2**39 * (hi - lo))
    reject()


def quantizer_results(x, w, n, use_min):
    """Every way the Quantizer chooses codes: ``{label: (q, scale, min)}``."""
    qz = ql.Quantizer(n, use_min)
    out = {"quantize": qz.quantize(x)}
    for method in ("round", "refit", "search", "refine"):
        r = qz.fit(x, w, method=method)
        out[method] = (r.q, r.scale, r.min)
    if not use_min and n <= 6:
        r = qz.optimum(x, w)
        out["optimum"] = (r.q, r.scale, r.min)
    return out


# -- codes in range and integer-typed --------------------------------------------------------------
@PROFILE
@given(x=values(), n=BITS, data=st.data())
def test_asymmetric_codes_in_range(x, n, data):
    q, S, Z = asymmetric(x, n_bits=n)
    assert_codes(q, x, "asymmetric", n)
    assert np.asarray(Z).dtype.kind == "i" and np.ndim(Z) == 0
    assert S > 0
    # An explicit (clipping) range still gives codes in range.
    lo, hi = sorted(data.draw(st.tuples(MIXED, MIXED)))
    if hi > lo:
        q2, _, _ = asymmetric(x, alpha=hi, beta=lo, n_bits=n)
        assert_codes(q2, x, "asymmetric", n)


@PROFILE
@given(x=values(), n=QBITS, full=st.booleans())
def test_symmetric_codes_in_range(x, n, full):
    q, S = ql.symmetric_quantization(x, n_bits=n, full_range=full)
    assert_codes(q, x, "full" if full else "restricted", n)
    assert S > 0
    q2, _ = ql.symmetric_quantization(x, alpha=0.5 * np.abs(x).max() or 1.0, n_bits=n)
    assert_codes(q2, x, "restricted", n)


@PROFILE
@given(xw=x_and_w(max_size=24), n=SEARCH_BITS, use_min=st.booleans())
def test_quantizer_codes_in_range(xw, n, use_min):
    x, w = xw
    for label, (q, scale, minimum) in quantizer_results(x, w, n, use_min).items():
        assert_codes(q, x, "use_min" if use_min else "min-symmetric", n)
        assert np.isfinite(scale), label
        assert (minimum is None) == (not use_min), label


@PROFILE
@given(x=values(), n=st.integers(9, 16), use_min=st.booleans())
def test_quantizer_wide_codes_in_range(x, n, use_min):
    q, _, _ = ql.Quantizer(n, use_min).quantize(x)
    assert_codes(q, x, "use_min" if use_min else "min-symmetric", n)


# -- |x - x_hat| <= S/2 inside the range ---------------------------------------------------------
def assert_half_step(x, x_hat, step, lowest, highest):
    """Inside [lowest, highest] the error is at most step/2; outside, x is clipped to the ends."""
    x, x_hat = np.asarray(x), np.asarray(x_hat)
    step = abs(float(step))
    tol = 1e-9 * step + 4e-16 * np.abs(x).max()
    inside = (x >= lowest) & (x <= highest)
    assert np.all(np.abs(x - x_hat)[inside] <= step / 2 + tol)
    assert np.all(np.abs(x_hat[x < lowest] - lowest) <= tol)
    assert np.all(np.abs(x_hat[x > highest] - highest) <= tol)


@PROFILE
@given(x=values(), n=BITS, shrink=st.floats(0.1, 1.0))
def test_asymmetric_half_step(x, n, shrink):
    for kwargs in ({}, {"alpha": x.max() * shrink + 1.0, "beta": x.min() * shrink - 1.0}):
        q, S, Z = asymmetric(x, n_bits=n, **kwargs)
        x_hat = (q - int(Z)) * float(S)  # x_hat = (q - Z) * S, from SPEC item 1
        np.testing.assert_array_equal(ql.asymmetric_dequantization(q, S, Z, n_bits=n), x_hat)
        ends = (0 - int(Z)) * float(S), (2**n - 1 - int(Z)) * float(S)
        assert_half_step(x, x_hat, S, *ends)
        if not kwargs:  # the default range [min, max] is covered to within S/2
            assert ends[0] <= x.min() + S / 2 * (1 + 1e-9) and ends[1] >= x.max() - S / 2 * 1.000001


@PROFILE
@given(x=values(), n=QBITS, full=st.booleans(), shrink=st.floats(0.1, 1.0))
def test_symmetric_half_step(x, n, full, shrink):
    qmax = 2 ** (n - 1) - 1
    qmin = -qmax - 1 if full else -qmax
    for alpha in (None, float(np.abs(x).max()) * shrink or 1.0):
        q, S = ql.symmetric_quantization(x, alpha, n_bits=n, full_range=full)
        x_hat = q * float(S)
        np.testing.assert_array_equal(ql.symmetric_dequantization(q, S, n_bits=n), x_hat)
        assert_half_step(x, x_hat, S, qmin * float(S), qmax * float(S))


@PROFILE
@given(x=values(), n=QBITS, use_min=st.booleans())
def test_min_convention_half_step(x, n, use_min):
    qz = ql.Quantizer(n, use_min)
    q, scale, minimum = qz.quantize(x)
    scale = float(scale)
    lo, hi = code_range("use_min" if use_min else "min-symmetric", n)
    m = 0.0 if minimum is None else float(minimum)
    x_hat = scale * q + m  # SPEC item 4
    np.testing.assert_allclose(qz.dequantize(q, scale, minimum), x_hat, rtol=0, atol=0)
    if scale == 0:  # all-zero or constant data: reproduced exactly
        np.testing.assert_array_equal(x_hat, x)
        return
    ends = sorted((scale * lo + m, scale * hi + m))
    assert_half_step(x, x_hat, scale, *ends)
    if use_min:  # every value lies inside [min, max]
        assert ends[0] == x.min() and ends[1] >= x.max() - abs(scale) * 1e-6
    else:  # the element of largest magnitude lands exactly on the code -2**(n-1)
        j = np.argmax(np.abs(x))
        assert q.flat[j] == -(2 ** (n - 1))


# -- a refit never increases the error -----------------------------------------------------------
def _tol(x, w) -> float:
    w = np.ones_like(x) if w is None else w
    return 1e-12 * float(np.mean(w * x * x))


@PROFILE
@given(xw=x_and_w(), n=QBITS, use_min=st.booleans(), factor=st.floats(0.5, 2.0))
def test_refit_never_increases_error(xw, n, use_min, factor):
    x, w = xw
    qz = ql.Quantizer(n, use_min)
    q, scale, minimum = qz.quantize(x)
    m = 0.0 if minimum is None else minimum
    s1, m1 = qz.refit(x, q, w)
    after = werr(x, s1 * q + (0.0 if m1 is None else m1), w)
    candidates = [(scale, m), (scale * factor, m)]
    if use_min:
        candidates.append((scale, m + factor - 1.0))
    for s0, m0 in candidates:
        before = werr(x, s0 * q + m0, w)
        assert after <= before * (1 + 1e-9) + _tol(x, w)


@PROFILE
@given(data=st.data(), use_min=st.booleans(), factor=st.floats(-3.0, 3.0))
def test_lstsq_is_a_minimum_for_any_codes(data, use_min, factor):
    x, w = data.draw(x_and_w())
    q = data.draw(hnp.arrays(np.int64, x.shape, elements=st.integers(-40, 40)))
    if use_min:
        s, m = ql.lstsq_scale_min(x, q, w)
    else:
        s, m = ql.lstsq_scale(x, q, w), 0.0
    best = werr(x, s * q + m, w)
    scale_x = float(np.abs(x).max())
    for s0, m0 in ((s * factor, m), (s + factor * scale_x / 40, m), (s, m + factor * scale_x)):
        if not use_min:
            m0 = 0.0
        assert best <= werr(x, s0 * q + m0, w) * (1 + 1e-9) + _tol(x, w)


@PROFILE
@given(xw=x_and_w(max_size=24), n=SEARCH_BITS, use_min=st.booleans())
def test_methods_never_worse_than_their_start(xw, n, use_min):
    """refit <= round; search and refine <= refit; the exact optimum <= every method.

    Each error is recomputed here from the returned codes and parameters. In the search table,
    every candidate's refit is no worse than its rounding.
    """
    x, w = xw
    qz = ql.Quantizer(n, use_min)
    results = {m: qz.fit(x, w, method=m) for m in ql.METHODS if not (use_min and m == "optimum")}
    err = {}
    for method, r in results.items():
        err[method] = werr(x, r.scale * r.q + (0.0 if r.min is None else r.min), w)
        np.testing.assert_allclose(r.error, err[method], rtol=1e-9, atol=_tol(x, w))
    tol = _tol(x, w)
    assert err["refit"] <= err["round"] * (1 + 1e-9) + tol
    assert err["search"] <= err["refit"] * (1 + 1e-9) + tol  # offset 0 is on the grid
    assert err["refine"] <= err["refit"] * (1 + 1e-9) + tol
    if not use_min:
        assert all(err["optimum"] <= e * (1 + 1e-9) + tol for e in err.values())
    table = results["search"].table
    before, after = table["error_before"], table["error_after"]
    ok = np.isfinite(before)
    assert np.all(after[ok] <= before[ok] * (1 + 1e-9) + tol)


# -- uniform weights give the unweighted result ---------------------------------------------------
def _same_result(r, ref, c: float) -> None:
    np.testing.assert_array_equal(r.q, ref.q)
    np.testing.assert_allclose(r.scale, ref.scale, rtol=1e-12, atol=0)
    if ref.min is not None:
        np.testing.assert_allclose(r.min, ref.min, rtol=1e-12, atol=1e-12 * abs(float(ref.scale)))
    np.testing.assert_allclose(r.error, c * ref.error, rtol=1e-12, atol=0)


@PROFILE
@given(
    x=values(max_size=24),
    n=SEARCH_BITS,
    use_min=st.booleans(),
    c=st.one_of(st.just(1.0), st.floats(1e-3, 1e3)),
)
def test_uniform_weights_give_unweighted_result(x, n, use_min, c):
    qz = ql.Quantizer(n, use_min)
    w = np.full(x.shape, c)
    methods = ["refit", "search", "refine"] + ([] if use_min or n > 6 else ["optimum"])
    for method in methods:
        _same_result(qz.fit(x, w, method=method), qz.fit(x, method=method), c)
    q, _, _ = qz.quantize(x)
    for got, ref in zip(qz.refit(x, q, w), qz.refit(x, q), strict=True):
        if ref is not None:
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ql.lstsq_scale(x, q, w), ql.lstsq_scale(x, q), rtol=1e-12)
    l_codes = q - q.min()
    for got, ref in zip(
        ql.lstsq_scale_min(x, l_codes, w), ql.lstsq_scale_min(x, l_codes), strict=True
    ):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * float(np.abs(x).max()))
    x_hat = x[::-1]
    np.testing.assert_allclose(ql.mse(x, x_hat, w), c * ql.mse(x, x_hat), rtol=1e-12)


# -- the default search grid is scale invariant --------------------------------------------------
@PROFILE
@given(
    x=values(max_size=32),
    n=SEARCH_BITS,
    use_min=st.booleans(),
    k=st.integers(-20, 20),
    weighted=st.booleans(),
)
def test_search_is_scale_invariant(x, n, use_min, k, weighted):
    c = 2.0**k  # exact in binary floating point
    w = np.linspace(0.5, 2.0, x.size) if weighted else None
    qz = ql.Quantizer(n, use_min)
    ref, got = qz.search(x, w), qz.search(x * c, w)
    np.testing.assert_array_equal(got.q, ref.q)
    np.testing.assert_allclose(got.scale, ref.scale * c, rtol=1e-14, atol=0)
    if use_min:
        np.testing.assert_allclose(got.min, ref.min * c, rtol=1e-14, atol=1e-14 * abs(got.scale))
    np.testing.assert_allclose(got.error, ref.error * c * c, rtol=1e-12, atol=0)


# -- inputs are never modified -------------------------------------------------------------------
X4 = np.array([[0.5, -1.25, 2.0, 3.5], [-0.25, 0.75, -3.0, 1.0]])
W4 = np.array([[1.0, 0.5, 2.0, 0.0], [3.0, 1.0, 1.0, 0.25]])
L4 = np.array([[1, 0, 3, 2], [0, 2, 3, 1]])
Q4S = np.array([[1, -2, 3, -4], [0, 2, -3, 1]])
QZ = ql.Quantizer(4)
QM = ql.Quantizer(4, use_min=True)
QB = ql.Quantizer(4, use_min=True, block_size=2)

#: Every public function with array arguments: name -> (function, positional arrays).
CALLS = {
    "asymmetric_quantization": (ql.asymmetric_quantization, (X4,)),
    "asymmetric_quantization(alpha, beta)": (
        lambda x, a, b: ql.asymmetric_quantization(x, a, b, channel_axis=0),
        (X4, np.array([4.0, 2.0]), np.array([-2.0, -4.0])),
    ),
    "asymmetric_dequantization": (
        lambda q, s, z: ql.asymmetric_dequantization(q, s, z, channel_axis=0),
        (L4, np.array([0.5, 0.25]), np.array([1, 2])),
    ),
    "symmetric_quantization": (
        lambda x, a: ql.symmetric_quantization(x, a, block_size=2),
        (X4, np.array([[1.0, 4.0], [1.0, 3.0]])),
    ),
    "symmetric_dequantization": (ql.symmetric_dequantization, (Q4S, np.array(0.5))),
    "Quantizer.quantize": (QZ.quantize, (X4,)),
    "Quantizer.dequantize": (QM.dequantize, (L4, np.array(0.5), np.array(-1.0))),
    "Quantizer.refit": (QM.refit, (X4, L4, W4)),
    "Quantizer.refit(block)": (QB.refit, (X4, L4, W4)),
    "Quantizer.error": (QM.error, (X4, L4, np.array(0.5), np.array(-1.0), W4)),
    "Quantizer.search": (QZ.search, (X4, W4)),
    "Quantizer.search(offsets)": (
        lambda x, w, o: QB.search(x, w, offsets=o),
        (X4, W4, np.array([-0.1, 0.0, 0.1])),
    ),
    "Quantizer.refine": (QM.refine, (X4, W4)),
    "Quantizer.optimum": (QZ.optimum, (X4, W4)),
    "Quantizer.fit": (QZ.fit, (X4, W4)),
    "Quantizer.fit(refit)": (lambda x, w: QM.fit(x, w, method="refit"), (X4, W4)),
    "lstsq_scale": (ql.lstsq_scale, (X4, Q4S, W4)),
    "lstsq_scale_min": (lambda x, q, w: ql.lstsq_scale_min(x, q, w, channel_axis=1), (X4, L4, W4)),
    "mse": (ql.mse, (X4, X4[::-1], W4)),
    "sqnr_db": (ql.sqnr_db, (X4, X4[::-1])),
    "max_error": (ql.max_error, (X4, X4[::-1])),
}


def _arrays_in(result) -> list[np.ndarray]:
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, tuple):
        return [a for r in result for a in _arrays_in(r)]
    if hasattr(result, "q"):
        return [result.q, result.scale, result.x_hat, result.error] + (
            [] if result.min is None else [result.min]
        )
    return []


@pytest.mark.parametrize("name", CALLS)
def test_inputs_are_never_modified(name):
    fn, args = CALLS[name]
    copies = [a.copy() for a in args]
    out = fn(*args)
    for a, c in zip(args, copies, strict=True):
        np.testing.assert_array_equal(a, c)
        for r in _arrays_in(out):  # outputs never alias an input
            assert not np.shares_memory(r, a)
    # Read-only arrays and plain lists are accepted and give the same result.
    frozen = []
    for a in copies:
        a.setflags(write=False)
        frozen.append(a)
    for variant in (frozen, [a.tolist() for a in copies]):
        got = fn(*variant)
        for g, r in zip(_arrays_in(got), _arrays_in(out), strict=True):
            np.testing.assert_array_equal(g, r)
    for a, c in zip(frozen, args, strict=True):
        np.testing.assert_array_equal(a, c)


@PROFILE
@given(xw=x_and_w(max_size=16), n=OPT_BITS, use_min=st.booleans())
def test_random_inputs_are_never_modified(xw, n, use_min):
    x, w = xw
    x0 = x.copy()
    w0 = None if w is None else w.copy()
    results = quantizer_results(x, w, n, use_min)
    q, scale, _ = results["quantize"]
    q0 = q.copy()
    ql.Quantizer(n, use_min).refit(x, q, w)
    ql.lstsq_scale(x, q, w)
    ql.mse(x, scale * q, w)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(q, q0)
    if w is not None:
        np.testing.assert_array_equal(w, w0)


# -- per-channel and per-block results equal per-tensor results on each group ---------------------
@st.composite
def grouped(draw):
    """An array of 1-3 dims with a channel axis or a block size (or neither), and its groups.

    Returns ``(x, kwargs, groups)`` where ``groups`` is a list of ``(index, param_index)``: the
    index of the values of one group in ``x`` and the index of its parameters.
    """
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    kind = draw(st.sampled_from(["tensor", "channel", "block"]))
    if kind == "block":
        b = draw(st.integers(1, 4))
        shape = (*shape[:-1], shape[-1] * b)
    x = draw(values(shape=shape))
    if kind == "tensor":
        return x, {}, [((...,), ())]
    if kind == "channel":
        axis = draw(st.integers(-ndim, ndim - 1))
        groups = []
        for c in range(shape[axis]):
            idx = [slice(None)] * ndim
            idx[axis] = c
            groups.append((tuple(idx), (c,)))
        return x, {"channel_axis": axis}, groups
    groups = []
    for lead in np.ndindex(*shape[:-1]):
        for k in range(shape[-1] // b):
            groups.append(((*lead, slice(k * b, (k + 1) * b)), (*lead, k)))
    return x, {"block_size": b}, groups


def _p(p, j):
    return None if p is None else np.asarray(p)[j]


@PROFILE
@given(case=grouped(), n=QBITS, full=st.booleans())
def test_grouped_uniform_equals_per_tensor(case, n, full):
    x, kw, groups = case
    q, S, Z = asymmetric(x, n_bits=n, **kw)
    x_hat = ql.asymmetric_dequantization(q, S, Z, n_bits=n, **kw)
    qs, Ss = ql.symmetric_quantization(x, n_bits=n, full_range=full, **kw)
    xs_hat = ql.symmetric_dequantization(qs, Ss, n_bits=n, **kw)
    assert np.shape(S) == np.shape(Z) == np.shape(Ss) == ql.Grouping(**kw).param_shape(x.shape)
    for i, j in groups:
        q1, S1, Z1 = ql.asymmetric_quantization(x[i], n_bits=n)
        np.testing.assert_array_equal(q[i], q1)
        assert _p(S, j) == S1 and _p(Z, j) == Z1
        np.testing.assert_array_equal(x_hat[i], ql.asymmetric_dequantization(q1, S1, Z1, n_bits=n))
        q2, S2 = ql.symmetric_quantization(x[i], n_bits=n, full_range=full)
        np.testing.assert_array_equal(qs[i], q2)
        assert _p(Ss, j) == S2
        np.testing.assert_array_equal(xs_hat[i], ql.symmetric_dequantization(q2, S2, n_bits=n))


def _assert_group(r, r1, i, j) -> None:
    np.testing.assert_array_equal(r.q[i], r1.q)
    np.testing.assert_allclose(_p(r.scale, j), r1.scale, rtol=1e-13, atol=0)
    if r1.min is not None:
        np.testing.assert_allclose(_p(r.min, j), r1.min, rtol=1e-13, atol=0)
    np.testing.assert_allclose(_p(r.error, j), r1.error, rtol=1e-12, atol=0)
    np.testing.assert_allclose(r.x_hat[i], r1.x_hat, rtol=1e-13, atol=0)


@PROFILE
@given(case=grouped(), n=OPT_BITS, use_min=st.booleans(), data=st.data())
def test_grouped_quantizer_equals_per_tensor(case, n, use_min, data):
    x, kw, groups = case
    w = data.draw(st.one_of(st.none(), weights(x.shape)))
    qz, q1z = ql.Quantizer(n, use_min, **kw), ql.Quantizer(n, use_min)
    q, scale, minimum = qz.quantize(x)
    s_fit, m_fit = qz.refit(x, q, w)
    methods = ["round", "refit", "search", "refine"] + ([] if use_min else ["optimum"])
    results = {m: qz.fit(x, w, method=m) for m in methods}
    d = ql.lstsq_scale(x, q, w, **kw)
    sm = ql.lstsq_scale_min(x, q, w, **kw)
    for i, j in groups:
        wi = None if w is None else w[i]
        qi, si, mi = q1z.quantize(x[i])
        np.testing.assert_array_equal(q[i], qi)
        assert _p(scale, j) == si and _p(minimum, j) == mi
        np.testing.assert_array_equal(
            qz.dequantize(q, scale, minimum)[i], q1z.dequantize(qi, si, mi)
        )
        s1, m1 = q1z.refit(x[i], qi, wi)
        np.testing.assert_allclose(_p(s_fit, j), s1, rtol=1e-13, atol=0)
        if use_min:
            np.testing.assert_allclose(_p(m_fit, j), m1, rtol=1e-13, atol=0)
        for method, r in results.items():
            _assert_group(r, q1z.fit(x[i], wi, method=method), i, j)
        np.testing.assert_allclose(_p(d, j), ql.lstsq_scale(x[i], qi, wi), rtol=1e-13, atol=0)
        for got, ref in zip(sm, ql.lstsq_scale_min(x[i], qi, wi), strict=True):
            np.testing.assert_allclose(_p(got, j), ref, rtol=1e-13, atol=0)
