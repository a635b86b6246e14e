"""ONNX export: checker and parity per task, normalisation in or out of the graph, the entry points,
and Predictor.from_onnx against from_trial.

Classifiers come from a real one-epoch run (mobilenetv2, 16 images of 32 px); detectors are random-weight
models written as the trainer writes a trial folder, with a score threshold of 0 so they output boxes
(YOLOv5: batch-norm statistics of random batches and a head without priors, so its scores vary).
The TorchScript exporter is used except in the slow dynamo test: it exports in about a second.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from automl_nb import cli
from automl_nb.data.synthetic import make_dataset
from automl_nb.errors import AutoMLError, SpecError, TrialError
from automl_nb.export import export_run, export_trial
from automl_nb.infer import Predictor
from automl_nb.spec import DETECTION, MULTICLASS, MULTILABEL, SEGMENTATION, resolve_parameters
from automl_nb.sweep import load_run
from automl_nb.train import Trial
from automl_nb.train.folder import BEST_CHECKPOINT, TrialFolder

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

FAST = {"exporter": "torchscript", "latency_batches": (1,), "repeats": 1}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A completed run of one multiclass trial, trained for one epoch."""
    from automl_nb.spec import load_job
    from automl_nb.sweep.executor import InProcessExecutor

    root = tmp_path_factory.mktemp("export_run")
    make_dataset(MULTICLASS, 16, 32, root / "shapes", seed=0)
    job = load_job(f"""\
task: image_classification
training_data: {{path: {root / 'shapes'}, type: mltable}}
training_parameters: {{model_name: mobilenetv2, use_pretrained_model: false, number_of_epochs: 1,
  training_batch_size: 8, training_crop_size: 32, validation_resize_size: 36, validation_crop_size: 32,
  random_seed: 0}}
""")
    run = job.submit(root / "run", executor=InProcessExecutor(), check_data=False)
    assert run.wait(report=None) == "Completed"
    return run.folder


def _images(folder, n=4):
    return sorted((folder / "images").glob("*.png"))[:n]


def _random_trial(root, task, model_name, **given):
    """A trial folder around a random-weight model: checkpoint, settings.json and params.json."""
    from automl_nb.models.detection import detector_from_params
    from automl_nb.models.registry import build_model
    from automl_nb.train.setup import adapter_for

    data = make_dataset(task, 10, 40, root / "data", seed=1)
    params = dict(resolve_parameters(task, {"model_name": model_name, "use_pretrained_model": False,
                                            "random_seed": 0, **given}))
    labels = ["circle", "square", "triangle"]
    torch.manual_seed(0)
    if task in (MULTICLASS, MULTILABEL):
        model = build_model(model_name, num_classes=3, pretrained=False)
    else:
        model = detector_from_params(params, 3, pretrained=False)
    folder = TrialFolder(root / "trial")
    folder.path.mkdir(parents=True)
    folder.save_checkpoint(BEST_CHECKPOINT, {"model": model.state_dict(), "epoch": 1, "task": task,
                                             "params": params, "labels": labels, "metric": 0.0})
    folder.write_settings(adapter_for(task, params, [], [], labels).settings())
    folder.write_description(Trial(trial_id="0", task=task, parameters=params, training_data=str(data.parent),
                                   output_dir=str(folder.path)), params)
    return folder.path, data.parent


def _op_types(graph):
    """The operators of an ONNX graph and of its subgraphs (an If's branches)."""
    found = set()
    for node in graph.node:
        found.add(node.op_type)
        for attribute in node.attribute:
            found |= _op_types(attribute.g) if attribute.HasField("g") else set()
    return found


def _assert_export(result, task):
    assert result.exporter == "torchscript" and result.task == task
    onnx.checker.check_model(str(result.path))
    beside = {p.name for p in result.path.parent.iterdir()}
    assert {"settings.json", "labels.json", "preprocessing.json", "parity.json"} <= beside
    report = json.loads(result.path.with_name("parity.json").read_text())
    assert report["passed"] and result.passed
    assert report["images"] >= 1 and report["max_abs_diff"] <= report["tolerance"]["max_abs_diff"]
    assert report["metric"]["difference_points"] <= 0.5
    assert set(report["latency_ms"]) == {"pytorch", "onnxruntime"}
    return report


