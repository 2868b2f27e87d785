"""quantlab.calibration against direct formulas and a brute-force KL.

- percentile_range: ``np.percentile`` itself, per tensor and per axis.
- mse_range: the range is the grid of ``Quantizer.search``'s best candidate (and that grid
  reproduces the search's dequantized values).
- kl_divergences: a loop written here from TensorRT's description (one candidate at a time, one
  group at a time), and histograms whose optimum is known: a flat histogram ending at bin i* has
  divergence 0 exactly at i* and positive before it.
"""

from __future__ import annotations

import numpy as np
import pytest

import quantlab as ql
from quantlab import calibration as cal


def kl_loop(counts: np.ndarray, levels: int) -> np.ndarray:
    """TensorRT's entropy calibration, literally: one candidate and one group at a time."""
    counts = np.asarray(counts, float)
    out = []
    for i in range(levels, counts.size + 1):
        p = counts[:i].copy()
        p[i - 1] += counts[i:].sum()
        m = i // levels
        q = np.zeros(i)
        for g in range(levels):
            lo = g * m
            hi = i if g == levels - 1 else lo + m
            part = counts[lo:hi]
            nnz = np.count_nonzero(part)
            if nnz:
                q[lo:hi] = np.where(part > 0, part.sum() / nnz, 0.0)
        p, q = p / p.sum(), q / q.sum()
        if np.any((p > 0) & (q == 0)):
            out.append(np.inf)
            continue
        nz = p > 0
        out.append(float(np.sum(p[nz] * np.log(p[nz] / q[nz]))))
    return np.array(out)


