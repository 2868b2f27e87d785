"""The course's example data (SPEC): learners meet the same numbers in every notebook."""

from __future__ import annotations

import numpy as np

#: 8-bit examples (symmetric and asymmetric quantization, error measures).
PARAMS = np.array(
    [2.34, -3.42, 0.0, -0.1, -0.32, -0.08, -0.47, 1.34, -1.0, -1.11,
     0.69, 0.84, -2.42, 0.61, -0.4, -0.61, 1.23, -0.18, -0.57, -0.14]
)  # fmt: skip

#: 4-bit examples (the "min" convention, least-squares refit, range search).
X_EXAMPLE = np.array(
    [5.63109251, -0.66333746, -3.7742885, -5.53918171,
     -8.02601077, 3.97313181, 0.47977315, 3.40512398]
)  # fmt: skip

PARAMS.setflags(write=False)
X_EXAMPLE.setflags(write=False)
