"""The playground notebook as stored: widget state for the site, and an app view for Voilà."""

from __future__ import annotations

import json
from pathlib import Path

from quantlab import widgets

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06-playground.ipynb"
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def _notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_widget_state_is_stored_for_every_explorer():
    """The docs site draws the explorers from the stored widget state.

    JupyterLab's autosave keeps the outputs but may drop the state (Settings → "Save widget
    state automatically" is off by default), which leaves the site's playground page empty
    while everything else passes: re-execute the notebook with nbconvert (README) instead.
    """
    nb = _notebook()
    state = nb["metadata"].get("widgets", {}).get(STATE, {}).get("state", {})
    assert state, "06-playground.ipynb has no stored widget state: re-execute it with nbconvert"
    explorer_cells = [
        c for c in nb["cells"] if c["cell_type"] == "code" and "Explorer(" in _source(c)
    ]
    assert len(explorer_cells) == 4
    for cell in explorer_cells:
        views = [o["data"][VIEW]["model_id"] for o in cell["outputs"] if VIEW in o.get("data", {})]
        assert views, f"an explorer cell has no widget output: {_source(cell)!r}"
        assert all(v in state for v in views), "a widget output's model is missing from the state"


def test_the_app_view_hides_the_lab_instructions_and_the_code_only_section():
    cells = _notebook()["cells"]
    hidden = [c for c in cells if widgets.HIDE_TAG in c.get("metadata", {}).get("tags", [])]
    assert any("Run All Cells" in _source(c) for c in hidden)
    assert all("Run All Cells" not in _source(c) for c in cells if c not in hidden)
    heading = next(i for i, c in enumerate(cells) if _source(c).startswith("## 5"))
    assert all(c in hidden for c in cells[heading:]), "section 5 is code for JupyterLab readers"
    assert not any(c["cell_type"] == "code" and "Explorer(" in _source(c) for c in hidden)
    assert any(_source(c).startswith("widgets.app_view()") for c in cells[:heading])


def test_in_voila_and_app_view():
    assert not widgets.in_voila({})
    assert widgets.in_voila({"VOILA_BASE_URL": "/"})
    assert widgets.app_view({}) is None
    style = widgets.app_view({"VOILA_REQUEST_URL": "http://127.0.0.1/"}).data
    assert f".celltag_{widgets.HIDE_TAG}" in style and "display: none" in style
