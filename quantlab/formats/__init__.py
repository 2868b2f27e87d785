"""Block formats of GGUF/llama.cpp, bit-exact with their reference (SPEC items 8 and 11).

One module per family, each readable end to end, and the shared building blocks beside them:

- :mod:`quantlab.formats.legacy`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32);
- :mod:`quantlab.formats.kquants`: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (super-blocks of 256);
- :mod:`quantlab.formats.mxfp4`, :mod:`~quantlab.formats.nvfp4`, :mod:`~quantlab.formats.iq4_nl`:
  the non-uniform 4-bit block formats MXFP4, NVFP4 and IQ4_NL;
- :mod:`quantlab.formats.make_quants`: llama.cpp's searches (nearest_int, make_qx_quants,
  make_q3_quants, make_qkx2/qkx3 quants, make_qp_quants), vectorized over blocks;
- :mod:`quantlab.formats.imatrix`: how an importance matrix is combined with the values;
- :mod:`quantlab.formats.packing`: bit planes and the 6-bit packing of sub-block scales;
- :mod:`quantlab.formats.registry`: the table of formats that the functions below dispatch on.

:func:`quantize` and :func:`dequantize` dispatch on the format's name; the import paths of the
single-module version (``quantlab.formats.quantize`` and friends) are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..table import Table
from . import imatrix, iq4_nl, kquants, legacy, make_quants, mxfp4, nvfp4, packing
from .kquants import KFORMATS, QK_K, KQuantFormat
from .legacy import (
    CHUNK_BLOCKS,
    FORMATS,
    WEIGHTED_CHUNK_BLOCKS,
    WEIGHTED_METHODS,
    BlockFormat,
    pack,
    pack_fifth_bits,
    pack_nibbles,
    round_half_away,
    unpack,
    unpack_fifth_bits,
    unpack_nibbles,
)
from .make_quants import (
    make_q3_quants,
    make_qkx2_quants,
    make_qkx3_quants,
    make_qkx_quants,
    make_qp_quants,
    make_qx_quants,
    nearest_int,
    ordered_sum,
)
from .registry import REGISTRY, Format, ModuleFormat, lookup, register

#: The non-uniform formats, each implemented by its own module.
NONUNIFORM = {m.NAME: ModuleFormat(m, bits=4) for m in (mxfp4, nvfp4, iq4_nl)}

for _fmt in (*FORMATS.values(), *KFORMATS.values(), *NONUNIFORM.values()):
    register(_fmt)


def get_format(fmt: str | Format) -> Format:
    """The format named ``fmt`` (any case, e.g. ``"Q4_0"``, ``"q4_k"``); a format passes through."""
    return lookup(fmt)


def names() -> list[str]:
    """Every registered format name, in registration order."""
    return list(REGISTRY)


def quantize(
    x: ArrayLike,
    fmt: str | Format,
    w: ArrayLike | None = None,
    *,
    imatrix: ArrayLike | None = None,
    **options: object,
) -> NDArray[np.uint8]:
    """Quantize ``x`` (last axis a multiple of the block size) to the bytes of format ``fmt``.

    Without ``w``/``imatrix``: the bytes of llama.cpp's ``ggml_quantize_chunk(type, x, ..., NULL)``
    (for the legacy formats equal to ``gguf.quants.quantize``). With ``imatrix`` (1-D, one
    value ≥ 0 per column): the bytes of ``ggml_quantize_chunk(..., imatrix)`` (a format that
    ignores it, as Q8_0, gives its plain bytes). ``w`` (legacy formats): quantlab's own
    weighted methods, see :func:`quantlab.formats.legacy.quantize`; other options go to the
    format's own function.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 256)
    >>> quantize(x, "Q4_K").shape, bits_per_weight("Q4_K")
    ((144,), 4.5)
    """
    f = get_format(fmt)
    if imatrix is not None:
        options["imatrix"] = imatrix
    return f.quantize(x, w, **options)


def dequantize(data: ArrayLike, fmt: str | Format) -> NDArray[np.float32]:
    """Decode the bytes of format ``fmt`` to float32, equal to ``gguf.quants.dequantize``."""
    return get_format(fmt).dequantize(data)


def bits_per_weight(fmt: str | Format) -> float:
    """Bits per stored value including the scales: Q4_0 = 4.5, Q4_K = 4.5, Q6_K = 6.5625."""
    return get_format(fmt).bits_per_weight


def format_table(formats: Sequence[str] | None = None) -> Table:
    """Formats as a small table: name, bits, use_min, block size, bytes, bits per weight.

    Parameters
    ----------
    formats : sequence of str, optional
        Format names; by default the five legacy formats (Q8_0 … Q5_1). ``names()`` gives
        every registered format.
    """
    chosen = [get_format(n) for n in (list(FORMATS) if formats is None else formats)]
    return Table(
        {
            "format": [f.name for f in chosen],
            "bits": [f.bits for f in chosen],
            "use_min": [f.use_min for f in chosen],
            "block_size": [f.block_size for f in chosen],
            "bytes_per_block": [f.bytes_per_block for f in chosen],
            "bits_per_weight": [f.bits_per_weight for f in chosen],
        }
    )


__all__ = [
    "CHUNK_BLOCKS",
    "FORMATS",
    "KFORMATS",
    "NONUNIFORM",
    "QK_K",
    "REGISTRY",
    "WEIGHTED_CHUNK_BLOCKS",
    "WEIGHTED_METHODS",
    "BlockFormat",
    "Format",
    "KQuantFormat",
    "ModuleFormat",
    "bits_per_weight",
    "dequantize",
    "format_table",
    "get_format",
    "imatrix",
    "kquants",
    "legacy",
    "make_q3_quants",
    "make_qkx2_quants",
    "make_qkx3_quants",
    "make_qkx_quants",
    "make_qp_quants",
    "make_quants",
    "make_qx_quants",
    "names",
    "nearest_int",
    "ordered_sum",
    "pack",
    "pack_fifth_bits",
    "pack_nibbles",
    "packing",
    "quantize",
    "register",
    "round_half_away",
    "unpack",
    "unpack_fifth_bits",
    "unpack_nibbles",
]
