"""The course website: it builds with warnings as errors, and it renders fully offline.

The site is built once per session into a temporary folder. The browser tests serve it on
127.0.0.1 and open it in headless Debian Chromium (see ``_browser.py``): the maths must be typeset
by the vendored MathJax, every image must load, and no request may fail or leave the local
server. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import html
import importlib
import inspect
import json
import re
import subprocess
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _browser import ARTIFACTS, chromium_page, free_port, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COURSE = [nb for nb in NOTEBOOKS if nb.name[:1].isdigit()]
BUILD_TIMEOUT = 600
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Output types that myst-nb renders in preference to text/latex (its HTML render priority).
BEFORE_LATEX = (WIDGET_VIEW, "text/html", *IMAGE_TYPES)


def notebook_facts(nb: Path) -> dict:
    """What the stored notebook holds, read from its JSON (not from the site built from it)."""
    notebook = json.loads(nb.read_text(encoding="utf-8"))
    cells = notebook["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    outputs = [o.get("data", {}) for c in cells for o in c.get("outputs", [])]
    latex = [d for d in outputs if "text/latex" in d and not any(t in d for t in BEFORE_LATEX)]
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
    return {
        "maths": "$" in markdown or "\\begin{" in markdown or bool(latex),
        "images": sum(any(t in d for t in IMAGE_TYPES) for d in outputs),
        "widget_views": [d[WIDGET_VIEW]["model_id"] for d in outputs if WIDGET_VIEW in d],
        "widget_state": set(state.get("state", {})),
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the docs exactly as documented (``-W``: any warning fails) into a fresh folder."""
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q", "docs", str(out)]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    return out


def test_docs_build_with_warnings_as_errors(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "teachers.html").is_file()
    assert (site / "api" / "index.html").is_file()
    for nb in NOTEBOOKS:
        assert (site / "notebooks" / f"{nb.stem}.html").is_file(), f"no page for {nb.name}"


def test_learning_path_and_teacher_guide_list_every_notebook(site: Path) -> None:
    """The landing page's learning path and the guide's table follow the notebooks found."""
    landing = (site / "index.html").read_text(encoding="utf-8")
    path = landing[landing.index('id="the-learning-path"') :]
    path = path[: path.index("</ol>")]
    guide = (site / "teachers.html").read_text(encoding="utf-8")
    table = guide[guide.index("<table") : guide.index("</table>")]
    for nb in NOTEBOOKS:
        assert f'href="notebooks/{nb.stem}.html"' in path, f"{nb.name} not on the learning path"
        assert f'href="notebooks/{nb.stem}.html"' in table, f"{nb.name} not in the guide's table"
    assert path.count("<li>") == len(NOTEBOOKS)
    assert table.count("<tr") == len(NOTEBOOKS) + 1  # and the header row


def test_api_page_per_module(site: Path) -> None:
    """Each public module has a page documenting every public function and class it defines."""
    modules = sorted(p.stem for p in (ROOT / "quantlab").glob("[!_]*.py"))
    assert modules, "quantlab has no public modules"
    for module in modules:
        page = site / "api" / f"quantlab.{module}.html"
        assert page.is_file(), f"no API page for quantlab.{module}"
        mod = importlib.import_module(f"quantlab.{module}")
        public = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        defined = [
            name
            for name in public
            if (inspect.isfunction(obj := getattr(mod, name)) or inspect.isclass(obj))
            and obj.__module__ == mod.__name__
        ]
        html = page.read_text(encoding="utf-8")
        undocumented = [n for n in defined if f'id="quantlab.{module}.{n}"' not in html]
        assert not undocumented, f"quantlab.{module}: no entry for {undocumented}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: nb.stem)
def test_notebook_page_has_stored_outputs(site: Path, nb: Path) -> None:
    """Every figure, the maths and the widget state stored in a notebook reach its page."""
    expected = notebook_facts(nb)
    page = site / "notebooks" / f"{nb.stem}.html"
    html = page.read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*\bsrc="([^"]+)"', html)
    assert len(images) >= expected["images"], f"{nb.name}: figures missing from its page"
    missing = [src for src in images if not (page.parent / src).resolve().is_file()]
    assert not missing, f"{nb.name}: images not in the site: {missing}"
    if expected["maths"]:
        assert 'class="math' in html, f"{nb.name}: its maths is not marked up as maths"
        assert "vendor/mathjax/es5/tex-chtml.js" in html, f"{nb.name}: MathJax is not loaded"
    views = expected["widget_views"]
    unsaved = [v for v in views if v not in expected["widget_state"]]
    assert not unsaved, f"{nb.name}: widgets without stored state (save the widget state)"
    if views:
        assert WIDGET_STATE in html, f"{nb.name}: widget state not on its page"
        assert all(f'"model_id": "{v}"' in html for v in views), f"{nb.name}: widget views lost"
        assert "vendor/html-manager/dist/embed-amd.js" in html
        assert "vendor/requirejs/require.js" in html


def test_site_needs_no_cdn(site: Path) -> None:
    """No page refers to another host for a script, style sheet or font."""
    offenders = []
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for needle in ('src="http', "src='http", 'href="http', "url(http", "cdn.jsdelivr", "unpkg"):
            for line in html.splitlines():
                if needle in line and ("<script" in line or "stylesheet" in line):
                    offenders.append(f"{page.relative_to(site)}: {line.strip()[:160]}")
    assert not offenders, "\n".join(offenders)


