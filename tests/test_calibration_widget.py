"""quantlab.widgets.calibration without a browser or a kernel.

The explorer is driven as a learner drives it (setting the sliders); the readout and the plotted
data are compared with the split of the error computed here by hand from SPEC item 1 (unsigned
codes, ``S = top/(2**n − 1)``, ``Z = 0``; symmetric ``[−top, top]`` for signed data), and the
method markers with quantlab.calibration's own functions.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image

from quantlab import calibration as cal
from quantlab import widgets
from quantlab.widgets import find_artist

ACT = widgets.example_activations(5000, seed=3)


def by_hand(x: np.ndarray, n: int, top: float) -> tuple[float, float, float]:
    """(clip MSE, rounding MSE, clipped fraction) of the range [0, top] or [-top, top]."""
    signed = np.any(x < 0)
    lo = -top if signed else 0.0
    S = (top - lo) / (2**n - 1)
    Z = np.round(-lo / S)
    q = np.clip(np.round(x / S) + Z, 0, 2**n - 1)
    err = (x - (q - Z) * S) ** 2
    out = (x < -Z * S) | (x > (2**n - 1 - Z) * S)
    return err[out].sum() / x.size, err[~out].sum() / x.size, out.mean()


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("signed", [False, True])
def test_calibration_view_is_the_split_by_hand(signed):
    x = np.random.default_rng(1).standard_t(3, 3000) if signed else ACT
    for n, top in ((4, 2.0), (8, 0.7), (3, float(np.abs(x).max()))):
        view = widgets.calibration_view(x, n, top)
        clip, rnd, frac = by_hand(x, n, top)
        assert view.signed == signed
        assert view.clip == pytest.approx(clip, rel=1e-12, abs=1e-300)
        assert view.rounding == pytest.approx(rnd, rel=1e-12)
        assert view.clipped == pytest.approx(frac)
        assert view.total == pytest.approx(clip + rnd, rel=1e-12)
        k = 17
        clip_k, rnd_k, _ = by_hand(x, n, float(view.tops[k]))
        assert view.clip_curve[k] == pytest.approx(clip_k, rel=1e-12, abs=1e-300)
        assert view.rounding_curve[k] == pytest.approx(rnd_k, rel=1e-12)
    assert view.tops[-1] == pytest.approx(np.abs(x).max())
    assert view.methods["min/max"] == np.abs(x).max()
    assert view.methods["KL"] == pytest.approx(float(cal.kl_range(x, n)[1]))
    assert view.methods["percentile 99.9"] == pytest.approx(
        float(np.percentile(np.abs(x) if signed else x, 99.9))
    )


def test_calibration_view_bad_input():
    with pytest.raises(ValueError, match="top must be positive"):
        widgets.calibration_view(ACT, 4, -1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        widgets.calibration_view([1.0, np.nan])
    with pytest.raises(ValueError, match="n_bits must be between"):
        widgets.calibration_view(ACT, 1)
    with pytest.raises(ValueError, match="all zero"):
        widgets.CalibrationExplorer(np.zeros(10))


def test_explorer_sliders_move_the_range_and_the_point():
    ex = widgets.CalibrationExplorer(ACT, n_bits=4)
    ax0, ax1 = ex.axes
    for top in (0.5, 2.0, 4.0):
        ex.controls["top"].value = top
        clip, rnd, frac = by_hand(ACT, 4, top)
        assert find_artist(ax0, "range top").get_xdata()[0] == top
        px, py = find_artist(ax1, "current").get_data()
        assert px[0] == top
        assert py[0] == pytest.approx(clip + rnd, rel=1e-12)
        assert f"<b>MSE</b> {clip + rnd:.3g}" in ex.readout.value
        assert f"<b>clipped</b> {100 * frac:.3g} %" in ex.readout.value
    before = find_artist(ax1, "rounding").get_ydata().copy()
    ex.controls["n_bits"].value = 6
    after = find_artist(ax1, "rounding").get_ydata()
    k = 30
    _, rnd_k, _ = by_hand(ACT, 6, float(ex.state.tops[k]))
    assert after[k] == pytest.approx(rnd_k, rel=1e-12)
    assert np.all(after < before)  # 4 times finer grid: a sixteenth of the rounding error
    lo, hi = ax1.get_ylim()
    total = find_artist(ax1, "total").get_ydata()
    assert lo <= total.min() and hi >= total.max()
    # every method's marker on the histogram is at its calibrated top
    for name, value in ex.state.methods.items():
        assert find_artist(ax0, name).get_xdata()[0] == value
    assert f"MSE search {ex.state.methods['MSE search']:.3g}" in ex.readout.value


@pytest.mark.parametrize("steps", [[{"top": 1.5}, {"n_bits": 3}, {"top": 6.0, "n_bits": 8}]])
def test_incremental_updates_draw_the_full_picture(steps):
    ex = widgets.CalibrationExplorer(ACT, n_bits=4)
    for values in steps:
        before = ex.image.value
        ex.update(**values)
        assert ex.error is None
        ex._background = None  # force a full drawing of the same state
        full = ex.render()
        np.testing.assert_array_equal(png_pixels(ex.image.value), png_pixels(full))
        assert not np.array_equal(png_pixels(before), png_pixels(full)), values
