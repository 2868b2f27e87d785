"""The playground as a learner uses it: JupyterLab and Voilà driven in a real browser.

Each test starts its own server on 127.0.0.1 (a free port, no token, no network: news, update
checks and the extension manager's PyPI listing are off, the announcements plugin is disabled)
on a temporary copy of ``notebooks/06-playground.ipynb`` with temporary Jupyter config/data/
runtime folders, opens it in headless Debian Chromium (``_browser.py``), and moves the bits slider
of the first explorer with the keyboard. The readout must then show the MSE and SQNR of the new
bit width, computed here independently from the formulas, and the plot image must change.
Every request the page makes must stay on the local server. Screenshots go to
``test-artifacts/``; every server (and its kernels) is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from _browser import ARTIFACTS, chromium_page, free_port, require_browser, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND = ROOT / "notebooks" / "06-playground.ipynb"
START_TIMEOUT = 90.0  # seconds for a server to answer
UI_TIMEOUT = 60_000  # milliseconds for the page to reach a state (kernel start, run all)

# Voilà 0.5's "lab" template links two Font Awesome style sheets from this CDN. Its JavaScript
# bundle already carries Font Awesome, so nothing is lost offline; the page guard aborts these
# requests like any other (nothing reaches the network) but tolerates them, and only them.
VOILA_TEMPLATE_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@"

# JavaScript: a cheap fingerprint (FNV-1a) of the bytes behind an <img>, e.g. a blob: URL.
IMAGE_HASH = """async (img) => {
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let h = 0x811c9dc5;
    for (const b of bytes) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
    return {hash: h, size: bytes.length, width: img.naturalWidth, height: img.naturalHeight};
}"""


def expected_readout(n_bits: int) -> tuple[str, str]:
    """MSE and SQNR text of the first explorer (``signed_max``, round) at ``n_bits``.

    Computed from SPEC item 4 directly: ``d = m / -2**(n-1)`` with ``m`` the element of largest
    magnitude with its sign, ``q = clip(round(x/d), -2**(n-1), 2**(n-1) - 1)``, ``x_hat = d*q``.
    The data are the playground's: ``default_rng(2024).laplace(scale=0.02, size=4096)``.
    """
    x = np.random.default_rng(2024).laplace(scale=0.02, size=4096)
    m = x[np.argmax(np.abs(x))]
    d = m / -(2 ** (n_bits - 1))
    q = np.clip(np.round(x / d), -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    err = x - d * q
    mse = np.mean(err**2)
    sqnr = 10 * np.log10(np.sum(x**2) / np.sum(err**2))
    return f"MSE {mse:.4g}", f"SQNR {sqnr:.2f} dB"


# -- servers --------------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A copy of the playground and private Jupyter folders (the repo is never touched)."""
    require_browser()
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy2(PLAYGROUND, notebooks / PLAYGROUND.name)
    jupyter = tmp_path / "jupyter"
    labconfig = jupyter / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    # No "Would you like to get notified about official Jupyter news?" and no news fetching.
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    return {"notebooks": notebooks, "notebook": notebooks / PLAYGROUND.name, "jupyter": jupyter}


def _env(jupyter: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "lab-workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend
    return env


@contextmanager
def serve(cmd: list[str], url: str, jupyter: Path, cwd: Path, name: str) -> Iterator[str]:
    """Run a server in its own process group until ``url`` answers; stop the group afterwards."""
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"{name}-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=_env(jupyter), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_http(url, START_TIMEOUT, proc)
            yield url
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server (it shuts its kernels down), then SIGKILL what is left of its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # kernels left behind by a killed server
    except ProcessLookupError:
        pass


def _lab_command(port: int, root: Path) -> list[str]:
    return [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--PasswordIdentityProvider.hashed_password=",
        "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}", "--allow-root",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]  # fmt: skip


def _voila_command(port: int, notebook: Path) -> list[str]:
    return [
        sys.executable, "-m", "voila", str(notebook),
        f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
    ]  # fmt: skip


def wait_for_idle_kernel(page, base: str, notebook: str, timeout: float = 90.0) -> dict:
    """Poll ``/api/sessions`` until the notebook's kernel is connected and idle.

    Waits with ``page.wait_for_timeout`` (not ``time.sleep``) so that Playwright keeps serving
    the page's routed requests meanwhile.
    """
    deadline = time.monotonic() + timeout
    sessions: list = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base + "api/sessions", timeout=5) as r:
            sessions = json.load(r)
        for s in sessions:
            kernel = s.get("kernel") or {}
            if (
                s.get("path", "").endswith(notebook)
                and kernel.get("execution_state") == "idle"
                and kernel.get("connections", 0) >= 1
            ):
                return s
        page.wait_for_timeout(500)
    raise TimeoutError(f"no idle, connected kernel for {notebook} in {timeout} s: {sessions}")


# -- the page -------------------------------------------------------------------------------------


