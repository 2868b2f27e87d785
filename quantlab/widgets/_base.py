"""The machinery every explorer shares: controls → pure function → in-place plot → PNG."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from PIL import Image as PILImage

from .._validation import as_float_array, as_weights
from ..data import X_EXAMPLE
from ..exploration import (
    example_weights,
)


def find_artist(ax: Axes, label: str) -> Artist:
    """The artist of ``ax`` with this legend label (lines, collections, bar containers).

    Raises
    ------
    KeyError
        If no artist has the label.
    """
    for group in (ax.lines, ax.collections, ax.containers, ax.patches):
        for artist in group:
            if artist.get_label() == label:
                return artist
    raise KeyError(label)


def _nice_top(value: float) -> float:
    """An upper axis limit above ``value`` on an eighth-decade grid (1, 1.33, 1.78, 2.37, ...).

    Limits from this grid stay the same while ``value`` moves a little, so the plot's static
    part need not be redrawn.
    """
    if not value > 0:
        return 1.0
    return float(10 ** (np.ceil(8 * np.log10(1.05 * value)) / 8))


def _error_html(message: str) -> str:
    return f'<span style="color:#b00">{html.escape(message)}</span>'


class _Explorer(widgets.VBox):
    """Controls → pure function → in-place plot update → PNG in an Image, plus an HTML readout.

    Subclasses define :meth:`compute` (the pure function of the control values),
    :meth:`draw` (first drawing) and :meth:`redraw` (in-place update).
    """

    # 720 px wide at 100 dpi: text is drawn at 100/72 px per point, so titles, ticks and
    # legends stay readable when the image is shown at the width of a docs page.
    figsize: tuple[float, float] = (7.2, 2.9)
    dpi: int = 100
    ncols: int = 2
    margins: Mapping[str, float] = {"left": 0.09, "right": 0.97, "bottom": 0.16, "top": 0.92}

    def __init__(self, controls: Mapping[str, widgets.ValueWidget]) -> None:
        super().__init__()
        self.figure = Figure(figsize=self.figsize, dpi=self.dpi)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(wspace=0.28, **self.margins)
        axes = self.figure.subplots(1, self.ncols, squeeze=False)[0]
        self.axes: list[Axes] = list(axes)
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        self.state: Any = None
        self.error: str | None = None
        self._drawn = False
        self._background: Any = None
        self._background_key: tuple | None = None
        width = int(self.figsize[0] * self.dpi)
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        self.image.add_class("quantlab-plot")
        self.readout = widgets.HTML()
        self.readout.add_class("quantlab-readout")
        self.interactive = widgets.interactive(self._update, clear_output=False, **self.controls)
        box = widgets.HBox(
            list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.children = (box, self.image, self.readout)
        self.add_class("quantlab-explorer")

    # -- to be defined by subclasses --------------------------------------------------------
    def compute(self, **values: Any) -> Any:  # pragma: no cover - abstract
        """The pure function of the control values."""
        raise NotImplementedError

    def draw(self, state: Any) -> None:  # pragma: no cover - abstract
        """Draw the first state."""
        raise NotImplementedError

    def redraw(self, state: Any) -> None:
        """Update the drawing for a new state (default: clear and draw again)."""
        for ax in self.figure.axes:
            ax.clear()
        self._background = None
        self.draw(state)

    def constrain(self, values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Adapt the controls to each other before computing (default: nothing to adapt).

        Returns the values to compute with and an optional note for the readout (e.g. that a
        method the new scheme does not offer was replaced). Subclasses change other controls
        with :meth:`_set_quietly`, so that no second update starts.
        """
        return values, None

    def _set_quietly(self, name: str, **traits: Any) -> None:
        """Set traits of control ``name`` (options, value, disabled) without an update."""
        ctl = self.controls[name]
        inter = getattr(self, "interactive", None)  # None during the first, building update
        if inter is not None:
            ctl.unobserve(inter.update, names="value")
        try:
            for trait, value in traits.items():
                setattr(ctl, trait, value)
        finally:
            if inter is not None:
                ctl.observe(inter.update, names="value")

    def _offer_methods(
        self, values: dict[str, Any], allowed: tuple[str, ...]
    ) -> tuple[dict[str, Any], str | None]:
        """Offer only ``allowed`` in the method dropdown; replace a method it does not hold."""
        note = None
        method = values["method"]
        if method not in allowed:
            note = f"method {method!r} is not available here; showing {allowed[0]!r}"
            method = allowed[0]
        if tuple(self.controls["method"].options) != allowed:
            self._set_quietly("method", options=allowed, value=method)
        elif self.controls["method"].value != method:
            self._set_quietly("method", value=method)
        return {**values, "method": method}, note

    def animated(self) -> list[Artist]:
        """The artists :meth:`redraw` changes in place (default none: every render is full).

        :meth:`render` draws everything else once, keeps that background while no axis limit
        changes, and then only draws these artists on top of it (matplotlib "blitting").
        """
        return []

    # -- machinery ----------------------------------------------------------------------------
    def _update(self, **values: Any) -> Any:
        values, note = self.constrain(dict(values))
        try:
            state = self.compute(**values)
        except ValueError as exc:  # bad data: say so, and show no plot of an older setting
            self.error = str(exc)
            self.readout.value = _error_html(self.error)
            self.image.layout.visibility = "hidden"
            return None
        self.error = None
        self.image.layout.visibility = "visible"
        if self._drawn:
            self.redraw(state)
        else:
            self.draw(state)
            self._drawn = True
        self.state = state
        self.readout.value = state.readout() + (f"<br><i>{html.escape(note)}</i>" if note else "")
        self.image.value = self.render()
        return state

    def render(self) -> bytes:
        """The figure as PNG bytes.

        The static part (axes, ticks, labels, fixed artists) is drawn only when it changes:
        when an axis limit differs from the cached background's, or after a full
        :meth:`redraw`. The :meth:`animated` artists, then the legends of their axes, are drawn
        over it.
        """
        canvas = self.figure.canvas
        moving = self.animated()
        # Legends stay on top of what moves in their axes (as in a full drawing, zorder 5).
        with_moving = {artist.axes for artist in moving}
        moving += [
            ax.get_legend()
            for ax in self.figure.axes
            if ax in with_moving and ax.get_legend() is not None
        ]
        key = tuple((ax.get_xlim(), ax.get_ylim()) for ax in self.figure.axes)
        if self._background is None or key != self._background_key:
            for artist in moving:
                artist.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_key = key
        else:
            canvas.restore_region(self._background)
        for artist in moving:
            self.figure.draw_artist(artist)
        image = PILImage.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])  # opaque: RGB
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def update(self, **values: Any) -> Any:
        """Set several controls at once (one update) and return the new state."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown controls {sorted(unknown)}; have {sorted(self.controls)}")
        with self.interactive.hold_sync():
            for name, value in values.items():
                ctl = self.controls[name]
                ctl.unobserve(self.interactive.update, names="value")
                try:
                    ctl.value = value
                finally:
                    ctl.observe(self.interactive.update, names="value")
        self.interactive.update()
        return self.interactive.result


def _weights_for(x: NDArray, w: ArrayLike | None) -> NDArray[np.float64]:
    return example_weights(x.size) if w is None else as_weights(w, x.shape)


def _data(x: ArrayLike | None) -> NDArray[np.float64]:
    return np.array(X_EXAMPLE) if x is None else as_float_array(x, "x").ravel()