@pytest.mark.parametrize("levels,bins", [(4, 37), (8, 64), (16, 300), (128, 512)])
def test_kl_divergences_equal_the_literal_loop(levels, bins):
    rng = np.random.default_rng(levels + bins)
    counts = np.histogram(np.abs(rng.standard_t(3, 20 * bins)), bins=bins)[0].astype(float)
    counts[rng.integers(0, bins, bins // 5)] = 0  # empty bins inside the range
    got = cal.kl_divergences(counts, levels)
    want = kl_loop(counts, levels)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-9, atol=1e-12)


def test_kl_optimum_of_a_flat_histogram_is_its_end():
    levels, bins, end = 128, 2048, 640  # 640 = 5·128: the groups tile it exactly
    counts = np.zeros(bins)
    counts[:end] = 7.0
    div = cal.kl_divergences(counts, levels)
    best = levels + int(np.argmin(div))
    assert best == end
    assert div[end - levels] == 0.0
    assert np.all(div[: end - levels] > 0)  # clipping earlier folds the tail into one bin


def test_kl_range_on_samples_clips_more_with_fewer_bits():
    x = np.random.default_rng(0).laplace(size=200_000)
    ts = []
    for n in (3, 4, 6, 8):
        lo, hi = cal.kl_range(x, n)
        assert float(lo) == -float(hi)
        ts.append(float(hi))
    assert ts == sorted(ts)
    assert ts[-1] < np.abs(x).max()
    # all x >= 0: a histogram of x itself with 2**n levels, lo = 0
    lo_u, hi_u = cal.kl_range(np.abs(x), 8)
    assert float(lo_u) == 0.0
    assert 0 < float(hi_u) <= np.abs(x).max()


def test_kl_range_degenerate_and_bad_input():
    lo, hi = cal.kl_range(np.zeros(10))
    assert float(lo) == float(hi) == 0.0
    with pytest.raises(ValueError, match="negative values"):
        cal.kl_range([-1.0, 1.0], signed=False)
    with pytest.raises(ValueError, match="bins must be at least 256"):
        cal.kl_range([1.0, 2.0], bins=100)
    with pytest.raises(ValueError, match="counts must be non-negative"):
        cal.kl_divergences([-1.0] * 200)
    with pytest.raises(ValueError, match="counts are all zero"):
        cal.kl_divergences(np.zeros(200))


@pytest.mark.parametrize("p", [50.0, 90.0, 99.0, 99.99, 100.0])
def test_percentile_range_is_np_percentile(p):
    x = np.random.default_rng(1).standard_normal((40, 30))
    lo, hi = cal.percentile_range(x, p)
    assert float(lo) == np.percentile(x, 100 - p)
    assert float(hi) == np.percentile(x, p)
    lo, hi = cal.percentile_range(x, p, axis=0)
    np.testing.assert_array_equal(hi[:, 0], np.percentile(x, p, axis=1))
    np.testing.assert_array_equal(lo[:, 0], np.percentile(x, 100 - p, axis=1))
    lo, hi = cal.percentile_range(x, p, axis=1, symmetric=True)
    np.testing.assert_array_equal(hi[0], np.percentile(np.abs(x), p, axis=0))
    np.testing.assert_array_equal(lo, -hi)


def test_minmax_per_tensor_token_channel():
    x = np.random.default_rng(2).standard_normal((6, 5))
    lo, hi = cal.minmax_range(x)
    assert lo.shape == ()
    assert float(hi) == x.max()
    lo, hi = cal.minmax_range(x, axis=0)
    np.testing.assert_array_equal(lo[:, 0], x.min(axis=1))
    lo, hi = cal.minmax_range(x, axis=-1)
    np.testing.assert_array_equal(hi[0], x.max(axis=0))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        cal.minmax_range(x, axis=2)


@pytest.mark.parametrize("symmetric", [False, True])
def test_mse_range_is_the_search_grid(symmetric):
    x = np.random.default_rng(3).laplace(size=(8, 200))
    res = ql.Quantizer(4, use_min=not symmetric, channel_axis=0).search(x)
    lo, hi = cal.mse_range(x, 4, axis=0, symmetric=symmetric)
    # the search's dequantized values lie on the grid lo + k·(hi - lo)/15 and inside [lo, hi]
    step = (hi - lo) / 15
    k = (res.x_hat - lo) / step
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert np.all(res.x_hat >= lo - 1e-12)
    assert np.all(res.x_hat <= hi + 1e-12)
    # a better range than min/max for heavy tails: the search keeps the lowest MSE
    mm = ql.Quantizer(4, use_min=not symmetric, channel_axis=0).fit(x, method="round")
    assert np.all(res.error <= mm.error + 1e-15)


def test_affine_params_contain_zero_exactly():
    S, Z = cal.affine_params(-1.0, 3.0)
    assert np.isclose(float(S), 4 / 255)
    assert int(Z) == round(1 / (4 / 255))
    S, Z = cal.affine_params(0.5, 2.0, dtype="int8")  # widened to [0, 2]
    assert np.isclose(float(S), 2 / 255)
    assert int(Z) == -128
    S, Z = cal.affine_params(-2.0, 1.0, dtype="int8", symmetric=True)
    assert np.isclose(float(S), 2 / 127)
    assert int(Z) == 0
    S, Z = cal.affine_params(0.0, 0.0)
    assert float(S) == 1.0
    with pytest.raises(ValueError, match="symmetric=True needs a signed dtype"):
        cal.affine_params(-1.0, 1.0, symmetric=True)
    with pytest.raises(ValueError, match="hi must not be below lo"):
        cal.affine_params(1.0, -1.0)


def test_calibrate_dispatches_and_rejects():
    x = np.random.default_rng(4).exponential(size=1000)
    for method in cal.CALIBRATION_METHODS:
        lo, hi = cal.calibrate(x, method)
        assert float(hi) > float(lo)
    assert float(cal.calibrate(x, "percentile", percentile=99.0)[1]) == np.percentile(x, 99.0)
    with pytest.raises(ValueError, match="method must be one of"):
        cal.calibrate(x, "max")
    with pytest.raises(ValueError, match="axis must be None"):
        cal.calibrate(x[None], "kl", axis=0)
    with pytest.raises(ValueError, match="percentile must be between 50 and 100"):
        cal.percentile_range(x, 10.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        cal.minmax_range([1.0, np.nan])


def test_fake_quantize_is_spec_item_1_on_unsigned_codes():
    x = np.random.default_rng(6).normal(size=500)
    lo, hi, n = -1.5, 2.0, 5
    S = (hi - lo) / (2**n - 1)
    Z = np.round(-lo / S)
    q = np.clip(np.rint(x / S) + Z, 0, 2**n - 1)
    np.testing.assert_allclose(cal.fake_quantize(x, lo, hi, n), (q - Z) * S, rtol=0, atol=1e-15)
    # 0 is exact even when the range does not contain it (it is widened first)
    assert cal.fake_quantize([0.0], 0.5, 2.0)[0] == 0.0
    # per-token ranges broadcast
    X = np.abs(np.random.default_rng(7).normal(size=(4, 9)))
    lo_t, hi_t = cal.minmax_range(X, axis=0)
    rows = np.array([cal.fake_quantize(X[i], 0.0, X[i].max(), 4) for i in range(4)])
    np.testing.assert_array_equal(cal.fake_quantize(X, lo_t, hi_t, 4), rows)


def test_error_split_adds_up_to_the_mse():
    x = np.random.default_rng(8).laplace(size=5000)
    for hi in (0.5, 2.0, 20.0):
        clip, rnd = cal.error_split(x, -hi, hi, 4)
        total = np.mean((x - cal.fake_quantize(x, -hi, hi, 4)) ** 2)
        assert np.isclose(clip + rnd, total)
        S = 2 * hi / 15
        assert rnd <= (S / 2) ** 2  # inside the grid every error is at most half a step
    clip_wide, _ = cal.error_split(x, -100.0, 100.0, 8)
    assert clip_wide == 0.0
    clip_narrow, _ = cal.error_split(x, -0.1, 0.1, 8)
    assert clip_narrow > 0.5
