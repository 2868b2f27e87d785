"""Block formats of GGUF/llama.cpp, bit-exact with their reference (SPEC items 8 and 11).

One module per family, each readable end to end:

- :mod:`quantlab.formats.legacy`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32).

:func:`quantize` and :func:`dequantize` dispatch on the format's name; the import paths of the
single-module version (``quantlab.formats.quantize`` and friends) are kept.
"""

from .legacy import (
    CHUNK_BLOCKS,
    FORMATS,
    WEIGHTED_CHUNK_BLOCKS,
    WEIGHTED_METHODS,
    BlockFormat,
    bits_per_weight,
    dequantize,
    format_table,
    get_format,
    pack,
    pack_fifth_bits,
    pack_nibbles,
    quantize,
    round_half_away,
    unpack,
    unpack_fifth_bits,
    unpack_nibbles,
)

__all__ = [
    "CHUNK_BLOCKS",
    "FORMATS",
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
