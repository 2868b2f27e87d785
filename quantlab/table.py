"""A small column table that renders as a short HTML table in a notebook."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _fmt(value: object, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        return f"{v:.{digits}g}" if abs(v) >= 1e-3 and abs(v) < 1e5 else f"{v:.{digits - 1}e}"
    return str(value)


class Table:
    """Named columns of equal length, e.g. one row per search candidate.

    Parameters
    ----------
    columns : mapping of str to array_like
        Column name -> values (all the same length).
    best : int, optional
        Index of a row to highlight (the chosen candidate).
    digits : int, default 4
        Significant digits shown for floats.
    caption : str, optional
        A line above the table saying what its rows are (e.g. that they aggregate groups).

    Examples
    --------
    >>> t = Table({"offset": [-0.1, 0.0], "error": [0.5, 0.25]}, best=1)
    >>> t["error"]
    array([0.5 , 0.25])
    >>> print(t)
    offset  error
      -0.1    0.5
         0   0.25 *
    """

    def __init__(
        self,
        columns: Mapping[str, ArrayLike],
        best: int | None = None,
        digits: int = 4,
        caption: str | None = None,
    ) -> None:
        if not isinstance(columns, Mapping):
            raise TypeError(
                f"columns must be a mapping of column name to values, got {type(columns).__name__}"
            )
        self._columns: dict[str, NDArray] = {}
        for name, values in columns.items():
            try:
                arr = np.asarray(values)
            except ValueError as exc:
                raise ValueError(f"column {name!r} must be a 1-D sequence: {exc}") from exc
            if arr.ndim != 1:
                got = "a scalar" if arr.ndim == 0 else f"shape {arr.shape}"
                raise ValueError(f"column {name!r} must be a 1-D sequence of values, got {got}")
            self._columns[str(name)] = arr
        lengths = {k: len(v) for k, v in self._columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns must have equal lengths, got {lengths}")
        self.best = best
        self.digits = digits
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"caption must be a string, got {caption!r}")
        self.caption = caption

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self._columns)

    def __getitem__(self, name: str) -> NDArray:
        return self._columns[name].copy()

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), ()))

    def rows(self) -> list[tuple]:
        """The rows as tuples of Python values."""
        return list(zip(*(v.tolist() for v in self._columns.values()), strict=True))

    def _cells(self) -> list[list[str]]:
        return [
            [_fmt(v, self.digits) for v in row] for row in zip(*self._columns.values(), strict=True)
        ]

    def __repr__(self) -> str:
        cells = self._cells()
        names = self.columns
        widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
        lines = ["  ".join(n.rjust(wd) for n, wd in zip(names, widths, strict=True))]
        for i, r in enumerate(cells):
            line = "  ".join(c.rjust(wd) for c, wd in zip(r, widths, strict=True))
            lines.append(line + (" *" if i == self.best else ""))
        if self.caption:
            lines[:0] = textwrap.wrap(self.caption, width=88)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in self.columns)
        body = []
        for i, r in enumerate(self._cells()):
            style = ' style="font-weight:bold"' if i == self.best else ""
            tds = "".join(f"<td>{html.escape(c)}</td>" for c in r)
            body.append(f"<tr{style}>{tds}</tr>")
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Sequence[Sequence], **kwargs) -> Table:
        """Build a table from rows (a list of tuples) and column ``names``."""
        names = list(names)
        for i, row in enumerate(rows):
            if len(row) != len(names):
                raise ValueError(
                    f"rows must each have {len(names)} values (one per name in names); "
                    f"row {i} has {len(row)}"
                )
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return cls(dict(zip(names, cols, strict=True)), **kwargs)
