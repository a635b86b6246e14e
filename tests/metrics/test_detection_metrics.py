import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from automl_nb.metrics.detection import (
    ImageDetections,
    ImageTargets,
    average_precision,
    box_iou,
    coco_map,
    detection_metrics,
    mask_iou,
    voc_map,
)

NUM_CLASSES = 4  # class 3 is predicted but never in the ground truth


# ---------------------------------------------------------------- a random COCO-like fixture


def _ellipse_mask(box, width, height):
    """The ellipse inscribed in ``box``, rasterised at pixel centres."""
    x1, y1, x2, y2 = box
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1


def _random_box(rng, width, height):
    scale = rng.choice([0.08, 0.25, 0.7])  # small, medium and large objects
    w = float(np.clip(rng.uniform(0.5, 1.0) * scale * width, 4, width - 1))
    h = float(np.clip(rng.uniform(0.5, 1.0) * scale * height, 4, height - 1))
    x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return [x1, y1, x1 + w, y1 + h]


def _fixture(seed):
    """Images as plain dicts: pixels boxes, labels, crowd flags, masks, predictions."""
    rng = np.random.default_rng(seed)
    sizes = [(320, 240), (200, 160), (640, 480), (120, 100), (300, 300), (256, 192), (400, 200), (90, 140)]
    images = []
    for number, (width, height) in enumerate(sizes):
        n_gt = 0 if number == 1 else int(rng.integers(1, 7))  # image 1: no ground truth
        gt_boxes = [_random_box(rng, width, height) for _ in range(n_gt)]
        gt_labels = [int(rng.integers(0, 3)) for _ in range(n_gt)]
        gt_crowd = [bool(rng.random() < 0.2) for _ in range(n_gt)]
        boxes, labels = [], []
        if number != 2:  # image 2: no predictions
            for box, label in zip(gt_boxes, gt_labels):
                for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # missed, found, duplicated
                    w, h = box[2] - box[0], box[3] - box[1]
                    jitter = rng.normal(0, 0.12, 4) * [w, h, w, h]
                    x1, y1, x2, y2 = np.asarray(box) + jitter
                    boxes.append([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])
                    labels.append(label if rng.random() < 0.85 else int(rng.integers(0, NUM_CLASSES)))
            for _ in range(int(rng.integers(1, 4))):  # false positives, class 3 among them
                boxes.append(_random_box(rng, width, height))
                labels.append(int(rng.integers(0, NUM_CLASSES)))
        scores = rng.uniform(0.05, 1.0, len(boxes)).round(3).tolist()
        images.append({
            "width": width, "height": height,
            "gt_boxes": gt_boxes, "gt_labels": gt_labels, "gt_crowd": gt_crowd,
            "gt_masks": [_ellipse_mask(b, width, height) for b in gt_boxes],
            "boxes": boxes, "scores": scores, "labels": labels,
            "masks": [_ellipse_mask(b, width, height) for b in boxes],
        })
    assert any(any(image["gt_crowd"]) for image in images)
    assert 3 in [label for image in images for label in image["labels"]]
    return images


def _ours(images):
    predictions, targets = [], []
    for image in images:
        shape = (0, image["height"], image["width"])
        predictions.append(ImageDetections(
            boxes=np.asarray(image["boxes"]).reshape(-1, 4),
            scores=np.asarray(image["scores"]),
            labels=np.asarray(image["labels"], int),
            masks=np.stack(image["masks"]) if image["masks"] else np.zeros(shape, bool),
        ))
        targets.append(ImageTargets(
            boxes=np.asarray(image["gt_boxes"]).reshape(-1, 4),
            labels=np.asarray(image["gt_labels"], int),
            is_crowd=np.asarray(image["gt_crowd"], bool),
            masks=np.stack(image["gt_masks"]) if image["gt_masks"] else np.zeros(shape, bool),
            width=image["width"],
            height=image["height"],
        ))
    return predictions, targets


