"""quantlab.widgets without a browser or a kernel: pure functions and explorers.

The explorers are driven as a learner drives them (setting slider and dropdown values); the
readout and the plotted data are compared with values computed here independently: the SPEC's
formulas by hand, ``np.linalg.lstsq`` for the refits, ``quantlab.metrics`` on the independently
quantized data for MSE and SQNR.
"""

from __future__ import annotations

import html
import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image

from quantlab import metrics, widgets
from quantlab.data import PARAMS, X_EXAMPLE
from quantlab.widgets import find_artist

X = np.asarray(X_EXAMPLE)
LAYER = np.random.default_rng(7).laplace(scale=0.05, size=4096)


# -- independent quantizers (SPEC items 1, 2, 4) ----------------------------------------------


def by_hand(x: np.ndarray, n: int, scheme: str, offset: float = 0.0) -> dict:
    """Codes, x_hat and every level of ``scheme`` with the range widened by ``1 + offset``."""
    if scheme == "symmetric":
        k = 2 ** (n - 1) - 1
        s = (1 + offset) * np.max(np.abs(x)) / k
        q = np.clip(np.round(x / s), -k, k)
        return {"q": q, "x_hat": q * s, "levels": np.arange(-k, k + 1) * s, "scale": s}
    if scheme == "asymmetric":
        centre, half = (x.max() + x.min()) / 2, (1 + offset) * (x.max() - x.min()) / 2
        alpha, beta = centre + half, centre - half
        s = (alpha - beta) / (2**n - 1)
        z = np.round(-beta / s)
        q = np.clip(np.round(x / s) + z, 0, 2**n - 1)
        return {"q": q, "x_hat": (q - z) * s, "levels": (np.arange(2**n) - z) * s, "scale": s}
    if scheme == "signed_max":
        m = x[np.argmax(np.abs(x))]
        d = np.sign(m) * (1 + offset) * abs(m) / -(2 ** (n - 1))
        q = np.clip(np.round(x / d), -(2 ** (n - 1)), 2 ** (n - 1) - 1)
        levels = np.sort(np.arange(-(2 ** (n - 1)), 2 ** (n - 1)) * d)
        return {"q": q, "x_hat": q * d, "levels": levels, "scale": d}
    assert scheme == "use_min"
    lo = x.min()
    s = (1 + offset) * (x.max() - lo) / (2**n - 1)
    q = np.clip(np.round((x - lo) / s), 0, 2**n - 1)
    return {"q": q, "x_hat": s * q + lo, "levels": s * np.arange(2**n) + lo, "scale": s}


