"""In JupyterLab, in headless Chromium, 1,000 px wide with the file browser open: a %%automl cell
shows a dashboard that fills in while the sweep runs, nothing in it cut off, and its Stop button
stops a trial while another cell blocks waiting for the sweep; once it has ended no Stop button
is left. A scripted sweep with a failing trial shows the failure's reason on its row and sorts
by a clicked column; its live chart draws the curves and the bandit policy's threshold, hovering
a curve shows the trial's parameters and clicking it marks the trial's row; its steering bar's
"More" section (clone, limits, narrow) fits too, and a completed trial chosen there and extended
continues when the run resumes (as a new trial warm-started from it); in the dark theme the
best rows stay readable; a DetectionViewer's images keep a notebook's size; the diff gallery of
two trials opens an image large on a click. One server, one page, one notebook for all of it."""

import json
import os
import re
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
# Three trials, two at a time; enough epochs that a trial is still running when the test stops it
# (workers start in a fraction of a second: the first metric comes ~3 s in, on one core).
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
  number_of_epochs: 12
  training_batch_size: 16
  training_crop_size: 28
  validation_resize_size: 32
  validation_crop_size: 28
  early_stopping: false
  random_seed: 0
"""
WAIT = "%automl wait"  # waits handling widget events (run.wait() does too once it calls the same function)
# Scripted trials (nothing trains): two swept values, and one combination fails at once.
SCRIPTED = """\
from automl_nb.spec import load_job
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import ScriptedTrial
from automl_nb.widgets import SweepDashboard

def curve(params):
    if params["optimizer"] == "adam" and params["learning_rate"] == 0.01:
        raise RuntimeError("CUDA out of memory (scripted). Tried to allocate 20.00 MiB")
    return [params["learning_rate"] * 5 * e + (0.05 if params["optimizer"] == "sgd" else 0) for e in range(1, 5)]

