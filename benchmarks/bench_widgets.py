"""Time one explorer update for 4096 values against the 100 ms goal.

Run: ``python benchmarks/bench_widgets.py [--size 4096] [--repeats 15]``. An update is what a
learner triggers by moving one control: the explorer recomputes its pure function, updates the
plot, renders the PNG and sets the readout. For each explorer and control it prints the median
wall-clock and CPU time of an update, and the ratio against a reference timed in the same rounds:
a plain matplotlib redraw of the same figure (``figure.savefig`` to PNG, what a naive explorer
pays for the picture alone). A ratio below 1 means the whole update costs less than redrawing
the figure from scratch. Updates and references take turns, so a burst of load from other
processes slows both.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import time
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np

from quantlab import widgets
from quantlab.widgets._base import _Explorer

GOAL_MS = 100.0


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU time of one call, in milliseconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def bench(
    explorer: _Explorer, control: str, values: Sequence[object], repeats: int
) -> tuple[float, float, float, float]:
    """Update times when ``control`` cycles through ``values``, and the reference's.

    Every timed update sets a value different from the current one, so each one really
    recomputes and redraws. Returns the median wall-clock, median CPU and slowest wall-clock
    time of an update and the median wall-clock time of the reference, in ms.
    """
    ctl = explorer.controls[control]
    cycle = itertools.cycle([v for v in values if v != ctl.value] + [ctl.value])

    def update() -> None:
        ctl.value = next(cycle)
        if explorer.error is not None:
            raise RuntimeError(f"{type(explorer).__name__}.{control}: {explorer.error}")

    def reference() -> None:
        explorer.figure.savefig(io.BytesIO(), format="png", dpi=explorer.dpi)

    update()  # warm up: caches, first drawing
    reference()
    walls, cpus, refs = [], [], []
    for _ in range(repeats):
        wall, cpu = timed(update)
        walls.append(wall)
        cpus.append(cpu)
        refs.append(timed(reference)[0])
    return statistics.median(walls), statistics.median(cpus), max(walls), statistics.median(refs)


Case = tuple[str, str, Callable[[], _Explorer], str, list]


def cases(x: np.ndarray) -> list[Case]:
    """(explorer, setting, factory, control, values) for every explorer and its main controls."""
    methods = list(widgets.EXPLORER_METHODS)
    quant, search = widgets.QuantExplorer, widgets.SearchExplorer
    bits, weights = widgets.BitsExplorer, widgets.WeightsExplorer
    return [
        ("QuantExplorer", "signed_max", lambda: quant(x, scheme="signed_max"), "n_bits",
         [3, 4, 5, 6, 7]),
        ("QuantExplorer", "signed_max", lambda: quant(x, scheme="signed_max"), "offset",
         [-0.3, -0.1, 0.1, 0.3]),
        ("QuantExplorer", "signed_max", lambda: quant(x, scheme="signed_max"), "method", methods),
        ("QuantExplorer", "round", lambda: quant(x), "scheme", list(widgets.SCHEMES)),
        ("QuantExplorer", "optimum", lambda: quant(x, scheme="signed_max", method="optimum"),
         "n_bits", [2, 4, 6, 8]),
        ("SearchExplorer", "use_min", lambda: search(x), "n_bits", [3, 4, 5, 6]),
        ("SearchExplorer", "signed d", lambda: search(x, use_min=False), "n_bits", [3, 4, 5, 6]),
        ("BitsExplorer", "round", lambda: bits(x), "scheme", list(widgets.SCHEMES)),
        ("WeightsExplorer", "refit", lambda: weights(x), "n_bits", [3, 4, 5, 6]),
        ("WeightsExplorer", "refit", lambda: weights(x), "strength", [0.5, 1.0, 1.5]),
        ("WeightsExplorer", "4 bits", lambda: weights(x), "method", methods[1:]),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="number of values")
    parser.add_argument("--repeats", type=int, default=15, help="median of this many updates")
    args = parser.parse_args()
    if args.size < 2 or args.repeats < 1:
        parser.error("--size must be at least 2 and --repeats at least 1")

    x = np.random.default_rng(0).laplace(scale=0.02, size=args.size)
    print(f"one explorer update, {args.size} values, {args.repeats} updates per row; goal < "
          f"{GOAL_MS:g} ms")  # fmt: skip
    print("reference: a plain matplotlib redraw of the same figure (savefig to PNG)\n")
    print(f"{'explorer':16s} {'setting':10s} {'control':8s} {'median':>7s} {'CPU':>6s} "
          f"{'max':>6s} {'ref':>6s} {'ratio':>6s}  goal (ms; ratio = median / ref)")  # fmt: skip
    over = []
    for name, setting, make, control, values in cases(x):
        wall, cpu, slowest, ref = bench(make(), control, values, args.repeats)
        verdict = "ok" if wall < GOAL_MS else "OVER"
        if slowest >= GOAL_MS:
            verdict += f" (slowest over: {control} in {values})"
            over.append(f"{name} {setting} {control}")
        print(
            f"{name:16s} {setting:10s} {control:8s} {wall:7.1f} {cpu:6.1f} {slowest:6.1f} "
            f"{ref:6.1f} {wall / ref:6.2f}  {verdict}"
        )
    print("\nevery update under the goal" if not over else f"\nsome updates over: {over}")


if __name__ == "__main__":
    main()
