"""The Azure SDK v2 search-space classes, so ``job.extend_search_space([ImageObjectDetectionSearchSpace(...)])`` ports.

As in ``azure.ai.ml.automl``, each class takes keyword arguments only, one per hyperparameter
of its tasks, each a distribution (``Choice``, ``Uniform``...) or a fixed value, and every
other attribute reads None. Their names come from the parameter table (Azure's SDK has no
SageMaker keys, so neither do these classes); the values are checked against the job's task
and models by ``extend_search_space``.

Example:
    >>> from automl_nb.spec import Choice, Uniform
    >>> space = ImageObjectDetectionSearchSpace(model_name=Choice(["yolov5"]), learning_rate=Uniform(1e-4, 1e-2))
    >>> space.learning_rate, space.momentum
    (Uniform(min_value=0.0001, max_value=0.01), None)
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from automl_nb.errors import SpecError
from automl_nb.spec._checks import unknown_key
from automl_nb.spec.distributions import as_distribution
from automl_nb.spec.table import PARAMETERS
from automl_nb.spec.tasks import CLASSIFICATION_TASKS, DETECTION, SEGMENTATION


class SearchSpace:
    """One subspace of hyperparameters given as attributes (the base of the task classes).

    Raises:
        SpecError: a keyword that is not a hyperparameter of the class's tasks (with the nearest
            one suggested), or a malformed distribution mapping.
    """

    tasks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        names = self.parameter_names()
        for name in names:
            setattr(self, name, None)
        for key, value in values.items():
            if key not in names:
                unknown_key(key, f"hyperparameter of {type(self).__name__}", names, value)
            try:
                distribution = as_distribution(value, key)
            except SpecError as error:
                raise SpecError(f"{type(self).__name__}.{error}") from None
            setattr(self, key, distribution if distribution is not None else value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # help() and tab completion show the keywords, as for the Azure SDK's classes.
        cls.__signature__ = inspect.Signature([
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in cls.parameter_names()
        ])

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The keywords the class takes: the table's (non-SageMaker) parameters of its tasks, in table order."""
        return tuple(param.name for param in PARAMETERS.values()
                     if not param.sagemaker and any(task in param.tasks for task in cls.tasks))

    def to_dict(self) -> dict[str, Any]:
        """The hyperparameters that are set (not None), as ``extend_search_space`` reads them."""
        return {name: getattr(self, name) for name in self.parameter_names() if getattr(self, name) is not None}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable, as Azure's

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.to_dict().items())
        return f"{type(self).__name__}({shown})"


class ImageClassificationSearchSpace(SearchSpace):
    """Search space of multiclass and multilabel image classification (Azure's class of that name)."""

    tasks = CLASSIFICATION_TASKS


class ImageObjectDetectionSearchSpace(SearchSpace):
    """Search space of object detection and instance segmentation (Azure uses it for both)."""

    tasks = (DETECTION, SEGMENTATION)


class ImageInstanceSegmentationSearchSpace(SearchSpace):
    """Search space of instance segmentation (Azure's ImageObjectDetectionSearchSpace serves it too)."""

    tasks = (SEGMENTATION,)