# ----- classification ------------------------------------------------------------------------
def test_cli_exports_the_best_trial_with_checker_and_parity(run_folder, capsys, monkeypatch):
    from automl_nb.export import parity

    monkeypatch.setattr(parity, "LATENCY_BATCHES", (1,))
    assert cli.main(["export", str(run_folder), "--exporter", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "torchscript exporter; onnx.checker passed" in out and "parity passed" in out
    path = run_folder / "trials" / "0" / "onnx" / "model.onnx"
    session_inputs = __import__("onnxruntime").InferenceSession(str(path)).get_inputs()
    assert [(i.name, i.shape) for i in session_inputs] == [("input1", ["batch", 3, 32, 32])]
    assert json.loads(path.with_name("labels.json").read_text()) == ["circle", "square", "triangle"]
    settings = json.loads(path.with_name("settings.json").read_text())
    assert settings["valid_crop_size"] == 32 and settings["task"] == MULTICLASS
    # The leaderboard shows the exported trial's parity; a run without exports has no such columns.
    run = load_run(run_folder)
    table = run.leaderboard()
    assert table.loc[0, "onnx_parity"] == "passed" and table.loc[0, "onnx_speedup_batch1"] > 0
    assert table.loc[0, "onnx_max_abs_diff"] == json.loads(path.with_name("parity.json").read_text())["max_abs_diff"]
    from automl_nb.sweep.report import leaderboard
    from automl_nb.train.folder import EXPORT_COLUMNS

    unexported = leaderboard(run.trials(), "accuracy", lambda trial: run_folder / "no-such-trial")
    assert not set(EXPORT_COLUMNS) & set(unexported.columns)


def test_from_onnx_agrees_with_from_trial(run_folder):
    result = load_run(run_folder).export(output=run_folder / "exported" / "shapes.onnx", **FAST)
    _assert_export(result, MULTICLASS)
    images = _images(run_folder.parent / "shapes")
    eager = Predictor.from_trial(run_folder / "trials" / "0").predict(images)
    exported = Predictor.from_onnx(result.path).predict(images)
    assert [e["labels"] for e in exported] == [e["labels"] for e in eager]
    # PIL's and torch's resize kernels differ by at most one grey level.
    np.testing.assert_allclose([e["probs"] for e in exported], [e["probs"] for e in eager], atol=2e-3)
    assert [np.argmax(e["probs"]) for e in exported] == [np.argmax(e["probs"]) for e in eager]
    with pytest.raises(SpecError, match="validation_crop_size: 24 cannot apply to an ONNX model"):
        Predictor.from_onnx(result.path, validation_crop_size=24)


def test_normalisation_in_or_out_of_the_graph_predicts_the_same(run_folder, tmp_path):
    plain = export_trial(run_folder / "trials" / "0", tmp_path / "plain" / "model.onnx", **FAST)
    inside = tmp_path / "inside"
    shutil.copytree(run_folder / "trials" / "0", inside, ignore=shutil.ignore_patterns("onnx"))
    described = json.loads((inside / "params.json").read_text())
    described["parameters"]["enable_onnx_normalization"] = True
    (inside / "params.json").write_text(json.dumps(described))
    normalised = export_trial(inside, **FAST)
    _assert_export(normalised, MULTICLASS)
    steps = [json.loads(r.path.with_name("preprocessing.json").read_text()) for r in (plain, normalised)]
    assert [s["normalise"] for s in steps] == [True, False]
    assert [s["normalisation_in_graph"] for s in steps] == [False, True]
    ops = [{node.op_type for node in onnx.load(str(r.path)).graph.node} for r in (plain, normalised)]
    assert {"Sub", "Div"} <= ops[1] - ops[0]  # (x - mean) / std is in the graph
    images = _images(run_folder.parent / "shapes")
    first, second = (Predictor.from_onnx(r.path).predict(images) for r in (plain, normalised))
    np.testing.assert_allclose([p["probs"] for p in first], [p["probs"] for p in second], atol=1e-5)


def test_a_failed_parity_check_keeps_the_file_and_says_so(run_folder, tmp_path, monkeypatch, capsys):
    from automl_nb.export import parity

    monkeypatch.setattr(parity, "OUTPUT_TOLERANCE", -1.0)  # no difference is small enough
    monkeypatch.setattr(parity, "LATENCY_BATCHES", (1,))
    output = tmp_path / "failed.onnx"
    assert cli.main(["export", str(run_folder), "--trial", "0", "--output", str(output),
                     "--exporter", "torchscript"]) == 1
    assert "parity FAILED (the file is kept; see parity.json beside it)" in capsys.readouterr().out
    assert output.is_file() and json.loads(output.with_name("parity.json").read_text())["passed"] is False


def test_multilabel_export_gives_sigmoid_outputs(tmp_path):
    trial, data = _random_trial(tmp_path, MULTILABEL, "mobilenetv2", training_crop_size=32,
                                validation_resize_size=32, validation_crop_size=32)
    result = export_trial(trial, **FAST)
    _assert_export(result, MULTILABEL)
    probs = [p["probs"] for p in Predictor.from_onnx(result.path).predict(_images(data, 3))]
    eager = [p["probs"] for p in Predictor.from_trial(trial).predict(_images(data, 3))]
    np.testing.assert_allclose(probs, eager, atol=2e-3)
    assert not np.allclose(np.sum(probs, axis=1), 1.0)  # independent sigmoids, not a softmax


# ----- detection -----------------------------------------------------------------------------
@pytest.mark.slow
def test_faster_rcnn_exports_with_nms_inside_and_agrees_with_from_trial(tmp_path):
    trial, data = _random_trial(tmp_path, DETECTION, "fasterrcnn_resnet18_fpn", min_size=48, max_size=64,
                                box_score_threshold=0.0, box_detections_per_image=5)
    result = export_trial(trial, **FAST)
    report = _assert_export(result, DETECTION)
    assert report["images"] == 2
    session = __import__("onnxruntime").InferenceSession(str(result.path))
    assert [i.shape for i in session.get_inputs()] == [[1, 3, "height", "width"]]
    assert [o.name for o in session.get_outputs()] == ["boxes_0", "labels_0", "scores_0"]  # Azure's names
    images = _images(data, 2)
    eager = Predictor.from_trial(trial).predict(images)
    exported = Predictor.from_onnx(result.path).predict(images)
    assert all(len(e["boxes"]) == 5 for e in exported)  # the cap applied inside the graph
    tiled = {"tile_grid_size": "2x1", "tile_predictions_nms_threshold": 0.5}  # whole image and tiles, merged
    eager_tiled = Predictor.from_trial(trial, **tiled).predict(images)
    exported_tiled = Predictor.from_onnx(result.path, **tiled).predict(images)
    assert [e["boxes"] for e in eager_tiled] != [e["boxes"] for e in eager]
    for a, b in zip(eager + eager_tiled, exported + exported_tiled):
        assert [x["label"] for x in a["boxes"]] == [x["label"] for x in b["boxes"]]
        np.testing.assert_allclose([x["score"] for x in a["boxes"]], [x["score"] for x in b["boxes"]], atol=1e-4)
        np.testing.assert_allclose([list(x["box"].values()) for x in a["boxes"]],
                                   [list(x["box"].values()) for x in b["boxes"]], atol=1e-3)
    with pytest.raises(SpecError, match="box_detections_per_image: 9: the ONNX graph applies 5 already"):
        Predictor.from_onnx(result.path, box_detections_per_image=9)
    assert len(Predictor.from_onnx(result.path, box_detections_per_image=2).predict(images[0])[0]["boxes"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("task, model_name", [(SEGMENTATION, "maskrcnn_resnet18_fpn"),
                                              (DETECTION, "retinanet_resnet50_fpn")])
def test_other_detector_families_export_and_pass_parity(tmp_path, task, model_name):
    trial, data = _random_trial(tmp_path, task, model_name, min_size=48, max_size=64, box_score_threshold=0.0,
                                box_detections_per_image=5)
    _assert_export(export_trial(trial, **FAST), task)
    session = __import__("onnxruntime").InferenceSession(str(trial / "onnx" / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    assert names == {"maskrcnn_resnet18_fpn": ["boxes_0", "labels_0", "scores_0", "masks_0"],
                     "retinanet_resnet50_fpn": ["boxes_0", "scores_0", "labels_0"]}[model_name]  # Azure's orders
    outputs = Predictor.from_onnx(trial / "onnx" / "model.onnx").predict(_images(data, 1))
    assert outputs[0]["boxes"] and ("polygon" in outputs[0]["boxes"][0]) == (task == SEGMENTATION)


@pytest.mark.slow
def test_auto_exporter_uses_dynamo_for_a_classifier(run_folder, tmp_path):
    result = export_trial(run_folder / "trials" / "0", tmp_path / "model.onnx", latency_batches=(1, 8), repeats=1)
    assert result.exporter == "dynamo" and result.passed
    assert set(result.parity["latency_ms"]["onnxruntime"]) == {"1", "8"}


# ----- entry points and their mistakes --------------------------------------------------------
def test_bad_trials_fail_with_one_clear_message(run_folder, tmp_path, capsys):
    with pytest.raises(TrialError, match=r"trial '7': no such trial in .*; allowed: 0"):
        export_run(run_folder, "7")
    assert cli.main(["export", str(run_folder), "--trial", "7"]) == 2
    assert "error: trial '7': no such trial" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrialError, match="not a trial folder with a trained model"):
        export_trial(empty)
    with pytest.raises(ValueError, match="exporter: 'onnx' is not allowed; allowed: auto, dynamo, torchscript"):
        export_trial(run_folder / "trials" / "0", exporter="onnx")
    with pytest.raises(AutoMLError, match="not an .onnx file name"):
        export_trial(run_folder / "trials" / "0", tmp_path / "model.bin", parity=False)


def test_magic_exports_and_binds_the_result(run_folder, tmp_path, capsys, monkeypatch):
    from IPython.testing.globalipapp import get_ipython

    from automl_nb.export import parity

    monkeypatch.setattr(parity, "LATENCY_BATCHES", (1,))
    shell = get_ipython()
    shell.run_line_magic("load_ext", "automl_nb")
    try:
        shell.run_line_magic("automl", f"export -r {run_folder} --exporter torchscript "
                                       f"--output {tmp_path / 'm.onnx'} -o exported")
        assert shell.user_ns["exported"].passed and shell.user_ns["exported"].path == tmp_path / "m.onnx"
        assert "parity passed" in capsys.readouterr().out
    finally:
        shell.user_ns.pop("exported", None)


def test_onnx_inference_needs_no_torch_and_a_missing_runtime_names_the_extra(run_folder, tmp_path):
    result = export_trial(run_folder / "trials" / "0", tmp_path / "model.onnx", exporter="torchscript", parity=False)
    image = _images(run_folder.parent / "shapes", 1)[0]
    script = f"""
import sys
sys.modules['torch'] = sys.modules['torchvision'] = None  # importing either fails
import automl_nb, automl_nb.export
assert 'onnxruntime' not in sys.modules and 'onnx' not in sys.modules
from automl_nb.infer import Predictor
print(Predictor.from_onnx({str(result.path)!r}).predict([{str(image)!r}])[0]['labels'])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "['circle', 'square', 'triangle']" in done.stdout
    script = f"""
import sys
sys.modules['onnxruntime'] = None
from automl_nb.infer import Predictor
Predictor.from_onnx({str(result.path)!r})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "pip install 'automl_nb[export]'" in done.stderr


@pytest.fixture(scope="module")
def yolo_export(tmp_path_factory):
    """A random-weight yolov5 small trial (64 px) and its export; yields (trial folder, ExportResult)."""
    root = tmp_path_factory.mktemp("yolo_export")
    trial, _ = _random_trial(root, DETECTION, "yolov5", model_size="small", image_size=64, box_score_threshold=0.6)
    # A fresh yolov5 scores every box about alike, whatever the image (its batch-norm statistics are
    # the initial ones): set them from a few batches, and drop the head's priors, so scores vary.
    from automl_nb.models.yolo import yolo_from_params

    folder = TrialFolder(trial)
    state = folder.load_checkpoint(BEST_CHECKPOINT)
    model = yolo_from_params(state["params"], 3)
    model.load_state_dict(state["model"])
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.reset_running_stats()
                layer.momentum = None  # a plain average of the batches
        for _ in range(3):
            model.train()(torch.rand(4, 3, 64, 64))
        for conv in model.head.m:
            conv.weight *= 3
            conv.bias.zero_()
    folder.save_checkpoint(BEST_CHECKPOINT, {**state, "model": model.state_dict()})
    return trial, export_trial(trial, **FAST)


def _noise_images(*shapes):
    """RGB noise images of these (height, width): no flat areas, so no two boxes score exactly alike."""
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes]


def test_yolov5_exports_with_nms_inside_and_agrees_with_from_trial(yolo_export):
    trial, result = yolo_export
    report = _assert_export(result, DETECTION)
    assert report["images"] == 2
    session = __import__("onnxruntime").InferenceSession(str(result.path))
    assert [i.shape for i in session.get_inputs()] == [[1, 3, "height", "width"]]
    assert [o.name for o in session.get_outputs()] == ["boxes_0", "labels_0", "scores_0"]  # Azure's names
    assert "NonMaxSuppression" in _op_types(onnx.load(str(result.path)).graph)  # NMS inside the graph
    steps = json.loads(result.path.with_name("preprocessing.json").read_text())
    assert steps["letterbox"]["size"] == 64 and "nms_iou_threshold" in steps["fixed_in_graph"]
    images = _noise_images((25, 40), (33, 70))  # letterboxed with padding, below and above 64 px
    for settings in ({"image_size": 64}, {"image_size": 96}, {"tile_grid_size": "2x1"}):
        eager = Predictor.from_trial(trial, **settings).predict(images)
        exported = Predictor.from_onnx(result.path, **settings).predict(images)
        for a, b in zip(eager, exported):
            assert a["boxes"] and len(a["boxes"]) == len(b["boxes"])
            # Boxes of (nearly) equal scores may come in either order: match each to its nearest.
            rows = [np.array([[x["label"] == name for name in ("circle", "square", "triangle")] + [x["score"]]
                              + list(x["box"].values()) for x in p["boxes"]], dtype=float) for p in (a, b)]
            nearest = np.abs(rows[0][:, None] - rows[1][None]).max(axis=2).min(axis=0)
            assert nearest.max() < 1e-3
    with pytest.raises(SpecError, match="nms_iou_threshold: 0.3 cannot apply to an ONNX model"):
        Predictor.from_onnx(result.path, nms_iou_threshold=0.3)


def test_yolov5_onnx_predicts_without_torch_and_auto_uses_torchscript(yolo_export, tmp_path):
    trial, result = yolo_export
    _noise_images((33, 70))[0].save(tmp_path / "wide.png")
    script = f"""
import sys
sys.modules['torch'] = sys.modules['torchvision'] = None  # importing either fails
from automl_nb.infer import Predictor
print(len(Predictor.from_onnx({str(result.path)!r}).predict([{str(tmp_path / 'wide.png')!r}])[0]['boxes']))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(Predictor.from_trial(trial).predict(tmp_path / "wide.png")[0]["boxes"]) > 0
    # dynamo cannot export NMS over a data-dependent number of boxes: auto goes straight to TorchScript
    assert export_trial(trial, tmp_path / "auto.onnx", parity=False).exporter == "torchscript"


def test_numpy_letterbox_matches_the_training_letterbox():
    from automl_nb.data.yolo_transforms import FILL
    from automl_nb.data.yolo_transforms import letterbox as torch_letterbox
    from automl_nb.infer.onnx_model import letterbox, network_size

    rng = np.random.default_rng(0)
    dropped = 0
    for height, width, size in ((40, 40, 64), (25, 40, 64), (33, 70, 96), (200, 90, 64), (64, 64, 64)):
        pixels = rng.random((3, height, width), dtype=np.float32)
        canvas, geometry = letterbox(pixels, size, FILL)
        expected, expected_geometry = torch_letterbox(torch.from_numpy(pixels), size)
        assert canvas.shape == (3, size, size) and np.abs(canvas - expected.numpy()).max() < 1e-5
        corners = rng.uniform(0, size, (8, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(1, size / 2, (8, 2))], axis=1).astype(np.float32)
        boxes = np.concatenate([boxes, [[0, 0, size / 4, 1]]]).astype(np.float32)  # on the top padding, if any
        mapped = geometry.to_image({"boxes": boxes, "scores": np.arange(9)})
        back = expected_geometry.to_image(torch.from_numpy(boxes))
        kept = ((back[:, 2] > back[:, 0]) & (back[:, 3] > back[:, 1])).numpy()
        np.testing.assert_allclose(mapped["boxes"], back[kept].numpy(), atol=1e-4)
        assert mapped["scores"].tolist() == np.arange(9)[kept].tolist()
        dropped += int((~kept).sum())
    assert dropped >= 1
    assert (network_size(100), network_size(10), network_size(64)) == (128, 32, 64)


def test_numpy_class_aware_nms_keeps_what_torchvision_keeps():
    from torchvision.ops import batched_nms

    from automl_nb.infer.onnx_predictor import class_aware_nms

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 50, (200, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(2, 30, (200, 2))], axis=1).astype(np.float32)
    scores, labels = rng.random(200).astype(np.float32), rng.integers(0, 3, 200)
    for threshold in (0.0, 0.25, 0.6):
        expected = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), threshold)
        kept = class_aware_nms(boxes, scores, labels, threshold)
        assert kept.tolist() == expected.tolist() and 3 <= len(kept) < 200


def _calibrated_ssd(root):
    """A random-weight SageMaker SSD (resnet-50, image_shape 300: the smallest allowed) whose scores vary.

    Fresh batch-norm statistics and head weights saturate its softmax (every score 1.0, so NMS ties
    everywhere): set the statistics from two batches of normalised random images, as the yolov5 fixture
    does, and shrink the heads.
    """
    from automl_nb.models.detection import detector_from_params

    trial, data = _random_trial(root, DETECTION, None, base_network="resnet-50", image_shape=300,
                                box_score_threshold=0.0, box_detections_per_image=5)
    folder = TrialFolder(trial)
    state = folder.load_checkpoint(BEST_CHECKPOINT)
    model = detector_from_params(state["params"], 3, pretrained=False)
    model.load_state_dict(state["model"])
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.reset_running_stats()
                layer.momentum = None
        model.backbone.train()
        for _ in range(2):
            model.backbone(model.transform([torch.rand(3, 300, 300), torch.rand(3, 300, 300)])[0].tensors)
        for conv in [*model.head.classification_head.module_list, *model.head.regression_head.module_list]:
            conv.weight *= 0.02
    folder.save_checkpoint(BEST_CHECKPOINT, {**state, "model": model.eval().state_dict()})
    return trial, data


@pytest.mark.slow
def test_ssd_exports_at_a_fixed_batch_with_azure_names_and_agrees_with_from_trial(tmp_path):
    from automl_nb.infer.onnx_model import OnnxModel

    trial, data = _calibrated_ssd(tmp_path)
    result = export_trial(trial, batch_size=2, **FAST)
    report = _assert_export(result, DETECTION)
    assert report["images"] == 2 and set(report["latency_ms"]["onnxruntime"]) == {"1"}
    session = __import__("onnxruntime").InferenceSession(str(result.path))
    # Azure's batch layout: the batch is fixed at export, height and width free, outputs per image.
    assert [i.shape for i in session.get_inputs()] == [[2, 3, "height", "width"]]
    assert [o.name for o in session.get_outputs()] == ["boxes_0", "labels_0", "scores_0",
                                                       "boxes_1", "labels_1", "scores_1"]
    steps = json.loads(result.path.with_name("preprocessing.json").read_text())
    assert steps["batch_size"] == 2 and "image_shape" in steps["fixed_in_graph"]
    # Two images of one size share a run, the third (another size) runs padded with itself.
    images = _images(data, 2) + _noise_images((50, 90))
    eager = Predictor.from_trial(trial).predict(images)
    exported = Predictor.from_onnx(result.path).predict(images)
    assert len({tuple(round(x["score"], 4) for x in e["boxes"]) for e in eager}) == 3  # scores vary by image
    for a, b in zip(eager, exported):
        assert len(a["boxes"]) == len(b["boxes"]) == 5
        assert [x["label"] for x in a["boxes"]] == [x["label"] for x in b["boxes"]]
        np.testing.assert_allclose([x["score"] for x in a["boxes"]], [x["score"] for x in b["boxes"]], atol=1e-4)
        np.testing.assert_allclose([list(x["box"].values()) for x in a["boxes"]],
                                   [list(x["box"].values()) for x in b["boxes"]], atol=1e-3)
    # Each image of a run gets its own detections: a run of (first, second) gives second's as a run of its own.
    model = OnnxModel(result.path)
    first, second = (model.detection_input(__import__("PIL.Image").Image.open(p).convert("RGB")) for p in images[:2])
    together, alone = model.run_detector([first, second]), model.run_detector([second])
    assert len(together) == 2 and len(alone) == 1
    np.testing.assert_allclose(together[1]["scores"], alone[0]["scores"], atol=1e-5)
    assert not np.allclose(together[0]["scores"], together[1]["scores"])
    with pytest.raises(ValueError, match="batch_size: 0 is not allowed; allowed: an int >= 1"):
        export_trial(trial, batch_size=0, parity=False)
