"""``distributed: true``: one trial on 2 CPU processes with DDP (gloo) against the same trial on one process."""

import dataclasses
import functools
import os
import signal

import pytest
import torch

from automl_nb.errors import AutoMLError, TrialError
from automl_nb.testing import FAST_CLASSIFICATION, RecordingReporter
from automl_nb.train import Trial, run_trial
from automl_nb.train.distributed import PROCESSES_VARIABLE, check_node_count, processes_for_trial, run_distributed_trial
from automl_nb.train.folder import TrialFolder
from automl_nb.train.ranks import StepBatchSampler
from automl_nb.train.trainer import rank_random_state

# Tolerances of "the same loss curve" (relative, per evaluated epoch), and why they differ:
# - classifier with its convolutional trunk frozen (batch norm in eval mode): every step sees the
#   same images and DDP averages the same gradients, so only the order of float sums differs;
# - detector: its RPN and box heads draw their training samples from each rank's own random
#   stream, and batch norm normalises each rank's half batch: measured 0.1-2.7% apart here
#   (0.1-7.6% at 48 px).
CLASSIFIER_TOLERANCE = 1e-4
DETECTOR_TOLERANCE = 0.15


class OwnFolderAbove0:
    """What each rank runs: the ordinary rank function, but ranks above 0 get a folder of their own,
    which stays absent if they write nothing."""

    def __init__(self, folder):
        self.folder = str(folder)

    def __call__(self, trial, reporter, ranks):
        from automl_nb.train.trainer import run_trial_rank

        if ranks.rank:
            trial = dataclasses.replace(trial, output_dir=f"{self.folder}-{ranks.rank}")
        return run_trial_rank(trial, reporter, ranks)


class FailOnRank:
    """A rank function: rank ``rank`` fails at once (``how``: raise CUDA's out-of-memory error, or
    be killed); the others wait in a barrier that the failed rank never reaches."""

    def __init__(self, rank, how):
        self.rank, self.how = rank, how

    def __call__(self, trial, reporter, ranks):
        import torch.distributed as dist

        if ranks.rank == self.rank:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        dist.barrier()  # only the parent can end this wait


def _relative_gaps(one, two, keys):
    return {(row["epoch"], key): abs(row[key] - other[key]) / abs(row[key])
            for row, other in zip(one, two) for key in keys}


@pytest.mark.slow
def test_two_processes_follow_the_one_process_loss_curve_and_stop_together(multiclass_data, tmp_path,
                                                                          monkeypatch):
    torch.set_num_threads(1)  # the two ranks get one thread each
    parameters = {**FAST_CLASSIFICATION, "number_of_epochs": 3, "augmentation": "none", "learning_rate": 0.02,
                  "layers_to_freeze": 5, "distributed": True}

    def trial(name):
        return Trial(trial_id="0", task="image_classification", parameters=parameters,
                     training_data=str(multiclass_data), output_dir=str(tmp_path / name), validation_data_size=0.25)

    monkeypatch.setenv(PROCESSES_VARIABLE, "1")  # one process: the ordinary loop
    one = TrialFolder(run_trial(trial("one")).output_dir).metrics()
    monkeypatch.setenv(PROCESSES_VARIABLE, "2")
    reporter = RecordingReporter(stop_after=2)
    result = run_trial(trial("two"), reporter)
    two = TrialFolder(result.output_dir).metrics()

    # 60 training images in global batches of 16 (8 a rank): 3 full steps and a last one of 12 (6 a rank).
    assert [row["epoch"] for row in two] == [1, 2] and result.status == "Canceled"  # both ranks stopped at once
    assert reporter.rows == two  # rank 0's reports reached the reporter in this process
    gaps = _relative_gaps(one, two, ("train_loss", "validation_loss"))
    assert max(gaps.values()) < CLASSIFIER_TOLERANCE, gaps
    assert one[1]["train_loss"] < one[0]["train_loss"]  # the curve moves: equal curves are not two flat lines
    assert [row["accuracy"] for row in two] == [row["accuracy"] for row in one[:2]]
    assert TrialFolder(result.output_dir).read_json("status.json")["status"] == "Canceled"
    # The resume point keeps each rank's random streams (each draws its own augmentations), rank 0's first.
    saved = TrialFolder(result.output_dir).load_checkpoint("last.pt", torch.device("cpu"))["rng"]
    assert len(saved["ranks"]) == 2 and torch.equal(saved["torch"], saved["ranks"][0]["torch"])
    assert not torch.equal(saved["ranks"][0]["torch"], saved["ranks"][1]["torch"])


def test_each_rank_resumes_its_own_random_streams():
    states = [{"torch": "rank 0's"}, {"torch": "rank 1's"}]
    saved = {**states[0], "ranks": states, "loader": "the loader's"}
    assert [rank_random_state(saved, rank, 2) for rank in (0, 1)] == states
    before = {"torch": "rank 0's", "loader": "the loader's"}  # one process, or before ranks kept theirs
    assert rank_random_state(before, 0, 2) is before and rank_random_state(before, 1, 2) is None
    assert rank_random_state(saved, 0, 3) is saved and rank_random_state(saved, 2, 3) is None  # more ranks now


