"""The sympy derivations of quantlab.symbolic against an independent sympy solve and NumPy."""

import numpy as np
import pytest
import sympy as sp

import quantlab as ql
from quantlab import symbolic

N5 = 5


def explicit_symbols():
    """Plain symbols x1..x5, q1..q5, w1..w5 (no IndexedBase, no Sum)."""
    xs = sp.symbols(f"x1:{N5 + 1}", real=True)
    qs = sp.symbols(f"q1:{N5 + 1}", real=True)
    ws = sp.symbols(f"w1:{N5 + 1}", positive=True)
    return xs, qs, ws


def as_explicit(expr):
    """Put N = 5 into a derived expression and write x[j] etc. as the plain symbols."""
    xs, qs, ws = explicit_symbols()
    expanded = expr.subs(symbolic.N, N5).doit()
    subs = {}
    for i in range(N5):
        subs[symbolic.x[i + 1]] = xs[i]
        subs[symbolic.q[i + 1]] = qs[i]
        subs[symbolic.w[i + 1]] = ws[i]
    names = {symbolic.d: sp.Symbol("d"), symbolic.scale: sp.Symbol("s")}
    names[symbolic.minimum] = sp.Symbol("m")
    return expanded.xreplace(subs).xreplace(names)


def is_zero(expr, n_points=4):
    """Exact test that a rational expression in the N = 5 symbols vanishes identically.

    Evaluated with exact random rationals: a nonzero rational function vanishes at a random
    point with negligible probability (Schwartz-Zippel), and this is much faster than expanding.
    """
    rng = np.random.default_rng(0)
    free = sorted(expr.free_symbols, key=str)
    for _ in range(n_points):
        point = {
            s: sp.Rational(int(rng.integers(-999, 1000)), int(rng.integers(1, 97))) for s in free
        }
        if expr.xreplace(point) != 0:
            return False
    return True


def independent_symmetric(weighted):
    xs, qs, ws = explicit_symbols()
    d = sp.Symbol("d")
    wt = ws if weighted else [1] * N5
    E = sum(wi * (xi - d * qi) ** 2 for wi, xi, qi in zip(wt, xs, qs, strict=True))
    (sol,) = sp.solve(sp.diff(E, d), d)
    return sol


def independent_min(weighted):
    xs, qs, ws = explicit_symbols()
    s, m = sp.symbols("s m")
    wt = ws if weighted else [1] * N5
    E = sum(wi * (s * qi + m - xi) ** 2 for wi, xi, qi in zip(wt, xs, qs, strict=True))
    # The normal equations are linear in (s, m): solve A @ [s, m] = b exactly.
    A, b = sp.linear_eq_to_matrix([sp.diff(E, s), sp.diff(E, m)], [s, m])
    sol = A.LUsolve(b)
    return sol[0], sol[1]


@pytest.mark.parametrize("weighted", [False, True])
def test_symmetric_solution_equals_independent_solve(weighted):
    derived = symbolic.derive_lstsq_scale(weighted)
    assert is_zero(as_explicit(derived["d"]) - independent_symmetric(weighted))
    # The curvature 2*Sum(w*q**2) is non-negative: the stationary point is a minimum.
    _, qs, ws = explicit_symbols()
    wt = ws if weighted else [1] * N5
    expected = 2 * sum(wi * qi**2 for wi, qi in zip(wt, qs, strict=True))
    assert is_zero(as_explicit(derived["curvature"]) - expected)


@pytest.mark.parametrize("weighted", [False, True])
def test_min_solution_equals_independent_solve(weighted):
    derived = symbolic.derive_lstsq_scale_min(weighted)
    s_ref, m_ref = independent_min(weighted)
    assert is_zero(as_explicit(derived["scale"]) - s_ref)
    assert is_zero(as_explicit(derived["min"]) - m_ref)
    _, qs, ws = explicit_symbols()
    wt = ws if weighted else [1] * N5
    det = (
        sum(wt) * sum(wi * qi**2 for wi, qi in zip(wt, qs, strict=True))
        - sum(wi * qi for wi, qi in zip(wt, qs, strict=True)) ** 2
    )
    assert sp.expand(as_explicit(derived["determinant"]) - det) == 0
    assert not is_zero(as_explicit(derived["scale"]) - m_ref)  # the check can fail


def lambdified(expr, n):
    """An independent numeric path: N = n, sums expanded, lambdify over the element symbols."""
    expanded = expr.subs(symbolic.N, n).doit()
    args = [symbolic.x[i + 1] for i in range(n)]
    args += [symbolic.q[i + 1] for i in range(n)]
    args += [symbolic.w[i + 1] for i in range(n)]
    f = sp.lambdify(args, expanded, "numpy")
    return lambda x, q, w: float(f(*x, *q, *w))


