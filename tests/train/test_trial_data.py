"""A trial refuses data that the pre-flight check would refuse, for a run submitted with
``check_data=False`` (or a trial run on its own)."""

import json

import pytest

from automl_nb.errors import DataError
from automl_nb.testing import FAST_CLASSIFICATION
from automl_nb.train.folder import TrialFolder
from automl_nb.train.trainer import run_trial
from automl_nb.train.trial import Trial


def test_a_validation_class_never_seen_in_training_stops_the_trial_before_it_trains(multiclass_data, tmp_path):
    first = json.loads(multiclass_data.read_text().splitlines()[0])
    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps({**first, "image_url": str(multiclass_data.parent / first["image_url"]),
                                 "label": "zebra"}) + "\n")
    trial = Trial(trial_id="0", task="image_classification", training_data=str(multiclass_data),
                  validation_data=str(valid), parameters={**FAST_CLASSIFICATION, "number_of_epochs": 1},
                  output_dir=str(tmp_path / "out"))
    with pytest.raises(DataError, match=r"valid\.jsonl:1: validation label 'zebra' is in no training image"):
        run_trial(trial)
    assert TrialFolder(tmp_path / "out").metrics() == []
