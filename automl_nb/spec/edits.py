"""Parameters typed by hand: ``key=value`` words (``%automl clone``, ``automl-nb clone``) and the
text boxes of a form (the dashboard's clone form), read the same way everywhere.

A value is read as YAML (``0.01`` a float, ``adam`` a str, ``true`` a bool, ``[1, 2]`` a list);
text YAML cannot read stays text. :func:`typed_values` then gives each its hyperparameter's type
by the table (:func:`automl_nb.spec.coerce_value`), so ``1e-4`` is a float, not a string.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

from automl_nb.errors import SpecError


def read_value(text: str) -> Any:
    """A value typed as text, read as YAML; text YAML cannot read stays as it is (an empty text is None).

    Example:
        >>> read_value("0.01"), read_value("adam"), read_value("[a")
        (0.01, 'adam', '[a')
    """
    if not text.strip():
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def key_texts(words: Sequence[str], what: str) -> dict[str, str]:
    """``key=value`` words as a mapping of each key to its value's text.

    Args:
        words: the words, e.g. ``["learning_rate=0.01", "optimizer=adam"]``.
        what: the command, for the message (``%automl clone``, ``automl-nb clone``).

    Raises:
        SpecError: ``{what}: 'word' is not KEY=VALUE (e.g. learning_rate=0.01)``.
    """
    result = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise SpecError(f"{what}: {word!r} is not KEY=VALUE (e.g. learning_rate=0.01)")
        result[key] = text
    return result


def key_values(words: Sequence[str], what: str) -> dict:
    """``key=value`` words as a mapping, each value read by :func:`read_value`.

    Raises:
        SpecError: as :func:`key_texts`.

    Example:
        >>> key_values(["learning_rate=0.01", "optimizer=adam"], "%automl clone")
        {'learning_rate': 0.01, 'optimizer': 'adam'}
    """
    return {key: read_value(text) for key, text in key_texts(words, what).items()}


def typed_values(task: str, texts: Mapping[str, str], what: str) -> dict:
    """Form fields (hyperparameter name -> its text) as values of each hyperparameter's type.

    Args:
        task: the job's task (a choice's values may depend on it).
        texts: the fields' texts.
        what: what the values are for, the message's head (``clone trial 3``).

    Raises:
        SpecError: ``{what}: key: value is not ...; allowed: ...`` (an unknown key, a value of the
            wrong type or out of range, an empty field).

    Example:
        >>> typed_values("image_classification", {"learning_rate": "1e-4"}, "clone trial 3")
        {'learning_rate': 0.0001}
    """
    from automl_nb.spec.resolve import coerce_value

    values = {}
    for name, text in texts.items():
        value = read_value(text)
        try:
            if value is None:
                raise SpecError(f"{name}: an empty field; allowed: a value (keep the trial's by leaving it as it was)")
            values[name] = coerce_value(name, value, task)
        except SpecError as error:
            raise SpecError(f"{what}: {error}") from None
    return values


def search_space_text(search_space: Any) -> str:
    """A search space (subspaces, or their YAML data) as the YAML text ``%automl narrow`` takes:
    ``search_space:`` and a line per distribution.

    Example:
        >>> print(search_space_text([{"learning_rate": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}}]))
        search_space:
        - learning_rate: {type: uniform, min_value: 0.01, max_value: 0.1}
        <BLANKLINE>
    """
    from automl_nb.spec._yaml_dump import flow, to_yaml_text
    from automl_nb.spec.search_space import parse_search_space, search_space_to_list

    listed = search_space_to_list(parse_search_space(search_space))
    return to_yaml_text({"search_space": [{key: flow(value) if isinstance(value, dict) and "type" in value else value
                                           for key, value in subspace.items()} for subspace in listed]})
