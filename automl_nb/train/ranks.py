"""What the training loop does differently in each process of a data-parallel (DDP) trial.

The loop (:mod:`automl_nb.train.trainer`) asks its ``ranks`` object to wrap the model, to skip
the gradient average on micro-batches, to sum numbers over the processes, to gather a list onto
rank 0 and to hand every process rank 0's verdict; with more than one process, also for this
process's training batches. :class:`SingleProcess` answers them for the
ordinary one-process trial (no communication at all); :class:`ProcessGroup` for a rank of a
``torch.distributed`` group, which :mod:`automl_nb.train.rank` sets up.

Conventions (torchvision's references, ``references/classification/train.py``, with two
choices of ours, see docs/distributed.md):

- ``training_batch_size`` is the *global* batch: each of W processes takes
  ``training_batch_size // W`` images a step, so a sweep's batch size and learning rate mean
  the same thing whatever the device count, and the learning rate needs no scaling
  (torchvision's ``--batch-size`` is per device and leaves the scaling to the user).
- The samples of every optimizer step are those of the one-process trial: each global batch of
  the trial's own shuffled order is cut into W slices (:class:`StepBatchSampler`), where
  ``DistributedSampler`` would deal samples out one by one. Every rank draws the order from its
  copy of the loader's generator, which all advance alike each epoch (the part
  ``DistributedSampler.set_epoch`` plays), so resume restores it from ``last.pt`` as before.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager, Iterator, Sequence

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from automl_nb.errors import TrialError


class SingleProcess:
    """The ranks of an ordinary trial: one process, which writes everything."""

    rank = 0
    world_size = 1
    writes = True

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model the loop trains (here: ``model`` itself)."""
        return model

    def skip_sync(self, model: nn.Module, steps: bool) -> ContextManager:
        """A no-op: one process has no gradients to average."""
        return nullcontext()

    def sum(self, *values: float | torch.Tensor) -> list[float]:
        """``values`` as floats (the sum over one process)."""
        return [float(value) for value in values]

    def gather(self, items: list) -> list:
        """``items`` (rank 0 has them all)."""
        return items

    def verdict(self, *flags: bool) -> tuple[bool, ...]:
        """``flags`` (rank 0's own)."""
        return tuple(bool(flag) for flag in flags)


class ProcessGroup(SingleProcess):
    """One rank of an initialised ``torch.distributed`` process group (gloo on CPU, NCCL on CUDA).

    Args:
        device: this rank's device; collectives of NCCL need their tensors there.
    """

    def __init__(self, device: torch.device) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.device = device
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.writes = self.rank == 0  # reports, checkpoints, predictions and status come from rank 0 only

    def wrap(self, model: nn.Module) -> nn.Module:
        # The constructor broadcasts rank 0's weights, so every rank starts from the same model;
        # each forward broadcasts rank 0's batch-norm statistics (broadcast_buffers), so the
        # checkpoint rank 0 saves is what every rank ran.
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DataParallelModel(model, device_ids=device_ids)

    def batch_sampler(self, order: Sampler, batch_size: int) -> StepBatchSampler:
        """This rank's batches of ``order`` (see :class:`StepBatchSampler`)."""
        return StepBatchSampler(order, batch_size, self.rank, self.world_size)

    def skip_sync(self, model: nn.Module, steps: bool) -> ContextManager:
        """No gradient averaging on a micro-batch of gradient accumulation (only on the step's last)."""
        return nullcontext() if steps else model.no_sync()

    def sum(self, *values: float | torch.Tensor) -> list[float]:
        summed = torch.tensor([float(value) for value in values], dtype=torch.float64, device=self.device)
        self.dist.all_reduce(summed)
        return summed.tolist()

    def gather(self, items: list) -> list:
        gathered: list | None = [None] * self.world_size if self.rank == 0 else None
        self.dist.gather_object(items, gathered, dst=0)
        return [item for part in gathered for item in part] if gathered else []

    def verdict(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's ``flags`` on every rank, so all ranks stop (or go on) together."""
        shared = torch.tensor([int(bool(flag)) for flag in flags], dtype=torch.int64, device=self.device)
        self.dist.broadcast(shared, src=0)
        return tuple(bool(flag) for flag in shared.tolist())


class DataParallelModel(DistributedDataParallel):
    """DDP's wrapper that also answers for its model's attributes: an adapter reads some from the
    model it is handed (YOLOv5's loss takes ``model.head.anchors``)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


class StepBatchSampler(Sampler[list[int]]):
    """This rank's slice of each global batch of ``order``.

    The global batch is ``batch_size`` rounded down to a multiple of ``world_size``; each rank
    takes ``batch_size // world_size`` consecutive samples of it, rank 0 first. The last, short
    batch is cut into equal slices too (dropping up to ``world_size - 1`` samples, which the next
    epoch's shuffle brings back); when a slice would hold fewer than 2 images (batch norm cannot
    train on one), the short batch is dropped, as the one-process loader drops a last batch of one.

    Args:
        order: the samples of one epoch in order (the trial's shuffling sampler).
        batch_size: the global batch (``training_batch_size``).
        rank, world_size: this process and the number of processes.

    Raises:
        TrialError: the training set gives no batch to every process.
    """

    def __init__(self, order: Sampler, batch_size: int, rank: int, world_size: int) -> None:
        self.order, self.rank, self.world_size = order, rank, world_size
        self.per_rank = max(1, batch_size // world_size)
        self.global_batch = self.per_rank * world_size
        if len(self) == 0:
            raise TrialError(f"training_batch_size: {batch_size} over {world_size} processes leaves no batch for each "
                             f"process in {len(order)} training images; allowed: at least {2 * world_size} images")

    def _slice(self, size: int) -> int:
        """Images per rank of a global batch of ``size`` samples (0: drop it)."""
        if size == self.global_batch:
            return self.per_rank
        share = size // self.world_size
        return share if share >= min(2, self.per_rank) else 0

    def __iter__(self) -> Iterator[list[int]]:
        samples = list(self.order)  # draws this epoch's order from the generator, as the one-process loader does
        for start in range(0, len(samples), self.global_batch):
            batch: Sequence[int] = samples[start:start + self.global_batch]
            share = self._slice(len(batch))
            if share:
                yield list(batch[self.rank * share:(self.rank + 1) * share])

    def __len__(self) -> int:
        full, rest = divmod(len(self.order), self.global_batch)
        return full + (1 if rest and self._slice(rest) else 0)
