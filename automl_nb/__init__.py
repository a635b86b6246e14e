"""automl_nb: AutoML for computer vision that lives in a Jupyter notebook.

    >>> from automl_nb import image_classification, Input
    >>> job = image_classification(training_data=Input(path="data/train", type="mltable"),
    ...                            target_column_name="label")
    >>> job.set_training_parameters(model_name="resnet18", number_of_epochs=10)

Names are imported on first use, so ``import automl_nb`` stays fast (no torch).
"""

from automl_nb.lazy_exports import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "image_classification": "automl_nb.spec",
    "image_classification_multilabel": "automl_nb.spec",
    "image_object_detection": "automl_nb.spec",
    "image_instance_segmentation": "automl_nb.spec",
    "load_job": "automl_nb.spec",
    "Input": "automl_nb.spec",
    "Output": "automl_nb.spec",
    # azure.ai.ml.automl's search-space classes
    "ImageClassificationSearchSpace": "automl_nb.spec",
    "ImageObjectDetectionSearchSpace": "automl_nb.spec",
    "ImageInstanceSegmentationSearchSpace": "automl_nb.spec",
    "run_trial": "automl_nb.train",
    "Trial": "automl_nb.train",
    "submit": "automl_nb.sweep",
    "load_run": "automl_nb.sweep",
    "Run": "automl_nb.sweep",
    "AutoMLError": "automl_nb.errors",
    "SpecError": "automl_nb.errors",
    "DataError": "automl_nb.errors",
    "TrialError": "automl_nb.errors",
    "SweepDashboard": "automl_nb.widgets",
    "SearchSpaceBuilder": "automl_nb.widgets",
    "DetectionViewer": "automl_nb.widgets",
    "AttributionViewer": "automl_nb.widgets",
    "DatasetExplorer": "automl_nb.widgets",
    "DataHealthPanel": "automl_nb.widgets",
    "check": "automl_nb.data.health",
}

__all__ = sorted(_EXPORTS) + ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython):
    """``%load_ext automl_nb``: register the ``%%automl`` and ``%automl`` magics."""
    from automl_nb.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from automl_nb.magics import unload_ipython_extension as unload

    unload(ipython)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
