"""The timing loop every benchmark shares: best time of each function, the functions taking turns.

Taking turns (ours, the reference, ours, ...) means that a burst of load on a shared machine slows
both sides of a comparison rather than one; the best of several rounds is the least disturbed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def best_times(
    fns: Sequence[Callable[[], object]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Best time of each function over ``repeats`` rounds, in seconds of ``clock``.

    ``clock`` is wall-clock time by default; ``time.process_time`` measures CPU time, which on a
    loaded machine leaves out the time spent waiting for a core.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            best[i] = min(best[i], clock() - start)
    return best