def readout_numbers(text: str) -> dict[str, str]:
    """``{"MSE": "0.1178", "SQNR": "22.54", ...}`` from a readout's HTML."""
    plain = re.sub(r"<[^>]+>", "", html.unescape(text))
    return dict(re.findall(r"(MSE|SQNR|max error|weighted MSE)\s+(-?[\d.e+-]+)", plain))


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# -- explore ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", widgets.SCHEMES)
@pytest.mark.parametrize("n_bits", [2, 4, 8])
@pytest.mark.parametrize("offset", [0.0, -0.2, 0.3])
def test_explore_round_matches_the_formulas(scheme, n_bits, offset):
    ref = by_hand(LAYER, n_bits, scheme, offset)
    s = widgets.explore(LAYER, n_bits, scheme=scheme, offset=offset)
    np.testing.assert_array_equal(s.q, ref["q"])
    np.testing.assert_allclose(s.x_hat, ref["x_hat"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.levels, ref["levels"], rtol=1e-12, atol=1e-15)
    assert s.clip_range == pytest.approx((ref["levels"].min(), ref["levels"].max()))
    assert s.scale == pytest.approx(ref["scale"], rel=1e-12)
    assert s.mse == pytest.approx(float(metrics.mse(LAYER, ref["x_hat"])), rel=1e-12)
    assert s.sqnr_db == pytest.approx(float(metrics.sqnr_db(LAYER, ref["x_hat"])), rel=1e-12)
    assert s.max_error == pytest.approx(np.max(np.abs(LAYER - ref["x_hat"])), rel=1e-12)
    shown = readout_numbers(s.readout())
    assert shown["MSE"] == f"{metrics.mse(LAYER, ref['x_hat']):.4g}"
    assert shown["SQNR"] == f"{metrics.sqnr_db(LAYER, ref['x_hat']):.2f}"


def test_explore_zero_is_a_level_of_the_zero_point_schemes():
    for scheme in ("symmetric", "asymmetric"):
        assert np.min(np.abs(widgets.explore(PARAMS, 8, scheme=scheme).levels)) == 0.0


def test_explore_refit_is_the_least_squares_scale():
    q = by_hand(X, 4, "signed_max")["q"]
    d = np.linalg.lstsq(q[:, None], X, rcond=None)[0][0]
    s = widgets.explore(X, 4, scheme="signed_max", method="refit")
    assert s.scale == pytest.approx(d, rel=1e-12)
    np.testing.assert_allclose(s.x_hat, d * q, rtol=1e-12)
    # use_min: the 2x2 normal equations (lstsq on [l, 1])
    l_codes = by_hand(X, 4, "use_min")["q"]
    coef = np.linalg.lstsq(np.column_stack([l_codes, np.ones(8)]), X, rcond=None)[0]
    s = widgets.explore(X, 4, scheme="use_min", method="refit")
    assert (s.scale, s.min) == pytest.approx(tuple(coef), rel=1e-10)
    # asymmetric: S refitted with the integer zero-point fixed
    ref = by_hand(X, 4, "asymmetric")
    z = round(-X.min() / ref["scale"])
    codes = ref["q"] - z
    s = widgets.explore(X, 4, scheme="asymmetric", method="refit")
    assert s.scale == pytest.approx(np.sum(X * codes) / np.sum(codes**2), rel=1e-12)
    assert s.zero_point == z


def test_explore_weighted_refit_and_weighted_mse():
    w = widgets.example_weights(8, seed=3)
    q = by_hand(X, 3, "signed_max")["q"]
    d = np.sum(w * X * q) / np.sum(w * q**2)
    s = widgets.explore(X, 3, scheme="signed_max", method="refit", w=w)
    assert s.scale == pytest.approx(d, rel=1e-12)
    assert s.weighted_mse == pytest.approx(np.mean(w * (X - d * q) ** 2), rel=1e-12)
    assert readout_numbers(s.readout())["weighted MSE"] == f"{s.weighted_mse:.4g}"
    assert widgets.explore(X, 3).weighted_mse is None


def test_explore_methods_never_beat_the_exact_optimum():
    """The optimum is the global minimum over d: no d of a fine scan does better."""
    best = widgets.explore(X, 3, scheme="signed_max", method="optimum").mse
    for method in ("round", "refit", "search", "refine"):
        assert widgets.explore(X, 3, scheme="signed_max", method=method).mse >= best - 1e-12
    ds = np.concatenate([np.linspace(-4, -0.05, 20000), np.linspace(0.05, 4, 20000)])
    q = np.clip(np.round(X[None, :] / ds[:, None]), -4, 3)
    scan = np.mean((X - ds[:, None] * q) ** 2, axis=1)
    assert best <= scan.min() + 1e-12
    assert best == pytest.approx(scan.min(), rel=1e-3)


def test_explore_staircase_curve_is_the_quantizer():
    s = widgets.explore(X, 3, scheme="use_min", curve_points=50)
    t, t_hat = s.curve
    ref = np.clip(np.round((t - X.min()) / s.scale), 0, 7) * s.scale + X.min()
    np.testing.assert_allclose(t_hat, ref, rtol=1e-12)
    assert len(t) == 50 and t[0] < X.min() and t[-1] > X.max()


def test_explore_degenerate_data():
    for x in (np.zeros(6), np.full(5, -2.5)):
        for scheme in widgets.SCHEMES:
            s = widgets.explore(x, 4, scheme=scheme)
            assert np.all(np.isfinite(s.x_hat)) and np.isfinite(s.mse)
            assert s.mse == pytest.approx(0.0, abs=1e-24)
            assert s.sqnr_db == np.inf or s.mse == 0


def test_explore_leaves_its_input_alone():
    x = LAYER.copy()
    w = np.ones_like(x)
    widgets.explore(x, 4, method="search", w=w)
    np.testing.assert_array_equal(x, LAYER)
    np.testing.assert_array_equal(w, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheme": "log"}, "scheme"),
        ({"method": "magic"}, "method"),
        ({"scheme": "symmetric", "method": "search"}, "min convention"),
        ({"scheme": "use_min", "method": "optimum"}, "optimum"),
        ({"offset": -1.0}, "offset"),
        ({"offset": float("nan")}, "offset"),
        ({"n_bits": 1}, "n_bits"),
        ({"n_bits": 17}, "n_bits"),
        ({"w": np.ones(3)}, "w"),
        ({"w": -np.ones(8)}, "w"),
    ],
)
def test_explore_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        widgets.explore(X, **kwargs)


