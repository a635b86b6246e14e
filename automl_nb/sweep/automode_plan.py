"""What AutoMode fits to the data and the time budget: image sizes, batch, epochs, early termination.

The spec's defaults suit photographs of 224 px and more, pretrained weights and a GPU. On small
images (digits, faces, tiles of 32-128 px) they upscale every image to 224 px crops (or 600 px for
detection), which costs ~50x the compute of the image's own size and, from random weights, learns
worse too; and their 15 epochs ignore the job's ``timeout_minutes``. AutoMode therefore fixes,
per portfolio model (see docs/automode.md):

- **sizes** from the images' median shorter side (:func:`fitted_sizes`): below ``SMALL_SIDE``
  pixels, classification crops of twice the image's side (at least ``MIN_CROP``, at most the
  default crop); below ``SMALL_DETECTION_SIDE``, detection
  at the image's own size, scaled up where its objects are smaller than the smallest anchor;
- **the batch** from the image count (:func:`fitted_batch`): small data gets smaller batches, so
  an epoch still holds enough optimizer steps;
- **epochs** from the budget (:func:`planned_epochs`) when the job's estimate has timed an epoch,
  and on a local CPU cluster **one trial at a time on all the cores** (:func:`planned_concurrency`)
  when the budget is too short for a useful trial in every slot;
- **early termination** (:func:`automode_policy`) when the job names none.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from automl_nb.spec import CLASSIFICATION_TASKS, MedianStoppingPolicy, default_value, get_parameter

# Images whose median shorter side is below this many pixels get sizes fitted to them (the
# defaults: classification crops of 224, detection min_size 600).
SMALL_SIDE = 112
SMALL_DETECTION_SIDE = 300
MIN_CROP = 64
MIN_DETECTION_SIZE = 128
# torchvision's R-CNN anchors start at 32 px: smaller objects are scaled up towards it.
SMALLEST_ANCHOR = 32
MAX_DETECTION_SCALE = 2.0
# Proposals sampled per image to train R-CNN heads on small images (torchvision's default: 512).
SMALL_IMAGE_PROPOSALS = 64
# Header reads to learn the image size when the labels do not say it.
PROFILE_SAMPLE = 64
# Classification batches hold at most 1/STEPS_PER_EPOCH of the images (at least MIN_BATCH).
STEPS_PER_EPOCH = 16
MIN_BATCH = 16
# Each concurrent slot finishes up to this many trials, of at least USEFUL_EPOCHS epochs where the
# budget allows, in BUDGET_SHARE of it (the rest absorbs start-up and estimate error).
TRIALS_PER_SLOT = 2
BUDGET_SHARE = 0.8
USEFUL_EPOCHS = 10
# One CPU trial given k times the threads runs an epoch about k x THREAD_EFFICIENCY times faster
# (measured on 2 cores, 2 threads against 1: resnet18 1.72x, resnet34 1.64x, mobilenetv2 1.53x).
THREAD_EFFICIENCY = 0.8
# The plan takes cached step timings at most this old (an estimate just before the run makes it
# free); older ones are timed again: bench/quality's digit pairs planned 8 epochs instead of 10,
# and reached 0.934 instead of 0.954, from timings cached hours earlier on a busy machine.
TIMING_MAX_AGE_SECONDS = 3600.0
# From random weights a model keeps learning past the spec's 15 epochs (fitted to pretrained
# fine-tuning), so a generous budget may plan up to this many.
MAX_EPOCHS_FROM_SCRATCH = 40


@dataclass(frozen=True)
class DataProfile:
    """What AutoMode knows of the data before it trains.

    Attributes:
        n_images: training images (with validation ones when given separately).
        side: the median shorter side of the images in pixels; None when unknown.
    """

    n_images: int
    side: int | None = None
    object_side: float | None = None


def data_profile(records: Sequence, reader=None) -> DataProfile:
    """The :class:`DataProfile` of records: their count, median shorter side and median object side.

    Sizes come from the records (``image_details``) where known, else from the headers of up to
    ``PROFILE_SAMPLE`` images spread over the list (no pixels are decoded). An image that cannot
    be read is left out; with none readable the sides are None. An object's side is the square
    root of its box's area in pixels.
    """
    from automl_nb.data.images import image_size

    reader = reader or image_size
    sized = [(r, (r.width, r.height)) for r in records if r.width and r.height]
    if not sized and records:
        step = max(1, len(records) // PROFILE_SAMPLE)
        for record in list(records)[::step][:PROFILE_SAMPLE]:
            try:
                sized.append((record, reader(record.image_url)))
            except (OSError, ValueError):
                continue
    sides = [min(size) for _, size in sized]
    objects = [math.sqrt((o.bottom_x - o.top_x) * width * (o.bottom_y - o.top_y) * height)
               for record, (width, height) in sized for o in record.objects]
    return DataProfile(len(records), int(statistics.median(sides)) if sides else None,
                       round(statistics.median(objects), 1) if objects else None)


def _round_up(value: float, multiple: int = 32) -> int:
    return int(math.ceil(value / multiple) * multiple)


def fitted_sizes(task: str, model: str, side: int | None, object_side: float | None = None) -> dict[str, Any]:
    """The image-size keys fitted to images of ``side`` pixels; empty when the defaults fit.

    Classification crops are twice the image's side (rounded up to 32), at least ``MIN_CROP`` and
    at most the default crop: at the image's own size a stride-32 network ends on a 2x2 map for 64 px
    (measured on the 64 px digit pairs of ``bench/quality``: IoU 0.90 at 64 px crops in 20 epochs;
    a hand-written loop with a CIFAR-style stem, whose feature maps match a 2x crop, 0.95). Detection keeps the image's own size, scaled
    up (at most ``MAX_DETECTION_SCALE`` times) where its objects are smaller than the detectors'
    smallest anchors (``SMALLEST_ANCHOR`` pixels), and R-CNN heads sample fewer proposals
    (``SMALL_IMAGE_PROPOSALS``): small images hold few objects.

    Example:
        >>> fitted_sizes("image_classification", "resnet18", 32)
        {'training_crop_size': 64, 'validation_crop_size': 64, 'validation_resize_size': 64}
    """
    if side is None:
        return {}
    if task in CLASSIFICATION_TASKS:
        if side >= SMALL_SIDE:
            return {}
        crop = min(default_value("training_crop_size", task, model), max(MIN_CROP, _round_up(2 * side)))
        # Resize straight to the crop: small images are framed tightly, a border crop loses content.
        return {"training_crop_size": crop, "validation_crop_size": crop, "validation_resize_size": crop}
    if side >= SMALL_DETECTION_SIDE:
        return {}
    scale = min(MAX_DETECTION_SCALE, max(1.0, SMALLEST_ANCHOR / object_side)) if object_side else 1.0
    size = max(MIN_DETECTION_SIZE, _round_up(scale * side))
    if get_parameter("min_size").applies_to(task, model):
        ratio = default_value("max_size", task, model) / default_value("min_size", task, model)
        proposals = json.dumps({"box_batch_size_per_image": SMALL_IMAGE_PROPOSALS})
        return {"min_size": size, "max_size": _round_up(size * ratio), "advanced_settings": proposals}
    if get_parameter("image_size").applies_to(task, model):
        return {"image_size": size}
    return {}


def fitted_batch(task: str, model: str, n_images: int) -> dict[str, int]:
    """A classification batch small enough for ``STEPS_PER_EPOCH`` steps; empty when the default is.

    Example:
        >>> fitted_batch("image_classification", "resnet18", 300)
        {'training_batch_size': 16}
    """
    if task not in CLASSIFICATION_TASKS:
        return {}
    default = default_value("training_batch_size", task, model)
    batch = max(MIN_BATCH, 2 ** int(math.log2(max(n_images // STEPS_PER_EPOCH, 1))))
    return {"training_batch_size": batch} if batch < default else {}


def planned_epochs(epoch_seconds: float, *, budget_seconds: float, concurrency: int, max_trials: int,
                   most: int) -> int:
    """Epochs per trial that let each slot finish up to ``TRIALS_PER_SLOT`` trials in the budget.

    A slot runs fewer, longer trials when the budget holds fewer than ``USEFUL_EPOCHS`` epochs
    for each: a short trial from random weights tells little, and the first trial of a slot is
    the portfolio's strongest guess (measured on the digits of ``bench/quality``: 6 epochs of
    resnet18 reached 0.988, a hand-written loop with all the budget for one model 0.990).

    Args:
        epoch_seconds: one epoch of the model, as its trials run side by side (estimated).
        budget_seconds: the sweep's time budget.
        concurrency: trials at once.
        max_trials: the sweep's trial limit (fewer trials get more epochs each).
        most: the cap (the spec default with pretrained weights, more from scratch).

    Returns:
        An int in [1, most].

    Example:
        >>> planned_epochs(10.0, budget_seconds=600, concurrency=2, max_trials=8, most=40)
        24
    """
    epochs_per_slot = BUDGET_SHARE * budget_seconds / max(epoch_seconds, 1e-6)
    trials_per_slot = max(1, min(TRIALS_PER_SLOT, math.ceil(max_trials / max(concurrency, 1)),
                                 int(epochs_per_slot // USEFUL_EPOCHS)))
    return max(1, min(int(epochs_per_slot / trials_per_slot), most))


def planned_concurrency(epoch_seconds: float, *, budget_seconds: float, concurrency: int) -> int:
    """Trials at once: the job's ``concurrency``, or 1 when a slot's budget holds fewer than ``USEFUL_EPOCHS`` epochs.

    On a CPU the cores are split between the concurrent trials. When the budget is that short,
    several starved trials tell less than one given all the cores (measured on the digit pairs of
    ``bench/quality``: the second slot's trial ended at IoU 0.28 while the first was cut short).

    Args:
        epoch_seconds: one epoch of the portfolio's first model at ``concurrency`` (estimated).
        budget_seconds: the sweep's time budget.
        concurrency: the job's ``max_concurrent_trials``.

    Example:
        >>> planned_concurrency(60.0, budget_seconds=300, concurrency=2)
        1
    """
    if concurrency > 1 and BUDGET_SHARE * budget_seconds / max(epoch_seconds, 1e-6) < USEFUL_EPOCHS:
        return 1
    return concurrency


def with_threads(epoch_seconds: float, threads: int, more_threads: int) -> float:
    """An epoch's seconds for a CPU trial given ``more_threads`` instead of ``threads`` (``THREAD_EFFICIENCY``).

    Example:
        >>> with_threads(16.0, 1, 2)
        10.0
    """
    if more_threads <= threads:
        return epoch_seconds
    return epoch_seconds * threads / (more_threads * THREAD_EFFICIENCY)


def epoch_cap(task: str, model: str, fixed: Mapping[str, Any]) -> int:
    """The most epochs AutoMode plans: the spec default, or ``MAX_EPOCHS_FROM_SCRATCH`` from random weights."""
    pretrained = fixed.get("use_pretrained_model", default_value("use_pretrained_model", task, model))
    return int(default_value("number_of_epochs", task, model)) if pretrained else MAX_EPOCHS_FROM_SCRATCH


def automode_policy(epochs: int) -> MedianStoppingPolicy:
    """AutoMode's early termination when the job names none: median stopping after a third of the epochs.

    Median stopping rather than bandit: a strongly augmented trial starts slower and finishes
    higher, and a bandit's fixed slack from the best cuts it early; the median of running
    averages waits for it.
    """
    return MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=max(2, epochs // 3))
