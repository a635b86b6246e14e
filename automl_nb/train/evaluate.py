"""One pass of a model over a data loader: mean loss and the task's scores."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager

import torch
from torch.utils.data import DataLoader


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, loader: DataLoader, adapter, device: torch.device,
                   memory_format: torch.memory_format = torch.contiguous_format,
                   autocast: Callable[[], ContextManager] = nullcontext,
                   keep: list | None = None) -> tuple[float, dict]:
    """Mean loss and ``adapter.score`` of ``model`` (in eval mode) over every batch of ``loader``.

    Args:
        model: the network; set to eval mode here.
        loader: batches the adapter understands.
        adapter: a task adapter (``forward_loss``, ``score``).
        device: where the model is.
        memory_format: layout of the input images (channels_last on CUDA).
        autocast: a factory of the mixed-precision context, as in training.
        keep: when a list, each image's outputs are appended to it (``loader`` must then be the
            adapter's validation loader, in order), from the same pass: see the adapters'
            ``per_image`` and :func:`automl_nb.analysis.predictions.prediction_rows`.
    """
    if hasattr(adapter, "evaluate"):  # detection: predictions and losses come from different modes
        return adapter.evaluate(model, loader, device, memory_format, autocast, keep=keep)
    model.eval()
    total_loss, seen, outputs, targets = 0.0, 0, [], []
    for batch in loader:
        with autocast():
            loss, logits, target = adapter.forward_loss(model, batch, device, memory_format)
        total_loss += loss.item() * len(target)
        seen += len(target)
        outputs.append(logits.float().cpu())
        targets.append(target.cpu())
    outputs, targets = torch.cat(outputs), torch.cat(targets)
    if keep is not None:
        keep.extend(adapter.per_image(outputs, targets))
    return total_loss / max(seen, 1), adapter.score(outputs, targets)
