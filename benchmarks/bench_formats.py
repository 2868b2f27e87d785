"""Time quantlab.formats against the gguf package on a 4096 x 4096 float32 matrix.

Run: ``python benchmarks/bench_formats.py [--size 4096] [--repeats 5]``. Prints, per format, the
best time of quantize and dequantize for both libraries and the ratio quantlab/gguf (below 1.0:
quantlab is faster). Both are checked to produce the same bytes and values first.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_times  # benchmarks/_timing.py (run from this folder)
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

from quantlab import formats


def compare(name: str, x: np.ndarray, repeats: int) -> tuple[float, float, float, float]:
    """Check one format against gguf, then time both: quantize ours/gguf, dequantize ours/gguf."""
    qtype = GGMLQuantizationType[name]
    data = formats.quantize(x, name)
    np.testing.assert_array_equal(data, gguf_quantize(x, qtype))
    np.testing.assert_array_equal(formats.dequantize(data, name), gguf_dequantize(data, qtype))
    q_ours, q_ref = best_times(
        [lambda: formats.quantize(x, name), lambda: gguf_quantize(x, qtype)], repeats
    )
    d_ours, d_ref = best_times(
        [lambda: formats.dequantize(data, name), lambda: gguf_dequantize(data, qtype)], repeats
    )
    return q_ours, q_ref, d_ours, d_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="matrix is size x size")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()
    if args.size < 1 or args.size % 32:
        parser.error("--size must be a positive multiple of 32")

    x = np.random.default_rng(0).standard_normal((args.size, args.size), dtype=np.float32)
    print(f"{args.size} x {args.size} float32, best of {args.repeats}; times in ms")
    print(
        f"{'format':<7}{'quantize':>10}{'gguf':>9}{'ratio':>7}"
        f"{'dequantize':>12}{'gguf':>9}{'ratio':>7}"
    )
    for name in formats.FORMATS:
        q_ours, q_ref, d_ours, d_ref = compare(name, x, args.repeats)
        print(
            f"{name:<7}{1e3 * q_ours:>10.1f}{1e3 * q_ref:>9.1f}{q_ours / q_ref:>7.2f}"
            f"{1e3 * d_ours:>12.1f}{1e3 * d_ref:>9.1f}{d_ours / d_ref:>7.2f}"
        )


if __name__ == "__main__":
    main()
