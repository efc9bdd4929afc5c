"""Training loop of the `video` kind: AdamW, warmup + cosine, eval under both samplings, checkpoints.

Resume is exact on CPU: the checkpoint holds the model, the optimizer, the torch RNG states and
the step; a step's batch is a function of (seed, step) (data.py) and the learning rate of the
step, so the steps after a resume compute the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ladder_jobs.torch_utils import (autocast_ctx, n_params, require_finite_losses, resume_or_start, snapshot,
                                     training_device, warmup_cosine_lr)
from ladder_jobs.kinds.video.data import SAMPLINGS, TASKS, VideoData
from ladder_jobs.kinds.video.model import VideoClassifier


def to_device(batch: dict, device: torch.device) -> tuple:
    video = torch.from_numpy(batch["video"]).to(device, non_blocking=True)  # (B, T, H, W)
    lengths = torch.from_numpy(batch["lengths"]).to(device)  # (B,)
    labels = {t: torch.from_numpy(y).to(device) for t, y in batch["labels"].items()}  # task -> (B,)
    return video, lengths, labels


@torch.no_grad()
def evaluate(model, data: VideoData, cfg: dict, device: torch.device) -> dict:
    """acc_{mode}_{task}, acc_{mode}_overall (mean over tasks) and video_tps_{mode} for both samplings."""
    model.eval()
    out = {}
    for mode in SAMPLINGS:
        correct = {t: 0 for t in TASKS}
        frames_per_s = 0.0
        for batch in data.test_batches(mode, cfg["eval_batch_size"]):
            video, lengths, labels = to_device(batch, device)
            with autocast_ctx(device):
                logits = model(video, lengths)
            for t in TASKS:
                correct[t] += int((logits[t].argmax(-1) == labels[t]).sum())
            frames_per_s += batch["frames_per_video_s"]
        n = len(data.test)
        for t in TASKS:
            out[f"acc_{mode}_{t}"] = correct[t] / n
        out[f"acc_{mode}_overall"] = float(np.mean([out[f"acc_{mode}_{t}"] for t in TASKS]))
        out[f"video_tps_{mode}"] = cfg["tokens_per_frame"] * frames_per_s / n
    model.train()
    return out


def train(cfg: dict, ctx) -> None:
    device = training_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    data = VideoData(cfg)
    model = VideoClassifier(cfg, TASKS).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices and convs decay; biases, norms do not
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"], betas=(0.9, 0.95))

    train_time, train_clips, result = 0.0, 0, None
    state, start = resume_or_start(ctx, device, model=model, opt=opt)
    if state is not None:
        train_time, train_clips, result = state["train_time"], state["train_clips"], state["result"]
        if result is not None:  # finished before; only the result push failed: push it again
            ctx.report_result(result, meta={"device": str(device), "torch": torch.__version__})
            return

    def state_at(step: int) -> dict:
        return {
            **snapshot(device, model=model, opt=opt),
            "train_time": train_time,
            "train_clips": train_clips,
            "result": result,
        }

    steps, k = cfg["steps"], cfg["tokens_per_frame"]
    train_loss = float("nan")
    for step in range(start + 1, steps + 1):
        if ctx.stop_requested():
            ctx.stop(state_at(step - 1), step - 1)  # checkpoint the completed step, exit 143
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = warmup_cosine_lr(cfg, step)
        batch = data.train_batch(step)
        video, lengths, labels = to_device(batch, device)
        with autocast_ctx(device):
            logits = model(video, lengths)  # task -> (B, classes)
        # one loss per task, averaged: every task gets the same weight whatever its class count
        loss = sum(F.cross_entropy(logits[t].float(), labels[t]) for t in TASKS) / len(TASKS)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_loss = loss.item()  # syncs the device, so the timing below is honest
        dt = time.perf_counter() - t0
        B = len(batch["lengths"])
        train_time, train_clips = train_time + dt, train_clips + B
        values = {
            "train_loss": train_loss,
            # Apollo's "tokens per second" of video: how densely the model sees time
            "video_tps": k * batch["frames_per_video_s"] / B,
            "clips_per_s": B / max(dt, 1e-9),
        }
        if (cfg["eval_every"] and step % cfg["eval_every"] == 0) or step == steps:
            values.update(evaluate(model, data, cfg, device))
            if step == steps:
                result = dict(values)
        require_finite_losses(step, values)
        ctx.log_many(step, values)
        if cfg["step_sleep"]:
            time.sleep(cfg["step_sleep"])
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 and step < steps:
            ctx.save_checkpoint(state_at(step), step)

    if result is None:  # steps == start: resumed from the last step's checkpoint without a result
        result = {"train_loss": train_loss, **evaluate(model, data, cfg, device)}
    result.pop("video_tps", None)
    result.update(
        clips_per_s=train_clips / max(train_time, 1e-9),  # whole run, not the last step
        n_params=n_params(model),
        steps=steps,
        train_clips=train_clips,
    )
    ctx.save_checkpoint(state_at(steps), steps)  # a retry after a failed result push need not retrain
    ctx.report_result(result, meta={"device": str(device), "torch": torch.__version__})
