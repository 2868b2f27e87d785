"""Memory for the default search's private copies of its inputs, kept for the next call.

The default search copies ``x`` and ``w`` (its candidate table reads them later, and the caller
may change its arrays in between). Fresh memory costs a page fault per 4 KiB page when first
written, about 5.5 us each on the course's machine: 11 ms for the copy of a million float64
weights, a fifth of the whole weighted search. When the glibc heap has been trimmed between
two calls (it trims its top after a large free), every call pays them again. So the memory of a
copy, once the copy is garbage (its table and every view of it gone), goes back to a small pool
instead, and the next copy of the same size or smaller reuses it: resident, no page faults
(measured: 2048 faults per weighted search of a million values before, none after).

At most :data:`KEEP` blocks of at most :data:`LARGEST` bytes each are kept (64 MiB at most);
a larger copy is an ordinary array. Thread-safe: a freed block is only appended to a list (atomic,
and safe when the garbage collector frees a copy in the middle of :func:`empty`); the free list
itself is changed only under a lock.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
from numpy.typing import NDArray

#: Blocks kept for reuse (one for x, one for w).
KEEP = 2
#: The largest block kept, in bytes (the copy of 4 million float64 values).
LARGEST = 1 << 25

_free: list[NDArray] = []  # changed only under _lock
_returned: list[NDArray] = []  # appended to by _release, emptied under _lock
_lock = threading.Lock()


def empty(shape: tuple[int, ...], dtype: type) -> NDArray:
    """An uninitialised C-order array, in memory reused from a freed copy when one is large
    enough (the smallest such block); its memory returns to the pool when it is garbage."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes > LARGEST:
        return np.empty(shape, dt)
    block = None
    with _lock:
        while _returned:
            _free.append(_returned.pop())
        _free.sort(key=lambda b: b.nbytes, reverse=True)
        del _free[KEEP:]  # the largest kept
        fits = [i for i, b in enumerate(_free) if b.nbytes >= nbytes]
        if fits:
            block = _free.pop(fits[-1])  # the smallest that fits
    if block is None:
        block = np.empty(max(nbytes, 1), np.uint8)
    lease = _Lease(block, shape, dt)
    weakref.finalize(lease, _returned.append, block)  # once the array and its views are gone
    return np.asarray(lease)


class _Lease:
    """The owner of an array's memory lent from ``block``: the array's base, which every view
    keeps alive (a view of an ndarray would skip an ndarray in between and keep ``block``)."""

    def __init__(self, block: NDArray, shape: tuple[int, ...], dt: np.dtype) -> None:
        self.block = block
        self.__array_interface__ = {
            "data": (block.ctypes.data, False),
            "shape": tuple(shape),
            "typestr": dt.str,
            "version": 3,
        }
