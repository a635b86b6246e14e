"""The label audit measured: injected label errors found, and what fixing them is worth.

Three parts, each on synthetic data (``make_dataset``), trained from random weights on one CPU
thread (run it with ``nice -n 10``):

    overhead        the cost of keeping predictions: per task, the size of predictions.jsonl and
                    the time to build and write it, for a 200-image validation set.
    classification  300 images of 32 px (each class its own colour; --shapes-alone: not), 5% of
                    the labels flipped to another class; a sweep of 4 resnet18 trials (learning
                    rates, 6 epochs); the audit at confidence 0.9, 0.8 and 0.7; precision and
                    recall of its wrong_label findings against the flipped labels; then the best
                    configuration retrained (same seed and epochs) on the noisy file and on the
                    file with every finding fixed, both scored on 150 clean held-out images.
    detection       as classification with 120 images of 64 px, 5% of the boxes removed (never
                    an image's only box), 4 yolov5 small trials; missing_box findings against the
                    removed boxes (IoU >= 0.5); mAP@0.5 on 60 clean held-out images.

Precision counts every finding (a spurious_box finding is always wrong here: no box was added).

    nice -n 10 python bench/label_audit.py [--part overhead|classification|detection|all] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from automl_nb.analysis.audit import MISSING_BOX, WRONG_LABEL, audit_labels
from automl_nb.analysis.corrections import write_corrected
from automl_nb.analysis.predictions import PREDICTIONS, box_array, prediction_rows, write_predictions
from automl_nb.data.synthetic import make_dataset
from automl_nb.metrics.detection_types import box_iou
from automl_nb.spec import Choice, Input, image_classification, image_object_detection
from automl_nb.sweep.executor import InProcessExecutor
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train import Trial, run_trial

ERROR_RATE = 0.05
CONFIDENCES = (0.9, 0.8, 0.7)
# yolov5 from scratch, a few minutes on a CPU, scores its detections 0.5-0.8 at best.
DETECTION_CONFIDENCES = (0.9, 0.7, 0.6)
CLASSIFICATION_PARAMETERS = {k: v for k, v in {**FAST_CLASSIFICATION, "number_of_epochs": 6}.items()
                             if k != "learning_rate"}  # swept
CLASSIFICATION_RATES = [0.05, 0.02, 0.01, 0.005]
YOLO_PARAMETERS = {"model_name": "yolov5", "model_size": "small", "image_size": 64, "use_pretrained_model": False,
                   "number_of_epochs": 15, "training_batch_size": 8, "validation_batch_size": 16, "optimizer": "adam",
                   "random_seed": 0, "early_stopping": False}
YOLO_RATES = [0.002, 0.001, 0.0005, 0.003]


# -- injected errors ---------------------------------------------------------------------------
def flip_labels(jsonl: Path, out: Path, classes: list[str], seed: int = 0) -> set[str]:
    """Copy ``jsonl`` to ``out`` with 5% of the labels changed to another class; the flipped image names."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rng = random.Random(seed)
    flipped = rng.sample(range(len(rows)), round(ERROR_RATE * len(rows)))
    for k in flipped:
        rows[k]["label"] = rng.choice([c for c in classes if c != rows[k]["label"]])
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {Path(rows[k]["image_url"]).name for k in flipped}


