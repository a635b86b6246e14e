"""Optimizers and learning-rate schedules named by the training parameters."""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR, StepLR


def build_optimizer(parameters: Iterable[torch.nn.Parameter], params: Mapping) -> torch.optim.Optimizer:
    """The optimizer ``params["optimizer"]`` over the trainable ``parameters``.

    sgd, adam and adamw are Azure's; rmsprop and adadelta come with the SageMaker keys.
    """
    name = params["optimizer"]
    trainable = [p for p in parameters if p.requires_grad]
    lr, weight_decay = params["learning_rate"], params["weight_decay"]
    if name == "sgd":
        momentum = params["momentum"]
        # torch refuses nesterov without momentum; momentum 0 simply means plain SGD.
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=bool(params["nesterov"]) and momentum > 0)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(trainable, lr=lr, betas=(params["beta1"], params["beta2"]),
                   weight_decay=weight_decay, amsgrad=bool(params["ams_gradient"]))
    if name == "rmsprop":
        return torch.optim.RMSprop(trainable, lr=lr, momentum=params["momentum"], weight_decay=weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(trainable, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: {name!r} is not supported; allowed: sgd, adam, adamw, rmsprop, adadelta")


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, cycles: float) -> float:
    """Learning-rate multiplier: linear warm-up, then a cosine over ``cycles`` periods.

    With Azure's default ``cycles=0.45`` the rate decays to about 2% of its peak by the
    end of training instead of touching zero.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))


def build_scheduler(optimizer: torch.optim.Optimizer, params: Mapping, steps_per_epoch: int) -> tuple[LRScheduler, str]:
    """The schedule ``params["learning_rate_scheduler"]`` and whether it steps per "batch" or "epoch".

    A job given SageMaker keys follows SageMaker's schedule instead: the rate is multiplied by
    ``lr_scheduler_factor`` after each epoch listed in ``lr_scheduler_step`` (constant if none).
    """
    if "lr_scheduler_step" in params:
        steps = [int(epoch) for epoch in params["lr_scheduler_step"].split(",") if epoch]
        return MultiStepLR(optimizer, milestones=steps, gamma=params["lr_scheduler_factor"]), "epoch"
    name = params["learning_rate_scheduler"]
    if name == "warmup_cosine":
        warmup = params["warmup_cosine_lr_warmup_epochs"] * steps_per_epoch
        total = params["number_of_epochs"] * steps_per_epoch
        cycles = params["warmup_cosine_lr_cycles"]
        schedule = LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, warmup, total, cycles))
        return schedule, "batch"
    if name == "step":
        return StepLR(optimizer, step_size=params["step_lr_step_size"], gamma=params["step_lr_gamma"]), "epoch"
    raise ValueError(f"learning_rate_scheduler: {name!r} is not supported; allowed: warmup_cosine, step")
