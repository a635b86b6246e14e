"""Every tutorial notebook runs top to bottom in a real kernel (nbclient), and shows what it promises."""

import base64
import io
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from automl_nb.data.mltable import load_records
from automl_nb.sweep.estimate import NO_ESTIMATE_VARIABLE

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def execute(name: str, folder: Path) -> nbformat.NotebookNode:
    """Run a notebook with ``folder`` as its working directory; a failing cell fails the test."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{name} is saved with outputs; save it cleared"
    # The notebooks' %%automl cells skip the sweep estimate here: timing their models costs seconds each.
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute(env={**os.environ, NO_ESTIMATE_VARIABLE: "1"})
    return notebook


def cell(notebook, start: str):
    """The first code cell whose source starts with ``start``."""
    for item in notebook.cells:
        if item.cell_type == "code" and item.source.startswith(start):
            return item
    raise AssertionError(f"no cell starts with {start!r}")


def data(item, mime: str) -> list:
    """Every output of a cell with that mime type."""
    return [output["data"][mime] for output in item.outputs if mime in output.get("data", {})]


def text(item) -> str:
    """The cell's printed text and plain-text results."""
    parts = [output.get("text", "") for output in item.outputs if output.output_type == "stream"]
    return "".join(parts) + "".join(data(item, "text/plain"))


def png_size(encoded: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(encoded))).size