def test_explore_rejects_bad_data():
    with pytest.raises(ValueError, match="x"):
        widgets.explore([1.0, np.inf])
    with pytest.raises(ValueError, match="x"):
        widgets.explore([])
    with pytest.raises(TypeError, match="x"):
        widgets.explore(["a", "b"])
    with pytest.raises(TypeError, match="n_bits"):
        widgets.explore(X, 4.5)


# -- QuantExplorer ----------------------------------------------------------------------------


def test_quant_explorer_follows_its_controls():
    ex = widgets.QuantExplorer(LAYER, n_bits=4, scheme="signed_max")
    first_png = ex.image.value
    assert png_pixels(first_png).shape == (290, 720, 3)
    for n_bits, offset, scheme in [(5, 0.0, "signed_max"), (3, -0.2, "asymmetric"),
                                   (6, 0.25, "use_min"), (2, 0.1, "symmetric")]:  # fmt: skip
        ex.controls["n_bits"].value = n_bits
        ex.controls["offset"].value = offset
        ex.controls["scheme"].value = scheme
        ref = by_hand(LAYER, n_bits, scheme, offset)
        shown = readout_numbers(ex.readout.value)
        assert shown["MSE"] == f"{metrics.mse(LAYER, ref['x_hat']):.4g}"
        assert shown["SQNR"] == f"{metrics.sqnr_db(LAYER, ref['x_hat']):.2f}"
        left, right = ex.axes
        segments = find_artist(left, "levels").get_segments()
        np.testing.assert_allclose(
            sorted(seg[0, 0] for seg in segments), ref["levels"], rtol=1e-12, atol=1e-15
        )
        clip_x = find_artist(left, "clip range").get_xdata()
        assert (clip_x[0], clip_x[-1]) == pytest.approx((ref["levels"][0], ref["levels"][-1]))
        order = np.argsort(LAYER, kind="stable")
        values = find_artist(right, "values")
        np.testing.assert_allclose(values.get_xdata(), LAYER[order])
        np.testing.assert_allclose(values.get_ydata(), ref["x_hat"][order], rtol=1e-12)
        lo, hi = left.get_xlim()
        assert lo <= min(LAYER.min(), ref["levels"][0])
        assert hi >= max(LAYER.max(), ref["levels"][-1])
        assert f"{n_bits} bits" in left.get_title()
    assert not np.array_equal(png_pixels(ex.image.value), png_pixels(first_png))


def test_quant_explorer_update_draws_what_a_fresh_explorer_draws():
    """The cached background plus the moving artists equals a full drawing of the same state."""
    ex = widgets.QuantExplorer(LAYER, n_bits=4, scheme="signed_max")
    ex.update(n_bits=6, offset=-0.1, method="refit")
    fresh = widgets.QuantExplorer(LAYER, n_bits=6, scheme="signed_max", method="refit", offset=-0.1)
    np.testing.assert_array_equal(png_pixels(ex.image.value), png_pixels(fresh.image.value))


def test_quant_explorer_weights_box():
    w = widgets.example_weights(LAYER.size)
    ex = widgets.QuantExplorer(LAYER, w, scheme="signed_max", method="refit")
    assert "weighted MSE" not in ex.readout.value
    ex.controls["weights"].value = True
    q = by_hand(LAYER, 4, "signed_max")["q"]
    d = np.sum(w * LAYER * q) / np.sum(w * q**2)
    assert ex.state.scale == pytest.approx(d, rel=1e-12)
    assert readout_numbers(ex.readout.value)["weighted MSE"] == (
        f"{metrics.mse(LAYER, d * q, w):.4g}"
    )


