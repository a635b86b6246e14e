"""IPython magics: ``%%automl`` runs a cell's YAML job as a sweep, ``%automl`` steers it.

Load them with ``%load_ext automl_nb``; ``%automl?`` and ``%%automl?`` print the options,
and Shift+Tab on a hyperparameter in a ``%%automl`` cell shows its range and default.

    %%automl -o run --name shapes
    task: image_classification
    training_data: {path: $data_dir, type: mltable}
    training_parameters: {model_name: resnet18, number_of_epochs: {epochs}}

    %automl status
    %automl show data/images/00001.png
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%automl`` / ``%automl``, and Tab completion and Shift+Tab help in the job's YAML."""
    from automl_nb.magics.completion import register_completion
    from automl_nb.magics.core import AutoMLMagics
    from automl_nb.magics.inspection import register_inspection

    ipython.register_magics(AutoMLMagics(ipython))
    register_completion(ipython)
    register_inspection(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the completion and the Shift+Tab help (IPython keeps magics once registered)."""
    from automl_nb.magics.completion import unregister_completion
    from automl_nb.magics.inspection import unregister_inspection

    unregister_completion(ipython)
    unregister_inspection(ipython)


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
