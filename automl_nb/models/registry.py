"""Model registry: a dict plus a decorator, as in torchvision's ``models/_api.py``.

Each entry records what generic code needs to know about a model without building it:
its group of tasks and its builder. The prefixes that ``layers_to_freeze`` counts over
belong to the job spec (``automl_nb.spec.FREEZE_LAYER_ORDER``), which validates that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelInfo:
    """What the trainer needs to know about one registered model.

    Attributes:
        name: the ``model_name`` users write.
        group: "classification", "detection" or "segmentation".
        builder: ``builder(num_classes=..., pretrained=..., **options) -> nn.Module``.
    """

    name: str
    group: str
    builder: Callable[..., nn.Module]

    @property
    def freeze_layers(self) -> tuple:
        """Parameter-name prefixes in the order ``layers_to_freeze`` counts them; an entry
        may be a tuple of prefixes that count as one layer."""
        from automl_nb.spec import FREEZE_LAYER_ORDER, model_family

        return FREEZE_LAYER_ORDER[model_family(self.name)]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, group: str) -> Callable:
    """Decorator that registers a model builder under ``name``; a duplicate name raises."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelInfo(name, group, builder)
        return builder

    return wrap


def _ensure_loaded() -> None:
    # Builders register themselves on import; importing here keeps registry.py free of
    # the heavy modules until a model is actually asked for.
    from automl_nb.models import classification, detection, yolo  # noqa: F401


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; raises ``KeyError`` naming the known models."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def list_models(group: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally of one group of tasks."""
    _ensure_loaded()
    return sorted(n for n, info in _REGISTRY.items() if group is None or info.group == group)


def build_model(name: str, *, num_classes: int, pretrained: bool, **options) -> nn.Module:
    """Build model ``name`` with a head of ``num_classes`` outputs."""
    return get_model_info(name).builder(num_classes=num_classes, pretrained=pretrained, **options)


def freeze_prefixes(name: str, layers_to_freeze: int | None) -> tuple[str, ...]:
    """Parameter-name prefixes frozen by ``layers_to_freeze`` for model ``name``.

    Raises:
        ValueError: when more layers are asked for than the model's table has.
    """
    if not layers_to_freeze:
        return ()
    table = get_model_info(name).freeze_layers
    if layers_to_freeze > len(table):
        raise ValueError(
            f"layers_to_freeze: {layers_to_freeze} is more than {name} has; allowed: 1..{len(table)}"
        )
    prefixes: list[str] = []
    for layer in table[:layers_to_freeze]:
        prefixes.extend(layer if isinstance(layer, tuple) else (layer,))
    return tuple(prefixes)
