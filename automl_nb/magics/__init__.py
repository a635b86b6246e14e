"""IPython magics: ``%%automl`` runs a cell's YAML job as a sweep, ``%automl`` steers it.

Load them with ``%load_ext automl_nb``; ``%automl?`` and ``%%automl?`` print the options.

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
    """Register ``%%automl`` / ``%automl`` and tab completion of the job's YAML in ``ipython``."""
    from automl_nb.magics.completion import register_completion
    from automl_nb.magics.core import AutoMLMagics

    ipython.register_magics(AutoMLMagics(ipython))
    register_completion(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the tab completion (IPython keeps magics once registered)."""
    from automl_nb.magics.completion import unregister_completion

    unregister_completion(ipython)


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
