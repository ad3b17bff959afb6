"""Per-epoch schedules against the numbers docs/method.md states."""
import math

import pytest
import torch

from reid.engine.optim import build_optimizer
from reid.engine.schedules import build_scheduler, cosine_warmup_lr, warmup_multistep_factor


def test_warmup_multistep_vit_values():
    f = lambda e: warmup_multistep_factor(e, 10, 0.1, [30, 50], 0.1)  # noqa: E731
    assert math.isclose(f(1), 0.19)
    assert math.isclose(f(9), 0.1 * 0.1 + 0.9)
    assert f(10) == 1.0 and f(29) == 1.0
    assert math.isclose(f(30), 0.1) and math.isclose(f(50), 0.01)


def test_cosine_stage1_values():
    lr = lambda e: cosine_warmup_lr(e, 3.5e-4, 120, 5, 1e-5, 1e-6)  # noqa: E731
    assert math.isclose(lr(1), 1e-5 + (3.5e-4 - 1e-5) / 5)
    assert math.isclose(lr(5), 1e-6 + 0.5 * (3.5e-4 - 1e-6) * (1 + math.cos(math.pi * 5 / 120)))
    assert math.isclose(lr(120), 1e-6)


def test_scheduler_steps_at_epoch_start_with_bias_groups():
    w = torch.nn.Linear(2, 2)
    opt = build_optimizer(w.named_parameters(), "adam", 5e-6, 1e-4, bias_lr_factor=2.0, weight_decay_bias=0.0)
    lrs = {g["name"]: g for g in opt.param_groups}
    assert lrs["bias"]["lr"] == pytest.approx(1e-5) and lrs["bias"]["weight_decay"] == 0.0
    sched = build_scheduler(
        opt, "warmup_multistep", 60, warmup_epochs=10, warmup_factor=0.1, milestones=[30, 50], gamma=0.1
    )
    sched.step()  # start of epoch 1
    assert lrs["weight"]["lr"] == pytest.approx(0.19 * 5e-6)
    assert lrs["bias"]["lr"] == pytest.approx(0.19 * 1e-5)


def test_optimizer_rejects_bad_values():
    w = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="learning rate"):
        build_optimizer(w.named_parameters(), "adam", -1.0, 0.0)
    w.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(w.named_parameters(), "adam", 1e-3, 0.0)


def test_warmup_cosine_step_factor_values():
    """Linear warmup over the first steps (step 0 already at 1/W), then a cosine from 1 to 0 at the last step."""
    from reid.engine.schedules import warmup_cosine_step_factor

    f = lambda s: warmup_cosine_step_factor(s, 50, 400)  # noqa: E731
    assert f(0) == 1 / 50 and f(24) == 25 / 50 and f(49) == 1.0
    assert f(50) == 1.0
    assert math.isclose(f(225), 0.5) and math.isclose(f(400), 0.0, abs_tol=1e-15)
    assert f(51) < 1.0 and f(300) < f(200)
    assert warmup_cosine_step_factor(0, 0, 3) == 1.0  # no warmup: the cosine from the first step
    assert math.isclose(warmup_cosine_step_factor(2, 0, 3), 0.5 * (1 + math.cos(math.pi * 2 / 3)))


def test_warmup_cosine_step_factor_drives_lambda_lr_per_step():
    from reid.engine.schedules import warmup_cosine_step_factor

    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine_step_factor(s, 2, 6))
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.3 * 0.5, 0.3] + [0.3 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert seen == pytest.approx(expected, rel=1e-12)
