"""Sphinx configuration of the quantlab course website.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (from the repository root).

What this file does besides the usual settings, on every build:

- fetches MathJax 3, require.js and the ipywidgets embedder into ``_static/vendor/`` once
  (``vendor.py``), so that the built site makes no request outside itself;
- writes one API page per ``quantlab.*`` module into ``api/`` (generated, git-ignored), so a new
  module gets its page without editing the docs;
- shows the course notebooks (``../notebooks`` through the ``notebooks`` symlink) with their
  stored outputs: they are never executed here.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

from docutils.statemachine import StringList
from sphinx.directives.other import TocTree
from sphinx.errors import ConfigError
from sphinx.util.docutils import SphinxDirective
from sphinx.util.matching import patfilter

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the checkout's quantlab, not some installed copy
sys.path.insert(0, str(DOCS))
os.environ.setdefault("MPLBACKEND", "Agg")  # autodoc imports quantlab.plots

import vendor  # noqa: E402 - docs/vendor.py, importable through the path set above

# -- Project -------------------------------------------------------------------------------------

project = "quantlab"
author = "The quantlab developers"
copyright = "the quantlab developers"  # the name Sphinx reads
html_title = "quantlab: a course on uniform quantization"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = [
    "_build",
    "_static",
    "**.ipynb_checkpoints",
    # Only the notebooks themselves are pages: not helper files or subfolders next to them.
    "notebooks/*/**",
    "notebooks/**.md",
    "notebooks/**.rst",
    "README.md",
]

# -- Notebooks (myst-nb) -------------------------------------------------------------------------

nb_execution_mode = "off"  # pages show the outputs stored in the notebooks
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

NOTEBOOKS_LINK = DOCS / "notebooks"
if not (NOTEBOOKS_LINK.is_dir() and (ROOT / "notebooks").is_dir()):
    raise RuntimeError(
        f"{NOTEBOOKS_LINK} must be a symlink to ../notebooks (git clone keeps it; on Windows "
        "enable symlinks in git, core.symlinks=true)"
    )

# -- Offline assets ------------------------------------------------------------------------------

try:
    vendor.ensure_vendor()
except vendor.VendorError as exc:  # a short message instead of a traceback of conf.py
    raise ConfigError(f"cannot fetch the offline JavaScript for the website:\n{exc}") from None
mathjax_path = vendor.MATHJAX_JS
nb_ipywidgets_js = {vendor.REQUIRE_JS: {}, vendor.WIDGETS_EMBED_JS: {}}
# Where the widget embedder would look for widget modules it does not bundle (it bundles the
# ipywidgets controls and output widget). Its default is a CDN; point it into the site instead.
WIDGETS_MODULES = "_static/vendor/widget-modules/"

# -- API pages -----------------------------------------------------------------------------------

autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
add_module_names = False
# Keep numpy's array aliases short in signatures instead of expanding them.
autodoc_type_aliases = {"ArrayLike": "ArrayLike", "NDArray": "NDArray", "DTypeLike": "DTypeLike"}
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = True

API_DIR = DOCS / "api"
API_INDEX_HEAD = """\
API reference
=============

The library the notebooks call. Everything below is importable from the package itself
(``import quantlab as ql``; ``ql.symmetric_quantization(...)``); the pages document each function
in the module that defines it, generated from the docstrings.

"""


def public_modules() -> list[str]:
    """Names of the public ``quantlab.*`` modules, found in the checkout without importing them."""
    package = ROOT / "quantlab"
    found = pkgutil.walk_packages([str(package)], prefix="quantlab.")
    return sorted(m.name for m in found if not any(p.startswith("_") for p in m.name.split(".")))


def top_level_names() -> list[str]:
    """``module.name`` of every public name of ``quantlab`` that a module of it defines."""
    try:
        package = importlib.import_module("quantlab")
    except Exception:  # autodoc reports the import error on the module pages
        return []
    names = getattr(package, "__all__", None) or [n for n in dir(package) if not n.startswith("_")]
    out = []
    for name in names:
        module = getattr(getattr(package, name, None), "__module__", None) or ""
        if module.startswith("quantlab."):  # functions and classes; not constants or modules
            out.append(f"{module}.{name}")
    return out


def write_if_changed(path: Path, content: str | bytes) -> None:
    """Write ``content`` unless the file already holds it (keeps incremental builds quiet).

    The write is atomic (a temporary file renamed over the old one), so that another build
    running at the same time never reads a half-written file.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_api_pages() -> None:
    API_DIR.mkdir(exist_ok=True)
    modules = public_modules()
    wanted = {f"{m}.rst" for m in modules} | {"index.rst"}
    for stale in API_DIR.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for module in modules:
        title = f"``{module}``"
        write_if_changed(
            API_DIR / f"{module}.rst",
            f"{title}\n{'=' * len(title)}\n\n.. automodule:: {module}\n",
        )
    index = API_INDEX_HEAD
    names = top_level_names()
    if names:
        index += "Names exported by ``quantlab``\n------------------------------\n\n"
        index += ".. autosummary::\n   :nosignatures:\n\n"
        index += "".join(f"   {name}\n" for name in names) + "\n"
    index += "Modules\n-------\n\n.. toctree::\n   :maxdepth: 1\n\n"
    index += "".join(f"   {m}\n" for m in modules)
    write_if_changed(API_DIR / "index.rst", index)


