"""The clip kind's training loop, checkpointing and evaluation.

Both methods get the same budget: `steps` steps of `batch_size` images (SimCLR's two views of
an image count once, as in the paper's controlled comparison: same images seen per step).

Determinism: a step's batch indices and augmentations come from a CPU generator seeded with
(seed, step), not from one running stream, so a resumed run sees the same batches as an
uninterrupted one; model, optimiser and RNG states are in the checkpoint. On CPU a seed gives
the same numbers; CUDA (bf16 autocast) need not.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ladder_jobs.config import ConfigError
from ladder_jobs.kinds.clip.data import CLASS_TASKS, OTHER_TASKS, TASKS, World, make_world, n_classes
from ladder_jobs.kinds.clip.model import ContrastiveModel
from ladder_jobs.kinds.ssl.model import augment, error_rate, fit_probe
from ladder_jobs.seeding import stable_seed
from ladder_jobs.torch_utils import (autocast_ctx, n_params, pick_device, require_finite_losses, resume_or_start,
                                     training_state, warmup_cosine_lr)

EVAL_BATCH = 1024  # images per forward pass when extracting features
VAL_SALT = 7  # salts the generator of val_loss's augmentations (fixed across the run)
FEWSHOT_SALT = 1000


def build(config: dict, device: torch.device):
    torch.manual_seed(config["seed"])
    model = ContrastiveModel(config["method"], config["width"], config["depth"], config["proj_dim"],
                             config["text_dim"], config["temperature"]).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices, convs, embeddings decay
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # biases, norms, the logit scale do not
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config["lr"])
    return model, opt


def batch_loss(model: ContrastiveModel, x: torch.Tensor, tokens: torch.Tensor | None, g: torch.Generator,
               config: dict, device: torch.device) -> torch.Tensor:
    """The method's loss on images x (and, for clip, their caption tokens); views from g."""
    with autocast_ctx(device):
        if model.method == "clip":
            x1 = augment(x, g, config) if config["clip_augment"] else x
            return model.loss(x1, tokens, config["temperature"])
        return model.loss(augment(x, g, config), augment(x, g, config), config["temperature"])


@torch.no_grad()
def val_loss(model: ContrastiveModel, x: torch.Tensor, tokens: torch.Tensor, config: dict,
             device: torch.device) -> float:
    """The pre-training objective on held-out pairs, in training-sized batches (InfoNCE depends
    on the batch size), with augmentations from a fixed generator so points are comparable."""
    model.eval()
    g = torch.Generator().manual_seed(stable_seed(config["seed"], VAL_SALT) % 2**63)
    b, total, n = config["batch_size"], 0.0, 0
    for i in range(0, x.shape[0], b):
        xb, tb = x[i: i + b], tokens[i: i + b]
        if xb.shape[0] < 2:  # a lone pair has no negative
            break
        total += float(batch_loss(model, xb, tb, g, config, device)) * xb.shape[0]
        n += xb.shape[0]
    model.train()
    return total / n