def _rle(mask):
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def _pycocotools_stats(images, iou_type, category_ids=None):
    """COCOeval's own ``stats`` for the fixture written out as COCO json dicts."""
    dataset = {
        "images": [{"id": i + 1, "width": im["width"], "height": im["height"]} for i, im in enumerate(images)],
        "categories": [{"id": k + 1, "name": f"class{k}"} for k in range(NUM_CLASSES)],
        "annotations": [],
    }
    results = []
    for i, image in enumerate(images):
        objects = zip(image["gt_boxes"], image["gt_labels"], image["gt_crowd"], image["gt_masks"])
        for box, label, crowd, mask in objects:
            x1, y1, x2, y2 = box
            annotation = {
                "id": len(dataset["annotations"]) + 1, "image_id": i + 1, "category_id": label + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(crowd), "area": (x2 - x1) * (y2 - y1),
            }
            if iou_type == "segm":
                annotation["segmentation"] = _rle(mask)
                annotation["area"] = float(mask.sum())
            dataset["annotations"].append(annotation)
        for box, score, label, mask in zip(image["boxes"], image["scores"], image["labels"], image["masks"]):
            x1, y1, x2, y2 = box
            result = {"image_id": i + 1, "category_id": label + 1, "score": score}
            if iou_type == "segm":
                result["segmentation"] = _rle(mask)
            else:
                result["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            results.append(result)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        if category_ids is not None:
            evaluator.params.catIds = category_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [math.nan if s == -1 else float(s) for s in evaluator.stats]


def _same(a, b, tol=1e-6):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_coco_map_equals_pycocotools(seed, iou_type):
    images = _fixture(seed)
    scores = coco_map(*_ours(images), NUM_CLASSES, iou_type=iou_type)
    names = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
             "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large"]
    expected = _pycocotools_stats(images, iou_type)
    assert not math.isnan(expected[0]) and 0 < expected[0] < 1  # a fixture that can tell
    for name, value in zip(names, expected):
        assert _same(scores[name], value), (name, scores[name], value)
    # Per class: COCOeval restricted to that one category.
    for k in range(NUM_CLASSES):
        assert _same(scores["per_class"][k], _pycocotools_stats(images, iou_type, [k + 1])[0]), k
    assert math.isnan(scores["per_class"][3])  # predicted, never in the ground truth


def test_coco_map_with_no_predictions_at_all():
    target = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], width=20, height=20)
    empty = ImageDetections(boxes=np.zeros((0, 4)), scores=[], labels=[])
    scores = coco_map([empty], [target], num_classes=2)
    assert scores["map"] == 0.0
    assert scores["per_class"][0] == 0.0 and math.isnan(scores["per_class"][1])


# ---------------------------------------------------------------- VOC, by hand


def test_voc_ap_all_point_interpolation_by_hand():
    # Two objects A, B of class 0. Detections by score: 0.9 on A (TP), 0.8 on nothing (FP),
    # 0.7 on B (TP). Precision/recall points: (1, 1/2), (1/2, 1/2), (2/3, 1).
    # Envelope: recall in (0, 1/2] -> 1; (1/2, 1] -> 2/3. AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    # (11-point interpolation would give (6 * 1 + 5 * 2/3) / 11 = 0.8485 instead.)
    target = ImageTargets(boxes=[[0, 0, 10, 10], [50, 50, 60, 60]], labels=[0, 0], width=100, height=100)
    prediction = ImageDetections(
        boxes=[[0, 0, 10, 10], [80, 0, 90, 10], [50, 50, 60, 60]], scores=[0.9, 0.8, 0.7], labels=[0, 0, 0]
    )
    scores = voc_map([prediction], [target], num_classes=1)
    assert scores["map"] == pytest.approx(5 / 6)
    assert scores["per_class_precision"] == pytest.approx([2 / 3])
    assert scores["per_class_recall"] == pytest.approx([1.0])


