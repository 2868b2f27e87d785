"""quantlab: a course and NumPy library on uniform quantization.

The fixed public API (SPEC): :func:`asymmetric_quantization`, :func:`asymmetric_dequantization`,
:func:`symmetric_quantization`, :func:`symmetric_dequantization`, :class:`Quantizer`,
:func:`lstsq_scale`, :func:`lstsq_scale_min`, :func:`mse`, :func:`sqnr_db`; ONNX's
QuantizeLinear/DequantizeLinear as :func:`quantize_linear` and :func:`dequantize_linear`.

Every function validates its input in :mod:`quantlab._validation`: NaN, infinity, empty or
ragged input raise a ValueError naming the argument, and masked arrays (``numpy.ma``) are
refused with a TypeError (masks are not honoured; pass ``x.compressed()`` or ``x.filled(v)``).

The integer inference of SPEC item 10 is ``quantlab.inference``
(:func:`~quantlab.inference.matmul_integer`, :func:`~quantlab.inference.qlinear_matmul`,
:func:`~quantlab.inference.quantize_multiplier`, :func:`~quantlab.inference.requantize`).
"""

from . import calibration as calibration
from . import floats as floats  # also registers quantize_linear's float8/float4 output types
from . import inference as inference
from .data import PARAMS, X_EXAMPLE
from .grouping import Grouping
from .linear import QUANT_TYPES, dequantize_linear, quantize_linear
from .lstsq import lstsq_scale, lstsq_scale_min
from .metrics import max_error, mse, sqnr_db, uniform_noise_mse, uniform_sqnr_db
from .quantizer import METHODS, Quantizer, QuantResult
from .search import DEFAULT_RELATIVE_OFFSETS, REFERENCE_OFFSETS
from .table import Table
from .uniform import (
    asymmetric_dequantization,
    asymmetric_quantization,
    symmetric_dequantization,
    symmetric_quantization,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RELATIVE_OFFSETS",
    "METHODS",
    "PARAMS",
    "QUANT_TYPES",
    "REFERENCE_OFFSETS",
    "X_EXAMPLE",
    "Grouping",
    "QuantResult",
    "Quantizer",
    "Table",
    "asymmetric_dequantization",
    "asymmetric_quantization",
    "dequantize_linear",
    "lstsq_scale",
    "lstsq_scale_min",
    "max_error",
    "mse",
    "quantize_linear",
    "sqnr_db",
    "symmetric_dequantization",
    "symmetric_quantization",
    "uniform_noise_mse",
    "uniform_sqnr_db",
]
