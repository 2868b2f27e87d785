"""quantlab's search against llama.cpp's heuristics: quality, speed and memory, in one run.

Quality: the mean weighted error of ``Quantizer.search`` (default grid) over blocks of 32, as a
ratio to llama.cpp's heuristic for the same convention, weights and bits (``make_qx_quants`` for
the symmetric scale, ``make_qkx2_quants`` with Q4_K's settings for use_min, re-implemented in
NumPy in ``llama_heuristics.py``), and both as ratios to quantlab's optimum. Data: N(0, 1),
Student-t(3) and the course's MLP weights (``quantlab.mlp.digits_mlp``), unweighted and weighted
(exponential weights; for the MLP the mean squared input of each column, as an imatrix).

Speed: ms of CPU time per million values, single-threaded, against llama.cpp's C in the same run
through ggml-python, the two taking turns (best of several rounds): ``ggml_quantize_chunk`` of
Q4_0 with an imatrix is ``make_qx_quants`` on every block of 32, Q4_K without one is
``make_qkx2_quants`` on every block of 32 (plus a little packing).

Memory: the peak traced allocation (tracemalloc) per value of each method on one per-tensor group.

    python benchmarks/bench_search.py            # full run (a few minutes)
    python benchmarks/bench_search.py --quick    # fewer blocks, smaller memory run
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_times  # benchmarks/_timing.py (run from this folder)
from llama_heuristics import make_qkx2, make_qx

import quantlab as ql
from quantlab.mlp import digits_mlp


def datasets(n_blocks: int) -> dict:
    rng = np.random.default_rng(1)
    m = digits_mlp()
    w1 = np.tile(np.mean(m.data.X_train**2, axis=0), 128).reshape(-1, 32)
    w2 = np.tile(np.mean(m.forward(m.data.X_train)[0] ** 2, axis=0), 10).reshape(-1, 32)
    return {
        "N(0,1)": (rng.standard_normal((n_blocks, 32)), rng.exponential(size=(n_blocks, 32))),
        "t(3)": (rng.standard_t(3, (n_blocks, 32)), rng.exponential(size=(n_blocks, 32))),
        "MLP": (
            np.concatenate([m.W1.reshape(-1, 32), m.W2.reshape(-1, 32)]),
            np.concatenate([w1, w2]),
        ),
    }


def heuristic_error(x, w, n_bits, use_min):
    if use_min:
        s, mn, lv = make_qkx2(x, 2**n_bits - 1, w)
        x_hat = s[:, None].astype(float) * lv + mn[:, None].astype(float)
    else:
        s, lv = make_qx(x, 2 ** (n_bits - 1), w)
        x_hat = s[:, None].astype(float) * lv
    return np.mean(w * (x - x_hat) ** 2, axis=1)


def quality(data, bits, optimum_bits_min):
    rows = []
    for use_min in (False, True):
        for n in bits:
            for name, (x, w0) in data.items():
                for weighted in (False, True):
                    w = w0 if weighted else np.ones_like(x)
                    qz = ql.Quantizer(n, use_min, block_size=32)
                    ours = qz.search(x, w if weighted else None).error.ravel()
                    ref = heuristic_error(x, w, n, use_min)
                    opt = None
                    if not use_min or n <= optimum_bits_min:
                        opt = qz.optimum(x, w if weighted else None).error.ravel()
                    rows.append((use_min, n, name, weighted, ours, ref, opt))
    return rows


def c_call(typ, x, imatrix=None):
    """llama.cpp's ``ggml_quantize_chunk`` of ``typ`` on the rows of float32 ``x``, as a call."""
    import ggml.ggml as g

    x = np.ascontiguousarray(x, np.float32)
    out = np.empty(x.size, np.uint8)
    src = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    im = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, np.float32)
        im = imatrix.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def call() -> None:
        g.ggml_quantize_chunk(typ, src, out.ctypes.data, 0, x.shape[0], x.shape[1], im)

    return call


def ptime(fn, n, reps=3):
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


