"""ONNX Runtime against PyTorch eager on CPU: resnet18, mobilenetv2, fasterrcnn_resnet18_fpn (batch 1 and a
graph exported at batch 4), SageMaker's SSD (resnet-50, 300 px), yolov5 small.

Random weights (no download); each model is exported with the TorchScript path and timed in the
same process, so the ratio compares like with like; times are per image. Goal (issue 16): ONNX
Runtime at least 1.5x faster at batch 1 for the classifiers. Takes a few minutes on two cores.

    .venv/bin/python bench/export_latency.py [--threads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from automl_nb.export.graphs import ClassifierGraph, DetectorGraph, YoloGraph
from automl_nb.export.layout import dynamic_axes, input_names, output_names
from automl_nb.export.onnx_file import write_onnx
from automl_nb.infer.onnx_model import detection_keys, require

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _models():
    """(name, task, model_name, graph, example input) of each model timed; the example's batch is the graph's."""
    from automl_nb.models.detection import detector_from_params
    from automl_nb.models.registry import build_model
    from automl_nb.spec import resolve_parameters

    for name in ("resnet18", "mobilenetv2"):
        model = build_model(name, num_classes=10, pretrained=False).eval()
        yield name, "image_classification", name, ClassifierGraph(model, "image_classification", MEAN, STD, True), \
            torch.rand(1, 3, 224, 224)
    detection = "image_object_detection"
    params = resolve_parameters(detection, {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False})
    detector = detector_from_params(params, 3, pretrained=False).eval()
    for batch in (1, 4):
        yield "fasterrcnn_resnet18_fpn", detection, params["model_name"], \
            DetectorGraph(detector, detection_keys(detection)), torch.rand(batch, 3, 480, 640)
    params = resolve_parameters(detection, {"base_network": "resnet-50", "use_pretrained_model": False})
    ssd = detector_from_params(params, 3, pretrained=False).eval()
    yield "ssd resnet-50 (300 px)", detection, "ssd", DetectorGraph(ssd, detection_keys(detection)), \
        torch.rand(1, 3, 480, 640)
    from automl_nb.models.yolo import MAX_DETECTIONS, YoloV5

    yolo = YoloV5(num_classes=80, model_size="small", image_size=640).eval()  # a letterboxed 640 x 640 input
    yield "yolov5 small", detection, "yolov5", YoloGraph(yolo, 0.1, 0.5, MAX_DETECTIONS), torch.rand(1, 3, 640, 640)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for both engines")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    print(f"CPU, {args.threads} thread(s), median of {args.repeats}, milliseconds per image")
    print(f"{'model':26} {'input':>8} {'batch':>5} {'eager ms':>9} {'ORT ms':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for name, task, model_name, graph, example in _models():
            batch = example.shape[0]
            path = Path(folder) / f"{name}-{batch}.onnx"
            write_onnx(graph, example, path, input_names=input_names(task),
                       output_names=output_names(task, model_name, batch),
                       dynamic_axes=dynamic_axes(task, model_name, batch), exporter="torchscript")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {input_names(task)[0]: example.numpy()}
            repeats = args.repeats if task == "image_classification" else max(3, args.repeats // 3)
            with torch.inference_mode():
                eager = _median_ms(lambda: graph(example), repeats) / batch
            runtime = _median_ms(lambda: session.run(None, feed), repeats) / batch
            shape = "x".join(str(d) for d in example.shape[2:])
            print(f"{name:26} {shape:>8} {batch:5} {eager:9.1f} {runtime:8.1f} {eager / runtime:5.2f}x")


if __name__ == "__main__":
    main()
