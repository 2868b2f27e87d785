"""quantlab.plots: the numbers behind every plot, checked against independent computations.

No pixels: each test reads the plotted data back from the artists (line data, step-patch
heights, level positions, marker positions) and compares it with values computed here from the
formulas of the SPEC, with ``np.histogram``, ``np.polyfit`` or ``np.linalg.lstsq``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.contour import ContourSet
from matplotlib.patches import StepPatch

from quantlab import Quantizer, plots
from quantlab.data import PARAMS, X_EXAMPLE
from quantlab.table import Table
from quantlab.widgets import explore, search_view


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def labelled(ax: Axes, label: str):
    """The one artist of ``ax`` with this legend label."""
    found = [
        a
        for a in (*ax.lines, *ax.collections, *ax.patches)
        if a.get_label() == label
    ]  # fmt: skip
    assert len(found) == 1, f"{len(found)} artists labelled {label!r}"
    return found[0]


def asymmetric_levels(x: np.ndarray, n: int) -> np.ndarray:
    """SPEC item 1 by hand: S = (max - min)/(2^n - 1), Z = round(-min/S), levels (q - Z)*S."""
    s = (x.max() - x.min()) / (2**n - 1)
    z = np.round(-x.min() / s)
    return (np.arange(2**n) - z) * s


def signed_max(x: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """SPEC item 4 by hand: d = m / -2^(n-1), q = clip(round(x/d), -2^(n-1), 2^(n-1) - 1)."""
    m = x[np.argmax(np.abs(x))]
    d = m / -(2 ** (n - 1))
    return np.clip(np.round(x / d), -(2 ** (n - 1)), 2 ** (n - 1) - 1), d


# -- histogram ------------------------------------------------------------------------------------


def test_histogram_bars_levels_and_clip_range():
    x = np.asarray(PARAMS)
    state = explore(x, 4, scheme="asymmetric")
    ax = plots.plot_histogram(x, state.levels, state.clip_range, bins=10)
    assert isinstance(ax, Axes)
    counts, edges = np.histogram(x, bins=10)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_array_equal(heights, counts)
    np.testing.assert_allclose([p.get_x() for p in ax.patches], edges[:-1])
    levels = labelled(ax, "levels")
    assert isinstance(levels, LineCollection)
    xs = np.array([seg[0, 0] for seg in levels.get_segments()])
    assert all(seg[0, 0] == seg[1, 0] for seg in levels.get_segments())  # vertical lines
    expected = asymmetric_levels(x, 4)
    np.testing.assert_allclose(xs, expected, rtol=1e-12, atol=1e-15)
    assert 0.0 in xs or np.min(np.abs(xs)) < 1e-15  # zero is a level (integer zero-point)
    clip = labelled(ax, "clip range")
    cx = clip.get_xdata()
    np.testing.assert_allclose([cx[0], cx[-1]], [expected.min(), expected.max()])
    assert max(clip.get_ydata()[np.isfinite(clip.get_ydata())]) == counts.max()


def test_histogram_on_given_axes_and_without_overlays():
    fig, ax = plt.subplots()
    out = plots.plot_histogram([1.0, 2.0, 2.0, 3.0], bins=3, ax=ax)
    assert out is ax and out.figure is fig
    assert [p.get_height() for p in ax.patches] == [1, 2, 1]
    assert not ax.collections and not ax.lines


def test_histogram_rejects_bad_x():
    with pytest.raises(ValueError, match="x"):
        plots.plot_histogram([1.0, np.nan])
    with pytest.raises(ValueError, match="x"):
        plots.plot_histogram([])


# -- staircase ------------------------------------------------------------------------------------


def test_staircase_points_curve_and_identity():
    x = np.asarray(X_EXAMPLE)
    q, d = signed_max(x, 3)
    x_hat = d * q
    state = explore(x, 3, scheme="signed_max", curve_points=101)
    ax = plots.plot_staircase(x, state.x_hat, curve=state.curve)
    values = labelled(ax, "values")
    order = np.argsort(x)
    np.testing.assert_allclose(values.get_xdata(), x[order])
    np.testing.assert_allclose(values.get_ydata(), x_hat[order], rtol=1e-12)
    t, t_hat = labelled(ax, "staircase").get_data()
    assert len(t) == 101 and t[0] < x.min() and t[-1] > x.max()
    qt = np.clip(np.round(t / d), -4, 3)
    np.testing.assert_allclose(t_hat, d * qt, rtol=1e-12)
    ident = labelled(ax, "x̂ = x")
    np.testing.assert_allclose(ident.get_xdata(), ident.get_ydata())


def test_staircase_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="same size"):
        plots.plot_staircase([1.0, 2.0], [1.0])


# -- search ---------------------------------------------------------------------------------------


def test_search_lines_are_the_refitted_candidates():
    """Reference (absolute) grid on X_EXAMPLE: every candidate recomputed with lstsq."""
    x = np.asarray(X_EXAMPLE)
    res = Quantizer(4, use_min=True).search(x, relative=False)
    ax = plots.plot_search(res.table)
    offsets = np.arange(-10, 11) / 10
    before, after = [], []
    for o in offsets:
        scale, lo = (x.max() - x.min() + o) / 15, x.min()
        codes = np.clip(np.round((x - lo) / scale), 0, 15)
        before.append(np.mean((x - scale * codes - lo) ** 2))
        design = np.column_stack([codes, np.ones_like(codes)])
        coef = np.linalg.lstsq(design, x, rcond=None)[0]
        after.append(np.mean((x - design @ coef) ** 2))
    line_b, line_a = labelled(ax, "before refit"), labelled(ax, "after refit")
    np.testing.assert_allclose(line_b.get_xdata(), offsets)
    np.testing.assert_allclose(line_b.get_ydata(), before, rtol=1e-9)
    np.testing.assert_allclose(line_a.get_ydata(), after, rtol=1e-9, atol=1e-15)
    best = labelled(ax, "best")
    k = int(np.argmin(after))
    assert best.get_xdata()[0] == pytest.approx(offsets[k])
    assert best.get_ydata()[0] == pytest.approx(min(after), rel=1e-9)


def test_search_needs_the_columns():
    with pytest.raises(ValueError, match="error_before"):
        plots.plot_search(Table({"offset": np.zeros(2), "error_after": np.zeros(2)}))


# -- bits -----------------------------------------------------------------------------------------


def test_bits_sweep_and_the_6db_line():
    x = np.asarray(PARAMS)
    bits, sqnr = plots.bits_sweep(x, range(2, 9), scheme="symmetric")
    expected = []
    for n in range(2, 9):  # SPEC item 2 by hand, SQNR from its definition
        k = 2 ** (n - 1) - 1
        s = np.max(np.abs(x)) / k
        err = x - s * np.clip(np.round(x / s), -k, k)
        expected.append(10 * np.log10(np.sum(x**2) / np.sum(err**2)))
    np.testing.assert_array_equal(bits, np.arange(2, 9))
    np.testing.assert_allclose(sqnr, expected, rtol=1e-12)
    ax = plots.plot_bits(bits, sqnr)
    measured = labelled(ax, "measured")
    np.testing.assert_allclose(measured.get_ydata(), expected, rtol=1e-12)
    rule = labelled(ax, "6.02 dB/bit")
    slope, intercept = np.polyfit(rule.get_xdata(), rule.get_ydata(), 1)
    assert slope == pytest.approx(20 * np.log10(2), rel=1e-9)
    # the line's intercept fits the measurements best: residuals sum to zero
    assert np.sum(np.asarray(expected) - (slope * bits + intercept)) == pytest.approx(0, abs=1e-9)
    assert plots.DB_PER_BIT == pytest.approx(6.0206, abs=1e-4)


def test_bits_rejects_bad_input():
    with pytest.raises(ValueError, match="same size"):
        plots.plot_bits([2, 3], [1.0])
    with pytest.raises(ValueError, match="bits"):
        plots.bits_sweep(PARAMS, [])
    with pytest.raises(ValueError, match="sqnr"):
        plots.plot_bits([2, 3], [1.0, np.inf])


# -- landscape ------------------------------------------------------------------------------------


def test_error_landscape_is_the_brute_force_error():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=37), rng.uniform(0, 2, size=37)
    scales, mins = np.linspace(0.1, 1.0, 7), np.linspace(-3, -1, 5)
    got = plots.error_landscape(x, 3, scales, mins, w)
    assert got.shape == (7, 5)
    for i, s in enumerate(scales):
        for j, m in enumerate(mins):
            codes = np.clip(np.round((x - m) / s), 0, 7)
            assert got[i, j] == pytest.approx(np.mean(w * (x - s * codes - m) ** 2), rel=1e-12)
    unweighted = plots.error_landscape(x, 3, scales, mins)
    np.testing.assert_allclose(unweighted, plots.error_landscape(x, 3, scales, mins, np.ones(37)))


def test_landscape_marks_the_least_squares_optimum():
    x = np.asarray(X_EXAMPLE)
    view = search_view(x, 4, grid=20)
    codes = view.result.q
    design = np.column_stack([codes, np.ones(codes.size)])
    scale, minimum = np.linalg.lstsq(design, x, rcond=None)[0]
    assert view.optimum == pytest.approx((scale, minimum), rel=1e-9)
    ax = plots.plot_landscape(
        view.scales, view.mins, view.errors, optimum=(scale, minimum), candidates=view.candidates
    )
    star = labelled(ax, "best candidate")
    assert star.get_xdata()[0] == pytest.approx(scale) and star.get_ydata()[0] == pytest.approx(
        minimum
    )
    cand = labelled(ax, "candidates")
    np.testing.assert_allclose(cand.get_xdata(), view.result.table["scale"])
    np.testing.assert_allclose(cand.get_ydata(), view.result.table["min"])
    filled = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    assert len(filled) == 1
    z = np.log10(view.errors)
    assert filled[0].levels.min() <= z.min() and filled[0].levels.max() >= z.max()
    assert ax.get_xlabel() == "scale" and ax.get_ylabel() == "min"


def test_landscape_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        plots.plot_landscape([1.0, 2.0], [0.0], np.ones((1, 2)))
    with pytest.raises(ValueError, match="scales"):
        plots.error_landscape([1.0, 2.0], 4, [0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="n_bits"):
        plots.error_landscape([1.0, 2.0], 1, [1.0], [0.0])
    with pytest.raises(ValueError, match="w"):
        plots.error_landscape([1.0, 2.0], 4, [1.0], [0.0], w=[1.0])


# -- weighted errors ------------------------------------------------------------------------------


def test_weighted_error_bars_and_weights():
    x = np.asarray(X_EXAMPLE)
    w = np.array([1.0, 4.0, 0.5, 2.0, 0.1, 3.0, 1.0, 2.5])
    q, _ = signed_max(x, 3)
    d_plain = np.linalg.lstsq(q[:, None], x, rcond=None)[0][0]
    sw = np.sqrt(w)
    d_weighted = np.linalg.lstsq((sw * q)[:, None], sw * x, rcond=None)[0][0]
    ax = plots.plot_weighted_errors(x, d_plain * q, d_weighted * q, w)
    plain, weighted = labelled(ax, "unweighted fit"), labelled(ax, "weighted fit")
    assert isinstance(plain, StepPatch) and isinstance(weighted, StepPatch)
    np.testing.assert_allclose(plain.get_data().values[::2], (x - d_plain * q) ** 2)
    np.testing.assert_allclose(weighted.get_data().values[::2], (x - d_weighted * q) ** 2)
    assert np.all(plain.get_data().values[1::2] == 0)  # gaps between bars
    np.testing.assert_allclose(plain.get_data().edges[::2], np.arange(8) - 0.4)
    np.testing.assert_allclose(weighted.get_data().edges[::2], np.arange(8))
    twin = next(a for a in ax.figure.axes if a is not ax)
    np.testing.assert_allclose(labelled(twin, "weight").get_ydata(), w)
    # the weighted fit trades plain error for weighted error
    e0, e1 = (x - d_plain * q) ** 2, (x - d_weighted * q) ** 2
    assert np.sum(w * e1) <= np.sum(w * e0) and np.sum(e0) <= np.sum(e1)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "unweighted fit",
        "weighted fit",
        "weight",
    ]


def test_bar_steps():
    edges, values = plots.bar_steps([0.0, 1.0, 2.0], 0.5, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(edges, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(values, [3.0, 0.0, 4.0, 0.0, 5.0])


def test_weighted_errors_reject_bad_input():
    with pytest.raises(ValueError, match="w"):
        plots.plot_weighted_errors([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="same size"):
        plots.plot_weighted_errors([1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 1.0])


def test_every_plot_returns_the_axes_it_was_given():
    x = np.asarray(X_EXAMPLE)
    state = explore(x, 3)
    view = search_view(x, 3, grid=8)
    bits, sqnr = plots.bits_sweep(x, [2, 3])
    calls = [
        lambda ax: plots.plot_histogram(x, state.levels, state.clip_range, ax=ax),
        lambda ax: plots.plot_staircase(x, state.x_hat, ax=ax),
        lambda ax: plots.plot_search(view.result.table, ax=ax),
        lambda ax: plots.plot_bits(bits, sqnr, ax=ax),
        lambda ax: plots.plot_landscape(view.scales, view.mins, view.errors, ax=ax),
        lambda ax: plots.plot_weighted_errors(x, state.x_hat, state.x_hat, np.ones(8), ax=ax),
    ]
    for call in calls:
        fig, ax = plt.subplots()
        assert call(ax) is ax
        assert ax.has_data()
        plt.close(fig)
    x_before = x.copy()
    plots.plot_histogram(x, state.levels)
    np.testing.assert_array_equal(x, x_before)
