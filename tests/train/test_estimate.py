"""Timing one configuration: a real tiny classifier timed as a trial runs it, the cache, the
timing process's protocol, and the memory arithmetic behind "the batch that would fit"."""

import json
from dataclasses import replace

import pytest

from automl_nb.data.mltable import load_records
from automl_nb.data.records import ImageRecord, class_names
from automl_nb.data.split import split_records
from automl_nb.data.synthetic import make_dataset
from automl_nb.spec import resolve_parameters
from automl_nb.train.estimate import (
    StepTiming, TimingCache, TimingRequest, main, make_request, time_requests, timing_key,
)

TASK = "image_classification"
TINY = {"model_name": "resnet18", "use_pretrained_model": False, "training_crop_size": 32,
        "validation_resize_size": 32, "validation_crop_size": 32, "training_batch_size": 8,
        "validation_batch_size": 8}


@pytest.fixture(scope="module")
def request_of_tiny(tmp_path_factory):
    """A resnet18 at a 32 px crop, batch 8, over 24 synthetic images."""
    folder = make_dataset(TASK, 24, 32, tmp_path_factory.mktemp("shapes"), seed=0).parent
    records = load_records(str(folder), TASK)
    train, valid = split_records(records, TASK, 0.25)
    return make_request(TASK, resolve_parameters(TASK, TINY), class_names(records), train, valid)


def test_a_request_samples_enough_records_and_round_trips_through_json(request_of_tiny):
    assert len(request_of_tiny.train_records) == 8 * 4  # warm-up + 3 timed steps, the 18 images repeated
    assert len(request_of_tiny.valid_records) == 8 * 3
    assert TimingRequest.from_json(json.loads(json.dumps(request_of_tiny.to_json()))) == request_of_tiny


def test_the_timing_process_times_each_request_and_reports_one_that_cannot_run(request_of_tiny, tmp_path):
    missing = ImageRecord(str(tmp_path / "missing.png"), "circle")
    broken = replace(request_of_tiny, train_records=(missing,) * 32)
    (tmp_path / "requests.json").write_text(json.dumps(
        {"device": "cpu", "threads": 1, "requests": [request_of_tiny.to_json(), broken.to_json()]}))
    assert main([str(tmp_path / "requests.json"), str(tmp_path / "results.json")]) == 0
    written = json.loads((tmp_path / "results.json").read_text())
    timed, failed = written["results"]
    timing = StepTiming.from_json(timed["timing"])
    assert timing.train_step_seconds > 0 and timing.validation_step_seconds > 0 and timing.checkpoint_seconds > 0
    assert (timing.training_batch_size, timing.validation_batch_size, timing.threads) == (8, 8, 1)
    assert timing.memory_kind == "rss" and timing.samples_per_image == 1.0 and timing.device.startswith("cpu")
    # Weights, their gradients and SGD's momentum: three copies of resnet18's 11.2M float32 parameters.
    assert 3 * 11_000_000 * 4 < timing.static_memory_bytes <= timing.peak_memory_bytes
    assert "missing.png" in failed["error"] and written["startup_seconds"] >= 0


def test_a_configuration_that_cannot_run_is_reported_and_timed_again_next_time(request_of_tiny, tmp_path):
    # A timing is cached (a test in tests/sweep/test_sweep_estimate.py shows a hit is not timed again);
    # an error is not: the data may be fixed by the next estimate.
    broken = replace(request_of_tiny, train_records=(ImageRecord(str(tmp_path / "gone.png"), "circle"),) * 32)
    cache = TimingCache(tmp_path / "timings.json")
    for _ in range(2):
        timed = time_requests([broken], device="cpu", threads=1, cache=cache, isolated=False)
        assert timed.measured == 1 and "gone.png" in timed.results[0]
    assert not cache.path.exists()


def test_the_cache_key_holds_what_changes_a_step_and_nothing_else():
    params = resolve_parameters(TASK, TINY)
    key = timing_key(TASK, params, 3, "cpu", 1)
    assert timing_key(TASK, {**params, "learning_rate": 0.5, "number_of_epochs": 40}, 3, "cpu", 1) == key
    for changed in ({**params, "training_batch_size": 16}, {**params, "training_crop_size": 64},
                    {**params, "model_name": "mobilenetv2"}):
        assert timing_key(TASK, changed, 3, "cpu", 1) != key
    assert timing_key(TASK, params, 3, "cpu", 2) != key and timing_key(TASK, params, 4, "cpu", 1) != key
    assert timing_key(TASK, params, 3, "cpu", 1, copies=2) != key  # two trials side by side run slower


def test_a_damaged_cache_file_counts_as_empty_and_is_rewritten(request_of_tiny, tmp_path):
    path = tmp_path / "timings.json"
    path.write_text('{"version": 1, "timings": {"k": ')
    cache = TimingCache(path)
    assert cache.get("k") is None and cache.startup_seconds("cpu") is None
    cache.put({"k": timing_of(peak=100, static=40, batch=8)}, startup_seconds=4.5)
    assert cache.get("k") == timing_of(peak=100, static=40, batch=8) and cache.startup_seconds("cpu") == 4.5


def test_a_cache_with_a_max_age_treats_older_timings_as_missing(tmp_path):
    path = tmp_path / "timings.json"
    TimingCache(path).put({"old": timing_of(peak=100, static=40, batch=8), "new": timing_of(peak=200, static=40, batch=8)})
    data = json.loads(path.read_text())
    data["timings"]["old"]["measured"] -= 7200  # two hours ago
    path.write_text(json.dumps(data))
    recent = TimingCache(path, max_age_seconds=3600)
    assert recent.get("old") is None and recent.get("new") == timing_of(peak=200, static=40, batch=8)
    assert TimingCache(path).get("old") == timing_of(peak=100, static=40, batch=8)  # no max age: any age


def timing_of(peak: int, static: int, batch: int) -> StepTiming:
    return StepTiming(train_step_seconds=0.2, validation_step_seconds=0.1, training_batch_size=batch,
                      validation_batch_size=batch, build_seconds=0.5, checkpoint_seconds=0.1, peak_memory_bytes=peak,
                      static_memory_bytes=static, memory_kind="rss", device_memory_bytes=10_000)


def test_the_batch_that_fits_halves_the_batch_as_an_out_of_memory_retry_does():
    timing = timing_of(peak=1000 + 64 * 50, static=1000, batch=64)  # 50 bytes of activations per image
    assert timing.memory_at(16) == 1000 + 16 * 50
    assert timing.batch_that_fits(10_000) == 64
    assert timing.batch_that_fits(1000 + 20 * 50) == 16
    assert timing.batch_that_fits(1000 + 50) == 1
    assert timing.batch_that_fits(999) is None  # the weights alone do not fit
