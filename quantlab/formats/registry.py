"""The registry of block formats: one entry per format name, whatever module implements it.

A format module registers an object with the attributes and methods of :class:`Format`; the
package's :func:`quantlab.formats.quantize`, :func:`~quantlab.formats.dequantize`,
:func:`~quantlab.formats.get_format`, :func:`~quantlab.formats.bits_per_weight` and
:func:`~quantlab.formats.format_table` then serve it. Adding a format is one line in the
package's ``__init__``::

    register(mxfp4.MXFP4)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray


@runtime_checkable
class Format(Protocol):
    """What a registered format provides.

    ``quantize(x, w=None, *, imatrix=None, ...)`` returns the bytes ``(..., k·bytes_per_block)``
    of ``x`` ``(..., k·block_size)``; ``dequantize(data)`` returns float32 values.
    """

    name: str
    bits: int
    use_min: bool
    block_size: int

    @property
    def bytes_per_block(self) -> int: ...

    @property
    def bits_per_weight(self) -> float: ...

    def quantize(
        self, x: ArrayLike, w: ArrayLike | None = None, **options: object
    ) -> NDArray[np.uint8]: ...

    def dequantize(self, data: ArrayLike) -> NDArray[np.float32]: ...


#: Registered formats by upper-case name, in registration order.
REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` under ``fmt.name`` (upper case); a second format of the same name is an error."""
    if not isinstance(fmt, Format):
        raise TypeError(f"fmt must provide the attributes of a Format, got {fmt!r}")
    key = fmt.name.upper()
    if key in REGISTRY and REGISTRY[key] is not fmt:
        raise ValueError(f"a format named {key} is already registered")
    REGISTRY[key] = fmt
    return fmt


def lookup(fmt: object) -> Format:
    """The registered format named ``fmt`` (any case); a registered format object passes through."""
    if isinstance(fmt, str) and fmt.upper() in REGISTRY:
        return REGISTRY[fmt.upper()]
    if not isinstance(fmt, str) and any(fmt is f for f in REGISTRY.values()):
        return fmt  # type: ignore[return-value]
    if isinstance(fmt, Format) and not isinstance(fmt, str):
        return fmt
    raise ValueError(f"fmt must be one of {list(REGISTRY)}, got {fmt!r}")


class ModuleFormat:
    """A format implemented as a module with ``NAME``, ``BLOCK_SIZE``, ``BYTES_PER_BLOCK``,
    ``quantize(x, w=None, *, imatrix=None)`` and ``dequantize(data)`` (MXFP4, NVFP4, IQ4_NL).

    Parameters
    ----------
    module : module
        The format's module.
    bits : int
        Bits per code.
    """

    use_min = False

    def __init__(self, module: object, bits: int) -> None:
        self.module = module
        self.name: str = module.NAME  # type: ignore[attr-defined]
        self.block_size: int = module.BLOCK_SIZE  # type: ignore[attr-defined]
        self.bits = bits
        self._bytes: int = module.BYTES_PER_BLOCK  # type: ignore[attr-defined]

    @property
    def bytes_per_block(self) -> int:
        """Bytes of one block."""
        return self._bytes

    @property
    def bits_per_weight(self) -> float:
        """Storage per value, the block's scale included."""
        return 8 * self._bytes / self.block_size

    def quantize(self, x: ArrayLike, w: ArrayLike | None = None, **options: object) -> NDArray:
        """The module's ``quantize``."""
        return self.module.quantize(x, w, **options)  # type: ignore[attr-defined]

    def dequantize(self, data: ArrayLike) -> NDArray[np.float32]:
        """The module's ``dequantize``."""
        return self.module.dequantize(data)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"ModuleFormat({self.name})"