def test_explorers_offer_only_the_methods_a_scheme_supports():
    """Every scheme x method an explorer offers computes; the others are not offered."""
    for scheme in widgets.SCHEMES:
        offered = widgets.methods_for(scheme)
        for method in widgets.EXPLORER_METHODS:
            if method in offered:
                assert widgets.explore(X, 3, scheme=scheme, method=method).method == method
            else:
                with pytest.raises(ValueError, match="needs"):
                    widgets.explore(X, 3, scheme=scheme, method=method)
    ex = widgets.QuantExplorer(X, scheme="use_min", method="search")
    assert ex.controls["method"].options == widgets.methods_for("use_min")
    png = ex.image.value
    ex.controls["scheme"].value = "symmetric"  # search is not offered there: round instead
    assert ex.controls["method"].options == ("round", "refit")
    assert ex.controls["method"].value == "round"
    assert ex.error is None and ex.state.scheme == "symmetric" and ex.state.method == "round"
    assert "not available" in ex.readout.value
    assert not np.array_equal(png_pixels(png), png_pixels(ex.image.value))  # no stale plot
    bits = widgets.BitsExplorer(PARAMS, method="optimum", scheme="signed_max")
    bits.controls["scheme"].value = "asymmetric"
    assert bits.error is None and bits.controls["method"].value == "round"
    assert widgets.WeightsExplorer(X, use_min=True).controls["method"].options == (
        "refit",
        "search",
        "refine",
    )


def test_quant_explorer_disables_the_offset_where_unused():
    ex = widgets.QuantExplorer(X, scheme="signed_max")
    assert not ex.controls["offset"].disabled
    ex.controls["method"].value = "search"
    assert ex.controls["offset"].disabled
    assert "range offset not used" in ex.readout.value
    ex.controls["method"].value = "refit"
    assert not ex.controls["offset"].disabled
    assert "not used" not in ex.readout.value


def test_an_explorer_error_hides_the_plot_of_the_old_setting(monkeypatch):
    ex = widgets.QuantExplorer(X, scheme="signed_max")
    assert ex.image.layout.visibility == "visible"

    def fail(**values):
        raise ValueError("x: something is wrong with this setting")

    monkeypatch.setattr(ex, "compute", fail)
    ex.controls["n_bits"].value = 3
    assert ex.error is not None and "color:#b00" in ex.readout.value
    assert ex.image.layout.visibility == "hidden"
    monkeypatch.undo()
    ex.controls["n_bits"].value = 5
    assert ex.error is None and ex.image.layout.visibility == "visible"


def test_many_levels_are_drawn_thinner():
    ex = widgets.QuantExplorer(LAYER, scheme="signed_max", n_bits=4)
    levels = find_artist(ex.axes[0], "levels")
    wide = levels.get_linewidth()[0]
    ex.controls["n_bits"].value = 8
    assert len(levels.get_segments()) == 256
    assert levels.get_linewidth()[0] < wide / 2
    assert levels.get_alpha() < 0.3


def test_quant_explorer_default_data_and_any_array():
    ex = widgets.QuantExplorer()
    np.testing.assert_array_equal(ex.x, X_EXAMPLE)
    grid = widgets.QuantExplorer([[1.0, -2.0], [3.0, 0.5]], n_bits=2)
    np.testing.assert_array_equal(grid.x, [1.0, -2.0, 3.0, 0.5])
    assert len(grid.state.levels) == 4


def test_explorers_reject_bad_data_and_controls():
    for cls in (widgets.QuantExplorer, widgets.SearchExplorer, widgets.BitsExplorer,
                widgets.WeightsExplorer):  # fmt: skip
        with pytest.raises(ValueError, match="x"):
            cls([0.5, np.nan])
        with pytest.raises(ValueError, match="w"):
            cls([1.0, 2.0, 3.0], w=[1.0, 2.0])
    ex = widgets.QuantExplorer(X)
    with pytest.raises(ValueError, match="unknown controls"):
        ex.update(bits=3)
    with pytest.raises(KeyError):
        find_artist(ex.axes[0], "no such artist")


# -- SearchExplorer ---------------------------------------------------------------------------


