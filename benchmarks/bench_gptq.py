"""Time quantlab.gptq.gptq against the plain OBS loop and against round-to-nearest.

Run: ``python benchmarks/bench_gptq.py [--size 4096] [--plain-size 512] [--repeats 3]
[--threads N]`` (``--threads`` limits the BLAS threads; on a loaded machine 1 is often faster).

1. On a ``plain-size`` square layer (the plain loop downdates the whole inverse Hessian per
   column, ``columns³`` per column, so it is only feasible small): checks that ``gptq`` and
   ``gptq_reference`` give the same codes, then prints both times and their ratio.
2. On a ``size`` square layer (default 4096 x 4096, H = X Xᵀ of ``size`` random samples): the
   time of ``gptq`` (default options and ``group_size=128, act_order=True``) and of round to
   nearest on the same grid, and the ratio gptq / rtn.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_times  # benchmarks/_timing.py (run from this folder)

from quantlab.gptq import gptq, gptq_reference, rtn


def layer(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(size, size)) * rng.uniform(0.2, 2.0, size=(size, 1))
    return rng.normal(size=(size, size)), X @ X.T / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--plain-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)

    W, H = layer(args.plain_size)
    assert np.array_equal(gptq(W, H, 4).q, gptq_reference(W, H, 4).q), "gptq != plain loop"
    fast, plain = best_times([lambda: gptq(W, H, 4), lambda: gptq_reference(W, H, 4)], 1)
    print(f"{args.plain_size} x {args.plain_size}: gptq {fast:.3f} s, plain OBS loop {plain:.3f} s")
    print(f"  ratio plain / gptq = {plain / fast:.1f}")

    W, H = layer(args.size, 1)
    t_gptq, t_group, t_rtn = best_times(
        [
            lambda: gptq(W, H, 4),
            lambda: gptq(W, H, 4, group_size=128, act_order=True),
            lambda: rtn(W, 4),
        ],
        args.repeats,
    )
    print(f"{args.size} x {args.size}: gptq {t_gptq:.2f} s, gptq g128 act_order {t_group:.2f} s")
    print(f"  round to nearest {t_rtn:.3f} s; ratio gptq / rtn = {t_gptq / t_rtn:.0f}")


if __name__ == "__main__":
    main()
