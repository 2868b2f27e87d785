"""A bit-pattern explorer for minifloats: toggle or slide the bits, see the value and neighbours.

:func:`bit_pattern` is the pure function (code → fields, value, neighbours);
:class:`FloatBitsExplorer` wires one toggle button per bit and a code slider to it (either one
moves the other), shows the readout as HTML and draws the format's values on a number line
with the current value and its two neighbours marked. Like the other explorers it renders its
own matplotlib figure to a PNG, so it runs the same in JupyterLab, Voilà and a test.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import floats

#: The formats the explorer offers (dropdown label → format name).
FORMAT_CHOICES = {
    "E4M3 (FP8)": "float8_e4m3fn",
    "E5M2 (FP8)": "float8_e5m2",
    "E2M3 (FP6)": "float6_e2m3fn",
    "E3M2 (FP6)": "float6_e3m2fn",
    "E2M1 (FP4)": "float4_e2m1fn",
}


@dataclass(frozen=True)
class BitPattern:
    """One code of a minifloat format, taken apart.

    Attributes
    ----------
    fmt : str
        Format name.
    code : int
        The bit pattern as an integer.
    bits : str
        The pattern, most significant bit first.
    sign, exponent, mantissa : int
        The three fields.
    kind : str
        "zero", "subnormal", "normal", "inf" or "nan".
    value : float
        The decoded value.
    below, above : float or None
        The nearest representable finite values below and above (None at the ends, or for
        NaN/inf).
    formula : str
        How the value is formed, e.g. ``"(+1) × 1.75 × 2^(8 - 7)"``.
    """

    fmt: str
    code: int
    bits: str
    sign: int
    exponent: int
    mantissa: int
    kind: str
    value: float
    below: float | None
    above: float | None
    formula: str

    @property
    def gap(self) -> float | None:
        """Distance to the next value above (None at the top or for NaN/inf)."""
        if self.above is None or not np.isfinite(self.value):
            return None
        return self.above - self.value

    def readout(self) -> str:
        """HTML: the fields, the formula, the value and its neighbours."""
        f = floats.get_format(self.fmt)
        s, e = (
            self.bits[: int(f.signed)],
            self.bits[int(f.signed) : int(f.signed) + f.exponent_bits],
        )
        m = self.bits[int(f.signed) + f.exponent_bits :]
        parts = [
            f"<b>bits</b> <span style='color:#b00'>{s}</span> "
            f"<span style='color:#06c'>{e}</span> <span style='color:#080'>{m}</span>"
            f" (code {self.code}, {self.kind})",
            f"<b>value</b> {html.escape(self.formula)} = {self.value:.10g}",
        ]
        if self.below is not None or self.above is not None:
            lo = "none" if self.below is None else f"{self.below:.10g}"
            hi = "none" if self.above is None else f"{self.above:.10g}"
            parts.append(f"<b>neighbours</b> {lo} and {hi}")
        if self.gap is not None and self.value != 0:
            parts.append(
                f"<b>gap above</b> {self.gap:.6g} ({100 * self.gap / abs(self.value):.3g} %)"
            )
        return "<br>".join(parts)


def bit_pattern(code: int, fmt: str = "float8_e4m3fn") -> BitPattern:
    """Take the code of a minifloat apart: fields, kind, value, neighbours and formula.

    Parameters
    ----------
    code : int
        A bit pattern in ``[0, 2**bits - 1]``.
    fmt : str
        A :mod:`quantlab.floats` format.

    Examples
    --------
    >>> p = bit_pattern(0b0_1000_110, "float8_e4m3fn")
    >>> p.value, p.below, p.above
    (3.5, 3.25, 3.75)
    """
    f = floats.get_format(fmt)
    if isinstance(code, bool) or not isinstance(code, int | np.integer):
        raise TypeError(f"code must be an integer, got {code!r}")
    if not 0 <= code < 1 << f.bits:
        raise ValueError(f"code must lie in [0, {(1 << f.bits) - 1}] for {f.name}, got {code}")
    code = int(code)
    m_bits = f.mantissa_bits
    sign = (code >> (f.bits - 1)) & 1 if f.signed else 0
    exponent = (code >> m_bits) & ((1 << f.exponent_bits) - 1)
    mantissa = code & ((1 << m_bits) - 1)
    value = float(floats.decode(np.array([code]), f)[0])
    s = "-1" if sign else "+1"
    if np.isnan(value):
        kind, formula = "nan", "NaN"
    elif np.isinf(value):
        kind, formula = "inf", f"({s}) × inf"
    elif exponent == 0 and m_bits:
        kind = "zero" if mantissa == 0 else "subnormal"
        formula = f"({s}) × {mantissa}/{1 << m_bits} × 2^(1 - {f.bias})"
    else:
        kind = "normal"
        formula = f"({s}) × {1 + mantissa / (1 << m_bits):g} × 2^({exponent} - {f.bias})"
    below = above = None
    if np.isfinite(value):
        fin = floats.finite_values(f)
        i = int(np.searchsorted(fin, value))
        below = float(fin[i - 1]) if i > 0 else None
        j = int(np.searchsorted(fin, value, side="right"))
        above = float(fin[j]) if j < fin.size else None
    bits = format(code, f"0{f.bits}b")
    return BitPattern(
        f.name, code, bits, sign, exponent, mantissa, kind, value, below, above, formula
    )


class FloatBitsExplorer(widgets.VBox):
    """Toggle the bits of an E4M3/E5M2/FP6/E2M1 value (or slide its code); see value and neighbours.

    Parameters
    ----------
    fmt : str, default "float8_e4m3fn"
        Initial format (one of :data:`FORMAT_CHOICES`' names).
    code : int, optional
        Initial code; default the code of 1.0.

    Attributes
    ----------
    controls : dict
        ``"format"`` (Dropdown) and ``"code"`` (IntSlider).
    toggles : list of ipywidgets.ToggleButton
        One per bit, most significant first.
    state : BitPattern
        The current pattern.
    figure : matplotlib.figure.Figure
        The number line: ``"values"``, ``"current"`` and ``"neighbours"`` artists.
    """

    figsize = (8.0, 2.0)
    dpi = 90

    def __init__(self, fmt: str = "float8_e4m3fn", code: int | None = None) -> None:
        super().__init__()
        name = floats.get_format(fmt).name
        if name not in FORMAT_CHOICES.values():
            raise ValueError(f"fmt must be one of {sorted(FORMAT_CHOICES.values())}, got {fmt!r}")
        self._syncing = False
        self.controls = {
            "format": widgets.Dropdown(
                options=[(k, v) for k, v in FORMAT_CHOICES.items()],
                value=name,
                description="format",
            ),
            "code": widgets.IntSlider(min=0, max=1, value=0, description="code"),
        }
        self.toggles: list[widgets.ToggleButton] = []
        self.bit_box = widgets.HBox()
        self.figure = Figure(figsize=self.figsize, dpi=self.dpi)
        FigureCanvasAgg(self.figure)
        self.ax = self.figure.add_axes((0.03, 0.36, 0.94, 0.42))
        self.image = widgets.Image(
            format="png", layout=widgets.Layout(width=f"{int(self.figsize[0] * self.dpi)}px")
        )
        self.readout = widgets.HTML()
        self.state: BitPattern | None = None
        self.controls["format"].observe(self._on_format, names="value")
        self.controls["code"].observe(self._on_code, names="value")
        self._build(name, code)
        self.children = (
            widgets.HBox(list(self.controls.values())),
            self.bit_box,
            self.image,
            self.readout,
        )

    # -- wiring ----------------------------------------------------------------------------------
    def _build(self, name: str, code: int | None) -> None:
        """Toggles, slider range and the static number line for format ``name``."""
        f = floats.get_format(name)
        if code is None:
            code = int(floats.encode([1.0], f)[0])
        roles = ["sign"] * int(f.signed) + ["exponent"] * f.exponent_bits
        roles += ["mantissa"] * f.mantissa_bits
        style = {"sign": "danger", "exponent": "info", "mantissa": "success"}
        self.toggles = [
            widgets.ToggleButton(
                value=False,
                description="0",
                tooltip=role,
                button_style=style[role],
                layout=widgets.Layout(width="38px"),
            )
            for role in roles
        ]
        for t in self.toggles:
            t.observe(self._on_toggle, names="value")
        self.bit_box.children = tuple(self.toggles)
        slider = self.controls["code"]
        self._syncing = True
        slider.max = (1 << f.bits) - 1
        self._syncing = False
        self._draw_line(f)
        self.set_code(code)

    def _draw_line(self, f: floats.FloatFormat) -> None:
        ax = self.ax
        ax.clear()
        fin = floats.finite_values(f)
        ax.set_xscale("symlog", linthresh=f.smallest_normal, linscale=0.5)
        ax.plot(fin, np.zeros_like(fin), "|", color="0.4", markersize=12, label="values")
        ax.plot([np.nan], [0], "o", color="#d62728", markersize=9, label="current")
        ax.plot(
            [np.nan, np.nan],
            [0, 0],
            "o",
            mfc="none",
            mec="#ff7f0e",
            mew=2,
            markersize=11,
            label="neighbours",
        )
        ax.set_yticks([])
        ax.set_ylim(-1, 1)
        ax.set_xlim(-f.max * 1.15, f.max * 1.15)
        # ticks at 0 and at powers of two spread over the range (every 1, 2 or 4 binades)
        k = np.arange(np.log2(f.smallest_normal), np.log2(f.max) + 1)
        k = k[:: max(1, int(np.ceil(k.size / 5)))]
        ticks = np.concatenate([-(2.0 ** k[::-1]), [0.0], 2.0**k])
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.tick_params(labelsize=9)
        ax.set_xlabel(
            f"value of {f.name} (linear within ±{f.smallest_normal:g}, logarithmic beyond)",
            fontsize=9,
        )
        ax.legend(loc="lower left", fontsize=9, ncols=3, frameon=False, bbox_to_anchor=(0, 1.0))

    def _on_format(self, change) -> None:
        self._build(change["new"], None)

    def _on_code(self, change) -> None:
        if not self._syncing:
            self.set_code(change["new"])

    def _on_toggle(self, change) -> None:
        if self._syncing:
            return
        code = int("".join("1" if t.value else "0" for t in self.toggles), 2)
        self.set_code(code)

    def set_code(self, code: int) -> BitPattern:
        """Show ``code``: toggles, slider, readout and plot follow; returns the new state."""
        state = bit_pattern(code, self.controls["format"].value)
        self._syncing = True
        try:
            self.controls["code"].value = state.code
            for t, b in zip(self.toggles, state.bits, strict=True):
                t.value = b == "1"
                t.description = b
        finally:
            self._syncing = False
        self.state = state
        self.readout.value = state.readout()
        self._redraw(state)
        return state

    def _redraw(self, state: BitPattern) -> None:
        lines = {line.get_label(): line for line in self.ax.lines}
        shown = state.value if np.isfinite(state.value) else np.nan
        lines["current"].set_xdata([shown])
        lines["neighbours"].set_xdata(
            [np.nan if v is None else v for v in (state.below, state.above)]
        )
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        self.image.value = buf.getvalue()
