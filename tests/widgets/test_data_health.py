"""DataHealthPanel: the class-count chart, the findings with their YAML, the merged YAML block, the
duplicate thumbnails, and a static HTML form that needs no kernel."""

import io
import json
import shutil

from PIL import Image

from automl_nb.data.health import check
from automl_nb.data.health.text import recommended_yaml
from automl_nb.data.synthetic import make_dataset
from automl_nb.widgets.data_health import DataHealthPanel

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_panel_shows_findings_yaml_and_duplicate_thumbnails(tmp_path):
    make_dataset("image_object_detection", 24, 48, tmp_path / "train", seed=0)
    make_dataset("image_object_detection", 10, 48, tmp_path / "valid", seed=1)
    shutil.copy(tmp_path / "train" / "images" / "00001.png", tmp_path / "valid" / "images" / "leaked.png")
    with open(tmp_path / "valid" / "labels.jsonl", "a") as handle:
        handle.write(json.dumps({"image_url": "images/leaked.png", "label": [
            {"label": "circle", "topX": 0.5, "topY": 0.5, "bottomX": 0.54, "bottomY": 0.54}] * 30}) + "\n")
    (tmp_path / "job.yml").write_text("task: image_object_detection\ntraining_data: {path: ./train}\n"
                                      "validation_data: {path: ./valid}\n")
    health = check(tmp_path / "job.yml")
    panel = DataHealthPanel(health)
    assert bytes(panel.chart.value[:8]) == PNG and Image.open(io.BytesIO(panel.chart_png)).width > 500  # two plots
    assert panel.findings.value.count('<tr class="automl-finding">') == len(health.findings) == 2
    assert "<pre style=\"margin:0\">tile_grid_size: 2x2</pre>" in panel.findings.value
    assert panel.yaml.value == recommended_yaml(health) == "training_parameters:\n  tile_grid_size: 2x2"
    assert "1 group(s), 1 across training and validation" in panel.duplicates.value
    assert "leak: exact" in panel.duplicates.value and "labels.jsonl:2 = " in panel.duplicates.value
    static = panel._repr_mimebundle_()
    assert static["text/html"] == panel.html() == panel._repr_html_()
    assert static["text/html"].count("data:image/png;base64,") == 2  # the chart and one duplicate group
    assert "1 error(s), 1 warning(s), 0 note(s)" in static["text/html"]
    assert "<pre>training_parameters:\n  tile_grid_size: 2x2</pre>" in static["text/html"]
    assert static["text/plain"] == health.text()


def test_a_healthy_job_gives_a_quiet_panel(tmp_path):
    make_dataset("image_classification", 50, 32, tmp_path / "data", seed=0)
    (tmp_path / "job.yml").write_text("task: image_classification\ntraining_data: {path: ./data}\n"
                                      "training_parameters: {random_seed: 0}\n")
    panel = DataHealthPanel(tmp_path / "job.yml")  # a YAML path: the panel makes the report
    assert panel.health.findings == () and panel.findings.value == "" and panel.duplicates.value == ""
    assert panel.yaml.layout.display == "none"
    html = panel.html()
    assert "no problems found" in html and html.count("data:image/png;base64,") == 1
    assert "40 training images" in html and "images per class" not in html  # the title is inside the PNG
