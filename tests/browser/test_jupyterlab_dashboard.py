"""In JupyterLab, in headless Chromium: a %%automl cell shows a dashboard that fills in while the
sweep runs, and its Stop button stops a trial while another cell blocks waiting for the sweep."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

SETUP = """\
%load_ext automl_nb
data = "data/shapes"
"""
# Three trials, two at a time; enough epochs that a trial is still running when the test stops it.
JOB = """\
%%automl -o run --name browser
task: image_classification
training_data: {path: $data, type: mltable}
limits: {max_trials: 3, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    learning_rate: {type: choice, values: [0.02, 0.01, 0.005]}
training_parameters:
  use_pretrained_model: false
  number_of_epochs: 8
  training_batch_size: 16
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  early_stopping: false
  random_seed: 0
"""
WAIT = "%automl wait"  # waits handling widget events (run.wait() does too once it calls the same function)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_notebook(path: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None,
              "id": f"cell{i}"} for i, source in enumerate((SETUP, JOB, WAIT))]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(notebook))


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (random port, a token, a temporary root); yields its notebook URL."""
    from automl_nb.data.synthetic import make_dataset

    root = tmp_path / "root"
    make_dataset("image_classification", 60, 32, root / "data" / "shapes", seed=0)
    write_notebook(root / "dashboard.ipynb")
    # No "get notified about Jupyter news?" toast over the screenshot.
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
         "--LabApp.extension_manager=readonly"] + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "jupyterlab.log", "wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "jupyterlab.log").read_text()
            assert time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(0.5)
        yield f"{base}/lab/tree/dashboard.ipynb?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (Debian's chromium package)")
def test_dashboard_renders_updates_and_stops_a_trial(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab_dashboard.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            # The kernel must be idle before a cell runs (JupyterLab queues nothing while it starts).
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=120_000)
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.keyboard.press("Escape")
            for _ in range(3):  # run the set-up, the %%automl cell and the waiting cell
                page.keyboard.press("Shift+Enter")
            dashboard = page.locator(".automl-dashboard")
            expect(dashboard).to_be_visible(timeout=120_000)
            rows = dashboard.locator(".automl-row")
            # Rows appear and fill in while trials run, pushed by the sweep's thread.
            expect(rows.first).to_be_visible(timeout=120_000)
            summary = dashboard.locator(".automl-summary")
            expect(summary).to_contain_text("Running", timeout=60_000)
            # Grid order: trials 0 and 1 start first. Wait for trial 0's first metric, then stop it.
            stopped = "0"
            row = dashboard.locator(f".automl-trial-{stopped}")
            expect(row).to_contain_text("Running", timeout=120_000)
            expect(row).to_contain_text("0.", timeout=120_000)  # a metric value arrived
            # The kernel is busy waiting in the third cell; the click must still reach the sweep.
            row.get_by_role("button", name="Stop").click()
            expect(row).to_contain_text("Canceled (by user)", timeout=120_000)
            expect(summary).to_contain_text("Completed; 3/3 trials ended", timeout=240_000)
            expect(rows).to_have_count(3)
            expect(page.locator(".jp-OutputArea-output", has_text="runs/browser: Completed")).to_be_visible(timeout=60_000)
            curves = dashboard.locator("img").first
            assert curves.get_attribute("src"), "the learning curves image is empty"
            dashboard.scroll_into_view_if_needed()
        finally:
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\nscreenshot: {screenshot}")
            browser.close()
    trials = json.loads((root / "runs" / "browser" / "trials" / stopped / "trial.json").read_text())
    assert trials["status"] == "Canceled" and "stopped by the user" in " ".join(trials["notes"])
    assert trials["epochs"] < 8
