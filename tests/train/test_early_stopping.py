import pytest

from automl_nb.train.early_stopping import EarlyStopping


def run(stopper, metrics):
    """Index (1-based) of the evaluation at which the stopper says stop, or None."""
    for i, metric in enumerate(metrics, start=1):
        if stopper.update(metric):
            return i
    return None


def test_stops_after_patience_evaluations_without_gain():
    assert run(EarlyStopping(patience=2, delay=0), [0.5, 0.6, 0.6, 0.55, 0.9]) == 4


def test_delay_ignores_early_evaluations():
    # Without the delay the flat start would stop the trial at evaluation 3.
    metrics = [0.5, 0.5, 0.5, 0.6, 0.7, 0.7, 0.7]
    assert run(EarlyStopping(patience=2, delay=0), metrics) == 3
    assert run(EarlyStopping(patience=2, delay=3), metrics) == 7


def test_improvement_resets_patience():
    assert run(EarlyStopping(patience=2), [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.3]) == 7


def test_relative_tolerance_counts_small_gains_as_none():
    assert run(EarlyStopping(patience=2, tolerance=0.1), [0.5, 0.52, 0.54]) == 3
    assert run(EarlyStopping(patience=2, tolerance=0.0), [0.5, 0.52, 0.54]) is None


def test_state_round_trip_continues_counting():
    first = EarlyStopping(patience=3)
    run(first, [0.5, 0.4])
    second = EarlyStopping(patience=3)
    second.load_state_dict(first.state_dict())
    assert not second.update(0.4)
    assert second.update(0.4)


@pytest.mark.parametrize("patience, delay", [(0, 0), (1, -1)])
def test_invalid_arguments_raise(patience, delay):
    with pytest.raises(ValueError):
        EarlyStopping(patience, delay)


def test_sagemaker_min_epochs_delay_early_stopping_by_evaluations():
    from automl_nb.spec import resolve_parameters
    from automl_nb.train.early_stopping import early_stopping_delay

    azure = resolve_parameters("image_object_detection", {"early_stopping_delay": 3})
    assert early_stopping_delay(azure) == 3
    sagemaker = resolve_parameters("image_object_detection", {"early_stopping_min_epochs": 9, "evaluation_frequency": 2,
                                                                   "early_stopping_delay": 1})
    assert early_stopping_delay(sagemaker) == 4  # epochs 2, 4, 6 and 8 fall within the 9 epochs
    assert early_stopping_delay({**sagemaker, "early_stopping_delay": 6}) == 6
