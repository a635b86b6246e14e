"""Pretrained YOLOv5 weights from a local file (downloaded there first by :mod:`.download`).

Where: ``<torch hub dir>/checkpoints/yolov5s.pt`` (``m``, ``l``, ``x`` for the other sizes;
the hub dir is ``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``), the names of the
YOLOv5 v7.0 release files, which are downloaded there when missing and the release host
answers (:func:`~automl_nb.models.yolo.download.fetch_release_file`); or any path given as
``weights_path`` (never downloaded).

What: a YOLOv5 **v6.0 - v7.0** detection checkpoint of the same ``model_size`` (the 6x6 stem
and SPPF layout; v5.0 and older, with Focus and SPP, do not fit), in any of these forms:

- the release ``.pt`` file, which pickles the whole ultralytics model object. It is read with
  a restricted unpickler: torch's tensors, parameters and ``torch.nn`` layers are rebuilt,
  every other class (ultralytics' own) becomes an inert stub that only keeps its attributes,
  so neither ultralytics nor any of its code is needed or run;
- a plain state dict saved with ``torch.save`` (or a dict holding one under ``"model"``);
- a ``.safetensors`` file of the state dict.

Name mapping: **identity**. Our modules carry YOLOv5's attribute names (``model.0.conv.weight``,
``model.2.m.0.cv1.bn.running_mean``, ``model.24.m.0.weight``, ``model.24.anchors``...), so
every tensor loads under its own name. Anchors are kept in grid cells in both. Tensors whose
shape differs are skipped: the head's three output convolutions (``model.24.m.*``) when the
number of classes differs from the checkpoint's (80 for COCO), which then start from random
weights with our bias priors. A file whose backbone does not fit is an error.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn

from automl_nb.errors import TrialError

YOLOV5_FILES = {"small": "yolov5s.pt", "medium": "yolov5m.pt", "large": "yolov5l.pt", "extra_large": "yolov5x.pt"}
RELEASES = "https://github.com/ultralytics/yolov5/releases"


def cached_weights_path(model_size: str) -> Path:
    """Where the pretrained checkpoint of ``model_size`` is looked for."""
    return Path(torch.hub.get_dir()) / "checkpoints" / YOLOV5_FILES[model_size]


class _Stub:
    """Stands in for a foreign class found in a checkpoint: keeps the attributes, runs nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.__dict__["_stub_args"] = args

    def __setstate__(self, state) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"_stub_state": state})


def _is_allowed(module: str, name: str) -> bool:
    """Globals rebuilt for real: tensors and their dtypes, torch.nn layers, ordered dicts, sets."""
    if module == "torch._utils":
        return name.startswith("_rebuild")
    if module == "torch":
        return name in ("Size", "device") or isinstance(getattr(torch, name, None), torch.dtype)
    if module == "torch.nn.parameter":
        return name == "Parameter"
    if module.startswith("torch.nn.modules."):  # layer classes, only instantiated and given their state;
        try:  # not the functions those modules import
            layer = getattr(importlib.import_module(module), name, None)
        except ImportError:
            return False
        return isinstance(layer, type) and issubclass(layer, nn.Module)
    if module in ("builtins", "__builtin__"):  # protocol 2 (torch.save's) writes Python 2's name
        return name in ("set", "frozenset")
    return (module, name) == ("collections", "OrderedDict")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if _is_allowed(module, name):
            return super().find_class(module, name)
        return type(name, (_Stub,), {"__module__": f"stub.{module}"})


_RESTRICTED_PICKLE = SimpleNamespace(__name__="restricted_pickle", Unpickler=_RestrictedUnpickler,
                                     load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load())


def _module_tensors(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a (real or stub) module tree: persistent parameters and buffers by name."""
    attributes = vars(obj)
    state = {}
    for name, tensor in (attributes.get("_parameters") or {}).items():
        if tensor is not None:
            state[prefix + name] = tensor.detach()
    transient = attributes.get("_non_persistent_buffers_set") or set()
    for name, tensor in (attributes.get("_buffers") or {}).items():
        if tensor is not None and name not in transient:
            state[prefix + name] = tensor
    for name, child in (attributes.get("_modules") or {}).items():
        if child is not None:
            state.update(_module_tensors(child, f"{prefix}{name}."))
    return state


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The named tensors of a YOLOv5 checkpoint file (release ``.pt``, state dict or safetensors).

    Raises:
        TrialError: the file cannot be read or holds no model.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # a pickled model object: read it with stubs
            content = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    except Exception as error:  # torch.load raises many kinds on a foreign or truncated file
        raise TrialError(f"cannot read YOLOv5 weights from {path}: {error}") from error
    if isinstance(content, dict) and ("model" in content or "ema" in content):
        content = content.get("model") or content.get("ema")  # a training checkpoint
    if isinstance(content, (nn.Module, _Stub)):
        return _module_tensors(content)
    if isinstance(content, dict) and all(torch.is_tensor(v) for v in content.values()):
        return dict(content)
    raise TrialError(f"{path} holds no YOLOv5 model or state dict (found {type(content).__name__})")


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a YOLOv5 checkpoint into ``model`` by name (see the module docstring).

    Args:
        model: a :class:`~automl_nb.models.yolo.model.YoloV5`.
        path: the checkpoint file.

    Returns:
        The names of the model's tensors left as they were (the head's output layers when the
        class count differs; empty when everything fitted).

    Raises:
        TrialError: no file at ``path`` (with what to do), an unreadable file, or a checkpoint
            whose backbone does not fit (another version or size).

    Example:
        >>> skipped = load_pretrained(YoloV5(num_classes=3, model_size="small"), "yolov5s.pt")
        >>> skipped[:1]
        ['model.24.m.0.bias']
    """
    path, size = Path(path), getattr(model, "model_size", "?")
    if not path.is_file():
        from automl_nb.models.yolo.download import release_url

        raise TrialError(
            f"pretrained weights for 'yolov5' ({size}) are not in the local cache ({path}) and "
            f"{release_url(path.name)} cannot be reached. Either set `use_pretrained_model: false` in "
            f"training_parameters to train from random weights, or place a YOLOv5 v6.0-v7.0 checkpoint of that "
            f"size (e.g. {YOLOV5_FILES.get(size, 'yolov5s.pt')} from {RELEASES}) at that path.")
    tensors = read_checkpoint(path)
    own = model.state_dict()
    fitting = {name: tensor.to(own[name].dtype) for name, tensor in tensors.items()
               if name in own and own[name].shape == tensor.shape}
    backbone = [name for name in own if name.split(".")[1].isdigit() and int(name.split(".")[1]) < 10]
    unfit = [name for name in backbone if name not in fitting]
    if unfit:
        raise TrialError(f"{path} is not a YOLOv5 v6.0-v7.0 checkpoint of model_size {size!r}: {len(unfit)} of "
                         f"{len(backbone)} backbone tensors are missing or of another shape (e.g. {unfit[:3]})")
    model.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))