@pytest.mark.parametrize("weighted", [False, True])
def test_symbolic_scale_equals_numpy_refit_on_random_data(weighted):
    derived = symbolic.derive_lstsq_scale(weighted)["d"]
    n = 12
    f = lambdified(derived, n)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.normal(size=n) * 3
        q = rng.integers(-8, 8, size=n)
        w = rng.uniform(0, 2, size=n) if weighted else np.ones(n)
        wa = w if weighted else None
        ref = ql.lstsq_scale(x, q, wa)
        assert f(x, q, w) == pytest.approx(float(ref), rel=1e-12)
        assert float(symbolic.evaluate(derived, x, q, wa)) == pytest.approx(float(ref), rel=1e-12)
        assert f(x, q, w) == pytest.approx(float(ql.Quantizer(4).refit(x, q, wa)[0]), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_symbolic_scale_min_equals_numpy_refit_on_random_data(weighted):
    derived = symbolic.derive_lstsq_scale_min(weighted)
    n = 12
    fs, fm = lambdified(derived["scale"], n), lambdified(derived["min"], n)
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.normal(size=n) + 1
        lv = rng.integers(0, 16, size=n)
        w = rng.uniform(0, 2, size=n) if weighted else np.ones(n)
        wa = w if weighted else None
        s_ref, m_ref = ql.lstsq_scale_min(x, lv, wa)
        s_q, m_q = ql.Quantizer(4, use_min=True).refit(x, lv, wa)
        for s_val, m_val in [(s_ref, m_ref), (s_q, m_q)]:
            assert fs(x, lv, w) == pytest.approx(float(s_val), rel=1e-10)
            assert fm(x, lv, w) == pytest.approx(float(m_val), rel=1e-10)
        s_ev = symbolic.evaluate(derived["scale"], x, lv, wa)
        m_ev = symbolic.evaluate(derived["min"], x, lv, wa)
        assert float(s_ev) == pytest.approx(float(s_ref), rel=1e-10)
        assert float(m_ev) == pytest.approx(float(m_ref), rel=1e-10)


def random_xqw(seed, size, qmin, qmax):
    rng = np.random.default_rng(seed)
    return rng.normal(size=size), rng.integers(qmin, qmax, size=size), rng.uniform(size=size)


def test_gradient_vanishes_at_the_numpy_refit():
    x, q, w = random_xqw(4, 9, -8, 8)
    grad = symbolic.derive_lstsq_scale(True)["gradient"]
    d = float(ql.lstsq_scale(x, q, w))
    assert float(symbolic.evaluate(grad, x, q, w, d=d)) == pytest.approx(0, abs=1e-10)
    assert abs(float(symbolic.evaluate(grad, x, q, w, d=d + 0.1))) > 1e-3
    lv = random_xqw(6, 9, 0, 16)[1]
    eqs = symbolic.derive_lstsq_scale_min(True)["equations"]
    s, m = (float(v) for v in ql.lstsq_scale_min(x, lv, w))
    for eq in eqs:
        assert float(symbolic.evaluate(eq, x, lv, w, scale=s, min=m)) == pytest.approx(0, abs=1e-9)


def test_error_expression_evaluates_to_the_weighted_sse():
    x, q, w = random_xqw(5, 7, -4, 4)
    err = symbolic.derive_lstsq_scale(True)["error"]
    assert float(symbolic.evaluate(err, x, q, w, d=0.3)) == pytest.approx(
        np.sum(w * (x - 0.3 * q) ** 2)
    )


def test_degenerate_input_raises_instead_of_nan():
    d = symbolic.derive_lstsq_scale(True)["d"]
    mins = symbolic.derive_lstsq_scale_min(False)
    # Every code zero, or every weight zero: 0/0. The closed form has no value there.
    with pytest.raises(ValueError, match="undefined"):
        symbolic.evaluate(d, [1.0, 2.0], [0, 0])
    with pytest.raises(ValueError, match="undefined"):
        symbolic.evaluate(d, [1.0, 2.0], [1, 2], [0.0, 0.0])
    # All codes equal: the determinant is exactly 0 and the solution undefined.
    assert float(symbolic.evaluate(mins["determinant"], [1.0, 2.0, 4.0], [3, 3, 3])) == 0.0
    with pytest.raises(ValueError, match="undefined"):
        symbolic.evaluate(mins["scale"], [1.0, 2.0, 4.0], [3, 3, 3])
    # ... while the NumPy refit gives the best constant, never NaN.
    s, m = ql.lstsq_scale_min([1.0, 2.0, 4.0], [3, 3, 3])
    assert float(s) * 3 + float(m) == pytest.approx(7 / 3)


def test_a_symbol_left_without_value_is_named():
    grad = symbolic.derive_lstsq_scale(False)["gradient"]
    with pytest.raises(ValueError, match="missing: d"):
        symbolic.evaluate(grad, [1.0, 2.0], [1, 2])
    # dE/dd = -2*sum(x*q) + 2*d*sum(q**2) = -2*5 + 2*0.5*5 = -5
    assert float(symbolic.evaluate(grad, [1.0, 2.0], [1, 2], d=0.5)) == -5.0
