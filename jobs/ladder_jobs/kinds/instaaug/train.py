"""The instaaug training loop, checkpointing and evaluation.

Determinism: a step's batch indices and the uniforms of its sampled transformations come from
a CPU generator seeded with (seed, step), not from one running stream, so a resumed run sees
the same batches and transformations as an uninterrupted one; model, optimiser and global RNG
states are in the checkpoint. On CPU the same seed gives the same numbers; CUDA kernels need not.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch

from ladder_jobs.kinds.instaaug.data import GROUPS, N_CLASSES, make_splits
from ladder_jobs.kinds.instaaug.model import TRANSFORMS, Model
from ladder_jobs.kinds.ssl.model import error_rate, fit_probe
from ladder_jobs.seeding import torch_seed
from ladder_jobs.torch_utils import (autocast_ctx, n_params, pick_device, require_finite_losses, resume_or_start, snapshot,
                                     warmup_frac_cosine_lr)

EVAL_BATCH = 1024


def build(config: dict, device: torch.device):
    torch.manual_seed(config["seed"])
    model = Model(config, N_CLASSES).to(device)
    aug_params = list(model.augmenter.parameters()) if model.augmenter is not None else []
    aug_ids = {id(p) for p in aug_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in aug_ids], "base_lr": config["lr"]}]
    if aug_params:
        groups.append({"params": aug_params, "base_lr": config["aug_lr"]})
    opt = torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])
    return model, opt


def entropy_weight_at(step: int, total: int, config: dict) -> float:
    """lambda, ramped linearly from 0 over entropy_warmup_frac of the steps (1-based step)."""
    ramp = config["entropy_warmup_frac"] * total
    return config["entropy_weight"] * (min(1.0, step / ramp) if ramp > 0 else 1.0)


def range_report(lo: torch.Tensor, hi: torch.Tensor, group: np.ndarray) -> dict:
    """Mean range width (hi - lo) per transformation and input group; rotate in degrees."""
    width = (hi - lo).double().cpu().numpy()  # (N, D)
    out = {}
    for d, name in enumerate(TRANSFORMS):
        scale = 180.0 / math.pi if name == "rotate" else 1.0
        for gi, g in enumerate(GROUPS):
            members = group == gi
            if members.any():
                out[f"range_{name}_group{g}"] = float(width[members, d].mean() * scale)
    return out


@torch.no_grad()
def _batched(fn, x: torch.Tensor, autocast) -> list:
    out = []
    for i in range(0, x.shape[0], EVAL_BATCH):
        with autocast():
            out.append(fn(x[i : i + EVAL_BATCH]))
    return out


def evaluate(config, model, splits, x_train, x_test, autocast) -> dict:
    model.eval()
    y_test = torch.from_numpy(splits.y_test)
    if config["method"] == "supervised":
        pred = torch.cat(_batched(lambda b: model.head(model.encoder(b)).float().argmax(1), x_test, autocast)).cpu()
    else:  # a linear probe on the frozen encoder, fitted on the (clean) training set
        f_train = torch.cat(_batched(lambda b: model.encoder(b).float(), x_train, autocast)).cpu()
        f_test = torch.cat(_batched(lambda b: model.encoder(b).float(), x_test, autocast)).cpu()
        predict = fit_probe(f_train, torch.from_numpy(splits.y_train), N_CLASSES, config["probe_l2"],
                            config["probe_iters"])
        pred = predict(f_test)
    ranges = _batched(lambda b: model.ranges(b), x_test, autocast)
    lo = torch.cat([r[0] for r in ranges]).float()
    hi = torch.cat([r[1] for r in ranges]).float()
    model.train()
    metrics = {"acc": 1.0 - error_rate(pred, y_test)}
    for gi, g in enumerate(GROUPS):
        members = torch.from_numpy(splits.g_test == gi)
        if members.any():
            metrics[f"acc_group{g}"] = 1.0 - error_rate(pred[members], y_test[members])
    metrics.update(range_report(lo, hi, splits.g_test))
    return metrics


def run(config: dict, ctx) -> None:
    device = pick_device(config["device"])
    use_cuda = device.type == "cuda"
    autocast = functools.partial(autocast_ctx, device)
    splits = make_splits(config)
    x_train = torch.from_numpy(splits.x_train).to(device)
    y_train = torch.from_numpy(splits.y_train).to(device)
    x_test = torch.from_numpy(splits.x_test).to(device)
    n_train = x_train.shape[0]
    batch = min(config["batch_size"], n_train)
    model, opt = build(config, device)
    steps = config["steps"]
    extra = {"train_loss": None, "entropy": None, "samples": 0, "seconds": 0.0}

    def make_state(step: int) -> dict:
        return {"step": step, **snapshot(device, model=model, opt=opt), **extra}

    state, start = resume_or_start(ctx, device, model=model, opt=opt)
    if state is not None:
        for k in extra:
            extra[k] = state[k]

    g_train = torch.from_numpy(splits.g_train).to(device)
    n_dims = len(TRANSFORMS)
    model.train()
    for step in range(start + 1, steps + 1):
        if ctx.stop_requested():
            ctx.stop(make_state(step - 1), step - 1)  # checkpoints the completed step, exits 143
        for group in opt.param_groups:
            group["lr"] = warmup_frac_cosine_lr(config, step, steps) * group["base_lr"] / config["lr"]
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(torch_seed(config["seed"], step))
        idx = torch.randperm(n_train, generator=gen)[:batch].to(device)  # no repeats: a repeat is a false negative
        u1 = torch.rand(batch, n_dims, generator=gen).to(device)
        u2 = torch.rand(batch, n_dims, generator=gen).to(device)
        with autocast():
            loss, h = model.loss(x_train[idx], y_train[idx], u1, u2, config["temperature"],
                                 entropy_weight_at(step, steps, config))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_value = float(loss.detach())
        if use_cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if config["step_sleep"]:
            time.sleep(config["step_sleep"])  # test knob; outside the timed part
        require_finite_losses(step, {"train_loss": loss_value})
        extra.update(train_loss=loss_value, entropy=float(h), samples=extra["samples"] + batch,
                     seconds=extra["seconds"] + dt)
        if step % config["log_every"] == 0 or step == steps:
            point = {"train_loss": loss_value, "samples_per_s": batch / max(dt, 1e-9)}
            if config["aug"] == "instaaug":
                point["entropy"] = float(h)
                with torch.no_grad(), autocast():
                    lo, hi = model.ranges(x_train[idx])
                gb = g_train[idx].cpu().numpy()
                point.update({k: v for k, v in range_report(lo, hi, gb).items() if k.startswith("range_rotate")})
            ctx.log_many(step, point)
        if config["checkpoint_every"] and step % config["checkpoint_every"] == 0 and step < steps:
            ctx.save_checkpoint(make_state(step), step)

    if start < steps:
        ctx.save_checkpoint(make_state(steps), steps)  # a retry need not train again
    if ctx.stop_requested():
        ctx.stop(make_state(steps), steps)

    t_eval = time.perf_counter()
    metrics = evaluate(config, model, splits, x_train, x_test, autocast)
    eval_s = time.perf_counter() - t_eval
    ctx.log_many(steps, {k: v for k, v in metrics.items() if k.startswith("acc")})
    metrics.update({
        "train_loss": extra["train_loss"],
        "samples_per_s": extra["samples"] / max(extra["seconds"], 1e-9),
        "n_params": n_params(model.encoder),
        "n_params_total": n_params(model),
        "n_train": int(n_train),
        "steps": steps,
        "eval_s": round(eval_s, 3),
    })
    if config["aug"] == "instaaug":
        metrics["entropy"] = extra["entropy"]
    ctx.report_result(metrics, meta={"device": str(device), "torch": torch.__version__})