def speed(rows, repeats=10):
    """CPU ms per million values of the default search and of the C, taking turns."""
    import ggml.ggml as g

    rng = np.random.default_rng(2)
    x = rng.standard_normal((rows, 4096)).astype(np.float32)
    w = rng.exponential(size=x.shape)
    out = []
    for use_min in (False, True):
        qz = ql.Quantizer(4, use_min, block_size=32)
        c = c_call(g.GGML_TYPE_Q4_K, x) if use_min else c_call(g.GGML_TYPE_Q4_0, x, np.ones(4096))
        fns = [c, lambda qz=qz: qz.search(x), lambda qz=qz: qz.search(x, w)]
        t_c, a, b = (t / x.size * 1e9 for t in best_times(fns, repeats, time.process_time))
        out.append((use_min, a, t_c, b, t_c))
    opt = {}
    xs = x[: max(1, rows // 8)]
    for n in (4, 8):
        opt[n] = ptime(lambda n=n: ql.Quantizer(n, block_size=32).optimum(xs), xs.size, reps=1)
    xm = x[:2]
    opt["min4"] = ptime(lambda: ql.Quantizer(4, True, block_size=32).optimum(xm), xm.size, 1)
    return out, opt


def memory(n):
    x = np.random.default_rng(3).standard_normal(n)
    calls = {
        "search": lambda u: ql.Quantizer(4, u).search(x),
        "search, absolute grid": lambda u: ql.Quantizer(4, u).search(x, relative=False),
        "refine": lambda u: ql.Quantizer(4, u).refine(x),
    }
    out = []
    for name, fn in calls.items():
        for use_min in (False, True):
            tracemalloc.start()
            fn(use_min)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out.append((name, use_min, n, peak / n))
    small = n // 10
    for n_bits in (4, 8):
        tracemalloc.start()
        ql.Quantizer(n_bits).optimum(x[:small])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append((f"optimum {n_bits}-bit", False, small, peak / small))
    tiny = n // 1000  # the use_min optimum is slow (about 3 minutes per million values)
    tracemalloc.start()
    ql.Quantizer(4, True).optimum(x[:tiny])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out.append(("optimum 4-bit", True, tiny, peak / tiny))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_blocks = 1000 if args.quick else 4000
    data = datasets(n_blocks)
    print("Quality: mean error of quantlab's default search / llama.cpp's heuristic (<= 1: ours")
    print("is at least as good); in brackets the heuristic's and ours' ratio to quantlab's optimum")
    print("(use_min optimum up to 5 bits)")
    rows = quality(data, [2, 3, 4, 5, 6, 8], 5)
    names = list(data)
    header = "conv     bits  " + "  ".join(
        f"{n + (' w' if wt else ''):>18}" for n in names for wt in (False, True)
    )
    print(header)
    for use_min in (False, True):
        for n in [2, 3, 4, 5, 6, 8]:
            cells = []
            for name in names:
                for wt in (False, True):
                    r = next(r for r in rows if r[:4] == (use_min, n, name, wt))
                    _, _, _, _, ours, ref, opt = r
                    ok = ref > 0
                    ratio = np.mean(ours[ok]) / np.mean(ref[ok])
                    extra = ""
                    if opt is not None:
                        extra = (
                            f" ({np.mean(ref[ok]) / np.mean(opt[ok]):.3f}"
                            f"/{np.mean(ours[ok]) / np.mean(opt[ok]):.3f})"
                        )
                    cells.append(f"{ratio:.3f}{extra}".rjust(18))
            conv = "use_min" if use_min else "sym    "
            print(f"{conv}  {n:4d}  " + "  ".join(cells))
    print()
    sp, opt = speed(64 if args.quick else 256)
    print("Speed, 4 bits, blocks of 32, ms per million values (C: llama.cpp through ggml-python)")
    print("conv      search     C  ratio   weighted     C  ratio")
    for use_min, a, ca, b, cb in sp:
        conv = "use_min" if use_min else "sym    "
        print(f"{conv}  {a:7.1f} {ca:5.1f}  {a / ca:5.2f}    {b:7.1f} {cb:5.1f}  {b / cb:5.2f}")
    print(
        f"optimum, symmetric: 4 bits {opt[4]:.0f}, 8 bits {opt[8]:.0f} ms per million values;"
        f" use_min 4 bits {opt['min4']:.0f}"
    )
    print()
    n = 10**6 if args.quick else 10**7
    print("Memory: peak traced bytes per value, one per-tensor group")
    for name, use_min, size, per in memory(n):
        print(f"  {name:22s} use_min={use_min!s:5}  {size:>9,d} values  {per:8.0f} B/value")


if __name__ == "__main__":
    main()