write_api_pages()

# -- Landing-page figure ------------------------------------------------------------------------

GENERATED = DOCS / "_static" / "generated"  # git-ignored with docs/.gitignore


def draw_staircase(path: Path) -> None:
    """The quantizer's staircase (x against x_hat) at 3 bits, drawn with the library itself.

    The PNG is byte-for-byte reproducible (no time stamp or software version in its metadata).
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import quantlab as ql

    x = np.linspace(-1.0, 1.0, 801)
    q, scale = ql.symmetric_quantization(x, n_bits=3)
    x_hat = ql.symmetric_dequantization(q, scale)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.0), layout="constrained")
    left.plot(x, x, color="0.7", lw=1, label=r"$x$")
    left.plot(x, x_hat, lw=2, label=r"$\hat x$ (3 bits)")
    left.set(xlabel=r"$x$", title="symmetric quantization")
    left.legend(loc="upper left")
    right.plot(x, x - x_hat, lw=1.5, color="C3")
    right.axhline(0, color="0.7", lw=1)
    right.set(xlabel=r"$x$", title=r"error $x - \hat x$")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    write_if_changed(path, png.getvalue())


GENERATED.mkdir(parents=True, exist_ok=True)
draw_staircase(GENERATED / "staircase.png")

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["quantlab.css"]  # notebook output tables: room between columns
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,  # lets a learner download the .ipynb of a page
    "use_fullscreen_button": False,
}


def repository_url() -> str | None:
    """The project's repository: ``[project.urls] Repository`` in pyproject.toml, else the
    clone's ``origin`` remote (as an https URL), else None (then the site shows no button)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = None
    if tomllib is not None:
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        url = meta.get("project", {}).get("urls", {}).get("Repository")
        if url:
            return url
    try:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    url = proc.stdout.strip()
    if proc.returncode != 0 or not url or Path(url).exists():  # a local path is no web page
        return None
    ssh = re.match(r"^git@([^:]+):(.+?)(\.git)?$", url)
    return f"https://{ssh[1]}/{ssh[2]}" if ssh else re.sub(r"\.git$", "", url)


REPOSITORY = repository_url()
if REPOSITORY:
    html_theme_options |= {"repository_url": REPOSITORY, "use_repository_button": True}
html_context = {"default_mode": "light"}  # figures are drawn on white; readers can switch
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_last_updated_fmt = None


def configure_widget_embedder(app, pagename, templatename, context, doctree) -> None:
    """On pages with widget snapshots, make the widget embedder load only from this site.

    Runs before require.js and ``embed-amd.js`` (myst-nb adds them at priority 500):

    - ``var require = {...}`` is require.js's configuration: each module bundled in
      ``embed-amd.js`` (``@jupyter-widgets/base``, ``controls``, ``html-manager``, ...) finds its
      fonts (the icons of buttons and play widgets) next to the URL require.js gives its module
      name, so every ``@jupyter-widgets/*`` name must map into the vendored ``dist/`` folder;
    - ``data-jupyter-widgets-cdn`` (read from any earlier script tag) is where the embedder would
      fetch widget modules it does not bundle; its default is a CDN.

    Both are relative to the page, hence set per page. ``widgets-mathjax3.js`` lets the
    widgets typeset their labels with MathJax 3 (they call the MathJax 2 API).
    """
    if not context or "pathto" not in context:
        return
    if not getattr(app.env, "nb_metadata", {}).get(pagename, {}).get("js_files"):
        return
    dist = str(Path(vendor.WIDGETS_EMBED_JS).parent)
    dist_url = context["pathto"](f"_static/{dist}", 1)
    # The longest matching prefix wins: "@jupyter-widgets/controls" -> dist/controls.js, and
    # "@jupyter-widgets/html-manager/dist/embed-amd" -> dist/embed-amd.js.
    paths = {"@jupyter-widgets": dist_url, "@jupyter-widgets/html-manager/dist": dist_url}
    app.add_js_file(
        None,
        priority=400,
        body=f"var require = {json.dumps({'paths': paths})};",
        **{"data-jupyter-widgets-cdn": context["pathto"](WIDGETS_MODULES, 1)},
    )
    # After Sphinx's MathJax configuration (priority 500), before MathJax runs (deferred).
    app.add_js_file("widgets-mathjax3.js", priority=501)


