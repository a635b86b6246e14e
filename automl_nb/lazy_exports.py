"""Package names imported on first use, so importing a package stays cheap (no torch, no widgets).

    >>> __getattr__, __dir__ = lazy_exports(__name__, {"Trial": "automl_nb.train.trial"})
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` for ``homes`` (public name -> defining module)."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(homes[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(import_module(package).__dict__) | set(homes))

    return __getattr__, __dir__
