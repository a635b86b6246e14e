"""Pretrained weights: use the local torchvision/timm caches, never hang without a network."""

from __future__ import annotations

import os
import socket
from contextlib import closing
from urllib.parse import urlparse

from automl_nb.errors import TrialError


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the host of ``url`` opens within ``timeout`` seconds."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with closing(socket.create_connection((parsed.hostname, port), timeout=timeout)):
            return True
    except OSError:
        return False


def weights_unavailable(model_name: str, where: str, source_url: str) -> TrialError:
    """The error users see when pretrained weights are neither cached nor downloadable."""
    return TrialError(
        f"pretrained weights for {model_name!r} are not in the local cache ({where}) and "
        f"{source_url} cannot be reached. Either set `use_pretrained_model: false` in "
        f"training_parameters to train from random weights, or place the weights in that cache."
    )


def load_torchvision_weights(model_name: str, weights) -> dict:
    """State dict for a torchvision ``WeightsEnum`` member, from the hub cache or the URL."""
    import torch

    filename = os.path.basename(urlparse(weights.url).path)
    cache_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    if not os.path.exists(os.path.join(cache_dir, filename)) and not host_reachable(weights.url):
        raise weights_unavailable(model_name, os.path.join(cache_dir, filename), weights.url)
    return weights.get_state_dict(progress=False, check_hash=False)


def create_timm_model(model_name: str, timm_name: str, pretrained: bool, **kwargs):
    """``timm.create_model`` that fails fast with a clear message when weights are missing."""
    import timm

    if pretrained and not _timm_weights_cached(timm_name):
        hub = "https://huggingface.co"
        if os.environ.get("HF_HUB_OFFLINE") == "1" or not host_reachable(hub):
            raise weights_unavailable(model_name, "the Hugging Face hub cache", hub)
    try:
        return timm.create_model(timm_name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError) as error:  # hub errors subclass OSError
        if pretrained:
            raise TrialError(f"could not load pretrained weights for {model_name!r}: {error}") from error
        raise


def _timm_weights_cached(timm_name: str) -> bool:
    import timm
    from huggingface_hub import try_to_load_from_cache

    hub_id = timm.models.get_pretrained_cfg(timm_name).hf_hub_id
    if not hub_id:
        return False
    for filename in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(hub_id, filename), str):
            return True
    return False