@pytest.mark.slow
def test_a_detector_follows_the_one_process_loss_curve_and_only_rank_0_writes(tmp_path):
    from automl_nb.data.synthetic import make_dataset
    from automl_nb.spec import DETECTION

    torch.set_num_threads(1)
    data = make_dataset(DETECTION, 10, 32, tmp_path / "data", seed=0)
    parameters = {"model_name": "fasterrcnn_resnet18_fpn", "use_pretrained_model": False, "min_size": 32,
                  "max_size": 32, "number_of_epochs": 2, "training_batch_size": 8, "validation_batch_size": 2,
                  "learning_rate": 0.005, "random_seed": 0, "early_stopping": False,
                  "advanced_settings": '{"apply_automl_train_augmentations": false, "box_batch_size_per_image": 32}'}

    def trial(name):
        return Trial(trial_id="0", task=DETECTION, parameters=parameters, training_data=str(data),
                     output_dir=str(tmp_path / name), validation_data_size=0.2)

    one = TrialFolder(run_trial(trial("one")).output_dir).metrics()
    (tmp_path / "two").mkdir()
    result = run_distributed_trial(trial("two"), RecordingReporter(), 2,
                                   rank_function=OwnFolderAbove0(tmp_path / "two"))
    folder = TrialFolder(result.output_dir)
    two = folder.metrics()

    assert [row["epoch"] for row in two] == [1, 2] and result.status == "Completed"
    gaps = _relative_gaps(one, two, ("train_loss", "validation_loss"))
    assert max(gaps.values()) < DETECTOR_TOLERANCE, gaps
    assert all(rows[1]["validation_loss"] < rows[0]["validation_loss"] for rows in (one, two))  # both learn
    assert all(folder.has(name) for name in ("params.json", "model_best.pt", "status.json", "predictions.jsonl"))
    assert not (tmp_path / "two-1").exists()  # rank 1 wrote nothing


@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_fails_the_trial_with_its_error_and_ends_the_others(tmp_path, how):
    from automl_nb.sweep.worker import execute_trial

    trial = Trial(trial_id="0", task="image_classification", parameters={}, training_data="unused",
                  output_dir=str(tmp_path))
    run = functools.partial(run_distributed_trial, processes=2, rank_function=FailOnRank(1, how))
    outcome = execute_trial(trial, RecordingReporter(), run)  # as a Dask worker runs it; rank 0 waits forever else
    assert outcome["status"] == "Failed"
    if how == "raise":
        assert outcome["error"] == ("OutOfMemoryError: rank 1 of 2: OutOfMemoryError: CUDA out of memory. "
                                    "Tried to allocate 2.00 GiB")
        assert outcome["out_of_memory"]  # the sweep retries it with a smaller batch
        assert "in __call__" in outcome["traceback"] and "raise torch.OutOfMemoryError" in outcome["traceback"]
    else:
        assert outcome["error"].startswith("TrialError: rank 1 of 2 died: killed by SIGKILL")


def test_each_step_takes_the_one_process_batch_cut_between_the_ranks():
    order = list(range(23))[::-1]
    for batch, world in [(8, 2), (9, 2), (6, 3)]:
        ranks = [list(StepBatchSampler(order, batch, rank, world)) for rank in range(world)]
        assert len({len(batches) for batches in ranks}) == 1  # every rank steps as often
        assert all(len(StepBatchSampler(order, batch, 0, world)) == len(batches) for batches in ranks)
        steps = [sum(parts, []) for parts in zip(*ranks)]
        step_size = batch // world * world
        full = len(order) // step_size
        assert steps[:full] == [order[i * step_size:(i + 1) * step_size] for i in range(full)]
        rest = order[full * step_size:]
        if len(rest) // world >= 2:  # the short last step: equal slices, the odd samples left out
            assert steps[full] == rest[:len(rest) // world * world]
        else:
            assert len(steps) == full
    with pytest.raises(TrialError, match=r"^training_batch_size: 8 over 4 processes leaves no batch .* 3 training "):
        StepBatchSampler([0, 1, 2], 8, 0, 4)


def test_the_number_of_processes_comes_from_the_variable_else_the_trials_cores():
    assert processes_for_trial({PROCESSES_VARIABLE: "3"}) == 3
    if not torch.cuda.is_available():
        torch.set_num_threads(2)
        assert processes_for_trial({}) == 2
    with pytest.raises(AutoMLError, match=rf"^{PROCESSES_VARIABLE}: 'two' is not a number of processes; allowed: "):
        processes_for_trial({PROCESSES_VARIABLE: "two"})


def test_a_trial_on_several_machines_is_refused_with_what_is_supported():
    check_node_count({"node_count_per_trial": "1"})
    with pytest.raises(AutoMLError, match=r"^properties.node_count_per_trial: '2' asks for each trial on several "
                                          r"machines, .* allowed: 1"):
        check_node_count({"node_count_per_trial": "2"})
