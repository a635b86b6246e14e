"""ONNX export: checker and parity per task, normalisation in or out of the graph, the entry points,
and Predictor.from_onnx against from_trial.

Classifiers come from a real one-epoch run (mobilenetv2, 16 images of 32 px); detectors are random-weight
models written as the trainer writes a trial folder, with a score threshold of 0 so they output boxes.
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
    assert [o.name for o in session.get_outputs()] == ["boxes", "labels", "scores"]
    images = _images(data, 2)
    eager = Predictor.from_trial(trial).predict(images)
    exported = Predictor.from_onnx(result.path).predict(images)
    assert all(len(e["boxes"]) == 5 for e in exported)  # the cap applied inside the graph
    for a, b in zip(eager, exported):
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