def remove_boxes(jsonl: Path, out: Path, seed: int = 0) -> dict[str, list[dict]]:
    """Copy ``jsonl`` to ``out`` with 5% of the boxes removed (not an image's only one); name -> removed."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    boxes = [(k, j) for k, row in enumerate(rows) if len(row["label"]) > 1 for j in range(len(row["label"]))]
    total = sum(len(row["label"]) for row in rows)
    rng = random.Random(seed)
    removed: dict[str, list[dict]] = {}
    for k, j in rng.sample(boxes, len(boxes)):
        if sum(map(len, removed.values())) >= round(ERROR_RATE * total):
            break
        name = Path(rows[k]["image_url"]).name
        if len(rows[k]["label"]) - len(removed.get(name, [])) > 1:
            removed.setdefault(name, []).append(rows[k]["label"][j])
    for row in rows:
        gone = removed.get(Path(row["image_url"]).name, [])
        row["label"] = [obj for obj in row["label"] if obj not in gone]
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return removed


# -- scoring the audit -------------------------------------------------------------------------
def classification_scores(findings, flipped: set[str]) -> dict:
    frame = findings.frame
    hits = {Path(image).name for image, kind in zip(frame["image"], frame["kind"]) if kind == WRONG_LABEL} & flipped
    return {"findings": len(frame), "true": len(hits), "errors": len(flipped),
            "precision": len(hits) / len(frame) if len(frame) else float("nan"), "recall": len(hits) / len(flipped)}


def detection_scores(findings, removed: dict[str, list[dict]]) -> dict:
    frame, true, found = findings.frame, 0, set()
    for image, kind, box in zip(frame["image"], frame["kind"], frame["box"]):
        gone = removed.get(Path(image).name, [])
        if kind != MISSING_BOX or not gone:
            continue
        overlaps = box_iou(box_array([{"box": box}]), np.array([[o["topX"], o["topY"], o["bottomX"], o["bottomY"]]
                                                                 for o in gone]))[0]
        if overlaps.max() >= 0.5:
            true += 1
            found.add((Path(image).name, int(overlaps.argmax())))
    errors = sum(map(len, removed.values()))
    return {"findings": len(frame), "true": true, "errors": errors,
            "precision": true / len(frame) if len(frame) else float("nan"), "recall": len(found) / errors}


# -- the parts ---------------------------------------------------------------------------------
def sweep(job, rates: list[float], parameters: dict, folder: Path, what: str):
    """A grid over the learning ``rates``, one trial at a time in this process, timed."""
    job.set_limits(max_trials=len(rates), max_concurrent_trials=1)
    job.set_training_parameters(**parameters)
    job.extend_search_space({"learning_rate": Choice(rates)})
    job.set_sweep(sampling_algorithm="grid")
    started = time.perf_counter()
    run = job.submit(folder, executor=InProcessExecutor(max_workers=1), check_data=False)
    run.wait(report=None)
    print(f"{what} sweep: {time.perf_counter() - started:.0f} s", flush=True)
    return run


def audit_and_retrain(name, run, noisy: Path, test: Path, task: str, score, metric: str, errors,
                      confidences=CONFIDENCES) -> None:
    print(f"\n== {name}: trials " + ", ".join(f"{r.trial_id}: {r.best_metric:.3f}" for r in run.trials()
                                             if r.best_metric is not None))
    print(f"{'confidence':>10} {'split':<10} {'findings':>8} {'true':>5} {'errors':>6} {'precision':>9} {'recall':>6}")
    chosen = None
    for confidence in confidences:
        started = time.perf_counter()
        findings = audit_labels(run, confidence=confidence, progress=False)
        took = time.perf_counter() - started
        for split in ("all", "validation", "training"):
            part = findings if split == "all" else _only(findings, split)
            scores = score(part, errors if split == "all" else _errors_in(errors, findings, split, run))
            print(f"{confidence:>10} {split:<10} {scores['findings']:>8} {scores['true']:>5} {scores['errors']:>6} "
                  f"{scores['precision']:>9.2f} {scores['recall']:>6.2f}"
                  + (f"   (audit {took:.1f} s)" if split == "all" else ""))
        if chosen is None and len(findings):
            chosen, chosen_confidence = findings, confidence  # the surest level that finds anything
    if chosen is None:
        print("no findings: nothing to retrain on")
        return
    corrected = write_corrected(chosen, {k: "fix" for k in range(len(chosen))})[0]
    best = run.best_trial
    print(f"retraining trial {best.trial_id}'s configuration on the noisy file and on {corrected.name} "
          f"(every finding at confidence {chosen_confidence} fixed); {metric} on clean held-out images:")
    for label, data in (("noisy", noisy), ("corrected", corrected)):
        folder = run.folder.parent / f"retrain_{label}"
        shutil.rmtree(folder, ignore_errors=True)
        result = run_trial(Trial("0", task, dict(best.parameters), str(data), str(folder), validation_data=str(test)))
        last = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
        print(f"  {label:<10} last epoch {last[metric]:.4f}   best epoch {result.best_metric:.4f}")


def _only(findings, split):
    from dataclasses import replace

    return replace(findings, frame=findings.frame[findings.frame["split"] == split].reset_index(drop=True))


def _errors_in(errors, findings, split, run):
    """The injected errors on images of ``split`` (for every trial: they share the split's seed)."""
    trial = run.trials()[0].trial_id
    validation = {Path(json.loads(line)["filename"]).name
                  for line in (run.folder / "trials" / trial / PREDICTIONS).read_text().splitlines()}
    keep = (lambda name: name in validation) if split == "validation" else (lambda name: name not in validation)
    if isinstance(errors, set):
        return {name for name in errors if keep(name)}
    return {name: boxes for name, boxes in errors.items() if keep(name)}


def classification_part(out: Path, colour_by_class: bool = True) -> None:
    """Each class its own colour (the colour tells the class), or shapes alone (``--shapes-alone``:
    at this size and budget the trials do not learn, and the audit should find nothing)."""
    data = make_dataset("image_classification", 300, 32, out / "data", seed=0, colour_by_class=colour_by_class)
    test = make_dataset("image_classification", 150, 32, out / "test", seed=1, colour_by_class=colour_by_class)
    noisy = data.with_name("noisy.jsonl")
    flipped = flip_labels(data, noisy, ["circle", "square", "triangle"])
    job = image_classification(training_data=Input(path=str(noisy), type="uri_file"), name="audit")
    run = sweep(job, CLASSIFICATION_RATES, CLASSIFICATION_PARAMETERS, out / "run", "classification")
    what = "colour by class" if colour_by_class else "shapes alone"
    audit_and_retrain(f"classification ({what}), 5% of labels flipped", run, noisy, test, "image_classification",
                      classification_scores, "accuracy", flipped)


def detection_part(out: Path) -> None:
    data = make_dataset("image_object_detection", 120, 64, out / "data", seed=0)
    test = make_dataset("image_object_detection", 60, 64, out / "test", seed=1)
    noisy = data.with_name("noisy.jsonl")
    removed = remove_boxes(data, noisy)
    job = image_object_detection(training_data=Input(path=str(noisy), type="uri_file"), name="audit")
    run = sweep(job, YOLO_RATES, YOLO_PARAMETERS, out / "run", "detection")
    audit_and_retrain("detection, 5% of boxes removed", run, noisy, test, "image_object_detection",
                      detection_scores, "mean_average_precision", removed, DETECTION_CONFIDENCES)


class Oracle(torch.nn.Module):
    """A stand-in for a trained detector: the validation truth at score 0.9 (masks included), plus
    ``extra`` unsure boxes per image at scores 0.1 to 0.5, in loader order."""

    def __init__(self, targets, extra: int = 10):
        super().__init__()
        self.targets, self.extra, self.seen = targets, extra, 0
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, images, targets=None):
        outputs = []
        for image in images:
            target = self.targets[self.seen]
            self.seen += 1
            size = image.shape[-1]
            corner = torch.rand(self.extra, 2, generator=self.generator) * size * 0.7
            noise = torch.cat([corner, corner + size * 0.3], 1)
            output = {"boxes": torch.cat([target["boxes"].float(), noise]),
                      "scores": torch.cat([torch.full((len(target["boxes"]),), 0.9),
                                           0.1 + 0.4 * torch.rand(self.extra, generator=self.generator)]),
                      "labels": torch.cat([target["labels"], torch.ones(self.extra, dtype=torch.int64)])}
            if "masks" in target:
                blobs = torch.zeros(self.extra, 1, *image.shape[-2:])
                for k, (x1, y1, x2, y2) in enumerate(noise.int().tolist()):
                    blobs[k, 0, y1:y2, x1:x2] = 1
                output["masks"] = torch.cat([target["masks"].float()[:, None], blobs])
            outputs.append(output)
        return outputs


