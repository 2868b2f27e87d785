"""Sympy derivations of the least-squares parameters (SPEC items 5 and 6).

The notebooks and the tests use these one derivation: write the (weighted) squared error as a
sum over the elements ``j = 1..N``, differentiate with respect to the parameters, and solve the
resulting linear equations. The sums stay symbolic (``Sum(w[j]*x[j]*q[j], (j, 1, N))``), so the
solutions read like the formulas in :mod:`quantlab.lstsq`; :func:`evaluate` turns any such
expression into a number for concrete arrays.

Examples
--------
>>> sol = derive_lstsq_scale(weighted=False)
>>> sol["d"]
Sum(q[j]*x[j], (j, 1, N))/Sum(q[j]**2, (j, 1, N))
>>> float(evaluate(sol["d"], x=[1.0, 2.1, -2.9], q=[1, 2, -3]))
0.9928571428571428
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from ._validation import as_codes, as_float_array, as_weights, check_same_shape

#: Summation index and number of elements.
j, N = sp.symbols("j N", integer=True, positive=True)
#: The values, codes, weights (indexed by j).
x, q, w = sp.IndexedBase("x"), sp.IndexedBase("q"), sp.IndexedBase("w")
#: The parameters: symmetric scale d; scale and min of the min convention.
d, scale, minimum = sp.symbols("d scale min", real=True)
_X, _Q, _W = x, q, w  # evaluate() takes arrays named x, q, w


def sum_j(expr: sp.Expr) -> sp.Sum:
    """``Sum(expr, (j, 1, N))``."""
    return sp.Sum(expr, (j, 1, N))


def expand_sums(expr: sp.Expr) -> sp.Expr:
    """Expand sums and pull every factor that does not depend on ``j`` out of them.

    ``Sum(2*d*w[j]*q[j]**2)`` becomes ``2*d*Sum(w[j]*q[j]**2)`` and ``Sum(1)`` becomes ``N``.
    """

    def pull(s: sp.Sum) -> sp.Expr:
        terms = sp.Add.make_args(sp.expand(s.function))
        out = sp.S.Zero
        for term in terms:
            const, dep = term.as_independent(j, as_Add=False)
            out += const * (sp.Sum(dep, *s.limits).doit() if dep == 1 else sp.Sum(dep, *s.limits))
        return out

    return sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), pull)


def _weight(weighted: bool) -> sp.Expr:
    return w[j] if weighted else sp.S.One


def symmetric_error(weighted: bool = True) -> sp.Sum:
    """``E(d) = Sum(w[j] * (x[j] - d*q[j])**2)`` (``w = 1`` when not weighted)."""
    return sum_j(_weight(weighted) * (x[j] - d * q[j]) ** 2)


def min_error(weighted: bool = True) -> sp.Sum:
    """``E(scale, min) = Sum(w[j] * (scale*q[j] + min - x[j])**2)`` (codes ``l`` are ``q[j]``)."""
    return sum_j(_weight(weighted) * (scale * q[j] + minimum - x[j]) ** 2)


def derive_lstsq_scale(weighted: bool = True) -> dict[str, sp.Expr]:
    """Derive ``d = Sum(w*x*q) / Sum(w*q**2)``.

    Returns
    -------
    dict
        ``"error"``: E(d); ``"gradient"``: dE/dd with the sums expanded; ``"curvature"``:
        d²E/dd² (``2*Sum(w*q**2) >= 0``: the stationary point is a minimum); ``"d"``: the solution.
    """
    error = symmetric_error(weighted)
    gradient = expand_sums(sp.diff(error, d))
    (solution,) = sp.solve(gradient, d)
    curvature = expand_sums(sp.diff(error, d, 2))
    return {"error": error, "gradient": gradient, "curvature": curvature, "d": solution}


def derive_lstsq_scale_min(weighted: bool = True) -> dict[str, sp.Expr]:
    """Derive the 2x2 normal equations of ``(scale, min)`` and solve them.

    Returns
    -------
    dict
        ``"error"``; ``"equations"``: the two gradient components (set to zero);
        ``"scale"`` and ``"min"``: the solutions; ``"determinant"``:
        ``D = Sum(w)*Sum(w*l**2) - Sum(w*l)**2`` (``N`` for ``Sum(w)`` when not weighted).
    """
    error = min_error(weighted)
    equations = [expand_sums(sp.diff(error, p)) for p in (scale, minimum)]
    sol = sp.solve(equations, [scale, minimum], dict=True)[0]
    a = sp.Matrix([[sp.diff(e, p) for p in (scale, minimum)] for e in equations])
    return {
        "error": error,
        "equations": equations,
        "scale": sp.factor_terms(expand_sums(sp.numer(sp.together(sol[scale]))))
        / sp.factor_terms(expand_sums(sp.denom(sp.together(sol[scale])))),
        "min": sp.factor_terms(expand_sums(sp.numer(sp.together(sol[minimum]))))
        / sp.factor_terms(expand_sums(sp.denom(sp.together(sol[minimum])))),
        "determinant": sp.expand(a.det() / 4),
    }


def evaluate(
    expr: sp.Expr, x: ArrayLike, q: ArrayLike, w: ArrayLike | None = None, **values: float
) -> np.ndarray:
    """Evaluate an expression built from sums over ``j`` for concrete arrays.

    Each ``Sum(f(x[j], q[j], w[j]), (j, 1, N))`` is computed as ``np.sum(f(x, q, w))``, ``N`` as
    ``len(x)``; other symbols (``d``, ``scale``, ``min``) take ``values``.

    Parameters
    ----------
    expr : sympy expression
    x, q : array_like
        Values and codes (1-D, same length).
    w : array_like, optional
        Weights, default ones.
    **values : float
        Values of remaining symbols by name, e.g. ``d=0.5``.

    Raises
    ------
    ValueError
        If a symbol is left without a value, or if ``expr`` is undefined for these arrays (a
        division by zero, e.g. the closed-form scale when every code is equal): the formula has
        no value there, and :func:`quantlab.lstsq_scale` / :func:`quantlab.lstsq_scale_min`
        give the degenerate answer. Never returns NaN.
    """
    xa = as_float_array(x, "x").ravel()
    qa = as_codes(q, "q").ravel().astype(np.float64)
    check_same_shape(xa, qa, "x", "q")
    wa = as_weights(w, xa.shape)
    rest = {sp.Symbol(k, real=True): v for k, v in values.items()}
    expr = sp.sympify(expr).xreplace(rest)
    xs, qs, ws = sp.symbols("x_j q_j w_j")
    elementwise = {_X[j]: xs, _Q[j]: qs, _W[j]: ws}
    sums = {}
    for s in expr.atoms(sp.Sum):
        f = sp.lambdify((xs, qs, ws), s.function.xreplace(elementwise), "numpy")
        sums[s] = sp.Float(float(np.sum(np.broadcast_to(f(xa, qa, wa), xa.shape))), 17)
    value = sp.N(expr.xreplace(sums).xreplace({N: len(xa)}), 17)
    if value.free_symbols:
        names = ", ".join(sorted(str(s) for s in value.free_symbols))
        raise ValueError(f"values must give every remaining symbol of expr, missing: {names}")
    if value.is_finite is not True:  # zoo or nan: a division by zero
        raise ValueError(f"expr is undefined for these x, q, w (it evaluates to {value})")
    return np.float64(value)
