"""The torch helpers every torch kind shares: the lr schedule and "resume or start"."""

import math
import types

import pytest
from conftest import require_torch

torch = require_torch()  # every test here needs it

from ladder_jobs.checkpoint import CheckpointStore  # noqa: E402
from ladder_jobs.torch_utils import (  # noqa: E402
    n_params,
    pick_device,
    resume_or_start,
    snapshot,
    training_device,
    warmup_cosine,
    warmup_cosine_lr,
    warmup_frac_cosine_lr,
)


def test_warmup_then_cosine_to_the_floor():
    lr, total, warm = 0.2, 110, 10
    assert [warmup_cosine(s, total, lr, warm) for s in (1, 5, 10)] == [lr * 1 / 10, lr * 5 / 10, lr]
    assert math.isclose(warmup_cosine(60, total, lr, warm), lr / 2)  # half-way down the cosine
    assert warmup_cosine(total, total, lr, warm) == 0.0
    assert math.isclose(warmup_cosine(total, total, lr, warm, floor=0.1), lr * 0.1)
    assert warmup_cosine(total + 50, total, lr, warm, floor=0.1) == warmup_cosine(total, total, lr, warm, floor=0.1)
    values = [warmup_cosine(s, total, lr, warm, floor=0.1) for s in range(warm, total + 1)]
    assert values == sorted(values, reverse=True)  # never rises after the warm-up


def test_the_two_config_spellings_are_the_one_schedule():
    cfg = {"lr": 3e-3, "warmup": 7, "steps": 50, "warmup_frac": 0.14}
    for s in range(1, 51):
        assert warmup_cosine_lr(cfg, s) == warmup_cosine(s, 50, 3e-3, 7, floor=0.1)
        assert warmup_frac_cosine_lr(cfg, s, 50) == warmup_cosine(s, 50, 3e-3, 7)  # int(0.14 * 50) = 7
    assert warmup_frac_cosine_lr({"lr": 1.0, "warmup_frac": 0.0}, 1, 50) == 1.0  # at least one warm-up step


def _train(model, opt, steps_from, steps_to):
    losses = []
    for _ in range(steps_from, steps_to):
        x = torch.randn(4, 3)  # the global RNG: a resume must restore it
        loss = (model(x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _fresh():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.Adam(model.parameters(), lr=0.1)


class _Ctx:
    """The part of JobContext that resume_or_start uses."""

    def __init__(self, directory):
        self.env = types.SimpleNamespace(checkpoint_dir=directory)
        self.checkpoints = None

    def use_checkpoints(self, store):
        self.checkpoints = store

    def load_checkpoint(self):
        listed = self.checkpoints.list()
        return None if not listed else (self.checkpoints.load_latest(), listed[0][0])


def test_resume_or_start_continues_the_same_curve(tmp_path):
    cpu = torch.device("cpu")
    model, opt = _fresh()
    ctx = _Ctx(tmp_path)
    assert resume_or_start(ctx, cpu, model=model, opt=opt) == (None, 0)
    assert isinstance(ctx.checkpoints, CheckpointStore) and ctx.checkpoints.suffix == ".pt"
    first = _train(model, opt, 0, 3)
    ctx.checkpoints.save({**snapshot(cpu, model=model, opt=opt), "mine": 3}, 3)
    uninterrupted = first + _train(model, opt, 3, 6)

    model, opt = _fresh()
    torch.randn(100)  # a different RNG position than the checkpoint's
    state, step = resume_or_start(_Ctx(tmp_path), cpu, model=model, opt=opt)
    assert step == 3 and state["mine"] == 3
    assert first + _train(model, opt, 3, 6) == uninterrupted
    assert n_params(model) == 3 * 2 + 2


def test_training_device_on_cpu_is_deterministic():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        assert training_device("cpu") == torch.device("cpu")
        assert torch.are_deterministic_algorithms_enabled()  # same numbers twice and across a resume
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_device_is_an_error_not_a_cpu_run():
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="device=cuda"):
        pick_device("cuda")