scripted = load_job(\"\"\"
task: image_classification
training_data: {path: data/shapes, type: mltable}
limits: {max_trials: 4, max_concurrent_trials: 2}
sweep: {sampling_algorithm: grid, early_termination: {type: bandit, slack_amount: 0.5}}
search_space:
  - model_name: {type: choice, values: [resnet18]}
    optimizer: {type: choice, values: [sgd, adam]}
    learning_rate: {type: choice, values: [0.02, 0.01]}
training_parameters: {number_of_epochs: 4}
\"\"\").submit("runs/scripted", executor=InProcessExecutor(ScriptedTrial(curve, 0.2), max_workers=2))
SweepDashboard(scripted, poll_seconds=0.5, min_interval=0.2).show();
"""
# Six 64 px images with perfect predictions: the viewer must not blow them up.
VIEWER = """\
from automl_nb.data.mltable import load_records
from automl_nb.widgets import DetectionViewer

boxes = load_records("data/boxes", "image_object_detection")
found = [{"boxes": [{"box": {"topX": o.top_x, "topY": o.top_y, "bottomX": o.bottom_x, "bottomY": o.bottom_y},
                     "label": o.label, "score": 0.9} for o in r.objects]} for r in boxes]
DetectionViewer.from_predictions(boxes, found, sorted({o.label for r in boxes for o in r.objects}))
"""
# Two trials of the first sweep compared from their folder alone (predictions.jsonl): the diff gallery.
DIFF = """\
from automl_nb.widgets.diff_gallery import PredictionDiff

PredictionDiff("runs/browser", trials=["0", "1"])
"""
# Extend a Completed trial of the scripted run (chosen in its steering bar), then resume the run:
# the extension warm-starts a new trial from the trial's best model (docs/steering.md). A second an
# epoch: the row shows Running for 3 s, longer than Playwright's 1 s between looks.
RESUME = """\
scripted.resume(check_data=False, executor=InProcessExecutor(ScriptedTrial(curve, 1.0), max_workers=2))
scripted.wait(60, report=None)
"""
WIDTH = 1000
# Every row's cells, bars and buttons, the header's, and the steering bar's controls must lie inside
# the output area.
CLIPPED = """dashboard => {
    const area = dashboard.closest('.jp-OutputArea-output').getBoundingClientRect();
    const parts = dashboard.querySelectorAll('.automl-row button, .automl-row .widget-progress, '
                                             + '.automl-row .automl-cell, .automl-sort, .automl-steering button, '
                                             + '.automl-steering input, .automl-steering select, '
                                             + '.automl-steering textarea');
    const shown = [...parts].map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
    const out = shown.filter(r => r.left < area.left - 1 || r.right > area.right + 1);
    return {shown: shown.length, clipped: out.map(r => [r.left, r.right]), area: [area.left, area.right]};
}"""
# A point on the first curve of a live chart, on screen, and the trial whose curve is on top there.
ON_A_CURVE = """chart => {
    const path = chart.querySelector('path.automl-curve');
    const at = path.getPointAtLength(path.getTotalLength() * 0.6).matrixTransform(path.getScreenCTM());
    const top = document.elementFromPoint(at.x, at.y);
    return {x: at.x, y: at.y, trial: top && top.dataset ? top.dataset.trial || null : null};
}"""
# WCAG contrast of a row's text against what is behind it (the first opaque background up).
CONTRAST = """row => {
    const cell = row.querySelector('.automl-cell');
    const rgb = text => text.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const linear = [r, g, b].map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
    };
    let back = null;
    for (let e = cell; e && !back; e = e.parentElement) {
        const colour = rgb(getComputedStyle(e).backgroundColor);
        if (colour.length < 4 || colour[3] > 0) back = colour;
    }
    const [a, b] = [luminance(rgb(getComputedStyle(cell).color)), luminance(back || [255, 255, 255])];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_notebook(path: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None,
              "id": f"cell{i}"} for i, source in enumerate((SETUP, JOB, WAIT, SCRIPTED, VIEWER, DIFF, RESUME))]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(notebook))


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (random port, a token, a temporary root); yields its notebook URL."""
    from automl_nb.data.synthetic import make_dataset

    root = tmp_path / "root"
    make_dataset("image_classification", 60, 32, root / "data" / "shapes", seed=0)
    make_dataset("image_object_detection", 6, 64, root / "data" / "boxes", seed=0)
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
         "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else []),
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


def run_cell(page, index: int) -> None:
    """Run the notebook's cell ``index`` (click its editor: the active cell may have moved)."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def scroll_to(locator) -> None:
    """Scroll ``locator`` into view. A widget's view can be rendered afresh just as a sweep ends
    (Playwright then finds the node it waited on detached): try again on the new node."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            locator.scroll_into_view_if_needed(timeout=20_000)
            return
        except Error as error:
            if "not attached" not in str(error) or attempt == 2:
                raise


def assert_nothing_cut_off(dashboard) -> int:
    """Every cell, bar and button of the dashboard lies inside its output area; returns how many."""
    scroll_to(dashboard)
    geometry = dashboard.evaluate(CLIPPED)
    assert geometry["shown"] and not geometry["clipped"], f"cut off at {WIDTH} px: {geometry}"
    return geometry["shown"]


def metrics_in_order(rows) -> list:
    """The primary metric of each row as listed (None for a trial without one)."""
    texts = rows.locator(".automl-col-metric").all_inner_texts()
    return [float(text) if re.fullmatch(r"\d\.\d{4}", text.strip()) else None for text in texts]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (Debian's chromium package)")
def test_dashboard_in_jupyterlab_narrow_dark_sortable_with_failures_and_viewer(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    light, dark = ARTIFACTS / "jupyterlab_dashboard.png", ARTIFACTS / "jupyterlab_dashboard_dark.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        screenshot = light
        try:
            page.goto(url)
            # The kernel must be idle before a cell runs (JupyterLab queues nothing while it starts).
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
            expect(page.locator(".jp-FileBrowser")).to_be_visible()  # the narrow case: ~650 px for the notebook
            for index in range(3):  # the set-up, the %%automl cell and the waiting cell
                run_cell(page, index)
            dashboard = page.locator(".automl-dashboard").first
            summary = dashboard.locator(".automl-summary")
            # (Before the first report it says "starting workers": too brief to catch here now that
            # workers start in a fraction of a second; tests/widgets/test_sweep_dashboard.py checks it.)
            rows = dashboard.locator(".automl-row")
            # Rows appear and fill in while trials run, pushed by the sweep's thread.
            expect(rows.first).to_be_visible(timeout=120_000)
            expect(summary).to_contain_text("Running", timeout=60_000)
            # Grid order: trials 0 and 1 start first. Wait for trial 0's first metric, then stop it.
            stopped = "0"
            row = dashboard.locator(f".automl-trial-{stopped}")
            expect(row).to_contain_text("Running", timeout=120_000)
            # A metric value arrived (its own column: the rate 0.02 in another is no metric).
            expect(row.locator(".automl-col-metric")).to_have_text(re.compile(r"^\d\.\d{4}$"), timeout=120_000)
            expect(dashboard.locator(".automl-caption")).to_have_text("same in every trial: model resnet18")
            expect(summary).to_contain_text("left")  # the job's time left, about
            assert_nothing_cut_off(dashboard)  # Stop buttons and epoch bars included, 1,000 px wide
            # The kernel is busy waiting in the third cell; the click must still reach the sweep.
            row.get_by_role("button", name="Stop").click()
            expect(row).to_contain_text("Canceled (by user)", timeout=120_000)
            expect(summary).to_contain_text("Completed; 3/3 trials ended", timeout=240_000)
            expect(rows).to_have_count(3)
            waited = page.locator(".jp-OutputArea-output", has_text="runs/browser: Completed")
            expect(waited).to_be_visible(timeout=60_000)
            expect(dashboard.get_by_role("button", name=re.compile("Stop"))).to_have_count(0)  # ended: nothing to stop
            # The live chart: a line per trial (all three evaluated).
            expect(dashboard.locator(".automl-live-chart path.automl-curve")).to_have_count(3)
            scroll_to(dashboard)
            page.screenshot(path=str(light), full_page=True)

            # Scripted trials, one failing: its reason on its row; a click on a column sorts.
            run_cell(page, 3)
            run_cell(page, 4)
            scripted = page.locator(".automl-dashboard").nth(1)
            expect(scripted.locator(".automl-summary")).to_contain_text("Completed; 4/4 trials ended", timeout=120_000)
            failed = scripted.locator(".automl-row", has_text="Failed")
            expect(failed).to_have_count(1)
            expect(failed).to_contain_text("Failed: RuntimeError: CUDA out of memory (scripted)")
            scripted_rows = scripted.locator(".automl-row")
            expect(scripted_rows).to_have_count(4)
            scripted.locator(".automl-sort-metric").click()
            expect(scripted.locator(".automl-sort-metric")).to_contain_text("▼")
            expect(scripted_rows.first).to_have_class(re.compile("automl-best"))  # best first...
            metrics = metrics_in_order(scripted_rows)
            assert metrics[-1] is None and metrics[:-1] == sorted(metrics[:-1], reverse=True), metrics  # ...failed last
            scripted.locator(".automl-sort-optimizer").click()
            expect(scripted.locator(".automl-sort-optimizer")).to_contain_text("▲")
            optimizers = scripted_rows.locator(".automl-col-optimizer").all_inner_texts()
            assert optimizers == sorted(optimizers) and len(set(optimizers)) == 2, optimizers

            # Its live chart: the three evaluated trials' curves and the bandit's threshold line;
            # hovering a curve shows the trial's parameters, clicking it marks the trial's row.
            chart = scripted.locator(".automl-live-chart")
            scroll_to(chart)
            expect(chart.locator("path.automl-curve")).to_have_count(3)
            expect(chart.locator("path.automl-threshold")).to_have_count(1)
            expect(chart.locator("path.automl-threshold")).to_have_attribute("data-label", "bandit: best-0.5")
            point = chart.evaluate(ON_A_CURVE)
            assert point["trial"] in ("0", "1", "2", "3"), point
            page.mouse.move(point["x"], point["y"])
            expect(chart.locator(".automl-chart-tip")).to_contain_text("learning_rate=")
            page.mouse.click(point["x"], point["y"])
            expect(scripted.locator(f".automl-trial-{point['trial']}")).to_have_class(re.compile("automl-selected"))
            expect(scripted.locator(".automl-selected")).to_have_count(1)

            # The steering bar: its "More" tabs fit the narrow notebook; a Completed trial extended
            # by 3 epochs continues once the run resumes, as a new trial (4) warm-started from it.
            steering = scripted.locator(".automl-steering")
            scroll_to(steering)
            steering.locator(".jupyter-widget-Collapse-header", has_text="More").click()
            for tab in ("Clone", "Limits", "Narrow"):
                steering.locator(".lm-TabBar-tab", has_text=tab).click()
                expect(steering.locator(f".automl-steering-{tab.lower()}")).to_be_visible()
                assert_nothing_cut_off(scripted)
            steering.locator(".jupyter-widget-Collapse-header", has_text="More").click()
            chooser = steering.locator("select").first
            extended = chooser.locator("option").first.inner_text().strip()
            chooser.select_option(extended)
            epochs = steering.locator(".widget-inline-hbox", has_text="+ epochs").locator("input")
            epochs.fill("3")
            epochs.press("Tab")  # the box sends its value on a change
            steering.get_by_role("button", name="Extend").click()
            expect(steering.locator(".automl-steering-message")).to_contain_text(
                f"extend trial {extended} by 3 epochs: request")
            run_cell(page, 6)
            extension = scripted.locator(".automl-trial-4")
            expect(extension).to_contain_text("Running", timeout=60_000)
            expect(extension).to_contain_text("Completed", timeout=60_000)
            expect(extension).to_contain_text("3/3")  # its epochs: the 3 asked for, all run
            expect(scripted_rows).to_have_count(5)
            expect(scripted.locator(f".automl-trial-{extended}")).to_contain_text("Completed")  # the source stays

            # The detection viewer: 64 px images stay at a notebook's size (thumbnails <= 256 px, chosen <= 512).
            viewer = page.locator(".automl-detection-viewer")
            expect(viewer).to_be_visible(timeout=120_000)
            scroll_to(viewer)
            images = viewer.locator("img")
            expect(images.first).to_have_attribute("src", re.compile("^blob:|^data:"), timeout=60_000)
            sizes = [box for box in (image.bounding_box() for image in images.all()) if box and box["width"] > 0]
            assert sizes and all(box["width"] <= 512 and box["height"] <= 512 for box in sizes), sizes
            assert sum(box["width"] <= 256 for box in sizes) >= len(sizes) - 1, sizes  # all but the chosen one

            # The diff gallery of two trials, from the run folder: a name under a thumbnail shows it large.
            run_cell(page, 5)
            gallery = page.locator(".automl-prediction-diff")
            expect(gallery).to_be_visible(timeout=120_000)
            scroll_to(gallery)
            tiles = gallery.locator(".automl-diff-tile")
            expect(tiles.first.locator("img")).to_have_attribute("src", re.compile("^blob:|^data:"), timeout=60_000)
            shown = [tile for tile in tiles.all() if tile.is_visible()]
            assert len(shown) >= 2, "the gallery shows the validation images"
            name = shown[1].locator("button").inner_text().strip()
            shown[1].locator("button").click()
            expect(gallery.locator(".automl-diff-title")).to_contain_text(name, timeout=30_000)

            # The dark theme: the best rows stay readable, and still nothing is cut off.
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                          "{theme: 'JupyterLab Dark'})")
            expect(page.locator("body[data-jp-theme-light='false']")).to_be_attached(timeout=30_000)
            page.wait_for_timeout(500)  # the theme's style sheet applies
            screenshot = dark
            for panel in (dashboard, scripted):
                best = panel.locator(".automl-best")
                expect(best).to_have_count(1)
                contrast = best.evaluate(CONTRAST)
                assert contrast >= 4.5, f"best row's text contrast {contrast:.2f} in the dark theme"
                assert_nothing_cut_off(panel)
            scroll_to(scripted)
        finally:
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\nscreenshots: {light}, {dark}")
            browser.close()
    trials = json.loads((root / "runs" / "browser" / "trials" / stopped / "trial.json").read_text())
    assert trials["status"] == "Canceled" and "stopped by the user" in " ".join(trials["notes"])
    assert trials["epochs"] < 8
    extension = json.loads((root / "runs" / "scripted" / "trials" / "4" / "trial.json").read_text())
    assert extension["origin"]["kind"] == "extend" and extension["origin"]["source"] == extended
    assert extension["status"] == "Completed" and extension["epochs"] == 3
