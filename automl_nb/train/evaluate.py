"""One pass of a model over a data loader: mean loss and the task's scores."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager

import torch
from torch.utils.data import DataLoader


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, loader: DataLoader, adapter, device: torch.device,
                   memory_format: torch.memory_format = torch.contiguous_format,
                   autocast: Callable[[], ContextManager] = nullcontext) -> tuple[float, dict]:
    """Mean loss and ``adapter.score`` of ``model`` (in eval mode) over every batch of ``loader``.

    Args:
        model: the network; set to eval mode here.
        loader: batches the adapter understands.
        adapter: a task adapter (``forward_loss``, ``score``).
        device: where the model is.
        memory_format: layout of the input images (channels_last on CUDA).
        autocast: a factory of the mixed-precision context, as in training.
    """
    if hasattr(adapter, "evaluate"):  # detection: predictions and losses come from different modes
        return adapter.evaluate(model, loader, device, memory_format, autocast)
    model.eval()
    total_loss, seen, outputs, targets = 0.0, 0, [], []
    for batch in loader:
        with autocast():
            loss, logits, target = adapter.forward_loss(model, batch, device, memory_format)
        total_loss += loss.item() * len(target)
        seen += len(target)
        outputs.append(logits.float().cpu())
        targets.append(target.cpu())
    return total_loss / max(seen, 1), adapter.score(torch.cat(outputs), torch.cat(targets))
