"""PredictionDiff: TP/FP/FN colours read off the drawn pixels, the disagreement order and filters
in the widget, the click that shows an image large, and the static form; from a run folder
written by hand (no model, no training)."""

import json
from pathlib import Path

import pytest
from PIL import Image

from automl_nb.analysis.diff import ALL, ONLY_A, ONLY_B
from automl_nb.analysis.predictions import write_predictions
from automl_nb.errors import AutoMLError
from automl_nb.widgets.diff_gallery import FN_COLOUR, FP_COLOUR, TP_COLOUR, PredictionDiff, draw_outcomes

LABELS = ["cat", "dog"]
GREY = (128, 128, 128)


def box(x1, y1, x2, y2):
    return {"topX": x1, "topY": y1, "bottomX": x2, "bottomY": y2}


LEFT, TOP, RIGHT, LOW = box(0, 0, 0.4, 0.4), box(0.6, 0, 1.0, 0.4), box(0.6, 0.6, 1.0, 1.0), box(0.1, 0.6, 0.4, 0.9)


def write_run(folder, task, trials, images=()):
    """A run folder by hand: run.json and per trial trial.json, params.json, labels.json, predictions.jsonl."""
    for path in images:
        Image.new("RGB", (40, 30), GREY).save(path)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": "Completed"}))
    for index, (trial_id, rows) in enumerate(trials.items()):
        trial = folder / "trials" / trial_id
        trial.mkdir(parents=True)
        (trial / "trial.json").write_text(json.dumps({"trial_id": trial_id, "index": index}))
        (trial / "params.json").write_text(json.dumps({"trial_id": trial_id, "task": task, "parameters": {}}))
        (trial / "labels.json").write_text(json.dumps(LABELS))
        write_predictions(trial, rows)
    return folder


def test_outcome_colours_on_known_boxes():
    row = {"filename": "x", "truth": [{"label": "cat", "box": LEFT}, {"label": "dog", "box": RIGHT}],
           "boxes": [{"label": "cat", "score": 0.9, "box": LEFT}, {"label": "cat", "score": 0.8, "box": TOP},
                     {"label": "dog", "score": 0.3, "box": LOW}]}
    drawn = draw_outcomes(Image.new("RGB", (100, 100), GREY), row, LABELS, text=False)
    assert drawn.getpixel((0, 20)) == TP_COLOUR    # the cat found
    assert drawn.getpixel((60, 20)) == FP_COLOUR   # the cat on nothing
    assert drawn.getpixel((62, 60)) == FN_COLOUR   # the dog missed: a dashed truth box
    assert drawn.getpixel((10, 60)) == GREY        # a dog scoring under the threshold is not drawn
    recoloured = draw_outcomes(Image.new("RGB", (100, 100), GREY), row, LABELS, 0.25, text=False)
    assert recoloured.getpixel((10, 60)) == FP_COLOUR and recoloured.getpixel((62, 60)) == FN_COLOUR


def classification_run(tmp_path):
    images = [tmp_path / f"{name}.png" for name in ("agree", "far", "near")]
    truth = ["cat", "dog", "cat"]
    a = [[0.9, 0.1], [0.8, 0.2], [0.45, 0.55]]
    b = [[0.8, 0.2], [0.1, 0.9], [0.6, 0.4]]

    def rows(probs):
        return [{"filename": str(p), "label": t, "probs": q, "loss": 0.1} for p, t, q in zip(images, truth, probs)]

    return write_run(tmp_path / "run", "image_classification", {"0": rows(a), "1": rows(b)}, images)


def test_gallery_orders_filters_and_shows_large(tmp_path):
    gallery = PredictionDiff(classification_run(tmp_path), trials=["1", "0"])  # A is trial 1
    names = [tile.children[2].description for tile in gallery.tiles]
    assert names == ["far.png", "near.png", "agree.png"]  # decided differently first, the farthest first
    assert "decided differently on 2" in gallery.summary.value
    assert gallery.chosen["filename"].endswith("far.png") and "far.png" in gallery.title.value
    gallery.show_only.value = ONLY_B  # trial 0 right, trial 1 wrong: none
    assert [tile.layout.display for tile in gallery.tiles] == ["none"] * 3 and gallery.chosen is None
    gallery.show_only.value = ONLY_A
    assert [t.layout.display for t in gallery.tiles] == [None, None, "none"]
    gallery.tiles[1].children[2].click()  # the name under a thumbnail shows it large
    assert gallery.chosen["filename"].endswith("near.png") and "near.png" in gallery.title.value
    assert gallery.image.value[:4] == b"\x89PNG"
    gallery.show_only.value, gallery.label.value = ALL, "dog"  # dog is true, or someone's answer
    assert [Path(item["filename"]).name for item in gallery.shown] == ["far.png", "near.png"]


def test_static_form_embeds_images_and_links_each_to_its_large_view(tmp_path):
    gallery = PredictionDiff(classification_run(tmp_path), trials=["0", "1"], limit=2)
    html = gallery._repr_mimebundle_()["text/html"]
    assert html.count("data:image/png;base64") == 4 and html.count('class="automl-diff-large" id=') == 2
    assert html.index("far.png") < html.index("near.png") and "agree.png" not in html
    page = gallery.save_html(tmp_path / "diff.html")
    assert page.read_text().startswith("<!DOCTYPE html>") and "trial 0 against trial 1" in page.read_text()


def test_detection_gallery_draws_both_trials_with_their_ap(tmp_path):
    image = tmp_path / "a.png"
    truth = [{"label": "cat", "box": LEFT}, {"label": "dog", "box": RIGHT}]
    both = {"filename": str(image), "truth": truth, "boxes": [{"label": "cat", "score": 0.9, "box": LEFT},
                                                              {"label": "dog", "score": 0.9, "box": RIGHT}]}
    one = {**both, "boxes": both["boxes"][:1]}
    run = write_run(tmp_path / "run", "image_object_detection", {"0": [both], "1": [one]}, [image])
    gallery = PredictionDiff(run, trials=[0, 1])
    assert "A (trial 0): AP 1.00, 2 TP, 0 FP, 0 missed" in gallery.title.value
    assert "B (trial 1): AP 0.50, 1 TP, 0 FP, 1 missed" in gallery.title.value
    large = gallery.picture(gallery.chosen, large=True)  # 40 x 30 px drawn 6x: 240 x 180, twice, 6 px apart
    assert large.size == (486, 180)
    assert large.getpixel((144, 144)) == TP_COLOUR        # A's dog, its left edge
    assert large.getpixel((246 + 144, 144)) != TP_COLOUR  # B missed the dog
    assert large.getpixel((246, 36)) == TP_COLOUR         # B's cat
    assert [gallery.shown[0]["filename"]] == [str(image)] and gallery.show_only.options[-1] == ONLY_B


def test_mistakes_are_named(tmp_path):
    run = classification_run(tmp_path)
    with pytest.raises(AutoMLError, match=r"trials: \['0'\]; allowed: a list of two different trial ids"):
        PredictionDiff(run, trials=["0"])
    with pytest.raises(AutoMLError, match="trial '5': no such trial in .*; allowed: 0, 1"):
        PredictionDiff(run, trials=["0", "5"])
    with pytest.raises(AutoMLError, match="limit: 0; allowed: an int >= 1"):
        PredictionDiff(run, trials=["0", "1"], limit=0)