def test_voc_ap_pools_images_by_score_and_uses_the_envelope():
    # Three objects over two images. Detections by score, across images:
    # 0.9 TP (img 0), 0.8 FP (img 1), 0.7 FP (img 0), 0.6 TP (img 1), 0.5 TP (img 0).
    # Points (precision, recall): (1, 1/3), (1/2, 1/3), (1/3, 1/3), (1/2, 2/3), (3/5, 1).
    # Envelope (best precision at this recall or more): (0, 1/3] -> 1;
    # (1/3, 2/3] -> max(1/2, 3/5) = 3/5 (not the 1/2 reached there); (2/3, 1] -> 3/5.
    # AP = (1 + 3/5 + 3/5) / 3 = 0.7333 (without the envelope: (1 + 1/2 + 3/5) / 3 = 0.7).
    targets = [
        ImageTargets(boxes=[[0, 0, 10, 10], [20, 20, 30, 30]], labels=[0, 0], width=50, height=50),
        ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], width=50, height=50),
    ]
    predictions = [
        ImageDetections(boxes=[[0, 0, 10, 10], [40, 40, 49, 49], [20, 20, 30, 30]],
                        scores=[0.9, 0.7, 0.5], labels=[0, 0, 0]),
        ImageDetections(boxes=[[30, 0, 40, 10], [0, 0, 10, 10]], scores=[0.8, 0.6], labels=[0, 0]),
    ]
    scores = voc_map(predictions, targets, num_classes=1)
    assert scores["map"] == pytest.approx((1 + 3 / 5 + 3 / 5) / 3)
    recall = np.array([1, 1, 1, 2, 3]) / 3
    precision = np.array([1, 1 / 2, 1 / 3, 1 / 2, 3 / 5])
    assert average_precision(recall, precision) == pytest.approx(scores["map"])


def test_voc_duplicate_detection_is_a_false_positive():
    # 0.9 on A (TP), 0.8 on A again (FP: A is taken), 0.7 on B (TP): as the hand example,
    # AP 5/6 and precision 2/3; counted as a TP the duplicate would make AP 1.
    target = ImageTargets(boxes=[[0, 0, 10, 10], [50, 50, 60, 60]], labels=[0, 0], width=100, height=100)
    prediction = ImageDetections(
        boxes=[[0, 0, 10, 10], [0, 0, 10, 9.5], [50, 50, 60, 60]], scores=[0.9, 0.8, 0.7], labels=[0, 0, 0]
    )
    scores = voc_map([prediction], [target], num_classes=1)
    assert scores["map"] == pytest.approx(5 / 6)
    assert scores["precision"] == pytest.approx(2 / 3)


def test_voc_second_detection_takes_the_next_free_object():
    # B overlaps A's detection at 0.6; once A is matched, the 0.8 detection takes B.
    target = ImageTargets(boxes=[[0, 0, 10, 10], [0, 0, 10, 6]], labels=[0, 0], width=20, height=20)
    prediction = ImageDetections(boxes=[[0, 0, 10, 10], [0, 0, 10, 10]], scores=[0.9, 0.8], labels=[0, 0])
    assert box_iou([[0, 0, 10, 10]], [[0, 0, 10, 6]])[0, 0] == pytest.approx(0.6)
    assert voc_map([prediction], [target], num_classes=1)["map"] == pytest.approx(1.0)


def test_voc_crowd_matches_are_ignored():
    # A normal object and a crowd object. The 0.9 detection lands on the crowd: neither TP
    # nor FP, so the curve is the 0.8 TP alone -> AP 1 (as a FP it would give 1/2).
    boxes = [[0, 0, 10, 10], [40, 40, 90, 90]]
    target = ImageTargets(boxes=boxes, labels=[0, 0], is_crowd=[False, True], width=100, height=100)
    prediction = ImageDetections(boxes=[[40, 40, 90, 90], [0, 0, 10, 10]], scores=[0.9, 0.8], labels=[0, 0])
    scores = voc_map([prediction], [target], num_classes=1)
    assert scores["map"] == pytest.approx(1.0)
    assert scores["recall"] == pytest.approx(1.0) and scores["precision"] == pytest.approx(1.0)
    assert scores["num_ground_truth"] == [1]
    # The same 0.9 detection away from the crowd is a false positive.
    elsewhere = ImageDetections(boxes=[[0, 50, 10, 60], [0, 0, 10, 10]], scores=[0.9, 0.8], labels=[0, 0])
    assert voc_map([elsewhere], [target], num_classes=1)["map"] == pytest.approx(0.5)
    # A missed crowd costs no recall; the same box as an ordinary object does.
    only_a = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.8], labels=[0])
    assert voc_map([only_a], [target], num_classes=1)["recall"] == 1.0
    ordinary = ImageTargets(boxes=boxes, labels=[0, 0], width=100, height=100)
    assert voc_map([only_a], [ordinary], num_classes=1)["recall"] == 0.5