def test_site_links_to_the_install_commands_and_the_repository(site: Path) -> None:
    """The landing page leads to the install page, which holds the README's two commands."""
    landing = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="install.html"' in landing, "the landing page does not link to the install page"
    install = (site / "install.html").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(
        r"```bash\n(.*?)\n```",
        readme.split("<!-- install -->")[1].split("<!-- /install -->")[0],
        flags=re.S,
    )
    assert len(commands) == 2, "the README's install section should hold its two commands"
    text = html.unescape(re.sub(r"<[^>]+>", "", install))
    for command in commands:
        assert command in text, f"install page lacks the README's command {command[:60]!r}"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    url = meta["project"].get("urls", {}).get("Repository")
    if url:  # pyproject's [project.urls] Repository: the theme's repository button
        assert f'href="{url}"' in landing, f"no link to the repository {url}"


# -- In the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(site: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_for_http(base + "index.html", proc=proc)
        yield base
    finally:
        stop_process(proc)


def open_and_check(
    base: str, path: str, screenshot: str, *, maths: bool = True, min_images: int = 0
) -> dict:
    """Open ``base + path``; check maths, images, requests and console; return page facts.

    ``maths``: the page must have typeset maths (otherwise maths is checked only if present).
    """
    requests: list[str] = []
    failures: list[str] = []
    errors: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failures.append(f"{r.url} ({r.failure})"))
        page.on(
            "response",
            lambda r: failures.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None,
        )
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(base + path, wait_until="load")
        if maths or page.query_selector(".math"):
            # MathJax 3 is loaded with `defer`; its startup promise resolves once it has typeset.
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            )
            page.evaluate("() => MathJax.startup.promise")
        if page.query_selector('script[type="application/vnd.jupyter.widget-state+json"]'):
            page.wait_for_selector(".jupyter-widgets", timeout=30_000)
        page.wait_for_load_state("networkidle")
        facts = page.evaluate(
            """() => ({
                maths: document.querySelectorAll('.math').length,
                typeset: [...document.querySelectorAll('.math')]
                    .filter(e => e.querySelector('mjx-container')).length,
                containers: document.querySelectorAll('mjx-container').length,
                tex_errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent),
                images: [...document.images].map(i => ({src: i.src, ok: i.complete
                    && i.naturalWidth > 0})),
                widgets: document.querySelectorAll('.jupyter-widgets.widget-inline-hbox, '
                    + '.jupyter-widgets.widget-container, .widget-slider').length,
                widget_errors: document.querySelectorAll('.jupyter-widgets-error-widget').length,
                // Display maths and output tables must stay inside the page's text column.
                // (a formula may scroll in its own box; it must not spill over the margin).
                overflowing: (() => {
                    const column = document.querySelector('article') || document.body;
                    const right = column.getBoundingClientRect().right + 1;
                    const spills = e => e.scrollWidth > e.clientWidth + 1
                        && getComputedStyle(e).overflowX === 'visible';
                    return [
                        ...[...document.querySelectorAll('mjx-container[display="true"]')]
                            .filter(spills),
                        ...[...document.querySelectorAll('div.cell_output table')]
                            .filter(e => e.getBoundingClientRect().right > right),
                    ].map(e => e.textContent.slice(0, 60));
                })(),
                cramped_cells: [...document.querySelectorAll('div.cell_output td')]
                    .filter(td => parseFloat(getComputedStyle(td).paddingLeft) < 4).length,
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)

    host = urlsplit(base).netloc
    outside = [u for u in requests if urlsplit(u).scheme in {"http", "https", "ws", "wss"}]
    outside = [u for u in outside if urlsplit(u).netloc != host]
    assert not outside, f"requests leaving {host}: {outside}"
    assert not failures, f"failed requests: {failures}"
    assert not errors, f"console errors: {errors}"
    assert facts["containers"] > 0 or not maths, "no MathJax output on the page"
    assert facts["typeset"] == facts["maths"], f"maths left untypeset: {json.dumps(facts)}"
    assert not facts["tex_errors"], f"TeX errors: {facts['tex_errors']}"
    assert not facts["overflowing"], f"wider than the page: {facts['overflowing']}"
    assert not facts["cramped_cells"], "output table cells without padding"
    broken = [i["src"] for i in facts["images"] if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"
    assert len(facts["images"]) >= min_images, f"expected figures on {path}"
    facts["requests"] = requests
    return facts


def test_landing_page_in_browser(server: str) -> None:
    facts = open_and_check(server, "index.html", "docs-index.png")
    assert any("mathjax" in u for u in facts["requests"])


@pytest.mark.parametrize("nb", COURSE, ids=lambda nb: nb.stem)
def test_notebook_page_in_browser(server: str, nb: Path) -> None:
    """Maths typeset wherever the notebook has maths; all its figures load; nothing fails;
    formulas and tables stay inside the page."""
    expected = notebook_facts(nb)
    facts = open_and_check(
        server,
        f"notebooks/{nb.stem}.html",
        f"docs-{nb.stem}.png",
        maths=expected["maths"],
        min_images=expected["images"],
    )
    assert facts["maths"] > 0 or not expected["maths"], "the notebook's maths is not on its page"


# The playground first: it has the most widgets (the course notebooks have one or two at most).
WIDGET_NOTEBOOKS = sorted(
    (nb for nb in NOTEBOOKS if notebook_facts(nb)["widget_views"]),
    key=lambda nb: "playground" not in nb.name,
)


@pytest.mark.skipif(not WIDGET_NOTEBOOKS, reason="no notebook with widgets yet")
def test_widget_snapshots_in_browser(server: str) -> None:
    """Stored widget state is rendered by the vendored embedder (require.js + embed-amd.js)."""
    nb = WIDGET_NOTEBOOKS[0]
    facts = open_and_check(server, f"notebooks/{nb.stem}.html", "docs-widgets.png", maths=False)
    assert facts["widgets"] > 0, "no widget rendered from the stored widget state"
    assert facts["widget_errors"] == 0
