"""The inference settings a prediction reads are inference settings of its task."""

import pytest

from automl_nb.spec import PARAMETERS, TASKS
from automl_nb.spec.inference import INFERENCE_KEYS, PREDICTION_KEYS, TILING_KEYS


@pytest.mark.parametrize("task", TASKS)
def test_prediction_keys_are_inference_settings_of_their_task(task):
    assert set(PREDICTION_KEYS) == set(TASKS)
    for key in PREDICTION_KEYS[task]:
        assert key in INFERENCE_KEYS and task in PARAMETERS[key].tasks, key


def test_tiling_keys_belong_with_the_tile_grid():
    for key in TILING_KEYS:
        assert key in INFERENCE_KEYS and PARAMETERS[key].tasks == PARAMETERS["tile_grid_size"].tasks