@contextmanager
def local_page(base: str, name: str) -> Iterator[tuple[object, list[str], list[str]]]:
    """A Chromium page that aborts and records every request leaving ``base``'s host.

    The page's last state is saved as ``test-artifacts/<name>-last.png`` (also on failure).
    """
    host = urlsplit(base).netloc
    outside: list[str] = []
    errors: list[str] = []
    with chromium_page() as page:

        def guard(route) -> None:
            url = route.request.url
            parts = urlsplit(url)
            if parts.scheme in {"http", "https", "ws", "wss"} and parts.netloc != host:
                outside.append(url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", guard)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(UI_TIMEOUT)
        try:
            yield page, outside, errors
        finally:
            page.screenshot(path=str(ARTIFACTS / f"{name}-last.png"))


def accept_dialog(page, wait_ms: int = 2000) -> None:
    """Accept a JupyterLab dialog (e.g. "Select Kernel") if one shows up within ``wait_ms``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.locator(".jp-Dialog .jp-mod-accept").first
    try:
        button.wait_for(state="visible", timeout=wait_ms)
    except PlaywrightTimeout:
        return
    button.click()


def move_slider_and_check(page, explorer, name: str) -> None:
    """Press ArrowRight on the bits slider; the readout must move to 5 bits, the image change."""
    readout = explorer.locator(".quantlab-readout")
    image = explorer.locator("img.quantlab-plot")
    expect_mse4, expect_sqnr4 = expected_readout(4)
    before = readout.text_content()
    assert expect_mse4 in before and expect_sqnr4 in before, before
    image_before = image.evaluate(IMAGE_HASH)
    assert (image_before["width"], image_before["height"]) == (720, 290), image_before
    explorer.screenshot(path=str(ARTIFACTS / f"{name}-before.png"))

    handle = explorer.locator(".noUi-handle").first  # the first control: bits
    handle.focus()
    page.keyboard.press("ArrowRight")

    expect_mse5, expect_sqnr5 = expected_readout(5)
    page.wait_for_function(
        "([el, text]) => el.textContent.includes(text)",
        arg=[readout.element_handle(), expect_mse5],
        timeout=UI_TIMEOUT,
    )
    after = readout.text_content()
    assert expect_sqnr5 in after, after
    assert explorer.locator(".widget-readout").first.text_content().strip() == "5"
    deadline = time.monotonic() + UI_TIMEOUT / 1000
    while (image_after := image.evaluate(IMAGE_HASH))["hash"] == image_before["hash"]:
        assert time.monotonic() < deadline, "the plot image did not change"
        page.wait_for_timeout(200)
    assert image_after["size"] > 1000
    explorer.screenshot(path=str(ARTIFACTS / f"{name}-after.png"))
    page.screenshot(path=str(ARTIFACTS / f"{name}-page.png"))


# -- tests ----------------------------------------------------------------------------------------


def test_playground_in_jupyterlab(sandbox: dict[str, Path]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = _lab_command(port, sandbox["notebooks"])
    with serve(cmd, base + "api/status", sandbox["jupyter"], sandbox["notebooks"], "lab"):
        with local_page(base, "lab") as (page, outside, errors):
            page.goto(base + "lab/tree/" + PLAYGROUND.name)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
            accept_dialog(page)
            wait_for_idle_kernel(page, base, PLAYGROUND.name)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            # Views of the stored widget state (if any) are marked; Run All renders new ones.
            page.evaluate(
                "() => document.querySelectorAll('.quantlab-explorer')"
                ".forEach(e => e.dataset.stale = '1')"
            )
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            accept_dialog(page)
            explorer = page.locator(".quantlab-explorer:not([data-stale])").first
            explorer.locator(".quantlab-readout", has_text="MSE").wait_for()
            explorer.locator("img.quantlab-plot").wait_for()
            # Run All has finished when the kernel is idle again and no cell is queued.
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
                ".some(p => p.textContent.includes('*'))"
            )
            explorer.scroll_into_view_if_needed()
            move_slider_and_check(page, explorer, "lab")
            assert not outside, f"requests left the local server: {outside}"
            assert not errors, f"page errors: {errors}"
    assert not _listening(port), "JupyterLab is still running"


def test_playground_in_voila(sandbox: dict[str, Path]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = _voila_command(port, sandbox["notebook"])
    with serve(cmd, base, sandbox["jupyter"], sandbox["notebooks"], "voila"):
        with local_page(base, "voila") as (page, outside, errors):
            page.goto(base)
            explorer = page.locator(".quantlab-explorer").first
            explorer.locator(".quantlab-readout", has_text="MSE").wait_for()
            explorer.locator("img.quantlab-plot").wait_for()
            code = page.locator(".jp-CodeCell .jp-InputArea-editor, .jp-CodeMirrorEditor")
            assert code.count() == 0, "Voilà shows the code"
            assert "QuantExplorer(layer" not in page.locator("body").text_content()
            assert page.locator(".quantlab-explorer").count() == 4
            # The app shows what an app user needs: no JupyterLab instructions, no section 5.
            assert not page.get_by_text("Run All Cells").first.is_visible()
            assert not page.get_by_text("The same plots, without widgets").first.is_visible()
            assert page.get_by_text("The search and its landscape").first.is_visible()
            move_slider_and_check(page, explorer, "voila")
            unexpected = [u for u in outside if not u.startswith(VOILA_TEMPLATE_CDN)]
            assert not unexpected, f"requests left the local server: {unexpected}"
            assert not errors, f"page errors: {errors}"
    assert not _listening(port), "Voilà is still running"


def _listening(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
