"""The minifloat bit-pattern explorer, driven headlessly (toggles, slider, dropdown).

Values are checked against ml_dtypes' decoding of the same bits, neighbours against a sort of
every finite value of the format.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from quantlab import floats, widgets

ml_dtypes = pytest.importorskip("ml_dtypes")


def ml_value(code, name):
    return float(np.array([code], np.uint8).view(getattr(ml_dtypes, name)).astype(np.float64)[0])


def neighbours(value, name):
    fin = np.unique(
        np.array(np.arange(1 << floats.get_format(name).bits, dtype=np.uint8))
        .view(getattr(ml_dtypes, name))
        .astype(np.float64)
    )
    fin = fin[np.isfinite(fin)]
    below = fin[fin < value]
    above = fin[fin > value]
    return (below[-1] if below.size else None, above[0] if above.size else None)


@pytest.mark.parametrize("name", list(widgets.FORMAT_CHOICES.values()))
def test_bit_pattern_matches_ml_dtypes_for_every_code(name):
    for code in range(1 << floats.get_format(name).bits):
        p = widgets.bit_pattern(code, name)
        expected = ml_value(code, name)
        if np.isnan(expected):
            assert p.kind == "nan"
            continue
        assert p.value == expected
        if np.isfinite(expected):
            assert (p.below, p.above) == neighbours(expected, name)
        assert int(p.bits, 2) == code


def test_toggling_bits_moves_code_value_and_plot():
    ex = widgets.FloatBitsExplorer("float8_e4m3fn")
    assert ex.state.value == 1.0  # starts at the code of 1.0
    assert len(ex.toggles) == 8
    for t in ex.toggles:  # clear every bit: +0
        t.value = False
    assert ex.state.code == 0
    assert ex.state.kind == "zero"
    # 0 1000 110 = 1.75 * 2**(8-7) = 3.5, the toggles set from the left (sign first)
    for i, bit in enumerate("01000110"):
        ex.toggles[i].value = bit == "1"
    assert ex.controls["code"].value == 0b01000110
    assert ex.state.value == ml_value(0b01000110, "float8_e4m3fn") == 3.5
    assert (ex.state.below, ex.state.above) == (3.25, 3.75)
    assert "3.5" in ex.readout.value
    assert "3.25 and 3.75" in ex.readout.value
    lines = {line.get_label(): line for line in ex.ax.lines}
    np.testing.assert_array_equal(lines["current"].get_xdata(), [3.5])
    np.testing.assert_array_equal(lines["neighbours"].get_xdata(), [3.25, 3.75])
    np.testing.assert_array_equal(
        np.sort(lines["values"].get_xdata()), floats.finite_values("float8_e4m3fn")
    )
    assert ex.image.value[:4] == b"\x89PNG"


def test_slider_moves_toggles_and_nan_code():
    ex = widgets.FloatBitsExplorer("float8_e4m3fn")
    ex.controls["code"].value = 0x7F
    assert ex.state.kind == "nan"
    assert all(t.value for t in ex.toggles[1:])
    assert not ex.toggles[0].value
    ex.controls["code"].value = 0x01  # smallest subnormal 2**-9
    assert ex.state.kind == "subnormal"
    assert ex.state.value == 2.0**-9
    assert [t.description for t in ex.toggles] == list("00000001")


def test_switching_to_e2m1_rebuilds_bits_and_line():
    ex = widgets.FloatBitsExplorer()
    ex.controls["format"].value = "float4_e2m1fn"
    assert len(ex.toggles) == 4
    assert ex.controls["code"].max == 15
    assert ex.state.value == 1.0
    ex.controls["code"].value = 7
    assert (ex.state.value, ex.state.below, ex.state.above) == (6.0, 4.0, None)
    ex.toggles[0].value = True  # the sign bit
    assert ex.state.value == -6.0
    assert ex.state.code == 15
    lines = {line.get_label(): line for line in ex.ax.lines}
    np.testing.assert_array_equal(
        np.sort(lines["values"].get_xdata()), floats.finite_values("float4_e2m1fn")
    )


def test_e5m2_infinity_and_bad_input():
    assert widgets.bit_pattern(0x7C, "float8_e5m2").kind == "inf"
    with pytest.raises(ValueError, match="code"):
        widgets.bit_pattern(16, "float4_e2m1fn")
    with pytest.raises(TypeError, match="code"):
        widgets.bit_pattern(1.5, "float4_e2m1fn")
    with pytest.raises(ValueError, match="fmt"):
        widgets.FloatBitsExplorer("float8_e8m0fnu")