@torch.no_grad()
def features(encoder: torch.nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    encoder.eval()
    out = []
    for i in range(0, x.shape[0], EVAL_BATCH):
        with autocast_ctx(device):
            out.append(encoder(x[i: i + EVAL_BATCH]).float().cpu())
    encoder.train()
    return torch.cat(out)  # (N, d)


def fewshot_indices(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k examples per class (fewer if a class is short). The ssl kind has one over a pool of
    indices; this one is over all of y (could move to a shared module with it)."""
    picks = [rng.choice(np.flatnonzero(y == c), size=min(k, int((y == c).sum())), replace=False)
             for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def probe_metrics(config: dict, world: World, f_probe: torch.Tensor, f_test: torch.Tensor, check_stop) -> dict:
    """Full-shot and fewshot_k-shot probe accuracy per task, and their means."""
    out = {}
    for t_i, task in enumerate(TASKS):
        y_tr, y_te = torch.from_numpy(world.y_probe[task]), torch.from_numpy(world.y_test[task])
        nc = n_classes(task)
        full = fit_probe(f_probe, y_tr, nc, config["probe_l2"], config["probe_iters"])
        out[f"probe_acc_{task}"] = 1.0 - error_rate(full(f_test), y_te)
        accs = []
        for draw in range(config["fewshot_draws"]):
            rng = np.random.default_rng(stable_seed(config["seed"], FEWSHOT_SALT + t_i, draw))
            idx = torch.from_numpy(fewshot_indices(world.y_probe[task], config["fewshot_k"], rng))
            p = fit_probe(f_probe[idx], y_tr[idx], nc, config["probe_l2"], config["probe_iters"])
            accs.append(1.0 - error_rate(p(f_test), y_te))
        out[f"fewshot_acc_{task}"] = float(np.mean(accs))
        check_stop()
    for prefix in ("probe_acc", "fewshot_acc"):
        out[prefix] = float(np.mean([out[f"{prefix}_{t}"] for t in TASKS]))
        out[f"{prefix}_class_tasks"] = float(np.mean([out[f"{prefix}_{t}"] for t in CLASS_TASKS]))
        out[f"{prefix}_other_tasks"] = float(np.mean([out[f"{prefix}_{t}"] for t in OTHER_TASKS]))
    return out


def run(config: dict, ctx) -> None:
    # not training_device(): it would also turn on TF32 on CUDA, which this kind has never used
    device = pick_device(config["device"])
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)  # same numbers twice and across a resume

    world = make_world(config)
    clip = config["method"] == "clip"
    # the pool a step samples from: clip trains on the pairs caption_filter keeps, simclr on every image
    pool = np.flatnonzero(world.keep) if clip else np.arange(config["n_pretrain"])
    if pool.size < 2 or (clip and world.x_val.shape[0] < 2):
        raise ConfigError(f"key 'caption_filter' of kind 'clip' leaves {pool.size} pre-training and "
                          f"{world.x_val.shape[0]} validation pairs (nondescriptive_frac="
                          f"{config['nondescriptive_frac']}); need >= 2 of each")
    pool_t = torch.from_numpy(pool)
    x_pre = torch.from_numpy(world.x_pre).to(device)  # (P, 1, H, W)
    tok_pre = torch.from_numpy(world.clip_tokens).to(device)  # (P, L)
    x_val = torch.from_numpy(world.x_val).to(device)
    tok_val = torch.from_numpy(world.val_tokens).to(device)
    batch = min(config["batch_size"], pool.size)

    model, opt = build(config, device)
    steps = config["steps"]
    extra = {"train_loss": None, "samples": 0, "seconds": 0.0}

    def snapshot(step: int) -> dict:
        return {**training_state(model, opt, device), **extra}

    # torch checkpoint files in ctx's dir; restores model, optimiser and RNG states when resuming
    state, start = resume_or_start(ctx, device, model=model, opt=opt)
    if state is not None:
        for k in extra:
            extra[k] = state[k]

    model.train()
    for step in range(start + 1, steps + 1):
        if ctx.stop_requested():
            ctx.stop(snapshot(step - 1), step - 1)  # checkpoints the completed step, exits 143
        for group in opt.param_groups:
            group["lr"] = warmup_cosine_lr(config, step)
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(stable_seed(config["seed"], step) % 2**63)
        # no repeats within a batch: a repeated image would be its own false negative
        idx = pool_t[torch.randperm(pool.size, generator=g)[:batch]].to(device)
        loss = batch_loss(model, x_pre[idx], tok_pre[idx], g, config, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.clamp_scale()
        loss_value = loss.item()  # syncs the device, so the timing is honest
        dt = time.perf_counter() - t0
        if config["step_sleep"]:
            time.sleep(config["step_sleep"])  # test knob; outside the timed part
        extra["train_loss"] = loss_value
        extra["samples"] += batch
        extra["seconds"] += dt
        values = {"train_loss": loss_value}
        if config["eval_every"] and step % config["eval_every"] == 0 and step < steps:
            values["val_loss"] = val_loss(model, x_val, tok_val, config, device)
        require_finite_losses(step, values)
        if step % config["log_every"] == 0 or step == steps or "val_loss" in values:
            values["samples_per_s"] = batch / max(dt, 1e-9)
            if clip:
                values["temperature"] = model.temperature()
            ctx.log_many(step, values)
        if config["checkpoint_every"] and step % config["checkpoint_every"] == 0 and step < steps:
            ctx.save_checkpoint(snapshot(step), step)

    if start < steps:
        ctx.save_checkpoint(snapshot(steps), steps)  # a retry need not train again

    def check_stop():
        if ctx.stop_requested():  # evaluation is re-run from the final checkpoint
            ctx.stop(snapshot(steps), steps)

    t_eval = time.perf_counter()
    metrics = {"val_loss": val_loss(model, x_val, tok_val, config, device)}
    require_finite_losses(steps, metrics)
    f_probe = features(model.encoder, torch.from_numpy(world.x_probe).to(device), device)
    f_test = features(model.encoder, torch.from_numpy(world.x_test).to(device), device)
    assert f_probe.shape[1] == model.encoder.out_dim and torch.isfinite(f_probe).all()
    check_stop()
    metrics.update(probe_metrics(config, world, f_probe, f_test, check_stop))
    eval_s = time.perf_counter() - t_eval
    ctx.log_many(steps, metrics)

    metrics.update({
        "train_loss": extra["train_loss"],
        "temperature": model.temperature() if clip else config["temperature"],
        "samples_per_s": extra["samples"] / max(extra["seconds"], 1e-9),
        "n_pairs": int(pool.size),  # what the method pre-trained on (clip: after caption_filter)
        "n_pretrain": int(config["n_pretrain"]),
        "caption_noise_frac": float(world.captions.noisy.mean()),  # realised label noise
        "n_params": n_params(model.encoder),
        "n_params_total": n_params(model),  # encoder + heads (+ text encoder)
        "rep_dim": int(model.encoder.out_dim),
        "steps": steps,
        "eval_s": round(eval_s, 3),
    })
    ctx.report_result(metrics, meta={"device": str(device), "torch": torch.__version__})
