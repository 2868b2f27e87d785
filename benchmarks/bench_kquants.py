"""Time quantlab.formats against llama.cpp's C (ggml-python) on a 4096 x 4096 float32 matrix.

Run: ``python benchmarks/bench_kquants.py [--rows 4096] [--cols 4096] [--repeats 3] [FORMAT ...]``.
For every format (the K-quants and the legacy formats' imatrix paths) and for both paths (no
imatrix, a log-normal imatrix) it first checks that quantlab's bytes equal those of
``ggml_quantize_chunk``, then prints the best CPU time of each, single-threaded, and the ratio
quantlab / C (the goal: at most 1.5), and the peak extra memory of quantlab's call as a multiple
of the input's size.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import ggml
import numpy as np
from _timing import best_times  # benchmarks/_timing.py (run from this folder)

from quantlab import formats

FORMATS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
_FLOATS = ctypes.POINTER(ctypes.c_float)


def ggml_quantize(x: np.ndarray, name: str, imatrix: np.ndarray | None) -> np.ndarray:
    """llama.cpp's bytes: ``ggml_quantize_chunk(type, x, dst, 0, rows, n, imatrix)``."""
    n = x.shape[-1]
    rows = x.size // n
    qtype = getattr(ggml, f"GGML_TYPE_{name}")
    out = np.empty(rows * ggml.ggml_row_size(qtype, n), np.uint8)
    ggml.ggml_quantize_chunk(
        qtype,
        x.ctypes.data_as(_FLOATS),
        out.ctypes.data_as(ctypes.c_void_p),
        0,
        rows,
        n,
        None if imatrix is None else imatrix.ctypes.data_as(_FLOATS),
    )
    return out.reshape(*x.shape[:-1], -1)


def peak_memory(fn) -> int:
    """Peak bytes NumPy allocates during ``fn()`` (tracemalloc sees NumPy's buffers)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def row(x: np.ndarray, name: str, imatrix: np.ndarray | None, repeats: int, memory: bool) -> str:
    """Check the bytes, time both sides and format one line of the table."""

    def ours() -> np.ndarray:
        return formats.quantize(x, name, imatrix=imatrix)

    def ref() -> np.ndarray:
        return ggml_quantize(x, name, imatrix)

    if not np.array_equal(ours(), ref()):
        raise SystemExit(f"{name}: quantlab's bytes differ from ggml's")
    t_ours, t_ref = best_times([ours, ref], repeats, time.process_time)
    mem = f"{peak_memory(ours) / x.nbytes:>7.2f}x" if memory else ""
    used = "yes" if imatrix is not None else "no"
    return (
        f"{name:<7}{used:>8}{1e3 * t_ours:>10.0f}{1e3 * t_ref:>9.0f}{t_ours / t_ref:>7.2f}{mem:>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(FORMATS), help="formats to time")
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=4096, help="a multiple of 256")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    args = parser.parse_args()
    if args.cols % 256 or args.rows < 1:
        parser.error("--cols must be a multiple of 256 and --rows positive")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.cols), dtype=np.float32)
    qw = rng.lognormal(0.0, 1.0, args.cols).astype(np.float32)
    print(f"{args.rows} x {args.cols} float32, best of {args.repeats}, one thread; times in ms")
    print(f"{'format':<7}{'imatrix':>8}{'quantlab':>10}{'C':>9}{'ratio':>7}{'memory':>8}")
    for name in args.names:
        for imatrix in (None, qw):
            print(row(x, name, imatrix, args.repeats, not args.no_memory))


if __name__ == "__main__":
    main()