def _reference_search(x: np.ndarray, n: int, relative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Grid search with a minimum by hand: offsets and errors after an lstsq refit."""
    offsets = np.arange(-10, 11) / (40 if relative else 10)
    width = x.max() - x.min()
    errors = []
    for o in offsets:
        scale = (width + (o * width if relative else o)) / (2**n - 1)
        codes = np.clip(np.round((x - x.min()) / scale), 0, 2**n - 1)
        design = np.column_stack([codes, np.ones_like(codes)])
        coef = np.linalg.lstsq(design, x, rcond=None)[0]
        errors.append(np.mean((x - design @ coef) ** 2))
    return offsets, np.array(errors)


def test_search_explorer_lines_and_readout():
    ex = widgets.SearchExplorer(X, n_bits=4)
    for n_bits, relative in [(4, True), (3, True), (3, False)]:
        ex.update(n_bits=n_bits, relative=relative)
        offsets, errors = _reference_search(X, n_bits, relative)
        after = find_artist(ex.axes[0], "after refit")
        np.testing.assert_allclose(after.get_xdata(), offsets)
        np.testing.assert_allclose(after.get_ydata(), errors, rtol=1e-9, atol=1e-15)
        best = int(np.argmin(errors))
        plain = html.unescape(re.sub(r"<[^>]+>", "", ex.readout.value))
        assert f"after refit {errors[best]:.4g}" in plain
        assert f"best offset {offsets[best]:+.4g}" in plain
        star = find_artist(ex.axes[1], "best candidate")
        assert star.get_ydata()[0] == pytest.approx(float(ex.state.result.min))
        assert ex.state.errors.shape == (32, 32)


def test_search_explorer_signed_scale_landscape():
    ex = widgets.SearchExplorer(X, n_bits=3, use_min=False)
    line = find_artist(ex.axes[1], "error of d")
    d = line.get_xdata()
    q = np.clip(np.round(X[None, :] / d[:, None]), -4, 3)
    np.testing.assert_allclose(line.get_ydata(), np.mean((X - d[:, None] * q) ** 2, axis=1))
    png = ex.image.value
    ex.controls["use_min"].value = True  # switches to the 2-D landscape
    assert ex.state.mins is not None
    assert any(c.get_label() == "candidates" for c in ex.axes[1].lines)
    assert not np.array_equal(png_pixels(png), png_pixels(ex.image.value))


# -- BitsExplorer -----------------------------------------------------------------------------


def test_bits_explorer_measured_sqnr_and_rule():
    ex = widgets.BitsExplorer(PARAMS)
    x = np.asarray(PARAMS)
    for scheme in ("symmetric", "asymmetric", "use_min"):
        ex.controls["scheme"].value = scheme
        expected = [float(metrics.sqnr_db(x, by_hand(x, n, scheme)["x_hat"])) for n in range(2, 9)]
        measured = find_artist(ex.axes[0], "measured")
        np.testing.assert_array_equal(measured.get_xdata(), np.arange(2, 9))
        np.testing.assert_allclose(measured.get_ydata(), expected, rtol=1e-12)
        slope = np.polyfit(np.arange(2, 9), expected, 1)[0]
        assert f"measured slope</b> {slope:.2f} dB/bit" in ex.readout.value
        rule = find_artist(ex.axes[0], "6.02 dB/bit")
        assert np.polyfit(rule.get_xdata(), rule.get_ydata(), 1)[0] == pytest.approx(
            20 * np.log10(2)
        )
        lo, hi = ex.axes[0].get_ylim()
        assert lo <= min(expected) and hi >= max(expected)


# -- WeightsExplorer and compare_weights --------------------------------------------------------


def test_weights_explorer_bars_are_the_two_fits():
    w = widgets.example_weights(8, seed=5)
    ex = widgets.WeightsExplorer(X, w, n_bits=3)
    for strength in (1.0, 0.5, 2.0):
        ex.controls["strength"].value = strength
        wg = w**strength
        q = by_hand(X, 3, "signed_max")["q"]
        d0 = np.linalg.lstsq(q[:, None], X, rcond=None)[0][0]
        d1 = np.sum(wg * X * q) / np.sum(wg * q**2)
        bars0 = find_artist(ex.axes[0], "unweighted fit").get_data().values[::2]
        bars1 = find_artist(ex.axes[0], "weighted fit").get_data().values[::2]
        np.testing.assert_allclose(bars0, (X - d0 * q) ** 2, rtol=1e-10)
        np.testing.assert_allclose(bars1, (X - d1 * q) ** 2, rtol=1e-10)
        twin = next(a for a in ex.figure.axes if a is not ex.axes[0])
        shown = find_artist(twin, "weight").get_ydata()
        np.testing.assert_allclose(shown, wg / wg.max(), rtol=1e-12)
        text = html.unescape(re.sub(r"<[^>]+>", "", ex.readout.value))
        wm0, wm1 = np.mean(wg * (X - d0 * q) ** 2), np.mean(wg * (X - d1 * q) ** 2)
        assert f"unweighted fit {wm0:.4g} → weighted fit {wm1:.4g}" in text
        assert wm1 <= wm0
        assert ex.axes[0].get_ylim()[1] >= max(bars0.max(), bars1.max())
    ex.controls["strength"].value = 0.0  # uniform weights: exactly the unweighted fit
    bars0 = find_artist(ex.axes[0], "unweighted fit").get_data().values[::2]
    bars1 = find_artist(ex.axes[0], "weighted fit").get_data().values[::2]
    np.testing.assert_array_equal(bars0, bars1)


def test_compare_weights_methods_and_bad_input():
    w = widgets.example_weights(LAYER.size)
    # Refit (same codes), search (same candidates) and the exact optimum minimise the weighted
    # error over a set that contains the unweighted fit; refinement may reach another local
    # minimum, so it is only checked for consistent numbers.
    for method in ("refit", "search", "refine", "optimum"):
        c = widgets.compare_weights(LAYER, w, 4, method=method)
        if method != "refine":
            assert c.weighted_mse[1] <= c.weighted_mse[0] * (1 + 1e-9)
        assert c.weighted_mse[1] == pytest.approx(float(metrics.mse(LAYER, c.weighted.x_hat, w)))
        assert c.mse[0] == pytest.approx(float(metrics.mse(LAYER, c.unweighted.x_hat)))
    with pytest.raises(ValueError, match="strength"):
        widgets.compare_weights(X, np.ones(8), strength=-1.0)
    with pytest.raises(ValueError, match="method"):
        widgets.compare_weights(X, np.ones(8), method="round")
    with pytest.raises(ValueError, match="w"):
        widgets.compare_weights(X, np.ones(7))
    zero = widgets.compare_weights(X, np.zeros(8), 3)  # all-zero weights: no NaN
    assert np.all(np.isfinite(zero.weighted.x_hat))


def test_example_weights():
    w = widgets.example_weights(1000, seed=1)
    assert w.shape == (1000,) and np.all(w > 0)
    np.testing.assert_array_equal(w, widgets.example_weights(1000, seed=1))
    assert w.max() / np.median(w) > 10  # a few inputs matter far more than the rest
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n"):
            widgets.example_weights(bad)


def test_explorers_accept_a_large_array():
    for cls in (widgets.QuantExplorer, widgets.SearchExplorer, widgets.BitsExplorer,
                widgets.WeightsExplorer):  # fmt: skip
        ex = cls(LAYER)
        assert ex.error is None and ex.state is not None
        assert png_pixels(ex.image.value).ndim == 3


@pytest.mark.parametrize(
    ("make", "steps"),
    [
        (lambda: widgets.QuantExplorer(LAYER), [{"n_bits": 6}, {"offset": 0.2},
                                               {"scheme": "symmetric"}, {"method": "refit"}]),
        (lambda: widgets.SearchExplorer(X), [{"weights": True}, {"n_bits": 3},
                                             {"use_min": False}, {"relative": False}]),
        (lambda: widgets.BitsExplorer(PARAMS), [{"scheme": "use_min"}, {"method": "refine"}]),
        (lambda: widgets.WeightsExplorer(X), [{"strength": 0.6}, {"n_bits": 5},
                                              {"method": "optimum"}]),
    ],
)  # fmt: skip
def test_incremental_updates_draw_the_full_picture(make, steps):
    """After each update the image equals a drawing of the whole figure from scratch."""
    ex = make()
    for values in steps:
        before = ex.image.value
        ex.update(**values)
        assert ex.error is None
        ex._background = None  # force a full drawing of the same state
        full = ex.render()
        np.testing.assert_array_equal(png_pixels(ex.image.value), png_pixels(full))
        assert not np.array_equal(png_pixels(before), png_pixels(full)), values