def test_voc_class_with_only_crowds_or_no_ground_truth_is_nan_and_left_out_of_the_mean():
    target = ImageTargets(
        boxes=[[0, 0, 10, 10], [20, 20, 30, 30]], labels=[0, 1], is_crowd=[False, True], width=50, height=50
    )
    prediction = ImageDetections(
        boxes=[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], scores=[0.9, 0.8, 0.7], labels=[0, 1, 2]
    )
    scores = voc_map([prediction], [target], num_classes=4)
    assert scores["per_class"][0] == 1.0
    assert all(math.isnan(v) for v in scores["per_class"][1:])
    assert scores["map"] == 1.0


def test_voc_class_with_ground_truth_but_no_detections_scores_zero():
    target = ImageTargets(boxes=[[0, 0, 10, 10], [20, 20, 30, 30]], labels=[0, 1], width=50, height=50)
    prediction = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0])
    scores = voc_map([prediction], [target], num_classes=2)
    assert scores["per_class"] == [1.0, 0.0]
    assert scores["map"] == 0.5


@pytest.mark.parametrize(
    "width, threshold, matched",
    [(49, 0.5, False), (51, 0.5, True), (50, 0.5, True), (49, 0.4, True), (51, 0.6, False), (100, 1.0, True)],
)
def test_voc_iou_threshold_is_honoured(width, threshold, matched):
    # IoU of [0, 0, w, 100] with [0, 0, 100, 100] is w / 100.
    target = ImageTargets(boxes=[[0, 0, 100, 100]], labels=[0], width=100, height=100)
    prediction = ImageDetections(boxes=[[0, 0, width, 100]], scores=[0.9], labels=[0])
    scores = voc_map([prediction], [target], num_classes=1, iou_threshold=threshold)
    assert scores["map"] == (1.0 if matched else 0.0)
    row = detection_metrics([prediction], [target], num_classes=1, metric_type="voc", iou_threshold=threshold)
    assert row["mean_average_precision"] == (1.0 if matched else 0.0)


# ---------------------------------------------------------------- masks


def _half_masks():
    """A box both agree on; the true mask is its left half, the predicted one its right half."""
    left = np.zeros((1, 20, 20), bool)
    left[0, 0:10, 0:5] = True
    right = np.zeros((1, 20, 20), bool)
    right[0, 0:10, 5:10] = True
    target = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], masks=left, width=20, height=20)
    prediction = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0], masks=right)
    return prediction, target


def test_mask_map_is_lower_when_the_box_matches_but_the_mask_does_not():
    prediction, target = _half_masks()
    assert mask_iou(prediction.masks, target.masks)[0, 0] == 0.0
    assert voc_map([prediction], [target], 1, iou_type="bbox")["map"] == 1.0
    assert voc_map([prediction], [target], 1, iou_type="segm")["map"] == 0.0
    assert coco_map([prediction], [target], 1, iou_type="bbox")["map"] == pytest.approx(1.0)
    assert coco_map([prediction], [target], 1, iou_type="segm")["map"] == 0.0
    row = detection_metrics([prediction], [target], 1, metric_type="coco_voc", segmentation=True)
    assert row["mean_average_precision"] == 1.0 and row["mask_mean_average_precision"] == 0.0
    assert row["coco_map"] == pytest.approx(1.0) and row["mask_coco_map"] == 0.0


def test_mask_iou_counts_pixels():
    a = np.zeros((1, 4, 4), bool)
    a[0, :2] = True  # 8 pixels
    b = np.zeros((2, 4, 4), np.uint8)
    b[0, :, :2] = 1  # 8 pixels, 4 shared with a
    assert mask_iou(a, b).tolist() == [[pytest.approx(4 / 12), 0.0]]


def test_box_iou_by_hand():
    iou = box_iou([[0, 0, 2, 2], [0, 0, 0, 0]], [[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 0, 0]])
    assert iou.tolist() == [[pytest.approx(1 / 3), 0.0, 0.0], [0.0, 0.0, 0.0]]


# ---------------------------------------------------------------- the trainer's row


BASE_KEYS = {
    "mean_average_precision", "precision", "recall",
    "per_class_average_precision", "per_class_precision", "per_class_recall",
}
COCO_KEYS = {
    f"coco_{name}" for name in
    ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
     "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large", "per_class_average_precision"]
}


