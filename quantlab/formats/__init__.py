"""Block formats of GGUF/llama.cpp, bit-exact with their reference (SPEC items 8 and 11).

One module per family, each readable end to end:

- :mod:`quantlab.formats.legacy`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32).
- :mod:`quantlab.formats.mxfp4`, :mod:`~quantlab.formats.nvfp4`, :mod:`~quantlab.formats.iq4_nl`:
  the non-uniform 4-bit block formats MXFP4, NVFP4 and IQ4_NL.

:func:`quantize` and :func:`dequantize` dispatch on the format's name; the import paths of the
single-module version (``quantlab.formats.quantize`` and friends) are kept.
"""

from . import iq4_nl, mxfp4, nvfp4
from .legacy import (
    CHUNK_BLOCKS,
    FORMATS,
    WEIGHTED_CHUNK_BLOCKS,
    WEIGHTED_METHODS,
    BlockFormat,
    bits_per_weight,
    format_table,
    get_format,
    pack,
    pack_fifth_bits,
    pack_nibbles,
    round_half_away,
    unpack,
    unpack_fifth_bits,
    unpack_nibbles,
)
from .legacy import dequantize as _legacy_dequantize
from .legacy import quantize as _legacy_quantize

#: The non-uniform formats, each a module with ``quantize(x, w, *, imatrix)`` and ``dequantize``.
NONUNIFORM = {"MXFP4": mxfp4, "NVFP4": nvfp4, "IQ4_NL": iq4_nl}


def _nonuniform(fmt: object):
    return NONUNIFORM.get(fmt.upper()) if isinstance(fmt, str) else None


def quantize(x, fmt, w=None, *, imatrix=None, **kwargs):
    """Quantize to a GGUF block format; see :func:`quantlab.formats.legacy.quantize`.

    MXFP4, NVFP4 and IQ4_NL go to their modules (``imatrix`` as llama.cpp's quant_weights).
    """
    module = _nonuniform(fmt)
    if module is not None:
        return module.quantize(x, w, imatrix=imatrix, **kwargs)
    return _legacy_quantize(x, fmt, w, **kwargs)


def dequantize(data, fmt):
    """Decode GGUF blocks to float32, equal to ``gguf.quants.dequantize`` for every format."""
    module = _nonuniform(fmt)
    return module.dequantize(data) if module is not None else _legacy_dequantize(data, fmt)


__all__ = [
    "CHUNK_BLOCKS",
    "FORMATS",
    "NONUNIFORM",
    "WEIGHTED_CHUNK_BLOCKS",
    "WEIGHTED_METHODS",
    "BlockFormat",
    "bits_per_weight",
    "dequantize",
    "format_table",
    "get_format",
    "pack",
    "pack_fifth_bits",
    "pack_nibbles",
    "quantize",
    "round_half_away",
    "unpack",
    "unpack_fifth_bits",
    "unpack_nibbles",
]
