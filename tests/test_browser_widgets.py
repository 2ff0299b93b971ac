"""The scanner widget as a student uses it: JupyterLab in headless Chromium, a slider moved.

Starts JupyterLab on localhost from this environment (``ECHOCARE_WIDGETS=live``, as ``make lab``
does) over a temporary copy of notebook 00's widget cell, opens it in Debian's Chromium driven
by Playwright (``executable_path``: no browser download), runs the cell, moves the gain slider
with the keyboard, and checks that the image changed (pixels differ) and that no error output
appeared. Screenshots go to ``build/browser/``. Skipped, saying why, when Chromium or Playwright
is missing; ``.ci/run`` installs Chromium so CI runs it.
"""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from echocare_lib.paths import project_root

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = project_root() / "build" / "browser"
# what the environment notes say Chromium needs on a machine with no network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Chromium not found (/usr/bin/chromium): install Debian's chromium "
                              "and chromium-driver (.ci/run does) to run the browser test"),
]


def _widget_cell(notebook: str) -> str:
    nb = nbformat.read(project_root() / "notebooks" / notebook, as_version=4)
    cells = [c.source for c in nb.cells if "widget" in c.metadata.get("tags", [])]
    assert cells, f"{notebook} has no cell tagged 'widget'"
    return cells[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_widget_cell("00_overview.ipynb"))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "scanner.ipynb")
    port, token = _free_port(), "echocare-browser-test"
    env = {**os.environ, "ECHOCARE_WIDGETS": "live", "ECHOCARE_PROFILE": "smoke",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(root / ".rt")}
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.extension_manager=readonly",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                json.load(r)
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail(f"JupyterLab did not start in 120 s: {(root / 'lab.log').read_text()[-2000:]}")
    yield url, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


IDLE_JS = ("/\\|\\s*Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText"
           " || '')")


def _idle(page) -> bool:
    return bool(page.evaluate(f"() => {IDLE_JS}"))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def test_scanner_slider_changes_the_image_in_jupyterlab(lab):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    url, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/lab/tree/scanner.ipynb?token={token}", timeout=120_000)
        cell = page.locator(".jp-Notebook .jp-Cell").first
        cell.wait_for(timeout=120_000)
        # the kernel must be up before the cell runs (the status bar then reads "... | Idle")
        page.wait_for_function(f"() => {IDLE_JS}", timeout=120_000)
        no = page.get_by_role("button", name="No")  # "notified about Jupyter news?"
        if no.count():
            no.first.click()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        image = page.locator(".jp-OutputArea-output img").first
        try:
            image.wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path=str(SHOTS / "scanner_failure.png"), full_page=True)
            raise
        page.screenshot(path=str(SHOTS / "scanner_before.png"), full_page=True)
        before = _pixels(image.screenshot())
        src_before = image.get_attribute("src")

        gain = page.locator(".widget-slider", has=page.locator("label", has_text="gain"))
        handle = gain.locator(".noUi-handle")
        handle.focus()
        for _ in range(8):  # +8 dB: the readout and the image must follow
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(old) => { const i = document.querySelector('.jp-OutputArea-output img');"
            " return i && i.getAttribute('src') !== old; }", arg=src_before, timeout=120_000)
        # each key press is one update: wait until the kernel is idle and the image settles
        image = page.locator(".jp-OutputArea-output img").first
        for _ in range(120):
            src = image.get_attribute("src")
            page.wait_for_timeout(1000)
            if _idle(page) and image.get_attribute("src") == src:
                break
        after = _pixels(image.screenshot())
        page.screenshot(path=str(SHOTS / "scanner_after_gain.png"), full_page=True)
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        readout = gain.locator(".widget-readout").inner_text()
        browser.close()
    assert not [e for e in errors if "Traceback" in e or "Error" in e], errors
    assert float(readout) == pytest.approx(8.0), readout
    assert before.shape == after.shape
    changed = np.mean(np.abs(before - after) > 8)
    assert changed > 0.05, f"only {changed:.1%} of the pixels changed after moving the slider"
