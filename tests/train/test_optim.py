import math

import pytest
import torch

from automl_nb.train.optim import build_optimizer, build_scheduler, warmup_cosine_factor

BASE = {"learning_rate": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": True,
        "beta1": 0.8, "beta2": 0.95, "ams_gradient": True, "number_of_epochs": 10,
        "learning_rate_scheduler": "warmup_cosine", "warmup_cosine_lr_warmup_epochs": 2,
        "warmup_cosine_lr_cycles": 0.45, "step_lr_step_size": 3, "step_lr_gamma": 0.5}


def model():
    return torch.nn.Linear(3, 2)


def test_warmup_rises_linearly_then_decays_by_cosine():
    assert warmup_cosine_factor(0, 10, 100, 0.45) == 0
    assert warmup_cosine_factor(5, 10, 100, 0.45) == pytest.approx(0.5)
    assert warmup_cosine_factor(10, 10, 100, 0.45) == pytest.approx(1.0)
    end = warmup_cosine_factor(100, 10, 100, 0.45)
    assert end == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))
    values = [warmup_cosine_factor(s, 10, 100, 0.45) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                                       ("adadelta", torch.optim.Adadelta)])
def test_optimizer_by_name(name, cls):
    optimizer = build_optimizer(model().parameters(), {**BASE, "optimizer": name})
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_adam_takes_betas_and_amsgrad_and_sgd_nesterov():
    adam = build_optimizer(model().parameters(), {**BASE, "optimizer": "adam"})
    assert adam.param_groups[0]["betas"] == (0.8, 0.95) and adam.param_groups[0]["amsgrad"]
    sgd = build_optimizer(model().parameters(), {**BASE, "optimizer": "sgd"})
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["momentum"] == 0.9


def test_frozen_parameters_are_left_out():
    net = model()
    net.bias.requires_grad_(False)
    optimizer = build_optimizer(net.parameters(), {**BASE, "optimizer": "sgd"})
    assert len(optimizer.param_groups[0]["params"]) == 1


def test_warmup_cosine_steps_per_batch():
    optimizer = build_optimizer(model().parameters(), {**BASE, "optimizer": "sgd"})
    scheduler, every = build_scheduler(optimizer, BASE, steps_per_epoch=5)
    assert every == "batch"
    assert optimizer.param_groups[0]["lr"] == 0  # warm-up starts from zero
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # end of the 2 warm-up epochs


def test_step_schedule_multiplies_by_gamma_every_step_size_epochs():
    params = {**BASE, "learning_rate_scheduler": "step"}
    optimizer = build_optimizer(model().parameters(), {**params, "optimizer": "sgd"})
    scheduler, every = build_scheduler(optimizer, params, steps_per_epoch=5)
    assert every == "epoch"
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