class NotebookToctree(TocTree):
    """``{notebook-toctree}``: a toctree of the documents matching its glob patterns (in order).

    Unlike ``:glob:`` in a plain toctree it is silently empty when nothing matches (yet), which
    with ``-W`` would otherwise fail the build, e.g. before the first playground notebook exists.
    """

    def run(self):
        # Re-read this page whenever documents are added or removed, as for a globbed toctree.
        self.env.glob_toctrees.add(self.env.docname)
        found = self.env.found_docs
        docs = []
        for pattern in (line.strip() for line in self.content):
            if pattern:
                docs += [d for d in sorted(patfilter(found, pattern)) if d not in docs]
        if not docs:
            return []
        self.content = StringList(docs)
        self.options.pop("glob", None)
        return super().run()


# The notebooks write their exercises in one of three ways: a heading per exercise
# ("### Exercise 1: ..."), or below an "Exercises" heading a paragraph per exercise starting with
# "**1.**", or a numbered list there ("1. ...").
EXERCISE_HEADING = re.compile(r"^#{1,6}\s*(\d+[.:)]?\s*)?exercise\b", re.IGNORECASE | re.MULTILINE)
EXERCISES_SECTION = re.compile(r"^(#{1,6})\s*exercises\s*$", re.IGNORECASE | re.MULTILINE)
EXERCISE_ITEM = re.compile(r"^(\d+[.)]\s|\*\*\d+[.)]?\*\*)", re.MULTILINE)


def count_exercises(path: Path) -> int:
    """The number of exercises in a notebook, from its markdown cells (0 if none or unreadable)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return 0
    text = "\n".join(
        "".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown"
    )
    headings = len(EXERCISE_HEADING.findall(text))
    section = EXERCISES_SECTION.search(text)
    if headings or not section:
        return headings
    body = text[section.end() :]
    # The section ends at the next heading of the same or a higher level.
    end = re.search(rf"^#{{1,{len(section.group(1))}}}\s", body, re.MULTILINE)
    return len(EXERCISE_ITEM.findall(body[: end.start()] if end else body))


class NotebookPlan(SphinxDirective):
    """Base of the directives that list every notebook found, with a plan given per number.

    Each content line ``NN | field | field ...`` gives the plan for notebook number ``NN``; a
    notebook without a line still gets its entry (with dashes), so new notebooks appear without
    editing the docs, and a planned notebook that does not exist yet is left out.
    """

    has_content = True
    fields = 1

    def plan(self) -> dict[str, tuple[str, ...]]:
        plan = {}
        for line in self.content:
            if line.strip():
                number, *cells = (cell.strip() for cell in line.split("|", self.fields))
                if len(cells) != self.fields:
                    raise self.error(f"expected `NN | {self.fields} field(s)`, got {line!r}")
                plan[number] = tuple(cells)
        return plan

    def notebooks(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(docname, planned fields)`` of every notebook page, in file order."""
        self.env.glob_toctrees.add(self.env.docname)  # re-read when notebooks come and go
        plan = self.plan()
        docs = sorted(d for d in self.env.found_docs if d.startswith("notebooks/"))
        for doc in docs:  # and when one changes (its exercises are counted)
            self.env.note_dependency(self.env.doc2path(doc))
        return [(d, plan.get(d.split("/")[-1].split("-")[0], ("—",) * self.fields)) for d in docs]


class CourseTable(NotebookPlan):
    """``{course-table}``: one row per notebook, linked to its page: ``NN | time | builds on``."""

    fields = 2

    def run(self):
        rows = ["| Notebook | Time | Builds on | Exercises |", "| --- | --- | --- | --- |"]
        low = high = 0
        for doc, (time, needs) in self.notebooks():
            exercises = count_exercises(self.env.doc2path(doc)) or "—"
            rows.append(f"| {{doc}}`/{doc}` | {time} | {needs} | {exercises} |")
            minutes = re.match(r"(\d+)(?:\s*[–-]\s*(\d+))?\s*min", time)
            if minutes:
                low += int(minutes[1])
                high += int(minutes[2] or minutes[1])
        if len(rows) == 2:
            return []
        text = "\n".join(rows)
        if high:
            low_h, high_h = (f"{round(m / 30) / 2:g}" for m in (low, high))  # to half hours
            span = low_h if low_h == high_h else f"{low_h}–{high_h}"
            text += f"\n\nIn all, about {span} hours of class time."
        return self.parse_text_to_nodes(text)


class LearningPath(NotebookPlan):
    """``{learning-path}``: a numbered list of the notebooks, each linked: ``NN | what it is``."""

    def run(self):
        items = [
            f"1. {{doc}}`/{doc}`" + (f": {what}" if what != "—" else "")
            for doc, (what,) in self.notebooks()
        ]
        return self.parse_text_to_nodes("\n".join(items)) if items else []


def setup(app) -> None:
    app.add_directive("notebook-toctree", NotebookToctree)
    app.add_directive("course-table", CourseTable)
    app.add_directive("learning-path", LearningPath)
    app.connect("html-page-context", configure_widget_embedder)