def inline_pngs(html: str) -> list[tuple[int, int]]:
    return [png_size(found) for found in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def dashboard_html(item) -> str:
    """The %%automl cell's dashboard: a live widget whose static form was refreshed at the end."""
    assert data(item, WIDGET), "no dashboard widget"
    (html,) = [h for h in data(item, "text/html") if "automl-dashboard-static" in h]
    return html


def leaderboard_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr.*?</tr>", body, re.S)]


def test_quickstart(tmp_path):
    notebook = execute("01_quickstart.ipynb", tmp_path)
    explorer = data(cell(notebook, "from automl_nb.widgets import DatasetExplorer"), "text/html")[0]
    assert "60 images, 3 classes" in explorer and len(inline_pngs(explorer)) == 2
    assert text(cell(notebook, "run.wait()")) == "'Completed'"
    html = dashboard_html(cell(notebook, "%%automl"))
    assert "Completed; 4/4 trials ended" in html  # refreshed after the sweep, not frozen at submit
    assert len(re.findall(r'class="automl-row"', html)) == 4 and len(inline_pngs(html)) == 1
    rows = leaderboard_rows(data(cell(notebook, "%automl leaderboard"), "text/html")[0])
    assert len(rows) == 4
    accuracies = [float(row[3]) for row in rows]  # trial, model, params, accuracy (the index is a th)
    assert accuracies == sorted(accuracies, reverse=True)
    assert accuracies[0] > 0.6  # three classes: chance is 0.33; the best trial learned
    assert f"accuracy {accuracies[0]:.4f}" in text(cell(notebook, "%automl best"))
    (picture,) = data(cell(notebook, "%automl show"), "image/png")
    assert png_size(picture)[0] > 4 * 200  # four enlarged images side by side
    assert "'probs'" in text(cell(notebook, "from automl_nb.infer import Predictor"))
    assert (tmp_path / "runs" / "quickstart" / "leaderboard.csv").exists()
    # From the trials' predictions.jsonl: two trials compared, and the best one's errors count
    # exactly what its validation measured (12 of the 60 images are held out).
    diff = data(cell(notebook, "%automl diff 0 1"), "text/html")[0]
    assert re.search(r"Trial 0 \(A\) against trial 1 \(B\), image_classification: 12 validation images", diff)
    errors = data(cell(notebook, "%automl errors"), "text/html")[0]
    right = int(re.search(r"12 validation images, (\d+) right", errors).group(1))
    assert right / 12 == pytest.approx(accuracies[0], abs=1e-4)
    confusion = errors.split("<table>", 1)[1].split("</table>", 1)[0]
    assert sum(int(n) for n in re.findall(r"<td>(\d+)</td>", confusion)) == 12
    assert re.search(r"Label audit</b> of trials \d+, \d+ \(confidence 0.9\): \d+ finding",
                     data(cell(notebook, "from automl_nb.widgets import LabelAudit"), "text/html")[0])


def test_multilabel(tmp_path):
    notebook = execute("02_multilabel.ipynb", tmp_path)
    assert "primary_metric: iou" in text(cell(notebook, "from automl_nb import Input"))
    assert "Completed; 2/2 trials ended" in dashboard_html(cell(notebook, "from automl_nb.widgets import SweepDashboard"))
    assert text(cell(notebook, "run.wait()")) == "'Completed'"
    rows = leaderboard_rows(data(cell(notebook, "table = run.leaderboard()"), "text/html")[0])
    assert len(rows) == 2 and all(row[3] == "Completed" and row[4] == "3" for row in rows)  # params, iou, status, epochs
    assert all(0 <= float(row[2]) <= 1 for row in rows)
    shown = cell(notebook, "%load_ext automl_nb\n%automl show")
    assert len(data(shown, "image/png")) == 1 and text(shown).count(".png:") == 2


def detection_checks(notebook, task: str, models: str) -> None:
    assert text(cell(notebook, "run.wait()")) == "'Completed'"
    html = dashboard_html(cell(notebook, "%%automl"))
    assert "Completed; 1/1 trials ended" in html and models in html and len(inline_pngs(html)) == 1
    viewer = data(cell(notebook, "from automl_nb.widgets import DetectionViewer"), "text/html")[0]
    assert re.search(r"VOC AP@0\.5 of all \d images: (\d\.\d{3}|–)", viewer)
    chosen, *thumbnails = inline_pngs(viewer)
    # 64 px images: 6x when chosen, 3x as thumbnails (not stretched to the page's width)
    assert chosen == (384, 384) and thumbnails and all(size == (192, 192) for size in thumbnails)


def test_object_detection(tmp_path):
    notebook = execute("03_object_detection.ipynb", tmp_path)
    detection_checks(notebook, "image_object_detection", "fasterrcnn_resnet18_fpn")
    best = re.search(r"mean_average_precision (\d\.\d{4})", text(cell(notebook, "%automl best"))).group(1)
    viewer = data(cell(notebook, "from automl_nb.widgets import DetectionViewer"), "text/html")[0]
    shown = re.search(r"of all \d images: (\d\.\d{3})", viewer).group(1)
    assert abs(float(shown) - float(best)) <= 0.0006  # the viewer's mAP is the leaderboard's
    shown = cell(notebook, "%automl show")
    assert len(data(shown, "image/png")) == 1 and "object(s)" in text(shown)
    assert "'topX'" in text(cell(notebook, "from automl_nb.infer import Predictor"))
    # The error analysis of the kept predictions: every object on file is found or missed, in one size.
    errors = data(cell(notebook, "%automl errors"), "text/html")[0]
    found, missed = map(int, re.search(r"validation images; at score ≥ 0.50: (\d+) true positives, \d+ false "
                                       r"positives, (\d+) missed", errors).groups())
    sizes = errors.split('class="automl-ap-by-size"', 1)[1].split("</table>", 1)[0]
    objects = [int(n) for n in re.findall(r"</td><td>(\d+)</td><td>", sizes)]
    assert len(objects) == 3 and sum(objects) == found + missed > 0


def test_instance_segmentation(tmp_path):
    notebook = execute("04_instance_segmentation.ipynb", tmp_path)
    detection_checks(notebook, "image_instance_segmentation", "maskrcnn_resnet18_fpn")
    assert "mask AP" in data(cell(notebook, "from automl_nb.widgets import DetectionViewer"), "text/html")[0]
    assert "Completed; 1/1 trials ended" in text(cell(notebook, "%automl status"))
    assert "'polygon points'" in text(cell(notebook, "from automl_nb.infer import Predictor"))


def test_tuning_with_widgets(tmp_path):
    notebook = execute("05_tuning_with_widgets.ipynb", tmp_path)
    mistakes = text(cell(notebook, 'builder.update({"learning_rate": 1.5'))
    assert "✗ learning_rate: 1.5 is out of range" in mistakes and "✗ max_trials: 0 is out of range" in mistakes
    assert "# learning_rate: 1.5 is out of range" in mistakes and "<span" not in mistakes  # plain text, no HTML
    assert "✓ the job is valid" in text(cell(notebook, "builder.update({\n"))
    yaml_text = text(cell(notebook, "print(builder.to_yaml())"))
    assert "model_name: {type: choice, values: [resnet18, mobilenetv2]}" in yaml_text
    assert re.search(r"learning_rate: \{type: loguniform, min_value: -6(\.0)?, max_value: -3\.5\}", yaml_text)
    assert text(cell(notebook, "run = builder.submit()")) == "'Completed'"
    reattached = dashboard_html(cell(notebook, "from automl_nb.widgets import SweepDashboard"))
    assert "runs/widgets" in reattached and len(re.findall(r'class="automl-row"', reattached)) == 2
    assert len(inline_pngs(reattached)) == 1


def test_dask_cluster(tmp_path):
    notebook = execute("06_dask_cluster.ipynb", tmp_path)
    address = text(cell(notebook, "from distributed import Client")).strip("'")
    assert address.startswith("tcp://127.0.0.1:")
    assert f"cluster: {address}" in data(cell(notebook, "%%automl -o run --name dask"), "text/plain")[0]
    workers = text(cell(notebook, "%automl cluster"))
    assert f"scheduler: {address}" in workers and "workers: 2" in workers
    assert text(cell(notebook, "run.wait()")) == "'Completed'"
    assert len(leaderboard_rows(data(cell(notebook, "%automl leaderboard"), "text/html")[0])) == 2
    assert "cluster: tcp://10.0.0.5:8786" in data(cell(notebook, "%%automl --dry-run"), "text/plain")[0]


def test_large_data(tmp_path):
    notebook = execute("07_large_data.ipynb", tmp_path)
    assert text(cell(notebook, 'job.training_parameters["advanced_settings"]')) == "{'stream_image_files': True}"
    message = text(cell(notebook, "from IPython.core.error import UsageError"))
    assert message.startswith("cell line 5: advanced_settings.stream_image_file") and "stream_image_files" in message
    # Streamed from the notebook's own server on 127.0.0.1: epoch 1 fetches and fills the cache,
    # epoch 2 reads it without a request.
    lines = text(cell(notebook, "import time")).splitlines()
    assert lines[0] == "before: 0 of 48 images cached at 128 px"
    assert lines[1].startswith("epoch 1: 48 requests to the server, 48 of 48 images cached")
    assert lines[2].startswith("epoch 2: 0 requests to the server, 48 of 48 images cached")
    assert "'images.zarr'" in text(cell(notebook, "sorted(path.name"))
    shown = cell(notebook, "import numpy as np")
    assert text(shown).startswith("same pixels: True") and png_size(data(shown, "image/png")[0]) == (128, 128)
    assert (tmp_path / "image-cache").is_dir()


def test_explanations(tmp_path):
    notebook = execute("08_explanations.ipynb", tmp_path)
    assert "Completed" in text(cell(notebook, "%automl wait"))
    explained = cell(notebook, "%automl explain")
    assert "trial 0, data/shapes/images/00000.png: " in text(explained) and len(data(explained, "image/png")) == 1
    verdict = text(cell(notebook, "accuracy = run.best_trial.best_metric"))
    accuracy = float(re.search(r"validation accuracy (\d\.\d\d) \(chance: 0\.33\)", verdict).group(1))
    learned = accuracy >= 0.6  # the notebook's threshold
    assert ("well above chance" in verdict) == learned and ("not clearly above chance" in verdict) == (not learned)
    python = cell(notebook, "from pathlib import Path")
    assert text(python).startswith("square ") and "(3, 42, 42)" in text(python)
    # The image explained as "square" is labelled square in the notebook's data, not a circle.
    name, label = re.search(r"image (\d+\.png), labelled (\w+)", text(python)).groups()
    labels = {Path(record.image_url).name: record.label
              for record in load_records(tmp_path / "data" / "shapes", "image_classification")}
    assert label == "square" and labels[name] == "square"
    assert png_size(data(python, "image/png")[0])[0] > 300  # the 2x2 figure
    viewer = data(cell(notebook, "from automl_nb.widgets import AttributionViewer"), "text/html")[0]
    assert len(inline_pngs(viewer)) == 2  # two methods, side by side
