"""Nothing a user hands us runs: every checkpoint is read with ``torch.load(weights_only=True)``.

A pickle whose ``__reduce__`` would write a file is refused with a message naming the file and
the object, by every path that loads a checkpoint (the predictor, ``load_best_model``, a resumed
trial's ``last.pt``, ``checkpoint_run_id``); the marker file is never written. Our own
checkpoints hold plain data only, so they load this way.
"""

import builtins
import pickle

import numpy as np
import pytest
import torch

from automl_nb.errors import RunFolderError
from automl_nb.infer import Predictor
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train.folder import BEST_CHECKPOINT, LAST_CHECKPOINT, TrialFolder, load_checkpoint_file
from automl_nb.train.restore import load_best_model
from automl_nb.train.trainer import run_trial
from automl_nb.train.trial import Trial


class WritesAFile:
    """Unpickling this calls ``open(marker, "w")``: code that runs on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran.txt"
    yield path
    assert not path.exists(), "unpickling the checkpoint ran its code"


def plant(folder, name, payload):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(payload, folder / name)
    return folder / name


def hostile(marker):
    return {"model": {"weight": torch.zeros(2)}, "task": "image_classification", "params": {},
            "labels": ["a", "b"], "hook": WritesAFile(marker)}


REFUSED = r"refused: it holds a Python object \(io\.open\).*could run code"


def test_the_predictor_refuses_a_pickle_that_runs_code(tmp_path, marker):
    plant(tmp_path / "trial", BEST_CHECKPOINT, hostile(marker))
    with pytest.raises(RunFolderError, match=rf"trial/model_best\.pt: {REFUSED}"):
        Predictor.from_trial(tmp_path / "trial")


def test_load_best_model_refuses_it(tmp_path, marker):
    plant(tmp_path / "trial", BEST_CHECKPOINT, hostile(marker))
    with pytest.raises(RunFolderError, match=rf"model_best\.pt: {REFUSED}"):
        load_best_model(tmp_path / "trial")


def test_a_resume_point_is_refused_too(tmp_path, marker):
    plant(tmp_path / "trial", LAST_CHECKPOINT, {"epoch": 1, "rng": WritesAFile(marker)})
    with pytest.raises(RunFolderError, match=rf"last\.pt: {REFUSED}"):
        TrialFolder(tmp_path / "trial").load_checkpoint(LAST_CHECKPOINT)


def test_checkpoint_run_id_refuses_it_before_training(multiclass_data, tmp_path, marker):
    source = plant(tmp_path / "elsewhere", "weights.pt", hostile(marker))
    trial = Trial(trial_id="0", task="image_classification", training_data=str(multiclass_data.parent),
                  parameters={**FAST_CLASSIFICATION, "number_of_epochs": 1, "checkpoint_run_id": str(source)},
                  output_dir=str(tmp_path / "out"))
    with pytest.raises(RunFolderError, match=rf"weights\.pt: {REFUSED}"):
        run_trial(trial)
    assert TrialFolder(tmp_path / "out").metrics() == []  # it never trained an epoch


@pytest.mark.parametrize("payload, message", [
    ({"rng": np.random.get_state()}, r"refused: .*numpy"),  # a numpy array: a global weights_only won't call
    ([torch.zeros(1)], r"not a checkpoint: expected a dict .* found list"),
])
def test_other_content_is_refused_or_named(tmp_path, payload, message):
    with pytest.raises(RunFolderError, match=message):
        load_checkpoint_file(plant(tmp_path, "x.pt", payload))


@pytest.mark.parametrize("content, message", [
    (None, r"x\.pt: no such checkpoint file"),
    (b"", r"x\.pt: damaged or not a torch checkpoint"),
    (b"not a checkpoint", r"x\.pt: damaged or not a torch checkpoint"),
    ("truncated", r"x\.pt: damaged or not a torch checkpoint .*RuntimeError"),
    (pickle.dumps({"a": 1}, protocol=2), r"x\.pt: damaged or not a torch checkpoint"),  # a plain pickle
])
def test_a_damaged_checkpoint_is_named(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content == "truncated":
        torch.save({"model": {"w": torch.ones(100)}}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(RunFolderError, match=message):
        load_checkpoint_file(path)


def test_our_checkpoints_hold_plain_data_numpy_numbers_included(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "metric": np.float64(0.5), "epoch": np.int64(3),
             "rng": {"numpy": np.random.get_state(), "python": (3, (1, 2), None)}}
    folder = TrialFolder(tmp_path)
    folder.save_checkpoint(LAST_CHECKPOINT, state)
    loaded = folder.load_checkpoint(LAST_CHECKPOINT)
    assert loaded["metric"] == 0.5 and type(loaded["metric"]) is float and loaded["epoch"] == 3
    assert loaded["rng"]["numpy"][1] == state["rng"]["numpy"][1].tolist()
    assert loaded["rng"]["python"] == (3, (1, 2), None)
    saved = np.random.get_state()
    try:  # the stored numpy state restores the generator as the array did
        np.random.set_state(loaded["rng"]["numpy"])
        first = np.random.rand(3)
        np.random.set_state(state["rng"]["numpy"])
        assert (np.random.rand(3) == first).all()
    finally:
        np.random.set_state(saved)