def overhead_part(out: Path, images: int = 200) -> None:
    """Size of predictions.jsonl and the time to build and write it, per task, for ``images`` images.

    Classifiers have random weights; detectors are :class:`Oracle` (a trained detector's output:
    the truth, sure, and 10 unsure boxes per image), so the file holds what a trained model's holds.
    """
    from torch.utils.data import DataLoader

    from automl_nb.spec import resolve_parameters
    from automl_nb.train.evaluate import evaluate_model
    from automl_nb.train.setup import make_adapter

    detector = {"use_pretrained_model": False, "min_size": 128, "max_size": 128, "log_validation_loss": False}
    cases = [("image_classification", 32, {**FAST_CLASSIFICATION}),
             ("image_classification_multilabel", 32, {**FAST_CLASSIFICATION}),
             ("image_object_detection", 128, {"model_name": "fasterrcnn_resnet18_fpn", **detector}),
             ("image_instance_segmentation", 128, {"model_name": "maskrcnn_resnet18_fpn", **detector})]
    print(f"\n== keeping predictions: {images} validation images")
    print(f"{'task':<32} {'pass s':>7} {'rows+write s':>12} {'added %':>7} {'file KiB':>8} {'boxes/img':>9}")
    for task, size, params in cases:
        data = make_dataset(task, images, size, out / task, seed=0)
        trial = Trial("0", task, params, str(data), str(out / f"{task}_trial"), validation_data=str(data))
        adapter = make_adapter(trial, resolve_parameters(task, params), 0)
        if "model_name" in params and params["model_name"] != "resnet18":
            model = Oracle([adapter.valid_dataset[i][1] for i in range(len(adapter.valid_dataset))])
        else:
            torch.manual_seed(0)
            model = adapter.build_model(False)
        loader = DataLoader(adapter.valid_dataset, batch_size=16, collate_fn=adapter.collate)
        started = time.perf_counter()
        kept: list = []
        evaluate_model(model.eval(), loader, adapter, torch.device("cpu"), keep=kept)
        pass_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rows = prediction_rows(kept, adapter.classes)
        path = write_predictions(out / f"{task}_trial", rows)
        write_seconds = time.perf_counter() - started
        boxes = np.mean([len(row.get("boxes", [])) for row in rows])
        print(f"{task:<32} {pass_seconds:>7.2f} {write_seconds:>12.3f} {100 * write_seconds / pass_seconds:>7.1f} "
              f"{path.stat().st_size / 1024:>8.1f} {boxes:>9.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("overhead", "classification", "detection", "all"), default="all")
    parser.add_argument("--output", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--shapes-alone", action="store_true", help="classification: every shape a random colour")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.output or Path(tempfile.mkdtemp(prefix="label_audit_"))
    print(f"working in {out}", flush=True)
    started = time.perf_counter()
    parts = (("overhead", overhead_part), ("classification", lambda folder: classification_part(
        folder, colour_by_class=not args.shapes_alone)), ("detection", detection_part))
    for part, function in parts:
        if args.part in (part, "all"):
            function(out / part)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