@pytest.mark.parametrize(
    "metric_type, keys",
    [("none", set()), ("voc", BASE_KEYS), ("coco", BASE_KEYS | COCO_KEYS), ("coco_voc", BASE_KEYS | COCO_KEYS)],
)
@pytest.mark.parametrize("segmentation", [False, True])
def test_detection_metrics_keys_per_metric_type(metric_type, keys, segmentation):
    predictions, targets = _ours(_fixture(0))
    row = detection_metrics(predictions, targets, NUM_CLASSES, metric_type, segmentation=segmentation)
    expected = keys | ({"mask_" + key for key in keys} if segmentation else set())
    assert set(row) == expected
    for key in expected:
        if "per_class" in key:
            assert len(row[key]) == NUM_CLASSES
        else:
            assert isinstance(row[key], float)


def test_detection_metrics_primary_metric_per_type():
    predictions, targets = _ours(_fixture(0))
    voc = voc_map(predictions, targets, NUM_CLASSES, iou_threshold=0.6)
    coco = coco_map(predictions, targets, NUM_CLASSES)
    assert voc["map"] != pytest.approx(coco["map"])  # the fixture tells them apart

    row = detection_metrics(predictions, targets, NUM_CLASSES, "voc", iou_threshold=0.6)
    assert row["mean_average_precision"] == voc["map"]
    np.testing.assert_equal(row["per_class_average_precision"], voc["per_class"])  # nan == nan

    row = detection_metrics(predictions, targets, NUM_CLASSES, "coco", iou_threshold=0.6)
    assert row["mean_average_precision"] == coco["map"] == row["coco_map"]
    assert row["coco_map_50"] == coco["map_50"]
    assert row["precision"] == voc["precision"]  # at the threshold, whatever the type

    row = detection_metrics(predictions, targets, NUM_CLASSES, "coco_voc", iou_threshold=0.6)
    assert row["mean_average_precision"] == voc["map"]
    assert row["coco_map"] == coco["map"]


def test_detection_metrics_rejects_unknown_type_and_threshold():
    prediction, target = _half_masks()
    with pytest.raises(ValueError, match="validation_metric_type.*'map'"):
        detection_metrics([prediction], [target], 1, metric_type="map")
    with pytest.raises(ValueError, match="validation_iou_threshold"):
        detection_metrics([prediction], [target], 1, iou_threshold=0.0)


# ---------------------------------------------------------------- inputs


def test_inputs_are_checked():
    target = ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], width=20, height=20)
    prediction = ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0])
    with pytest.raises(ValueError, match="2 predictions for 1 images"):
        voc_map([prediction, prediction], [target], 1)
    with pytest.raises(ValueError, match="label 1 >= num_classes 1"):
        voc_map([ImageDetections(boxes=[[0, 0, 1, 1]], scores=[0.5], labels=[1])], [target], 1)
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        ImageDetections(boxes=[[0, 0, 10]], scores=[0.9], labels=[0])
    with pytest.raises(ValueError, match=r"scores must have shape \[1\]"):
        ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9, 0.8], labels=[0])
    with pytest.raises(ValueError, match="x2 >= x1"):
        ImageTargets(boxes=[[10, 0, 0, 10]], labels=[0], width=20, height=20)
    with pytest.raises(ValueError, match="is_crowd"):
        ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], is_crowd=[False, True], width=20, height=20)
    with pytest.raises(ValueError, match="masks"):
        ImageTargets(boxes=[[0, 0, 10, 10]], labels=[0], masks=np.zeros((1, 10, 10), bool), width=20, height=20)
    with pytest.raises(ValueError, match="soft masks"):
        ImageDetections(boxes=[[0, 0, 10, 10]], scores=[0.9], labels=[0], masks=np.full((1, 20, 20), 0.7))
    with pytest.raises(ValueError, match="needs masks"):
        voc_map([prediction], [target], 1, iou_type="segm")


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    target = ImageTargets(boxes=torch.tensor([[0, 0, 10, 10]]), labels=torch.tensor([0]),
                          is_crowd=torch.tensor([False]), width=20, height=20)
    prediction = ImageDetections(boxes=torch.tensor([[0, 0, 10, 10]]), scores=torch.tensor([0.9]),
                                 labels=torch.tensor([0]), masks=torch.zeros((1, 20, 20), dtype=torch.uint8))
    assert detection_metrics([prediction], [target], 1)["mean_average_precision"] == 1.0
